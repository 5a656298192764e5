import { hash } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import type { JWTHeaderParameters, JWTPayload } from '../lib/jose-types.js'
import type { Binding } from '../binding/sender.js'
import type { RevocationReason } from '../errors.js'
import type { RevocationChange } from '../stores/types.js'
import { sessionIdOf } from '../token/claims.js'

/**
 * One verified token: what jose proved once, and its revocation status as last read
 * from the store. It is found by the SHA-256 digest of the token's text, so a hit is
 * the same signed bytes without keeping the token itself (its largest part): with
 * `issuers`, the same `iss` that picked the issuer whose keys verified it.
 */
export interface TokenRecord {
  header: JWTHeaderParameters
  payload: JWTPayload
  audiences: string[]
  clientId: string | null
  subject: string | null
  /** The token's `sid`: what a session revocation matches; null when it has none. */
  readonly sessionId: string | null
  tokenScopes: string[]
  /** The key the token is bound to (`cnf.jkt`, `cnf["x5t#S256"]`); null for a plain bearer token. */
  readonly binding: Binding | null
  /** The token's `cnf` as given, for `request.auth.confirmation`; null when absent. */
  readonly confirmation: Record<string, unknown> | null
  /** The token's `acr` claim (RFC 9470 §6.1), or null when absent or not a string. */
  readonly acr: string | null
  /** The token's `auth_time` claim in seconds, or null when absent or not a number. */
  readonly authTime: number | null
  /** Scopes after intersecting with the client grant (equal to tokenScopes without grants). */
  scopes: string[]
  /**
   * ms from which the time rules must run again (the earliest the token can expire or
   * grow too old); before it, a hit has nothing to re-check.
   */
  readonly recheckAt: number
  /** Revocation is monotonic for a token: once revoked, always revoked (and by what). */
  revokedReason: RevocationReason | null
  /** The client lacks a current grant (only with `grants: true`); re-read with the state. */
  grantDenied: boolean
  /** A status other than 0x00 in the token's status list (only with `statusList`); re-read with the state. */
  listStatus?: number
  /** ms when the store's answer was applied; 0 while there is none (new, or invalidated). */
  checkedAt: number
  pending: Promise<void> | null
  /** An opaque token, known from the issuer's introspection answer (asked on every route). */
  opaque?: boolean
  /** ms until which the issuer's last `active` introspection answer is reused; 0: ask again. */
  introspectedUntil?: number
}

/** A record for a token just verified (or introspected): its revocation status not read yet. */
export function freshRecord (
  header: JWTHeaderParameters, payload: JWTPayload, audiences: string[],
  clientId: string | null, subject: string | null, tokenScopes: string[], recheckAt: number, binding: Binding | null,
): TokenRecord {
  return {
    header, payload, audiences, clientId, subject, sessionId: sessionIdOf(payload), tokenScopes, binding,
    confirmation: (payload.cnf as Record<string, unknown> | undefined) ?? null,
    acr: typeof payload.acr === 'string' ? payload.acr : null,
    authTime: typeof payload.auth_time === 'number' && Number.isFinite(payload.auth_time) ? payload.auth_time : null,
    scopes: tokenScopes, recheckAt, revokedReason: null, grantDenied: false, checkedAt: 0, pending: null,
  }
}

/**
 * The cache key of a token: its SHA-256 digest as a 32-character binary (Latin-1) string.
 * Collision resistance makes an equal digest the same text, and one-shot `hash`
 * costs well under a microsecond for a typical token. A 2048-bit RSA signature
 * alone is 342 characters, so the digest keeps a record a fraction of the token's size.
 */
export function tokenDigest (token: string): string {
  return hash('sha256', token, 'binary')
}

/** One record, or several when they share a jti, client, subject or session. */
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
 * The LRU of verified tokens, indexed by jti, client, subject and session so that a revocation
 * finds the entries it concerns without walking the whole cache. Expired tokens are
 * refused by the time rules on their next hit and leave as the LRU turns over.
 */
export class TokenCache {
  private readonly lru: LRUCache<string, TokenRecord>
  private readonly byJti: Index = new Map()
  private readonly byClient: Index = new Map()
  private readonly bySubject: Index = new Map()
  private readonly bySession: Index = new Map()

  constructor (max: number) {
    this.lru = new LRUCache<string, TokenRecord>({
      max,
      dispose: (record) => this.unindex(record),
    })
  }

  /** The record of exactly the token whose `tokenDigest` is `key`, or undefined. */
  get (key: string): TokenRecord | undefined {
    return this.lru.get(key)
  }

  /** Caches the record of a verified token under its `tokenDigest`. */
  set (key: string, record: TokenRecord): void {
    this.lru.set(key, record)
    add(this.byJti, jtiOf(record), record)
    add(this.byClient, record.clientId, record)
    add(this.bySubject, record.subject, record)
    add(this.bySession, record.sessionId, record)
  }

  private unindex (record: TokenRecord): void {
    remove(this.byJti, jtiOf(record), record)
    remove(this.byClient, record.clientId, record)
    remove(this.bySubject, record.subject, record)
    remove(this.bySession, record.sessionId, record)
  }

  /** The cached tokens a change concerns (every one for a reset). */
  affected (change: RevocationChange): Iterable<TokenRecord> {
    switch (change.type) {
      case 'token': return [...recordsOf(this.byJti, change.jti)].filter((r) => r.audiences.includes(change.aud))
      case 'tokens': return !Array.isArray(change.tokens) ? this.lru.values() : change.tokens.flatMap((t) => [...recordsOf(this.byJti, t.jti)].filter((r) => r.audiences.includes(t.aud)))
      case 'client': return ofIssuer(recordsOf(this.byClient, change.clientId), change.issuer)
      case 'grant': return recordsOf(this.byClient, change.clientId)
      case 'subject': return ofIssuer(recordsOf(this.bySubject, change.subject), change.issuer)
      case 'session': return ofIssuer(recordsOf(this.bySession, change.sessionId), change.issuer)
      case 'reset': return this.lru.values()
      // A message from a newer version this one cannot read: drop everything, as for a reset.
      default: return this.lru.values()
    }
  }

  get size (): number {
    return this.lru.size
  }
}

/** The records a rule scoped to `issuer` concerns: those of tokens it issued (all of them for an unscoped rule). */
function ofIssuer (records: Iterable<TokenRecord>, issuer: unknown): Iterable<TokenRecord> {
  // A message from elsewhere is read defensively: anything but a string scope drops them all.
  if (typeof issuer !== 'string') return records
  return [...records].filter((r) => r.payload.iss === issuer)
}

function jtiOf (record: TokenRecord): string | null {
  return typeof record.payload.jti === 'string' ? record.payload.jti : null
}
