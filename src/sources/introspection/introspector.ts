import type { FastifyBaseLogger } from 'fastify'
import type { JWTHeaderParameters, JWTPayload } from '../../lib/jose-types.js'
import { createHash } from 'node:crypto'
import { Breaker } from '../../lib/breaker.js'
import { acceptedAudiences, clientIdOf, scopesOf, subjectOf } from '../../token/claims.js'
import { InvalidTokenError, ServiceUnavailableError } from '../../errors.js'
import { fetchJson } from '../../lib/fetch.js'
import type { ResolvedOptions } from '../../options/options.js'
import { revokedError, type Revocation } from '../../revocation/revocation.js'
import type { RoutePolicy } from '../../request/route-policy.js'
import { FIRST_PAUSE_MS } from '../../revocation/store-guard.js'
import { freshRecord, type TokenCache, type TokenRecord } from '../../request/token-cache.js'
import { bindingOf } from '../../binding/sender.js'
import { checkTokenTime, timeRulesHoldUntil } from '../../token/verify.js'
import type { ResolvedIntrospectionOptions } from './options.js'
import type { KeySource } from '../../token/keys.js'

// RFC 7662: the issuer's own word on a token, as one more answer source after the
// local checks. Its cache rule is the package's: an `active` answer is reused for at
// most `cache` and never past the token's expiry, and a revocation (the issuer's
// `active: false`, the store, a feed) always wins over a cached answer.

/** Largest introspection answer read: a token's claims, not a document. */
const MAX_ANSWER_BYTES = 16 * 1024

/** The claims of an answer that stand for a token's (RFC 7662 §2.2). */
const ANSWER_CLAIMS = ['iss', 'aud', 'exp', 'iat', 'nbf', 'scope', 'client_id', 'sub', 'jti', 'cnf'] as const
const STRING_CLAIMS = ['iss', 'scope', 'client_id', 'sub', 'jti'] as const
const TIME_CLAIMS = ['exp', 'iat', 'nbf'] as const

/** RFC 7662 `token_type` (or Keycloak's `typ`) values of an access token. */
const ACCESS_TOKEN_TYPES = new Set(['bearer', 'dpop', 'at+jwt', 'application/at+jwt'])

/** An opaque token has no JOSE header: `request.auth.header` is empty. */
const OPAQUE_HEADER = Object.freeze({}) as JWTHeaderParameters

type Answer = { active: true, claims: Record<string, unknown> } | { active: false }
/** What one call to the endpoint came to: an answer, an outage, or an issuer that cannot answer for this token. */
type Outcome = Answer | { down: true } | { misconfigured: true }

const unavailable = () => new ServiceUnavailableError('Token introspection is unavailable')

export interface IntrospectorOptions extends ResolvedOptions {
  introspection: ResolvedIntrospectionOptions
  keySource: KeySource
  /**
   * With `issuers`: the entry this endpoint answers for. Its health check is named
   * `introspection:<issuer>`, and an opaque token's answer without `iss` is its issuer's.
   */
  entryIssuer?: string
}

/** What the plugin asks of introspection, whether one issuer's endpoint or one per issuer. */
export interface TokenIntrospection {
  isOpaque (compactShape: boolean): boolean
  admitOpaque (token: string, key: string): Promise<TokenRecord>
  confirm (token: string, result: TokenRecord | Promise<TokenRecord>, policy: RoutePolicy): TokenRecord | Promise<TokenRecord>
}

export class Introspector implements TokenIntrospection {
  private readonly config: ResolvedIntrospectionOptions
  private readonly accepted: ReadonlySet<string>
  private readonly breaker: Breaker
  /** One call per token at a time; every request for it waits on the same answer. */
  private readonly inflight = new Map<string, Promise<Outcome>>()
  /** Whether the endpoint has answered yet (for the health report). */
  private answered = false
  /** Configuration problems already logged (each once). */
  private readonly logged = new Set<string>()

  constructor (
    private readonly options: IntrospectorOptions,
    private readonly cache: TokenCache | null,
    private readonly revocation: Revocation,
    private readonly log: FastifyBaseLogger,
  ) {
    this.config = options.introspection
    this.accepted = new Set(options.audiences)
    this.breaker = new Breaker({ pause: Math.min(FIRST_PAUSE_MS, options.retryAfter * 1000), maxPause: options.retryAfter * 1000 })
    // In `app.revocation.health()`: a failing endpoint makes the report `degraded`.
    const issuer = options.entryIssuer
    const state = () => this.breaker.isOpen ? 'down' : this.answered ? 'up' : 'unknown'
    revocation.addHealthCheck(issuer === undefined ? 'introspection' : `introspection:${issuer}`, () => issuer === undefined ? { status: state() } : { status: state(), issuer })
  }

  /** A token this introspector answers for instead of jose: not a JWS (`compactShape`, from `checkTokenCharacters`), with `opaqueTokens`. */
  isOpaque (compactShape: boolean): boolean {
    return this.config.opaqueTokens && !compactShape
  }

  /** A cache miss of an opaque token: its record from the issuer's answer, then the same checks as a JWT's. */
  admitOpaque (token: string, key: string): Promise<TokenRecord> {
    return this.ask(token).then((outcome) => {
      // Unknown to us and unknown to the issuer: a bad token, not a revocation to record.
      if (!('active' in outcome)) throw this.refusal(outcome, false)
      if (!outcome.active) throw new InvalidTokenError('The token is not active')
      const now = Date.now()
      return this.opaqueRecord(token, outcome.claims, now).then((record) => {
        this.cache?.set(key, record)
        const pending = this.revocation.check(record, now)
        return pending === undefined ? record : pending.then(() => record)
      })
    })
  }

  /**
   * After the local checks passed: the issuer's answer where the route asks for it (and
   * for every opaque token). Synchronous while the cached answer holds.
   */
  confirm (token: string, result: TokenRecord | Promise<TokenRecord>, policy: RoutePolicy): TokenRecord | Promise<TokenRecord> {
    if (result instanceof Promise) {
      return policy.introspect || this.config.opaqueTokens ? result.then((record) => this.confirmRecord(token, record, policy.introspect)) : result
    }
    return this.confirmRecord(token, result, policy.introspect)
  }

  private confirmRecord (token: string, record: TokenRecord, introspect: boolean): TokenRecord | Promise<TokenRecord> {
    if (!introspect && record.opaque !== true) return record
    if (record.introspectedUntil !== undefined && record.introspectedUntil > Date.now()) return record
    return this.ask(token).then((outcome) => {
      if (!('active' in outcome)) {
        // A JWT verified here may pass while the issuer is down, if the owner chose so.
        if ('down' in outcome && record.opaque !== true && this.options.onStoreError === 'allow') return record
        throw this.refusal(outcome, record.opaque !== true)
      }
      if (!outcome.active) return this.revoked(record)
      const exp = typeof outcome.claims.exp === 'number' ? outcome.claims.exp : record.payload.exp!
      record.introspectedUntil = this.answerHoldsUntil(Math.min(exp, record.payload.exp!))
      return record
    })
  }

  /** ms until which an `active` answer is reused: at most `cache`, never past `exp` (seconds). */
  private answerHoldsUntil (exp: number): number {
    return Math.min(Date.now() + this.config.cache, exp * 1000)
  }

  /**
   * The issuer says the token is no longer active: refused here from now on, and its `jti`
   * (an opaque token's digest) revoked in the store, so every instance refuses it without asking.
   */
  private revoked (record: TokenRecord): never {
    record.revokedReason = 'introspection'
    const jti = record.payload.jti
    if (typeof jti === 'string') {
      const iss = record.payload.iss
      const author = { actor: typeof iss === 'string' ? `introspection:${iss}` : 'introspection', reason: 'the issuer reports the token inactive', source: 'introspection' } as const
      this.revocation.revokeToken({ jti, aud: record.audiences[0]!, exp: record.payload.exp! }, author).catch((err: unknown) => {
        this.log.warn({ err }, 'fastify-jwt-revocation: a token the issuer reports inactive could not be revoked in the store')
      })
    }
    throw revokedError(record, 'introspection')
  }

  private refusal (outcome: { down: true } | { misconfigured: true }, jwt: boolean): Error {
    if ('misconfigured' in outcome) {
      if (jwt) this.logOnce('jwt', 'fastify-jwt-revocation: the issuer cannot introspect JWTs (400 unsupported_token_type): introspect: true routes answer 503 until an endpoint that can is configured')
      else this.logOnce('opaque', 'fastify-jwt-revocation: the issuer cannot introspect its opaque tokens (400 unsupported_token_type): they are answered 503')
    }
    return unavailable()
  }

  private ask (token: string): Promise<Outcome> {
    let pending = this.inflight.get(token)
    if (pending === undefined) {
      pending = this.call(token).finally(() => this.inflight.delete(token))
      this.inflight.set(token, pending)
    }
    return pending
  }

  private async call (token: string): Promise<Outcome> {
    if (!this.breaker.allow()) return { down: true }
    let endpoint: string
    try {
      endpoint = await this.endpoint()
    } catch (err) {
      this.failed(err)
      return { down: true }
    }
    let status: number
    let body: unknown
    try {
      ({ status, body } = await fetchJson(endpoint, {
        method: 'POST',
        headers: { authorization: this.config.authorization },
        form: { token, token_type_hint: 'access_token' },
        timeout: this.options.storeTimeout,
        maxBytes: MAX_ANSWER_BYTES,
        allowedOrigins: this.config.origins,
      }))
    } catch (err) {
      this.failed(err)
      return { down: true }
    }
    const answer = status === 200 ? answerOf(body) : undefined
    if (answer !== undefined) {
      this.answered = true
      if (this.breaker.succeeded()) this.log.info('fastify-jwt-revocation: introspection endpoint reachable again')
      return answer
    }
    if (status === 400 && (body as { error?: unknown } | undefined)?.error === 'unsupported_token_type') {
      this.breaker.succeeded()
      return { misconfigured: true }
    }
    if (status === 401 || status === 403) this.logOnce('client', `fastify-jwt-revocation: the introspection endpoint refused this API's client credentials (${status})`)
    this.failed(new Error(`introspection endpoint answered ${status}${status === 200 ? ' without a valid answer' : ''}`))
    return { down: true }
  }

  private failed (err: unknown): void {
    if (this.breaker.failed()) this.log.error({ err }, 'fastify-jwt-revocation: introspection failed; tokens that need the issuer\'s answer are refused (503) until it answers')
  }

  private logOnce (kind: string, message: string): void {
    if (this.logged.has(kind)) return
    this.logged.add(kind)
    this.log.error(message)
  }

  /** The configured endpoint, or the one discovery names, if it is on an allowed origin. */
  private async endpoint (): Promise<string> {
    if (this.config.endpoint !== undefined) return this.config.endpoint.href
    const discovered = (await this.options.keySource.resolve()).introspectionEndpoint
    let origin: string | undefined
    try {
      origin = discovered === undefined ? undefined : new URL(discovered).origin
    } catch {}
    if (origin === undefined || !this.config.origins.includes(origin)) {
      const problem = discovered === undefined ? 'names no introspection_endpoint' : `names an introspection_endpoint off the allowed origins (${discovered})`
      this.logOnce('discovery', `fastify-jwt-revocation: the discovery document ${problem}; set introspection.endpoint or introspection.allowedOrigins`)
      throw new Error(`discovery document ${problem}`)
    }
    return discovered!
  }

  private async expectedIssuers (): Promise<readonly string[] | undefined> {
    if (this.options.issuer !== undefined) return this.options.issuer
    const { issuer } = await this.options.keySource.resolve()
    return issuer === undefined ? undefined : [issuer]
  }

  /** An opaque token's record: the answer's claims pass the checks a JWT's claims pass. */
  private async opaqueRecord (token: string, claims: Record<string, unknown>, now: number): Promise<TokenRecord> {
    // A refresh token (or any other kind) the issuer also introspects is not an access token.
    const kind = claims.token_type ?? claims.typ
    if (kind !== undefined && (typeof kind !== 'string' || !ACCESS_TOKEN_TYPES.has(kind.toLowerCase()))) throw new InvalidTokenError('The token has an unexpected type')
    const payload = payloadOf(claims)
    // Without a jti, the token's digest identifies it, so the store can revoke it.
    payload.jti ??= createHash('sha256').update(token).digest('base64url')
    // With `issuers`, the endpoint that answered says whose token it is (RFC 7662 makes `iss` optional).
    if (this.options.entryIssuer !== undefined) payload.iss ??= this.options.entryIssuer
    const issuers = await this.expectedIssuers()
    if (payload.iss !== undefined && issuers !== undefined && !issuers.includes(payload.iss)) throw new InvalidTokenError('The token has an unexpected issuer')
    const audiences = acceptedAudiences(payload, this.accepted)
    if (audiences.length === 0) throw new InvalidTokenError('The token has an unexpected audience')
    if (this.options.requiredClaims.some((claim) => payload[claim] === undefined)) throw new InvalidTokenError('The token lacks a required claim')
    const nowSeconds = Math.floor(now / 1000)
    if (payload.nbf !== undefined && payload.nbf > nowSeconds + this.options.clockTolerance) throw new InvalidTokenError('The token is not valid yet')
    checkTokenTime(payload, nowSeconds, this.options)
    // A sender-constrained opaque token is not taken: its proof is checked only on the JWT path.
    if (bindingOf(payload) !== null) throw new InvalidTokenError('The token is bound to a key and this request does not prove it')
    const record = freshRecord(OPAQUE_HEADER, payload, audiences, clientIdOf(payload), subjectOf(payload),
      scopesOf(payload), timeRulesHoldUntil(payload, this.options) * 1000, null)
    record.opaque = true
    record.introspectedUntil = this.answerHoldsUntil(payload.exp!)
    return record
  }
}

/** RFC 7662 §2.2: `active` is a boolean; anything else is not an answer. */
function answerOf (body: unknown): Answer | undefined {
  if (typeof body !== 'object' || body === null || typeof (body as { active?: unknown }).active !== 'boolean') return undefined
  const claims = body as Record<string, unknown>
  return claims.active === true ? { active: true, claims } : { active: false }
}

/** The answer's token claims, typed as a JWT's must be; a claim of the wrong type refuses the token. */
function payloadOf (claims: Record<string, unknown>): JWTPayload {
  const payload: Record<string, unknown> = {}
  for (const claim of ANSWER_CLAIMS) if (claims[claim] !== undefined) payload[claim] = claims[claim]
  const wrongType = STRING_CLAIMS.some((c) => payload[c] !== undefined && typeof payload[c] !== 'string') ||
    TIME_CLAIMS.some((c) => payload[c] !== undefined && !Number.isFinite(payload[c])) ||
    (payload.aud !== undefined && typeof payload.aud !== 'string' && !(Array.isArray(payload.aud) && payload.aud.every((a) => typeof a === 'string')))
  if (wrongType) throw new InvalidTokenError('The token has an invalid claim')
  return payload as JWTPayload
}
