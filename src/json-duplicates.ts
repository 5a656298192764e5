/**
 * True when a JSON text has an object with the same key twice. `JSON.parse` keeps the
 * last one silently, while another parser (a gateway, a log pipeline) may keep the
 * first: a signed token must mean one thing to everyone (RFC 8725 §2.x, RFC 7515 §5.2).
 * Only called on text that `JSON.parse` has already accepted.
 */
export function hasDuplicateKeys (json: string): boolean {
  const objects: Array<Set<string> | null> = []
  let expectKey = false
  for (let i = 0; i < json.length; i++) {
    const c = json.charCodeAt(i)
    if (c === 0x22) {
      let end = i + 1
      while (end < json.length) {
        const d = json.charCodeAt(end)
        if (d === 0x5c) end += 2
        else if (d === 0x22) break
        else end++
      }
      const keys = objects[objects.length - 1]
      if (expectKey && keys) {
        const raw = json.slice(i, end + 1)
        // "a" and "\u0061" are the same key.
        const key = raw.includes('\\') ? JSON.parse(raw) as string : raw.slice(1, -1)
        if (keys.has(key)) return true
        keys.add(key)
        expectKey = false
      }
      i = end
    } else if (c === 0x7b) {
      objects.push(new Set())
      expectKey = true
    } else if (c === 0x5b) {
      objects.push(null)
      expectKey = false
    } else if (c === 0x7d || c === 0x5d) {
      objects.pop()
      expectKey = false
    } else if (c === 0x2c) {
      expectKey = objects[objects.length - 1] != null
    }
  }
  return false
}
