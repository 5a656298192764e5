import { jwtVerify } from 'jose'
import type { JWTHeaderParameters, JWTPayload } from '../../lib/jose-types.js'
import { isCanonicalJws } from '../../lib/canonical-segments.js'
import { parsedAsWritten } from '../../lib/json-as-written.js'
import type { KeySource } from '../../token/keys.js'
import { SetRefusal } from './refusal.js'

export interface SetPolicy {
  keySource: KeySource
  issuer: string
  audiences: string[]
  clockTolerance: number
  /** Seconds: an older SET is refused, so a replay outside the remembered window changes nothing. */
  maxAge: number
}

/** A verified SET: RFC 8417 §2.2 claims, `events` an object of event-type URI → payload. */
export interface SecurityEventToken extends JWTPayload {
  iss: string
  jti: string
  iat: number
  events: Record<string, unknown>
}

/** `iat` further ahead than this is a forged or broken clock: refused. */
const MAX_FUTURE_IAT_SECONDS = 60

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/** Maps jose's failures onto RFC 8935's codes; the description never echoes the SET. */
function refusalOf (err: unknown): Error {
  if (err instanceof SetRefusal) return err
  const e = err as { code?: string, claim?: string }
  switch (e?.code) {
    case 'FST_JWT_REVOCATION_UNAVAILABLE':
      return err as Error
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (e.claim === 'iss') return new SetRefusal('invalid_issuer', 'The SET issuer is not accepted')
      if (e.claim === 'aud') return new SetRefusal('invalid_audience', 'The SET audience is not this receiver')
      if (e.claim === 'typ') return new SetRefusal('invalid_request', 'The JWT is not a Security Event Token (typ secevent+jwt)')
      return new SetRefusal('invalid_request', 'The SET lacks a required claim or has an invalid one')
    case 'ERR_JWT_EXPIRED':
      return new SetRefusal('invalid_request', 'The SET has expired')
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return new SetRefusal('invalid_key', 'The SET is signed with an algorithm that is not allowed')
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return new SetRefusal('invalid_key', 'No key of the transmitter matches the SET')
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return new SetRefusal('invalid_key', 'The SET signature is invalid')
    default:
      return new SetRefusal('invalid_request', 'The request body is not a signed SET')
  }
}

/**
 * RFC 8417 validation of one pushed SET: a compact JWS signed by the transmitter (jose,
 * algorithms allow-listed), `typ` `secevent+jwt` — so an access token is never taken for
 * a SET — `iss`, `aud`, `jti`, `iat` and an `events` object present.
 */
export async function verifySecurityEventToken (body: string, policy: SetPolicy, nowSeconds: number): Promise<SecurityEventToken> {
  if (!isCanonicalJws(body)) throw new SetRefusal('invalid_request', 'The request body is not a signed SET')
  let payload: JWTPayload
  let protectedHeader: JWTHeaderParameters
  try {
    const { key } = await policy.keySource.resolve()
    ;({ payload, protectedHeader } = await jwtVerify(body, key, {
      algorithms: policy.keySource.algorithms,
      typ: 'secevent+jwt',
      issuer: policy.issuer,
      audience: policy.audiences,
      clockTolerance: policy.clockTolerance,
      requiredClaims: ['iss', 'aud', 'jti', 'iat', 'events'],
    }))
  } catch (err) {
    throw refusalOf(err)
  }
  const [header, claims] = body.split('.') as [string, string]
  if (!parsedAsWritten(Buffer.from(header, 'base64url'), protectedHeader) || !parsedAsWritten(Buffer.from(claims, 'base64url'), payload)) {
    throw new SetRefusal('invalid_request', 'The SET has duplicate or unreadable member names')
  }
  if (typeof payload.jti !== 'string' || payload.jti.length === 0 || payload.jti.length > 256) {
    throw new SetRefusal('invalid_request', 'The SET lacks a required claim or has an invalid one')
  }
  const iat = payload.iat!
  if (iat - nowSeconds > Math.max(policy.clockTolerance, MAX_FUTURE_IAT_SECONDS)) {
    throw new SetRefusal('invalid_request', 'The SET is issued in the future')
  }
  if (nowSeconds - iat > policy.maxAge + policy.clockTolerance) throw new SetRefusal('invalid_request', 'The SET is too old')
  if (!isObject(payload.events) || Object.keys(payload.events).length === 0) {
    throw new SetRefusal('invalid_request', 'The SET has no events')
  }
  return payload as SecurityEventToken
}
