/**
 * True when `parsed`, what `JSON.parse` made of the UTF-8 JSON `text`, is what the text
 * writes: no object has a member name twice, and every name reads as written.
 *
 * Duplicates: `JSON.parse` keeps the last member silently, while another parser (a
 * gateway, a log pipeline) may keep the first: a signed token must mean one thing to
 * everyone (RFC 8725 §2.x, RFC 7515 §5.2).
 *
 * Names as written: V8's `JSON.parse` in Node 24 and 26 (nodejs/node#63785) can read an
 * escaped member name as an earlier-parsed name that shares its raw prefix — `"cn\u0066"`
 * as `cn\` once any object with a `"cn\\"` member was parsed by the process, from any
 * source. A lone string is read right, so each escaped name is decoded on its own and
 * compared with the name the parse gave that member. Escaped names themselves are fine
 * (PHP writes `"https:\/\/example.com\/roles"`), and names without a backslash are read
 * right: texts without an escaped name, almost all, keep the one scan and the count below.
 */
export function parsedAsWritten (text: Uint8Array, parsed: unknown): boolean {
  const strings = stringsInText(text)
  if (strings === HAS_ESCAPED_NAME) return membersAsWritten(text, parsed)
  return strings === stringsInValue(parsed)
}

/**
 * The base64url segment of a JWS read in two steps, for a segment jose is about to parse:
 * `segmentStrings` before the parse is at hand (it reads the text alone, so it can run
 * before the signature's await), `segmentParsedAsWritten` after, with its answer. Together
 * they are `parsedAsWritten` of the decoded segment.
 */
export function segmentStrings (encoded: string): number {
  const length = decodeSegment(encoded)
  return stringsInText(scratch.subarray(0, length))
}

/** `parsedAsWritten` of the decoded `encoded`, given `segmentStrings(encoded)`. */
export function segmentParsedAsWritten (encoded: string, strings: number, parsed: unknown): boolean {
  // Rare (an escaped member name): the text is decoded again and walked beside its parse.
  if (strings === HAS_ESCAPED_NAME) return membersAsWritten(Buffer.from(encoded, 'base64url'), parsed)
  return strings === stringsInValue(parsed)
}

/** `parsedAsWritten` of a base64url segment, decoded without a buffer of its own. */
export function encodedParsedAsWritten (encoded: string, parsed: unknown): boolean {
  return segmentParsedAsWritten(encoded, segmentStrings(encoded), parsed)
}

/**
 * One buffer the segments are decoded into, grown to the largest seen: the count needs
 * the bytes only while it scans them (synchronously), so no decode allocates.
 */
let scratch = Buffer.allocUnsafe(4096)

function decodeSegment (encoded: string): number {
  // Four base64url characters make three bytes at most.
  const most = Math.ceil(encoded.length / 4) * 3
  if (most > scratch.length) scratch = Buffer.allocUnsafe(most)
  return scratch.write(encoded, 0, 'base64url')
}

const QUOTE = 0x22
const BACKSLASH = 0x5c
const COLON = 0x3a
const COMMA = 0x2c
const OPEN_OBJECT = 0x7b
const CLOSE_OBJECT = 0x7d
const OPEN_ARRAY = 0x5b
const CLOSE_ARRAY = 0x5d

const isWhitespace = (byte: number | undefined): boolean => byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09

/** `stringsInText`'s answer when a member name holds an escape: the count no longer settles anything. */
const HAS_ESCAPED_NAME = -1

/**
 * Strings in a JSON text: its unescaped quotes, in pairs. Without duplicates, every string
 * of the text (name or value) is exactly one name or string value of the parse; a
 * duplicate member loses at least its name ("a" and "\u0061" alike). So, when every name
 * is read right, the text has duplicates exactly when it holds more strings than the
 * parse: two counts, no set of names, no copy of the text.
 * UTF-8 continuation bytes are ≥ 0x80, never a quote or a backslash.
 */
function stringsInText (text: Uint8Array): number {
  let count = 0
  for (let i = 0; i < text.length; i++) {
    if (text[i] !== QUOTE) continue
    count++
    let escaped = false
    for (i++; i < text.length && text[i] !== QUOTE; i++) {
      if (text[i] === BACKSLASH) { escaped = true; i++ }
    }
    if (escaped) {
      // A string followed by a colon is a member name.
      let next = i + 1
      while (isWhitespace(text[next])) next++
      if (text[next] === COLON) return HAS_ESCAPED_NAME
    }
  }
  return count
}

/**
 * Names and string values of a parsed JSON value. A stack of its own: a text nested
 * thousands deep is valid JSON, and a signer (a DPoP client) may send one.
 */
function stringsInValue (root: unknown): number {
  let count = 0
  const pending = [root]
  while (pending.length !== 0) {
    const value = pending.pop()
    if (typeof value === 'string') count++
    else if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) pending.push(value[i])
    } else if (typeof value === 'object' && value !== null) {
      // JSON.parse makes every member an own enumerable property, "__proto__" included.
      const keys = Object.keys(value)
      count += keys.length
      for (let i = 0; i < keys.length; i++) pending.push((value as Record<string, unknown>)[keys[i]!])
    }
  }
  return count
}

interface ObjectInText { parsed: Record<string, unknown>, names: string[] }
interface ArrayInText { parsed: unknown[], index: number }

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value)

/**
 * Walks the text beside its parse, object by object: each name the text writes, decoded
 * on its own, must be a distinct own member of the parsed object, and the parsed object
 * must have exactly these names, in the order JSON.parse gives them. The walk keeps its
 * own stack (a text nested thousands deep is valid JSON) and refuses anything it cannot
 * follow rather than guess.
 */
function membersAsWritten (text: Uint8Array, parsed: unknown): boolean {
  const open: Array<ObjectInText | ArrayInText> = []
  const bytes = Buffer.from(text.buffer, text.byteOffset, text.byteLength)
  let i = 0
  const skipWhitespace = (): void => { while (isWhitespace(text[i])) i++ }
  /** From an opening quote to just past its closing quote; whether it held an escape. */
  const skipString = (): boolean => {
    let escaped = false
    for (i++; i < text.length && text[i] !== QUOTE; i++) {
      if (text[i] === BACKSLASH) { escaped = true; i++ }
    }
    i++
    return escaped
  }
  let expected = parsed
  for (;;) {
    // A value starts at i; `expected` is what the parse made of it.
    skipWhitespace()
    let member = false
    if (text[i] === OPEN_OBJECT) {
      if (!isObject(expected)) return false
      i++
      skipWhitespace()
      if (text[i] === CLOSE_OBJECT) {
        i++
        if (Object.keys(expected).length !== 0) return false
      } else {
        open.push({ parsed: expected, names: [] })
        member = true
      }
    } else if (text[i] === OPEN_ARRAY) {
      if (!Array.isArray(expected)) return false
      i++
      skipWhitespace()
      if (text[i] === CLOSE_ARRAY) {
        i++
        if (expected.length !== 0) return false
      } else {
        open.push({ parsed: expected, index: 0 })
        expected = expected[0]
        continue
      }
    } else if (text[i] === QUOTE) {
      skipString()
    } else {
      if (i >= text.length) return false
      while (i < text.length && text[i] !== COMMA && text[i] !== CLOSE_OBJECT && text[i] !== CLOSE_ARRAY && !isWhitespace(text[i])) i++
    }
    // After a value (or an opened object): its next member, the next item, or closings.
    for (;;) {
      const within = open[open.length - 1]
      if (member) {
        member = false
        const object = within as ObjectInText
        skipWhitespace()
        if (text[i] !== QUOTE) return false
        const start = i
        const escaped = skipString()
        const name = escaped ? decodeString(bytes.toString('utf8', start, i)) : bytes.toString('utf8', start + 1, i - 1)
        if (name === undefined) return false
        if (!Object.hasOwn(object.parsed, name)) return false
        object.names.push(name)
        skipWhitespace()
        if (text[i] !== COLON) return false
        i++
        expected = object.parsed[name]
        break
      }
      skipWhitespace()
      if (within === undefined) return i === text.length
      if (text[i] === COMMA) {
        i++
        if ('names' in within) { member = true; continue }
        within.index++
        expected = within.parsed[within.index]
        break
      }
      if ('names' in within ? text[i] !== CLOSE_OBJECT : text[i] !== CLOSE_ARRAY) return false
      i++
      open.pop()
      if ('names' in within ? !sameNames(within) : within.index + 1 !== within.parsed.length) return false
    }
  }
}

/** A JSON string's value: a lone string is read right where a member name may not be. */
function decodeString (quoted: string): string | undefined {
  try {
    const value: unknown = JSON.parse(quoted)
    return typeof value === 'string' ? value : undefined
  } catch {
    return undefined
  }
}

/** An array index as a property name: JSON.parse's objects list these first, in numeric order. */
const ARRAY_INDEX = /^(?:0|[1-9]\d{0,9})$/
const isArrayIndex = (name: string): boolean => ARRAY_INDEX.test(name) && Number(name) < 4294967295

/** The parsed object's names are the text's, each once, in OrdinaryOwnPropertyKeys order. */
function sameNames ({ parsed, names }: ObjectInText): boolean {
  if (new Set(names).size !== names.length) return false
  const indexes = names.filter(isArrayIndex).sort((a, b) => Number(a) - Number(b))
  const ordered = indexes.length === 0 ? names : [...indexes, ...names.filter((name) => !isArrayIndex(name))]
  const keys = Object.keys(parsed)
  return keys.length === ordered.length && keys.every((key, k) => key === ordered[k])
}
