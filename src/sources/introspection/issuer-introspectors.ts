import type { FastifyBaseLogger } from 'fastify'
import { InvalidTokenError } from '../../errors.js'
import type { ResolvedOptions } from '../../options/options.js'
import type { RoutePolicy } from '../../request/route-policy.js'
import type { TokenCache, TokenRecord } from '../../request/token-cache.js'
import type { Revocation } from '../../revocation/revocation.js'
import { Introspector, type TokenIntrospection } from './introspector.js'

/**
 * With `issuers`: one introspector per entry that has `introspection`, each with its own
 * endpoint, credentials, breaker and health check. A verified token is introspected at its
 * own issuer's endpoint only (its `iss` is the entry whose keys verified it), so no issuer
 * ever sees another's tokens; an opaque token at the one entry that takes them.
 */
export class IssuerIntrospectors implements TokenIntrospection {
  private readonly byIssuer = new Map<string, Introspector>()
  /** The entry with `opaqueTokens: true`, if any: an opaque token names no issuer to pick by. */
  private readonly opaque: Introspector | null = null

  constructor (options: ResolvedOptions, cache: TokenCache | null, revocation: Revocation, log: FastifyBaseLogger) {
    for (const entry of options.issuers ?? []) {
      if (entry.introspection === null) continue
      const introspector = new Introspector({
        ...options,
        issuer: [entry.issuer],
        audiences: entry.audiences,
        keySource: entry.keySource,
        introspection: entry.introspection,
        entryIssuer: entry.issuer,
      }, cache, revocation, log)
      this.byIssuer.set(entry.issuer, introspector)
      if (entry.introspection.opaqueTokens) this.opaque = introspector
    }
  }

  isOpaque (compactShape: boolean): boolean {
    return this.opaque !== null && this.opaque.isOpaque(compactShape)
  }

  admitOpaque (token: string, key: string): Promise<TokenRecord> {
    return this.opaque!.admitOpaque(token, key)
  }

  confirm (token: string, result: TokenRecord | Promise<TokenRecord>, policy: RoutePolicy): TokenRecord | Promise<TokenRecord> {
    if (result instanceof Promise) {
      return policy.introspect || this.opaque !== null ? result.then((record) => this.confirmRecord(token, record, policy)) : result
    }
    return this.confirmRecord(token, result, policy)
  }

  private confirmRecord (token: string, record: TokenRecord, policy: RoutePolicy): TokenRecord | Promise<TokenRecord> {
    if (!policy.introspect && record.opaque !== true) return record
    const { iss } = record.payload
    const introspector = record.opaque === true ? this.opaque : iss === undefined ? undefined : this.byIssuer.get(iss)
    // The route needs the issuer's word and this token's issuer gives none: fail closed.
    if (introspector == null) throw new InvalidTokenError('The token\'s issuer offers no introspection, which this route requires')
    return introspector.confirm(token, record, policy)
  }
}

/**
 * The introspection the options ask for: the `introspection` option's endpoint, one per
 * `issuers` entry that has one, or none.
 */
export function tokenIntrospection (options: ResolvedOptions, cache: TokenCache | null, revocation: Revocation, log: FastifyBaseLogger): TokenIntrospection | null {
  if (options.issuers !== null) {
    return options.issuers.some((entry) => entry.introspection !== null) ? new IssuerIntrospectors(options, cache, revocation, log) : null
  }
  if (options.introspection === null) return null
  return new Introspector({ ...options, keySource: options.keySource!, introspection: options.introspection }, cache, revocation, log)
}
