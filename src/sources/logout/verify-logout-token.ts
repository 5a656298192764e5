import { jwtVerify } from 'jose'
import type { JWTHeaderParameters, JWTPayload } from '../../lib/jose-types.js'
import { isCanonicalJws } from '../../lib/canonical-segments.js'
import { parsedAsWritten } from '../../lib/json-as-written.js'
import type { KeySource } from '../../token/keys.js'
import { LogoutRefusal } from './refusal.js'

/** The member of `events` that makes a JWT a Logout Token (§2.4). */
export const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout'

export interface LogoutTokenPolicy {
  keySource: KeySource
  /** The OP's `iss`; undefined takes the one its discovery document names. */
  issuer: string | undefined
  audiences: string[]
  clockTolerance: number
  /** Seconds: an older Logout Token is refused, which bounds how long its `jti` must be remembered. */
  maxAge: number
}

/** A Logout Token that passed §2.6: it names a session (`sid`), a subject (`sub`), or both. */
export interface LogoutToken extends JWTPayload {
  iss: string
  jti: string
  iat: number
  exp: number
  sub?: string
  sid?: string
}

/** `iat` further ahead than this is a forged or broken clock: refused. */
const MAX_FUTURE_IAT_SECONDS = 60
/** Longer identifiers are not ones an OP issues; they would only bloat the replay keys. */
const MAX_ID_LENGTH = 256

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
const isIdentifier = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= MAX_ID_LENGTH && !v.includes('\u0000')

const NOT_A_LOGOUT_TOKEN = 'The logout_token is not a signed Logout Token'
const BAD_CLAIMS = 'The Logout Token lacks a required claim or has an invalid one'

/**
 * Maps jose's failures onto fixed descriptions; nothing of the token is echoed. A key
 * source that cannot be reached stays a 503 (the OP may retry), not a refusal.
 */
function refusalOf (err: unknown): Error {
  if (err instanceof LogoutRefusal) return err
  const e = err as { code?: string, claim?: string }
  switch (e?.code) {
    case 'FST_JWT_REVOCATION_UNAVAILABLE':
      return err as Error
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (e.claim === 'iss') return new LogoutRefusal('The Logout Token issuer is not accepted')
      if (e.claim === 'aud') return new LogoutRefusal('The Logout Token audience is not this client')
      if (e.claim === 'typ') return new LogoutRefusal('The JWT is not a Logout Token (typ logout+jwt)')
      return new LogoutRefusal(BAD_CLAIMS)
    case 'ERR_JWT_EXPIRED':
      return new LogoutRefusal('The Logout Token has expired')
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return new LogoutRefusal('The Logout Token is signed with an algorithm that is not allowed')
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return new LogoutRefusal('No key of the OpenID Provider matches the Logout Token')
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return new LogoutRefusal('The Logout Token signature is invalid')
    default:
      return new LogoutRefusal(NOT_A_LOGOUT_TOKEN)
  }
}

/**
 * OpenID Connect Back-Channel Logout 1.0 §2.6 (errata set 1): a compact JWS signed by the
 * OP (jose, algorithms allow-listed; an unsigned token is refused), every header and
 * payload read as written, `iss`, `aud`, `iat`, `exp` and `jti` valid, the logout event
 * an object in `events`, `sub` and/or `sid`, no `nonce` (an ID Token is never taken for a
 * Logout Token), and `typ` `logout+jwt` when the header has one (§4.1).
 */
export async function verifyLogoutToken (token: string, policy: LogoutTokenPolicy, nowSeconds: number): Promise<LogoutToken> {
  if (!isCanonicalJws(token)) throw new LogoutRefusal(NOT_A_LOGOUT_TOKEN)
  let payload: JWTPayload
  let protectedHeader: JWTHeaderParameters
  try {
    const { key, issuer } = await policy.keySource.resolve()
    const expectedIssuer = policy.issuer ?? issuer
    // Without an issuer to compare with, nothing can be accepted (discovery sets one).
    if (expectedIssuer === undefined) throw new LogoutRefusal('The Logout Token issuer is not accepted')
    ;({ payload, protectedHeader } = await jwtVerify(token, key, {
      algorithms: policy.keySource.algorithms,
      issuer: expectedIssuer,
      audience: policy.audiences,
      clockTolerance: policy.clockTolerance,
      requiredClaims: ['iss', 'aud', 'iat', 'exp', 'jti', 'events'],
    }))
  } catch (err) {
    throw refusalOf(err)
  }
  const [header, claims] = token.split('.') as [string, string]
  if (!parsedAsWritten(Buffer.from(header, 'base64url'), protectedHeader) || !parsedAsWritten(Buffer.from(claims, 'base64url'), payload)) {
    throw new LogoutRefusal('The Logout Token has duplicate or unreadable member names')
  }
  // §4.1: explicit typing is recommended, not required; when present it must say logout+jwt.
  if (protectedHeader.typ !== undefined && !/^(application\/)?logout\+jwt$/i.test(protectedHeader.typ)) {
    throw new LogoutRefusal('The JWT is not a Logout Token (typ logout+jwt)')
  }
  if (!isIdentifier(payload.jti)) throw new LogoutRefusal(BAD_CLAIMS)
  const iat = payload.iat!
  if (iat - nowSeconds > Math.max(policy.clockTolerance, MAX_FUTURE_IAT_SECONDS)) {
    throw new LogoutRefusal('The Logout Token is issued in the future')
  }
  if (nowSeconds - iat > policy.maxAge + policy.clockTolerance) throw new LogoutRefusal('The Logout Token is too old')
  if (!isObject(payload.events) || !isObject(payload.events[BACKCHANNEL_LOGOUT_EVENT])) {
    throw new LogoutRefusal('The Logout Token has no back-channel logout event')
  }
  if ('nonce' in payload) throw new LogoutRefusal('A Logout Token must not contain a nonce')
  const hasSub = payload.sub !== undefined
  const hasSid = payload.sid !== undefined
  if ((!hasSub && !hasSid) || (hasSub && !isIdentifier(payload.sub)) || (hasSid && !isIdentifier(payload.sid))) {
    throw new LogoutRefusal('The Logout Token names neither a valid session (sid) nor a valid subject (sub)')
  }
  return payload as LogoutToken
}
