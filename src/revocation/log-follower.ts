import type { FastifyBaseLogger } from 'fastify'
import { issuerMember } from '../stores/change-feed.js'
import type { ChangeListener, LogEntry, LogPage, RevocationChange } from '../stores/types.js'
import type { FeedMonitor } from './feed-status.js'
import { withTimeout } from './store-guard.js'

/** How often the log is read without a wake-up: a lost wake-up costs at most this, never a reset. */
export const LOG_POLL_MS = 1000
/** Entries asked per read; a longer backlog is read page after page. */
export const LOG_PAGE = 1000

/** The cache invalidation a log entry implies. */
export function changeOf (entry: LogEntry): RevocationChange {
  switch (entry.type) {
    case 'token': return { type: 'token', aud: entry.aud, jti: entry.jti }
    case 'tokens': return { type: 'tokens', tokens: entry.tokens }
    case 'client': return { type: 'client', clientId: entry.clientId, ...issuerMember(entry.issuer) }
    case 'subject': return { type: 'subject', subject: entry.subject, ...issuerMember(entry.issuer) }
    case 'session': return { type: 'session', sessionId: entry.sessionId, ...issuerMember(entry.issuer) }
    case 'grant': return { type: 'grant', clientId: entry.clientId }
  }
}

/**
 * Follows a store's ordered log from a cursor: wakes on the store's feed messages and
 * every second, reads what came after the cursor, applies it and moves on. A failed
 * read keeps the cursor, so a disconnect costs nothing once the store answers again;
 * only a cursor the log has trimmed past (a gap) drops every cached status.
 */
export class LogFollower {
  private cursor: string | null = null
  private reading: Promise<void> | null = null
  private again = false
  private timer: NodeJS.Timeout | undefined
  private stopped = false
  private failureLogged = false

  constructor (
    private readonly readLog: (cursor: string | null, limit: number) => Promise<LogPage>,
    private readonly feed: FeedMonitor,
    private readonly apply: ChangeListener,
    private readonly options: { timeout: number, log: FastifyBaseLogger },
  ) {}

  /** Takes the log's current end as the cursor (what came before is what the store answers now), then polls. */
  async start (): Promise<void> {
    if (this.cursor === null) {
      const page = await withTimeout(() => this.readLog(null, 0), this.options.timeout)
      this.cursor = page.cursor
      this.feed.cursor = page.cursor
    }
    this.feed.connected = true
    if (this.timer === undefined && !this.stopped) {
      this.timer = setInterval(() => this.wake(), LOG_POLL_MS)
      this.timer.unref()
    }
  }

  /** Reads the log now (a feed message, the poll); one read at a time, another after it if woken meanwhile. */
  wake (): void {
    if (this.stopped || this.cursor === null) return
    if (this.reading !== null) {
      this.again = true
      return
    }
    this.reading = this.catchUp().finally(() => {
      this.reading = null
      if (this.again && !this.stopped) {
        this.again = false
        this.wake()
      }
    })
  }

  /** Resolves once the read in progress (if any) and any it scheduled are done. */
  async settled (): Promise<void> {
    while (this.reading !== null) await this.reading
  }

  private async catchUp (): Promise<void> {
    try {
      for (;;) {
        const page = await withTimeout(() => this.readLog(this.cursor, LOG_PAGE), this.options.timeout)
        if (this.stopped) return
        this.connected()
        if (page.gap) {
          // Entries were trimmed before this instance read them: what they said is unknown.
          this.feed.reset('gap')
          this.apply({ type: 'reset', reason: 'gap' })
        }
        for (const entry of page.entries) this.apply(changeOf(entry))
        this.cursor = page.cursor
        this.feed.cursor = page.cursor
        const last = page.entries[page.entries.length - 1]
        const more = page.entries.length >= LOG_PAGE
        this.feed.behindSince = more && last !== undefined ? last.at : null
        if (!more) return
      }
    } catch (err) {
      // The cursor stays: the next read resumes where this one stopped.
      if (this.stopped) return
      this.feed.connected = false
      if (!this.failureLogged) {
        this.failureLogged = true
        this.options.log.warn({ err }, 'fastify-jwt-revocation: reading the revocation log failed; resuming from the same position once the store answers')
      }
    }
  }

  private connected (): void {
    if (this.failureLogged) this.options.log.info('fastify-jwt-revocation: reading the revocation log again')
    this.failureLogged = false
    this.feed.connected = true
  }

  stop (): void {
    this.stopped = true
    clearInterval(this.timer)
  }
}
