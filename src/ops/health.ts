import type { IssuerEntry } from '../options/issuers.js'
import type { KeySource } from '../token/keys.js'
import type { StoreGuard } from '../revocation/store-guard.js'
import type { RevocationStore } from '../stores/types.js'
import type { FeedStatus } from '../revocation/feed-status.js'

/** One dependency's state in `app.revocation.health()`. */
export interface HealthCheck {
  status: 'up' | 'down' | 'stale' | 'unknown' | 'none'
  [detail: string]: unknown
}

export interface HealthReport {
  /** `down`: requests that need the store or the keys are refused (or let through unchecked); `degraded`: served, but something is behind. */
  status: 'ok' | 'degraded' | 'down'
  checks: {
    store: HealthCheck & { latencyMs?: number }
    feed: HealthCheck
    keys: HealthCheck
    [extension: string]: HealthCheck
  }
}

/** A check another part of the package (the Auth0 sync) adds to the report. */
export type HealthContributor = () => HealthCheck | Promise<HealthCheck>

// A reserved jti, printable so that every store accepts it as it accepts a token's (a
// PostgreSQL text column refuses a NUL byte): the probe is an ordinary lookup, so it
// proves the store answers the query requests depend on, not merely that a connection
// is open. Its answer is never used, so a token carrying this jti changes nothing.
export const PROBE_JTI = 'fastify-jwt-revocation:health-probe'

export interface HealthSources {
  store: RevocationStore
  guard: StoreGuard
  audience: string
  /** The one key source; null with `issuers`. */
  keySource: KeySource | null
  /** With `issuers`: each entry's key source, reported as `keys:<issuer>`. */
  issuers: readonly Pick<IssuerEntry, 'issuer' | 'keySource'>[] | null
  /** The change feed as last seen: connected (false while it waits for the store), cursor, lag, resets. */
  feedStatus: () => FeedStatus
}

/**
 * Readiness for probes and dashboards. The store is asked on every report (bounded by
 * `storeTimeout`, through the same guard as requests: a probe's success closes the
 * breaker, its failure leaves requests alone); the feed and key source report what they
 * last saw. No error text is included: it may name hosts or credentials, and the log
 * carries it.
 */
export class HealthReporter {
  private readonly contributors = new Map<string, HealthContributor>()

  constructor (private readonly sources: HealthSources) {}

  add (name: string, contributor: HealthContributor): void {
    if (['store', 'feed', 'keys'].includes(name) || name.startsWith('keys:') || this.contributors.has(name)) {
      throw new TypeError(`fastify-jwt-revocation: a health check named "${name}" exists already`)
    }
    this.contributors.set(name, contributor)
  }

  async report (): Promise<HealthReport> {
    const { store, guard, audience, keySource, issuers } = this.sources
    const started = performance.now()
    const answered = await guard.probe(() => store.lookup({ audiences: [audience], jti: PROBE_JTI, includeGrant: false }))
    const storeCheck: HealthReport['checks']['store'] = answered
      ? { status: 'up', latencyMs: Math.round((performance.now() - started) * 10) / 10 }
      : { status: 'down' }
    const feed = feedCheck(store, this.sources.feedStatus())
    let checks: HealthReport['checks']
    if (issuers === null) {
      checks = { store: storeCheck, feed, keys: keyCheck(keySource!) }
    } else {
      const each = issuers.map(({ issuer, keySource }): [string, HealthCheck] => [`keys:${issuer}`, { ...keyCheck(keySource), issuer }])
      checks = { store: storeCheck, feed, keys: { status: keysOfAll(each.map(([, check]) => check.status)), issuers: issuers.length }, ...Object.fromEntries(each) }
    }
    for (const [name, contributor] of this.contributors) {
      checks[name] = await Promise.resolve().then(contributor).catch((): HealthCheck => ({ status: 'down' }))
    }
    return { status: overall(checks), checks }
  }
}

function keyCheck (keySource: KeySource): HealthCheck {
  return { status: keySource.state?.() ?? 'up', source: keySource.option }
}

/**
 * `keys` with several issuers: `down` only when no issuer's tokens can be verified (the
 * instance serves nobody); one issuer failing leaves the others served, so it reads as
 * `stale`, and its own `keys:<issuer>` check says which.
 */
function keysOfAll (statuses: HealthCheck['status'][]): HealthCheck['status'] {
  if (statuses.every((s) => s === 'down')) return 'down'
  if (statuses.some((s) => s === 'down' || s === 'stale')) return 'stale'
  return statuses.some((s) => s === 'unknown') ? 'unknown' : 'up'
}

function overall (checks: HealthReport['checks']): HealthReport['status'] {
  if (checks.store.status === 'down' || checks.keys.status === 'down') return 'down'
  const behind = Object.values(checks).some((c) => c.status === 'down' || c.status === 'stale')
  return behind ? 'degraded' : 'ok'
}

/**
 * The feed: the log followed from a cursor (`log: true`, with the cursor and the lag), a
 * lossy subscription, or none; resets since boot either way.
 */
function feedCheck (store: RevocationStore, status: FeedStatus): HealthCheck {
  const log = typeof store.readLog === 'function'
  if (!log && store.subscribe === undefined) return { status: 'none', resets: status.resets, lastResetReason: status.lastResetReason }
  return {
    status: status.connected ? 'up' : 'down',
    log,
    ...(log ? { cursor: status.cursor, lagMs: status.lagMs } : {}),
    resets: status.resets,
    lastResetReason: status.lastResetReason,
  }
}
