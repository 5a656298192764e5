// The store's life beside the app's, against the real servers: an app boots while its
// Redis or PostgreSQL is unreachable and recovers without a restart, and `app.close()`
// resolves whatever order the user closes their own clients in.
import FakeTimers from '@sinonjs/fake-timers'
import Fastify, { type FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import { mkdtemp, rm } from 'node:fs/promises'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import pg from 'pg'
import t from 'tap'
import jwtRevocation, { FileStore, MemoryStore, type JwtRevocationOptions, type RevocationStore } from '../../src/index.js'
import { PostgresStore } from '../../src/stores/postgres.js'
import { RedisStore } from '../../src/stores/redis.js'
import { AUDIENCE, bearer, ISSUER, makeKey, sign } from '../helpers/helpers.js'
import { privateRedis } from '../helpers/redis-servers.js'
import { connectPostgres, connectRedis, deleteKeys, PG_URL, uniqueName } from '../helpers/services.js'

const key = await makeKey('ES256')
const jwks = { keys: [key.publicJwk] }

type Tap = Pick<typeof t, 'teardown'>
type Test = import('tap').Test

function logCapture (): { stream: Writable, lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({ write (chunk, _enc, cb) { lines.push(JSON.parse(chunk.toString())); cb() } })
  return { stream, lines }
}

async function instance (t: Tap, store: RevocationStore, extra: Partial<JwtRevocationOptions> = {}, stream?: Writable): Promise<FastifyInstance> {
  const app = Fastify(stream ? { logger: { level: 'info', stream } } : {})
  t.teardown(() => app.close())
  await app.register(jwtRevocation, { jwks, issuer: ISSUER, audience: AUDIENCE, store, cache: { max: 1000, ttl: 60_000 }, storeTimeout: 300, retryAfter: 1, ...extra })
  app.get('/orders', async () => 'ok')
  await app.ready()
  return app
}

/** Polls `check` in real time, moving the fake clock so the breaker's pauses end; false after `ms`. */
async function eventually (clock: ReturnType<typeof FakeTimers.install>, check: () => Promise<boolean>, ms = 10_000): Promise<boolean> {
  const deadline = performance.now() + ms
  while (performance.now() < deadline) {
    if (await check()) return true
    clock.tick(1000)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return false
}

const status = async (app: FastifyInstance, token: string) => (await app.inject({ url: '/orders', headers: bearer(token) })).statusCode

/**
 * Boots instance A on an unreachable store, checks it answers per onStoreError, brings
 * the store up, and checks that a revocation made by instance B then reaches A through
 * the change feed (A's cache ttl is 60 s: only the feed can carry it in time).
 */
async function bootThroughOutage (t: Test, options: {
  storeA: RevocationStore
  /** Another store on the unreachable server. */
  storeDown: () => RevocationStore
  /** A store on the same data, reachable once the server is up. */
  storeB: () => RevocationStore
  name: string
  bringUp: () => Promise<void>
  feedConnected: () => Promise<boolean>
}): Promise<void> {
  const clock = FakeTimers.install({ toFake: ['Date'], now: Date.now() })
  t.teardown(() => clock.uninstall())
  const { stream, lines } = logCapture()
  const a = await instance(t, options.storeA, {}, stream)
  t.ok(true, 'ready() resolved with the store unreachable')
  const startup = lines.filter((l) => String(l.msg).includes('unreachable at startup'))
  t.equal(startup.length, 1, 'logged once')
  t.match(String(startup[0]?.msg), new RegExp(`${options.name} unreachable at startup \\(.+\\)`), 'naming the store and the cause')

  const token = await sign(key, { jti: 'after-recovery' })
  t.equal(await status(a, token), 503, 'requests are refused per onStoreError while the store is down')
  const allowing = await instance(t, options.storeDown(), { onStoreError: 'allow' })
  t.equal(await status(allowing, await sign(key)), 200, "or let through with onStoreError: 'allow'")
  await allowing.close()

  await options.bringUp()
  t.ok(await eventually(clock, async () => await status(a, token) === 200), 'A answers normally once the store does, without a restart')
  t.ok(await eventually(clock, options.feedConnected), "A's change feed connected")
  t.ok(lines.some((l) => String(l.msg).includes('reachable again')), 'the recovery is logged')

  const b = await instance(t, options.storeB())
  await b.revocation.revokeToken({ jti: 'after-recovery' })
  t.ok(await eventually(clock, async () => await status(a, token) === 401), "B's revocation reached A through the feed")
}

t.test('Redis unreachable at boot: the app starts, answers 503, and recovers when Redis starts', async (t) => {
  const redis = await privateRedis(t)
  if (!redis) return
  const port = redis.port
  const prefix = `{${uniqueName('boot')}}:`
  const clients: Redis[] = []
  const client = () => {
    const c = new Redis({ port, host: '127.0.0.1', retryStrategy: () => 100 })
    c.on('error', () => {})
    clients.push(c)
    return c
  }
  t.teardown(() => { for (const c of clients) c.disconnect() })
  await bootThroughOutage(t, {
    name: 'RedisStore',
    storeA: new RedisStore({ client: client(), prefix }),
    storeDown: () => new RedisStore({ client: client(), prefix }),
    storeB: () => new RedisStore({ client: client(), prefix }),
    bringUp: redis.start,
    feedConnected: async () => {
      const [, n] = await clients.at(-1)!.pubsub('NUMSUB', `${prefix}changes`) as [string, number]
      return n >= 1
    },
  })
})

/** A loopback TCP relay in front of PostgreSQL: resets every connection until `forward()`. */
async function relay (t: Tap, target: URL): Promise<{ port: number, forward: () => void }> {
  let forwarding = false
  const sockets = new Set<Socket>()
  const server: Server = createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    if (!forwarding) return socket.resetAndDestroy()
    const upstream = connect(Number(target.port || 5432), target.hostname)
    upstream.on('error', () => socket.destroy())
    socket.on('error', () => upstream.destroy())
    socket.pipe(upstream).pipe(socket)
    sockets.add(upstream)
    upstream.on('close', () => sockets.delete(upstream))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { for (const s of sockets) s.destroy(); server.close(() => resolve()) }))
  return { port: (server.address() as import('node:net').AddressInfo).port, forward: () => { forwarding = true } }
}

t.test('PostgreSQL unreachable at boot: the app starts, answers 503, migrates and listens once it answers', async (t) => {
  const direct = await connectPostgres(t)
  if (!direct) return
  const target = new URL(PG_URL)
  const { port, forward } = await relay(t, target)
  const viaRelay = new URL(PG_URL)
  viaRelay.hostname = '127.0.0.1'
  viaRelay.port = String(port)
  const pool = new pg.Pool({ connectionString: viaRelay.href, connectionTimeoutMillis: 1000, max: 4 })
  pool.on('error', () => {})
  const tablePrefix = uniqueName('boot').toLowerCase() + '_'
  t.teardown(async () => {
    for (const x of ['schema', 'tokens', 'clients', 'subjects', 'sessions', 'grants']) await direct.query(`DROP TABLE IF EXISTS ${tablePrefix}${x}`)
  })
  await bootThroughOutage(t, {
    name: 'PostgresStore',
    storeA: new PostgresStore({ pool, tablePrefix, reconnectDelay: 50 }),
    storeDown: () => new PostgresStore({ pool, tablePrefix }),
    storeB: () => new PostgresStore({ pool: direct, tablePrefix }),
    bringUp: async () => forward(),
    feedConnected: async () => {
      const { rows } = await direct.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE query = 'LISTEN ${tablePrefix}changes'`)
      return rows[0].n >= 1
    },
  })
  const { rows } = await direct.query(`SELECT version FROM ${tablePrefix}schema`)
  t.same(rows, [{ version: 5 }], 'the migration ran once the store answered')
  // Not awaited: it resolves once the apps, closed at teardown too, let go of their LISTEN client.
  t.teardown(() => { void pool.end() })
})

/** Resolves true when `promise` settles within `ms`; a hung close shows as false instead of a test timeout. */
async function settlesWithin (promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const hung = new Promise<false>((resolve) => { timer = setTimeout(() => resolve(false), ms) })
  const result = await Promise.race([promise.then(() => true, () => true), hung])
  clearTimeout(timer)
  return result
}

/** The user's onClose hook closes their client before or after the plugin's own cleanup. */
async function closesInEitherOrder (t: Test, name: string, make: (tt: Test) => Promise<{ store: RevocationStore, closeClients: () => Promise<unknown> } | undefined>): Promise<void> {
  for (const order of ['before', 'after'] as const) {
    await t.test(`${name}: app.close() resolves with the user's clients closed in an onClose hook added ${order} the plugin`, async (tt) => {
      const made = await make(tt)
      if (!made) return
      const app = Fastify()
      if (order === 'before') app.addHook('onClose', async () => { await made.closeClients() })
      await app.register(jwtRevocation, { jwks, issuer: ISSUER, audience: AUDIENCE, store: made.store })
      if (order === 'after') app.addHook('onClose', async () => { await made.closeClients() })
      app.get('/orders', async () => 'ok')
      await app.ready()
      tt.equal(await status(app, await sign(key)), 200)
      tt.ok(await settlesWithin(app.close(), 10_000), 'app.close() resolved')
    })
  }
}

t.test('app.close() never waits on the order of the user\'s own onClose hooks', async (t) => {
  await closesInEitherOrder(t, 'MemoryStore', async () => ({ store: new MemoryStore(), closeClients: async () => {} }))
  await closesInEitherOrder(t, 'FileStore', async (tt) => {
    const dir = await mkdtemp(join(tmpdir(), 'close-order-'))
    tt.teardown(() => rm(dir, { recursive: true, force: true }))
    return { store: new FileStore({ path: dir }), closeClients: async () => {} }
  })
  await closesInEitherOrder(t, 'RedisStore', async (tt) => {
    const client = await connectRedis(tt)
    if (!client) return undefined
    const own = client.duplicate()
    own.on('error', () => {})
    const prefix = `{${uniqueName('close')}}:`
    tt.teardown(() => deleteKeys(client, prefix))
    return { store: new RedisStore({ client: own, prefix }), closeClients: () => own.quit() }
  })
  await closesInEitherOrder(t, 'RedisStore with the user\'s own subscriber', async (tt) => {
    const client = await connectRedis(tt)
    if (!client) return undefined
    const own = client.duplicate()
    const subscriber = client.duplicate()
    own.on('error', () => {})
    subscriber.on('error', () => {})
    return { store: new RedisStore({ client: own, subscriber, prefix: `{${uniqueName('close')}}:` }), closeClients: () => Promise.all([own.quit(), subscriber.quit()]) }
  })
  await closesInEitherOrder(t, 'PostgresStore', async (tt) => {
    const direct = await connectPostgres(tt)
    if (!direct) return undefined
    const pool = new pg.Pool({ connectionString: PG_URL, max: 3 })
    pool.on('error', () => {})
    const tablePrefix = uniqueName('close').toLowerCase() + '_'
    tt.teardown(async () => { for (const x of ['schema', 'tokens', 'clients', 'subjects', 'sessions', 'grants']) await direct.query(`DROP TABLE IF EXISTS ${tablePrefix}${x}`) })
    return { store: new PostgresStore({ pool, tablePrefix }), closeClients: () => pool.end() }
  })
})
