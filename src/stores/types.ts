// The contract every revocation store implements. Times are milliseconds since the
// epoch; `expiresAt: null` means "keep until removed". A store keeps an entry at least
// until its expiresAt and may drop it any time after.

/** A blacklisted token: refused while `(aud, jti)` is listed. */
export interface RevokedToken {
  aud: string
  jti: string
  expiresAt: number | null
}

/** "Every token of this client (for this audience, or `'*'` for all) issued at or before `revokedAt` is dead." */
export interface ClientRevocation {
  clientId: string
  audience: string
  /**
   * Only tokens whose `iss` is this issuer (a non-empty string); absent: every issuer.
   * Written only to a store that declares `issuerScopes: true`.
   */
  issuer?: string | undefined
  revokedAt: number
  expiresAt: number | null
}

/** "Every token of this subject issued at or before `revokedAt` is dead." */
export interface SubjectRevocation {
  subject: string
  /** Only tokens whose `iss` is this issuer; absent: every issuer (see ClientRevocation). */
  issuer?: string | undefined
  revokedAt: number
  expiresAt: number | null
}

/**
 * "Every token whose `sid` claim is `sessionId` issued at or before `revokedAt` is dead":
 * one login session logged out (OpenID Connect back-channel logout, a CAEP
 * `session-revoked` event), the subject's other sessions untouched.
 */
export interface SessionRevocation {
  sessionId: string
  /** Only tokens whose `iss` is this issuer; absent: every issuer (see ClientRevocation). */
  issuer?: string | undefined
  revokedAt: number
  expiresAt: number | null
}

/** Permission for a client to obtain tokens for an audience (Auth0's client grant). */
export interface ClientGrant {
  id: string
  client_id: string
  audience: string
  scope: string[]
  /** ms since the epoch; tokens issued before it never benefit from this grant. */
  created_at: number
}

export interface GrantFilter {
  client_id?: string
  audience?: string
}

/** Everything one request needs to know, asked in one round trip. */
export interface RevocationQuery {
  /** The token's audiences that this API accepts (one or more). */
  audiences: string[]
  jti?: string | undefined
  clientId?: string | undefined
  subject?: string | undefined
  /** The token's `sid` claim (OpenID Connect session id). */
  sessionId?: string | undefined
  /**
   * The token's verified `iss`: rules scoped to it apply beside the unscoped ones (the
   * later of the two wins); absent when the token has none (only unscoped rules apply).
   */
  issuer?: string | undefined
  /** Also return the client's grant for one of `audiences`. */
  includeGrant: boolean
}

export interface RevocationState {
  /** `(aud, jti)` is blacklisted for one of the query's audiences. */
  tokenRevoked: boolean
  /**
   * Latest client revocation for one of the audiences or `'*'`, unscoped or scoped to the
   * query's issuer, ms; null when none.
   */
  clientRevokedAt: number | null
  /** Latest subject revocation, unscoped or scoped to the query's issuer, ms; null when none. */
  subjectRevokedAt: number | null
  /**
   * Latest revocation of the query's session, ms; null when none. A store with
   * `revokeSession` must answer it; one without it may leave it out.
   */
  sessionRevokedAt?: number | null
  /** The client's grant for one of the audiences (only when asked); null when it has none. */
  grant?: Pick<ClientGrant, 'created_at' | 'scope'> | null
}

/** What changed, so every process can drop the cache entries it affects. */
export type RevocationChange =
  | { type: 'token', aud: string, jti: string }
  /** A batch (`revokeTokens`): one message for all of it. */
  | { type: 'tokens', tokens: Array<{ aud: string, jti: string }> }
  /** `issuer` when the rule is scoped to one: only that issuer's tokens are affected. */
  | { type: 'client', clientId: string, issuer?: string }
  | { type: 'subject', subject: string, issuer?: string }
  | { type: 'session', sessionId: string, issuer?: string }
  | { type: 'grant', clientId: string }
  /**
   * The feed may have missed messages (e.g. after a reconnect): drop everything. `reason`
   * says why (counted by the resets metric); absent reads as `'reconnect'`.
   */
  | { type: 'reset', reason?: ResetReason }

/**
 * Why every cached status was dropped: `gap` (the log was trimmed past this instance's
 * cursor), `reconnect` (a store without the log reconnected its feed, or the store came
 * back after being unreachable at startup), `unreadable` (a feed message could not be read).
 */
export type ResetReason = 'gap' | 'reconnect' | 'unreadable'

export type ChangeListener = (change: RevocationChange) => void

// ---- the revocation log (optional: a store without it keeps working with a lossy feed) ----

/** Where a change came from (the audit trail's `source`). */
export type ChangeSource = 'api' | 'admin' | 'cli' | 'auth0' | 'ssf' | 'logout' | 'introspection' | 'status-list'

/** Who made a change and why: the optional last argument of every write, down to the store. */
export interface ChangeAuthor {
  /** The admin token's `sub`, the command line's --actor or user@host, 'auth0-sync', 'ssf:<iss>', … */
  actor?: string | undefined
  /** Free text, at most 500 characters. */
  reason?: string | undefined
  /** Set by the package's own callers; `'api'` when absent (app.revocation called by the user's code). */
  source?: ChangeSource | undefined
}

/** What one log entry records: the change with its details (richer than RevocationChange). */
export type LoggedChange =
  | { type: 'token', aud: string, jti: string, expiresAt: number | null }
  /** A batch (`revokeTokens`) is ONE entry: it travels whole. */
  | { type: 'tokens', tokens: Array<{ aud: string, jti: string }>, expiresAt: number | null }
  | { type: 'client', clientId: string, audience: string, issuer?: string, revokedAt: number }
  | { type: 'subject', subject: string, issuer?: string, revokedAt: number }
  | { type: 'session', sessionId: string, issuer?: string, revokedAt: number }
  /** `grantId`, not `id`: a log entry's own `id` is its position in the log. */
  | { type: 'grant', action: 'create' | 'update' | 'delete', grantId: string, clientId: string, audience: string, scope?: string[] }

/** One entry of a store's ordered log. */
export type LogEntry = LoggedChange & {
  /** Orders the log; opaque outside the store (a Redis stream id, a PostgreSQL bigint as a string, a counter). */
  id: string
  /** ms since the epoch, when the store wrote it. */
  at: number
  actor: string | null
  reason: string | null
  source: ChangeSource
}

/** Where a page of revoked tokens starts, and how many it may hold. */
export interface TokenPageRequest {
  /** The `next` of the previous page; absent: the first page. Opaque, and only for the store (and filter) that gave it. */
  cursor?: string | undefined
  /** Most tokens on the page: default 1000, at most 10,000. */
  limit?: number | undefined
}

/** One page of revoked tokens. */
export interface RevokedTokenPage {
  tokens: RevokedToken[]
  /** The `cursor` of the next page; null once the listing is complete. */
  next: string | null
}

export interface HistoryFilter {
  /** at ≥ since (ms) */
  since?: number | undefined
  /** at < until (ms) */
  until?: number | undefined
  /** token/tokens entries naming it, client entries for it (or '*'), grant entries for it */
  aud?: string | undefined
  clientId?: string | undefined
  subject?: string | undefined
  jti?: string | undefined
  /** default 50, at most 500 */
  limit?: number | undefined
  /** the `next` of the previous page */
  from?: string | undefined
}

export interface LogPage {
  /** Oldest first, after the cursor. */
  entries: LogEntry[]
  /** Where to read next (the last entry's id, or the cursor given when there was nothing new). */
  cursor: string
  /** True when the cursor is older than what the log still keeps: entries were trimmed unread (reset!). */
  gap: boolean
}

export interface RevocationStore {
  /** Open files or prepare tables; called at registration and awaited. Must be idempotent. */
  ready?(): Promise<void>
  /** Release what the store itself opened (not the user's clients). Must be idempotent. */
  close?(): Promise<void>
  /**
   * True when the store keeps rules scoped to an issuer (`issuer` in client, subject and
   * session revocations) and answers lookups by the query's `issuer`. Without it, a
   * scoped revocation is refused rather than written as a rule for every issuer.
   */
  readonly issuerScopes?: boolean

  lookup(query: RevocationQuery): Promise<RevocationState>

  revokeToken(entry: RevokedToken, author?: ChangeAuthor): Promise<void>
  /**
   * Blacklists many tokens at once (optional; without it, callers revoke one by one):
   * acknowledged once every entry is durable, announced by one `tokens` change.
   */
  revokeTokens?(entries: RevokedToken[], author?: ChangeAuthor): Promise<void>
  listRevokedTokens(filter: { aud?: string | undefined }): Promise<RevokedToken[]>
  /**
   * The same listing in pages (optional; without it, callers take `listRevokedTokens`
   * whole). A page holds at most `limit` tokens and may hold fewer, even none, before the
   * end: a store bounds the work of one page. Walking from the first page until `next` is
   * null lists every token revoked before the walk and still live when its page is read
   * exactly once; one revoked, or expiring, during the walk may or may not be listed. A
   * cursor stays valid while writes happen; a cursor the store never gave is refused
   * with a TypeError.
   */
  listRevokedTokensPage?(filter: { aud?: string | undefined }, page?: TokenPageRequest): Promise<RevokedTokenPage>
  /** Keeps the later `revokedAt` when the pair is already revoked. */
  revokeClient(entry: ClientRevocation, author?: ChangeAuthor): Promise<void>
  revokeSubject(entry: SubjectRevocation, author?: ChangeAuthor): Promise<void>
  /**
   * Sessions are optional: needed by `revokeSession` (back-channel logout, CAEP
   * `session-revoked`). Keeps the later `revokedAt` when the session is already revoked;
   * a store that has it answers `sessionRevokedAt` in every lookup.
   */
  revokeSession?(entry: SessionRevocation, author?: ChangeAuthor): Promise<void>

  /** Grants are optional: needed by `grants: true` and by the admin routes. */
  createGrant?(grant: ClientGrant, author?: ChangeAuthor): Promise<ClientGrant>
  getGrant?(id: string): Promise<ClientGrant | null>
  listGrants?(filter: GrantFilter): Promise<ClientGrant[]>
  updateGrant?(id: string, scope: string[], author?: ChangeAuthor): Promise<ClientGrant | null>
  /** Returns the deleted grant, or null when there was none. */
  deleteGrant?(id: string, author?: ChangeAuthor): Promise<ClientGrant | null>

  /**
   * The ordered log (optional; a store has it when `readLog` is a function). Every write
   * method then takes `author` and writes ONE entry atomically with the change (a batch is
   * one entry). Entries after `cursor`, oldest first, at most `limit`; `cursor` null: no
   * entries, just the current end.
   */
  readLog?(cursor: string | null, limit: number): Promise<LogPage>
  /** The audit trail, newest first, filtered; `next` is the `from` of the next page, or null. */
  history?(filter: HistoryFilter): Promise<{ entries: LogEntry[], next: string | null }>

  /**
   * A change feed; other processes' revocations arrive here. Returns an unsubscribe
   * function. For a store with the log, a message is only a wake-up: read the log now.
   */
  subscribe?(listener: ChangeListener): Promise<() => Promise<void>>
  /**
   * Takes or renews the lease `name` for `holder` for `ttl` ms: true when `holder` now
   * holds it, false while another holder's lease runs. Lets one of many instances do a
   * periodic job (the Auth0 sync); optional, every instance does the job without it.
   */
  lease?(name: string, holder: string, ttl: number): Promise<boolean>
  /**
   * True the first time `key` is claimed, false while an earlier claim of it lasts (at
   * least until its `expiresAt`, ms), across every instance sharing the store: the DPoP
   * replay cache (RFC 9449 §11.1). Optional; without it each process remembers its own.
   */
  claimOnce?(key: string, expiresAt: number): Promise<boolean>
  /** Drops entries whose expiresAt has passed; returns how many. */
  purgeExpired?(now: number): Promise<number>
}

export const grantMethods = ['createGrant', 'getGrant', 'listGrants', 'updateGrant', 'deleteGrant'] as const
