import type { ClientGrant, GrantFilter, RevokedToken } from '../stores/types.js'

/** A grant as both targets know it (the admin routes do not say when it was created). */
export type GrantView = Pick<ClientGrant, 'id' | 'client_id' | 'audience' | 'scope'> & { created_at?: number }

/** A blacklisted token; `expiresAt` undefined when the target does not say (the admin routes). */
export type RevokedView = Pick<RevokedToken, 'aud' | 'jti'> & { expiresAt?: number | null }

/** Where a command acts: a store opened directly, or a running server's admin routes. */
export interface Target {
  /** Printed in messages and `status`; never holds a password or a token. */
  readonly describe: string
  /** Entries per `revokeTokens` call during an import. */
  readonly batchSize: number
  revokeTokens(entries: RevokedToken[]): Promise<void>
  /** `audience` undefined: every audience; `issuer` undefined: every issuer. */
  revokeClient(clientId: string, audience: string | undefined, issuer?: string): Promise<void>
  /** `issuer` undefined: every issuer. */
  revokeSubject(subject: string, issuer?: string): Promise<void>
  listRevoked(aud: string | undefined): Promise<RevokedView[]>
  listGrants(filter: GrantFilter): Promise<GrantView[]>
  createGrant(input: { client_id: string, audience: string, scope: string[] }): Promise<GrantView>
  updateGrant(id: string, scope: string[]): Promise<GrantView | null>
  /** Deletes the grant and refuses the client's tokens for its audience; null when there was none. */
  deleteGrant(id: string): Promise<GrantView | null>
  /** Drops expired entries; how many. */
  purge(): Promise<number>
  status(): Promise<Record<string, unknown>>
  close(): Promise<void>
}
