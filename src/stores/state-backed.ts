import { BoundedClaims } from './claims.js'
import { ChangeFeed } from './change-feed.js'
import { copyGrant, StoreState, type StoreOperation } from './state.js'
import type {
  ChangeListener, ClientGrant, ClientRevocation, GrantFilter, RevocationQuery,
  RevocationState, RevocationStore, RevokedToken, SubjectRevocation,
} from './types.js'

/**
 * A store whose state lives in this process (MemoryStore, FileStore). Writes are
 * serialised, made durable by `commit` first and applied to memory after, so an
 * acknowledged write is never lost and a failed one changes nothing. Listeners in
 * this process hear every change: two apps sharing one store stay consistent.
 */
export abstract class StateBackedStore implements RevocationStore {
  protected readonly state: StoreState
  private readonly feed = new ChangeFeed()
  private writes: Promise<unknown> = Promise.resolve()

  constructor (maxEntries: number) {
    this.state = new StoreState(maxEntries)
  }

  /** Makes `operation` durable; resolves only once it is. */
  protected abstract commit (operation: StoreOperation): Promise<void>

  async ready (): Promise<void> {}
  async close (): Promise<void> {}

  /** Resolves once every write queued so far has finished. */
  protected idle (): Promise<void> {
    return this.writes.then(() => {})
  }

  private write<T> (prepare: () => StoreOperation | T): Promise<T | undefined> {
    const run = async () => {
      await this.ready()
      const operation = prepare()
      if (!isOperation(operation)) return operation as T
      await this.commit(operation)
      const change = this.state.apply(operation)
      if (change) this.feed.emit(change)
      return undefined
    }
    const result = this.writes.then(run, run)
    this.writes = result.catch(() => {})
    return result
  }

  async lookup (query: RevocationQuery): Promise<RevocationState> {
    await this.ready()
    return this.state.lookup(query, Date.now())
  }

  async revokeToken (entry: RevokedToken): Promise<void> {
    await this.write(() => {
      this.state.ensureRoom(Date.now())
      return { op: 'token', entry: { aud: entry.aud, jti: entry.jti, expiresAt: entry.expiresAt } }
    })
  }

  async listRevokedTokens (filter: { aud?: string | undefined }): Promise<RevokedToken[]> {
    await this.ready()
    return this.state.listRevokedTokens(filter.aud, Date.now())
  }

  async revokeClient (entry: ClientRevocation): Promise<void> {
    await this.write(() => {
      this.state.ensureRoom(Date.now())
      return { op: 'client', entry: { ...entry } }
    })
  }

  async revokeSubject (entry: SubjectRevocation): Promise<void> {
    await this.write(() => {
      this.state.ensureRoom(Date.now())
      return { op: 'subject', entry: { ...entry } }
    })
  }

  async createGrant (grant: ClientGrant): Promise<ClientGrant> {
    await this.write(() => {
      this.state.checkGrantCreatable(grant)
      this.state.ensureRoom(Date.now())
      return { op: 'grant', grant: copyGrant(grant) }
    })
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
      return { op: 'grant', grant: updated }
    })
    return updated === null ? null : copyGrant(updated)
  }

  async deleteGrant (id: string): Promise<ClientGrant | null> {
    let deleted: ClientGrant | null = null
    await this.write(() => {
      const g = this.state.grants.get(id)
      if (!g) return null
      deleted = copyGrant(g)
      return { op: 'ungrant', id }
    })
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

function isOperation (value: unknown): value is StoreOperation {
  return typeof value === 'object' && value !== null && typeof (value as { op?: unknown }).op === 'string'
}

