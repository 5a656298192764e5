import { LRUCache } from 'lru-cache'
import type { JWTHeaderParameters, JWTPayload } from 'jose'
import type { RevocationChange, RevocationState } from './stores/types.js'

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
  /** A status other than 0x00 in the token's status list (only with `statusList`); re-read with the state. */
  listStatus?: number
  state: RevocationState | null
  checkedAt: number
  pending: Promise<void> | null
}

type Index = Map<string, Set<TokenRecord>>

function add (index: Index, key: string | null, record: TokenRecord): void {
  if (key === null) return
  const set = index.get(key)
  if (set) set.add(record)
  else index.set(key, new Set([record]))
}

function remove (index: Index, key: string | null, record: TokenRecord): void {
  if (key === null) return
  const set = index.get(key)
  if (set?.delete(record) && set.size === 0) index.delete(key)
}

/**
 * The LRU of verified tokens, indexed by jti, client and subject so that a revocation
 * finds the entries it concerns without walking the whole cache.
 */
export class TokenCache {
  private readonly lru: LRUCache<string, TokenRecord>
  private readonly byJti: Index = new Map()
  private readonly byClient: Index = new Map()
  private readonly bySubject: Index = new Map()

  constructor (max: number) {
    // ttl is set per entry to the token's remaining life; no background timers.
    this.lru = new LRUCache<string, TokenRecord>({
      max,
      ttlAutopurge: false,
      allowStale: false,
      ttlResolution: 1000,
      dispose: (record) => this.unindex(record),
    })
  }

  get (token: string): TokenRecord | undefined {
    return this.lru.get(token)
  }

  set (token: string, record: TokenRecord, ttl: number): void {
    this.lru.set(token, record, { ttl })
    add(this.byJti, jtiOf(record), record)
    add(this.byClient, record.clientId, record)
    add(this.bySubject, record.subject, record)
  }

  private unindex (record: TokenRecord): void {
    remove(this.byJti, jtiOf(record), record)
    remove(this.byClient, record.clientId, record)
    remove(this.bySubject, record.subject, record)
  }

  /** The cached tokens a change concerns (every one for a reset). */
  affected (change: RevocationChange): Iterable<TokenRecord> {
    switch (change.type) {
      case 'token': return [...(this.byJti.get(change.jti) ?? [])].filter((r) => r.audiences.includes(change.aud))
      case 'client':
      case 'grant': return this.byClient.get(change.clientId) ?? []
      case 'subject': return this.bySubject.get(change.subject) ?? []
      case 'reset': return this.lru.values()
    }
  }

  get size (): number {
    return this.lru.size
  }
}

function jtiOf (record: TokenRecord): string | null {
  return typeof record.payload.jti === 'string' ? record.payload.jti : null
}
