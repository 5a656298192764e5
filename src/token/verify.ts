import { jwtVerify } from 'jose'
import type { JWTHeaderParameters, JWTPayload, JWTVerifyOptions } from '../lib/jose-types.js'
import {
  InvalidTokenError, TokenExpiredError, TokenLifetimeError,
} from '../errors.js'
import { hasCanonicalSegments } from '../lib/canonical-segments.js'
import { parsedAsWritten, segmentParsedAsWritten, segmentStrings } from '../lib/json-as-written.js'
import type { KeySource, ResolvedKey } from './keys.js'
import type { ResolvedOptions } from '../options/options.js'

export interface VerifiedJwt {
  header: JWTHeaderParameters
  payload: JWTPayload
}

/** An `iat` further ahead than this (or clockTolerance) would escape every not-before revocation. */
const MAX_FUTURE_IAT_SECONDS = 60

/** Claims this package relies on must have the type RFC 7519 / RFC 9068 give them. */
const STRING_CLAIMS = ['jti', 'sub', 'client_id', 'azp', 'scope'] as const

/**
 * JWTs of other kinds the same issuer may sign with the same keys: a Security Event Token
 * (RFC 8417 §4.1: recognised by its `typ` or its `events` claim) or a Status List Token is
 * never an access token, whatever its `aud` and `exp` say.
 */
const OTHER_JWT_TYPES = new Set(['secevent+jwt', 'statuslist+jwt'])

const UNREADABLE_MEMBERS = 'The token has duplicate or unreadable member names'
const BACKSLASH = 0x5c

/** Distinct protected headers remembered as checked and shared (a key set has few); past this, each is checked again. */
const MAX_KNOWN_HEADERS = 64

/**
 * The header's own checks, which depend on its bytes alone: each member once and read as
 * written, not a SET or Status List Token by `typ`. Every token of one key carries the
 * same header bytes, so a header that passed is remembered by its encoded text and its
 * parsed object, frozen, is shared by every token that carries it. A header with a
 * backslash is never remembered: jose parses it again for every token, and the runtime
 * may read an escaped name differently each time (see json-as-written.ts).
 */
class KnownHeaders {
  private readonly known = new Map<string, JWTHeaderParameters>()

  /** The header that passed with these bytes before, or undefined: `checked` must see the parse. */
  lookup (encoded: string): JWTHeaderParameters | undefined {
    return this.known.get(encoded)
  }

  checked (encoded: string, header: JWTHeaderParameters): JWTHeaderParameters {
    const known = this.known.get(encoded)
    if (known !== undefined) return known
    const typ = typeof header.typ === 'string' ? header.typ.toLowerCase().replace(/^application\//, '') : ''
    if (OTHER_JWT_TYPES.has(typ)) throw new InvalidTokenError('The token has an unexpected type')
    // jose keeps its decoded bytes to itself: decode again, natively.
    const text = Buffer.from(encoded, 'base64url')
    if (!parsedAsWritten(text, header)) throw new InvalidTokenError(UNREADABLE_MEMBERS)
    if (this.known.size < MAX_KNOWN_HEADERS && !text.includes(BACKSLASH)) this.known.set(encoded, Object.freeze(header))
    return header
  }
}

/**
 * The payload's checks: claims this package relies on have their types, each member once
 * and read as written, not a SET. `strings`: `segmentStrings(encoded)`, read before jose ran.
 */
function checkPayload (encoded: string, strings: number, payload: JWTPayload): void {
  if (payload.events !== undefined) throw new InvalidTokenError('The token has an unexpected type')
  for (const claim of STRING_CLAIMS) {
    if (payload[claim] !== undefined && typeof payload[claim] !== 'string') throw new InvalidTokenError('The token has an invalid claim')
  }
  if (payload.permissions !== undefined && !Array.isArray(payload.permissions)) throw new InvalidTokenError('The token has an invalid claim')
  if (!segmentParsedAsWritten(encoded, strings, payload)) throw new InvalidTokenError(UNREADABLE_MEMBERS)
}

const claimDescriptions: Record<string, string> = {
  iss: 'The token has an unexpected issuer',
  aud: 'The token has an unexpected audience',
  nbf: 'The token is not valid yet',
  typ: 'The token has an unexpected type',
  iat: 'The token has an invalid issued-at time',
  exp: 'The token has an invalid expiry',
}

/** Maps a jose failure onto a fixed description: nothing from the token is echoed. */
function mapJoseError (err: unknown): Error {
  const e = err as { code?: string, claim?: string, reason?: string }
  switch (e?.code) {
    case 'FST_JWT_REVOCATION_UNAVAILABLE':
    case 'FST_JWT_REVOCATION_INVALID_TOKEN':
      return err as Error
    case 'ERR_JWT_EXPIRED':
      return new TokenExpiredError()
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (e.reason === 'missing') return new InvalidTokenError('The token lacks a required claim')
      return new InvalidTokenError(claimDescriptions[e.claim ?? ''] ?? 'The token has an invalid claim')
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return new InvalidTokenError('The token is signed with an algorithm that is not allowed')
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return new InvalidTokenError('The token signature is invalid')
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return new InvalidTokenError('No known key matches the token')
    default:
      return new InvalidTokenError('The token is malformed')
  }
}

const refuse = (err: unknown): never => { throw mapJoseError(err) }

/**
 * Verifies one access token. `compactShape` is `checkTokenCharacters`' answer: whether
 * the token is three base64url segments (`JWS_COMPACT`); anything else is refused here.
 */
export type AccessTokenVerifier = (token: string, compactShape: boolean) => Promise<VerifiedJwt>

/** What one key source's tokens are held to. */
type VerificationPolicy = Pick<ResolvedOptions, 'issuer' | 'audiences' | 'typ' | 'clockTolerance' | 'requiredClaims'> & { keySource: KeySource }

/**
 * Signature, algorithm, issuer, audience, typ, nbf and exp, all by jose. Only tokens
 * that pass reach the lifetime checks, the cache and the store. With `issuers`, the
 * token's unverified `iss` picks the one entry whose keys and rules apply.
 */
export function accessTokenVerifier (options: ResolvedOptions): AccessTokenVerifier {
  const headers = new KnownHeaders()
  // Without `issuers` there is exactly one key source.
  if (options.issuers === null) return keySourceVerifier({ ...options, keySource: options.keySource! }, headers)
  return issuerPickingVerifier(options.issuers.map((entry) => [entry.issuer, keySourceVerifier({
    ...options, keySource: entry.keySource, issuer: [entry.issuer], audiences: entry.audiences, typ: entry.typ,
  }, headers)]))
}

/**
 * The entry is picked by the `iss` as written, read before any key is fetched: a token
 * naming no listed issuer is refused without a request leaving this process. The pick
 * is only a choice of keys: jose then requires the signature from that issuer's keys
 * and `iss` equal to its name, so a token signed by one issuer claiming another fails.
 */
function issuerPickingVerifier (entries: Array<[string, AccessTokenVerifier]>): AccessTokenVerifier {
  const byIssuer = new Map(entries)
  return function verifyAccessTokenOfIssuer (token, compactShape) {
    if (!compactShape || !hasCanonicalSegments(token)) return Promise.reject(new InvalidTokenError('The token is malformed'))
    let verify: AccessTokenVerifier | undefined
    try {
      const issuer = unverifiedIssuer(token)
      verify = issuer === undefined ? undefined : byIssuer.get(issuer)
    } catch (err) {
      return Promise.reject(err)
    }
    if (verify === undefined) return Promise.reject(new InvalidTokenError(claimDescriptions.iss!))
    return verify(token, compactShape)
  }
}

const utf8 = new TextDecoder()

/** The payload's `iss` before verification, read as jose will read it; a payload that reads two ways is refused. */
function unverifiedIssuer (token: string): string | undefined {
  const first = token.indexOf('.')
  const text = Buffer.from(token.slice(first + 1, token.indexOf('.', first + 1)), 'base64url')
  let payload: unknown
  try {
    payload = JSON.parse(utf8.decode(text))
  } catch {
    throw new InvalidTokenError('The token is malformed')
  }
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) throw new InvalidTokenError('The token is malformed')
  if (!parsedAsWritten(text, payload)) throw new InvalidTokenError(UNREADABLE_MEMBERS)
  const { iss } = payload as { iss?: unknown }
  return typeof iss === 'string' ? iss : undefined
}

/**
 * One key source's verifier. jose's options are built once (again only when discovery
 * gives another issuer), and no promise is added around jose's: one reaction runs our
 * checks or maps jose's failure.
 */
function keySourceVerifier (options: VerificationPolicy, headers: KnownHeaders): AccessTokenVerifier {
  let discoveredIssuer: string | undefined
  let joseOptions: JWTVerifyOptions | undefined
  const joseOptionsFor = (resolved: ResolvedKey): JWTVerifyOptions => {
    const discovered = options.issuer === undefined ? resolved.issuer : undefined
    if (joseOptions === undefined || discovered !== discoveredIssuer) {
      discoveredIssuer = discovered
      joseOptions = {
        algorithms: options.keySource.algorithms,
        audience: options.audiences,
        issuer: options.issuer ?? (discovered === undefined ? undefined : [discovered]),
        typ: options.typ,
        clockTolerance: options.clockTolerance,
        requiredClaims: options.requiredClaims,
      }
    }
    return joseOptions
  }
  // One reaction per verification: jose's failures are mapped in it, ours are thrown mapped.
  // What reads the text alone (the header's bytes, the payload's strings) was done before
  // the await, while the token is in cache; the reaction compares it with jose's parse.
  const verifyWith = (token: string, text: TokenText, resolved: ResolvedKey): Promise<VerifiedJwt> =>
    jwtVerify(token, resolved.key, joseOptionsFor(resolved)).then(({ payload, protectedHeader }) => {
      const header = text.knownHeader ?? headers.checked(text.header, protectedHeader)
      checkPayload(text.payload, text.payloadStrings, payload)
      return { header, payload }
    }, refuse)

  return function verifyAccessToken (token, compactShape) {
    // JWS compact only, in canonical base64url: a JWE (five parts), nested or unsigned forms never reach jose.
    if (!compactShape || !hasCanonicalSegments(token)) return Promise.reject(new InvalidTokenError('The token is malformed'))
    try {
      const text = tokenText(token, headers)
      const resolved = options.keySource.resolve()
      return 'then' in resolved
        ? resolved.then((key) => verifyWith(token, text, key), refuse)
        : verifyWith(token, text, resolved)
    } catch (err) {
      return Promise.reject(mapJoseError(err))
    }
  }
}

/** What the token's text says before jose parses it: its segments, and what the checks after need of them. */
interface TokenText {
  header: string
  payload: string
  /** The header that passed with these bytes before, if any. */
  knownHeader: JWTHeaderParameters | undefined
  payloadStrings: number
}

function tokenText (token: string, headers: KnownHeaders): TokenText {
  const first = token.indexOf('.')
  const header = token.slice(0, first)
  const payload = token.slice(first + 1, token.indexOf('.', first + 1))
  return { header, payload, knownHeader: headers.lookup(header), payloadStrings: segmentStrings(payload) }
}

/**
 * Time rules checked on every request, cache hit or not: expiry (a cached token
 * still expires), the lifetime cap and the age cap. Returns nothing or throws.
 */
export function checkTokenTime (payload: JWTPayload, nowSeconds: number, options: ResolvedOptions): void {
  const exp = payload.exp!
  if (nowSeconds - options.clockTolerance >= exp) throw new TokenExpiredError()
  const iat = payload.iat
  if (typeof iat === 'number' && iat - nowSeconds > Math.max(options.clockTolerance, MAX_FUTURE_IAT_SECONDS)) {
    throw new InvalidTokenError('The token has an invalid issued-at time')
  }
  if (options.maxTokenLifetime !== undefined) {
    // Without iat the issuer's intent is unknown: judge what is left of the token instead.
    const lifetime = typeof iat === 'number' ? exp - iat : exp - nowSeconds
    if (lifetime > options.maxTokenLifetime) throw new TokenLifetimeError('The token lifetime exceeds what this API accepts')
  }
  if (options.maxTokenAge !== undefined) {
    if (typeof iat !== 'number') throw new InvalidTokenError('The token lacks a required claim')
    if (nowSeconds - options.clockTolerance - iat > options.maxTokenAge) throw new TokenLifetimeError('The token is older than this API accepts')
  }
}


/**
 * The second (epoch) from which `checkTokenTime` can first refuse the token: its expiry
 * or, with `maxTokenAge`, its age limit. The other rules only get easier with time.
 */
export function timeRulesHoldUntil (payload: JWTPayload, options: ResolvedOptions): number {
  const expires = Math.ceil(payload.exp! + options.clockTolerance)
  if (options.maxTokenAge === undefined) return expires
  return Math.min(expires, Math.floor(payload.iat! + options.clockTolerance + options.maxTokenAge) + 1)
}
