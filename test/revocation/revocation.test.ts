import FakeTimers from '@sinonjs/fake-timers'
import Fastify from 'fastify'
import { Writable } from 'node:stream'
import t from 'tap'
import jwtRevocation, { MemoryStore, type RevocationStore } from '../../src/index.js'
import { decodeJwt } from 'jose'
import { AUDIENCE, bearer, buildApp, DPOP_CHALLENGE, ISSUER, makeKey, refusalsOf, sign } from '../helpers/helpers.js'

const key = await makeKey('ES256')
const jwks = { keys: [key.publicJwk] }
const get = (app: Awaited<ReturnType<typeof buildApp>>, token: string) => app.inject({ url: '/orders', headers: bearer(token) })

/** A MemoryStore without a change feed, counting lookups: stands for a remote store. */
function countingStore (): MemoryStore & { lookups: number } {
  const store = new MemoryStore() as MemoryStore & { lookups: number }
  store.lookups = 0
  const lookup = store.lookup.bind(store)
  store.lookup = async (q) => { store.lookups++; return lookup(q) }
  ;(store as { subscribe?: unknown }).subscribe = undefined
  return store
}

t.test('strategy 1: a blacklisted jti is refused on the very next request, cached or not', async (t) => {
  const app = await buildApp(t, { jwks })
  const token = await sign(key, { jti: 'partner-token-1' })
  t.equal((await get(app, token)).statusCode, 200, 'accepted and now cached')
  await app.revocation.revokeToken({ jti: 'partner-token-1', aud: AUDIENCE, exp: Math.floor(Date.now() / 1000) + 3600 })
  const res = await get(app, token)
  t.equal(res.statusCode, 401)
  t.equal(res.json().code, 'FST_JWT_REVOCATION_TOKEN_REVOKED')
  t.equal(res.headers['www-authenticate'], 'Bearer realm="api", error="invalid_token", error_description="The token has been revoked", scope="read:orders"' + DPOP_CHALLENGE)
  t.equal(await app.revocation.isTokenRevoked('partner-token-1', AUDIENCE), true)
  t.equal(await app.revocation.isTokenRevoked('partner-token-1'), true, 'aud defaults to the first audience')
  t.equal(await app.revocation.isTokenRevoked('another', AUDIENCE), false)
  t.same((await app.revocation.listRevokedTokens({ aud: AUDIENCE })).map((e) => e.jti), ['partner-token-1'])
  t.equal((await get(app, await sign(key))).statusCode, 200, 'other tokens of the same client still work')
})

t.test('blacklist entries expire with the token, or after maxTokenLifetime', async (t) => {
  const store = new MemoryStore()
  const app = await buildApp(t, { jwks, store, maxTokenLifetime: '1h' })
  const exp = Math.floor(Date.now() / 1000) + 600
  await app.revocation.revokeToken({ jti: 'a', exp })
  await app.revocation.revokeToken({ jti: 'b' })
  const entries = await store.listRevokedTokens({})
  t.equal(entries.find((e) => e.jti === 'a')?.expiresAt, exp * 1000)
  const b = entries.find((e) => e.jti === 'b')!.expiresAt!
  t.ok(Math.abs(b - (Date.now() + 3_600_000)) < 5000, 'without exp the entry lives as long as the longest acceptable token')
})

t.test('bad input to app.revocation fails clearly', async (t) => {
  const app = await buildApp(t, { jwks })
  await t.rejects(app.revocation.revokeToken({ jti: '' }), /jti must be a non-empty string/)
  await t.rejects(app.revocation.revokeToken({ jti: 'x', exp: Number.NaN }), /exp must be a number/)
  await t.rejects(app.revocation.revokeClient(''), /clientId must be/)
  await t.rejects(app.revocation.updateGrant('cgr_missing', []), /client grant does not exist/)
})

t.test('strategy 2: revoking a client refuses all its tokens issued up to now', async (t) => {
  const clock = FakeTimers.install({ toFake: ['Date'], now: Date.now() })
  t.teardown(() => clock.uninstall())
  const app = await buildApp(t, { jwks })
  const older = await sign(key)
  const other = await sign(key, { azp: 'other-client', sub: 'other-client@clients' })
  t.equal((await get(app, older)).statusCode, 200)
  clock.tick(1000)
  const newer = await sign(key)
  await app.revocation.revokeClient('partner-client', { audience: AUDIENCE })
  for (const token of [older, newer]) {
    const res = await get(app, token)
    t.equal(res.statusCode, 401)
    t.equal(res.json().message, 'The token has been revoked', 'the client is told no more than that')
    t.same(refusalsOf(app).at(-1), { reason: 'client', clientId: 'partner-client', subject: 'partner-client@clients', jti: decodeJwt(token).jti }, 'server-side code reads which rule matched')
  }
  t.equal((await get(app, other)).statusCode, 200, 'other clients are untouched')
  clock.tick(1000)
  t.equal((await get(app, await sign(key))).statusCode, 200, 'a token issued after the revocation is accepted')
})

t.test('revokeClient for another audience (shared store) leaves this API alone; no audience means all', async (t) => {
  const app = await buildApp(t, { jwks, acceptForeignAudiences: true })
  const token = await sign(key)
  await app.revocation.revokeClient('partner-client', { audience: 'https://elsewhere.test' })
  t.equal((await get(app, token)).statusCode, 200)
  await app.revocation.revokeClient('partner-client')
  t.equal((await get(app, token)).statusCode, 401)
})

t.test('revokeSubject: log out everywhere', async (t) => {
  const app = await buildApp(t, { jwks })
  const mine = await sign(key, { sub: 'user-7', azp: 'spa' })
  const theirs = await sign(key, { sub: 'user-8', azp: 'spa' })
  t.equal((await get(app, mine)).statusCode, 200)
  await app.revocation.revokeSubject('user-7')
  t.equal((await get(app, mine)).json().message, 'The token has been revoked')
  t.match(refusalsOf(app).at(-1), { reason: 'subject', subject: 'user-7', clientId: 'spa' })
  t.equal((await get(app, theirs)).statusCode, 200)
})

t.test('tokens without jti skip only the blacklist check', async (t) => {
  const app = await buildApp(t, { jwks })
  const token = await sign(key, { jti: undefined })
  t.equal((await get(app, token)).statusCode, 200)
  await app.revocation.revokeClient('partner-client')
  t.equal((await get(app, token)).statusCode, 401, 'client revocation still applies')
})

t.test('grants: the client needs a grant created before the token was issued', async (t) => {
  const clock = FakeTimers.install({ toFake: ['Date'], now: Date.now() })
  t.teardown(() => clock.uninstall())
  const app = await buildApp(t, { jwks, grants: true })
  const early = await sign(key, { scope: 'read:orders write:orders' })
  t.equal((await get(app, early)).json().message, 'The token has been revoked')
  t.match(refusalsOf(app).at(-1), { reason: 'grant', clientId: 'partner-client' })
  const grant = await app.revocation.createGrant({ client_id: 'partner-client', audience: AUDIENCE, scope: ['read:orders', 'write:orders'] })
  t.equal((await get(app, early)).statusCode, 200, 'a token issued in the grant\'s second is accepted')
  clock.tick(2000)
  const token = await sign(key, { scope: 'read:orders write:orders' })
  t.same((await get(app, token)).json().scopes, ['read:orders', 'write:orders'])
  await app.revocation.updateGrant(grant.id, ['read:orders'])
  t.same((await get(app, token)).json().scopes, ['read:orders'], 'a PATCH narrows the scopes on the next request')
  t.equal((await app.inject({ method: 'POST', url: '/orders', headers: bearer(token) })).statusCode, 403)
  await app.revocation.deleteGrant(grant.id)
  t.equal((await get(app, token)).statusCode, 401, 'deleting the grant refuses the token at once')
  clock.tick(2000)
  await app.revocation.createGrant({ client_id: 'partner-client', audience: AUDIENCE, scope: ['read:orders'] })
  t.equal((await get(app, token)).statusCode, 401, 'a re-created grant never revives old tokens')
  clock.tick(1000)
  t.equal((await get(app, await sign(key))).statusCode, 200, 'a token issued after the new grant is accepted')
})

t.test('cache ttl bounds staleness for a store without change feed', async (t) => {
  const clock = FakeTimers.install({ toFake: ['Date'], now: Date.now() })
  t.teardown(() => clock.uninstall())
  const store = countingStore()
  const app = await buildApp(t, { jwks, store, cache: { max: 100, ttl: 5000 } })
  const token = await sign(key, { jti: 'j1' })
  for (let i = 0; i < 5; i++) t.equal((await get(app, token)).statusCode, 200)
  t.equal(store.lookups, 1, 'one store lookup for five requests within ttl')
  // Another process revokes directly in the shared store: this process is not told.
  await store.revokeToken({ aud: AUDIENCE, jti: 'j1', expiresAt: null })
  t.equal((await get(app, token)).statusCode, 200, 'stale within ttl')
  clock.tick(5000)
  t.equal((await get(app, token)).statusCode, 401, 'seen once ttl has passed')
  t.equal((await get(app, token)).statusCode, 401)
  t.equal(store.lookups, 2, 'a revoked answer is cached: no further lookups')
})

t.test('cache: false asks the store on every request', async (t) => {
  const store = countingStore()
  const app = await buildApp(t, { jwks, store, cache: false })
  const token = await sign(key)
  for (let i = 0; i < 3; i++) t.equal((await get(app, token)).statusCode, 200)
  t.equal(store.lookups, 3)
})

t.test('concurrent requests for one token share one store lookup', async (t) => {
  const store = countingStore()
  const app = await buildApp(t, { jwks, store, cache: { max: 10, ttl: 0 } })
  const token = await sign(key)
  await get(app, token)
  const before = store.lookups
  const statuses = await Promise.all(Array.from({ length: 10 }, () => get(app, token)))
  t.ok(statuses.every((r) => r.statusCode === 200))
  t.ok(store.lookups - before <= 10, 'lookups are bounded by requests')
})

function logCapture (): { stream: Writable, lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({ write (chunk, _enc, cb) { lines.push(JSON.parse(chunk.toString())); cb() } })
  return { stream, lines }
}

function failingStore (): RevocationStore & { failing: boolean, hang: boolean } {
  const inner = new MemoryStore()
  const store = Object.assign(Object.create(inner) as MemoryStore, { failing: true, hang: false })
  store.lookup = async (q) => {
    if (store.hang) return new Promise(() => {})
    if (store.failing) throw new Error('ECONNREFUSED 10.0.0.1:6379 password=hunter2')
    return inner.lookup(q)
  }
  return store
}

t.test("onStoreError 'deny': 503 with Retry-After, one log line per outage, recovers by itself", async (t) => {
  const clock = FakeTimers.install({ toFake: ['Date'], now: Date.now() })
  t.teardown(() => clock.uninstall())
  const { stream, lines } = logCapture()
  const app = Fastify({ logger: { level: 'info', stream } })
  t.teardown(() => app.close())
  const store = failingStore()
  await app.register(jwtRevocation, { jwks, audience: AUDIENCE, issuer: ISSUER, store, retryAfter: 3 })
  app.get('/orders', async () => 'ok')
  const token = await sign(key)
  for (let i = 0; i < 3; i++) {
    const res = await app.inject({ url: '/orders', headers: bearer(token) })
    t.equal(res.statusCode, 503)
    t.equal(res.headers['retry-after'], '3')
    t.notMatch(res.body, /ECONNREFUSED|hunter2/, 'no internal detail in the response')
  }
  const outage = lines.filter((l) => typeof l.msg === 'string' && (l.msg as string).includes('revocation store failed'))
  t.equal(outage.length, 1, 'logged once for the outage')
  t.match(JSON.stringify(outage[0]), /ECONNREFUSED/, 'with its cause')
  store.failing = false
  clock.tick(3000)
  t.equal((await app.inject({ url: '/orders', headers: bearer(token) })).statusCode, 200, 'back once the store answers, after the pause')
  t.ok(lines.some((l) => String(l.msg).includes('reachable again')))
})

t.test("onStoreError 'allow' lets requests through and logs", async (t) => {
  const { stream, lines } = logCapture()
  const app = Fastify({ logger: { level: 'info', stream } })
  t.teardown(() => app.close())
  await app.register(jwtRevocation, { jwks, audience: AUDIENCE, store: failingStore(), onStoreError: 'allow' })
  app.get('/orders', async () => 'ok')
  t.equal((await app.inject({ url: '/orders', headers: bearer(await sign(key)) })).statusCode, 200)
  t.ok(lines.some((l) => String(l.msg).includes('let through unchecked')))
})

t.test('a hanging store is bounded by storeTimeout', async (t) => {
  const store = failingStore()
  store.hang = true
  const app = await buildApp(t, { jwks, store, storeTimeout: 50 })
  const res = await get(app, await sign(key))
  t.equal(res.statusCode, 503)
})

t.test('a store answering garbage counts as a failing store', async (t) => {
  for (const answer of [null, {}, { tokenRevoked: 'no', clientRevokedAt: null, subjectRevokedAt: null }, { tokenRevoked: false, clientRevokedAt: 'soon', subjectRevokedAt: null }]) {
    const store = new MemoryStore()
    store.lookup = async () => answer as never
    const app = await buildApp(t, { jwks, store })
    const res = await get(app, await sign(key))
    t.equal(res.statusCode, 503, JSON.stringify(answer))
  }
  const store = new MemoryStore()
  store.lookup = async () => ({ tokenRevoked: false, clientRevokedAt: null, subjectRevokedAt: null, grant: { created_at: 'x', scope: 'all' } }) as never
  const app = await buildApp(t, { jwks, store, grants: true })
  t.equal((await get(app, await sign(key))).statusCode, 503, 'a malformed grant too')
})

t.test('a forged token never reaches the store', async (t) => {
  const store = countingStore()
  const app = await buildApp(t, { jwks, store })
  const forged = await sign(await makeKey('ES256', key.kid))
  t.equal((await get(app, forged)).statusCode, 401)
  t.equal(store.lookups, 0)
})

t.test('a revocation that lands through the feed while a lookup is in flight is not hidden for cache.ttl', async (t) => {
  // The lookup reads the store before the revocation and answers after it: its
  // "not revoked" is already stale when it arrives, so it must not be cached as fresh.
  const store = new MemoryStore()
  let release: () => void = () => {}
  let held: Promise<void> | null = null
  let reading: () => void = () => {}
  const read = new Promise<void>((resolve) => { reading = resolve })
  const lookup = store.lookup.bind(store)
  store.lookup = async (q) => {
    const state = await lookup(q)
    reading()
    if (held) await held
    return state
  }
  const app = await buildApp(t, { jwks, store, cache: { max: 100, ttl: 60_000 } })
  const token = await sign(key, { jti: 'raced' })

  held = new Promise<void>((resolve) => { release = resolve })
  const first = get(app, token)
  await read
  // Straight into the store, as another instance would: only the change feed tells this app.
  await store.revokeToken({ aud: AUDIENCE, jti: 'raced', expiresAt: null })
  held = null
  release()
  t.equal((await first).statusCode, 200, 'the request that asked before the revocation is answered as it was asked')
  t.equal((await get(app, token)).statusCode, 401, 'the next request is refused, not served the stale answer from the cache')
})
