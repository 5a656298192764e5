import FakeTimers from '@sinonjs/fake-timers'
import { Redis } from 'ioredis'
import t from 'tap'
import { PostgresStore } from '../../src/stores/postgres.js'
import { RedisStore } from '../../src/stores/redis.js'
import { AUDIENCE, bearer, sign } from '../helpers/helpers.js'
import { instance, key, scenario, sessionScenario } from '../helpers/propagation.js'
import { privateRedis } from '../helpers/redis-servers.js'
import { connectPostgres, connectRedis, deleteKeys, uniqueName } from '../helpers/services.js'

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
  t.teardown(async () => { for (const x of ['schema', 'tokens', 'clients', 'subjects', 'sessions', 'grants']) await pool.query(`DROP TABLE IF EXISTS ${tablePrefix}${x}`) })
  await scenario(t, () => new PostgresStore({ pool, tablePrefix }), 'postgres')
})

t.test('a logged-out session is refused by every instance on one RedisStore, nothing else', async (t) => {
  const client = await connectRedis(t)
  if (!client) return
  const prefix = `{${uniqueName('sessions')}}:`
  t.teardown(() => deleteKeys(client, prefix))
  await sessionScenario(t, () => new RedisStore({ client, prefix }), 'redis')
})

t.test('a logged-out session is refused by every instance on one PostgresStore, nothing else', async (t) => {
  const pool = await connectPostgres(t)
  if (!pool) return
  const tablePrefix = uniqueName('sessions').toLowerCase() + '_'
  t.teardown(async () => { for (const x of ['schema', 'tokens', 'clients', 'subjects', 'sessions', 'grants']) await pool.query(`DROP TABLE IF EXISTS ${tablePrefix}${x}`) })
  await sessionScenario(t, () => new PostgresStore({ pool, tablePrefix }), 'postgres')
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
