// app.revocation.health(): what a readiness probe learns of the store, its feed, the key
// source and the extensions, and that it never tells more than states.
import Fastify from 'fastify'
import t, { type Test } from 'tap'
import jwtRevocation, { MemoryStore, type JwtRevocationOptions } from '../../src/index.js'
import { AUDIENCE, bearer, ISSUER, json, jwksServer, makeKey, sign } from '../helpers/helpers.js'

const key = await makeKey('ES256')
const jwks = { keys: [key.publicJwk] }

/** A MemoryStore whose lookups can be made to fail. */
function flakyStore (): MemoryStore & { failing: boolean } {
  const inner = new MemoryStore()
  const store = Object.assign(Object.create(inner) as MemoryStore, { failing: false })
  store.lookup = async (query) => {
    if (store.failing) throw new Error('ECONNREFUSED 10.0.0.1:6379 password=hunter2')
    return inner.lookup(query)
  }
  return store
}

async function build (t: Test, options: Partial<JwtRevocationOptions>) {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(jwtRevocation, { issuer: ISSUER, audience: AUDIENCE, ...options } as JwtRevocationOptions)
  app.get('/orders', async () => 'ok')
  await app.ready()
  return app
}


t.test('all up: ok, with the store asked now and its latency', async (t) => {
  const app = await build(t, { jwks })
  const report = await app.revocation.health()
  t.equal(report.status, 'ok')
  t.match(report.checks, { store: { status: 'up', latencyMs: Number }, feed: { status: 'up' }, keys: { status: 'up', source: 'jwks' } })
})

t.test('the store failing: down, and back to ok once it answers; no error text in the report', async (t) => {
  const store = flakyStore()
  const app = await build(t, { jwks, store, storeTimeout: 200 })
  store.failing = true
  const down = await app.revocation.health()
  t.equal(down.status, 'down')
  t.same(down.checks.store, { status: 'down' })
  t.notOk(JSON.stringify(down).includes('hunter2'), 'the driver\'s message stays in the log')
  store.failing = false
  // The probe goes through the breaker's one-at-a-time probing: the next report may find it paused.
  let report = await app.revocation.health()
  for (let i = 0; i < 20 && report.status !== 'ok'; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100))
    report = await app.revocation.health()
  }
  t.equal(report.status, 'ok', 'recovered without restart')
})

t.test('a remote key set: unknown before the first fetch, up, then stale (degraded) when its endpoint fails', async (t) => {
  let serving = true
  const srv = await jwksServer(t, (_path, res) => { if (serving) json(res, jwks); else json(res, { error: 'down' }, 500) })
  const app = await build(t, { jwksUri: `${srv.url}/jwks.json`, jwksOptions: { cooldownDuration: 0, cacheMaxAge: 0 }, retryAfter: 1 })
  t.match((await app.revocation.health()).checks.keys, { status: 'unknown', source: 'jwksUri' })
  t.equal((await app.inject({ url: '/orders', headers: bearer(await sign(key)) })).statusCode, 200)
  t.equal((await app.revocation.health()).checks.keys.status, 'up')
  serving = false
  t.equal((await app.inject({ url: '/orders', headers: bearer(await sign(key)) })).statusCode, 200, 'the last good set still verifies')
  const report = await app.revocation.health()
  t.equal(report.checks.keys.status, 'stale')
  t.equal(report.status, 'degraded')
})

t.test('a key set never fetched and its endpoint down: down', async (t) => {
  const srv = await jwksServer(t, (_path, res) => json(res, { error: 'down' }, 500))
  const app = await build(t, { jwksUri: `${srv.url}/jwks.json` })
  t.equal((await app.inject({ url: '/orders', headers: bearer(await sign(key)) })).statusCode, 503)
  const report = await app.revocation.health()
  t.equal(report.checks.keys.status, 'down')
  t.equal(report.status, 'down')
})

t.test('extensions add named checks; a failing one degrades the report; names are unique', async (t) => {
  const app = await build(t, { jwks })
  let syncing = true
  app.revocation.addHealthCheck('sync', () => ({ status: syncing ? 'up' : 'down', lastSuccessAt: 1 }))
  t.match(await app.revocation.health(), { status: 'ok', checks: { sync: { status: 'up', lastSuccessAt: 1 } } })
  syncing = false
  t.equal((await app.revocation.health()).status, 'degraded')
  app.revocation.addHealthCheck('throws', () => { throw new Error('internal detail') })
  const report = await app.revocation.health()
  t.same(report.checks.throws, { status: 'down' })
  t.throws(() => app.revocation.addHealthCheck('store', () => ({ status: 'up' })), /exists already/)
  t.throws(() => app.revocation.addHealthCheck('sync', () => ({ status: 'up' })), /exists already/)
})

t.test('a failing probe does not open the breaker requests use: fresh tokens are answered as soon as the store is', async (t) => {
  const store = flakyStore()
  const app = await build(t, { jwks, store, storeTimeout: 200, cache: { max: 100, ttl: 0 } })
  store.failing = true
  for (let i = 0; i < 3; i++) t.equal((await app.revocation.health()).status, 'down')
  store.failing = false
  const statuses = []
  for (let i = 0; i < 6; i++) statuses.push((await app.inject({ url: '/orders', headers: bearer(await sign(key)) })).statusCode)
  t.same(statuses, [200, 200, 200, 200, 200, 200], 'the probe\'s failures were not taken for an outage')
})

t.test('a probe that finds the store back closes the breaker requests opened', async (t) => {
  const store = flakyStore()
  const app = await build(t, { jwks, store, storeTimeout: 200, retryAfter: 30, cache: { max: 100, ttl: 0 } })
  store.failing = true
  t.equal((await app.inject({ url: '/orders', headers: bearer(await sign(key)) })).statusCode, 503, 'a request\'s failure opens it')
  store.failing = false
  t.equal((await app.inject({ url: '/orders', headers: bearer(await sign(key)) })).statusCode, 503, 'open: answered at once, without asking the store')
  t.equal((await app.revocation.health()).status, 'ok')
  t.equal((await app.inject({ url: '/orders', headers: bearer(await sign(key)) })).statusCode, 200, 'closed by the probe\'s success')
})
