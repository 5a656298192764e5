// A failing or hanging store, in one process: every store call is bounded by
// storeTimeout, failures become the package's errors, and the breaker answers requests
// at once while the store is down. Fake time throughout; the real-server outages are in
// multi-instance.test.ts.
import FakeTimers from '@sinonjs/fake-timers'
import Fastify, { type FastifyInstance } from 'fastify'
import { Writable } from 'node:stream'
import t from 'tap'
import jwtRevocation, { adminRoutes, MemoryStore, StoreError, type JwtRevocationOptions } from '../../src/index.js'
import { Breaker } from '../../src/lib/breaker.js'
import { AUDIENCE, bearer, ISSUER, makeKey, sign } from '../helpers/helpers.js'

const key = await makeKey('ES256')
const jwks = { keys: [key.publicJwk] }
const MGMT = 'https://issuer.test/api/v2/'
const ALL_SCOPES = 'blacklist:tokens read:client_grants create:client_grants update:client_grants delete:client_grants'

type Mode = 'ok' | 'fail' | 'hang'
/** A MemoryStore whose every call can be made to fail or hang; counts the calls that reached it. */
function flakyStore (): MemoryStore & { mode: Mode, calls: number, lookups: number } {
  const inner = new MemoryStore()
  const store = Object.assign(Object.create(inner) as MemoryStore, { mode: 'ok' as Mode, calls: 0, lookups: 0 })
  for (const name of ['lookup', 'revokeToken', 'listRevokedTokens', 'listRevokedTokensPage', 'revokeClient', 'revokeSubject', 'createGrant', 'getGrant', 'listGrants', 'updateGrant', 'deleteGrant'] as const) {
    const original = (inner[name] as (...args: unknown[]) => Promise<unknown>).bind(inner)
    ;(store as unknown as Record<string, unknown>)[name] = async (...args: unknown[]) => {
      store.calls++
      if (name === 'lookup') store.lookups++
      if (store.mode === 'hang') return new Promise(() => {})
      if (store.mode === 'fail') throw new Error('ECONNREFUSED 10.0.0.1:6379 password=hunter2')
      return original(...args)
    }
  }
  return store
}

function logCapture (): { stream: Writable, lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({ write (chunk, _enc, cb) { lines.push(JSON.parse(chunk.toString())); cb() } })
  return { stream, lines }
}

interface Setup { app: FastifyInstance, store: ReturnType<typeof flakyStore>, clock: InstalledClock, lines: Array<Record<string, unknown>> }

async function setup (t: Tap, extra: Partial<JwtRevocationOptions> = {}): Promise<Setup> {
  const clock = FakeTimers.install({ toFake: ['Date', 'setTimeout', 'clearTimeout'], now: Date.now() })
  t.teardown(() => clock.uninstall())
  const { stream, lines } = logCapture()
  const app = Fastify({ logger: { level: 'info', stream } })
  t.teardown(() => app.close())
  const store = flakyStore()
  await app.register(jwtRevocation, { jwks, issuer: ISSUER, audience: [AUDIENCE, MGMT], store, cache: { max: 100, ttl: 0 }, retryAfter: 4, ...extra })
  await app.register(adminRoutes, { prefix: '/api/v2', audience: MGMT })
  app.get('/orders', async () => 'ok')
  await app.ready()
  return { app, store, clock, lines }
}
type Tap = Pick<typeof t, 'teardown'>
type InstalledClock = ReturnType<typeof FakeTimers.install>

const logged = (lines: Array<Record<string, unknown>>, text: string) => lines.filter((l) => String(l.msg).includes(text)).length

/** Waits (in real time, without moving fake time) until the store was called `n` times. */
async function reached (store: { calls: number }, n: number): Promise<void> {
  while (store.calls < n) await new Promise((resolve) => setImmediate(resolve))
}

/** Settles a request or call that is held by the store: once it reached the store, fake time moves by `ms`. */
async function after<T> (clock: InstalledClock, store: { calls: number }, ms: number, start: () => Promise<T>): Promise<T> {
  const calls = store.calls
  const promise = start()
  await reached(store, calls + 1)
  await clock.tickAsync(ms)
  return promise
}

t.test('Breaker: one probe at a time after a growing pause, closed by the first success', async (t) => {
  const clock = FakeTimers.install({ toFake: ['Date'], now: 0 })
  t.teardown(() => clock.uninstall())
  const breaker = new Breaker({ pause: 100, maxPause: 350 })
  t.ok(breaker.allow() && breaker.allow(), 'closed: every call goes')
  t.equal(breaker.failed(), true, 'the first failure starts an outage')
  t.equal(breaker.failed(), false, 'calls that set out before it was noticed count once')
  t.equal(breaker.allow(), false, 'paused')
  clock.tick(100)
  t.equal(breaker.allow(), true, 'one probe after the pause')
  t.equal(breaker.allow(), false, 'only one at a time')
  breaker.failed()
  clock.tick(100)
  t.equal(breaker.allow(), false, 'the pause doubled')
  clock.tick(100)
  t.equal(breaker.allow(), true)
  breaker.failed()
  breaker.allow()
  clock.tick(349)
  t.equal(breaker.allow(), false)
  clock.tick(1)
  t.equal(breaker.allow(), true, 'capped at maxPause')
  t.equal(breaker.succeeded(), true, 'the first success ends the outage')
  t.equal(breaker.isOpen, false)
  t.equal(breaker.succeeded(), false)
})

t.test("'deny': after a failure, uncached requests get 503 at once while one probe tests the store", async (t) => {
  const { app, store, clock, lines } = await setup(t, { storeTimeout: 2000 })
  const token = await sign(key)
  t.equal((await app.inject({ url: '/orders', headers: bearer(token) })).statusCode, 200)
  store.mode = 'hang'
  const firstToken = await sign(key)
  const first = await after(clock, store, 2000, () => app.inject({ url: '/orders', headers: bearer(firstToken) }))
  t.equal(first.statusCode, 503, 'the first request waits storeTimeout, no longer')
  const before = store.lookups
  for (let i = 0; i < 5; i++) {
    // Fake time does not move: a request waiting for a timeout would never resolve.
    const res = await app.inject({ url: '/orders', headers: bearer(await sign(key)) })
    t.equal(res.statusCode, 503)
    t.equal(res.headers['retry-after'], '4')
  }
  t.equal(store.lookups, before, 'none of them reached the store')

  await clock.tickAsync(500)
  const probeToken = await sign(key)
  const probe = app.inject({ url: '/orders', headers: bearer(probeToken) })
  await reached(store, store.calls + 1)
  const other = await app.inject({ url: '/orders', headers: bearer(await sign(key)) })
  t.equal(other.statusCode, 503, 'a second request during the probe does not wait for it')
  t.equal(store.lookups, before + 1, 'one probe at a time')
  await clock.tickAsync(2000)
  t.equal((await probe).statusCode, 503)

  store.mode = 'ok'
  await clock.tickAsync(999)
  t.equal((await app.inject({ url: '/orders', headers: bearer(await sign(key)) })).statusCode, 503, 'the pause grew after the failed probe')
  await clock.tickAsync(1)
  t.equal((await app.inject({ url: '/orders', headers: bearer(await sign(key)) })).statusCode, 200, 'closed on the first success')
  t.equal((await app.inject({ url: '/orders', headers: bearer(await sign(key)) })).statusCode, 200)
  t.equal(logged(lines, 'revocation store failed'), 1, 'the outage logged once')
  t.equal(logged(lines, 'reachable again'), 1, 'the recovery logged once')

  store.mode = 'fail'
  t.equal((await app.inject({ url: '/orders', headers: bearer(await sign(key)) })).statusCode, 503)
  t.equal(logged(lines, 'revocation store failed'), 2, 'a second outage is logged again')
})

t.test("'allow': uncached requests pass at once while the store is paused", async (t) => {
  const { app, store, clock } = await setup(t, { onStoreError: 'allow', storeTimeout: 1000 })
  store.mode = 'hang'
  const token = await sign(key)
  t.equal((await after(clock, store, 1000, () => app.inject({ url: '/orders', headers: bearer(token) }))).statusCode, 200)
  const before = store.lookups
  t.equal((await app.inject({ url: '/orders', headers: bearer(await sign(key)) })).statusCode, 200)
  t.equal(store.lookups, before, 'let through without asking the store')
})

t.test('app.revocation.* is bounded by storeTimeout and rejects with FST_JWT_REVOCATION_STORE', async (t) => {
  const { app, store, clock } = await setup(t, { storeTimeout: 300 })
  const calls: Array<[string, () => Promise<unknown>]> = [
    ['revokeToken', () => app.revocation.revokeToken({ jti: 'j' })],
    ['isTokenRevoked', () => app.revocation.isTokenRevoked('j')],
    ['listRevokedTokens', () => app.revocation.listRevokedTokens()],
    ['listRevokedTokensPage', () => app.revocation.listRevokedTokensPage()],
    ['revokeClient', () => app.revocation.revokeClient('c')],
    ['revokeSubject', () => app.revocation.revokeSubject('s')],
    ['createGrant', () => app.revocation.createGrant({ client_id: 'c', audience: AUDIENCE, scope: [] })],
    ['getGrant', () => app.revocation.getGrant('cgr_x')],
    ['listGrants', () => app.revocation.listGrants()],
    ['updateGrant', () => app.revocation.updateGrant('cgr_x', [])],
    ['deleteGrant', () => app.revocation.deleteGrant('cgr_x')],
  ]
  for (const mode of ['hang', 'fail'] as const) {
    store.mode = mode
    for (const [name, call] of calls) {
      const err = await after(clock, store, 300, () => call().then(() => null, (err: unknown) => err as Error & { code?: string, statusCode?: number }))
      t.equal(err?.code, 'FST_JWT_REVOCATION_STORE', `${name} (${mode})`)
      t.equal(err?.statusCode, 503)
      t.match(String((err?.cause as Error)?.message), mode === 'hang' ? /no answer within 300 ms/ : /ECONNREFUSED/, 'the cause is attached')
    }
  }
  store.mode = 'ok'
  await t.rejects(app.revocation.createGrant({ client_id: 'c', audience: AUDIENCE, scope: [] }).then(() => app.revocation.createGrant({ client_id: 'c', audience: AUDIENCE, scope: [] })),
    { code: 'FST_JWT_REVOCATION_GRANT_CONFLICT' }, 'a refusal by a working store stays what it is')
})

t.test('admin routes answer 503 with Auth0\'s body and Retry-After while the store is down', async (t) => {
  // A long cache ttl keeps the admin token's own check answered while the store is down.
  const { app, store, clock, lines } = await setup(t, { storeTimeout: 300, cache: { max: 100, ttl: 600_000 } })
  const admin = bearer(await sign(key, { aud: MGMT, sub: 'admin@clients', azp: 'admin', scope: ALL_SCOPES }))
  t.equal((await app.inject({ url: '/api/v2/client-grants', headers: admin })).statusCode, 200, 'the admin token is checked and cached while the store is up')
  const routes = [
    { method: 'POST', url: '/api/v2/blacklists/tokens', payload: { aud: AUDIENCE, jti: 'j' } },
    { method: 'GET', url: '/api/v2/blacklists/tokens' },
    { method: 'GET', url: '/api/v2/client-grants' },
    { method: 'POST', url: '/api/v2/client-grants', payload: { client_id: 'c', audience: AUDIENCE, scope: ['read:orders'] } },
    { method: 'PATCH', url: '/api/v2/client-grants/cgr_x', payload: { scope: [] } },
    { method: 'DELETE', url: '/api/v2/client-grants/cgr_x' },
  ] as const
  for (const mode of ['hang', 'fail'] as const) {
    store.mode = mode
    for (const route of routes) {
      const res = await after(clock, store, 300, () => app.inject({ ...route, headers: admin }))
      t.equal(res.statusCode, 503, `${route.method} ${route.url} (${mode})`)
      t.same(res.json(), { statusCode: 503, error: 'Service Unavailable', message: 'The revocation store is unavailable; retry later', errorCode: 'service_unavailable' })
      t.equal(res.headers['retry-after'], '4')
      t.notMatch(res.body, /ECONNREFUSED|hunter2|within/)
    }
  }
  t.ok(lines.some((l) => JSON.stringify(l).includes('ECONNREFUSED')), 'the cause is in the log, not the response')
})

t.test('a store that refuses on purpose at boot (locked, corrupt, newer schema) still fails ready()', async (t) => {
  const store = new MemoryStore()
  store.ready = async () => { throw new StoreError('FileStore /data is locked by process 42') }
  const app = Fastify()
  t.teardown(() => app.close())
  app.register(jwtRevocation, { jwks, audience: AUDIENCE, store })
  await t.rejects(async () => { await app.ready() }, { code: 'FST_JWT_REVOCATION_STORE', message: /locked by process 42/ })
})

t.test('a store that does not answer at boot: ready() resolves after storeTimeout and the store is retried', async (t) => {
  const clock = FakeTimers.install({ toFake: ['Date', 'setTimeout', 'clearTimeout'], now: Date.now() })
  t.teardown(() => clock.uninstall())
  const { stream, lines } = logCapture()
  const store = flakyStore()
  let readyCalls = 0
  store.ready = () => { readyCalls++; return store.mode === 'hang' ? new Promise(() => {}) : Promise.resolve() }
  // A store without the log: nothing tells it what changed while it was unreachable.
  Object.defineProperty(store, 'readLog', { value: undefined })
  store.mode = 'hang'
  const app = Fastify({ logger: { level: 'info', stream } })
  t.teardown(() => app.close())
  app.register(jwtRevocation, { jwks, audience: AUDIENCE, store, storeTimeout: 700 })
  const ready = app.ready()
  await clock.tickAsync(700)
  await ready
  const changes: string[] = []
  const invalidate = app.revocation.invalidate.bind(app.revocation)
  app.revocation.invalidate = (change) => { changes.push(change.type); invalidate(change) }
  t.equal(logged(lines, 'MemoryStore unreachable at startup (no answer within 700 ms)'), 1, 'logged once, naming the store and the cause')
  t.equal(readyCalls, 1)
  await clock.tickAsync(500)
  t.equal(readyCalls, 2, 'tried again after a pause')
  store.mode = 'ok'
  await clock.tickAsync(1000 + 700)
  t.equal(readyCalls, 3, 'the pause grew')
  t.equal(logged(lines, 'reachable again'), 1, 'the recovery is logged')
  t.same(changes, ['reset'], 'and every cache is flushed, as after a feed reconnect')
  await clock.tickAsync(60_000)
  t.equal(readyCalls, 3, 'no more attempts once it answered')
})
