import Fastify, { type FastifyInstance } from 'fastify'
import { createHash } from 'node:crypto'
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import jwtRevocation, { MemoryStore, type JwtRevocationOptions } from '../../src/index.js'
import { AUDIENCE, bearer, json, jwksServer, makeKey, readyError, refusalsOf, sign } from '../helpers/helpers.js'

// RFC 7662 against a small introspection endpoint on the issuer's origin, answering as
// Keycloak or Okta do (JWTs included), with client_secret_basic.

const key = await makeKey('ES256')
const jwks = { keys: [key.publicJwk] }

interface Call { authorization: string | undefined, form: URLSearchParams }
type Answer = (form: URLSearchParams) => { status?: number, body: unknown, delay?: number, raw?: string }

/** An issuer origin with an introspection endpoint whose answers the test decides. */
async function issuerWithIntrospection (t: Test, answer: Answer) {
  const calls: Call[] = []
  const state = { answer }
  const server = createServer((req: IncomingMessage, res) => {
    let text = ''
    req.on('data', (chunk: Buffer) => { text += chunk.toString() })
    req.on('end', () => {
      if (req.url === '/.well-known/openid-configuration') return json(res, { issuer: `${url}/`, jwks_uri: `${url}/jwks`, introspection_endpoint: `${url}/introspect` })
      if (req.url === '/jwks') return json(res, jwks)
      const form = new URLSearchParams(text)
      calls.push({ authorization: req.headers.authorization, form })
      const { status = 200, body, delay = 0, raw } = state.answer(form)
      setTimeout(() => {
        if (raw !== undefined) { res.writeHead(status, { 'content-type': 'application/json' }); res.end(raw) } else json(res, body, status)
      }, delay)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return { url, issuer: `${url}/`, endpoint: `${url}/introspect`, calls, state }
}

async function api (t: Test, options: Partial<JwtRevocationOptions>, lines: string[] = []): Promise<FastifyInstance> {
  const app = Fastify({ logger: { level: 'info', stream: { write: (line: string) => { lines.push(line) } } } })
  t.teardown(() => app.close())
  await app.register(jwtRevocation, { jwks, audience: AUDIENCE, ...options } as JwtRevocationOptions)
  refusalsOf(app)
  app.get('/payments', { config: { auth: { introspect: true } } }, async (req) => ({ sub: req.auth!.subject }))
  app.get('/orders', async (req) => ({ sub: req.auth!.subject, client: req.auth!.clientId, scopes: req.auth!.scopes, jti: req.auth!.payload.jti }))
  await app.ready()
  return app
}

const active = (claims: Record<string, unknown> = {}) => () => ({ body: { active: true, ...claims } })
const introspection = (issuer: { issuer: string, endpoint: string }, more: Record<string, unknown> = {}) =>
  ({ issuer: issuer.issuer, introspection: { endpoint: issuer.endpoint, clientId: 'api client', clientSecret: 's3cret:+', ...more } })

t.test('introspect: true routes ask the issuer after local verification, with client_secret_basic; others do not', async (t) => {
  const issuer = await issuerWithIntrospection(t, active())
  const app = await api(t, introspection(issuer))
  const token = await sign(key, { iss: issuer.issuer })
  t.equal((await app.inject({ url: '/orders', headers: bearer(token) })).statusCode, 200)
  t.equal(issuer.calls.length, 0, 'a route without introspect keeps the local path')
  t.equal((await app.inject({ url: '/payments', headers: bearer(token) })).statusCode, 200)
  t.equal(issuer.calls.length, 1)
  t.equal(issuer.calls[0]!.authorization, 'Basic ' + Buffer.from('api+client:s3cret%3A%2B').toString('base64'), 'RFC 6749 §2.3.1 form-encoded credentials')
  t.equal(issuer.calls[0]!.form.get('token'), token)
  t.equal(issuer.calls[0]!.form.get('token_type_hint'), 'access_token')
  t.equal((await app.inject({ url: '/payments', headers: bearer(token) })).statusCode, 200)
  t.equal(issuer.calls.length, 1, 'the answer is cached')
  t.same((await app.revocation.health()).checks.introspection, { status: 'up' })
  t.equal((await app.inject({ url: '/payments', headers: bearer('nope.nope.nope') })).statusCode, 401)
  t.equal(issuer.calls.length, 1, 'a token that fails locally is never sent to the issuer')
})

t.test('active: false → 401 revoked, the jti revoked in the store, then refused on every route without asking', async (t) => {
  const issuer = await issuerWithIntrospection(t, () => ({ body: { active: false } }))
  const store = new MemoryStore()
  const app = await api(t, { ...introspection(issuer), store })
  const token = await sign(key, { iss: issuer.issuer, jti: 'jti-1' })
  const refused = await app.inject({ url: '/payments', headers: bearer(token) })
  t.equal(refused.statusCode, 401)
  t.equal(refused.json().message, 'The token has been revoked')
  t.match(refusalsOf(app).at(-1), { reason: 'introspection', jti: 'jti-1' }, 'the issuer said inactive')
  t.match(refused.headers['www-authenticate'], /error="invalid_token"/)
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(await app.revocation.isTokenRevoked('jti-1'), true, 'another instance sharing the store refuses it too')
  t.match((await app.revocation.history()).entries, [{ type: 'token', jti: 'jti-1', actor: `introspection:${issuer.issuer}`, reason: 'the issuer reports the token inactive', source: 'introspection' }], 'the log says the issuer answered inactive')
  t.equal((await app.inject({ url: '/orders', headers: bearer(token) })).json().message, 'The token has been revoked')
  t.match(refusalsOf(app).at(-1), { reason: 'introspection', jti: 'jti-1' }, 'the cached refusal keeps its reason')
  t.equal((await app.inject({ url: '/payments', headers: bearer(token) })).statusCode, 401)
  t.equal(issuer.calls.length, 1)
  // A second instance on the same store: refused on the local path, the issuer not asked.
  const other = await api(t, { ...introspection(issuer), store })
  t.equal((await other.inject({ url: '/payments', headers: bearer(token) })).statusCode, 401)
  t.equal(issuer.calls.length, 1)
})

t.test('answers are reused at most `cache`, never past exp; cache: false asks every time', async (t) => {
  const now = Date.now()
  const issuer = await issuerWithIntrospection(t, active({ exp: Math.floor(now / 1000) + 5 }))
  const app = await api(t, introspection(issuer, { cache: '1m' }))
  const token = await sign(key, { iss: issuer.issuer })
  t.equal((await app.inject({ url: '/payments', headers: bearer(token) })).statusCode, 200)
  t.equal((await app.inject({ url: '/payments', headers: bearer(token) })).statusCode, 200)
  t.equal(issuer.calls.length, 1)
  const realNow = Date.now
  t.teardown(() => { Date.now = realNow })
  Date.now = () => realNow() + 6000
  t.equal((await app.inject({ url: '/payments', headers: bearer(token) })).statusCode, 200)
  t.equal(issuer.calls.length, 2, 'the answer\'s exp, sooner than cache, ended its reuse')
  Date.now = realNow

  const uncached = await api(t, introspection(issuer, { cache: false }))
  for (let i = 0; i < 3; i++) await uncached.inject({ url: '/payments', headers: bearer(token) })
  t.equal(issuer.calls.length, 5)
})

t.test('a revocation through the store evicts the cached answer', async (t) => {
  const issuer = await issuerWithIntrospection(t, active())
  const app = await api(t, introspection(issuer))
  const token = await sign(key, { iss: issuer.issuer, sub: 'alice', iat: Math.floor(Date.now() / 1000) })
  await app.inject({ url: '/payments', headers: bearer(token) })
  t.equal(issuer.calls.length, 1)
  // A subject revocation dated before the token: the token stays valid, its cached answers go.
  await app.revocation.revokeSubject('alice', { at: Date.now() - 60_000 })
  t.equal((await app.inject({ url: '/payments', headers: bearer(token) })).statusCode, 200)
  t.equal(issuer.calls.length, 2, 'asked again')
  await app.revocation.revokeSubject('alice')
  t.equal((await app.inject({ url: '/payments', headers: bearer(token) })).json().message, 'The token has been revoked')
  t.match(refusalsOf(app).at(-1), { reason: 'subject', subject: 'alice' })
  t.equal(issuer.calls.length, 2, 'the store\'s revocation wins without asking the issuer')
})

t.test('one request in flight per token', async (t) => {
  const issuer = await issuerWithIntrospection(t, () => ({ body: { active: true }, delay: 50 }))
  const app = await api(t, introspection(issuer))
  const token = await sign(key, { iss: issuer.issuer })
  const answers = await Promise.all(Array.from({ length: 8 }, () => app.inject({ url: '/payments', headers: bearer(token) })))
  t.same(answers.map((a) => a.statusCode), Array(8).fill(200))
  t.equal(issuer.calls.length, 1)
})

t.test('endpoint down: 503 without a cached answer (onStoreError), the cached answer still serves', async (t) => {
  const issuer = await issuerWithIntrospection(t, active())
  const lines: string[] = []
  const app = await api(t, introspection(issuer, { cache: '1m' }), lines)
  const cached = await sign(key, { iss: issuer.issuer })
  t.equal((await app.inject({ url: '/payments', headers: bearer(cached) })).statusCode, 200)
  issuer.state.answer = () => ({ status: 500, body: { error: 'server_error' } })
  const down = await app.inject({ url: '/payments', headers: bearer(await sign(key, { iss: issuer.issuer })) })
  t.equal(down.statusCode, 503)
  t.equal(down.headers['retry-after'], '5')
  t.notMatch(down.body, /500|server_error/, 'nothing of the endpoint\'s answer reaches the client')
  t.equal((await app.inject({ url: '/payments', headers: bearer(cached) })).statusCode, 200)
  t.equal(lines.filter((l) => l.includes('introspection failed')).length, 1, 'the outage is logged once')
  const health = await app.revocation.health()
  t.equal(health.status, 'degraded')
  t.same(health.checks.introspection, { status: 'down' })

  const allow = await api(t, { ...introspection(issuer), onStoreError: 'allow' })
  t.equal((await allow.inject({ url: '/payments', headers: bearer(await sign(key, { iss: issuer.issuer })) })).statusCode, 200, 'onStoreError: allow lets a verified JWT through')
})

t.test('bounded, well-formed answers only', async (t) => {
  const issuer = await issuerWithIntrospection(t, () => ({ raw: JSON.stringify({ active: true, pad: 'x'.repeat(20_000) }), body: null }))
  const app = await api(t, introspection(issuer))
  t.equal((await app.inject({ url: '/payments', headers: bearer(await sign(key, { iss: issuer.issuer })) })).statusCode, 503, 'too large')
  issuer.state.answer = () => ({ body: { active: 'yes' } })
  const other = await api(t, introspection(issuer))
  t.equal((await other.inject({ url: '/payments', headers: bearer(await sign(key, { iss: issuer.issuer })) })).statusCode, 503, 'active is not a boolean')
})

t.test('an issuer that cannot introspect JWTs: a configuration error, logged once, 503', async (t) => {
  const issuer = await issuerWithIntrospection(t, () => ({ status: 400, body: { error: 'unsupported_token_type' } }))
  const lines: string[] = []
  const app = await api(t, introspection(issuer), lines)
  for (let i = 0; i < 3; i++) {
    t.equal((await app.inject({ url: '/payments', headers: bearer(await sign(key, { iss: issuer.issuer })) })).statusCode, 503)
  }
  t.equal(lines.filter((l) => l.includes('cannot introspect JWTs')).length, 1)
  t.equal((await app.inject({ url: '/orders', headers: bearer(await sign(key, { iss: issuer.issuer })) })).statusCode, 200, 'other routes keep working')
  const opaqueLines: string[] = []
  const opaque = await api(t, introspection(issuer, { opaqueTokens: true }), opaqueLines)
  t.equal((await opaque.inject({ url: '/orders', headers: bearer('opaque-token') })).statusCode, 503)
  t.ok(opaqueLines.some((l) => l.includes('cannot introspect its opaque tokens')))
  t.notOk(opaqueLines.some((l) => l.includes('cannot introspect JWTs')))
})

t.test('opaque tokens: the answer passes the checks a JWT passes', async (t) => {
  const now = Math.floor(Date.now() / 1000)
  const claims: Record<string, Record<string, unknown>> = {
    good: { active: true, aud: AUDIENCE, exp: now + 60, iat: now, scope: 'read:orders', client_id: 'partner' },
    foreign: { active: true, aud: 'https://other.test', exp: now + 60 },
    noexp: { active: true, aud: AUDIENCE },
    expired: { active: true, aud: AUDIENCE, exp: now - 10 },
    issuer: { active: true, aud: AUDIENCE, exp: now + 60, iss: 'https://evil.test/' },
    gone: { active: false },
    refresh: { active: true, aud: AUDIENCE, exp: now + 60, token_type: 'refresh_token' },
    bound: { active: true, aud: AUDIENCE, exp: now + 60, token_type: 'DPoP', cnf: { jkt: 'thumbprint' } },
  }
  const issuer = await issuerWithIntrospection(t, (form) => ({ body: claims[form.get('token')!] }))
  const app = await api(t, introspection(issuer, { opaqueTokens: true }))
  const good = await app.inject({ url: '/orders', headers: bearer('good') })
  t.equal(good.statusCode, 200)
  t.same(good.json(), { sub: null, client: 'partner', scopes: ['read:orders'], jti: createHash('sha256').update('good').digest('base64url') }, 'no sub; the digest stands for the missing jti')
  t.equal((await app.inject({ url: '/orders', headers: bearer('good') })).statusCode, 200)
  t.equal(issuer.calls.length, 1, 'cached like a JWT')
  const refusals = Object.fromEntries(await Promise.all(['foreign', 'noexp', 'expired', 'issuer', 'gone', 'refresh', 'bound'].map(async (name) =>
    [name, (await app.inject({ url: '/orders', headers: bearer(name) })).json().message])))
  t.same(refusals, {
    foreign: 'The token has an unexpected audience',
    noexp: 'The token lacks a required claim',
    expired: 'The token has expired',
    issuer: 'The token has an unexpected issuer',
    gone: 'The token is not active',
    refresh: 'The token has an unexpected type',
    bound: 'The token is bound to a key and this request does not prove it',
  })
  t.equal(await app.revocation.isTokenRevoked(createHash('sha256').update('gone').digest('base64url')), false, 'an unknown inactive token leaves nothing in the store')

  const off = await api(t, introspection(issuer))
  t.equal((await off.inject({ url: '/orders', headers: bearer('good') })).json().message, 'The token is malformed', 'without opaqueTokens, never sent')
})

t.test('the endpoint from discovery, on the issuer\'s origin', async (t) => {
  const issuer = await issuerWithIntrospection(t, active())
  const app = await api(t, { jwks: undefined, issuerBaseURL: issuer.issuer, introspection: { clientId: 'c', clientSecret: 's' } })
  t.equal((await app.inject({ url: '/payments', headers: bearer(await sign(key, { iss: issuer.issuer })) })).statusCode, 200)
  t.equal(issuer.calls.length, 1)

  const elsewhere = await jwksServer(t, (path, res) => path === '/.well-known/openid-configuration'
    ? json(res, { issuer: `${elsewhere.url}/`, jwks_uri: `${issuer.url}/jwks`, introspection_endpoint: issuer.endpoint })
    : json(res, {}, 404))
  const lines: string[] = []
  const off = await api(t, { jwks: undefined, issuerBaseURL: `${elsewhere.url}/`, introspection: { clientId: 'c', clientSecret: 's' } }, lines)
  t.equal((await off.inject({ url: '/payments', headers: bearer(await sign(key, { iss: `${elsewhere.url}/` })) })).statusCode, 503)
  t.equal(issuer.calls.length, 1, 'a token is never sent off the issuer\'s origin')
  t.ok(lines.some((l) => l.includes('off the allowed origins')))
})

t.test('bad options fail ready() naming the option', async (t) => {
  const base = { jwks, audience: AUDIENCE, issuer: 'https://issuer.test/' }
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ introspection: { endpoint: 'https://issuer.test/i', clientId: 'c', clientSecret: 's', opaqueToken: true } }, /"introspection\.opaqueToken" is not known; did you mean introspection\.opaqueTokens\?/],
    [{ introspection: { endpoint: 'https://elsewhere.test/i', clientId: 'c', clientSecret: 's' } }, /"introspection\.endpoint" is not on the issuer's origin/],
    [{ introspection: { endpoint: 'https://issuer.test/i', clientSecret: 's' } }, /"introspection\.clientId" is required/],
    [{ introspection: { clientId: 'c', clientSecret: 's' } }, /"introspection\.endpoint" is required unless issuerBaseURL/],
    [{ introspection: { endpoint: 'http://issuer.example/i', clientId: 'c', clientSecret: 's' } }, /must be an https URL/],
    [{ introspection: { endpoint: 'https://issuer.test/i', clientId: 'c', clientSecret: 's', cache: 'soon' } }, /"introspection\.cache" must be a duration: seconds/],
    [{ jwks: undefined, issuer: undefined, issuerBaseURL: 'https://tenant.eu.auth0.com/', introspection: { clientId: 'c', clientSecret: 's' } }, /not offered by Auth0; use the Auth0 sync/],
  ]
  for (const [options, message] of cases) t.match((await readyError({ ...base, ...options })).message, message)
  const allowed = await readyError({ ...base, introspection: { endpoint: 'https://elsewhere.test/i', clientId: 'c', clientSecret: 's', allowedOrigins: ['https://elsewhere.test'] }, audience: 42 })
  t.match(allowed.message, /"audience"/, 'allowedOrigins admits the endpoint (the next problem is reported)')

  const app = Fastify()
  await app.register(jwtRevocation, base as JwtRevocationOptions)
  t.throws(() => app.get('/x', { config: { auth: { introspect: true } } }, async () => 'x'), /config\.auth\.introspect of route \/x" needs the plugin's introspection option/)
  await app.close()
})
