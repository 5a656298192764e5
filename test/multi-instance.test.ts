import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import t from 'tap'
import { PostgresStore } from '../src/stores/postgres.js'
import { RedisStore } from '../src/stores/redis.js'
import { AUDIENCE, bearer, sign } from './helpers.js'
import { instance, key, scenario } from './propagation.js'
import { freePort, startRedisServer } from './redis-servers.js'
import { connectPostgres, connectRedis, deleteKeys, uniqueName } from './services.js'

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

const startRedis = (port: number, dir: string) => startRedisServer(['--port', String(port), '--bind', '127.0.0.1', '--dir', dir,
  '--appendonly', 'yes', '--appendfsync', 'always', '--save', ''])

t.test('Redis stopped mid-test: 503 while down, normal after it returns, no revocation lost', async (t) => {
  const shared = await connectRedis(t)
  if (!shared) return
  const dir = await mkdtemp(join(tmpdir(), 'redis-fault-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const port = await freePort()
  let server = await startRedis(port, dir)
  t.teardown(() => { server.kill('SIGKILL') })
  const client = new Redis({ port, host: '127.0.0.1', retryStrategy: () => 50, maxRetriesPerRequest: 2 })
  client.on('error', () => {})
  t.teardown(() => client.disconnect())
  const store = new RedisStore({ client })
  const app = await instance(t, store, { cache: { max: 100, ttl: 0 }, storeTimeout: 300 })
  let resets = 0
  await store.subscribe((c) => { if (c.type === 'reset') resets++ })

  const revoked = await sign(key, { jti: 'before-outage' })
  const good = await sign(key)
  await app.revocation.revokeToken({ jti: 'before-outage', aud: AUDIENCE })
  t.equal((await app.inject({ url: '/orders', headers: bearer(revoked) })).statusCode, 401)
  t.equal((await app.inject({ url: '/orders', headers: bearer(good) })).statusCode, 200)

  await new Promise<void>((resolve) => { server.once('exit', () => resolve()); server.kill('SIGTERM') })
  const down = await app.inject({ url: '/orders', headers: bearer(good) })
  t.equal(down.statusCode, 503, 'store down: fail closed')
  t.ok(down.headers['retry-after'])
  t.equal((await app.inject({ url: '/orders', headers: bearer(revoked) })).statusCode, 401, 'a token known revoked stays refused')

  server = await startRedis(port, dir)
  const deadline = Date.now() + 5000
  let status = 0
  while (Date.now() < deadline && (status = (await app.inject({ url: '/orders', headers: bearer(good) })).statusCode) !== 200) await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(status, 200, 'back to normal once Redis returns')
  t.equal((await app.inject({ url: '/orders', headers: bearer(await sign(key, { jti: 'before-outage' })) })).statusCode, 401, 'the revocation made before the outage survived it')
  const feedDeadline = Date.now() + 3000
  while (resets === 0 && Date.now() < feedDeadline) await new Promise((resolve) => setTimeout(resolve, 20))
  t.ok(resets >= 1, 'the change feed reconnected and told caches to flush')
})
