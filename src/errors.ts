import createError from '@fastify/error'

// Every error the package raises lives here, so the error table of docs/reference/errors.md and the
// code agree. Request-path errors skip stack capture: they are expected outcomes,
// not bugs, and a stack per refused request is measurable cost under attack.

/** RFC 6750 §3.1 error attribute carried in `WWW-Authenticate`, when there is one. */
export type BearerErrorCode = 'invalid_request' | 'invalid_token' | 'insufficient_scope' | 'invalid_dpop_proof' | 'use_dpop_nonce'

/**
 * An error this package raises: the `code` says which (the README's error table), the
 * `statusCode` the HTTP status it answers with. A driver's or file system's error, where
 * there is one, is its `cause`.
 */
export interface JwtRevocationError<Code extends string = string, Status extends number = number> extends Error {
  code: Code
  statusCode: Status
}

/**
 * One of the package's error classes: `new`, or called without it, and `instanceof`.
 * Declared here rather than taken from @fastify/error's types, whose `export =` shape
 * resolves to a different thing under `moduleResolution: "bundler"` than under `node16`:
 * published declarations that named its namespace did not compile there.
 */
export interface JwtRevocationErrorClass<Code extends string = string, Status extends number = number, Args extends unknown[] = unknown[]> {
  new (...args: Args): JwtRevocationError<Code, Status>
  (...args: Args): JwtRevocationError<Code, Status>
  readonly prototype: JwtRevocationError<Code, Status>
}

/** A class whose every error carries the same message. */
function errorWithFixedMessage<Code extends string, Status extends number> (
  code: Code, message: string, statusCode: Status, Base: ErrorConstructor, captureStackTrace?: boolean,
): JwtRevocationErrorClass<Code, Status, []> {
  return createError(code, message, statusCode, Base, captureStackTrace)
}

/** A class whose errors carry the message they are given. */
function errorWithMessage<Code extends string, Status extends number> (
  code: Code, statusCode: Status, Base: ErrorConstructor, captureStackTrace?: boolean,
): JwtRevocationErrorClass<Code, Status, [message: string]> {
  return createError(code, '%s', statusCode, Base, captureStackTrace)
}

export const TokenMissingError = errorWithFixedMessage('FST_JWT_REVOCATION_TOKEN_MISSING', 'Authorization token is missing', 401, TypeError, false)

export const InvalidRequestError = errorWithMessage('FST_JWT_REVOCATION_INVALID_REQUEST', 400, TypeError, false)

export const InvalidTokenError = errorWithMessage('FST_JWT_REVOCATION_INVALID_TOKEN', 401, TypeError, false)

/** RFC 9449 §7.1: the `DPoP` proof header is missing, doubled, malformed, or fails a check. */
export const InvalidDpopProofError = errorWithMessage('FST_JWT_REVOCATION_INVALID_DPOP_PROOF', 401, TypeError, false)

/** RFC 9449 §9: the proof lacks the server's current nonce; the answer's `DPoP-Nonce` header carries one. */
export const UseDpopNonceError = errorWithFixedMessage('FST_JWT_REVOCATION_USE_DPOP_NONCE', 'The DPoP proof must carry the nonce this server provides', 401, TypeError, false)

export const TokenExpiredError = errorWithFixedMessage('FST_JWT_REVOCATION_TOKEN_EXPIRED', 'The token has expired', 401, TypeError, false)

export const TokenLifetimeError = errorWithMessage('FST_JWT_REVOCATION_TOKEN_LIFETIME', 401, TypeError, false)

export const TokenRevokedError = errorWithMessage('FST_JWT_REVOCATION_TOKEN_REVOKED', 401, TypeError, false)

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
  /** The token's `sid`, when it has one. */
  sessionId?: string
  jti?: string
}

/** A revoked-token refusal carrying its `revocation` details (never part of the response). */
export function tokenRevoked (revocation: RevocationRefusal): InstanceType<typeof TokenRevokedError> & { revocation: RevocationRefusal } {
  return Object.assign(new TokenRevokedError('The token has been revoked'), { revocation })
}

export const InsufficientScopeError = errorWithFixedMessage('FST_JWT_REVOCATION_INSUFFICIENT_SCOPE', 'The token lacks a scope this route requires', 403, TypeError, false)

export const ServiceUnavailableError = errorWithMessage('FST_JWT_REVOCATION_UNAVAILABLE', 503, Error, false)

/** Raised at registration: fails `ready()` with a message naming the option. */
export const InvalidOptionError = errorWithMessage('FST_JWT_REVOCATION_INVALID_OPTION', 500, TypeError)

/** A route declared before the plugin ran has an invalid `config.auth`: its requests are refused, never let through. */
export const RouteMisconfiguredError = errorWithFixedMessage('FST_JWT_REVOCATION_ROUTE_MISCONFIGURED', 'This route is misconfigured', 500, Error, false)

/**
 * A store could not do what was asked: unreachable, too slow (`storeTimeout`), full,
 * locked, unreadable. The driver's or file system's error is its `cause`; 503 because
 * the request may succeed once the store is back.
 */
export const StoreError = errorWithMessage('FST_JWT_REVOCATION_STORE', 503, Error)

/** An `app.revocation` call given something it must refuse (e.g. an audience this API does not accept). */
export const InvalidArgumentError = errorWithMessage('FST_JWT_REVOCATION_INVALID_ARGUMENT', 400, TypeError)

export const GrantConflictError = errorWithFixedMessage('FST_JWT_REVOCATION_GRANT_CONFLICT', 'A client grant for this client and audience already exists', 409, Error, false)

export const GrantNotFoundError = errorWithFixedMessage('FST_JWT_REVOCATION_GRANT_NOT_FOUND', 'The client grant does not exist', 404, Error, false)

/** An outbound call (Auth0, status lists, introspection) failed: refused origin, timeout, too large, bad answer, network. */
export const OutboundRequestError = errorWithMessage('FST_JWT_REVOCATION_OUTBOUND', 502, Error)

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
