import FakeTimers from '@sinonjs/fake-timers'
import t from 'tap'
import { bearer, buildApp, json, jwksServer, makeKey, sign, type TestKey } from '../helpers/helpers.js'

t.test('jwksUri: keys are fetched once and reused', async (t) => {
  const key = await makeKey('ES256')
  const srv = await jwksServer(t, (_path, res) => json(res, { keys: [key.publicJwk] }))
  const app = await buildApp(t, { jwksUri: `${srv.url}/jwks.json` })
  for (let i = 0; i < 3; i++) t.equal((await app.inject({ url: '/orders', headers: bearer(await sign(key)) })).statusCode, 200)
  t.equal(srv.hits.get('/jwks.json'), 1)
})

t.test('an unknown-kid storm causes one fetch, and the cooldown holds', async (t) => {
  const key = await makeKey('ES256')
  const srv = await jwksServer(t, (_path, res) => json(res, { keys: [key.publicJwk] }))
  const app = await buildApp(t, { jwksUri: `${srv.url}/jwks.json`, jwksOptions: { cooldownDuration: 30_000 } })
  t.equal((await app.inject({ url: '/orders', headers: bearer(await sign(key)) })).statusCode, 200)
  const strangers = await Promise.all(Array.from({ length: 50 }, () => makeKey('ES256')))
  const results = await Promise.all(strangers.map(async (k) => (await app.inject({ url: '/orders', headers: bearer(await sign(k)) })).statusCode))
  t.ok(results.every((s) => s === 401), 'every unknown kid is refused')
  t.equal(srv.hits.get('/jwks.json'), 1, 'within the cooldown no unknown kid triggers a fetch')
})

t.test('rotation: a new kid is picked up once the cooldown has passed', async (t) => {
  const clock = FakeTimers.install({ toFake: ['Date'], now: Date.now() })
  t.teardown(() => clock.uninstall())
  const oldKey = await makeKey('ES256')
  let keys: TestKey[] = [oldKey]
  const srv = await jwksServer(t, (_path, res) => json(res, { keys: keys.map((k) => k.publicJwk) }))
  const app = await buildApp(t, { jwksUri: `${srv.url}/jwks.json`, jwksOptions: { cooldownDuration: 10_000 } })
  t.equal((await app.inject({ url: '/orders', headers: bearer(await sign(oldKey)) })).statusCode, 200)
  const newKey = await makeKey('ES256')
  keys = [oldKey, newKey]
  t.equal((await app.inject({ url: '/orders', headers: bearer(await sign(newKey)) })).statusCode, 401, 'within the cooldown the new kid is unknown')
  t.equal(srv.hits.get('/jwks.json'), 1)
  clock.tick(10_001)
  t.equal((await app.inject({ url: '/orders', headers: bearer(await sign(newKey)) })).statusCode, 200, 'after the cooldown it is fetched')
  t.equal(srv.hits.get('/jwks.json'), 2)
})

t.test('JWKS unreachable: 503 with Retry-After, no amplification', async (t) => {
  const srv = await jwksServer(t, (_path, res) => json(res, { error: 'down' }, 500))
  const key = await makeKey('ES256')
  const app = await buildApp(t, { jwksUri: `${srv.url}/jwks.json`, retryAfter: 7 })
  const res = await app.inject({ url: '/orders', headers: bearer(await sign(key)) })
  t.equal(res.statusCode, 503)
  t.equal(res.headers['retry-after'], '7')
  t.equal(res.headers['www-authenticate'], undefined)
  t.equal(res.json().code, 'FST_JWT_REVOCATION_UNAVAILABLE')
  t.notMatch(res.body, /500|down|Expected/, 'no internal detail in the body')
  for (let i = 0; i < 20; i++) t.equal((await app.inject({ url: '/orders', headers: bearer(await sign(key)) })).statusCode, 503)
  t.equal(srv.hits.get('/jwks.json'), 1, 'the down endpoint is not asked again within retryAfter')
})

t.test('JWKS garbage or timeout: 503', async (t) => {
  const garbage = await jwksServer(t, (_path, res) => { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{not json') })
  const key = await makeKey('ES256')
  const app = await buildApp(t, { jwksUri: `${garbage.url}/jwks.json` })
  t.equal((await app.inject({ url: '/orders', headers: bearer(await sign(key)) })).statusCode, 503)
  const slow = await jwksServer(t, (_path, res) => { setTimeout(() => json(res, { keys: [key.publicJwk] }), 2000).unref() })
  const app2 = await buildApp(t, { jwksUri: `${slow.url}/jwks.json`, jwksOptions: { timeoutDuration: 100 } })
  t.equal((await app2.inject({ url: '/orders', headers: bearer(await sign(key)) })).statusCode, 503)
})

t.test('cached keys keep working while the JWKS endpoint is down', async (t) => {
  const clock = FakeTimers.install({ toFake: ['Date'], now: Date.now() })
  t.teardown(() => clock.uninstall())
  const key = await makeKey('ES256')
  let up = true
  const srv = await jwksServer(t, (_path, res) => up ? json(res, { keys: [key.publicJwk] }) : json(res, {}, 500))
  const app = await buildApp(t, { jwksUri: `${srv.url}/jwks.json`, jwksOptions: { cacheMaxAge: 60_000 }, cache: false })
  t.equal((await app.inject({ url: '/orders', headers: bearer(await sign(key)) })).statusCode, 200)
  up = false
  clock.tick(120_000)
  t.equal((await app.inject({ url: '/orders', headers: bearer(await sign(key)) })).statusCode, 200, 'stale key set still verifies')
  t.equal(srv.hits.get('/jwks.json'), 2, 'one refresh was attempted')
  t.equal((await app.inject({ url: '/orders', headers: bearer(await sign(key)) })).statusCode, 200)
  t.equal(srv.hits.get('/jwks.json'), 2, 'and not again within retryAfter')
})

t.test('issuerBaseURL: OIDC discovery supplies issuer and JWKS', async (t) => {
  const key = await makeKey('RS256')
  let base = ''
  const srv = await jwksServer(t, (path, res) => {
    if (path === '/.well-known/openid-configuration') return json(res, { issuer: `${base}/`, jwks_uri: `${base}/keys` })
    if (path === '/keys') return json(res, { keys: [key.publicJwk] })
    json(res, {}, 404)
  })
  base = srv.url
  const app = await buildApp(t, { issuerBaseURL: `${base}/`, issuer: undefined })
  t.equal((await app.inject({ url: '/orders', headers: bearer(await sign(key, { iss: `${base}/` })) })).statusCode, 200)
  const wrongIss = await app.inject({ url: '/orders', headers: bearer(await sign(key, { iss: 'https://issuer.test/' })) })
  t.equal(wrongIss.statusCode, 401, 'the discovered issuer is enforced')
  t.equal(srv.hits.get('/.well-known/openid-configuration'), 1, 'discovery happens once')
})

t.test('issuerBaseURL: an unreachable or lying discovery document is 503', async (t) => {
  const key = await makeKey('ES256')
  const srv = await jwksServer(t, (path, res) => {
    if (path === '/.well-known/openid-configuration') return json(res, { issuer: 'https://someone-else.test/', jwks_uri: 'https://x.test/keys' })
    json(res, {}, 404)
  })
  const app = await buildApp(t, { issuerBaseURL: srv.url, issuer: undefined })
  const res = await app.inject({ url: '/orders', headers: bearer(await sign(key)) })
  t.equal(res.statusCode, 503)
  t.ok(res.headers['retry-after'])
})
