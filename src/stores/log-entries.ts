import type { ChangeAuthor, ChangeSource, HistoryFilter, LogEntry, LoggedChange } from './types.js'

// How RedisStore and PostgresStore write and read back a log entry.

/** History pages: 50 entries unless asked, at most 500 (as `app.revocation.history` checks). */
const DEFAULT_HISTORY_LIMIT = 50
const MAX_HISTORY_LIMIT = 500

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

/** A batch's expiry as its one entry records it: the latest of its tokens' (null when one never expires). */
export function latestExpiry (entries: Array<{ expiresAt: number | null }>): number | null {
  let latest = 0
  for (const { expiresAt } of entries) {
    if (expiresAt === null) return null
    if (expiresAt > latest) latest = expiresAt
  }
  return latest
}
