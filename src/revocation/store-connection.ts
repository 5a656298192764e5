import type { FastifyBaseLogger } from 'fastify'
import { isPackageError } from '../errors.js'
import { FIRST_PAUSE_MS, withTimeout, type StoreGuard } from './store-guard.js'
import type { FeedMonitor } from './feed-status.js'
import { LogFollower } from './log-follower.js'
import type { ChangeListener, RevocationChange, RevocationStore } from '../stores/types.js'

/**
 * The store's life beside the app's: readied and its change feed connected at boot,
 * without letting an unreachable store stop the boot; released at close in an order
 * that never waits on the user's own clients.
 */
export class StoreConnection {
  private readonly store: RevocationStore
  private readonly guard: StoreGuard
  private readonly timeout: number
  private readonly log: FastifyBaseLogger
  private readonly onChange: ChangeListener
  private unsubscribe: (() => Promise<void>) | undefined
  private retryTimer: NodeJS.Timeout | undefined
  private retries = 0
  private readonly maxPause: number
  private stopped = false
  private refusalLogged = false
  private readonly feed: FeedMonitor
  /** Set when the store keeps the log: changes made elsewhere are read from it, not from the feed. */
  readonly follower: LogFollower | null

  constructor (store: RevocationStore, guard: StoreGuard, options: { timeout: number, retryAfter: number, log: FastifyBaseLogger, feed: FeedMonitor, onChange: ChangeListener }) {
    this.store = store
    this.maxPause = options.retryAfter * 1000
    this.guard = guard
    this.timeout = options.timeout
    this.log = options.log
    this.feed = options.feed
    const apply = options.onChange
    const readLog = store.readLog
    if (typeof readLog === 'function') {
      const follower = new LogFollower((cursor, limit) => readLog.call(store, cursor, limit), this.feed, apply, options)
      this.follower = follower
      // Following the log, a feed message (whatever it says, a reset too) only means "read the log now".
      this.onChange = () => follower.wake()
    } else {
      this.follower = null
      this.onChange = (change: RevocationChange) => {
        if (change.type === 'reset') this.feed.reset(change.reason ?? 'reconnect')
        apply(change)
      }
    }
  }

  /** True once the store is ready and its change feed (if any) is connected. */
  get connected (): boolean {
    return this.feed.connected
  }

  /**
   * Readies the store and connects its feed within `storeTimeout`. A store that refuses
   * on purpose (locked, corrupt, too new a schema) fails the boot; one that does not
   * answer is logged once and retried in the background while requests are answered
   * per `onStoreError`.
   */
  async open (): Promise<void> {
    try {
      await this.attempt()
    } catch (err) {
      if (isPackageError(err)) throw err
      const cause = (err as Error)?.message ?? String(err)
      this.guard.failed(err, `${this.store.constructor.name} unreachable at startup (${cause}); retrying in the background`)
      this.retryLater()
    }
  }

  private async attempt (): Promise<void> {
    if (this.store.ready) await withTimeout(() => this.store.ready!(), this.timeout)
    if (this.store.subscribe && this.unsubscribe === undefined) {
      this.unsubscribe = await withTimeout(() => this.store.subscribe!(this.onChange), this.timeout)
    }
    if (this.follower !== null) await this.follower.start()
    this.feed.connected = true
  }

  private retryLater (): void {
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined
      this.attempt().then(() => {
        if (this.stopped) return this.stopFeed()
        this.guard.answered()
        // Without the log, whatever changed while the feed was not connected is unknown:
        // as after a reconnect. With it, the follower starts at the end of a log whose
        // earlier entries the store already answers: nothing was cached from it meanwhile.
        if (this.follower === null) this.onChange({ type: 'reset', reason: 'reconnect' })
      }, (err: unknown) => {
        if (this.stopped) return
        // A store that came back refusing on purpose (e.g. a wrong database or password)
        // is no longer an outage: say so once, and keep trying in case it is fixed.
        if (isPackageError(err) && !this.refusalLogged) {
          this.refusalLogged = true
          this.log.error({ err }, `fastify-jwt-revocation: ${(err as Error).message}`)
        }
        this.retryLater()
      })
    }, Math.min(this.maxPause, FIRST_PAUSE_MS * 2 ** this.retries++))
    this.retryTimer.unref()
  }

  /**
   * Stops the change feed. Run before the app's own `onClose` hooks (in `preClose`): a
   * PostgreSQL feed holds a client of the user's pool, and `pool.end()` waits for it.
   */
  async stopFeed (): Promise<void> {
    this.stopped = true
    clearTimeout(this.retryTimer)
    this.follower?.stop()
    const unsubscribe = this.unsubscribe
    this.unsubscribe = undefined
    if (unsubscribe) await this.bounded('stopping the change feed', unsubscribe)
  }

  /** Releases what the store itself opened (files, its subscriber connection); the user's clients stay the user's. */
  async close (): Promise<void> {
    await this.stopFeed()
    if (this.store.close) await this.bounded('closing the store', () => this.store.close!())
  }

  /** Shutdown never hangs on a store that does not answer: it is logged and left behind. */
  private async bounded (what: string, run: () => Promise<void>): Promise<void> {
    try {
      await withTimeout(run, this.timeout)
    } catch (err) {
      this.log.warn({ err }, `fastify-jwt-revocation: ${what} did not complete`)
    }
  }
}
