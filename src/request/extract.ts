import type { FastifyRequest } from 'fastify'
import { JWS_COMPACT } from '../lib/canonical-segments.js'
import { InvalidRequestError, TokenMissingError } from '../errors.js'

// RFC 6750 §2.1: credentials = "Bearer" 1*SP b64token. We accept exactly one space,
// as every mainstream client sends, and refuse anything else as invalid_request.
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/

function hasAccessTokenParam (request: FastifyRequest): boolean {
  const query = request.query as Record<string, unknown> | undefined
  return query !== null && typeof query === 'object' && query.access_token !== undefined
}

/** How many times a header came: Node keeps only the first `Authorization`, and joins others. */
export function headerCount (rawHeaders: string[], lowerCaseName: string): number {
  let count = 0
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!
    if (name.length === lowerCaseName.length && name.toLowerCase() === lowerCaseName) count++
  }
  return count
}

const BEARER = 'bearer'

const DPOP = 'dpop'

/** The scheme is case-insensitive; compared in place rather than on a lower-cased copy. */
function startsWithScheme (header: string, scheme: string): boolean {
  // `| 0x20` lower-cases a letter, and no other character lands on one of "bearer" or "dpop".
  for (let i = 0; i < scheme.length; i++) if ((header.charCodeAt(i) | 0x20) !== scheme.charCodeAt(i)) return false
  return true
}

/** `Authorization: DPoP …` (RFC 9449 §7.1). */
export function usesDpopScheme (header: string | undefined): boolean {
  return header !== undefined && header.length > 5 && header.charCodeAt(4) === 32 && startsWithScheme(header, DPOP)
}

/**
 * The Bearer token of a request, size-checked, or a thrown error: 401 without error
 * attribute when there is none, 400 invalid_request when the header is malformed or
 * ambiguous. Its characters are left to `checkTokenCharacters`, which a token already
 * verified and cached (the same bytes) need not pass again.
 */
export function extractBearerToken (request: FastifyRequest, maxTokenSize: number): string {
  const header = request.headers.authorization
  if (header === undefined) {
    // RFC 6750 §2.3 query transport leaks tokens into logs and Referer: not accepted.
    if (hasAccessTokenParam(request)) throw new InvalidRequestError('Tokens in the query string are not accepted')
    throw new TokenMissingError()
  }
  if (header.length < 7 || header.charCodeAt(6) !== 32 || !startsWithScheme(header, BEARER)) {
    // Another scheme (Basic, DPoP...) carries no Bearer token: answer with a challenge.
    throw new TokenMissingError()
  }
  return tokenAfterScheme(request, header, 7, maxTokenSize)
}

/** The token of `Authorization: DPoP <token>`, under the same rules as a Bearer token. */
export function extractDpopToken (request: FastifyRequest, maxTokenSize: number): string {
  return tokenAfterScheme(request, request.headers.authorization!, 5, maxTokenSize)
}

function tokenAfterScheme (request: FastifyRequest, header: string, start: number, maxTokenSize: number): string {
  if (hasAccessTokenParam(request)) throw new InvalidRequestError('Use only one method to send the token')
  if (headerCount(request.raw.rawHeaders, 'authorization') > 1) throw new InvalidRequestError('Send one Authorization header')
  if (header.length - start > maxTokenSize) throw new InvalidRequestError('The token is too large')
  return header.slice(start)
}

/** The same size rule for a token from a custom `extractToken`. */
export function checkTokenShape (token: unknown, maxTokenSize: number): string {
  if (typeof token !== 'string' || token.length === 0) throw new TokenMissingError()
  if (token.length > maxTokenSize) throw new InvalidRequestError('The token is too large')
  return token
}

/**
 * RFC 6750 b64token characters, for either transport; run before verification. Returns
 * whether the token has the shape of a compact JWS, whose characters are a subset of
 * b64token's: the common case costs one scan of the token, and the verifier is told
 * the answer rather than scanning again.
 */
export function checkTokenCharacters (token: string, fromHeader: boolean): boolean {
  if (JWS_COMPACT.test(token)) return true
  if (!B64TOKEN.test(token)) throw new InvalidRequestError(fromHeader ? 'Malformed Authorization header' : 'Malformed token')
  return false
}
