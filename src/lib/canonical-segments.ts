// RFC 4648 §3.5: an encoder sets the unused bits of the last base64url character to zero,
// so every byte string has exactly one encoding. A decoder that ignores those bits (jose,
// Buffer) lets one signed token be written several ways, which defeats anything keyed on
// the token's text — a blacklist of token strings, a replay cache, a log search. Only the
// canonical form is accepted. Runs once per verification, never on a cache hit.

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
const VALUE = new Int8Array(128).fill(-1)
for (let i = 0; i < ALPHABET.length; i++) VALUE[ALPHABET.charCodeAt(i)] = i

/** True when `text[start, end)` is canonical unpadded base64url (characters already checked). */
function canonicalSegment (text: string, start: number, end: number): boolean {
  const length = end - start
  switch (length % 4) {
    case 0: return true
    case 1: return false // no byte string encodes to 4k + 1 characters
    case 2: return (VALUE[text.charCodeAt(end - 1)]! & 0x0f) === 0 // 4 unused bits
    default: return (VALUE[text.charCodeAt(end - 1)]! & 0x03) === 0 // 2 unused bits
  }
}

/** True when every dot-separated segment of a compact JWS is in canonical base64url. */
export function hasCanonicalSegments (token: string): boolean {
  let start = 0
  for (;;) {
    const dot = token.indexOf('.', start)
    const end = dot === -1 ? token.length : dot
    if (!canonicalSegment(token, start, end)) return false
    if (dot === -1) return true
    start = dot + 1
  }
}

/** Three non-empty base64url segments: the shape of a compact JWS (RFC 7515 §7.1); a JWE has five. */
export const JWS_COMPACT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/

/** A compact JWS in canonical base64url: the only form this package verifies (tokens, proofs, SETs). */
export function isCanonicalJws (text: string): boolean {
  return JWS_COMPACT.test(text) && hasCanonicalSegments(text)
}
