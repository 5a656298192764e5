import FakeTimers from '@sinonjs/fake-timers'
import Fastify, { type FastifyInstance } from 'fastify'
import t from 'tap'
import jwtRevocation, { adminRoutes, MemoryStore } from '../../src/index.js'
import { AUDIENCE, bearer, ISSUER, makeKey, refusalsOf, sign } from '../helpers/helpers.js'

const MGMT = 'https://issuer.test/api/v2/'
const key = await makeKey('ES256')
const jwks = { keys: [key.publicJwk] }
const ALL_SCOPES = 'blacklist:tokens read:client_grants create:client_grants update:client_grants delete:client_grants read:logs'

async function build (t: { teardown: (fn: () => unknown) => void }, extra: Record<string, unknown> = {}): Promise<FastifyInstance> {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(jwtRevocation, { jwks, issuer: ISSUER, audience: [AUDIENCE, MGMT], store: new MemoryStore(), ...extra })
  await app.register(adminRoutes, { prefix: '/api/v2', audience: MGMT })
  refusalsOf(app)
  app.get('/orders', { config: { auth: { scopes: ['read:orders'], audience: AUDIENCE } } }, async (req) => ({ client: req.auth!.clientId }))
  await app.ready()
  return app
}

const adminToken = (scope = ALL_SCOPES) => sign(key, { aud: MGMT, sub: 'admin@clients', azp: 'admin', scope })

t.test("the seed's partner scenario through the admin routes", async (t) => {
  const clock = FakeTimers.install({ toFake: ['Date'], now: Date.now() })
  t.teardown(() => clock.uninstall())
  const app = await build(t, { grants: true })
  // With grants enforced, the admin client needs its own grant for the management API.
  await app.revocation.createGrant({ client_id: 'admin', audience: MGMT, scope: ALL_SCOPES.split(' ') })
  clock.tick(1000)
  const admin = bearer(await adminToken())

  const created = await app.inject({ method: 'POST', url: '/api/v2/client-grants', headers: admin, payload: { client_id: 'partner-client', audience: AUDIENCE, scope: ['read:orders'] } })
  t.equal(created.statusCode, 201)
  const grant = created.json()
  t.match(grant, { id: /^cgr_/, client_id: 'partner-client', audience: AUDIENCE, scope: ['read:orders'] })
  clock.tick(1000)

  // The partner holds a month-long token.
  const month = await sign(key, { jti: 'month-long' }, { expiresIn: 30 * 86400 })
  t.equal((await app.inject({ url: '/orders', headers: bearer(month) })).statusCode, 200)

  // Strategy 1: blacklist its jti.
  const black = await app.inject({ method: 'POST', url: '/api/v2/blacklists/tokens', headers: admin, payload: { aud: AUDIENCE, jti: 'month-long' } })
  t.equal(black.statusCode, 204)
  t.equal(black.body, '', 'an empty 204, as Auth0 answers')
  t.equal((await app.inject({ url: '/orders', headers: bearer(month) })).statusCode, 401, 'the blacklisted token is refused on the next request')
  t.same((await app.inject({ url: '/api/v2/blacklists/tokens', query: { aud: AUDIENCE }, headers: admin })).json(), [{ aud: AUDIENCE, jti: 'month-long' }])

  // A blacklist stops one token only: a fresh one works.
  const fresh = await sign(key, { jti: 'fresh' }, { expiresIn: 30 * 86400 })
  t.equal((await app.inject({ url: '/orders', headers: bearer(fresh) })).statusCode, 200)

  // Strategy 2: delete the client grant: every token of the client is refused at once.
  const deleted = await app.inject({ method: 'DELETE', url: `/api/v2/client-grants/${grant.id}`, headers: admin })
  t.equal(deleted.statusCode, 204)
  t.equal(deleted.body, '')
  const refused = await app.inject({ url: '/orders', headers: bearer(fresh) })
  t.equal(refused.statusCode, 401)
  t.equal(refused.json().message, 'The token has been revoked')
  t.match(refusalsOf(app).at(-1), { reason: 'client', clientId: 'partner-client' }, 'the deleted grant revoked the client')

  // A new grant, then a token issued after it: accepted again.
  clock.tick(1000)
  const again = await app.inject({ method: 'POST', url: '/api/v2/client-grants', headers: admin, payload: { client_id: 'partner-client', audience: AUDIENCE, scope: ['read:orders'] } })
  t.equal(again.statusCode, 201)
  clock.tick(1000)
  t.equal((await app.inject({ url: '/orders', headers: bearer(await sign(key)) })).statusCode, 200)
  t.equal((await app.inject({ url: '/orders', headers: bearer(fresh) })).statusCode, 401, 'the old token stays dead')
})

t.test('client grants: 409 on a duplicate pair, PATCH, 404, list with pagination', async (t) => {
  const app = await build(t)
  const admin = bearer(await adminToken())
  const ids: string[] = []
  for (let i = 0; i < 5; i++) {
    const res = await app.inject({ method: 'POST', url: '/api/v2/client-grants', headers: admin, payload: { client_id: `c${i}`, audience: AUDIENCE, scope: [] } })
    ids.push(res.json().id)
  }
  const dup = await app.inject({ method: 'POST', url: '/api/v2/client-grants', headers: admin, payload: { client_id: 'c0', audience: AUDIENCE, scope: ['x'] } })
  t.equal(dup.statusCode, 409)
  t.same(dup.json(), { statusCode: 409, error: 'Conflict', message: 'A client grant for this client and audience already exists', errorCode: 'conflict' })

  const patched = await app.inject({ method: 'PATCH', url: `/api/v2/client-grants/${ids[0]}`, headers: admin, payload: { scope: ['read:orders'] } })
  t.equal(patched.statusCode, 200)
  t.same(patched.json().scope, ['read:orders'])
  const missing = await app.inject({ method: 'PATCH', url: '/api/v2/client-grants/cgr_nope', headers: admin, payload: { scope: [] } })
  t.equal(missing.statusCode, 404)
  t.equal(missing.json().errorCode, 'inexistent_client_grant')
  t.equal((await app.inject({ method: 'DELETE', url: '/api/v2/client-grants/cgr_nope', headers: admin })).statusCode, 404)

  const all = (await app.inject({ url: '/api/v2/client-grants', headers: admin })).json()
  t.equal(all.length, 5)
  const page = (await app.inject({ url: '/api/v2/client-grants', query: { page: '1', per_page: '2', include_totals: 'true' }, headers: admin })).json()
  t.same({ start: page.start, limit: page.limit, total: page.total }, { start: 2, limit: 2, total: 5 })
  t.same(page.client_grants.map((g: { id: string }) => g.id), all.slice(2, 4).map((g: { id: string }) => g.id), 'pages follow one stable order')
  t.same(all.map((g: { id: string }) => g.id).sort(), [...ids].sort())
  const filtered = (await app.inject({ url: '/api/v2/client-grants', query: { client_id: 'c3' }, headers: admin })).json()
  t.same(filtered.map((g: { client_id: string }) => g.client_id), ['c3'])
  t.notOk('created_at' in all[0], 'the Auth0 shape: id, client_id, audience, scope')
})

t.test('bad input is a 400 in Auth0\'s body, never a 500', async (t) => {
  const app = await build(t)
  const admin = bearer(await adminToken())
  const cases: Array<[string, string, unknown, string]> = [
    ['POST', '/api/v2/blacklists/tokens', {}, 'invalid_body'],
    ['POST', '/api/v2/blacklists/tokens', { jti: 'x'.repeat(257) }, 'invalid_body'],
    ['POST', '/api/v2/blacklists/tokens', { jti: 'ok', extra: 1 }, 'invalid_body'],
    ['POST', '/api/v2/blacklists/tokens', { jti: 42 }, 'invalid_body'],
    ['POST', '/api/v2/client-grants', { client_id: 'c', audience: 'a', scope: 'read' }, 'invalid_body'],
    ['POST', '/api/v2/client-grants', { client_id: 'c', audience: 'a', scope: ['has space'] }, 'invalid_body'],
    ['PATCH', '/api/v2/client-grants/x', {}, 'invalid_body'],
  ]
  for (const [method, url, payload, errorCode] of cases) {
    const res = await app.inject({ method: method as 'POST', url, headers: admin, payload: payload as object })
    t.equal(res.statusCode, 400, `${method} ${url} ${JSON.stringify(payload).slice(0, 40)}`)
    t.match(res.json(), { statusCode: 400, error: 'Bad Request', errorCode })
  }
  t.same(await app.revocation.listRevokedTokens(), [], 'nothing was stored by the refused requests')
  const badQuery = await app.inject({ url: '/api/v2/client-grants', query: { per_page: '101' }, headers: admin })
  t.equal(badQuery.statusCode, 400)
  t.equal(badQuery.json().errorCode, 'invalid_query_string')
  const notJson = await app.inject({ method: 'POST', url: '/api/v2/blacklists/tokens', headers: { ...admin, 'content-type': 'application/json' }, payload: '{"jti":' })
  t.equal(notJson.statusCode, 400)
  const huge = await app.inject({ method: 'POST', url: '/api/v2/blacklists/tokens', headers: { ...admin, 'content-type': 'application/json' }, payload: JSON.stringify({ jti: 'x', pad: 'y'.repeat(100_000) }) })
  t.equal(huge.statusCode, 413)
  t.equal(huge.json().errorCode, 'payload_too_large')
})

t.test('admin authorization: no token 401, missing scope 403, other audience 401, revoked admin 401', async (t) => {
  const app = await build(t)
  const routes: Array<[string, string, unknown?]> = [
    ['POST', '/api/v2/blacklists/tokens', { jti: 'x' }],
    ['GET', '/api/v2/blacklists/tokens'],
    ['GET', '/api/v2/client-grants'],
    ['POST', '/api/v2/client-grants', { client_id: 'c', audience: AUDIENCE, scope: [] }],
    ['PATCH', '/api/v2/client-grants/cgr_x', { scope: [] }],
    ['DELETE', '/api/v2/client-grants/cgr_x'],
  ]
  const noScope = await adminToken('read:orders')
  const apiToken = await sign(key, { scope: ALL_SCOPES })
  const revoked = await sign(key, { aud: MGMT, sub: 'admin@clients', azp: 'admin', scope: ALL_SCOPES, jti: 'admin-jti' })
  await app.revocation.revokeToken({ jti: 'admin-jti', aud: MGMT })
  for (const [method, url, payload] of routes) {
    const name = `${method} ${url}`
    const inject = (headers: Record<string, string>) => app.inject({ method: method as 'GET', url, headers, ...(payload ? { payload: payload as object } : {}) })
    const none = await inject({})
    t.equal(none.statusCode, 401, `${name}: no token`)
    t.match(none.json(), { statusCode: 401, error: 'Unauthorized', errorCode: 'missing_token' })
    const scoped = await inject(bearer(noScope))
    t.equal(scoped.statusCode, 403, `${name}: no scope`)
    t.match(scoped.json(), { statusCode: 403, error: 'Forbidden', errorCode: 'insufficient_scope' })
    t.match(scoped.headers['www-authenticate'], /error="insufficient_scope", error_description="[^"]+", scope="[a-z_:]+"/)
    t.equal((await inject(bearer(apiToken))).statusCode, 401, `${name}: token for the API audience`)
    t.equal((await inject(bearer(revoked))).statusCode, 401, `${name}: revoked admin token`)
  }
})

t.test('each admin route needs its own scope: every other admin scope together is refused', async (t) => {
  const app = await build(t)
  const all = ALL_SCOPES.split(' ')
  const grant = await app.revocation.createGrant({ client_id: 'partner', audience: AUDIENCE, scope: ['read:orders'] })
  const routes: Array<[string, string, string, unknown?]> = [
    ['blacklist:tokens', 'POST', '/api/v2/blacklists/tokens', { aud: AUDIENCE, jti: 'x' }],
    ['blacklist:tokens', 'GET', '/api/v2/blacklists/tokens'],
    ['read:client_grants', 'GET', '/api/v2/client-grants'],
    ['create:client_grants', 'POST', '/api/v2/client-grants', { client_id: 'other', audience: AUDIENCE, scope: [] }],
    ['update:client_grants', 'PATCH', `/api/v2/client-grants/${grant.id}`, { scope: ['write:orders'] }],
    ['delete:client_grants', 'DELETE', `/api/v2/client-grants/${grant.id}`],
    ['read:logs', 'GET', '/api/v2/revocation-log'],
  ]
  for (const [scope, method, url, payload] of routes) {
    const others = await adminToken(all.filter((s) => s !== scope).join(' '))
    const res = await app.inject({ method: method as 'GET', url, headers: bearer(others), ...(payload ? { payload: payload as object } : {}) })
    t.equal(res.statusCode, 403, `${method} ${url} refused without ${scope}`)
    t.match(res.headers['www-authenticate'], `scope="${scope}"`, 'the challenge names the missing scope')
  }
  t.same(await app.revocation.listRevokedTokens(), [], 'nothing was blacklisted')
  t.same((await app.revocation.listGrants()).map((g) => [g.client_id, g.scope]), [['partner', ['read:orders']]], 'the grant is neither created, updated nor deleted')
  for (const [scope, method, url, payload] of routes) {
    const own = await adminToken(scope)
    const res = await app.inject({ method: method as 'GET', url, headers: bearer(own), ...(payload ? { payload: payload as object } : {}) })
    t.ok(res.statusCode < 300, `${method} ${url} allowed with ${scope} alone (${res.statusCode})`)
  }
})

t.test('adminRoutes needs the plugin and an audience', async (t) => {
  const bare = Fastify()
  t.teardown(() => bare.close())
  bare.register(adminRoutes, { audience: MGMT })
  await t.rejects(async () => { await bare.ready() }, /fastify-jwt-revocation/)
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(jwtRevocation, { jwks, audience: [AUDIENCE, MGMT] })
  app.register(adminRoutes, {} as never)
  await t.rejects(async () => { await app.ready() }, /adminRoutes.audience" is required/)
  const noGrants = Fastify()
  t.teardown(() => noGrants.close())
  const store = { lookup: async () => ({ tokenRevoked: false, clientRevokedAt: null, subjectRevokedAt: null }), revokeToken: async () => {}, listRevokedTokens: async () => [], revokeClient: async () => {}, revokeSubject: async () => {} }
  await noGrants.register(jwtRevocation, { jwks, audience: [AUDIENCE, MGMT], store })
  noGrants.register(adminRoutes, { audience: MGMT })
  await t.rejects(async () => { await noGrants.ready() }, /needs a store with client grants; this store lacks createGrant/)
})

t.test('a revocation or grant for an audience this API does not accept is refused', async (t) => {
  const app = await build(t)
  const admin = bearer(await adminToken())
  const accepted = `${AUDIENCE}, ${MGMT}`
  for (const [url, payload] of [
    ['/api/v2/blacklists/tokens', { aud: `${AUDIENCE}/`, jti: 'j' }],
    ['/api/v2/client-grants', { client_id: 'partner-client', audience: 'https://other.api', scope: ['read:orders'] }],
  ] as const) {
    const res = await app.inject({ method: 'POST', url, headers: admin, payload })
    t.equal(res.statusCode, 400, url)
    t.same(res.json(), { statusCode: 400, error: 'Bad Request', message: `${'aud' in payload ? 'aud' : 'audience'} must be an audience this API accepts: ${accepted}`, errorCode: 'invalid_body' })
  }
  t.same(await app.revocation.listRevokedTokens(), [], 'nothing was written')
  t.same(await app.revocation.listGrants(), [])
  for (const call of [
    () => app.revocation.revokeToken({ jti: 'j', aud: 'https://api.test/' }),
    () => app.revocation.revokeClient('c', { audience: 'https://api.test/' }),
    async () => { await app.revocation.createGrant({ client_id: 'c', audience: 'https://api.test/', scope: [] }) },
  ]) {
    await t.rejects(call(), { code: 'FST_JWT_REVOCATION_INVALID_ARGUMENT', statusCode: 400 })
  }
  await app.revocation.revokeClient('c', { audience: AUDIENCE })
  await app.revocation.revokeClient('c')
  t.pass('its own audiences, and every audience (no audience given), are accepted')
})

t.test('acceptForeignAudiences: a store shared by several APIs takes every audience', async (t) => {
  const app = await build(t, { acceptForeignAudiences: true })
  const admin = bearer(await adminToken())
  const res = await app.inject({ method: 'POST', url: '/api/v2/blacklists/tokens', headers: admin, payload: { aud: 'https://other.api', jti: 'j' } })
  t.equal(res.statusCode, 204)
  t.equal(await app.revocation.isTokenRevoked('j', 'https://other.api'), true)
  t.equal((await app.revocation.createGrant({ client_id: 'c', audience: 'https://other.api', scope: [] })).audience, 'https://other.api')
})

t.test('grants: true from an empty store: bootstrapClientId admits the admin client, and only it', async (t) => {
  const clock = FakeTimers.install({ toFake: ['Date'], now: Date.now() })
  t.teardown(() => clock.uninstall())
  const store = new MemoryStore()
  const start = async () => {
    const app = Fastify()
    t.teardown(() => app.close())
    await app.register(jwtRevocation, { jwks, issuer: ISSUER, audience: [AUDIENCE, MGMT], store, grants: true })
    await app.register(adminRoutes, { prefix: '/api/v2', audience: MGMT, bootstrapClientId: 'admin' })
    await app.ready()
    return app
  }
  const app = await start()
  const grants = await app.revocation.listGrants()
  t.match(grants, [{ client_id: 'admin', audience: MGMT }])
  t.same([...grants[0]!.scope].sort(), ALL_SCOPES.split(' ').sort(), 'with every admin scope')
  clock.tick(1000)
  const admin = bearer(await adminToken())
  const created = await app.inject({ method: 'POST', url: '/api/v2/client-grants', headers: admin, payload: { client_id: 'partner-client', audience: AUDIENCE, scope: ['read:orders'] } })
  t.equal(created.statusCode, 201, 'the admin client works on the first run')
  const intruder = bearer(await sign(key, { aud: MGMT, sub: 'other@clients', azp: 'other', scope: ALL_SCOPES }))
  t.equal((await app.inject({ url: '/api/v2/client-grants', headers: intruder })).statusCode, 401, 'another client with every scope still needs a grant')

  // The owner narrows the admin grant; a restart must not undo it.
  const [grant] = await app.revocation.listGrants({ client_id: 'admin' })
  await app.revocation.updateGrant(grant!.id, ['read:client_grants'])
  await app.close()
  const again = await start()
  t.match(await again.revocation.listGrants({ audience: MGMT }), [{ client_id: 'admin', scope: ['read:client_grants'] }], 'not re-created nor widened once a grant exists')
})

t.test('bootstrapClientId with the store down at startup: the app starts and the grant is created once it answers', async (t) => {
  const clock = FakeTimers.install({ toFake: ['Date', 'setTimeout', 'clearTimeout'], now: Date.now() })
  t.teardown(() => clock.uninstall())
  const store = new MemoryStore()
  const listGrants = store.listGrants.bind(store)
  let down = true
  store.listGrants = async (filter) => { if (down) throw new Error('ECONNREFUSED'); return listGrants(filter) }
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(jwtRevocation, { jwks, issuer: ISSUER, audience: [AUDIENCE, MGMT], store, grants: true, retryAfter: 2 })
  await app.register(adminRoutes, { prefix: '/api/v2', audience: MGMT, bootstrapClientId: 'admin' })
  await app.ready()
  down = false
  t.same(await app.revocation.listGrants(), [], 'not yet')
  await clock.tickAsync(2000)
  t.match(await app.revocation.listGrants(), [{ client_id: 'admin', audience: MGMT }], 'created after retryAfter')
})

t.test('bootstrapClientId must name a client', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(jwtRevocation, { jwks, issuer: ISSUER, audience: [AUDIENCE, MGMT] })
  app.register(adminRoutes, { prefix: '/api/v2', audience: MGMT, bootstrapClientId: '' })
  await t.rejects(async () => { await app.ready() }, { code: 'FST_JWT_REVOCATION_INVALID_OPTION', message: /adminRoutes.bootstrapClientId/ })
})

t.test('GET /blacklists/tokens answers the whole list, read from the store page by page', async (t) => {
  const app = await build(t)
  const admin = bearer(await adminToken())
  // More than one page holds (10,000): the answer is still Auth0's one array.
  const jtis = Array.from({ length: 10_050 }, (_, i) => `bulk-${i}`)
  await app.revocation.revokeTokens(jtis.map((jti) => ({ jti, aud: AUDIENCE })))
  const listed = (await app.inject({ url: '/api/v2/blacklists/tokens', query: { aud: AUDIENCE }, headers: admin })).json() as Array<{ aud: string, jti: string }>
  t.equal(listed.length, jtis.length, 'every token once')
  t.same(listed.map((e) => e.jti).sort(), [...jtis].sort())
  const first = await app.revocation.listRevokedTokensPage({ aud: AUDIENCE }, { limit: 10 })
  t.equal(first.tokens.length, 10, 'app.revocation pages too')
  await t.rejects(app.revocation.listRevokedTokensPage({}, { cursor: 'nonsense' }), { code: 'FST_JWT_REVOCATION_INVALID_ARGUMENT' }, 'a foreign cursor is the caller\'s mistake')
  await t.rejects(app.revocation.listRevokedTokensPage({}, { cursr: first.next } as never), { code: 'FST_JWT_REVOCATION_INVALID_ARGUMENT', message: /page\.cursr is not known/ }, 'a misspelt cursor is refused, not read as the first page')
  await t.rejects(app.revocation.listRevokedTokensPage({ audience: AUDIENCE } as never), { code: 'FST_JWT_REVOCATION_INVALID_ARGUMENT', message: /filter\.audience is not known/ })
  await t.rejects(app.revocation.listRevokedTokensPage({}, { limit: 0 }), { code: 'FST_JWT_REVOCATION_INVALID_ARGUMENT', message: /limit must be a positive integer/ })
  const second = await app.revocation.listRevokedTokensPage({ aud: AUDIENCE }, { cursor: first.next!, limit: 10 })
  t.equal(second.tokens.filter((e) => first.tokens.some((f) => f.jti === e.jti)).length, 0, 'the next page follows on')
})
