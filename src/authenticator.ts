import { acceptedAudiences, clientIdOf, scopesOf, subjectOf } from './claims.js'
import type { Metrics } from './metrics.js'
import type { ResolvedOptions } from './options.js'
import type { Revocation } from './revocation.js'
import type { TokenCache, TokenRecord } from './token-cache.js'
import { checkTokenTime, verifyAccessToken } from './verify.js'

/**
 * The order of checks for one token, cheapest first: verified-token cache or jose,
 * then time rules, then revocation. The store is consulted only for tokens whose
 * signature passed. Returns synchronously on a cache hit with a fresh status.
 */
export class Authenticator {
  private readonly accepted: ReadonlySet<string>

  constructor (
    private readonly options: ResolvedOptions,
    private readonly cache: TokenCache | null,
    private readonly revocation: Revocation,
    private readonly metrics: Metrics,
  ) {
    this.accepted = new Set(options.audiences)
  }

  authenticate (token: string): TokenRecord | Promise<TokenRecord> {
    if (this.cache === null) return this.verifyAndCheck(token)
    const cached = this.cache.get(token)
    this.metrics.cacheLookup(cached !== undefined)
    if (cached === undefined) return this.verifyAndCheck(token)
    const now = Date.now()
    checkTokenTime(cached.payload, Math.floor(now / 1000), this.options)
    const pending = this.revocation.check(cached, now)
    return pending === undefined ? cached : pending.then(() => cached)
  }

  private async verifyAndCheck (token: string): Promise<TokenRecord> {
    const { header, payload } = await verifyAccessToken(token, this.options)
    const now = Date.now()
    checkTokenTime(payload, Math.floor(now / 1000), this.options)
    const tokenScopes = scopesOf(payload)
    const record: TokenRecord = {
      header,
      payload,
      audiences: acceptedAudiences(payload, this.accepted),
      clientId: clientIdOf(payload),
      subject: subjectOf(payload),
      tokenScopes,
      scopes: tokenScopes,
      revokedReason: null,
      grantDenied: false,
      state: null,
      checkedAt: 0,
      pending: null,
    }
    // An entry never outlives the token it describes.
    const ttl = (payload.exp! + this.options.clockTolerance) * 1000 - now
    if (this.cache !== null && ttl > 0) this.cache.set(token, record, ttl)
    await this.revocation.check(record, now)
    return record
  }
}
