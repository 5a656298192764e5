import { BoundedClaims } from './claims.js'
import { ChangeFeed, issuerMember } from './change-feed.js'
import { DEFAULT_LOG_MAX_ENTRIES, logLimits, RevocationLog, type LogOptions } from './revocation-log.js'
import { copyGrant, inMemoryLimit, StoreState, type StoreOperation } from './state.js'
import { decodeTokenCursor, encodeTokenCursor, tokenPageLimit } from './token-pages.js'
import type {
  ChangeAuthor, ChangeListener, ClientGrant, ClientRevocation, GrantFilter, HistoryFilter, LogEntry, LoggedChange, LogPage,
  RevocationChange, RevocationQuery, RevocationState, RevocationStore, RevokedToken, RevokedTokenPage, SessionRevocation, SubjectRevocation,
  TokenPageRequest,
} from './types.js'

/** Live entries an in-memory store keeps unless told otherwise. */
const DEFAULT_MAX_ENTRIES = 1_000_000

/**
 * The bounds of MemoryStore and FileStore (`store` names it in messages), checked against
 * what one process can hold: every live entry and every log entry lives in its memory.
 */
export function inMemoryLimits (options: LogOptions & { maxEntries?: number }, store: string): { maxEntries: number, log: { retentionMs: number, maxEntries: number } } {
  const maxEntries = inMemoryLimit(options.maxEntries, DEFAULT_MAX_ENTRIES, 'maxEntries', store)
  inMemoryLimit(options.logMaxEntries, DEFAULT_LOG_MAX_ENTRIES, 'logMaxEntries', store)
  return { maxEntries, log: logLimits(options, store) }
}

const isWalkCursor = (value: unknown): value is [string, string, number] =>
  Array.isArray(value) && value.length === 3 && typeof value[0] === 'string' && typeof value[1] === 'string' && Number.isSafeInteger(value[2]) && value[2] >= 0

/** What one write puts in the state, the change it announces (default: that of its last operation), and its log entry. */
interface Staged {
  operations: StoreOperation[]
  change?: RevocationChange
  logged: LoggedChange
  author: ChangeAuthor | undefined
}

/** One write as it is made durable: its operations and its log entry, together (FileStore: one line). */
export interface CommittedWrite {
  operations: StoreOperation[]
  entry: LogEntry
}

interface QueuedWrite {
  /** Runs when the write's batch is formed; null when there is nothing to write. */
  prepare: (staged: number) => Staged | null
  /** Reads the state to decide (grants): runs in a batch of its own, after every earlier write applied. */
  alone: boolean
  resolve: () => void
  reject: (err: unknown) => void
}

/**
 * Package-internal: reads an in-process store's state without a promise, so a cache miss
 * backed by a MemoryStore or a loaded FileStore costs no microtask chain. Returns
 * undefined while the state is not in memory yet, or when `lookup` was replaced (the
 * caller then takes `lookup`).
 */
export const lookupNow = Symbol('fastify-jwt-revocation.lookupNow')

/**
 * Package-internal: claims a key in an in-process store's memory without a promise (a DPoP
 * proof's `jti`), or undefined when `claimOnce` was replaced (the caller then takes it).
 */
export const claimNow = Symbol('fastify-jwt-revocation.claimNow')

/** A store that claims in memory at once (see `claimNow`). */
export interface InMemoryClaim {
  [claimNow](key: string, expiresAt: number): boolean | undefined
}

/** The store itself when `claimNow` may stand in for its `claimOnce` (as `inMemoryLookup` decides for `lookup`). */
export function inMemoryClaim (store: Pick<RevocationStore, 'claimOnce'>): InMemoryClaim | null {
  if (store.claimOnce !== StateBackedStore.prototype.claimOnce) return null
  return typeof (store as Partial<InMemoryClaim>)[claimNow] === 'function' ? store as unknown as InMemoryClaim : null
}

/** A store that can answer from memory at once (see `lookupNow`). */
export interface InMemoryLookup {
  [lookupNow](query: RevocationQuery, now: number): RevocationState | undefined
}

/**
 * The store itself when a miss may be answered by `lookupNow` instead of `lookup`: only
 * when the `lookup` the caller would call, read through the very object it was given, is
 * the built-in one. A subclass, a wrapper set on the instance or a Proxy handing out
 * another `lookup` is asked on every miss. `lookupNow` checks its own `this` again on
 * each call, for a wrapper installed later; this check is the one a Proxy that binds
 * methods to its target cannot slip past, since that call then sees only the target.
 */
export function inMemoryLookup (store: Pick<RevocationStore, 'lookup'>): InMemoryLookup | null {
  if (store.lookup !== StateBackedStore.prototype.lookup) return null
  return typeof (store as Partial<InMemoryLookup>)[lookupNow] === 'function' ? store as unknown as InMemoryLookup : null
}

/**
 * A store whose state lives in this process (MemoryStore, FileStore). Writes are
 * group-committed: those that arrive while a commit is in flight are made durable
 * together by the next `commit` (one fsync for the FileStore), then applied to memory,
 * then acknowledged. An acknowledged write is never lost and a failed one changes
 * nothing. Listeners in this process hear every change: two apps sharing one store
 * stay consistent.
 */
export abstract class StateBackedStore implements RevocationStore {
  readonly issuerScopes = true
  protected readonly state: StoreState
  private readonly feed = new ChangeFeed()
  private readonly queue: QueuedWrite[] = []
  private draining: Promise<void> | null = null
  /** Every change with who made it and why, ordered: other instances follow it, `history` reads it. */
  protected readonly changeLog: RevocationLog

  constructor (maxEntries: number, logLimits: { retentionMs: number, maxEntries: number }) {
    this.state = new StoreState(maxEntries)
    this.changeLog = new RevocationLog(logLimits.retentionMs, logLimits.maxEntries)
  }

  /** Makes `writes` durable, in order, each with its log entry; resolves only once they all are. */
  protected abstract commit (writes: CommittedWrite[]): Promise<void>

  async ready (): Promise<void> {}
  async close (): Promise<void> {}

  /** Resolves once every write queued so far has finished. */
  protected async idle (): Promise<void> {
    while (this.draining !== null) await this.draining
  }

  private write (prepare: QueuedWrite['prepare'], alone = false): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ prepare, alone, resolve, reject })
      this.draining ??= this.drain()
    })
  }

  private async drain (): Promise<void> {
    try {
      while (this.queue.length > 0) {
        // Waiting here (also when ready) lets writes of the same tick join the batch.
        try {
          await this.ready()
        } catch (err) {
          for (const write of this.queue.splice(0)) write.reject(err)
          return
        }
        const first = this.queue[0]!
        const batch = first.alone ? this.queue.splice(0, 1) : this.queue.splice(0, this.leadingShared())
        await this.commitBatch(batch)
      }
    } finally {
      this.draining = null
    }
  }

  /** How many writes at the head of the queue can share one commit. */
  private leadingShared (): number {
    const n = this.queue.findIndex((w) => w.alone)
    return n === -1 ? this.queue.length : n
  }

  private async commitBatch (batch: QueuedWrite[]): Promise<void> {
    const accepted: Array<{ write: QueuedWrite, staged: Staged }> = []
    const operations: StoreOperation[] = []
    for (const write of batch) {
      let staged: Staged | null
      try {
        staged = write.prepare(operations.length)
      } catch (err) {
        write.reject(err)
        continue
      }
      if (staged === null) write.resolve()
      else {
        accepted.push({ write, staged })
        for (const operation of staged.operations) operations.push(operation)
      }
    }
    if (accepted.length === 0) return
    // Numbered now, in the order they commit; a failed commit numbers nothing.
    const now = Date.now()
    const writes: CommittedWrite[] = []
    let previous = this.changeLog.last
    for (const { staged } of accepted) {
      const entry = this.changeLog.next(staged.logged, staged.author, now)
      entry.id = String(++previous)
      writes.push({ operations: staged.operations, entry })
    }
    try {
      await this.commit(writes)
    } catch (err) {
      for (const { write } of accepted) write.reject(err)
      return
    }
    for (let i = 0; i < accepted.length; i++) {
      const { write, staged } = accepted[i]!
      let change: RevocationChange | undefined
      for (const operation of staged.operations) change = this.state.apply(operation)
      this.changeLog.append(writes[i]!.entry, now)
      change = staged.change ?? change
      if (change) this.feed.emit(change)
      write.resolve()
    }
  }

  async lookup (query: RevocationQuery): Promise<RevocationState> {
    await this.ready()
    return this.state.lookup(query, Date.now())
  }

  /** Whether the state is in memory (a FileStore's once its log is read). */
  protected get loaded (): boolean {
    return true
  }

  [lookupNow] (query: RevocationQuery, now: number): RevocationState | undefined {
    // A `lookup` replaced on the instance or a subclass (to wrap or instrument it) is honoured.
    if (!this.loaded || this.lookup !== StateBackedStore.prototype.lookup) return undefined
    return this.state.lookup(query, now)
  }

  /** One new entry: room is made (or refused) when its batch is formed. */
  private async add (operation: StoreOperation, logged: LoggedChange, author: ChangeAuthor | undefined): Promise<void> {
    await this.write((staged) => {
      this.state.ensureRoom(Date.now(), 1, staged)
      return { operations: [operation], logged, author }
    })
  }

  async revokeToken (entry: RevokedToken, author?: ChangeAuthor): Promise<void> {
    const { aud, jti, expiresAt } = entry
    await this.add({ op: 'token', entry: { aud, jti, expiresAt } }, { type: 'token', aud, jti, expiresAt }, author)
  }

  async revokeTokens (entries: RevokedToken[], author?: ChangeAuthor): Promise<void> {
    const operations: StoreOperation[] = entries.map((e) => ({ op: 'token', entry: { aud: e.aud, jti: e.jti, expiresAt: e.expiresAt } }))
    if (operations.length === 0) return
    const tokens = entries.map((e) => ({ aud: e.aud, jti: e.jti }))
    const change: RevocationChange = { type: 'tokens', tokens }
    const logged: LoggedChange = { type: 'tokens', tokens: tokens.map((t) => ({ ...t })), expiresAt: latestExpiry(entries) }
    await this.write((staged) => {
      this.state.ensureRoom(Date.now(), operations.length, staged)
      return { operations, change, logged, author }
    })
  }

  async listRevokedTokens (filter: { aud?: string | undefined }): Promise<RevokedToken[]> {
    await this.ready()
    return this.state.listRevokedTokens(filter.aud, Date.now())
  }

  async listRevokedTokensPage (filter: { aud?: string | undefined }, page?: TokenPageRequest): Promise<RevokedTokenPage> {
    const name = this.constructor.name
    const limit = tokenPageLimit(page, name)
    // The cursor: the last (aud, jti) listed and how many tokens had been added when the walk began.
    const at = page?.cursor === undefined ? undefined : decodeTokenCursor(page.cursor, name, isWalkCursor)
    await this.ready()
    const walk = at?.[2] ?? this.state.tokensAdded
    const { tokens, more } = this.state.revokedTokensAfter(filter.aud, at && [at[0], at[1]], walk, limit, Date.now())
    const last = tokens.at(-1)
    return { tokens, next: more && last !== undefined ? encodeTokenCursor([last.aud, last.jti, walk]) : null }
  }

  async revokeClient (entry: ClientRevocation, author?: ChangeAuthor): Promise<void> {
    const { clientId, audience, revokedAt, expiresAt } = entry
    const issuer = issuerMember(entry.issuer)
    await this.add({ op: 'client', entry: { clientId, audience, ...issuer, revokedAt, expiresAt } }, { type: 'client', clientId, audience, ...issuer, revokedAt }, author)
  }

  async revokeSubject (entry: SubjectRevocation, author?: ChangeAuthor): Promise<void> {
    const { subject, revokedAt, expiresAt } = entry
    const issuer = issuerMember(entry.issuer)
    await this.add({ op: 'subject', entry: { subject, ...issuer, revokedAt, expiresAt } }, { type: 'subject', subject, ...issuer, revokedAt }, author)
  }

  async revokeSession (entry: SessionRevocation, author?: ChangeAuthor): Promise<void> {
    const { sessionId, revokedAt, expiresAt } = entry
    const issuer = issuerMember(entry.issuer)
    await this.add({ op: 'session', entry: { sessionId, ...issuer, revokedAt, expiresAt } }, { type: 'session', sessionId, ...issuer, revokedAt }, author)
  }

  async createGrant (grant: ClientGrant, author?: ChangeAuthor): Promise<ClientGrant> {
    await this.write(() => {
      this.state.checkGrantCreatable(grant)
      this.state.ensureRoom(Date.now())
      return { operations: [{ op: 'grant', grant: copyGrant(grant) }], logged: grantLogged('create', grant), author }
    }, true)
    return copyGrant(grant)
  }

  async getGrant (id: string): Promise<ClientGrant | null> {
    await this.ready()
    const g = this.state.grants.get(id)
    return g ? copyGrant(g) : null
  }

  async listGrants (filter: GrantFilter): Promise<ClientGrant[]> {
    await this.ready()
    return this.state.listGrants(filter)
  }

  async updateGrant (id: string, scope: string[], author?: ChangeAuthor): Promise<ClientGrant | null> {
    let updated: ClientGrant | null = null
    await this.write(() => {
      const g = this.state.grants.get(id)
      if (!g) return null
      updated = { ...copyGrant(g), scope: [...scope] }
      return { operations: [{ op: 'grant', grant: updated }], logged: grantLogged('update', updated), author }
    }, true)
    return updated === null ? null : copyGrant(updated)
  }

  async deleteGrant (id: string, author?: ChangeAuthor): Promise<ClientGrant | null> {
    let deleted: ClientGrant | null = null
    await this.write(() => {
      const g = this.state.grants.get(id)
      if (!g) return null
      deleted = copyGrant(g)
      return { operations: [{ op: 'ungrant', id }], logged: grantLogged('delete', g), author }
    }, true)
    return deleted
  }

  // ---- the log ----

  async readLog (cursor: string | null, limit: number): Promise<LogPage> {
    await this.ready()
    return this.changeLog.read(cursor, limit, Date.now())
  }

  async history (filter: HistoryFilter): Promise<{ entries: LogEntry[], next: string | null }> {
    await this.ready()
    return this.changeLog.history(filter, Date.now())
  }

  subscribe (listener: ChangeListener): Promise<() => Promise<void>> {
    return this.feed.subscribe(listener)
  }

  // ---- lease: one process holds this store, so the lease lives in its memory ----

  private readonly leases = new Map<string, { holder: string, expiresAt: number }>()

  async lease (name: string, holder: string, ttl: number): Promise<boolean> {
    const now = Date.now()
    const current = this.leases.get(name)
    if (current !== undefined && current.holder !== holder && current.expiresAt > now) return false
    this.leases.set(name, { holder, expiresAt: now + ttl })
    return true
  }

  // ---- claims: one process holds this store, so one bounded map serves every app on it ----

  private readonly claims = new BoundedClaims()

  async claimOnce (key: string, expiresAt: number): Promise<boolean> {
    return this.claims.claimOnce(key, expiresAt)
  }

  [claimNow] (key: string, expiresAt: number): boolean | undefined {
    if (this.claimOnce !== StateBackedStore.prototype.claimOnce) return undefined
    return this.claims.claimOnce(key, expiresAt)
  }

  async purgeExpired (now: number): Promise<number> {
    await this.ready()
    return this.state.purgeExpired(now)
  }
}

/** A batch's log entry lasts as long as its longest-lived token (null: one is kept until removed). */
function latestExpiry (entries: RevokedToken[]): number | null {
  let latest = -Infinity
  for (const e of entries) {
    if (e.expiresAt === null) return null
    if (e.expiresAt > latest) latest = e.expiresAt
  }
  return latest
}

function grantLogged (action: 'create' | 'update' | 'delete', g: ClientGrant): LoggedChange {
  return { type: 'grant', action, grantId: g.id, clientId: g.client_id, audience: g.audience, scope: [...g.scope] }
}
