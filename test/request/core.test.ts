import FakeTimers from '@sinonjs/fake-timers'
import Fastify from 'fastify'
import t from 'tap'
import jwtRevocation from '../../src/index.js'
import { AUDIENCE, bearer, buildApp, DPOP_CHALLENGE, ISSUER, makeKey, sign } from '../helpers/helpers.js'

const key = await makeKey('ES256')
const jwks = { keys: [key.publicJwk] }

t.test('no token on a protected route: 401 with a Bearer challenge naming the route\'s scopes', async (t) => {
  const app = await buildApp(t, { jwks, realm: 'orders-api' })
  const res = await app.inject({ url: '/orders' })
  t.equal(res.statusCode, 401)
  t.equal(res.headers['www-authenticate'], 'Bearer realm="orders-api", scope="read:orders"' + DPOP_CHALLENGE)
  t.equal(res.json().code, 'FST_JWT_REVOCATION_TOKEN_MISSING')
})

t.test('another scheme counts as no Bearer token', async (t) => {
  const app = await buildApp(t, { jwks })
  const res = await app.inject({ url: '/orders', headers: { authorization: 'Basic dXNlcjpwYXNz' } })
  t.equal(res.statusCode, 401)
  t.equal(res.headers['www-authenticate'], 'Bearer realm="api", scope="read:orders"' + DPOP_CHALLENGE)
})

t.test('malformed Authorization headers: 400 invalid_request', async (t) => {
  const app = await buildApp(t, { jwks })
  const token = await sign(key)
  for (const authorization of ['Bearer', 'Bearer ', 'Bearer  ' + token, 'Bearer a b', 'Bearer tok"en', 'Bearer\t' + token]) {
    const res = await app.inject({ url: '/orders', headers: { authorization } })
    t.equal(res.statusCode, authorization === 'Bearer' || authorization.startsWith('Bearer\t') ? 401 : 400, JSON.stringify(authorization))
    if (res.statusCode === 400) t.match(res.headers['www-authenticate'], /^Bearer realm="api", error="invalid_request", error_description="[^"]+", scope="read:orders", DPoP algs="[^"]+"$/)
  }
})

t.test('the scheme is case-insensitive', async (t) => {
  const app = await buildApp(t, { jwks })
  const token = await sign(key)
  for (const scheme of ['bearer', 'BEARER', 'BeArEr']) {
    const res = await app.inject({ url: '/orders', headers: { authorization: `${scheme} ${token}` } })
    t.equal(res.statusCode, 200, scheme)
  }
})

t.test('two transport methods, or a token in the query string: 400', async (t) => {
  const app = await buildApp(t, { jwks })
  const token = await sign(key)
  const both = await app.inject({ url: `/orders?access_token=${token}`, headers: bearer(token) })
  t.equal(both.statusCode, 400)
  t.match(both.headers['www-authenticate'], /error="invalid_request"/)
  const queryOnly = await app.inject({ url: `/orders?access_token=${token}` })
  t.equal(queryOnly.statusCode, 400)
  t.notOk(queryOnly.body.includes(token), 'the body never echoes the token')
})

t.test('two Authorization headers: 400', async (t) => {
  const app = await buildApp(t, { jwks })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as import('node:net').AddressInfo
  const token = await sign(key)
  const { request } = await import('node:http')
  const status = await new Promise<number>((resolve, reject) => {
    const req = request({ port, host: '127.0.0.1', path: '/orders', headers: [['Authorization', `Bearer ${token}`], ['Authorization', `Bearer ${token}`]] as never }, (res) => { res.resume(); resolve(res.statusCode!) })
    req.on('error', reject)
    req.end()
  })
  t.equal(status, 400)
})

t.test('a token over maxTokenSize is refused before any decoding', async (t) => {
  const app = await buildApp(t, { jwks, maxTokenSize: 64 })
  const res = await app.inject({ url: '/orders', headers: bearer('a'.repeat(65)) })
  t.equal(res.statusCode, 400)
  t.equal(res.json().message, 'The token is too large')
})

t.test('invalid tokens: 401 invalid_token, nothing of the token echoed', async (t) => {
  const app = await buildApp(t, { jwks, typ: 'at+jwt' })
  const other = await makeKey('ES256', key.kid)
  const cases: Array<[string, string, RegExp]> = [
    ['bad signature', await sign(other, {}, { header: { typ: 'at+jwt' } }), /signature/],
    ['wrong issuer', await sign(key, { iss: 'https://evil.test/' }, { header: { typ: 'at+jwt' } }), /issuer/],
    ['wrong audience', await sign(key, { aud: 'https://other.test' }, { header: { typ: 'at+jwt' } }), /audience/],
    ['aud array without ours', await sign(key, { aud: ['https://a.test', 'https://b.test'] }, { header: { typ: 'at+jwt' } }), /audience/],
    ['wrong typ', await sign(key, {}, { header: { typ: 'JWT' } }), /type/],
    ['missing typ', await sign(key), /type/],
    ['not a JWT', 'abc.def.ghi', /malformed/],
    ['five segments', 'a.b.c.d.e', /malformed/],
  ]
  for (const [name, token, description] of cases) {
    const res = await app.inject({ url: '/orders', headers: bearer(token) })
    t.equal(res.statusCode, 401, name)
    t.match(res.headers['www-authenticate'], /^Bearer realm="api", error="invalid_token", error_description="[^"]+", scope="read:orders", DPoP algs="[^"]+"$/, name)
    t.match(res.json().message, description, name)
    t.notOk(res.body.includes(token), `${name}: body does not echo the token`)
  }
  const ok = await app.inject({ url: '/orders', headers: bearer(await sign(key, {}, { header: { typ: 'at+jwt' } })) })
  t.equal(ok.statusCode, 200)
})

t.test('an algorithm outside the allow-list is refused', async (t) => {
  const rsa = await makeKey('RS256')
  const app = await buildApp(t, { jwks: { keys: [key.publicJwk, rsa.publicJwk] }, algorithms: ['ES256'] })
  const res = await app.inject({ url: '/orders', headers: bearer(await sign(rsa)) })
  t.equal(res.statusCode, 401)
  t.match(res.json().message, /algorithm/)
})

t.test('exp is required', async (t) => {
  const app = await buildApp(t, { jwks })
  const res = await app.inject({ url: '/orders', headers: bearer(await sign(key, {}, { expiresIn: null })) })
  t.equal(res.statusCode, 401)
  t.equal(res.json().code, 'FST_JWT_REVOCATION_INVALID_TOKEN')
})

t.test('requiredClaims are enforced', async (t) => {
  const app = await buildApp(t, { jwks, requiredClaims: ['jti'] })
  const res = await app.inject({ url: '/orders', headers: bearer(await sign(key, { jti: undefined })) })
  t.equal(res.statusCode, 401)
  t.match(res.json().message, /required claim/)
})

t.test('expiry with fake time, also on a verified-token cache hit', async (t) => {
  const clock = FakeTimers.install({ toFake: ['Date'], now: Date.now() })
  t.teardown(() => clock.uninstall())
  const app = await buildApp(t, { jwks })
  const token = await sign(key, {}, { expiresIn: 60 })
  t.equal((await app.inject({ url: '/orders', headers: bearer(token) })).statusCode, 200)
  clock.tick(59_000)
  t.equal((await app.inject({ url: '/orders', headers: bearer(token) })).statusCode, 200, 'still valid one second before exp')
  clock.tick(1_000)
  const res = await app.inject({ url: '/orders', headers: bearer(token) })
  t.equal(res.statusCode, 401)
  t.equal(res.json().code, 'FST_JWT_REVOCATION_TOKEN_EXPIRED')
  t.match(res.headers['www-authenticate'], /error="invalid_token"/)
})

t.test('clockTolerance gives leeway on exp and nbf', async (t) => {
  const app = await buildApp(t, { jwks, clockTolerance: '30s' })
  const now = Math.floor(Date.now() / 1000)
  t.equal((await app.inject({ url: '/orders', headers: bearer(await sign(key, { exp: now - 10 })) })).statusCode, 200, 'exp 10 s ago within 30 s leeway')
  t.equal((await app.inject({ url: '/orders', headers: bearer(await sign(key, { exp: now - 40 })) })).statusCode, 401, 'exp 40 s ago beyond leeway')
  t.equal((await app.inject({ url: '/orders', headers: bearer(await sign(key, { nbf: now + 10 })) })).statusCode, 200, 'nbf within leeway')
  const early = await app.inject({ url: '/orders', headers: bearer(await sign(key, { nbf: now + 60 })) })
  t.equal(early.statusCode, 401)
  t.match(early.json().message, /not valid yet/)
})

t.test("the seed's month-long partner token is refused by maxTokenLifetime: '1d'", async (t) => {
  const app = await buildApp(t, { jwks, maxTokenLifetime: '1d' })
  const month = await sign(key, {}, { expiresIn: 30 * 86400 })
  const res = await app.inject({ url: '/orders', headers: bearer(month) })
  t.equal(res.statusCode, 401)
  t.equal(res.json().code, 'FST_JWT_REVOCATION_TOKEN_LIFETIME')
  t.match(res.headers['www-authenticate'], /error="invalid_token", error_description="The token lifetime exceeds/)
  t.equal((await app.inject({ url: '/orders', headers: bearer(await sign(key, {}, { expiresIn: 86400 })) })).statusCode, 200, 'exactly one day is allowed')
  const noIat = await sign(key, { iat: undefined }, { expiresIn: 2 * 86400 })
  t.equal((await app.inject({ url: '/orders', headers: bearer(noIat) })).statusCode, 401, 'without iat, the remaining life is judged')
})

t.test('maxTokenAge caps now - iat, on cache hits too', async (t) => {
  const clock = FakeTimers.install({ toFake: ['Date'], now: Date.now() })
  t.teardown(() => clock.uninstall())
  const app = await buildApp(t, { jwks, maxTokenAge: '10m' })
  const token = await sign(key)
  t.equal((await app.inject({ url: '/orders', headers: bearer(token) })).statusCode, 200)
  clock.tick(11 * 60_000)
  const res = await app.inject({ url: '/orders', headers: bearer(token) })
  t.equal(res.statusCode, 401)
  t.match(res.json().message, /older than/)
})

t.test('scopes: 403 insufficient_scope naming the scope; permissions count too', async (t) => {
  const app = await buildApp(t, { jwks })
  const res = await app.inject({ method: 'POST', url: '/orders', headers: bearer(await sign(key)) })
  t.equal(res.statusCode, 403)
  t.equal(res.headers['www-authenticate'], 'Bearer realm="api", error="insufficient_scope", error_description="The token lacks a scope this route requires", scope="write:orders"' + DPOP_CHALLENGE)
  const withPermissions = await sign(key, { scope: undefined, permissions: ['write:orders'] })
  t.equal((await app.inject({ method: 'POST', url: '/orders', headers: bearer(withPermissions) })).statusCode, 200)
})

t.test('request.auth is complete on protected routes and null on open ones', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(jwtRevocation, { jwks, audience: AUDIENCE, issuer: ISSUER })
  app.get('/whoami', async (req) => req.auth)
  app.get('/open', { config: { auth: false } }, async (req) => ({ auth: req.auth }))
  const token = await sign(key, { sub: 'user-1', client_id: 'spa', azp: 'ignored', scope: 'a b' })
  const auth = (await app.inject({ url: '/whoami', headers: bearer(token) })).json()
  t.equal(auth.token, token)
  t.equal(auth.header.alg, 'ES256')
  t.equal(auth.payload.sub, 'user-1')
  t.equal(auth.clientId, 'spa', 'client_id wins over azp')
  t.equal(auth.subject, 'user-1')
  t.same(auth.scopes, ['a', 'b'])
  t.same((await app.inject({ url: '/open' })).json(), { auth: null })
  t.equal((await app.inject({ method: 'HEAD', url: '/whoami' })).statusCode, 401, 'the automatic HEAD route is protected too')
})

t.test('request.auth.header and scopes are shared read-only: a handler cannot change what the next request sees', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(jwtRevocation, { jwks, audience: AUDIENCE, issuer: ISSUER })
  app.get('/mutate', async (req) => {
    let refused = 0
    try { req.auth!.scopes.push('admin') } catch { refused++ }
    try { (req.auth!.header as Record<string, unknown>).alg = 'none' } catch { refused++ }
    return { refused, scopes: req.auth!.scopes, alg: req.auth!.header.alg }
  })
  const token = await sign(key, { scope: 'a b' })
  for (const round of ['miss', 'hit']) {
    t.same((await app.inject({ url: '/mutate', headers: bearer(token) })).json(), { refused: 2, scopes: ['a', 'b'], alg: 'ES256' }, round)
  }
})

t.test('global: false protects only routes that opt in', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(jwtRevocation, { jwks, audience: AUDIENCE, global: false })
  app.get('/public', async (req) => ({ auth: req.auth }))
  app.get('/private', { config: { auth: true } }, async (req) => ({ sub: req.auth!.subject }))
  app.get('/scoped', { config: { auth: { scopes: ['admin'] } } }, async () => 'x')
  t.equal((await app.inject({ url: '/public' })).statusCode, 200)
  t.equal((await app.inject({ url: '/private' })).statusCode, 401)
  t.equal((await app.inject({ url: '/private', headers: bearer(await sign(key)) })).statusCode, 200)
  t.equal((await app.inject({ url: '/scoped', headers: bearer(await sign(key)) })).statusCode, 403)
})

t.test('extractToken reads another transport, with the same shape rules', async (t) => {
  const app = await buildApp(t, { jwks, extractToken: (req) => req.headers['x-api-token'] as string | undefined })
  t.equal((await app.inject({ url: '/orders', headers: { 'x-api-token': await sign(key) } })).statusCode, 200)
  t.equal((await app.inject({ url: '/orders' })).statusCode, 401)
  t.equal((await app.inject({ url: '/orders', headers: { 'x-api-token': 'not a token' } })).statusCode, 400)
})

t.test('a throwing extractToken is logged, answered 401 without details', async (t) => {
  const app = await buildApp(t, { jwks, extractToken: () => { throw new Error('secret internal detail') } })
  const res = await app.inject({ url: '/orders' })
  t.equal(res.statusCode, 401)
  t.notOk(res.body.includes('secret internal detail'))
})

t.test('clientId falls back to azp, then to sub without @clients', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(jwtRevocation, { jwks, audience: AUDIENCE })
  app.get('/c', async (req) => ({ clientId: req.auth!.clientId }))
  const ask = async (claims: Record<string, unknown>) => (await app.inject({ url: '/c', headers: bearer(await sign(key, claims)) })).json().clientId
  t.equal(await ask({ azp: 'from-azp' }), 'from-azp')
  t.equal(await ask({ azp: undefined, sub: 'm2m@clients' }), 'm2m')
  t.equal(await ask({ azp: undefined, sub: 'auth0|42' }), 'auth0|42')
})

t.test('registering twice in one context fails clearly', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  app.register(jwtRevocation, { jwks, audience: AUDIENCE })
  app.register(jwtRevocation, { jwks, audience: AUDIENCE })
  await t.rejects(async () => { await app.ready() }, /already registered/)
})
