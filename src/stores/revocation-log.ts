import { InvalidArgumentError } from '../errors.js'
import { parseDuration, type Duration } from '../options/duration.js'
import type { ChangeAuthor, HistoryFilter, LogEntry, LoggedChange, LogPage } from './types.js'

// The ordered log kept in this process by MemoryStore and FileStore: entries numbered
// 1, 2, 3, … (the id as a decimal string), kept oldest first and trimmed from the head
// by age and by count. Ids are never reused: the number of the last trimmed entry is
// kept, so a cursor older than it is a gap and a cursor past the end (a log that is not
// the one it came from) is one too.

/** The log options every built-in store takes. */
export interface LogOptions {
  /** How long log entries are kept: seconds, or a string such as '30d' (default). */
  logRetention?: Duration
  /** Most log entries kept; the oldest are trimmed past it. Default 1,000,000. */
  logMaxEntries?: number
}

export const DEFAULT_LOG_RETENTION = '30d'
export const DEFAULT_LOG_MAX_ENTRIES = 1_000_000

/** `logRetention` in ms and `logMaxEntries`, checked; `store` names the store in messages. */
export function logLimits (options: LogOptions, store: string): { retentionMs: number, maxEntries: number } {
  const retention = parseDuration(options.logRetention ?? DEFAULT_LOG_RETENTION, `${store}: logRetention`, { unit: 'seconds', min: 1, example: DEFAULT_LOG_RETENTION })
  const maxEntries = options.logMaxEntries ?? DEFAULT_LOG_MAX_ENTRIES
  if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) throw new TypeError(`${store}: logMaxEntries must be a positive integer`)
  return { retentionMs: retention * 1000, maxEntries }
}

/** The entry a write makes: the change, and who made it and why. */
export function logEntryOf (change: LoggedChange, author: ChangeAuthor | undefined, id: string, at: number): LogEntry {
  return { ...change, id, at, actor: author?.actor ?? null, reason: author?.reason ?? null, source: author?.source ?? 'api' }
}

/** A copy a caller may keep or change without touching the log. */
function copyEntry (entry: LogEntry): LogEntry {
  const copy = { ...entry }
  if (copy.type === 'tokens') copy.tokens = copy.tokens.map((t) => ({ aud: t.aud, jti: t.jti }))
  if (copy.type === 'grant' && copy.scope !== undefined) copy.scope = [...copy.scope]
  return copy
}

/** Parses a cursor or a `from` this log handed out. */
function position (value: string, name: string): number {
  if (!/^\d{1,15}$/.test(value)) throw new InvalidArgumentError(`${name} must be a position in the revocation log`)
  return Number(value)
}

/** Whether an entry matches every filter given (aud, clientId, subject, jti, since, until). */
export function matchesHistory (entry: LogEntry, filter: HistoryFilter): boolean {
  if (filter.since !== undefined && entry.at < filter.since) return false
  if (filter.until !== undefined && entry.at >= filter.until) return false
  const { aud, clientId, subject, jti } = filter
  if (aud !== undefined) {
    const ok = entry.type === 'token' ? entry.aud === aud
      : entry.type === 'tokens' ? entry.tokens.some((t) => t.aud === aud)
        : entry.type === 'client' ? entry.audience === aud || entry.audience === '*'
          : entry.type === 'grant' ? entry.audience === aud
            : false
    if (!ok) return false
  }
  if (clientId !== undefined && !((entry.type === 'client' || entry.type === 'grant') && entry.clientId === clientId)) return false
  if (subject !== undefined && !(entry.type === 'subject' && entry.subject === subject)) return false
  if (jti !== undefined) {
    const ok = entry.type === 'token' ? entry.jti === jti : entry.type === 'tokens' && entry.tokens.some((t) => t.jti === jti)
    if (!ok) return false
  }
  return true
}

export class RevocationLog {
  /** Kept entries, oldest first, from `entries[head]`; the ids are increasing. */
  private entries: LogEntry[] = []
  private head = 0
  /** The id of the last entry trimmed (0: none yet); a cursor before it missed entries. */
  floor = 0
  /** The id of the last entry written (or of the floor when the log was emptied). */
  last = 0
  private lastAt = 0

  constructor (private readonly retentionMs: number, private readonly maxEntries: number) {}

  get size (): number {
    return this.entries.length - this.head
  }

  /** The entry the next write makes; `at` never goes back, so trimming by age only looks at the head. */
  next (change: LoggedChange, author: ChangeAuthor | undefined, now: number): LogEntry {
    return logEntryOf(change, author, String(this.last + 1), Math.max(now, this.lastAt))
  }

  /** Adds an entry made by `next` (or read back from a file, which may skip ids). */
  append (entry: LogEntry, now: number): void {
    const id = Number(entry.id)
    if (id <= this.last) return
    this.entries.push(entry)
    this.last = id
    this.lastAt = Math.max(this.lastAt, entry.at)
    this.trim(now)
  }

  /** Restores the floor written by a compaction: every entry up to `id` was trimmed. */
  restoreFloor (id: number): void {
    if (id > this.floor) this.floor = id
    if (id > this.last) this.last = id
  }

  /** Drops entries older than the retention, and the oldest past the size cap. */
  trim (now: number): void {
    const oldest = now - this.retentionMs
    while (this.head < this.entries.length && (this.size > this.maxEntries || this.entries[this.head]!.at < oldest)) {
      this.floor = Number(this.entries[this.head]!.id)
      this.head++
    }
    // Reclaims the dropped head once it is half the array: amortised O(1) per entry.
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head)
      this.head = 0
    }
  }

  /** The index of the first kept entry whose id is above `id`. */
  private after (id: number): number {
    let lo = this.head
    let hi = this.entries.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (Number(this.entries[mid]!.id) <= id) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  /** Entries after `cursor`, oldest first (see RevocationStore.readLog). */
  read (cursor: string | null, limit: number, now: number): LogPage {
    this.trim(now)
    if (cursor === null) return { entries: [], cursor: String(this.last), gap: false }
    const from = position(cursor, 'cursor')
    // Before the floor: trimmed unread. Past the end: not this log's cursor (a restarted
    // MemoryStore); either way what happened in between is unknown.
    if (from < this.floor || from > this.last) return { entries: [], cursor: String(this.last), gap: true }
    const start = this.after(from)
    const taken = this.entries.slice(start, start + Math.max(0, limit)).map(copyEntry)
    return { entries: taken, cursor: taken.length === 0 ? cursor : taken[taken.length - 1]!.id, gap: false }
  }

  /** The audit trail, newest first (see RevocationStore.history); `from` excludes it and what is newer. */
  history (filter: HistoryFilter, now: number): { entries: LogEntry[], next: string | null } {
    this.trim(now)
    const limit = filter.limit ?? 50
    let index = filter.from === undefined ? this.entries.length : this.after(position(filter.from, 'from') - 1)
    const found: LogEntry[] = []
    while (--index >= this.head) {
      const entry = this.entries[index]!
      if (filter.since !== undefined && entry.at < filter.since) break
      if (!matchesHistory(entry, filter)) continue
      if (found.length === limit) return { entries: found, next: found[found.length - 1]!.id }
      found.push(copyEntry(entry))
    }
    return { entries: found, next: null }
  }

  /** Every kept entry, oldest first (FileStore's compaction). */
  * kept (): Generator<LogEntry> {
    for (let i = this.head; i < this.entries.length; i++) yield this.entries[i]!
  }
}
