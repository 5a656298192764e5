import FakeTimers from '@sinonjs/fake-timers'
import Fastify, { type FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import t from 'tap'
import jwtRevocation, { type RevocationStore } from '../src/index.js'
import { PostgresStore } from '../src/stores/postgres.js'
import { RedisStore } from '../src/stores/redis.js'
import { AUDIENCE, bearer, ISSUER, makeKey, sign } from './helpers.js'
import { connectPostgres, connectRedis, deleteKeys, privateRedis, uniqueName } from './services.js'

const key = await makeKey('ES256')
const jwks = { keys: [key.publicJwk] }

async function instance (t: { teardown: (fn: () => unknown) => void }, store: RevocationStore, extra: Record<string, unknown> = {}): Promise<FastifyInstance> {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(jwtRevocation, { jwks, issuer: ISSUER, audience: AUDIENCE, store, cache: { max: 1000, ttl: 60_000 }, ...extra })
  app.get('/orders', async () => 'ok')
  await app.ready()
  return app
}

// Half the cache ttl: a refusal before then can only have come through the change feed.
const FEED_WINDOW_MS = 30_000

/** Revokes through A, then polls B; returns ms until B refuses (Infinity if not within FEED_WINDOW_MS). */
async function propagation (b: FastifyInstance, revoke: () => Promise<void>, token: string): Promise<number> {
  const started = performance.now()
  await revoke()
  while (performance.now() - started < FEED_WINDOW_MS) {
    if ((await b.inject({ url: '/orders', headers: bearer(token) })).statusCode === 401) return performance.now() - started
    await new Promise((resolve) => setImmediate(resolve))
  }
  return Infinity
}

async function scenario (t: Tap, makeStore: () => RevocationStore, backend: string): Promise<void> {
  const a = await instance(t, makeStore())
  const b = await instance(t, makeStore())
  const delays: number[] = []
  for (let i = 0; i < 20; i++) {
    const token = await sign(key, { jti: `${backend}-${i}`, sub: `user-${i}`, azp: `client-${i}` })
    t.equal((await b.inject({ url: '/orders', headers: bearer(token) })).statusCode, 200, 'B has the token cached as not revoked')
    const kind = i % 3
    const revoke = kind === 0
      ? () => a.revocation.revokeToken({ jti: `${backend}-${i}`, aud: AUDIENCE })
      : kind === 1 ? () => a.revocation.revokeClient(`client-${i}`) : () => a.revocation.revokeSubject(`user-${i}`)
    delays.push(await propagation(b, revoke, token))
  }
  delays.sort((x, y) => x - y)
  const p50 = delays[Math.floor(delays.length * 0.5)]!
  const max = delays.at(-1)!
  t.ok(Number.isFinite(max), 'every revocation on A was refused by B long before its 60 s cache ttl: the change feed carried it')
  t.comment(`${backend}: propagation A→B p50 ${p50.toFixed(1)} ms, max ${max.toFixed(1)} ms over ${delays.length} revocations`)
}

type Tap = Pick<typeof t, 'equal' | 'ok' | 'comment' | 'teardown'>

t.test('two instances on one RedisStore agree on every revocation', async (t) => {
  const client = await connectRedis(t)
  if (!client) return
  const prefix = `{${uniqueName('multi')}}:`
  t.teardown(() => deleteKeys(client, prefix))
  await scenario(t, () => new RedisStore({ client, prefix }), 'redis')
})

t.test('two instances on one PostgresStore agree on every revocation', async (t) => {
  const pool = await connectPostgres(t)
  if (!pool) return
  const tablePrefix = uniqueName('multi').toLowerCase() + '_'
  t.teardown(async () => { for (const x of ['schema', 'tokens', 'clients', 'subjects', 'grants']) await pool.query(`DROP TABLE IF EXISTS ${tablePrefix}${x}`) })
  await scenario(t, () => new PostgresStore({ pool, tablePrefix }), 'postgres')
})

t.test('Redis stopped mid-test: 503 while down, normal after it returns, no revocation lost', async (t) => {
  const redis = await privateRedis(t)
  if (!redis) return
  const port = redis.port
  await redis.start()
  const client = new Redis({ port, host: '127.0.0.1', retryStrategy: () => 50, maxRetriesPerRequest: 2 })
  client.on('error', () => {})
  t.teardown(() => client.disconnect())
  const store = new RedisStore({ client })
  let lookups = 0
  const lookup = store.lookup.bind(store)
  store.lookup = (query) => { lookups++; return lookup(query) }
  // Fake Date only: the breaker's pauses move when the test says, the servers in real time.
  const clock = FakeTimers.install({ toFake: ['Date'], now: Date.now() })
  t.teardown(() => clock.uninstall())
  const app = await instance(t, store, { cache: { max: 100, ttl: 0 }, storeTimeout: 300, retryAfter: 1 })
  let resets = 0
  await store.subscribe((c) => { if (c.type === 'reset') resets++ })

  const revoked = await sign(key, { jti: 'before-outage' })
  const good = await sign(key)
  await app.revocation.revokeToken({ jti: 'before-outage', aud: AUDIENCE })
  t.equal((await app.inject({ url: '/orders', headers: bearer(revoked) })).statusCode, 401)
  t.equal((await app.inject({ url: '/orders', headers: bearer(good) })).statusCode, 200)

  await redis.stop()
  const down = await app.inject({ url: '/orders', headers: bearer(good) })
  t.equal(down.statusCode, 503, 'store down: fail closed')
  t.ok(down.headers['retry-after'])
  t.equal((await app.inject({ url: '/orders', headers: bearer(revoked) })).statusCode, 401, 'a token known revoked stays refused')
  const uncached = await Promise.all([1, 2, 3].map(() => sign(key)))
  const before = lookups
  for (const token of uncached) t.equal((await app.inject({ url: '/orders', headers: bearer(token) })).statusCode, 503)
  t.equal(lookups, before, 'while the breaker pauses, requests are answered without waiting on Redis')
  for (const call of [() => app.revocation.revokeToken({ jti: 'during-outage' }), async () => { await app.revocation.listRevokedTokens() }, () => app.revocation.revokeClient('c')]) {
    await t.rejects(call(), { code: 'FST_JWT_REVOCATION_STORE', statusCode: 503 }, 'app.revocation rejects with the package\'s store error')
  }

  await redis.start()
  const deadline = performance.now() + 5000
  let status = 0
  while (performance.now() < deadline && (status = (await app.inject({ url: '/orders', headers: bearer(good) })).statusCode) !== 200) {
    clock.tick(1000)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  t.equal(status, 200, 'back to normal once Redis returns')
  t.equal((await app.inject({ url: '/orders', headers: bearer(await sign(key, { jti: 'before-outage' })) })).statusCode, 401, 'the revocation made before the outage survived it')
  const feedDeadline = performance.now() + 3000
  while (resets === 0 && performance.now() < feedDeadline) await new Promise((resolve) => setTimeout(resolve, 20))
  t.ok(resets >= 1, 'the change feed reconnected and told caches to flush')
})
