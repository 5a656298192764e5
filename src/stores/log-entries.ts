import { parseDuration, type Duration } from '../options/duration.js'
import { invalidOption } from '../errors.js'
import type { ChangeAuthor, ChangeSource, HistoryFilter, LogEntry, LoggedChange } from './types.js'

/** Default `logRetention`: long enough for an audit review, short enough to stay small. */
export const DEFAULT_LOG_RETENTION = '30d'
/** Default `logMaxEntries`. */
export const DEFAULT_LOG_MAX_ENTRIES = 1_000_000
/** History pages: 50 entries unless asked, at most 500 (as `app.revocation.history` checks). */
const DEFAULT_HISTORY_LIMIT = 50
const MAX_HISTORY_LIMIT = 500

/** The store options that bound a log, read once: retention in ms and the size cap. */
export interface LogBounds {
  retention: number
  maxEntries: number
}

/** Reads `logRetention` and `logMaxEntries` of a store's options, naming `store` in any error. */
export function logBounds (options: { logRetention?: Duration | undefined, logMaxEntries?: number | undefined }, store: string): LogBounds {
  const retention = parseDuration(options.logRetention ?? DEFAULT_LOG_RETENTION, `${store}.logRetention`, { unit: 'milliseconds', min: 1000, example: DEFAULT_LOG_RETENTION })
  const maxEntries = options.logMaxEntries ?? DEFAULT_LOG_MAX_ENTRIES
  if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) throw invalidOption(`${store}.logMaxEntries`, `must be an integer ≥ 1 (got ${JSON.stringify(maxEntries)})`)
  return { retention, maxEntries }
}

/** Who and why as an entry records them: null when absent, `'api'` when no source was given. */
export function authorOf (author: ChangeAuthor | undefined): { actor: string | null, reason: string | null, source: ChangeSource } {
  return { actor: author?.actor ?? null, reason: author?.reason ?? null, source: author?.source ?? 'api' }
}

/** Who and why as compact JSON members (nulls left out), to follow a change's own. */
export function authorFields (author: ChangeAuthor | undefined): { actor?: string, reason?: string, source: ChangeSource } {
  const { actor, reason, source } = authorOf(author)
  return { ...(actor === null ? {} : { actor }), ...(reason === null ? {} : { reason }), source }
}

/** A log entry as one compact JSON text, the change then who and why: what a Redis stream entry holds. */
export function encodeEntry (change: LoggedChange, author: ChangeAuthor | undefined): string {
  return JSON.stringify({ ...change, ...authorFields(author) })
}

/** An entry read back from {@link encodeEntry}'s text, with its place in the log and its time. */
export function decodeEntry (id: string, at: number, text: string): LogEntry {
  const fields = JSON.parse(text) as LoggedChange & { actor?: string, reason?: string, source?: ChangeSource }
  return { ...fields, id, at, actor: fields.actor ?? null, reason: fields.reason ?? null, source: fields.source ?? 'api' }
}

/** How many entries a history page holds. */
export const historyLimit = (filter: HistoryFilter): number => Math.min(Math.max(1, filter.limit ?? DEFAULT_HISTORY_LIMIT), MAX_HISTORY_LIMIT)

/**
 * True when an entry passes a history filter's content filters (`aud`, `clientId`,
 * `subject`, `jti`; times and paging are the store's range): a token or batch naming the
 * audience or jti, a client rule for the audience or every audience (`'*'`), a grant for
 * the audience or the client, a subject rule for the subject.
 */
export function matchesHistory (entry: LoggedChange, filter: HistoryFilter): boolean {
  const { aud, clientId, subject, jti } = filter
  switch (entry.type) {
    case 'token':
      return clientId === undefined && subject === undefined && (aud === undefined || entry.aud === aud) && (jti === undefined || entry.jti === jti)
    case 'tokens':
      return clientId === undefined && subject === undefined &&
        (aud === undefined || entry.tokens.some((t) => t.aud === aud)) && (jti === undefined || entry.tokens.some((t) => t.jti === jti))
    case 'client':
      return subject === undefined && jti === undefined && (aud === undefined || entry.audience === aud || entry.audience === '*') &&
        (clientId === undefined || entry.clientId === clientId)
    case 'grant':
      return subject === undefined && jti === undefined && (aud === undefined || entry.audience === aud) && (clientId === undefined || entry.clientId === clientId)
    case 'subject':
      return aud === undefined && clientId === undefined && jti === undefined && (subject === undefined || entry.subject === subject)
    case 'session':
      return aud === undefined && clientId === undefined && jti === undefined && subject === undefined
  }
}

/** A batch's expiry as its one entry records it: the latest of its tokens' (null when one never expires). */
export function latestExpiry (entries: Array<{ expiresAt: number | null }>): number | null {
  let latest = 0
  for (const { expiresAt } of entries) {
    if (expiresAt === null) return null
    if (expiresAt > latest) latest = expiresAt
  }
  return latest
}
