import createError from '@fastify/error'

// Every error the package raises lives here, so the error table of docs/reference/errors.md and the
// code agree. Request-path errors skip stack capture: they are expected outcomes,
// not bugs, and a stack per refused request is measurable cost under attack.

/** RFC 6750 §3.1 error attribute carried in `WWW-Authenticate`, when there is one. */
export type BearerErrorCode = 'invalid_request' | 'invalid_token' | 'insufficient_scope' | 'invalid_dpop_proof' | 'use_dpop_nonce'

export const TokenMissingError = createError(
  'FST_JWT_REVOCATION_TOKEN_MISSING',
  'Authorization token is missing',
  401, TypeError, false)

export const InvalidRequestError = createError<[string]>(
  'FST_JWT_REVOCATION_INVALID_REQUEST',
  '%s',
  400, TypeError, false)

export const InvalidTokenError = createError<[string]>(
  'FST_JWT_REVOCATION_INVALID_TOKEN',
  '%s',
  401, TypeError, false)

/** RFC 9449 §7.1: the `DPoP` proof header is missing, doubled, malformed, or fails a check. */
export const InvalidDpopProofError = createError<[string]>(
  'FST_JWT_REVOCATION_INVALID_DPOP_PROOF',
  '%s',
  401, TypeError, false)

/** RFC 9449 §9: the proof lacks the server's current nonce; the answer's `DPoP-Nonce` header carries one. */
export const UseDpopNonceError = createError(
  'FST_JWT_REVOCATION_USE_DPOP_NONCE',
  'The DPoP proof must carry the nonce this server provides',
  401, TypeError, false)

export const TokenExpiredError = createError(
  'FST_JWT_REVOCATION_TOKEN_EXPIRED',
  'The token has expired',
  401, TypeError, false)

export const TokenLifetimeError = createError<[string]>(
  'FST_JWT_REVOCATION_TOKEN_LIFETIME',
  '%s',
  401, TypeError, false)

export const TokenRevokedError = createError<[string]>(
  'FST_JWT_REVOCATION_TOKEN_REVOKED',
  '%s',
  401, TypeError, false)

/** What refused a revoked token: its `jti`, its client, its subject, its session, a missing grant, the issuer's status list or introspection. */
export type RevocationReason = 'token' | 'client' | 'subject' | 'session' | 'grant' | 'status-list' | 'introspection'

/**
 * Why a token was refused as revoked, on the `revocation` property of a
 * `FST_JWT_REVOCATION_TOKEN_REVOKED` error: for server-side code and logs. The client
 * only ever reads "The token has been revoked": which rule matched is not its business.
 */
export interface RevocationRefusal {
  reason: RevocationReason
  clientId?: string
  subject?: string
  jti?: string
}

/** A revoked-token refusal carrying its `revocation` details (never part of the response). */
export function tokenRevoked (revocation: RevocationRefusal): InstanceType<typeof TokenRevokedError> & { revocation: RevocationRefusal } {
  return Object.assign(new TokenRevokedError('The token has been revoked'), { revocation })
}

export const InsufficientScopeError = createError(
  'FST_JWT_REVOCATION_INSUFFICIENT_SCOPE',
  'The token lacks a scope this route requires',
  403, TypeError, false)

export const ServiceUnavailableError = createError<[string]>(
  'FST_JWT_REVOCATION_UNAVAILABLE',
  '%s',
  503, Error, false)

/** Raised at registration: fails `ready()` with a message naming the option. */
export const InvalidOptionError = createError<[string]>(
  'FST_JWT_REVOCATION_INVALID_OPTION',
  '%s',
  500, TypeError)

/** A route declared before the plugin ran has an invalid `config.auth`: its requests are refused, never let through. */
export const RouteMisconfiguredError = createError(
  'FST_JWT_REVOCATION_ROUTE_MISCONFIGURED',
  'This route is misconfigured',
  500, Error, false)

/**
 * A store could not do what was asked: unreachable, too slow (`storeTimeout`), full,
 * locked, unreadable. The driver's or file system's error is its `cause`; 503 because
 * the request may succeed once the store is back.
 */
export const StoreError = createError<[string]>(
  'FST_JWT_REVOCATION_STORE',
  '%s',
  503, Error)

/** An `app.revocation` call given something it must refuse (e.g. an audience this API does not accept). */
export const InvalidArgumentError = createError<[string]>(
  'FST_JWT_REVOCATION_INVALID_ARGUMENT',
  '%s',
  400, TypeError)

export const GrantConflictError = createError(
  'FST_JWT_REVOCATION_GRANT_CONFLICT',
  'A client grant for this client and audience already exists',
  409, Error, false)

export const GrantNotFoundError = createError(
  'FST_JWT_REVOCATION_GRANT_NOT_FOUND',
  'The client grant does not exist',
  404, Error, false)

/** An outbound call (Auth0, status lists, introspection) failed: refused origin, timeout, too large, bad answer, network. */
export const OutboundRequestError = createError<[string]>(
  'FST_JWT_REVOCATION_OUTBOUND',
  '%s',
  502, Error)

const bearerErrors: Record<string, BearerErrorCode> = {
  FST_JWT_REVOCATION_INVALID_REQUEST: 'invalid_request',
  FST_JWT_REVOCATION_INVALID_TOKEN: 'invalid_token',
  FST_JWT_REVOCATION_TOKEN_EXPIRED: 'invalid_token',
  FST_JWT_REVOCATION_TOKEN_LIFETIME: 'invalid_token',
  FST_JWT_REVOCATION_TOKEN_REVOKED: 'invalid_token',
  FST_JWT_REVOCATION_INSUFFICIENT_SCOPE: 'insufficient_scope',
  FST_JWT_REVOCATION_INVALID_DPOP_PROOF: 'invalid_dpop_proof',
  FST_JWT_REVOCATION_USE_DPOP_NONCE: 'use_dpop_nonce',
}

/** The RFC 6750 error attribute for one of this package's error codes (undefined: none). */
export function bearerErrorOf (code: string): BearerErrorCode | undefined {
  return bearerErrors[code]
}

export function invalidOption (name: string, problem: string): Error {
  return new InvalidOptionError(`fastify-jwt-revocation: option "${name}" ${problem}`)
}

/** An error the package raised on purpose (a refusal, a conflict), as opposed to a driver's or a bug. */
export function isPackageError (err: unknown): boolean {
  return String((err as { code?: unknown })?.code).startsWith('FST_JWT_REVOCATION_')
}
