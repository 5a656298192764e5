import { InvalidArgumentError } from '../errors.js'
import type { ChangeAuthor, ChangeSource, HistoryFilter, LogEntry } from '../stores/types.js'

/**
 * The optional last argument of every write of `app.revocation`: who made the change
 * (`actor`) and why (`reason`), recorded in the store's log. `source` is set by the
 * package's own callers (the admin routes, the command line, the Auth0 sync, …); a
 * change made by the application's own code is `'api'`.
 */
export type WriteAuthor = ChangeAuthor

/** A page of `app.revocation.history()`: newest first; `next` is the `from` of the next page, or null. */
export interface HistoryPage {
  entries: LogEntry[]
  next: string | null
}

export const changeSources: readonly ChangeSource[] = ['api', 'admin', 'cli', 'auth0', 'ssf', 'logout', 'introspection', 'status-list']

/** Longest `reason` (and `actor`) a log entry keeps: an audit note, not a document. */
export const MAX_REASON_LENGTH = 500

/** History pages: 50 entries unless asked, at most 500. */
export const DEFAULT_HISTORY_LIMIT = 50
export const MAX_HISTORY_LIMIT = 500

function optionalText (value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_REASON_LENGTH || value.includes('\u0000')) {
    throw new InvalidArgumentError(`${name} must be a non-empty string of at most ${MAX_REASON_LENGTH} characters`)
  }
  return value
}

/** The author of a write as the store records it, checked before anything is written; `source` 'api' unless set. */
export function changeAuthor (author: unknown): ChangeAuthor & { source: ChangeSource } {
  if (author === undefined) return { source: 'api' }
  if (typeof author !== 'object' || author === null || Array.isArray(author)) {
    throw new InvalidArgumentError('the author of a change must be an object { actor?, reason? }')
  }
  const { actor, reason, source } = author as Record<string, unknown>
  if (source !== undefined && !changeSources.includes(source as ChangeSource)) {
    throw new InvalidArgumentError(`source must be one of ${changeSources.join(', ')}`)
  }
  const checkedActor = optionalText(actor, 'actor')
  const checkedReason = optionalText(reason, 'reason')
  return {
    ...(checkedActor === undefined ? {} : { actor: checkedActor }),
    ...(checkedReason === undefined ? {} : { reason: checkedReason }),
    source: (source as ChangeSource | undefined) ?? 'api',
  }
}

function optionalMs (value: unknown, name: string): number | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new InvalidArgumentError(`${name} must be a time in milliseconds since the epoch`)
  return value
}

function optionalKey (value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'string' || value.length === 0) throw new InvalidArgumentError(`${name} must be a non-empty string`)
  return value
}

/** A history filter checked and completed (the limit set), so a store reads only what it expects. */
export function historyFilter (filter: unknown): HistoryFilter & { limit: number } {
  if (typeof filter !== 'object' || filter === null || Array.isArray(filter)) {
    throw new InvalidArgumentError('history takes an object { since?, until?, aud?, clientId?, subject?, jti?, limit?, from? }')
  }
  const f = filter as Record<string, unknown>
  const limit = f.limit ?? DEFAULT_HISTORY_LIMIT
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > MAX_HISTORY_LIMIT) {
    throw new InvalidArgumentError(`limit must be a whole number from 1 to ${MAX_HISTORY_LIMIT}`)
  }
  const checked: HistoryFilter & { limit: number } = { limit }
  const since = optionalMs(f.since, 'since')
  const until = optionalMs(f.until, 'until')
  if (since !== undefined) checked.since = since
  if (until !== undefined) checked.until = until
  for (const name of ['aud', 'clientId', 'subject', 'jti', 'from'] as const) {
    const value = optionalKey(f[name], name)
    if (value !== undefined) checked[name] = value
  }
  return checked
}
