import { acceptedAudiences, clientIdOf, scopesOf, subjectOf } from './claims.js'
import type { Metrics } from './metrics.js'
import type { ResolvedOptions } from './options.js'
import type { Revocation } from './revocation.js'
import type { JWTHeaderParameters, JWTPayload } from 'jose'
import { freshRecord, type TokenCache, type TokenRecord } from './token-cache.js'
import { accessTokenVerifier, checkTokenTime, timeRulesHoldUntil, type VerifiedJwt } from './verify.js'

/** Distinct protected headers shared between records (a key set has few); past this, each keeps its own. */
const MAX_SHARED_HEADERS = 64

/**
 * The order of checks for one token, cheapest first: verified-token cache or jose,
 * then time rules, then revocation. The store is consulted only for tokens whose
 * signature passed. Returns synchronously on a cache hit with a fresh status.
 */
export class Authenticator {
  private readonly accepted: ReadonlySet<string>
  private readonly verify: (token: string) => Promise<VerifiedJwt>
  /** `[aud]` for each accepted audience: most tokens carry one, and records share it. */
  private readonly singleAudience: ReadonlyMap<string, string[]>
  /** Parsed headers by their encoded text: every token of one key has the same bytes, so one frozen object serves them all. */
  private readonly headers = new Map<string, JWTHeaderParameters>()

  constructor (
    private readonly options: ResolvedOptions,
    private readonly cache: TokenCache | null,
    private readonly revocation: Revocation,
    private readonly metrics: Metrics,
  ) {
    this.accepted = new Set(options.audiences)
    this.verify = accessTokenVerifier(options)
    this.singleAudience = new Map(options.audiences.map((aud) => [aud, Object.freeze([aud]) as string[]]))
  }

  /** The token's record from the cache, or undefined: a miss. No allocation, no promise. */
  cached (token: string): TokenRecord | undefined {
    if (this.cache === null) return undefined
    const record = this.cache.get(token)
    this.metrics.cacheLookup(record !== undefined)
    return record
  }

  /** Time rules and revocation for a cached token; synchronous while its status is fresh. */
  recheck (record: TokenRecord): TokenRecord | Promise<TokenRecord> {
    const now = Date.now()
    if (now >= record.recheckAt) checkTokenTime(record.payload, Math.floor(now / 1000), this.options)
    const pending = this.revocation.check(record, now)
    return pending === undefined ? record : pending.then(() => record)
  }

  /** A miss: jose verifies, the time rules run, the record is cached, the store is asked. */
  verifyAndCheck (token: string): Promise<TokenRecord> {
    return this.verify(token).then(({ header, payload }) => {
      const now = Date.now()
      checkTokenTime(payload, Math.floor(now / 1000), this.options)
      const record = freshRecord(token, this.sharedHeader(token, header), payload, this.audiencesOf(payload),
        clientIdOf(payload), subjectOf(payload), scopesOf(payload), timeRulesHoldUntil(payload, this.options) * 1000)
      this.cache?.set(record)
      const pending = this.revocation.check(record, now)
      return pending === undefined ? record : pending.then(() => record)
    })
  }

  private audiencesOf (payload: JWTPayload): string[] {
    return (typeof payload.aud === 'string' ? this.singleAudience.get(payload.aud) : undefined) ??
      acceptedAudiences(payload, this.accepted)
  }

  private sharedHeader (token: string, header: JWTHeaderParameters): JWTHeaderParameters {
    const encoded = token.slice(0, token.indexOf('.'))
    const known = this.headers.get(encoded)
    if (known !== undefined) return known
    if (this.headers.size < MAX_SHARED_HEADERS) this.headers.set(encoded, Object.freeze(header))
    return header
  }
}
