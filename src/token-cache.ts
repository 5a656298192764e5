import { LRUCache } from 'lru-cache'
import type { JWTHeaderParameters, JWTPayload } from 'jose'
import type { Binding } from './binding/sender.js'
import type { RevocationChange, RevocationState } from './stores/types.js'

/**
 * One verified token: what jose proved once, and its revocation status as last read
 * from the store. It keeps the exact token string: a hit is the same signed bytes.
 */
export interface TokenRecord {
  /** The verified token, compared in full on every lookup. */
  readonly token: string
  header: JWTHeaderParameters
  payload: JWTPayload
  audiences: string[]
  clientId: string | null
  subject: string | null
  tokenScopes: string[]
  /** The key the token is bound to (`cnf.jkt`, `cnf["x5t#S256"]`); null for a plain bearer token. */
  readonly binding: Binding | null
  /** The token's `cnf` as given, for `request.auth.confirmation`; null when absent. */
  readonly confirmation: Record<string, unknown> | null
  /** Scopes after intersecting with the client grant (equal to tokenScopes without grants). */
  scopes: string[]
  /**
   * ms from which the time rules must run again (the earliest the token can expire or
   * grow too old); before it, a hit has nothing to re-check.
   */
  readonly recheckAt: number
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

/** How many trailing characters (in the signature) make a token's slot number. */
const FINGERPRINT_CHARS = 16

/**
 * A small integer from the token's last characters (its signature), to find its slot
 * without hashing the whole string: V8 hashes a string key in full, and the token
 * arrives as a new string on every request. Equal fingerprints are told apart by
 * comparing the whole token, so this only needs to spread, not to resist collisions.
 */
function fingerprint (token: string): number {
  let h = token.length
  for (let i = Math.max(0, token.length - FINGERPRINT_CHARS); i < token.length; i++) {
    h = (Math.imul(h, 31) + token.charCodeAt(i)) | 0
  }
  // A small integer (Smi) key: no allocation, the cheapest Map key V8 has.
  return h & 0x3fffffff
}

/** One record, or several when they share a jti, client or subject. */
type Index = Map<string, TokenRecord | Set<TokenRecord>>

function add (index: Index, key: string | null, record: TokenRecord): void {
  if (key === null) return
  const entry = index.get(key)
  if (entry === undefined) index.set(key, record)
  else if (entry instanceof Set) entry.add(record)
  else if (entry !== record) index.set(key, new Set([entry, record]))
}

function remove (index: Index, key: string | null, record: TokenRecord): void {
  if (key === null) return
  const entry = index.get(key)
  if (entry === record) index.delete(key)
  else if (entry instanceof Set && entry.delete(record) && entry.size === 0) index.delete(key)
}

function recordsOf (index: Index, key: string): Iterable<TokenRecord> {
  const entry = index.get(key)
  return entry === undefined ? [] : entry instanceof Set ? entry : [entry]
}

/**
 * The LRU of verified tokens, indexed by jti, client and subject so that a revocation
 * finds the entries it concerns without walking the whole cache. Expired tokens are
 * refused by the time rules on their next hit and leave as the LRU turns over.
 */
export class TokenCache {
  private readonly lru: LRUCache<number, TokenRecord>
  private readonly byJti: Index = new Map()
  private readonly byClient: Index = new Map()
  private readonly bySubject: Index = new Map()

  constructor (max: number) {
    this.lru = new LRUCache<number, TokenRecord>({
      max,
      dispose: (record) => this.unindex(record),
    })
  }

  /** The record of exactly this token, or undefined. */
  get (token: string): TokenRecord | undefined {
    const record = this.lru.get(fingerprint(token))
    return record !== undefined && record.token === token ? record : undefined
  }

  /** Caches a verified token; a token with the same fingerprint gives up its slot. */
  set (record: TokenRecord): void {
    this.lru.set(fingerprint(record.token), record)
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
      case 'token': return [...recordsOf(this.byJti, change.jti)].filter((r) => r.audiences.includes(change.aud))
      case 'client':
      case 'grant': return recordsOf(this.byClient, change.clientId)
      case 'subject': return recordsOf(this.bySubject, change.subject)
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
