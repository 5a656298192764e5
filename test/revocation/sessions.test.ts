import FakeTimers from '@sinonjs/fake-timers'
import { decodeJwt } from 'jose'
import t from 'tap'
import { MemoryStore, type RevocationStore } from '../../src/index.js'
import { bearer, buildApp, makeKey, refusalsOf, sign } from '../helpers/helpers.js'

// A third not-before rule beside clients and subjects: one login session (`sid`) logged
// out, through the plugin with real requests.

const key = await makeKey('ES256')
const jwks = { keys: [key.publicJwk] }
const get = (app: Awaited<ReturnType<typeof buildApp>>, token: string) => app.inject({ url: '/me', headers: bearer(token) })
const user = (sid?: string) => ({ sub: 'user-7', azp: 'web-app', ...(sid === undefined ? {} : { sid }) })

t.test('revokeSession refuses the tokens of that session issued up to the revocation, and no others', async (t) => {
  const clock = FakeTimers.install({ toFake: ['Date'], now: Date.now() })
  t.teardown(() => clock.uninstall())
  const app = await buildApp(t, { jwks })
  const laptop = await sign(key, user('sid-laptop'))
  const phone = await sign(key, user('sid-phone'))
  const noSession = await sign(key, user())
  for (const token of [laptop, phone, noSession]) t.equal((await get(app, token)).statusCode, 200, 'accepted and now cached')
  clock.tick(1000)
  await app.revocation.revokeSession('sid-laptop')

  const res = await get(app, laptop)
  t.equal(res.statusCode, 401, 'the cached token of the logged-out session is refused at once')
  t.equal(res.json().message, 'The token has been revoked', 'the client is told no more than that')
  t.same(refusalsOf(app).at(-1), { reason: 'session', clientId: 'web-app', subject: 'user-7', sessionId: 'sid-laptop', jti: decodeJwt(laptop).jti })
  t.equal((await get(app, phone)).statusCode, 200, 'the same user\'s other session is untouched')
  t.equal((await get(app, noSession)).statusCode, 200, 'a token without sid is untouched')
  clock.tick(1000)
  t.equal((await get(app, await sign(key, user('sid-laptop')))).statusCode, 200, 'a token of the session issued after the revocation is accepted')
})

t.test('revokedAt dates the logout: tokens issued after it stay valid', async (t) => {
  const app = await buildApp(t, { jwks })
  const now = Math.floor(Date.now() / 1000)
  const before = await sign(key, { ...user('sid-1'), iat: now - 120 })
  const after = await sign(key, { ...user('sid-1'), iat: now - 30 })
  await app.revocation.revokeSession('sid-1', { revokedAt: (now - 60) * 1000 })
  t.equal((await get(app, before)).statusCode, 401)
  t.equal((await get(app, after)).statusCode, 200)
  await app.revocation.revokeSession('sid-2', { revokedAt: Date.now() + 3_600_000 })
  t.equal((await get(app, await sign(key, { ...user('sid-2'), iat: now + 60 }))).statusCode, 200, 'a revokedAt in the future counts as now')
})

t.test('the rule lives as long as a token it refuses could, or until expiresAt', async (t) => {
  const store = new MemoryStore()
  const app = await buildApp(t, { jwks, store, maxTokenLifetime: '1h' })
  const revokeSession = store.revokeSession.bind(store)
  const written: Array<Parameters<typeof store.revokeSession>[0]> = []
  store.revokeSession = async (entry) => { written.push(entry); return revokeSession(entry) }
  await app.revocation.revokeSession('sid-a')
  const expiresAt = Date.now() + 600_000
  await app.revocation.revokeSession('sid-b', { expiresAt })
  t.ok(Math.abs(written[0]!.expiresAt! - (Date.now() + 3_600_000)) < 5000, 'without expiresAt: maxTokenLifetime from now')
  t.equal(written[1]!.expiresAt, expiresAt)
})

t.test('bad input to revokeSession fails clearly, before the store is written', async (t) => {
  const app = await buildApp(t, { jwks })
  await t.rejects(app.revocation.revokeSession(''), /sessionId must be a non-empty string/)
  await t.rejects(app.revocation.revokeSession(42 as unknown as string), /sessionId must be a non-empty string/)
  await t.rejects(app.revocation.revokeSession('s', { revokedAt: Number.NaN }), /revokedAt must be a time in milliseconds/)
  await t.rejects(app.revocation.revokeSession('s', { revokedAt: Math.floor(Date.now() / 1000) }), /revokedAt must be a time in milliseconds/, 'seconds for ms would refuse nothing')
  await t.rejects(app.revocation.revokeSession('s', { expiresAt: Math.floor(Date.now() / 1000) + 3600 }), /expiresAt must be a time in milliseconds/)
  await t.rejects(app.revocation.revokeSession('s', { expiresAt: Date.now() - 1 }), /expiresAt must be a time in milliseconds in the future/)
  await t.rejects(app.revocation.revokeSession('s', null as never), /options must be an object/)
})

/** The contract's required methods only: a third-party store written before sessions existed. */
function storeWithoutSessions (answer: (state: Awaited<ReturnType<RevocationStore['lookup']>>) => object = (s) => s): RevocationStore {
  const inner = new MemoryStore()
  return {
    lookup: async (query) => {
      const { sessionRevokedAt: _omitted, ...state } = await inner.lookup(query)
      return answer(state) as never
    },
    revokeToken: (entry) => inner.revokeToken(entry),
    listRevokedTokens: (filter) => inner.listRevokedTokens(filter),
    revokeClient: (entry) => inner.revokeClient(entry),
    revokeSubject: (entry) => inner.revokeSubject(entry),
  }
}

t.test('a store without revokeSession keeps working; revoking a session on it fails clearly', async (t) => {
  const app = await buildApp(t, { jwks, store: storeWithoutSessions() })
  t.equal(app.revocation.sessionsSupported, false)
  t.equal((await get(app, await sign(key, user('sid-1')))).statusCode, 200, 'a lookup without sessionRevokedAt is no malformed answer')
  await t.rejects(app.revocation.revokeSession('sid-1'), { code: 'FST_JWT_REVOCATION_STORE', message: /does not keep session revocations/ })
  await app.revocation.revokeSubject('user-7')
  t.equal((await get(app, await sign(key, { ...user('sid-1'), iat: Math.floor(Date.now() / 1000) - 5 }))).statusCode, 401, 'subject rules still apply')
})

t.test('a store with revokeSession must answer sessionRevokedAt: silence fails closed', async (t) => {
  const inner = new MemoryStore()
  const store: RevocationStore = {
    ...storeWithoutSessions(),
    revokeSession: (entry) => inner.revokeSession(entry),
  }
  const app = await buildApp(t, { jwks, store, onStoreError: 'deny' })
  t.equal(app.revocation.sessionsSupported, true)
  const res = await get(app, await sign(key, user('sid-1')))
  t.equal(res.statusCode, 503, 'a store that keeps sessions and does not say is a failing store')
  const garbage = await buildApp(t, { jwks, store: storeWithoutSessions((s) => ({ ...s, sessionRevokedAt: 'yesterday' })), onStoreError: 'deny' })
  t.equal((await get(garbage, await sign(key, user('sid-1')))).statusCode, 503, 'a malformed sessionRevokedAt is refused from any store')
})
