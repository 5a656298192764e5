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

/**
 * A log entry as one compact JSON text, the change then who and why: what a Redis stream
 * entry holds. A `tokens` batch (an import writes 50,000 a call) keeps each audience once,
 * its jtis listed under it (`byAud: [[aud, [jti, …]], …]`): about 39 bytes per UUID jti in
 * place of 73 with the audience repeated. Pairs, not an object keyed by audience, so no
 * audience can name an object's prototype.
 */
export function encodeEntry (change: LoggedChange, author: ChangeAuthor | undefined): string {
  if (change.type !== 'tokens') return JSON.stringify({ ...change, ...authorFields(author) })
  const byAud = new Map<string, string[]>()
  for (const { aud, jti } of change.tokens) {
    const jtis = byAud.get(aud)
    if (jtis === undefined) byAud.set(aud, [jti])
    else jtis.push(jti)
  }
  return JSON.stringify({ type: 'tokens', byAud: [...byAud], expiresAt: change.expiresAt, ...authorFields(author) })
}

/** An entry read back from {@link encodeEntry}'s text, with its place in the log and its time. */
export function decodeEntry (id: string, at: number, text: string): LogEntry {
  const { byAud, ...fields } = JSON.parse(text) as LoggedChange & { byAud?: unknown, actor?: string, reason?: string, source?: ChangeSource }
  // Entries written before the grouped form carry `tokens` as they are.
  if (fields.type === 'tokens' && byAud !== undefined) fields.tokens = tokensOf(byAud)
  return { ...fields, id, at, actor: fields.actor ?? null, reason: fields.reason ?? null, source: fields.source ?? 'api' }
}

/** The tokens of a grouped `tokens` entry, in the order they were written within each audience. */
function tokensOf (byAud: unknown): Array<{ aud: string, jti: string }> {
  if (!Array.isArray(byAud)) throw new TypeError('a tokens log entry has an unreadable byAud')
  const tokens: Array<{ aud: string, jti: string }> = []
  for (const group of byAud as unknown[]) {
    const [aud, jtis] = Array.isArray(group) ? group as unknown[] : []
    if (typeof aud !== 'string' || !Array.isArray(jtis)) throw new TypeError('a tokens log entry has an unreadable byAud')
    for (const jti of jtis as unknown[]) {
      if (typeof jti !== 'string') throw new TypeError('a tokens log entry has an unreadable byAud')
      tokens.push({ aud, jti })
    }
  }
  return tokens
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
