import Fastify, { type FastifyInstance } from 'fastify'
import { SignJWT, type JWTPayload } from 'jose'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import jwtRevocation, { MemoryStore, type JwtRevocationOptions } from '../../src/index.js'
import { encodeStatusList } from '../fixtures/status-list-vectors.js'
import { AUDIENCE, bearer, json, makeKey, sign, type TestKey } from '../helpers/helpers.js'

// Two authorization servers in front of one API, each with its own keys, status lists
// and introspection endpoint: a token's list is verified with its own issuer's keys,
// and a token is introspected at its own issuer's endpoint, never at the other's.

interface IssuerServer {
  url: string
  /** The `iss` of its tokens. */
  issuer: string
  key: TestKey
  /** Status List Tokens by path. */
  lists: Map<string, string>
  /** Paths asked for, with how often. */
  hits: Map<string, number>
  /** The form and credentials of each introspection call. */
  introspected: Array<{ token: string, authorization: string | undefined }>
  /** The introspection answer for a token. */
  answer: (token: string) => Record<string, unknown>
}

async function issuerServer (t: Test): Promise<IssuerServer> {
  const s: IssuerServer = { url: '', issuer: '', key: await makeKey('ES256'), lists: new Map(), hits: new Map(), introspected: [], answer: () => ({ active: true }) }
  const server = createServer((req, res) => {
    const path = req.url ?? '/'
    s.hits.set(path, (s.hits.get(path) ?? 0) + 1)
    let body = ''
    req.on('data', (chunk: Buffer) => { body += chunk.toString() })
    req.on('end', () => {
      if (path === '/.well-known/openid-configuration') return json(res, { issuer: s.issuer, jwks_uri: `${s.url}/jwks`, introspection_endpoint: `${s.url}/introspect` })
      if (path === '/jwks') return json(res, { keys: [s.key.publicJwk] })
      if (path === '/introspect') {
        const token = new URLSearchParams(body).get('token') ?? ''
        s.introspected.push({ token, authorization: req.headers.authorization })
        return json(res, s.answer(token))
      }
      const list = s.lists.get(path)
      if (list === undefined) return res.writeHead(404).end()
      res.writeHead(200, { 'content-type': 'application/statuslist+jwt' }).end(list)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  s.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  s.issuer = `${s.url}/`
  return s
}

/** Publishes at `host` a 1-bit list of 16 entries whose revoked indices are given, signed with `signer`'s key, naming `iss`. */
async function publish (host: IssuerServer, path: string, revoked: number[], signer: IssuerServer = host, iss = signer.issuer): Promise<string> {
  const lst = encodeStatusList(1, 16, Object.fromEntries(revoked.map((i) => [i, 1])))
  const uri = host.url + path
  const payload: JWTPayload = { iss, sub: uri, iat: Math.floor(Date.now() / 1000), ttl: 300, status_list: { bits: 1, lst } }
  host.lists.set(path, await new SignJWT(payload).setProtectedHeader({ alg: signer.key.alg, kid: signer.key.kid, typ: 'statuslist+jwt' }).sign(signer.key.privateKey))
  return uri
}

const tokenOf = (s: IssuerServer, claims: JWTPayload = {}) => sign(s.key, { iss: s.issuer, ...claims })
const listed = (s: IssuerServer, uri: string, idx: number) => tokenOf(s, { status: { status_list: { idx, uri } } })

async function api (t: Test, options: Partial<JwtRevocationOptions>): Promise<FastifyInstance> {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(jwtRevocation, { audience: AUDIENCE, ...options } as JwtRevocationOptions)
  app.get('/orders', async (req) => ({ issuer: req.auth!.issuer, sub: req.auth!.subject }))
  if (options.issuers?.some((entry) => entry.introspection !== undefined) === true) {
    app.get('/payments', { config: { auth: { introspect: true } } }, async (req) => ({ issuer: req.auth!.issuer }))
  }
  await app.ready()
  return app
}

const answer = async (app: FastifyInstance, token: string, url = '/orders') => {
  const res = await app.inject({ url, headers: bearer(token) })
  return { status: res.statusCode, message: res.json().message as string | undefined, body: res.json() as Record<string, unknown> }
}

t.test('status lists: each issuer\'s lists are verified with its own keys, and a list signed by the other issuer is refused', async (t) => {
  const a = await issuerServer(t)
  const b = await issuerServer(t)
  const app = await api(t, {
    issuers: [{ issuer: a.issuer, jwksUri: `${a.url}/jwks` }, { issuer: b.issuer, jwksUri: `${b.url}/jwks` }],
    statusList: { allowedOrigins: [a.url, b.url] },
  })
  const listOfA = await publish(a, '/lists/1', [3])
  const listOfB = await publish(b, '/lists/1', [5])
  t.equal((await answer(app, await listed(a, listOfA, 5))).status, 200, 'A\'s token, valid in A\'s list')
  t.equal((await answer(app, await listed(a, listOfA, 3))).message, 'The token has been revoked', 'A\'s token, revoked in A\'s list')
  t.equal((await answer(app, await listed(b, listOfB, 3))).status, 200, 'B\'s token, valid in B\'s list')
  t.equal((await answer(app, await listed(b, listOfB, 5))).message, 'The token has been revoked', 'B\'s token, revoked in B\'s list')

  // B's list, already verified (and cached) for B's tokens, is never taken for A's: A's keys do not verify it.
  t.equal((await answer(app, await listed(a, listOfB, 0))).status, 503, 'A\'s token pointing at B\'s list')
  t.equal(b.hits.get('/lists/1'), 2, 'fetched again for A\'s token, not answered from the list verified with B\'s keys')
  // On A's origin, signed with B's key.
  const forged = await publish(a, '/lists/forged', [], b)
  t.equal((await answer(app, await listed(a, forged, 0))).status, 503, 'a list signed by B on A\'s origin is not A\'s')
  const claimingA = await publish(a, '/lists/claiming-a', [], b, a.issuer)
  t.equal((await answer(app, await listed(a, claimingA, 0))).status, 503, 'a list naming A as its issuer but signed with B\'s key is refused')
  t.equal(b.hits.get('/jwks'), 1, 'B\'s keys were fetched once, for B\'s own token, never to verify a list for A')
})

t.test('status lists: with issuers and no allowedOrigins, each issuer\'s tokens point at its own origin only', async (t) => {
  const key = await makeKey('ES256')
  const jwks = { keys: [key.publicJwk] }
  const app = await api(t, { issuers: [{ issuer: 'https://a.test/', jwks }, { issuer: 'https://b.test/', jwks }], statusList: true })
  const token = await sign(key, { iss: 'https://a.test/', status: { status_list: { idx: 0, uri: 'https://b.test/lists/1' } } })
  t.same(await answer(app, token).then((r) => [r.status, r.message]), [401, 'The token status list is not at an allowed origin'], 'A\'s token cannot make the API fetch from B\'s origin')
})

const client = (name: string) => ({ clientId: `api-at-${name}`, clientSecret: `${name}-secret` })
const basic = (name: string) => 'Basic ' + Buffer.from(`api-at-${name}:${name}-secret`).toString('base64')

t.test('introspection: each token is introspected at its own issuer\'s endpoint, with that issuer\'s credentials', async (t) => {
  const a = await issuerServer(t)
  const b = await issuerServer(t)
  const c = await issuerServer(t)
  const store = new MemoryStore()
  const app = await api(t, {
    store,
    issuers: [
      { issuer: a.issuer, jwksUri: `${a.url}/jwks`, introspection: { endpoint: `${a.url}/introspect`, ...client('a') } },
      // The endpoint from B's discovery document.
      { issuer: b.issuer, issuerBaseURL: b.issuer, introspection: client('b') },
      { issuer: c.issuer, jwksUri: `${c.url}/jwks` },
    ],
  })
  const ofA = await tokenOf(a)
  const ofB = await tokenOf(b)
  t.same(await answer(app, ofA, '/payments').then((r) => [r.status, r.body.issuer]), [200, a.issuer])
  t.same([a.introspected.length, b.introspected.length], [1, 0], 'A\'s token asked at A only')
  t.same(a.introspected[0], { token: ofA, authorization: basic('a') })
  t.same(await answer(app, ofB, '/payments').then((r) => [r.status, r.body.issuer]), [200, b.issuer])
  t.same([a.introspected.length, b.introspected.length], [1, 1], 'B\'s token asked at B only, at the endpoint its discovery names')
  t.same(b.introspected[0], { token: ofB, authorization: basic('b') })
  t.equal((await answer(app, ofA, '/payments')).status, 200)
  t.equal((await answer(app, ofA, '/orders')).status, 200)
  t.same([a.introspected.length, b.introspected.length], [1, 1], 'answers are cached; a route without introspect asks nobody')

  // B says inactive: revoked, the store too; A is never told about B's token.
  b.answer = () => ({ active: false })
  const revoked = await tokenOf(b, { jti: 'b-revoked' })
  t.equal((await answer(app, revoked, '/payments')).message, 'The token has been revoked')
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(await app.revocation.isTokenRevoked('b-revoked'), true)
  t.equal(a.introspected.some(({ token }) => token === revoked), false)

  // C offers no introspection: its tokens are refused where the route needs the issuer's word.
  const ofC = await tokenOf(c)
  t.same(await answer(app, ofC, '/payments').then((r) => [r.status, r.message]), [401, 'The token\'s issuer offers no introspection, which this route requires'])
  t.equal((await answer(app, ofC, '/orders')).status, 200, 'and served elsewhere')
  t.equal(c.hits.get('/introspect'), undefined)
  t.same([a.introspected.length, b.introspected.length], [1, 2])

  const health = await app.revocation.health()
  t.same([health.checks[`introspection:${a.issuer}`], health.checks[`introspection:${b.issuer}`]], [{ status: 'up', issuer: a.issuer }, { status: 'up', issuer: b.issuer }])
  t.equal(health.checks[`introspection:${c.issuer}`], undefined)
})

t.test('introspection: opaque tokens go to the one issuer that takes them, and are that issuer\'s', async (t) => {
  const a = await issuerServer(t)
  const b = await issuerServer(t)
  const app = await api(t, {
    issuers: [
      { issuer: a.issuer, jwksUri: `${a.url}/jwks`, introspection: { endpoint: `${a.url}/introspect`, ...client('a') } },
      { issuer: b.issuer, jwksUri: `${b.url}/jwks`, introspection: { endpoint: `${b.url}/introspect`, opaqueTokens: true, ...client('b') } },
    ],
  })
  const exp = Math.floor(Date.now() / 1000) + 300
  b.answer = (token) => token === 'opaque-of-a' ? { active: true, iss: a.issuer, aud: AUDIENCE, exp } : { active: true, aud: AUDIENCE, exp, sub: 'someone' }
  t.same(await answer(app, 'opaque-of-b').then((r) => [r.status, r.body]), [200, { issuer: b.issuer, sub: 'someone' }], 'an answer without iss is the answering issuer\'s')
  t.same(await answer(app, 'opaque-of-a').then((r) => [r.status, r.message]), [401, 'The token has an unexpected issuer'], 'B cannot vouch for a token of A')
  t.same([a.introspected.length, b.introspected.length], [0, 2], 'opaque tokens are sent to B alone')
})
