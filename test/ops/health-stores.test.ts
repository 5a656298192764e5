// app.revocation.health() against every real shared store: the probe is a lookup each of
// them accepts (a PostgreSQL text column refuses a NUL byte, and a probe that failed for
// that reason once reported `down` for ever and made requests fail), and probing never
// takes requests out of service.
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import jwtRevocation, { type JwtRevocationOptions, type RevocationStore } from '../../src/index.js'
import { PostgresStore } from '../../src/stores/postgres.js'
import { RedisStore } from '../../src/stores/redis.js'
import { AUDIENCE, bearer, ISSUER, makeKey, sign } from '../helpers/helpers.js'
import { clusterClient, startCluster, startSentinelSet } from '../helpers/redis-servers.js'
import { connectPostgres, connectRedis, deleteKeys, uniqueName } from '../helpers/services.js'

const key = await makeKey('ES256')

async function probedWhileServing (t: Test, store: RevocationStore): Promise<void> {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(jwtRevocation, { issuer: ISSUER, audience: AUDIENCE, jwks: { keys: [key.publicJwk] }, store, cache: { max: 100, ttl: 0 } } as JwtRevocationOptions)
  app.get('/orders', async () => 'ok')
  await app.ready()
  for (let i = 0; i < 3; i++) {
    const report = await app.revocation.health()
    t.match(report, { status: 'ok', checks: { store: { status: 'up', latencyMs: Number } } }, `probe ${i + 1}: the store is up`)
  }
  const statuses = []
  for (let i = 0; i < 6; i++) statuses.push((await app.inject({ url: '/orders', headers: bearer(await sign(key)) })).statusCode)
  t.same(statuses, [200, 200, 200, 200, 200, 200], 'fresh tokens after the probes are answered')
  await app.revocation.revokeToken({ jti: 'revoked-after-probes' })
  t.equal((await app.inject({ url: '/orders', headers: bearer(await sign(key, { jti: 'revoked-after-probes' })) })).statusCode, 401, 'and the store still decides')
}

t.test('PostgreSQL', async (t) => {
  const pool = await connectPostgres(t)
  if (!pool) return
  const tablePrefix = uniqueName('health').toLowerCase() + '_'
  t.teardown(async () => {
    for (const table of ['schema', 'tokens', 'clients', 'subjects', 'sessions', 'grants', 'leases', 'claims']) await pool.query(`DROP TABLE IF EXISTS ${tablePrefix}${table}`)
  })
  await probedWhileServing(t, new PostgresStore({ pool, tablePrefix }))
})

t.test('Redis', async (t) => {
  const client = await connectRedis(t)
  if (!client) return
  const prefix = `{${uniqueName('health')}}:`
  t.teardown(() => deleteKeys(client, prefix))
  await probedWhileServing(t, new RedisStore({ client, prefix }))
})

t.test('Redis Cluster', async (t) => {
  const cluster = await startCluster(t)
  if (!cluster) return
  const client = clusterClient(t, cluster)
  await probedWhileServing(t, new RedisStore({ client }))
})

t.test('Redis Sentinel', async (t) => {
  const set = await startSentinelSet(t)
  if (!set) return
  const client = new Redis({ sentinels: [set.sentinel], name: set.name, maxRetriesPerRequest: 1 })
  client.on('error', () => {})
  t.teardown(() => client.disconnect())
  await probedWhileServing(t, new RedisStore({ client }))
})
