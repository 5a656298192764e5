import { LRUCache } from 'lru-cache'
import type { JWTHeaderParameters, JWTPayload } from 'jose'
import type { RevocationState } from './stores/types.js'

/**
 * One verified token: what jose proved once, and its revocation status as last read
 * from the store. Cached by the exact token string, so a hit is the same signed bytes.
 */
export interface TokenRecord {
  header: JWTHeaderParameters
  payload: JWTPayload
  audiences: string[]
  clientId: string | null
  subject: string | null
  tokenScopes: string[]
  /** Scopes after intersecting with the client grant (equal to tokenScopes without grants). */
  scopes: string[]
  /** Revocation is monotonic for a token: once revoked, always revoked. */
  revokedReason: string | null
  /** The client lacks a current grant (only with `grants: true`); re-read with the state. */
  grantDenied: boolean
  state: RevocationState | null
  checkedAt: number
  pending: Promise<void> | null
}

export type TokenCache = LRUCache<string, TokenRecord>

export function createTokenCache (max: number): TokenCache {
  // ttl is set per entry to the token's remaining life; no background timers.
  return new LRUCache<string, TokenRecord>({ max, ttlAutopurge: false, allowStale: false, ttlResolution: 1000 })
}
