import Fastify, { type FastifyInstance } from 'fastify'
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import Provider from 'oidc-provider'
import t, { type Test } from 'tap'
import jwtRevocation, { type JwtRevocationOptions } from '../../src/index.js'
import { bearer } from '../helpers/helpers.js'

// Two certified OpenID Providers, each with its own signing key, in front of one API:
// each one's tokens are verified with its keys only, and a token naming neither issuer
// makes the API fetch nothing.

const API = 'https://api.test'
const ADMIN_API = 'https://admin.test'

interface Issuer {
  url: string
  /** Paths the provider was asked for, in order. */
  paths: string[]
  privateKey: CryptoKey
  kid: string
  alg: string
  token: (resource: string) => Promise<string>
}

async function startIssuer (alg: 'RS256' | 'ES256', kid: string): Promise<Issuer> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true })
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const provider = new Provider(url, {
    jwks: { keys: [{ ...(await exportJWK(privateKey)), kid, alg, use: 'sig' } as JWK as never] },
    clients: [{ client_id: 'partner', client_secret: 'partner-secret', grant_types: ['client_credentials'], redirect_uris: [], response_types: [], id_token_signed_response_alg: alg }],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => API,
        useGrantedResource: async () => true,
        getResourceServerInfo: async () => ({ scope: 'read:orders', accessTokenFormat: 'jwt', accessTokenTTL: 300, jwt: { sign: { alg } } }),
      },
    },
  })
  const paths: string[] = []
  const handle = provider.callback()
  server.on('request', (req, res) => { paths.push(req.url ?? ''); handle(req, res) })
  const token = async (resource: string): Promise<string> => {
    const res = await fetch(`${url}/token`, {
      method: 'POST',
      headers: { authorization: 'Basic ' + Buffer.from('partner:partner-secret').toString('base64'), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource, scope: 'read:orders' }),
    })
    const body = await res.json() as { access_token: string }
    if (res.status !== 200) throw new Error(`token endpoint: ${res.status} ${JSON.stringify(body)}`)
    return body.access_token
  }
  return { url, paths, privateKey, kid, alg, token }
}

const a = await startIssuer('RS256', 'key-a')
const b = await startIssuer('ES256', 'key-b')

/** Requests the API made to an issuer (its own token requests excluded). */
const fetchesOf = (issuer: Issuer) => issuer.paths.filter((p) => p !== '/token')

async function api (t: Test, options: Partial<JwtRevocationOptions> = {}): Promise<FastifyInstance> {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(jwtRevocation, {
    audience: [API, ADMIN_API],
    issuers: [
      { issuer: a.url, issuerBaseURL: a.url, algorithms: ['RS256'] },
      // B's tokens are good for the orders API only.
      { issuer: b.url, jwksUri: `${b.url}/jwks`, algorithms: ['ES256'], audience: API },
    ],
    resourceMetadata: true,
    ...options,
  } as JwtRevocationOptions)
  app.get('/orders', { config: { auth: { scopes: ['read:orders'] } } }, async (req) => ({ issuer: req.auth!.issuer, client: req.auth!.clientId }))
  app.get('/admin', { config: { auth: { audience: ADMIN_API } } }, async (req) => ({ issuer: req.auth!.issuer }))
  await app.ready()
  return app
}

/** A token the test signs itself, as an attacker holding one issuer's key (or none listed) would. */
async function forged (key: CryptoKey, alg: string, kid: string, iss: string, typ = 'at+jwt'): Promise<string> {
  return new SignJWT({ iss, aud: API, sub: 'partner', client_id: 'partner', scope: 'read:orders', jti: `forged-${Math.random()}` })
    .setProtectedHeader({ alg, kid, typ }).setIssuedAt().setExpirationTime('5m').sign(key)
}

t.test('tokens from both issuers are accepted, each fetching only its own keys, and say which issuer', async (t) => {
  const app = await api(t)
  const before = { a: fetchesOf(a).length, b: fetchesOf(b).length }
  t.same(before, { a: 0, b: 0 }, 'nothing is fetched at registration')

  const fromA = await a.token(API)
  const answerA = await app.inject({ url: '/orders', headers: bearer(fromA) })
  t.equal(answerA.statusCode, 200)
  t.same(answerA.json(), { issuer: a.url, client: 'partner' })
  t.same(fetchesOf(a), ['/.well-known/openid-configuration', '/jwks'], 'A: discovery, then its key set')
  t.same(fetchesOf(b), [], 'B is not asked about A\'s token')

  const fromB = await b.token(API)
  const answerB = await app.inject({ url: '/orders', headers: bearer(fromB) })
  t.equal(answerB.statusCode, 200)
  t.same(answerB.json(), { issuer: b.url, client: 'partner' })
  t.same(fetchesOf(b), ['/jwks'], 'B: its key set')
  t.equal(fetchesOf(a).length, 2, 'A is not asked about B\'s token')

  // From the verified-token cache, the issuer is the one that verified the token.
  t.same((await app.inject({ url: '/orders', headers: bearer(fromA) })).json(), { issuer: a.url, client: 'partner' })
  t.same((await app.inject({ url: '/orders', headers: bearer(fromB) })).json(), { issuer: b.url, client: 'partner' })
})

t.test('a token signed with one issuer\'s key claiming the other issuer is refused', async (t) => {
  const app = await api(t)
  // Genuine tokens of both first, so both key sets are loaded and cached.
  t.equal((await app.inject({ url: '/orders', headers: bearer(await a.token(API)) })).statusCode, 200)
  t.equal((await app.inject({ url: '/orders', headers: bearer(await b.token(API)) })).statusCode, 200)

  for (const [name, token] of [
    ['A\'s key, iss B, A\'s kid', await forged(a.privateKey, a.alg, a.kid, b.url)],
    ['B\'s key, iss A, B\'s kid', await forged(b.privateKey, b.alg, b.kid, a.url)],
    ['A\'s key, iss B, B\'s kid', await forged(a.privateKey, a.alg, b.kid, b.url)],
    ['B\'s key, iss A, A\'s kid', await forged(b.privateKey, b.alg, a.kid, a.url)],
  ] as const) {
    const res = await app.inject({ url: '/orders', headers: bearer(token) })
    t.equal(res.statusCode, 401, name)
    t.match(res.headers['www-authenticate'], /error="invalid_token"/, name)
  }
  // The control: the same forging code with the right issuer passes.
  t.equal((await app.inject({ url: '/orders', headers: bearer(await forged(a.privateKey, a.alg, a.kid, a.url)) })).statusCode, 200)
})

t.test('a token naming no listed issuer is refused before anything is fetched', async (t) => {
  const app = await api(t)
  const { privateKey } = await generateKeyPair('ES256')
  const before = { a: fetchesOf(a).length, b: fetchesOf(b).length }
  for (const iss of ['https://stranger.test', `${a.url}/`, b.url.toUpperCase()]) {
    const res = await app.inject({ url: '/orders', headers: bearer(await forged(privateKey, 'ES256', 'key-a', iss)) })
    t.equal(res.statusCode, 401, iss)
    t.equal(res.json().message, 'The token has an unexpected issuer', iss)
    t.match(res.headers['www-authenticate'], /error="invalid_token"/)
  }
  // No iss at all, and an iss that is not a string.
  for (const iss of [undefined, 42]) {
    const token = await new SignJWT({ ...(iss === undefined ? {} : { iss }), aud: API } as Record<string, unknown>).setProtectedHeader({ alg: 'ES256', kid: 'key-a' }).setExpirationTime('5m').sign(privateKey)
    t.equal((await app.inject({ url: '/orders', headers: bearer(token) })).statusCode, 401)
  }
  t.same({ a: fetchesOf(a).length, b: fetchesOf(b).length }, before, 'neither issuer was asked anything')
})

t.test('an entry\'s audience narrows the plugin\'s for that issuer\'s tokens', async (t) => {
  const app = await api(t)
  const adminFromA = await a.token(ADMIN_API)
  t.same((await app.inject({ url: '/admin', headers: bearer(adminFromA) })).json(), { issuer: a.url })
  const adminFromB = await b.token(ADMIN_API)
  const refused = await app.inject({ url: '/admin', headers: bearer(adminFromB) })
  t.equal(refused.statusCode, 401)
  t.equal(refused.json().message, 'The token has an unexpected audience')
})

t.test('an entry\'s typ applies to that issuer\'s tokens only', async (t) => {
  const app = await api(t, {
    issuers: [
      { issuer: a.url, issuerBaseURL: a.url, typ: 'at+jwt' },
      { issuer: b.url, jwksUri: `${b.url}/jwks` },
    ],
  })
  const untypedA = await app.inject({ url: '/orders', headers: bearer(await forged(a.privateKey, a.alg, a.kid, a.url, 'JWT')) })
  t.equal(untypedA.statusCode, 401)
  t.equal(untypedA.json().message, 'The token has an unexpected type')
  t.equal((await app.inject({ url: '/orders', headers: bearer(await forged(a.privateKey, a.alg, a.kid, a.url)) })).statusCode, 200)
  t.equal((await app.inject({ url: '/orders', headers: bearer(await forged(b.privateKey, b.alg, b.kid, b.url, 'JWT')) })).statusCode, 200)
})

t.test('protected resource metadata lists both issuers; health reports each key source', async (t) => {
  const app = await api(t)
  const metadata = await app.inject({ url: '/.well-known/oauth-protected-resource' })
  t.same(metadata.json().authorization_servers, [a.url, b.url])

  const idle = await app.revocation.health()
  t.equal(idle.checks.keys.status, 'unknown')
  t.same(idle.checks[`keys:${a.url}`], { status: 'unknown', source: 'issuerBaseURL', issuer: a.url })
  t.same(idle.checks[`keys:${b.url}`], { status: 'unknown', source: 'jwksUri', issuer: b.url })

  await app.inject({ url: '/orders', headers: bearer(await a.token(API)) })
  const half = await app.revocation.health()
  t.equal(half.checks[`keys:${a.url}`]!.status, 'up')
  t.equal(half.checks[`keys:${b.url}`]!.status, 'unknown')
  await app.inject({ url: '/orders', headers: bearer(await b.token(API)) })
  const both = await app.revocation.health()
  t.equal(both.status, 'ok')
  t.same(both.checks.keys, { status: 'up', issuers: 2 })
  t.equal(both.checks[`keys:${b.url}`]!.status, 'up')
})

t.test('one issuer unreachable: its check is down, the report degraded, the other issuer\'s tokens still served', async (t) => {
  const app = await api(t, {
    issuers: [
      { issuer: a.url, issuerBaseURL: a.url },
      // Nothing listens there.
      { issuer: 'http://127.0.0.1:9/', jwksUri: 'http://127.0.0.1:9/jwks' },
    ],
  })
  const { privateKey } = await generateKeyPair('ES256')
  const res = await app.inject({ url: '/orders', headers: bearer(await forged(privateKey, 'ES256', 'k', 'http://127.0.0.1:9/')) })
  t.equal(res.statusCode, 503)
  t.equal((await app.inject({ url: '/orders', headers: bearer(await a.token(API)) })).statusCode, 200)
  const report = await app.revocation.health()
  t.equal(report.checks['keys:http://127.0.0.1:9/']!.status, 'down')
  t.equal(report.checks.keys.status, 'stale')
  t.equal(report.status, 'degraded')
})

t.test('with one issuer, request.auth.issuer is the token\'s iss, or null when it has none', async (t) => {
  const app = await api(t, { issuers: undefined, jwksUri: `${b.url}/jwks`, resourceMetadata: undefined } as Partial<JwtRevocationOptions>)
  t.same((await app.inject({ url: '/orders', headers: bearer(await b.token(API)) })).json(), { issuer: b.url, client: 'partner' })
  const withoutIss = await new SignJWT({ aud: API, client_id: 'partner', scope: 'read:orders' })
    .setProtectedHeader({ alg: b.alg, kid: b.kid }).setExpirationTime('5m').sign(b.privateKey)
  t.same((await app.inject({ url: '/orders', headers: bearer(withoutIss) })).json(), { issuer: null, client: 'partner' })
})
