// A store pointed at the wrong database, role, password or tables is not an outage: no
// retry will fix it, so ready() fails naming it (never a credential). An outage still
// boots, and is logged once and once when it ends — not once per request it refuses.
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import { Writable } from 'node:stream'
import pg from 'pg'
import t, { type Test } from 'tap'
import jwtRevocation, { type JwtRevocationOptions, type RevocationStore } from '../../src/index.js'
import { PostgresStore } from '../../src/stores/postgres.js'
import { RedisStore } from '../../src/stores/redis.js'
import { AUDIENCE, bearer, ISSUER, makeKey, sign } from '../helpers/helpers.js'
import { freePort, privateRedis, startRedisServer, stop, type PrivateRedis } from '../helpers/redis-servers.js'
import { connectPostgres, connectRedis, PG_URL, uniqueName } from '../helpers/services.js'

const key = await makeKey('ES256')
const jwks = { keys: [key.publicJwk] }
const PASSWORD = 'hunter2-secret'

/** What `ready()` of an app on `store` rejects with. */
async function bootError (t: Test, store: RevocationStore): Promise<Error> {
  const app = Fastify()
  t.teardown(() => app.close())
  app.register(jwtRevocation, { issuer: ISSUER, audience: AUDIENCE, jwks, store, storeTimeout: 2000 } as JwtRevocationOptions)
  try {
    await app.ready()
  } catch (err) {
    return err as Error
  }
  throw new Error('ready() resolved')
}

function poolFor (t: Test, change: (url: URL) => void): pg.Pool {
  const url = new URL(PG_URL)
  change(url)
  const pool = new pg.Pool({ connectionString: url.href, connectionTimeoutMillis: 2000 })
  pool.on('error', () => {})
  t.teardown(() => pool.end())
  return pool
}

t.test('PostgreSQL: a database that does not exist fails ready(), naming it', async (t) => {
  if (!await connectPostgres(t)) return
  const database = uniqueName('missing_db')
  const err = await bootError(t, new PostgresStore({ pool: poolFor(t, (url) => { url.pathname = `/${database}`; url.password = PASSWORD }) }))
  t.equal((err as { code?: string }).code, 'FST_JWT_REVOCATION_STORE')
  t.match(err.message, new RegExp(`^PostgresStore: PostgreSQL refused the store \\(3D000 database "${database}" does not exist\\); check the database`))
  t.notMatch(err.message, PASSWORD)
})

t.test('PostgreSQL: a role that does not exist fails ready(), naming it', async (t) => {
  if (!await connectPostgres(t)) return
  const role = uniqueName('missing_role')
  const err = await bootError(t, new PostgresStore({ pool: poolFor(t, (url) => { url.username = role; url.password = PASSWORD }) }))
  t.equal((err as { code?: string }).code, 'FST_JWT_REVOCATION_STORE')
  // Depending on pg_hba.conf: the role is refused outright, or its password is.
  t.match(err.message, /^PostgresStore: PostgreSQL refused the store \((28000|28P01) .+\); check the pool's user/)
  t.match(err.message, role)
  t.notMatch(err.message, PASSWORD)
})

t.test('PostgreSQL: tables missing with migrate: false, or a role without permission on them, fail ready()', async (t) => {
  const pool = await connectPostgres(t)
  if (!pool) return
  const tablePrefix = uniqueName('misconf').toLowerCase() + '_'
  const missing = await bootError(t, new PostgresStore({ pool, tablePrefix, migrate: false }))
  t.match(missing.message, /^PostgresStore: PostgreSQL refused the store \(42P01 relation ".+" does not exist\); apply postgresSchema\(\)/)

  const role = uniqueName('limited_role')
  await pool.query(`CREATE ROLE ${role} LOGIN`)
  t.teardown(async () => {
    for (const table of ['schema', 'tokens', 'clients', 'subjects', 'sessions', 'grants', 'leases', 'claims']) await pool.query(`DROP TABLE IF EXISTS ${tablePrefix}${table}`)
    await pool.query(`DROP ROLE IF EXISTS ${role}`)
  })
  await new PostgresStore({ pool, tablePrefix }).ready()
  const limited = poolFor(t, (url) => { url.username = role })
  const denied = await bootError(t, new PostgresStore({ pool: limited, tablePrefix, migrate: false }))
  t.match(denied.message, /^PostgresStore: PostgreSQL refused the store \(42501 permission denied .+\); grant the role/)
})

t.test('PostgreSQL unreachable (connection refused) still boots: an outage, retried in the background', async (t) => {
  if (!await connectPostgres(t)) return
  const port = await freePort()
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(jwtRevocation, { issuer: ISSUER, audience: AUDIENCE, jwks, storeTimeout: 2000, store: new PostgresStore({ pool: poolFor(t, (url) => { url.port = String(port) }) }) } as JwtRevocationOptions)
  await app.ready()
  t.equal((await app.revocation.health()).status, 'down')
})

t.test('Redis with requirepass: no password, a wrong one, or an ACL without the store\'s keys fail ready(), naming it', async (t) => {
  if (!await connectRedis(t)) return
  const port = await freePort()
  const server = await startRedisServer(['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--requirepass', PASSWORD])
  t.teardown(() => stop(server))
  const client = (options: { username?: string, password?: string }) => {
    const c = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1, ...options })
    c.on('error', () => {})
    t.teardown(() => c.disconnect())
    return c
  }
  const cases = [
    { name: 'no password', options: {}, reply: /NOAUTH/ },
    { name: 'a wrong password', options: { password: `not-${PASSWORD}` }, reply: /WRONGPASS/ },
    { name: 'an ACL on other keys', options: { username: 'elsewhere', password: PASSWORD }, reply: /NOPERM/ },
  ]
  await client({ password: PASSWORD }).call('ACL', 'SETUSER', 'elsewhere', 'on', `>${PASSWORD}`, '~other:*', '&*', '+@all')
  for (const { name, options, reply } of cases) {
    const err = await bootError(t, new RedisStore({ client: client(options) }))
    t.equal((err as { code?: string }).code, 'FST_JWT_REVOCATION_STORE', name)
    t.match(err.message, /^RedisStore: Redis refused the store \(.+\); check the client's username and password/, name)
    t.match(err.message, reply, name)
    t.notMatch(err.message, PASSWORD, `${name}: no credential in the message`)
  }
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(jwtRevocation, { issuer: ISSUER, audience: AUDIENCE, jwks, store: new RedisStore({ client: client({ password: PASSWORD }) }) } as JwtRevocationOptions)
  t.equal((await app.revocation.health()).status, 'ok', 'the right password boots')
})

/** A redis-server of the test's own, started, and a client that retries every 50 ms while it is down. */
async function runningRedis (t: Test): Promise<{ redis: PrivateRedis, client: Redis } | undefined> {
  const redis = await privateRedis(t)
  if (!redis) return undefined
  await redis.start()
  const client = new Redis({ port: redis.port, host: '127.0.0.1', maxRetriesPerRequest: 0, retryStrategy: () => 50 })
  client.on('error', () => {})
  t.teardown(() => client.disconnect())
  return { redis, client }
}

t.test('an outage is logged once and once when it ends, not once per refused request', async (t) => {
  const running = await runningRedis(t)
  if (!running) return
  const { redis, client } = running
  const lines: Array<{ level: number, msg: string }> = []
  const stream = new Writable({ write (chunk, _enc, cb) { lines.push(JSON.parse(chunk.toString())); cb() } })
  const app = Fastify({ logger: { level: 'info', stream } })
  t.teardown(() => app.close())
  await app.register(jwtRevocation, { issuer: ISSUER, audience: AUDIENCE, jwks, storeTimeout: 500, retryAfter: 1, cache: { max: 100, ttl: 0 }, store: new RedisStore({ client, prefix: `{${uniqueName('outage')}}:` }) } as JwtRevocationOptions)
  app.get('/orders', async () => 'ok')
  await app.ready()
  t.equal((await app.inject({ url: '/orders', headers: bearer(await sign(key)) })).statusCode, 200)

  await redis.stop()
  for (let i = 0; i < 20; i++) {
    const res = await app.inject({ url: '/orders', headers: bearer(await sign(key)) })
    t.equal(res.statusCode, 503, `request ${i + 1} during the outage`)
    if (i === 0) {
      t.same(res.json(), { statusCode: 503, code: 'FST_JWT_REVOCATION_UNAVAILABLE', error: 'Service Unavailable', message: 'Revocation status is unavailable' })
      t.equal(res.headers['retry-after'], '1')
    }
  }
  const errors = lines.filter((l) => l.level >= 50)
  t.same(errors.map((l) => l.msg), ['fastify-jwt-revocation: revocation store failed; requests are refused (503) until it answers'], 'one error line for 20 refused requests')

  await redis.start()
  let status = 0
  for (let i = 0; i < 100 && status !== 200; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    status = (await app.inject({ url: '/orders', headers: bearer(await sign(key)) })).statusCode
  }
  t.equal(status, 200, 'answered again once Redis is back')
  t.equal(lines.filter((l) => l.msg.includes('reachable again')).length, 1, 'the end of the outage logged once')
  t.equal(lines.filter((l) => l.level >= 50).length, 1, 'and nothing more at error level')
})

t.test('with an error handler of the app\'s own, the handler still receives the outage\'s 503', async (t) => {
  const running = await runningRedis(t)
  if (!running) return
  const { redis, client } = running
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(jwtRevocation, { issuer: ISSUER, audience: AUDIENCE, jwks, storeTimeout: 500, cache: false, store: new RedisStore({ client, prefix: `{${uniqueName('handler')}}:` }) } as JwtRevocationOptions)
  const seen: string[] = []
  app.setErrorHandler((err: { code?: string, statusCode?: number }, _request, reply) => {
    seen.push(String(err.code))
    return reply.code(err.statusCode ?? 500).send({ problem: err.code })
  })
  app.get('/orders', async () => 'ok')
  await app.ready()
  await redis.stop()
  const res = await app.inject({ url: '/orders', headers: bearer(await sign(key)) })
  t.equal(res.statusCode, 503)
  t.same(res.json(), { problem: 'FST_JWT_REVOCATION_UNAVAILABLE' })
  t.equal(res.headers['retry-after'], '5')
  t.same(seen, ['FST_JWT_REVOCATION_UNAVAILABLE'])
})
