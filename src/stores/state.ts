import { GrantConflictError, StoreError } from '../errors.js'
import { issuerMember } from './change-feed.js'
import type {
  ClientGrant, ClientRevocation, GrantFilter, RevocationChange, RevocationQuery,
  RevocationState, RevokedToken, SessionRevocation, SubjectRevocation,
} from './types.js'

// The in-memory state shared by MemoryStore and FileStore (which replays its log into
// one). Keys join parts with NUL, which no audience, jti or client id may contain.

const SEP = '\u0000'
const ALL_AUDIENCES = '*'

/** Most keys a V8 Map holds: one more throws a RangeError, so no in-memory store may grow a Map past it. */
export const MAP_CAPACITY = 2 ** 24

const capacityText = (capacity: number) => capacity.toLocaleString('en-US')

/**
 * A store's `maxEntries` (or `logMaxEntries`), checked against what this process can
 * hold: every entry lives in a Map, and `store` names the store in the message.
 */
export function inMemoryLimit (value: number | undefined, fallback: number, option: string, store: string): number {
  const max = value ?? fallback
  if (!Number.isInteger(max) || max < 1) throw new TypeError(`${store}: ${option} must be a positive integer`)
  if (max > MAP_CAPACITY) {
    throw new TypeError(`${store}: ${option} ${max} is more than one process can hold (a V8 Map holds at most ${capacityText(MAP_CAPACITY)} entries, 2^24); keep more revocations in RedisStore or PostgresStore`)
  }
  return max
}

const live = (expiresAt: number | null, now: number) => expiresAt === null || expiresAt > now

/** A rule's key: the unscoped key alone, or with the issuer it is scoped to ('' counts as none). */
const scoped = (key: string, issuer: string | undefined) => (issuer ? key + SEP + issuer : key)

/** The later of `current` and the live rule under `key`. */
function later (map: Map<string, { revokedAt: number, expiresAt: number | null }>, key: string, now: number, current: number | null): number | null {
  const e = map.get(key)
  return e && live(e.expiresAt, now) && (current === null || e.revokedAt > current) ? e.revokedAt : current
}

/** An operation as FileStore logs it; MemoryStore applies the same ones directly. */
export type StoreOperation =
  | { op: 'token', entry: RevokedToken }
  | { op: 'client', entry: ClientRevocation }
  | { op: 'subject', entry: SubjectRevocation }
  | { op: 'session', entry: SessionRevocation }
  | { op: 'grant', grant: ClientGrant }
  | { op: 'ungrant', id: string }

export class StoreState {
  /**
   * aud → jti → expiresAt (ms, Infinity for never). Nested maps with a bare number per
   * entry: no key concatenation and no object per revoked token, which is what keeps a
   * million entries small.
   */
  private readonly tokens = new Map<string, Map<string, number>>()
  private tokenCount = 0
  /** New (aud, jti) keys ever added: a listing's snapshot is good for walks begun before it. */
  private added = 0
  /** Per audience, its jtis sorted, and `added` when they were: see revokedTokensAfter. */
  private readonly snapshots = new Map<string, { added: number, jtis: string[] }>()
  readonly clients = new Map<string, ClientRevocation>()
  readonly subjects = new Map<string, SubjectRevocation>()
  readonly sessions = new Map<string, SessionRevocation>()
  readonly grants = new Map<string, ClientGrant>()
  private readonly grantByPair = new Map<string, string>()

  /** The most live entries: `maxEntries`, and never more than one Map holds (`mapCapacity`, lowered by tests). */
  private readonly limit: number

  constructor (private readonly maxEntries: number, private readonly mapCapacity = MAP_CAPACITY) {
    this.limit = Math.min(maxEntries, mapCapacity)
  }

  get size (): number {
    return this.tokenCount + this.clients.size + this.subjects.size + this.sessions.size + this.grants.size
  }

  /**
   * Refuses `adding` entries that would grow the state past its bound (counting `staged`
   * ones written but not applied yet); never evicts a revocation.
   */
  ensureRoom (now: number, adding = 1, staged = 0): void {
    if (this.size + staged + adding <= this.limit) return
    this.purgeExpired(now)
    if (this.size + staged + adding > this.limit) {
      throw new StoreError(this.limit < this.maxEntries
        ? `revocation store is full (${capacityText(this.limit)} live entries, the most a V8 Map holds); keep more revocations in RedisStore or PostgresStore`
        : `revocation store is full (${this.maxEntries} live entries); raise maxEntries or shorten token lifetimes`)
    }
  }

  /**
   * Refuses a new key in `map` once it holds what a Map can: reached only by replaying a
   * FileStore log written with a larger bound (live writes are refused by ensureRoom
   * first), which then fails to open with this error rather than a RangeError.
   */
  private roomIn (map: Map<string, unknown>, key: string): void {
    if (map.size >= this.mapCapacity && !map.has(key)) {
      throw new StoreError(`revocation store holds more entries than a V8 Map can (${capacityText(this.mapCapacity)}); keep them in RedisStore or PostgresStore`)
    }
  }

  /** Checks a grant can be created (throws 409 otherwise) without changing anything. */
  checkGrantCreatable (grant: ClientGrant): void {
    if (this.grantByPair.has(grant.client_id + SEP + grant.audience) || this.grants.has(grant.id)) throw new GrantConflictError()
  }

  /** Applies one operation and returns the change other caches must hear of. */
  apply (operation: StoreOperation): RevocationChange | undefined {
    switch (operation.op) {
      case 'token': {
        const e = operation.entry
        let byJti = this.tokens.get(e.aud)
        if (byJti === undefined) {
          this.roomIn(this.tokens, e.aud)
          this.tokens.set(e.aud, byJti = new Map())
        }
        if (!byJti.has(e.jti)) {
          this.roomIn(byJti, e.jti)
          this.tokenCount++
          this.added++
        }
        byJti.set(e.jti, e.expiresAt ?? Infinity)
        return { type: 'token', aud: e.aud, jti: e.jti }
      }
      case 'client': {
        const e = operation.entry
        const key = scoped(e.clientId + SEP + e.audience, e.issuer)
        const previous = this.clients.get(key)
        if (previous === undefined) this.roomIn(this.clients, key)
        if (previous === undefined || previous.revokedAt <= e.revokedAt) this.clients.set(key, e)
        return { type: 'client', clientId: e.clientId, ...issuerMember(e.issuer) }
      }
      case 'subject': {
        const e = operation.entry
        const key = scoped(e.subject, e.issuer)
        const previous = this.subjects.get(key)
        if (previous === undefined) this.roomIn(this.subjects, key)
        if (previous === undefined || previous.revokedAt <= e.revokedAt) this.subjects.set(key, e)
        return { type: 'subject', subject: e.subject, ...issuerMember(e.issuer) }
      }
      case 'session': {
        const e = operation.entry
        const key = scoped(e.sessionId, e.issuer)
        const previous = this.sessions.get(key)
        if (previous === undefined) this.roomIn(this.sessions, key)
        if (previous === undefined || previous.revokedAt <= e.revokedAt) this.sessions.set(key, e)
        return { type: 'session', sessionId: e.sessionId, ...issuerMember(e.issuer) }
      }
      case 'grant': {
        const g = operation.grant
        const old = this.grants.get(g.id)
        if (old) this.grantByPair.delete(old.client_id + SEP + old.audience)
        else this.roomIn(this.grants, g.id)
        this.grants.set(g.id, g)
        this.grantByPair.set(g.client_id + SEP + g.audience, g.id)
        return { type: 'grant', clientId: g.client_id }
      }
      case 'ungrant': {
        const g = this.grants.get(operation.id)
        if (!g) return undefined
        this.grants.delete(g.id)
        this.grantByPair.delete(g.client_id + SEP + g.audience)
        return { type: 'grant', clientId: g.client_id }
      }
    }
  }

  /**
   * The state of one token. Runs on every cache miss: a map that is empty is not asked,
   * which spares building its joined key (most APIs revoke tokens, few revoke clients).
   */
  lookup (query: RevocationQuery, now: number): RevocationState {
    let tokenRevoked = false
    let clientRevokedAt: number | null = null
    let grant: RevocationState['grant'] = null
    const clientId = this.clients.size === 0 ? undefined : query.clientId
    const issuer = query.issuer
    const grantClientId = query.includeGrant && this.grantByPair.size !== 0 ? query.clientId : undefined
    for (const aud of query.audiences) {
      if (query.jti !== undefined && this.tokenCount !== 0) {
        const expiresAt = this.tokens.get(aud)?.get(query.jti)
        if (expiresAt !== undefined && expiresAt > now) tokenRevoked = true
      }
      if (clientId !== undefined) {
        const key = clientId + SEP + aud
        clientRevokedAt = later(this.clients, key, now, clientRevokedAt)
        if (issuer) clientRevokedAt = later(this.clients, key + SEP + issuer, now, clientRevokedAt)
      }
      if (grantClientId !== undefined && grant === null) {
        const id = this.grantByPair.get(grantClientId + SEP + aud)
        const g = id === undefined ? undefined : this.grants.get(id)
        if (g) grant = { created_at: g.created_at, scope: g.scope }
      }
    }
    if (clientId !== undefined) {
      const key = clientId + SEP + ALL_AUDIENCES
      clientRevokedAt = later(this.clients, key, now, clientRevokedAt)
      if (issuer) clientRevokedAt = later(this.clients, key + SEP + issuer, now, clientRevokedAt)
    }
    let subjectRevokedAt: number | null = null
    if (query.subject !== undefined && this.subjects.size !== 0) {
      subjectRevokedAt = later(this.subjects, query.subject, now, null)
      if (issuer) subjectRevokedAt = later(this.subjects, query.subject + SEP + issuer, now, subjectRevokedAt)
    }
    let sessionRevokedAt: number | null = null
    if (query.sessionId !== undefined && this.sessions.size !== 0) {
      sessionRevokedAt = later(this.sessions, query.sessionId, now, null)
      if (issuer) sessionRevokedAt = later(this.sessions, query.sessionId + SEP + issuer, now, sessionRevokedAt)
    }
    const state: RevocationState = { tokenRevoked, clientRevokedAt, subjectRevokedAt, sessionRevokedAt }
    if (query.includeGrant) state.grant = grant
    return state
  }

  listRevokedTokens (aud: string | undefined, now: number): RevokedToken[] {
    const out: RevokedToken[] = []
    for (const [tokenAud, byJti] of this.tokens) {
      if (aud !== undefined && tokenAud !== aud) continue
      for (const [jti, expiresAt] of byJti) {
        if (expiresAt > now) out.push({ aud: tokenAud, jti, expiresAt: expiresAt === Infinity ? null : expiresAt })
      }
    }
    return out
  }

  /**
   * At most `limit` live tokens after the key `after`, in (aud, jti) order (code units),
   * for a walk that began when `walk` tokens had been added (`tokensAdded` then): an
   * order no write or purge can shift, so a cursor stays valid. A Map has no order to
   * seek in: each audience's jtis are sorted once into a snapshot, kept and reused by
   * every page of every walk that began before it was taken (a token added since is one
   * revoked during the walk, which may be left out); each jti is read live from the map.
   * `more` says the page is full (the next may still be empty).
   */
  revokedTokensAfter (aud: string | undefined, after: readonly [string, string] | undefined, walk: number, limit: number, now: number): { tokens: RevokedToken[], more: boolean } {
    const audiences = [...this.tokens.keys()]
      .filter((a) => (aud === undefined || a === aud) && (after === undefined || a >= after[0]))
      .sort(byCodeUnits)
    const tokens: RevokedToken[] = []
    for (const a of audiences) {
      const byJti = this.tokens.get(a)!
      const sorted = this.sortedJtis(a, byJti, walk)
      let i = 0
      if (after !== undefined && a === after[0]) {
        // The first jti after the cursor's: a binary search.
        for (let hi = sorted.length; i < hi;) {
          const mid = (i + hi) >>> 1
          if (sorted[mid]! <= after[1]) i = mid + 1
          else hi = mid
        }
      }
      for (; i < sorted.length; i++) {
        const expiresAt = byJti.get(sorted[i]!)
        if (expiresAt === undefined || expiresAt <= now) continue
        tokens.push({ aud: a, jti: sorted[i]!, expiresAt: expiresAt === Infinity ? null : expiresAt })
        if (tokens.length === limit) return { tokens, more: true }
      }
    }
    return { tokens, more: false }
  }

  /** Tokens added so far (a new (aud, jti), not a later expiry): where a listing walk begins. */
  get tokensAdded (): number {
    return this.added
  }

  /** The audience's jtis in order, as of `walk` added tokens or later: the snapshot kept, or a new one. */
  private sortedJtis (aud: string, byJti: Map<string, number>, walk: number): string[] {
    const kept = this.snapshots.get(aud)
    if (kept !== undefined && kept.added >= walk) return kept.jtis
    const jtis = [...byJti.keys()].sort(byCodeUnits)
    this.snapshots.set(aud, { added: this.added, jtis })
    return jtis
  }

  listGrants (filter: GrantFilter): ClientGrant[] {
    const out: ClientGrant[] = []
    for (const g of this.grants.values()) {
      if ((filter.client_id === undefined || g.client_id === filter.client_id) &&
          (filter.audience === undefined || g.audience === filter.audience)) out.push(copyGrant(g))
    }
    return out
  }

  purgeExpired (now: number): number {
    let removed = 0
    for (const [aud, byJti] of this.tokens) {
      for (const [jti, expiresAt] of byJti) {
        if (expiresAt <= now) {
          byJti.delete(jti)
          removed++
        }
      }
      if (byJti.size === 0) {
        this.tokens.delete(aud)
        this.snapshots.delete(aud)
      }
    }
    this.tokenCount -= removed
    for (const map of [this.clients, this.subjects, this.sessions] as Map<string, { expiresAt: number | null }>[]) {
      for (const [key, e] of map) {
        if (!live(e.expiresAt, now)) {
          map.delete(key)
          removed++
        }
      }
    }
    return removed
  }

  /** Every live entry as the operations that rebuild it (FileStore's compaction). */
  * snapshot (now: number): Generator<StoreOperation> {
    for (const entry of this.listRevokedTokens(undefined, now)) yield { op: 'token', entry }
    for (const entry of this.clients.values()) if (live(entry.expiresAt, now)) yield { op: 'client', entry }
    for (const entry of this.subjects.values()) if (live(entry.expiresAt, now)) yield { op: 'subject', entry }
    for (const entry of this.sessions.values()) if (live(entry.expiresAt, now)) yield { op: 'session', entry }
    for (const grant of this.grants.values()) yield { op: 'grant', grant }
  }
}

const byCodeUnits = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)
export function copyGrant (g: ClientGrant): ClientGrant {
  return { id: g.id, client_id: g.client_id, audience: g.audience, scope: [...g.scope], created_at: g.created_at }
}
