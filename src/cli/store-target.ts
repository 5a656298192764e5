// `--store`: the command line opens the store itself, as a server would, with the
// client library the user installed (the package never brings its own).
import { readFile, stat } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { newGrantId } from '../revocation/grant-id.js'
import { FileStore, isAlive } from '../stores/file.js'
import { MAX_TOKEN_PAGE, revokedTokenPages } from '../stores/token-pages.js'
import type { ChangeAuthor, ClientGrant, GrantFilter, HistoryFilter, RevocationStore, RevokedToken } from '../stores/types.js'
import { TargetRefusedError, UsageError } from './failures.js'
import type { HistoryPage, Target } from './target.js'

/** A URL fit to print: the password hidden. */
export function redactUrl (url: string): string {
  try {
    const u = new URL(url)
    if (u.password !== '') u.password = '***'
    return u.href
  } catch {
    return url
  }
}

/** Loads an optional peer, or says how to install it. */
async function peer<T> (name: string, scheme: string): Promise<T> {
  try {
    return await import(name) as T
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_MODULE_NOT_FOUND' || (err as { code?: string }).code === 'MODULE_NOT_FOUND') {
      throw new TargetRefusedError(`--store ${scheme}… needs the ${name} package, which is not installed here: npm install ${name}`)
    }
    throw err
  }
}

async function openFileStore (spec: string): Promise<{ store: FileStore, describe: string }> {
  const path = resolve(spec.startsWith('file://') ? fileURLToPath(spec) : spec.slice('file:'.length))
  if (spec === 'file:' || spec === 'file://') throw new UsageError('--store file:<dir> needs the directory of the FileStore')
  // A mistyped path would otherwise become a new, empty store that revokes nothing anywhere.
  const exists = await stat(path).then((s) => s.isDirectory(), () => false)
  if (!exists) throw new TargetRefusedError(`no FileStore at ${path}: the directory does not exist (a server creates it on its first start)`)
  const store = new FileStore({ path })
  try {
    await store.ready()
  } catch (err) {
    const owner = Number.parseInt(await readFile(join(path, 'lock'), 'utf8').catch(() => ''), 10)
    if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner)) {
      throw new TargetRefusedError(`the FileStore in ${path} is held by a running server (process ${owner}); one process writes it at a time. ` +
        'Go through that server\'s admin routes instead: --admin <url of the admin routes> --token <admin token>')
    }
    throw err
  }
  return { store, describe: `FileStore ${path}` }
}

async function openRedis (url: string, prefix: string | undefined): Promise<{ store: RevocationStore, describe: string, close: () => Promise<void> }> {
  const { Cluster, Redis } = await peer<typeof import('ioredis')>('ioredis', 'redis://')
  const { RedisStore } = await import('../stores/redis.js')
  const client = new Redis(url, { lazyConnect: true, connectTimeout: 5000, maxRetriesPerRequest: 1, retryStrategy: () => null, enableAutoPipelining: true })
  client.on('error', () => {})
  try {
    await client.connect()
  } catch (err) {
    client.disconnect()
    throw new Error(`cannot reach Redis at ${redactUrl(url)} (${(err as Error).message})`)
  }
  // A Cluster node answers the same URL: the store then needs a Cluster client, which
  // follows the slots of every bucket to its primary (a plain client would get MOVED).
  let store: RevocationStore
  let close = async () => { client.disconnect() }
  if (/^cluster_enabled:1\b/m.test(await client.info('cluster').catch(() => ''))) {
    client.disconnect()
    const cluster = new Cluster([url], { redisOptions: clusterNodeOptions(url), enableOfflineQueue: true, enableAutoPipelining: true, clusterRetryStrategy: () => null })
    cluster.on('error', () => {})
    await cluster.ping().catch((err: Error) => {
      cluster.disconnect()
      throw new Error(`cannot reach the Redis Cluster at ${redactUrl(url)} (${err.message})`)
    })
    store = new RedisStore({ client: cluster, ...(prefix === undefined ? {} : { prefix }) })
    close = async () => { cluster.disconnect() }
  } else {
    store = new RedisStore({ client, ...(prefix === undefined ? {} : { prefix }) })
  }
  return { store, describe: `Redis ${redactUrl(url)}${prefix === undefined ? '' : ` prefix ${prefix}`}`, close }
}

/** What every node of a Cluster is reached with: the credentials and TLS of the URL given. */
function clusterNodeOptions (url: string): { username?: string, password?: string, tls?: object, maxRetriesPerRequest: number, connectTimeout: number } {
  const u = new URL(url)
  return {
    ...(u.username === '' ? {} : { username: decodeURIComponent(u.username) }),
    ...(u.password === '' ? {} : { password: decodeURIComponent(u.password) }),
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
    maxRetriesPerRequest: 1,
    connectTimeout: 5000,
  }
}

async function openPostgres (url: string, prefix: string | undefined): Promise<{ store: RevocationStore, describe: string, close: () => Promise<void> }> {
  // pg is CommonJS: its classes are named exports or on the default one, depending on the version.
  const pg = await peer<typeof import('pg') & { default?: typeof import('pg') }>('pg', 'postgres://')
  const { PostgresStore } = await import('../stores/postgres.js')
  const Pool = pg.Pool ?? pg.default!.Pool
  const pool = new Pool({ connectionString: url, max: 4, connectionTimeoutMillis: 5000 })
  pool.on('error', () => {})
  const store = new PostgresStore({ pool, ...(prefix === undefined ? {} : { tablePrefix: prefix }) })
  try {
    await store.ready()
  } catch (err) {
    await pool.end().catch(() => {})
    throw new Error(`cannot reach PostgreSQL at ${redactUrl(url)} (${(err as Error).message})`)
  }
  return { store, describe: `PostgreSQL ${redactUrl(url)}${prefix === undefined ? '' : ` tables ${prefix}*`}`, close: () => pool.end() }
}

/** Opens the store `--store` names; the caller closes the target. */
export async function openStoreTarget (spec: string, prefix: string | undefined): Promise<Target> {
  if (spec.startsWith('file:')) {
    if (prefix !== undefined) throw new UsageError('--prefix applies to Redis and PostgreSQL stores, not to a FileStore')
    const { store, describe } = await openFileStore(spec)
    return new StoreTarget(store, describe, async () => {})
  }
  if (/^rediss?:\/\//.test(spec)) {
    const { store, describe, close } = await openRedis(spec, prefix)
    // RedisStore writes a batch with one script per bucket it touches: a batch that spans
    // many tokens per bucket sends far fewer commands (5,000 against the ~10,000 buckets
    // of a million-token prefix is one command per token).
    return new StoreTarget(store, describe, close, REDIS_BATCH)
  }
  if (/^postgres(ql)?:\/\//.test(spec)) {
    const { store, describe, close } = await openPostgres(spec, prefix)
    return new StoreTarget(store, describe, close)
  }
  throw new UsageError(`--store must be file:<dir>, redis://… or postgres://… (got ${JSON.stringify(redactUrl(spec))})`)
}

/** Tokens per `revokeTokens` of an import into Redis (one log entry each). */
const REDIS_BATCH = 50_000

type GrantStore = Required<Pick<RevocationStore, 'createGrant' | 'listGrants' | 'updateGrant' | 'deleteGrant'>>

/** The commands against a store opened here: the same writes `app.revocation` makes. */
class StoreTarget implements Target {
  readonly takesActor = true

  constructor (private readonly store: RevocationStore, readonly describe: string, private readonly release: () => Promise<void>, readonly batchSize = 5000) {}

  async revokeTokens (entries: RevokedToken[], author: ChangeAuthor): Promise<void> {
    // One token is logged as one token (`revoke-token`), a batch as one batch entry.
    if (this.store.revokeTokens && entries.length > 1) return this.store.revokeTokens(entries, author)
    for (const entry of entries) await this.store.revokeToken(entry, author)
  }

  revokeClient (clientId: string, audience: string | undefined, issuer: string | undefined, author: ChangeAuthor): Promise<void> {
    return this.store.revokeClient({ clientId, audience: audience ?? '*', ...this.scope(issuer), revokedAt: Date.now(), expiresAt: null }, author)
  }

  revokeSubject (subject: string, issuer: string | undefined, author: ChangeAuthor): Promise<void> {
    return this.store.revokeSubject({ subject, ...this.scope(issuer), revokedAt: Date.now(), expiresAt: null }, author)
  }

  /** A scope the store cannot keep is refused, never widened to every issuer. */
  private scope (issuer: string | undefined): { issuer?: string } {
    if (issuer === undefined) return {}
    if (this.store.issuerScopes !== true) throw new Error(`${this.describe} does not keep rules scoped to an issuer`)
    return { issuer }
  }

  listRevoked (aud: string | undefined): AsyncIterable<RevokedToken[]> {
    return revokedTokenPages(this.store, { aud }, MAX_TOKEN_PAGE)
  }

  private grants (): GrantStore {
    const s = this.store
    if (!s.createGrant || !s.listGrants || !s.updateGrant || !s.deleteGrant) throw new TargetRefusedError(`${this.describe} does not keep client grants`)
    return s as GrantStore
  }

  listGrants (filter: GrantFilter): Promise<ClientGrant[]> {
    return this.grants().listGrants(filter)
  }

  createGrant (input: { client_id: string, audience: string, scope: string[] }, author: ChangeAuthor): Promise<ClientGrant> {
    return this.grants().createGrant({ id: newGrantId(), ...input, created_at: Date.now() }, author)
  }

  updateGrant (id: string, scope: string[], author: ChangeAuthor): Promise<ClientGrant | null> {
    return this.grants().updateGrant(id, scope, author)
  }

  async deleteGrant (id: string, author: ChangeAuthor): Promise<ClientGrant | null> {
    const deleted = await this.grants().deleteGrant(id, author)
    // As app.revocation.deleteGrant: the client's tokens for that audience stop working now, not at their exp.
    if (deleted !== null) await this.revokeClient(deleted.client_id, deleted.audience, undefined, author)
    return deleted
  }

  history (filter: HistoryFilter): Promise<HistoryPage> {
    if (typeof this.store.history !== 'function') throw new TargetRefusedError(`${this.describe} does not keep a revocation log`)
    return this.store.history(filter)
  }

  purge (): Promise<number> {
    if (!this.store.purgeExpired) throw new TargetRefusedError(`${this.describe} drops expired entries by itself`)
    return this.store.purgeExpired(Date.now())
  }

  migrate (): Promise<number> {
    const store = this.store as RevocationStore & { migrateLegacyTokens?: () => Promise<number> }
    if (typeof store.migrateLegacyTokens !== 'function') throw new TargetRefusedError(`${this.describe} has no earlier layout to migrate`)
    return store.migrateLegacyTokens()
  }

  async status (): Promise<Record<string, unknown>> {
    let revokedTokens = 0
    for await (const page of this.listRevoked(undefined)) revokedTokens += page.length
    const grants = this.store.listGrants ? (await this.store.listGrants({})).length : null
    return { target: this.describe, revokedTokens, grants }
  }

  async close (): Promise<void> {
    try {
      await this.store.close?.()
    } finally {
      await this.release()
    }
  }
}
