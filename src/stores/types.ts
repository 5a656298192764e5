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
  /** The feed may have missed messages (e.g. after a reconnect): drop everything. */
  | { type: 'reset' }

export type ChangeListener = (change: RevocationChange) => void

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

  revokeToken(entry: RevokedToken): Promise<void>
  /**
   * Blacklists many tokens at once (optional; without it, callers revoke one by one):
   * acknowledged once every entry is durable, announced by one `tokens` change.
   */
  revokeTokens?(entries: RevokedToken[]): Promise<void>
  listRevokedTokens(filter: { aud?: string | undefined }): Promise<RevokedToken[]>
  /** Keeps the later `revokedAt` when the pair is already revoked. */
  revokeClient(entry: ClientRevocation): Promise<void>
  revokeSubject(entry: SubjectRevocation): Promise<void>
  /**
   * Sessions are optional: needed by `revokeSession` (back-channel logout, CAEP
   * `session-revoked`). Keeps the later `revokedAt` when the session is already revoked;
   * a store that has it answers `sessionRevokedAt` in every lookup.
   */
  revokeSession?(entry: SessionRevocation): Promise<void>

  /** Grants are optional: needed by `grants: true` and by the admin routes. */
  createGrant?(grant: ClientGrant): Promise<ClientGrant>
  getGrant?(id: string): Promise<ClientGrant | null>
  listGrants?(filter: GrantFilter): Promise<ClientGrant[]>
  updateGrant?(id: string, scope: string[]): Promise<ClientGrant | null>
  /** Returns the deleted grant, or null when there was none. */
  deleteGrant?(id: string): Promise<ClientGrant | null>

  /** A change feed; other processes' revocations arrive here. Returns an unsubscribe function. */
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
