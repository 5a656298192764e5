/**
 * True when a JSON text has an object with the same key twice. `JSON.parse` keeps the
 * last one silently, while another parser (a gateway, a log pipeline) may keep the
 * first: a signed token must mean one thing to everyone (RFC 8725 §2.x, RFC 7515 §5.2).
 *
 * `text` is the UTF-8 JSON that `JSON.parse` turned into `parsed`. Without duplicates,
 * every string of the text (key or value) is exactly one key or string value of the
 * parse; a duplicate member loses at least its key ("a" and "\u0061" alike). So the
 * text has duplicates exactly when it holds more strings than the parse: two counts,
 * no set of keys, no copy of the text.
 */
export function hasDuplicateKeys (text: Uint8Array, parsed: unknown): boolean {
  return stringsInText(text) !== stringsInValue(parsed)
}

/** Strings in a JSON text: its unescaped quotes, in pairs. UTF-8 continuation bytes are ≥ 0x80, never a quote or a backslash. */
function stringsInText (text: Uint8Array): number {
  let count = 0
  for (let i = 0; i < text.length; i++) {
    if (text[i] !== 0x22) continue
    count++
    for (i++; i < text.length && text[i] !== 0x22; i++) {
      if (text[i] === 0x5c) i++
    }
  }
  return count
}

/** Keys and string values of a parsed JSON value. */
function stringsInValue (value: unknown): number {
  if (typeof value === 'string') return 1
  if (typeof value !== 'object' || value === null) return 0
  let count = 0
  if (Array.isArray(value)) {
    for (const item of value) count += stringsInValue(item)
    return count
  }
  // JSON.parse makes every member an own enumerable property, "__proto__" included.
  const keys = Object.keys(value)
  for (const key of keys) count += 1 + stringsInValue((value as Record<string, unknown>)[key])
  return count
}
