import type { FastifyBaseLogger } from 'fastify'
import { randomUUID } from 'node:crypto'
import type { IssuerScope, Revocation } from '../revocation/revocation.js'
import { nextSyncDelay, pause } from './backoff.js'
import { ManagementApi, RateLimited, type Auth0BlacklistEntry, type Auth0Grant } from './management-api.js'
import { applyBlacklist, mirrorGrants } from './mirror.js'
import type { ResolvedAuth0SyncOptions } from './options.js'

/** `app.auth0Sync.status()`; times in ms since the epoch, null until it first happens. */
export interface Auth0SyncStatus {
  lastSuccessAt: number | null
  lastErrorAt: number | null
  /** What went wrong last (no secret, no token); null after a success. */
  lastError: string | null
  /** Tokens blacklisted at Auth0 for the synced audiences, as of the last success. */
  tokens: number
  /** Client grants mirrored from Auth0, as of the last success. */
  grants: number
}

/** What `app.auth0Sync` offers. */
export interface Auth0SyncApi {
  /**
   * Resolves once a sync that started after the call has been applied (waiting out a rate
   * limit if Auth0 set one); rejects if that sync failed. Calls made while a sync runs share
   * the one after it.
   */
  syncNow(): Promise<void>
  status(): Auth0SyncStatus
}

/** Rate limits waited out within one sync before it gives up until the next. */
const MAX_WAITS_PER_SYNC = 3

/**
 * One sync reads everything first (every audience's blacklist and complete grant
 * list) and applies only if all of it was read: a failed or partial read changes
 * nothing, so an Auth0 outage never removes what an earlier sync brought in.
 */
export class Auth0Syncer implements Auth0SyncApi {
  private readonly api: ManagementApi
  private readonly closing = new AbortController()
  private readonly holder = randomUUID()
  private readonly leaseName: string
  /** The sync under way, if any. */
  private running: Promise<void> | null = null
  /** The sync that starts once the running one ends: every call made meanwhile resolves with it. */
  private next: Promise<void> | null = null
  private timer: NodeJS.Timeout | undefined
  private failures = 0
  private pausedUntil = 0
  private readonly state: Auth0SyncStatus = { lastSuccessAt: null, lastErrorAt: null, lastError: null, tokens: 0, grants: 0 }

  constructor (
    private readonly options: ResolvedAuth0SyncOptions,
    private readonly audiences: readonly string[],
    private readonly revocation: Revocation,
    /** Whose tokens a grant deleted at the tenant revokes: the tenant's issuer's, when the API accepts several. */
    private readonly scope: IssuerScope,
    private readonly log: FastifyBaseLogger,
  ) {
    this.api = new ManagementApi({ ...options, signal: this.closing.signal })
    this.leaseName = `auth0-sync:${options.base}`
  }

  status (): Auth0SyncStatus {
    return { ...this.state }
  }

  syncNow (): Promise<void> {
    // A call must see what the tenant says after it: the sync under way may have read
    // before the call, so the call waits for the one after — which the calls made in
    // the meantime share, rather than each adding a sync (and calls against the rate limit).
    if (this.next !== null) return this.next
    if (this.running === null) return this.begin()
    this.next = this.running.catch(() => {}).then(() => {
      this.next = null
      return this.begin()
    })
    return this.next
  }

  private begin (): Promise<void> {
    const run = this.runOnce().finally(() => { this.running = null })
    this.running = run
    return run
  }

  /** Starts the background syncs: one now, then every interval. */
  start (): void {
    this.schedule(0)
  }

  async stop (): Promise<void> {
    clearTimeout(this.timer)
    this.timer = undefined
    this.closing.abort()
    await (this.next ?? this.running)?.catch(() => {})
  }

  private schedule (delay: number): void {
    if (this.closing.signal.aborted) return
    this.timer = setTimeout(() => { this.tick().catch(() => {}) }, delay)
    this.timer.unref?.()
  }

  private async tick (): Promise<void> {
    try {
      if (await this.elected()) await this.syncNow()
    } catch (err) {
      // A failed sync is recorded in status() and logged by runOnce; a store that cannot
      // answer the lease is the store's outage, reported by the plugin. The next tick tries again.
      this.log.debug({ err }, 'fastify-jwt-revocation: Auth0 sync skipped')
    } finally {
      this.schedule(nextSyncDelay(this.options.interval, this.failures))
    }
  }

  /** With a store that can hold a lease, one instance polls per interval; the others hear of its changes through the store's feed. */
  private async elected (): Promise<boolean> {
    const store = this.revocation.store
    if (typeof store.lease !== 'function') return true
    // The lease outlives one interval (and its jitter) so the holder keeps it by renewing; a dead holder's lapses soon after.
    return store.lease(this.leaseName, this.holder, Math.round(this.options.interval * 1.5))
  }

  private async runOnce (): Promise<void> {
    try {
      const read = await this.readAll()
      let tokens = 0
      let grants = 0
      for (const { audience, blacklist, clientGrants } of read) {
        await applyBlacklist(this.revocation, audience, blacklist)
        tokens += blacklist.length
        grants += await mirrorGrants(this.revocation, audience, clientGrants, this.scope)
      }
      Object.assign(this.state, { lastSuccessAt: Date.now(), lastError: null, tokens, grants })
      if (this.failures > 0) this.log.info('fastify-jwt-revocation: Auth0 sync works again')
      this.failures = 0
    } catch (err) {
      const message = (err as Error)?.message ?? String(err)
      Object.assign(this.state, { lastErrorAt: Date.now(), lastError: message })
      // A sync cut short by the app closing is not an outage.
      if (this.closing.signal.aborted) throw err
      // Once per outage: the first failure is logged, repeats only at debug level.
      if (this.failures === 0) this.log.error(`fastify-jwt-revocation: Auth0 sync failed (${message}); requests are still served, with what was synced so far`)
      else this.log.debug(`fastify-jwt-revocation: Auth0 sync still failing (${message})`)
      this.failures++
      throw err
    }
  }

  private async readAll (): Promise<Array<{ audience: string, blacklist: Auth0BlacklistEntry[], clientGrants: Auth0Grant[] }>> {
    const read = []
    for (const audience of this.audiences) {
      const blacklist = await this.rateLimited(() => this.api.blacklist(audience))
      const clientGrants = await this.rateLimited(() => this.api.clientGrants(audience))
      read.push({ audience, blacklist, clientGrants })
    }
    return read
  }

  /** Runs `call`, waiting out Auth0's 429s (until x-ratelimit-reset) a few times — never retrying sooner. */
  private async rateLimited<T> (call: () => Promise<T>): Promise<T> {
    for (let waits = 0; ; waits++) {
      const wait = this.pausedUntil - Date.now()
      if (wait > 0) await pause(wait, this.closing.signal)
      if (this.closing.signal.aborted) throw new Error('Auth0 sync stopped: the app is closing')
      try {
        return await call()
      } catch (err) {
        if (!(err instanceof RateLimited) || waits >= MAX_WAITS_PER_SYNC) throw err
        this.pausedUntil = err.retryAt
        this.log.warn(`fastify-jwt-revocation: ${err.message}`)
      }
    }
  }
}
