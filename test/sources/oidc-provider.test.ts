import Fastify, { type FastifyInstance } from 'fastify'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import Provider from 'oidc-provider'
import t, { type Test } from 'tap'
import jwtRevocation, { MemoryStore, type JwtRevocationOptions } from '../../src/index.js'
import { bearer } from '../helpers/helpers.js'

// A certified OpenID Provider as the issuer: RFC 7662 introspection and RFC 7009
// revocation enabled, opaque access tokens for one resource and JWTs for another
// (which it refuses to introspect, as RFC 7662 lets it).

const OPAQUE_API = 'https://orders.test'
const JWT_API = 'https://jwt.test'

const server = createServer()
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
const provider = new Provider(issuer, {
  clients: [
    { client_id: 'partner', client_secret: 'partner-secret', grant_types: ['client_credentials'], redirect_uris: [], response_types: [] },
    // The API's own client at the issuer, for introspection.
    { client_id: 'orders-api', client_secret: 'orders-api-secret', grant_types: [], redirect_uris: [], response_types: [] },
  ],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true, allowedPolicy: async () => true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => OPAQUE_API,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx: unknown, resource: string) => resource === JWT_API
        ? { scope: 'read:orders', accessTokenFormat: 'jwt', accessTokenTTL: 300, jwt: { sign: { alg: 'RS256' } } }
        : { scope: 'read:orders', accessTokenFormat: 'opaque', accessTokenTTL: 300 },
    },
  },
})
const paths: string[] = []
const handle = provider.callback()
server.on('request', (req, res) => { paths.push(req.url ?? ''); handle(req, res) })
const introspections = () => paths.filter((p) => p.startsWith('/token/introspection')).length

const basic = (id: string, secret: string) => 'Basic ' + Buffer.from(`${id}:${secret}`).toString('base64')

async function token (resource: string): Promise<string> {
  const res = await fetch(`${issuer}/token`, {
    method: 'POST',
    headers: { authorization: basic('partner', 'partner-secret'), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource, scope: 'read:orders' }),
  })
  const body = await res.json() as { access_token: string }
  if (res.status !== 200) throw new Error(`token endpoint: ${res.status} ${JSON.stringify(body)}`)
  return body.access_token
}

async function revokeAtIssuer (accessToken: string): Promise<void> {
  const res = await fetch(`${issuer}/token/revocation`, {
    method: 'POST',
    headers: { authorization: basic('partner', 'partner-secret'), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: accessToken, token_type_hint: 'access_token' }),
  })
  if (res.status !== 200) throw new Error(`revocation endpoint: ${res.status}`)
}

async function api (t: Test, options: Partial<JwtRevocationOptions>, lines: string[] = []): Promise<FastifyInstance> {
  const app = Fastify({ logger: { level: 'warn', stream: { write: (line: string) => { lines.push(line) } } } })
  t.teardown(() => app.close())
  await app.register(jwtRevocation, {
    // Discovery gives the keys and the introspection endpoint.
    issuerBaseURL: issuer,
    audience: [OPAQUE_API, JWT_API],
    introspection: { clientId: 'orders-api', clientSecret: 'orders-api-secret', opaqueTokens: true, cache: false },
    ...options,
  } as JwtRevocationOptions)
  app.get('/orders', { config: { auth: { scopes: ['read:orders'] } } }, async (req) => ({ client: req.auth!.clientId, scopes: req.auth!.scopes }))
  app.get('/payments', { config: { auth: { introspect: true } } }, async () => ({ ok: true }))
  await app.ready()
  return app
}

t.test('an opaque token is accepted; revoked at the issuer, it is refused on the next call and then on every route', async (t) => {
  const store = new MemoryStore()
  const app = await api(t, { store })
  // Another instance on the same store, trusting answers for an hour and the store's for no time.
  const other = await api(t, { store, cache: { ttl: 0 }, introspection: { clientId: 'orders-api', clientSecret: 'orders-api-secret', opaqueTokens: true, cache: '1h' } })
  const opaque = await token(OPAQUE_API)
  t.notMatch(opaque, /\./, 'the issuer minted an opaque token')
  const accepted = await app.inject({ url: '/orders', headers: bearer(opaque) })
  t.equal(accepted.statusCode, 200)
  t.same(accepted.json(), { client: 'partner', scopes: ['read:orders'] })
  t.equal((await app.inject({ url: '/payments', headers: bearer(opaque) })).statusCode, 200)
  t.equal((await other.inject({ url: '/orders', headers: bearer(opaque) })).statusCode, 200)

  await revokeAtIssuer(opaque)
  const refused = await app.inject({ url: '/orders', headers: bearer(opaque) })
  t.equal(refused.statusCode, 401)
  t.equal(refused.json().message, 'The token has been revoked')
  const asked = introspections()
  t.equal((await app.inject({ url: '/payments', headers: bearer(opaque) })).json().message, 'The token has been revoked')
  await new Promise((resolve) => setImmediate(resolve))
  const elsewhere = await other.inject({ url: '/payments', headers: bearer(opaque) })
  t.equal(elsewhere.json().message, 'The token has been revoked', 'the other instance, its answer cached for an hour, refuses it from the store')
  t.equal(introspections(), asked, 'without asking the issuer again')
})

t.test('within cache, an answer is reused; the revocation shows once it runs out', async (t) => {
  const app = await api(t, { introspection: { clientId: 'orders-api', clientSecret: 'orders-api-secret', opaqueTokens: true, cache: '1h' } })
  // Its expiry is at least 299 s after this (the issuer counts whole seconds), however long the steps below take.
  const issuedFrom = Date.now()
  const opaque = await token(OPAQUE_API)
  t.equal((await app.inject({ url: '/orders', headers: bearer(opaque) })).statusCode, 200)
  const asked = introspections()
  t.equal((await app.inject({ url: '/orders', headers: bearer(opaque) })).statusCode, 200)
  t.equal(introspections(), asked, 'cached')
  await revokeAtIssuer(opaque)
  const realNow = Date.now
  t.teardown(() => { Date.now = realNow })
  // The token lives 300 s: its expiry bounds the reuse, whatever cache says.
  Date.now = () => issuedFrom + 298_000
  t.equal((await app.inject({ url: '/orders', headers: bearer(opaque) })).statusCode, 200, 'still within the answer\'s life')
  Date.now = () => realNow() + 301_000
  t.equal((await app.inject({ url: '/orders', headers: bearer(opaque) })).statusCode, 401, 'expired')
})

t.test('JWTs: verified locally; on an introspect: true route the issuer\'s refusal to introspect them is a configuration error', async (t) => {
  const lines: string[] = []
  const app = await api(t, {}, lines)
  const jwt = await token(JWT_API)
  t.equal(jwt.split('.').length, 3)
  t.equal((await app.inject({ url: '/orders', headers: bearer(jwt) })).statusCode, 200)
  t.equal((await app.inject({ url: '/payments', headers: bearer(jwt) })).statusCode, 503)
  t.equal((await app.inject({ url: '/payments', headers: bearer(jwt) })).statusCode, 503)
  t.equal(lines.filter((l) => l.includes('cannot introspect JWTs')).length, 1, 'logged once')
})
