import type { ChangeAuthor, ClientGrant, GrantFilter, HistoryFilter, LogEntry, RevokedToken } from '../stores/types.js'

/** A grant as both targets know it (the admin routes do not say when it was created). */
export type GrantView = Pick<ClientGrant, 'id' | 'client_id' | 'audience' | 'scope'> & { created_at?: number }

/** A blacklisted token; `expiresAt` undefined when the target does not say (the admin routes). */
export type RevokedView = Pick<RevokedToken, 'aud' | 'jti'> & { expiresAt?: number | null }

/** One page of the audit trail, newest first; `next` is the `from` of the following page, or null. */
export interface HistoryPage { entries: LogEntry[], next: string | null }

/**
 * Where a command acts: a store opened directly, or a running server's admin routes.
 * Every write takes who made it and why (`author`), recorded in the store's log.
 */
export interface Target {
  /** Printed in messages and `status`; never holds a password or a token. */
  readonly describe: string
  /** Entries per `revokeTokens` call during an import. */
  readonly batchSize: number
  /** Whether the target records `author.actor` (the admin routes record their token's `sub` instead). */
  readonly takesActor: boolean
  revokeTokens(entries: RevokedToken[], author: ChangeAuthor): Promise<void>
  /** `audience` undefined: every audience; `issuer` undefined: every issuer. */
  revokeClient(clientId: string, audience: string | undefined, issuer: string | undefined, author: ChangeAuthor): Promise<void>
  /** `issuer` undefined: every issuer. */
  revokeSubject(subject: string, issuer: string | undefined, author: ChangeAuthor): Promise<void>
  /** The blacklist (of one audience), in pages: never held whole. */
  listRevoked(aud: string | undefined): AsyncIterable<RevokedView[]>
  listGrants(filter: GrantFilter): Promise<GrantView[]>
  createGrant(input: { client_id: string, audience: string, scope: string[] }, author: ChangeAuthor): Promise<GrantView>
  updateGrant(id: string, scope: string[], author: ChangeAuthor): Promise<GrantView | null>
  /** Deletes the grant and refuses the client's tokens for its audience; null when there was none. */
  deleteGrant(id: string, author: ChangeAuthor): Promise<GrantView | null>
  /** The audit trail, newest first. */
  history(filter: HistoryFilter): Promise<HistoryPage>
  /** Drops expired entries; how many. */
  purge(): Promise<number>
  /** Moves entries of an earlier storage layout into the current one; how many. */
  migrate(): Promise<number>
  status(): Promise<Record<string, unknown>>
  close(): Promise<void>
}
