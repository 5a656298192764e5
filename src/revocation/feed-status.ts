import type { ResetReason } from '../stores/types.js'

/** `app.revocation.feedStatus()`: how this instance follows the other instances' changes. */
export interface FeedStatus {
  /** The store is ready and its feed (the log, or a subscription) is being followed. */
  connected: boolean
  /** The id of the last log entry applied; null for a store without the log (or before the first read). */
  cursor: string | null
  /** ms between now and the last applied entry's `at` while behind; 0 when caught up (or without the log). */
  lagMs: number
  /** How many times every cached status was dropped since boot. */
  resets: number
  lastResetReason: ResetReason | null
}

/**
 * What the feed has done so far, written by the connection (and its log follower) and
 * read by `feedStatus()`, `health()` and the resets metric.
 */
export class FeedMonitor {
  connected = false
  cursor: string | null = null
  /** `at` of the last applied entry while more were waiting; null once caught up. */
  behindSince: number | null = null
  resets = 0
  lastResetReason: ResetReason | null = null

  constructor (private readonly onReset: (reason: ResetReason) => void = () => {}) {}

  reset (reason: ResetReason): void {
    this.resets++
    this.lastResetReason = reason
    this.onReset(reason)
  }

  status (now = Date.now()): FeedStatus {
    return {
      connected: this.connected,
      cursor: this.cursor,
      lagMs: this.behindSince === null ? 0 : Math.max(0, now - this.behindSince),
      resets: this.resets,
      lastResetReason: this.lastResetReason,
    }
  }
}
