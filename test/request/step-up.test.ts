import Fastify, { type FastifyInstance } from 'fastify'
import t from 'tap'
import jwtRevocation, { type JwtRevocationOptions, type RouteAuthConfig } from '../../src/index.js'
import { AUDIENCE, bearer, ISSUER, makeKey, readyError, sign } from '../helpers/helpers.js'

// RFC 9470 step-up: a route asks how (`acr`) and how recently (`auth_time`) the user
// authenticated; a token that falls short gets 401 insufficient_user_authentication
// with what would do. And every challenge of a scoped route names its scopes.

const key = await makeKey('ES256')
const jwks = { keys: [key.publicJwk] }
const now = () => Math.floor(Date.now() / 1000)
const STEP_UP = 'FST_JWT_REVOCATION_INSUFFICIENT_USER_AUTHENTICATION'

/** An app whose routes echo `request.auth.acr` and `authTime`; `dpop: false` keeps the challenges to one scheme. */
async function stepUpApp (t: { teardown: (fn: () => unknown) => void }, options: Partial<JwtRevocationOptions>, routes: Record<string, RouteAuthConfig>): Promise<FastifyInstance> {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(jwtRevocation, { jwks, audience: AUDIENCE, issuer: ISSUER, dpop: false, ...options } as JwtRevocationOptions)
  for (const [url, auth] of Object.entries(routes)) {
    app.get(url, { config: { auth } }, async (request) => ({ acr: request.auth?.acr, authTime: request.auth?.authTime }))
  }
  app.get('/global', async (request) => ({ acr: request.auth?.acr, authTime: request.auth?.authTime }))
  await app.ready()
  return app
}

const ACR_SHORT = 'A different authentication level is required'
const AGE_SHORT = 'More recent authentication is required'

t.test('every combination of acr and auth_time against routes asking acr, maxAge, both or neither', async (t) => {
  const app = await stepUpApp(t, {}, {
    '/none': true,
    '/acr': { acr: ['mfa', 'hwk'] },
    '/age': { maxAge: '5m' },
    '/both': { acr: ['mfa', 'hwk'], maxAge: 300 },
  })
  const acrs = { ok: 'hwk', missing: undefined, wrong: 'pwd' } as const
  const times = { fresh: -10, old: -3600, missing: undefined, future: 3600 } as const
  const challenges: Record<string, string> = {
    '/acr': ', acr_values="mfa hwk"',
    '/age': ', max_age=300',
    '/both': ', acr_values="mfa hwk", max_age=300',
  }
  for (const [acrCase, acr] of Object.entries(acrs)) {
    for (const [timeCase, offset] of Object.entries(times)) {
      const authTime = offset === undefined ? undefined : now() + offset
      const token = await sign(key, { acr, auth_time: authTime })
      for (const route of ['/none', '/acr', '/age', '/both']) {
        const name = `${route}: acr ${acrCase}, auth_time ${timeCase}`
        const asksAcr = route === '/acr' || route === '/both'
        const asksAge = route === '/age' || route === '/both'
        const res = await app.inject({ url: route, headers: bearer(token) })
        if (asksAge && timeCase === 'future') {
          t.equal(res.statusCode, 401, name)
          t.equal(res.json().code, 'FST_JWT_REVOCATION_INVALID_TOKEN', name)
          t.equal(res.headers['www-authenticate'], 'Bearer realm="api", error="invalid_token", error_description="The token has an invalid authentication time"', name)
        } else if ((asksAcr && acrCase !== 'ok') || (asksAge && (timeCase === 'old' || timeCase === 'missing'))) {
          const description = asksAcr && acrCase !== 'ok' ? ACR_SHORT : AGE_SHORT
          t.equal(res.statusCode, 401, name)
          t.equal(res.json().code, STEP_UP, name)
          t.equal(res.headers['www-authenticate'], `Bearer realm="api", error="insufficient_user_authentication", error_description="${description}"${challenges[route]}`, name)
        } else {
          t.equal(res.statusCode, 200, name)
          t.same(res.json(), { acr: acr ?? null, authTime: authTime ?? null }, `${name}: request.auth.acr and authTime`)
        }
      }
    }
  }
})

t.test('the exact RFC 9470 §3 challenges', async (t) => {
  const app = await stepUpApp(t, {}, { '/acr': { acr: ['myACR'] }, '/age': { maxAge: 5 }, '/both': { acr: ['gold', 'silver'], maxAge: '1h' } })
  const noAcr = await sign(key, { auth_time: now() - 60 })
  t.equal((await app.inject({ url: '/acr', headers: bearer(noAcr) })).headers['www-authenticate'],
    'Bearer realm="api", error="insufficient_user_authentication", error_description="A different authentication level is required", acr_values="myACR"')
  t.equal((await app.inject({ url: '/age', headers: bearer(noAcr) })).headers['www-authenticate'],
    'Bearer realm="api", error="insufficient_user_authentication", error_description="More recent authentication is required", max_age=5')
  const gold = await sign(key, { acr: 'gold', auth_time: now() - 7200 })
  t.equal((await app.inject({ url: '/both', headers: bearer(gold) })).headers['www-authenticate'],
    'Bearer realm="api", error="insufficient_user_authentication", error_description="More recent authentication is required", acr_values="gold silver", max_age=3600',
    'every requirement of the route is named, not only the one missed: one new token satisfies them all')
})

t.test('clockTolerance: leeway on the age and on an auth_time a little ahead', async (t) => {
  const app = await stepUpApp(t, { clockTolerance: 30 }, { '/age': { maxAge: 300 } })
  const status = async (authTime: number) => (await app.inject({ url: '/age', headers: bearer(await sign(key, { auth_time: authTime })) })).statusCode
  t.equal(await status(now() - 320), 200, '20 s over maxAge, within the leeway')
  t.equal(await status(now() - 400), 401, 'beyond maxAge and the leeway')
  t.equal(await status(now() + 20), 200, '20 s ahead, within the leeway')
  const ahead = await app.inject({ url: '/age', headers: bearer(await sign(key, { auth_time: now() + 90 })) })
  t.equal(ahead.json().code, 'FST_JWT_REVOCATION_INVALID_TOKEN', 'beyond the leeway: no valid time')
})

t.test('claims that are not what RFC 9470 says fall short; request.auth reports them as null', async (t) => {
  const app = await stepUpApp(t, {}, { '/acr': { acr: ['5'] }, '/age': { maxAge: 300 }, '/none': true })
  const odd = await sign(key, { acr: 5, auth_time: String(now()) })
  t.equal((await app.inject({ url: '/acr', headers: bearer(odd) })).json().code, STEP_UP, 'acr 5 is not the string "5"')
  t.equal((await app.inject({ url: '/age', headers: bearer(odd) })).json().code, STEP_UP, 'a string auth_time is no auth_time')
  t.same((await app.inject({ url: '/none', headers: bearer(odd) })).json(), { acr: null, authTime: null })
})

t.test('plugin defaults apply to every protected route; a route overrides or lifts them with null', async (t) => {
  const app = await stepUpApp(t, { acr: ['mfa'], maxAge: '10m' }, {
    '/default': true,
    '/scoped': { scopes: ['read:orders'] },
    '/hwk': { acr: ['hwk'] },
    '/any-acr': { acr: null },
    '/any-age': { maxAge: null },
    '/lifted': { acr: null, maxAge: null },
    '/open': false,
  })
  const fresh = now() - 10
  const old = now() - 3600
  const cases: Array<[string, Record<string, unknown>, number]> = [
    ['/global', { acr: 'mfa', auth_time: fresh }, 200],
    ['/global', { acr: 'pwd', auth_time: fresh }, 401],
    ['/global', { acr: 'mfa', auth_time: old }, 401],
    ['/default', { acr: 'mfa', auth_time: fresh }, 200],
    ['/default', { acr: 'mfa' }, 401],
    ['/scoped', { acr: 'pwd', auth_time: fresh }, 401],
    ['/hwk', { acr: 'hwk', auth_time: fresh }, 200],
    ['/hwk', { acr: 'mfa', auth_time: fresh }, 401],
    ['/hwk', { acr: 'hwk', auth_time: old }, 401],
    ['/any-acr', { acr: 'pwd', auth_time: fresh }, 200],
    ['/any-acr', { acr: 'pwd', auth_time: old }, 401],
    ['/any-age', { acr: 'mfa', auth_time: old }, 200],
    ['/any-age', { acr: 'pwd' }, 401],
    ['/lifted', {}, 200],
    ['/open', {}, 200],
  ]
  for (const [url, claims, status] of cases) {
    const res = await app.inject({ url, headers: bearer(await sign(key, claims)) })
    t.equal(res.statusCode, status, `${url} ${JSON.stringify(claims)}`)
    if (status === 401) t.equal(res.json().code, STEP_UP, url)
  }
  const challenge = (await app.inject({ url: '/hwk', headers: bearer(await sign(key, {})) })).headers['www-authenticate']
  t.equal(challenge, 'Bearer realm="api", error="insufficient_user_authentication", error_description="A different authentication level is required", acr_values="hwk", max_age=600',
    'the route\'s acr with the plugin\'s maxAge')
})

t.test('a revoked token is refused as revoked, before its authentication level is looked at', async (t) => {
  const app = await stepUpApp(t, {}, { '/acr': { acr: ['mfa'] } })
  await app.revocation.revokeToken({ jti: 'revoked-jti', aud: AUDIENCE })
  const res = await app.inject({ url: '/acr', headers: bearer(await sign(key, { jti: 'revoked-jti' })) })
  t.equal(res.json().code, 'FST_JWT_REVOCATION_TOKEN_REVOKED')
})

t.test('a token short of both the scope and the authentication gets the step-up 401 naming the scope', async (t) => {
  const app = await stepUpApp(t, {}, { '/admin': { scopes: ['admin'], acr: ['mfa'] } })
  const neither = await app.inject({ url: '/admin', headers: bearer(await sign(key, { scope: 'read:orders' })) })
  t.equal(neither.statusCode, 401)
  t.equal(neither.headers['www-authenticate'],
    'Bearer realm="api", error="insufficient_user_authentication", error_description="A different authentication level is required", acr_values="mfa", scope="admin"')
  const noScope = await app.inject({ url: '/admin', headers: bearer(await sign(key, { scope: 'read:orders', acr: 'mfa' })) })
  t.equal(noScope.statusCode, 403)
  t.equal(noScope.headers['www-authenticate'], 'Bearer realm="api", error="insufficient_scope", error_description="The token lacks a scope this route requires", scope="admin"')
})

t.test('a cached token is judged again against each route', async (t) => {
  const app = await stepUpApp(t, { cache: { max: 10, ttl: 60_000 } }, { '/none': true, '/acr': { acr: ['mfa'] } })
  const token = await sign(key, { acr: 'pwd' })
  t.equal((await app.inject({ url: '/none', headers: bearer(token) })).statusCode, 200)
  t.equal((await app.inject({ url: '/acr', headers: bearer(token) })).statusCode, 401, 'the hit is not admitted by the earlier route')
  t.equal((await app.inject({ url: '/none', headers: bearer(token) })).statusCode, 200)
})

t.test('a mistake in a route\'s acr or maxAge fails boot, naming the route', async (t) => {
  const mistakes: Array<[unknown, RegExp]> = [
    [{ acr: 'mfa' }, /"config\.auth\.acr of route \/admin" must be a non-empty array of acr values/],
    [{ acr: [] }, /"config\.auth\.acr of route \/admin" must be a non-empty array/],
    [{ acr: ['m f a'] }, /"config\.auth\.acr of route \/admin"/],
    [{ acr: ['a"b'] }, /"config\.auth\.acr of route \/admin"/],
    [{ maxAge: '5 parsecs' }, /"config\.auth\.maxAge of route \/admin" must be a duration/],
    [{ maxAge: -1 }, /"config\.auth\.maxAge of route \/admin" must be a duration/],
    [{ maxAge: 3_600_000 }, /"config\.auth\.maxAge of route \/admin" is 3600000 seconds/],
    [{ maxage: 300 }, /"config\.auth\.maxage of route \/admin" is not known; did you mean config\.auth\.maxAge\?/],
    [{ acrs: ['mfa'] }, /"config\.auth\.acrs of route \/admin" is not known; did you mean config\.auth\.acr\?/],
  ]
  for (const [auth, message] of mistakes) {
    const app = Fastify()
    t.teardown(() => app.close())
    await app.register(jwtRevocation, { jwks, audience: AUDIENCE })
    t.throws(() => app.get('/admin', { config: { auth } } as object, async () => 'secret'), { code: 'FST_JWT_REVOCATION_INVALID_OPTION', message }, JSON.stringify(auth))
  }
})

t.test('a mistake in the plugin\'s acr or maxAge fails ready()', async (t) => {
  for (const [options, message] of [
    [{ acr: 'mfa' }, /"acr" must be a non-empty array/],
    [{ acr: [] }, /"acr" must be a non-empty array/],
    [{ maxAge: 'soon' }, /"maxAge" must be a duration/],
  ] as Array<[Record<string, unknown>, RegExp]>) {
    const err = await readyError({ jwks, audience: AUDIENCE, ...options })
    t.match(err.message, message, JSON.stringify(options))
  }
})

t.test('scope="…" in every challenge of a scoped route (MCP), and none on an unscoped one', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(jwtRevocation, { jwks, audience: AUDIENCE, issuer: ISSUER, dpop: false })
  app.post('/mcp', { config: { auth: { scopes: ['mcp:tools', 'mcp:resources'] } } }, async () => ({ ok: true }))
  app.get('/plain', async () => ({ ok: true }))
  await app.ready()
  const SCOPE = ', scope="mcp:tools mcp:resources"'
  const challenge = async (headers: Record<string, string> = {}, url = '/mcp') => {
    const res = await app.inject({ method: url === '/mcp' ? 'POST' : 'GET', url, headers })
    t.equal(res.statusCode, 401)
    return res.headers['www-authenticate']
  }
  t.equal(await challenge(), `Bearer realm="api"${SCOPE}`, 'no token')
  t.equal(await challenge(bearer('not-a-token')), `Bearer realm="api", error="invalid_token", error_description="The token is malformed"${SCOPE}`, 'invalid token')
  t.equal(await challenge(bearer(await sign(key, { exp: now() - 60 }))), `Bearer realm="api", error="invalid_token", error_description="The token has expired"${SCOPE}`, 'expired token')
  await app.revocation.revokeToken({ jti: 'revoked-mcp', aud: AUDIENCE })
  t.equal(await challenge(bearer(await sign(key, { jti: 'revoked-mcp', scope: 'mcp:tools mcp:resources' }))),
    `Bearer realm="api", error="invalid_token", error_description="The token has been revoked"${SCOPE}`, 'revoked token')
  t.equal(await challenge({}, '/plain'), 'Bearer realm="api"', 'a route without scopes names none')
})
