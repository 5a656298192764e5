// Protection must not depend on the order in which an app declares its routes and
// registers the plugin: every order a Fastify user writes is tried here, and each
// must refuse a request without a valid token.
import Fastify, { type FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import jwtRevocation, { adminRoutes, MemoryStore } from '../../src/index.js'
import { AUDIENCE, bearer, ISSUER, makeKey, sign } from '../helpers/helpers.js'

const key = await makeKey('ES256')
const jwks = { keys: [key.publicJwk] }
const MGMT = 'https://issuer.test/api/v2/'
const options = { jwks, issuer: ISSUER, audience: [AUDIENCE, MGMT] }
const secret = async () => 'secret data'

type Tap = Test

function fresh (t: Tap): FastifyInstance {
  const app = Fastify()
  t.teardown(() => app.close())
  return app
}

/** Each URL: 401 without a token, 200 with a valid one (HEAD too for GET routes). */
async function assertProtected (t: Tap, app: FastifyInstance, urls: string[]): Promise<void> {
  await app.ready()
  const token = await sign(key)
  for (const url of urls) {
    t.equal((await app.inject({ url })).statusCode, 401, `${url} refuses a request without a token`)
    t.equal((await app.inject({ method: 'HEAD', url })).statusCode, 401, `HEAD ${url} refuses a request without a token`)
    t.equal((await app.inject({ url, headers: bearer(await sign(key, { aud: 'https://other.test' })) })).statusCode, 401, `${url} refuses a token for another audience`)
    t.equal((await app.inject({ url, headers: bearer(token) })).statusCode, 200, `${url} admits a valid token`)
  }
}

t.test('a route declared before the plugin is protected', async (t) => {
  const app = fresh(t)
  app.get('/early', secret)
  await app.register(jwtRevocation, options)
  app.get('/late', secret)
  await assertProtected(t, app, ['/early', '/late'])
})

t.test('register without await, then routes', async (t) => {
  const app = fresh(t)
  app.register(jwtRevocation, options)
  app.get('/x', secret)
  await assertProtected(t, app, ['/x'])
})

t.test('routes declared inside after()', async (t) => {
  const app = fresh(t)
  app.register(jwtRevocation, options).after(() => {
    app.get('/in-after', secret)
  })
  await assertProtected(t, app, ['/in-after'])
})

t.test('routes of encapsulated child plugins registered before and after the plugin', async (t) => {
  const app = fresh(t)
  await app.register(async (child) => { child.get('/child-awaited-before', secret) })
  app.register(async (child) => {
    child.get('/child-before', secret)
    await child.register(async (grandchild) => { grandchild.get('/grandchild-before', secret) })
  }, { prefix: '/p' })
  await app.register(jwtRevocation, options)
  app.register(async (child) => { child.get('/child-after', secret) })
  await assertProtected(t, app, ['/child-awaited-before', '/p/child-before', '/p/grandchild-before', '/child-after'])
})

t.test('the plugin registered in a child context protects that context and its children only', async (t) => {
  const app = fresh(t)
  app.get('/outside', async () => 'public')
  app.register(async (api) => {
    api.get('/inside-before', secret)
    await api.register(jwtRevocation, options)
    api.register(async (child) => { child.get('/inside-child', secret) })
  }, { prefix: '/api' })
  await assertProtected(t, app, ['/api/inside-before', '/api/inside-child'])
  t.equal((await app.inject({ url: '/outside' })).statusCode, 200, 'a sibling context is not the plugin\'s')
})

t.test('config.auth: false opens a route whatever the order', async (t) => {
  const app = fresh(t)
  app.get('/open-before', { config: { auth: false } }, async (req) => ({ auth: req.auth }))
  app.register(jwtRevocation, options)
  app.get('/open-after', { config: { auth: false } }, async (req) => ({ auth: req.auth }))
  await app.ready()
  for (const url of ['/open-before', '/open-after']) {
    const res = await app.inject({ url })
    t.equal(res.statusCode, 200, url)
    t.same(res.json(), { auth: null }, `${url}: request.auth is null on an open route`)
  }
})

t.test('scopes and audience of a route declared before the plugin still apply', async (t) => {
  const app = fresh(t)
  app.get('/scoped', { config: { auth: { scopes: ['admin'] } } }, secret)
  app.get('/mgmt-only', { config: { auth: { audience: MGMT } } }, secret)
  await app.register(jwtRevocation, options)
  await app.ready()
  t.equal((await app.inject({ url: '/scoped', headers: bearer(await sign(key)) })).statusCode, 403, 'a missing scope is 403')
  t.equal((await app.inject({ url: '/scoped', headers: bearer(await sign(key, { scope: 'admin' })) })).statusCode, 200)
  const refused = await app.inject({ url: '/mgmt-only', headers: bearer(await sign(key)) })
  t.equal(refused.statusCode, 401, 'a token for the API is refused on a route for the management audience')
  t.equal((await app.inject({ url: '/mgmt-only', headers: bearer(await sign(key, { aud: MGMT })) })).statusCode, 200)
})

t.test('global: false protects a route that asks for it, declared before the plugin or without await', async (t) => {
  const app = fresh(t)
  app.get('/private-before', { config: { auth: true } }, secret)
  app.register(jwtRevocation, { ...options, global: false })
  app.get('/private-after', { config: { auth: { scopes: ['read:orders'] } } }, secret)
  app.get('/public', async () => 'public')
  await assertProtected(t, app, ['/private-before', '/private-after'])
  t.equal((await app.inject({ url: '/public' })).statusCode, 200, 'a route that does not ask stays open')
})

t.test('an invalid config.auth on a route declared before the plugin refuses its requests, logged', async (t) => {
  const lines: string[] = []
  const app = Fastify({ logger: { level: 'error', stream: { write: (line: string) => { lines.push(line) } } } })
  t.teardown(() => app.close())
  app.get('/broken', { config: { auth: { scopes: ['has space'] } } } as object, secret)
  await app.register(jwtRevocation, options)
  await app.ready()
  for (const headers of [{}, bearer(await sign(key))]) {
    const res = await app.inject({ url: '/broken', headers })
    t.equal(res.statusCode, 500, 'never opened')
    t.equal(res.json().code, 'FST_JWT_REVOCATION_ROUTE_MISCONFIGURED')
    t.notOk(res.body.includes('has space'), 'the configuration is not echoed')
  }
  t.equal(lines.filter((l) => l.includes('config.auth.scopes of route /broken')).length, 1, 'logged once, naming the route')
})

t.test('an invalid config.auth on a route added after the plugin fails at registration, naming the route', async (t) => {
  const app = fresh(t)
  await app.register(jwtRevocation, options)
  t.throws(() => app.get('/late-broken', { config: { auth: 'yes' } } as object, secret), /config.auth of route \/late-broken/)
})

t.test('an unknown URL: 401 without a token under global: true, 404 with one; 404 under global: false', async (t) => {
  const app = fresh(t)
  await app.register(jwtRevocation, options)
  await app.ready()
  const anonymous = await app.inject({ url: '/no-such-route' })
  t.equal(anonymous.statusCode, 401, 'the route map cannot be probed without a token')
  t.equal((await app.inject({ url: '/no-such-route', headers: bearer(await sign(key)) })).statusCode, 404)

  const open = fresh(t)
  await open.register(jwtRevocation, { ...options, global: false })
  await open.ready()
  t.equal((await open.inject({ url: '/no-such-route' })).statusCode, 404)
})

t.test('adminRoutes: protected when registered after the plugin, a boot error before it', async (t) => {
  const admin = async () => bearer(await sign(key, { aud: MGMT, sub: 'admin@clients', azp: 'admin', scope: 'blacklist:tokens' }))

  const app = fresh(t)
  app.register(jwtRevocation, { ...options, store: new MemoryStore() })
  app.register(adminRoutes, { prefix: '/api/v2', audience: MGMT })
  await app.ready()
  t.equal((await app.inject({ url: '/api/v2/blacklists/tokens' })).statusCode, 401)
  t.equal((await app.inject({ url: '/api/v2/blacklists/tokens', headers: bearer(await sign(key)) })).statusCode, 401, 'a token for the API cannot call the admin routes')
  t.equal((await app.inject({ url: '/api/v2/blacklists/tokens', headers: await admin() })).statusCode, 200)
  t.equal((await app.inject({ url: '/api/v2/client-grants', headers: await admin() })).statusCode, 403, 'each route keeps its own scope')

  const early = fresh(t)
  early.register(adminRoutes, { prefix: '/api/v2', audience: MGMT })
  early.register(jwtRevocation, { ...options, store: new MemoryStore() })
  await t.rejects(async () => { await early.ready() }, /fastify-jwt-revocation/, 'never served unprotected')
})
