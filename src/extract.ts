import type { FastifyRequest } from 'fastify'
import { InvalidRequestError, TokenMissingError } from './errors.js'

// RFC 6750 §2.1: credentials = "Bearer" 1*SP b64token. We accept exactly one space,
// as every mainstream client sends, and refuse anything else as invalid_request.
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/

function hasAccessTokenParam (request: FastifyRequest): boolean {
  const query = request.query as Record<string, unknown> | undefined
  return query !== null && typeof query === 'object' && query.access_token !== undefined
}

/** Node keeps only the first `Authorization` header; a second one is an ambiguity we refuse. */
function hasDuplicateAuthorization (rawHeaders: string[]): boolean {
  let seen = false
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!
    if (name.length === 13 && name.toLowerCase() === 'authorization') {
      if (seen) return true
      seen = true
    }
  }
  return false
}

const BEARER = 'bearer'

/** The scheme is case-insensitive; compared in place rather than on a lower-cased copy. */
function startsWithBearer (header: string): boolean {
  // `| 0x20` lower-cases a letter, and no other character lands on one of "bearer".
  for (let i = 0; i < BEARER.length; i++) if ((header.charCodeAt(i) | 0x20) !== BEARER.charCodeAt(i)) return false
  return true
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
  if (header.length < 7 || header.charCodeAt(6) !== 32 || !startsWithBearer(header)) {
    // Another scheme (Basic, DPoP...) carries no Bearer token: answer with a challenge.
    throw new TokenMissingError()
  }
  if (hasAccessTokenParam(request)) throw new InvalidRequestError('Use only one method to send the token')
  if (hasDuplicateAuthorization(request.raw.rawHeaders)) throw new InvalidRequestError('Send one Authorization header')
  if (header.length - 7 > maxTokenSize) throw new InvalidRequestError('The token is too large')
  return header.slice(7)
}

/** The same size rule for a token from a custom `extractToken`. */
export function checkTokenShape (token: unknown, maxTokenSize: number): string {
  if (typeof token !== 'string' || token.length === 0) throw new TokenMissingError()
  if (token.length > maxTokenSize) throw new InvalidRequestError('The token is too large')
  return token
}

/** RFC 6750 b64token characters, for either transport; run before verification. */
export function checkTokenCharacters (token: string, fromHeader: boolean): void {
  if (!B64TOKEN.test(token)) throw new InvalidRequestError(fromHeader ? 'Malformed Authorization header' : 'Malformed token')
}
