import { BoundedClaims } from './claims.js'
import { ChangeFeed, issuerMember } from './change-feed.js'
import { copyGrant, StoreState, type StoreOperation } from './state.js'
import type {
  ChangeListener, ClientGrant, ClientRevocation, GrantFilter, RevocationChange, RevocationQuery,
  RevocationState, RevocationStore, RevokedToken, SessionRevocation, SubjectRevocation,
} from './types.js'

/** What one write puts in the log, and the change it announces (default: that of its last operation). */
interface Staged {
  operations: StoreOperation[]
  change?: RevocationChange
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

  constructor (maxEntries: number) {
    this.state = new StoreState(maxEntries)
  }

  /** Makes `operations` durable, in order; resolves only once they all are. */
  protected abstract commit (operations: StoreOperation[]): Promise<void>

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
    try {
      await this.commit(operations)
    } catch (err) {
      for (const { write } of accepted) write.reject(err)
      return
    }
    for (const { write, staged } of accepted) {
      let change: RevocationChange | undefined
      for (const operation of staged.operations) change = this.state.apply(operation)
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
  private async add (operation: StoreOperation): Promise<void> {
    await this.write((staged) => {
      this.state.ensureRoom(Date.now(), 1, staged)
      return { operations: [operation] }
    })
  }

  async revokeToken (entry: RevokedToken): Promise<void> {
    await this.add({ op: 'token', entry: { aud: entry.aud, jti: entry.jti, expiresAt: entry.expiresAt } })
  }

  async revokeTokens (entries: RevokedToken[]): Promise<void> {
    const operations: StoreOperation[] = entries.map((e) => ({ op: 'token', entry: { aud: e.aud, jti: e.jti, expiresAt: e.expiresAt } }))
    if (operations.length === 0) return
    const change: RevocationChange = { type: 'tokens', tokens: entries.map((e) => ({ aud: e.aud, jti: e.jti })) }
    await this.write((staged) => {
      this.state.ensureRoom(Date.now(), operations.length, staged)
      return { operations, change }
    })
  }

  async listRevokedTokens (filter: { aud?: string | undefined }): Promise<RevokedToken[]> {
    await this.ready()
    return this.state.listRevokedTokens(filter.aud, Date.now())
  }

  async revokeClient (entry: ClientRevocation): Promise<void> {
    const { clientId, audience, revokedAt, expiresAt } = entry
    await this.add({ op: 'client', entry: { clientId, audience, ...issuerMember(entry.issuer), revokedAt, expiresAt } })
  }

  async revokeSubject (entry: SubjectRevocation): Promise<void> {
    await this.add({ op: 'subject', entry: { subject: entry.subject, ...issuerMember(entry.issuer), revokedAt: entry.revokedAt, expiresAt: entry.expiresAt } })
  }

  async revokeSession (entry: SessionRevocation): Promise<void> {
    await this.add({ op: 'session', entry: { sessionId: entry.sessionId, ...issuerMember(entry.issuer), revokedAt: entry.revokedAt, expiresAt: entry.expiresAt } })
  }

  async createGrant (grant: ClientGrant): Promise<ClientGrant> {
    await this.write(() => {
      this.state.checkGrantCreatable(grant)
      this.state.ensureRoom(Date.now())
      return { operations: [{ op: 'grant', grant: copyGrant(grant) }] }
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

  async updateGrant (id: string, scope: string[]): Promise<ClientGrant | null> {
    let updated: ClientGrant | null = null
    await this.write(() => {
      const g = this.state.grants.get(id)
      if (!g) return null
      updated = { ...copyGrant(g), scope: [...scope] }
      return { operations: [{ op: 'grant', grant: updated }] }
    }, true)
    return updated === null ? null : copyGrant(updated)
  }

  async deleteGrant (id: string): Promise<ClientGrant | null> {
    let deleted: ClientGrant | null = null
    await this.write(() => {
      const g = this.state.grants.get(id)
      if (!g) return null
      deleted = copyGrant(g)
      return { operations: [{ op: 'ungrant', id }] }
    }, true)
    return deleted
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

  async purgeExpired (now: number): Promise<number> {
    await this.ready()
    return this.state.purgeExpired(now)
  }
}
