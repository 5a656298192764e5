import FakeTimers from '@sinonjs/fake-timers'
import Fastify, { type FastifyInstance } from 'fastify'
import { SignJWT, type JWTPayload } from 'jose'
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { deflateSync } from 'node:zlib'
import t from 'tap'
import jwtRevocation, { type JwtRevocationOptions } from '../../src/index.js'
import { decodeStatusList, statusAt } from '../../src/sources/status-list/decode.js'
import { encodeStatusList, statusListTokenExample, statusListVectors } from '../fixtures/status-list-vectors.js'
import { AUDIENCE, bearer, ISSUER, makeKey, sign, type TestKey } from '../helpers/helpers.js'

const key = await makeKey('ES256')
const otherKey = await makeKey('ES256')

t.test('conformance: the Token Status List draft vectors decode to the statuses it lists (1, 2, 4, 8 bits)', async (t) => {
  for (const vector of statusListVectors) {
    const list = await decodeStatusList({ bits: vector.bits, lst: vector.lst }, 16 << 20)
    if (vector.bytes) t.same([...list.bytes], vector.bytes, `${vector.source}: byte array`)
    t.equal(list.bytes.length, vector.size * vector.bits / 8, `${vector.source}: size`)
    for (const [index, status] of Object.entries(vector.statuses)) t.equal(statusAt(list, Number(index)), status, `${vector.source}: status[${index}]`)
    t.equal(statusAt(list, vector.size), undefined, `${vector.source}: past the end`)
  }
  const example = statusListTokenExample.payload.status_list
  t.same([...(await decodeStatusList(example, 16)).bytes], [0xb9, 0xa3], '§5.1 Status List Token example')
})

t.test('decoding refuses what is not a status list, and a decompression bomb at the bound', async (t) => {
  await t.rejects(decodeStatusList({ bits: 3, lst: 'eNrbuRgAAhcBXQ' }, 1024), /bits/)
  await t.rejects(decodeStatusList({ bits: 1 }, 1024), /lst/)
  await t.rejects(decodeStatusList({ bits: 1, lst: 'not zlib' }, 1024))
  // 64 MiB of zeros compress to ~64 KB; inflating stops at the bound.
  const bomb = deflateSync(Buffer.alloc(64 << 20), { level: 9 }).toString('base64url')
  t.ok(bomb.length < 100_000)
  await t.rejects(decodeStatusList({ bits: 1, lst: bomb }, 1 << 20), { code: 'ERR_BUFFER_TOO_LARGE' })
})

interface ListServer {
  origin: string
  hits: Map<string, number>
  /** What a path answers: a body (a status list token) with headers, or a handler. */
  routes: Map<string, string | ((res: ServerResponse) => void)>
  /** While set, requests wait for it. */
  gate: Promise<void> | null
}

async function listServer (t: { teardown: (fn: () => unknown) => void }): Promise<ListServer> {
  const s: ListServer = { origin: '', hits: new Map(), routes: new Map(), gate: null }
  const server = createServer((req, res) => {
    const path = req.url ?? '/'
    s.hits.set(path, (s.hits.get(path) ?? 0) + 1)
    void (s.gate ?? Promise.resolve()).then(() => {
      const route = s.routes.get(path)
      if (route === undefined) return res.writeHead(404).end()
      if (typeof route === 'function') return route(res)
      res.writeHead(200, { 'content-type': 'application/statuslist+jwt' }).end(route)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  s.origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return s
}

async function statusListToken (signer: TestKey, claims: JWTPayload, header: Record<string, unknown> = {}): Promise<string> {
  const payload: JWTPayload = { iss: ISSUER, iat: Math.floor(Date.now() / 1000), ttl: 300, ...claims }
  for (const k of Object.keys(payload)) if (payload[k] === undefined) delete payload[k]
  return new SignJWT(payload).setProtectedHeader({ alg: signer.alg, kid: signer.kid, typ: 'statuslist+jwt', ...header }).sign(signer.privateKey)
}

/** Publishes a 1-bit list of 16 entries whose revoked indices are given. */
async function publish (s: ListServer, path: string, revoked: number[], claims: JWTPayload = {}, bits = 1, signer = key): Promise<void> {
  const statuses = Object.fromEntries(revoked.map((i) => [i, 1]))
  const lst = encodeStatusList(bits, 16, statuses)
  s.routes.set(path, await statusListToken(signer, { sub: s.origin + path, status_list: { bits, lst }, ...claims }))
}

const tokenFor = (uri: string, idx: number, claims: JWTPayload = {}) => sign(key, { status: { status_list: { idx, uri } }, ...claims })

async function app (t: { teardown: (fn: () => unknown) => void }, s: ListServer, options: Partial<JwtRevocationOptions> = {}): Promise<FastifyInstance> {
  const a = Fastify()
  t.teardown(() => a.close())
  await a.register(jwtRevocation, {
    jwks: { keys: [key.publicJwk] },
    issuer: ISSUER,
    audience: AUDIENCE,
    statusList: { allowedOrigins: [s.origin] },
    ...options,
  } as JwtRevocationOptions)
  a.get('/orders', async (req) => ({ sub: req.auth!.subject }))
  await a.ready()
  return a
}

const get = async (a: FastifyInstance, token: string) => {
  const res = await a.inject({ url: '/orders', headers: bearer(token) })
  return { status: res.statusCode, code: res.json().code as string | undefined, retryAfter: res.headers['retry-after'] }
}

t.test('a token marked in its status list is refused within the list ttl', async (t) => {
  const clock = FakeTimers.install({ toFake: ['Date'], now: Date.now() })
  t.teardown(() => clock.uninstall())
  const s = await listServer(t)
  await publish(s, '/lists/1', [3], { ttl: 60 })
  const a = await app(t, s)
  const token = await tokenFor(s.origin + '/lists/1', 5)
  t.equal((await get(a, token)).status, 200, 'status 0x00: valid')
  const revoked = await get(a, await tokenFor(s.origin + '/lists/1', 3))
  t.same([revoked.status, revoked.code], [401, 'FST_JWT_REVOCATION_TOKEN_REVOKED'], 'status 0x01: revoked')
  t.equal(s.hits.get('/lists/1'), 1, 'one fetch for both tokens')

  await publish(s, '/lists/1', [3, 5], { ttl: 60 })
  clock.tick(30_000)
  t.equal((await get(a, token)).status, 200, 'within ttl the cached list answers')
  clock.tick(31_000)
  t.equal((await get(a, token)).status, 401, 'after ttl the new list is read: revoked')
  t.equal(s.hits.get('/lists/1'), 2)
})

t.test('one fetch in flight per uri, and a background refresh before the list goes stale', async (t) => {
  const clock = FakeTimers.install({ toFake: ['Date'], now: Date.now() })
  t.teardown(() => clock.uninstall())
  const s = await listServer(t)
  await publish(s, '/lists/2', [], { ttl: 100 })
  const a = await app(t, s)
  let release!: () => void
  s.gate = new Promise<void>((resolve) => { release = resolve })
  const tokens = await Promise.all(Array.from({ length: 20 }, (_, i) => tokenFor(s.origin + '/lists/2', i % 16)))
  const pending = Promise.all(tokens.map((token) => get(a, token)))
  await new Promise((resolve) => setTimeout(resolve, 50))
  release()
  s.gate = null
  t.same((await pending).map((r) => r.status), tokens.map(() => 200))
  t.equal(s.hits.get('/lists/2'), 1, '20 concurrent tokens, one fetch')

  clock.tick(80_000) // past 75 % of ttl: still fresh, refreshed in the background
  await publish(s, '/lists/2', [0], { ttl: 100 })
  const fresh = await tokenFor(s.origin + '/lists/2', 0)
  t.equal((await get(a, fresh)).status, 200, 'answered from the cached list at once')
  // Wait (without asserting on time) until the background refresh has landed.
  let status = 200
  for (let i = 0; i < 200 && status === 200; i++) {
    await new Promise((resolve) => setTimeout(resolve, 10))
    status = (await get(a, await tokenFor(s.origin + '/lists/2', 0))).status
  }
  t.equal(status, 401, 'the refreshed list is used')
  t.equal(s.hits.get('/lists/2'), 2, 'refreshed once, in the background')
})

t.test('a list is not used past its exp, nor longer than maxAge', async (t) => {
  const clock = FakeTimers.install({ toFake: ['Date'], now: Date.now() })
  t.teardown(() => clock.uninstall())
  const s = await listServer(t)
  const now = Math.floor(Date.now() / 1000)
  await publish(s, '/lists/exp', [], { ttl: 3600, exp: now + 20 })
  await publish(s, '/lists/max', [], { ttl: 3600 })
  const a = await app(t, s, { statusList: { allowedOrigins: [s.origin], maxAge: '40s' }, cache: false })
  await get(a, await tokenFor(s.origin + '/lists/exp', 1))
  await get(a, await tokenFor(s.origin + '/lists/max', 1))
  clock.tick(25_000)
  await publish(s, '/lists/exp', [], { ttl: 3600, exp: now + 3600 })
  await get(a, await tokenFor(s.origin + '/lists/exp', 1))
  await get(a, await tokenFor(s.origin + '/lists/max', 1))
  t.equal(s.hits.get('/lists/exp'), 2, 'refetched after exp')
  t.equal(s.hits.get('/lists/max'), 1, 'within maxAge')
  clock.tick(20_000)
  await get(a, await tokenFor(s.origin + '/lists/max', 1))
  t.equal(s.hits.get('/lists/max'), 2, 'refetched after maxAge although ttl is longer')
})

t.test('no SSRF through the token: only allowed origins are fetched, redirects are not followed', async (t) => {
  const s = await listServer(t)
  const elsewhere = await listServer(t)
  await publish(elsewhere, '/lists/x', [])
  const a = await app(t, s)
  for (const uri of [elsewhere.origin + '/lists/x', 'http://169.254.169.254/latest/meta-data', 'file:///etc/passwd', 'https://issuer.test.evil.example/x', `http://user:pw@${s.origin.slice(7)}/lists/x`]) {
    const res = await get(a, await tokenFor(uri, 0))
    t.same([res.status, res.code], [401, 'FST_JWT_REVOCATION_INVALID_TOKEN'], uri)
  }
  t.equal(elsewhere.hits.size, 0, 'the other origin was never contacted')
  t.equal(s.hits.size, 0)

  s.routes.set('/redirect', (res) => res.writeHead(302, { location: elsewhere.origin + '/lists/x' }).end())
  const redirected = await get(a, await tokenFor(s.origin + '/redirect', 0))
  t.same([redirected.status, redirected.code], [503, 'FST_JWT_REVOCATION_UNAVAILABLE'])
  t.equal(elsewhere.hits.size, 0, 'the redirect was not followed')
})

t.test('unreachable or invalid lists: 503 per onStoreError, asked again only after retryAfter', async (t) => {
  const clock = FakeTimers.install({ toFake: ['Date'], now: Date.now() })
  t.teardown(() => clock.uninstall())
  const s = await listServer(t)
  const a = await app(t, s, { cache: false })
  const cases: Array<[string, (path: string) => Promise<void>]> = [
    ['404', async () => {}],
    ['wrong content type', async (path) => { s.routes.set(path, (res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{}')) }],
    ['too large a body', async (path) => { s.routes.set(path, (res) => res.writeHead(200, { 'content-type': 'application/statuslist+jwt' }).end('a'.repeat(2 << 20))) }],
    ['signed by another key', (path) => publish(s, path, [], {}, 1, otherKey)],
    ['typ not statuslist+jwt', async (path) => { s.routes.set(path, await statusListToken(key, { sub: s.origin + path, status_list: { bits: 1, lst: 'eNrbuRgAAhcBXQ' } }, { typ: 'JWT' })) }],
    ['sub not the uri', async (path) => { s.routes.set(path, await statusListToken(key, { sub: s.origin + '/other', status_list: { bits: 1, lst: 'eNrbuRgAAhcBXQ' } })) }],
    ['no iat', (path) => publish(s, path, [], { iat: undefined })],
    ['expired', (path) => publish(s, path, [], { exp: Math.floor(Date.now() / 1000) - 10 })],
    ['ttl not positive', (path) => publish(s, path, [], { ttl: -1 })],
    ['bits 3', (path) => publish(s, path, [], {}, 3)],
    ['an inflate bomb', async (path) => { s.routes.set(path, await statusListToken(key, { sub: s.origin + path, status_list: { bits: 1, lst: deflateSync(Buffer.alloc(32 << 20)).toString('base64url') } })) }],
  ]
  for (const [name, setup] of cases) {
    const path = '/bad/' + name.replace(/\W+/g, '-')
    await setup(path)
    const token = await tokenFor(s.origin + path, 0)
    const res = await get(a, token)
    t.same([res.status, res.code, res.retryAfter], [503, 'FST_JWT_REVOCATION_UNAVAILABLE', '5'], name)
    await get(a, token)
    t.equal(s.hits.get(path), 1, `${name}: not asked again within retryAfter`)
  }
  clock.tick(6000)
  await publish(s, '/bad/404', [])
  t.equal((await get(a, await tokenFor(s.origin + '/bad/404', 0))).status, 200, 'recovers after retryAfter')

  const lenient = await app(t, s, { cache: false, onStoreError: 'allow' })
  t.equal((await get(lenient, await tokenFor(s.origin + '/bad/wrong-content-type', 0))).status, 200, "onStoreError: 'allow' lets it through")
})

t.test('the token status claim itself is checked (401)', async (t) => {
  const s = await listServer(t)
  await publish(s, '/lists/3', [], {})
  const a = await app(t, s)
  const uri = s.origin + '/lists/3'
  for (const status of [{ status_list: { idx: -1, uri } }, { status_list: { idx: '0', uri } }, { status_list: { idx: 1.5, uri } }, { status_list: { idx: 0 } }, { status_list: 'x' }, 'x']) {
    const res = await get(a, await sign(key, { status }))
    t.same([res.status, res.code], [401, 'FST_JWT_REVOCATION_INVALID_TOKEN'], JSON.stringify(status))
  }
  t.same((await get(a, await tokenFor(uri, 16))).status, 401, 'an index outside the list')
  t.same((await get(a, await tokenFor(uri, 0, { iss: undefined }))).status, 401, 'no iss: the plugin requires the issuer anyway')
  t.equal((await get(a, await sign(key, { status: { other_mechanism: {} } }))).status, 200, 'another status mechanism is ignored')
  t.equal((await get(a, await sign(key, {}))).status, 200, 'no status claim: not checked')
})

t.test('a list of another issuer is refused; a suspended token comes back when unsuspended', async (t) => {
  const clock = FakeTimers.install({ toFake: ['Date'], now: Date.now() })
  t.teardown(() => clock.uninstall())
  const s = await listServer(t)
  await publish(s, '/lists/iss', [], { iss: 'https://someone-else.test/' })
  s.routes.set('/lists/2bit', await statusListToken(key, { sub: s.origin + '/lists/2bit', ttl: 10, status_list: { bits: 2, lst: encodeStatusList(2, 8, { 4: 2 }) } }))
  const a = await app(t, s, { cache: { max: 100, ttl: 1000 } })
  t.equal((await get(a, await tokenFor(s.origin + '/lists/iss', 0))).status, 401, 'iss differs from the token')
  const token = await tokenFor(s.origin + '/lists/2bit', 4)
  t.equal((await get(a, token)).status, 401, '0x02 SUSPENDED refused')
  s.routes.set('/lists/2bit', await statusListToken(key, { sub: s.origin + '/lists/2bit', ttl: 10, status_list: { bits: 2, lst: encodeStatusList(2, 8, {}) } }))
  clock.tick(11_000)
  t.equal((await get(a, token)).status, 200, 'suspension lifted: the cached token is valid again')
})

t.test('statusList option validation', async (t) => {
  const bad: Array<[Partial<JwtRevocationOptions>, RegExp]> = [
    [{ statusList: { allowedOrigins: ['http://status.example'] } }, /allowedOrigins/],
    [{ statusList: { allowedOrigins: [] } }, /allowedOrigins/],
    [{ statusList: { timeout: 0 } }, /timeout/],
    [{ statusList: true, issuer: 'http://127.0.0.1:9/' }, /allowedOrigins/],
    [{ statusList: 'yes' as never }, /statusList/],
    [{ statusList: true, jwks: undefined, secret: 'a-test-secret-of-at-least-32-bytes-long!!' }, /statusList/],
  ]
  for (const [options, pattern] of bad) {
    const a = Fastify()
    t.teardown(() => a.close())
    a.register(jwtRevocation, { jwks: { keys: [key.publicJwk] }, issuer: ISSUER, audience: AUDIENCE, ...options } as JwtRevocationOptions)
    await t.rejects(async () => { await a.ready() }, pattern, JSON.stringify(options))
  }
  const ok = Fastify()
  t.teardown(() => ok.close())
  await ok.register(jwtRevocation, { jwks: { keys: [key.publicJwk] }, issuer: ISSUER, audience: AUDIENCE, statusList: true })
  await ok.ready()
  t.pass('true: the issuer origin is the default')
})
