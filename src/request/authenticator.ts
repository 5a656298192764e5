import type { FastifyReply, FastifyRequest } from 'fastify'
import { bindingOf, type SenderBinding } from '../binding/sender.js'
import { acceptedAudiences, clientIdOf, scopesOf, subjectOf } from '../token/claims.js'
import type { DpopProof } from '../binding/dpop/proof.js'
import { checkTokenCharacters } from './extract.js'
import type { Metrics } from '../ops/metrics.js'
import type { ResolvedOptions } from '../options/options.js'
import type { Revocation } from '../revocation/revocation.js'
import type { JWTPayload } from '../lib/jose-types.js'
import { freshRecord, tokenDigest, type TokenCache, type TokenRecord } from './token-cache.js'
import { accessTokenVerifier, checkTokenTime, timeRulesHoldUntil, type AccessTokenVerifier } from '../token/verify.js'

/** Distinct `scope` claims shared between records (clients ask for few combinations); past this, each keeps its own. */
const MAX_SHARED_SCOPES = 1024

/**
 * The order of checks for one token, cheapest first: verified-token cache or jose,
 * then time rules, then revocation. The store is consulted only for tokens whose
 * signature passed. Returns synchronously on a cache hit with a fresh status.
 */
export class Authenticator {
  private readonly accepted: ReadonlySet<string>
  private readonly verify: AccessTokenVerifier
  /** `[aud]` for each accepted audience: most tokens carry one, and records share it. */
  private readonly singleAudience: ReadonlyMap<string, string[]>
  /** Scope lists by the `scope` claim's text, for tokens without `permissions`: one frozen array serves them all. */
  private readonly scopeLists = new Map<string, string[]>()

  constructor (
    private readonly options: ResolvedOptions,
    private readonly cache: TokenCache | null,
    private readonly revocation: Revocation,
    private readonly metrics: Metrics,
    private readonly senders: SenderBinding,
  ) {
    this.accepted = new Set(options.audiences)
    this.verify = accessTokenVerifier(options)
    this.singleAudience = new Map(options.audiences.map((aud) => [aud, Object.freeze([aud]) as string[]]))
  }

  /** The token's key in the verified-token cache (its digest), computed once per request. */
  cacheKey (token: string): string {
    return this.cache === null ? '' : tokenDigest(token)
  }

  /** The record cached under `key`, or undefined: a miss. No promise. */
  cached (key: string): TokenRecord | undefined {
    if (this.cache === null) return undefined
    const record = this.cache.get(key)
    this.metrics.cacheLookup(record !== undefined)
    return record
  }

  /** Time rules and revocation for a cached token; synchronous while its status is fresh. */
  recheck (record: TokenRecord, request: FastifyRequest): TokenRecord | Promise<TokenRecord> {
    if (record.binding !== null) this.senders.checkBearer(record.binding, request)
    return this.recheckStatus(record)
  }

  /**
   * A request with the DPoP scheme: the proof first (signature, claims, nonce), then the
   * token from the cache or jose, bound to the proof's key, then revocation, and last the
   * proof's `jti`, claimed once across instances.
   */
  async authenticateDpop (request: FastifyRequest, reply: FastifyReply): Promise<{ token: string, record: TokenRecord }> {
    const { token, digest, proof } = await this.senders.proveDpop(request, reply)
    const key = this.cache === null ? '' : digest
    const cached = this.cached(key)
    let record: TokenRecord
    if (cached !== undefined) {
      this.senders.checkDpop(cached.binding, proof, request)
      // A fresh status is answered at once: no await, so no extra turn of the microtask queue.
      const checked = this.recheckStatus(cached)
      record = checked instanceof Promise ? await checked : checked
    } else {
      record = await this.verifyAndCheck(token, key, request, checkTokenCharacters(token, true), proof)
    }
    const claiming = this.senders.claimProof(proof)
    if (claiming !== undefined) await claiming
    return { token, record }
  }

  private recheckStatus (record: TokenRecord): TokenRecord | Promise<TokenRecord> {
    const now = Date.now()
    if (now >= record.recheckAt) checkTokenTime(record.payload, Math.floor(now / 1000), this.options)
    const pending = this.revocation.check(record, now)
    return pending === undefined ? record : pending.then(() => record)
  }

  /**
   * A miss: jose verifies, the time rules run, the record is cached under `key`, the
   * binding is proven (`proof` for a DPoP request), the store is asked: never for a
   * token whose binding this request does not prove. `compactShape`: what
   * `checkTokenCharacters` answered for the token.
   */
  verifyAndCheck (token: string, key: string, request: FastifyRequest, compactShape: boolean, proof?: DpopProof): Promise<TokenRecord> {
    return this.verify(token, compactShape).then(({ header, payload }) => {
      const now = Date.now()
      checkTokenTime(payload, Math.floor(now / 1000), this.options)
      const binding = bindingOf(payload)
      const record = freshRecord(header, payload, this.audiencesOf(payload), clientIdOf(payload), subjectOf(payload),
        this.sharedScopes(payload), timeRulesHoldUntil(payload, this.options) * 1000, binding)
      this.cache?.set(key, record)
      if (proof !== undefined) this.senders.checkDpop(binding, proof, request)
      else if (binding !== null) this.senders.checkBearer(binding, request)
      const pending = this.revocation.check(record, now)
      return pending === undefined ? record : pending.then(() => record)
    })
  }

  private audiencesOf (payload: JWTPayload): string[] {
    return (typeof payload.aud === 'string' ? this.singleAudience.get(payload.aud) : undefined) ??
      acceptedAudiences(payload, this.accepted)
  }

  private sharedScopes (payload: JWTPayload): string[] {
    const text = payload.scope
    if (typeof text !== 'string' || payload.permissions !== undefined) return Object.freeze(scopesOf(payload)) as string[]
    const known = this.scopeLists.get(text)
    if (known !== undefined) return known
    const scopes = Object.freeze(scopesOf(payload)) as string[]
    if (this.scopeLists.size < MAX_SHARED_SCOPES) this.scopeLists.set(text, scopes)
    return scopes
  }
}
