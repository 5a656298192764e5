// DPoP (RFC 9449) on the resource server: every check of §4.3 refuses on its own, the
// challenges of §7.1, the replay cache (§11.1) within one process and across instances
// sharing a store, nonces (§9), `required`, `publicUrl` and `trustProxy`.
// Proofs here are signed with jose's SignJWT, apart from the code that checks them; the
// example test drives the same API with oauth4webapi, a DPoP client of its own.
import Fastify from 'fastify'
import { calculateJwkThumbprint, CompactSign, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose'
import { createHash, randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import jwtRevocation, { MemoryStore, type JwtRevocationOptions, type RevocationStore } from '../../src/index.js'
import { NonceWindows } from '../../src/binding/dpop/nonce.js'
import { BoundedClaims } from '../../src/stores/claims.js'
import { normalizeHttpUri } from '../../src/binding/dpop/url.js'
import { RedisStore } from '../../src/stores/redis.js'
import { PostgresStore } from '../../src/stores/postgres.js'
import { AUDIENCE, bearer, buildApp, DPOP_CHALLENGE, ISSUER, makeKey, readyError, sign } from '../helpers/helpers.js'
import { connectPostgres, connectRedis, deleteKeys, uniqueName } from '../helpers/services.js'

const issuerKey = await makeKey('ES256')
const jwks = { keys: [issuerKey.publicJwk] }
const URL_ORDERS = 'http://localhost:80/orders'
/** Every challenge of the /orders route names its scope. */
const SCOPE = ', scope="read:orders"'

interface Holder { privateKey: CryptoKey, jwk: JWK, jkt: string, alg: string }

async function holder (alg = 'ES256'): Promise<Holder> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true })
  const jwk = await exportJWK(publicKey)
  return { privateKey, jwk, jkt: await calculateJwkThumbprint(jwk), alg }
}

interface ProofOptions {
  htm?: string
  htu?: string
  token?: string | null
  iat?: number
  jti?: string
  nonce?: string
  header?: Record<string, unknown>
  signer?: CryptoKey
  claims?: Record<string, unknown>
}

const ath = (token: string) => createHash('sha256').update(token).digest('base64url')

async function proof (h: Holder, options: ProofOptions = {}): Promise<string> {
  const payload: Record<string, unknown> = {
    htm: options.htm ?? 'GET',
    htu: options.htu ?? URL_ORDERS,
    iat: options.iat ?? Math.floor(Date.now() / 1000),
    jti: options.jti ?? randomUUID(),
    ...(options.token ? { ath: ath(options.token) } : {}),
    ...(options.nonce === undefined ? {} : { nonce: options.nonce }),
    ...options.claims,
  }
  for (const k of Object.keys(payload)) if (payload[k] === undefined) delete payload[k]
  return new SignJWT(payload)
    .setProtectedHeader({ typ: 'dpop+jwt', alg: h.alg, jwk: h.jwk, ...options.header } as { alg: string })
    .sign(options.signer ?? h.privateKey)
}

const boundToken = (h: Holder, claims: Record<string, unknown> = {}) => sign(issuerKey, { cnf: { jkt: h.jkt }, ...claims })

async function dpopHeaders (h: Holder, token: string, options: ProofOptions = {}) {
  return { authorization: `DPoP ${token}`, dpop: await proof(h, { token, ...options }) }
}

function dpopApp (t: Parameters<typeof buildApp>[0], options: Partial<JwtRevocationOptions> = {}) {
  return buildApp(t, { jwks, ...options })
}

t.test('a DPoP-bound token with a fresh proof is admitted; request.auth says how', async (t) => {
  const app = await dpopApp(t)
  const h = await holder()
  const token = await boundToken(h)
  const res = await app.inject({ url: '/orders', headers: await dpopHeaders(h, token) })
  t.equal(res.statusCode, 200, res.body)
  t.equal(res.headers['dpop-nonce'], undefined, 'no nonce unless asked for')
  const seen = Fastify()
  t.teardown(() => seen.close())
  await seen.register(jwtRevocation, { jwks, audience: AUDIENCE, issuer: ISSUER })
  seen.get('/auth', async (req) => ({ binding: req.auth!.binding, confirmation: req.auth!.confirmation }))
  const auth = await seen.inject({ url: '/auth', headers: { authorization: `DPoP ${token}`, dpop: await proof(h, { token, htu: 'http://localhost/auth' }) } })
  t.same(auth.json(), { binding: 'dpop', confirmation: { jkt: h.jkt } })
  const plain = await sign(issuerKey)
  t.same((await seen.inject({ url: '/auth', headers: bearer(plain) })).json(), { binding: null, confirmation: null })
  t.equal((await app.inject({ url: '/orders', headers: await dpopHeaders(h, token) })).statusCode, 200, 'a second proof for the cached token')
})

t.test('every check of RFC 9449 §4.3 refuses on its own: 401 invalid_dpop_proof on the DPoP challenge', async (t) => {
  const app = await dpopApp(t)
  const h = await holder()
  const other = await holder()
  const token = await boundToken(h)
  const now = Math.floor(Date.now() / 1000)
  const { privateKey: hmacKey } = { privateKey: new TextEncoder().encode('a-shared-secret-that-is-32-bytes!!') as unknown as CryptoKey }
  const cases: Array<[string, Record<string, string | string[]>, string]> = [
    ['no DPoP header', { authorization: `DPoP ${token}` }, 'Send exactly one DPoP proof header'],
    ['two DPoP headers', { authorization: `DPoP ${token}`, dpop: [await proof(h, { token }), await proof(h, { token })] }, 'Send exactly one DPoP proof header'],
    ['not a JWS', { authorization: `DPoP ${token}`, dpop: 'not-a-proof' }, 'The DPoP proof is malformed'],
    ['typ is not dpop+jwt', await dpopHeaders(h, token, { header: { typ: 'JWT' } }), 'The DPoP proof has an unexpected type'],
    ['symmetric alg', { authorization: `DPoP ${token}`, dpop: await new SignJWT({ htm: 'GET', htu: URL_ORDERS, iat: now, jti: randomUUID(), ath: ath(token) }).setProtectedHeader({ typ: 'dpop+jwt', alg: 'HS256', jwk: h.jwk } as { alg: string }).sign(hmacKey) }, 'The DPoP proof is signed with an algorithm that is not allowed'],
    ['no jwk', await dpopHeaders(h, token, { header: { jwk: undefined } }), 'The DPoP proof lacks its public key'],
    ['a private jwk', await dpopHeaders(h, token, { header: { jwk: { ...(await exportJWK(h.privateKey)) } } }), 'The DPoP proof key must be a public key'],
    ['signed by another key', await dpopHeaders(h, token, { signer: other.privateKey }), 'The DPoP proof signature is invalid'],
    ['another method', await dpopHeaders(h, token, { htm: 'POST' }), 'The DPoP proof is for another method'],
    ['another path', await dpopHeaders(h, token, { htu: 'http://localhost/orders/1' }), 'The DPoP proof is for another URL'],
    ['another host', await dpopHeaders(h, token, { htu: 'http://evil.test/orders' }), 'The DPoP proof is for another URL'],
    ['another scheme', await dpopHeaders(h, token, { htu: 'https://localhost/orders' }), 'The DPoP proof is for another URL'],
    ['no htu', await dpopHeaders(h, token, { claims: { htu: undefined } }), 'The DPoP proof lacks a required claim'],
    ['no jti', await dpopHeaders(h, token, { claims: { jti: undefined } }), 'The DPoP proof lacks a required claim'],
    ['a jti with a NUL', await dpopHeaders(h, token, { jti: 'a\u0000b' }), 'The DPoP proof has an invalid jti'],
    ['a jti too long', await dpopHeaders(h, token, { jti: 'x'.repeat(257) }), 'The DPoP proof has an invalid jti'],
    ['nbf in the future', await dpopHeaders(h, token, { claims: { nbf: now + 600 } }), 'The DPoP proof has an invalid claim'],
    ['iat too old', await dpopHeaders(h, token, { iat: now - 120 }), 'The DPoP proof is outside its time window'],
    ['iat in the future', await dpopHeaders(h, token, { iat: now + 120 }), 'The DPoP proof is outside its time window'],
    ['no ath', await dpopHeaders(h, token, { token: null }), 'The DPoP proof is not for this access token'],
    ['ath of another token', { authorization: `DPoP ${token}`, dpop: await proof(h, { token: await boundToken(h) }) }, 'The DPoP proof is not for this access token'],
  ]
  for (const [name, headers, description] of cases) {
    const res = await app.inject({ url: '/orders', headers })
    t.equal(res.statusCode, 401, name)
    t.equal(res.json().code, 'FST_JWT_REVOCATION_INVALID_DPOP_PROOF', name)
    t.equal(res.headers['www-authenticate'], `Bearer realm="api", DPoP algs="ES256 EdDSA RS256 PS256", error="invalid_dpop_proof", error_description="${description}"${SCOPE}`, name)
  }
})

t.test('htu is compared after RFC 3986 normalisation, without query and fragment', async (t) => {
  t.equal(normalizeHttpUri('HTTPS://API.Example.COM:443/a/./b/../c/%7euser?q=1#f'), 'https://api.example.com/a/c/~user')
  t.equal(normalizeHttpUri('http://x.test:8080/%2f'), 'http://x.test:8080/%2F')
  t.equal(normalizeHttpUri('ftp://x.test/'), null)
  t.equal(normalizeHttpUri('not a url'), null)
  const app = await dpopApp(t)
  const h = await holder()
  const token = await boundToken(h)
  const res = await app.inject({ url: '/orders?page=2', headers: await dpopHeaders(h, token, { htu: 'HTTP://LOCALHOST/./orders#top' }) })
  t.equal(res.statusCode, 200, res.body)
})

t.test('the token must be bound to the proof key: invalid_token on the DPoP challenge', async (t) => {
  const app = await dpopApp(t)
  const h = await holder()
  const thief = await holder()
  const token = await boundToken(h)
  const stolen = await app.inject({ url: '/orders', headers: await dpopHeaders(thief, token) })
  t.equal(stolen.statusCode, 401)
  t.equal(stolen.headers['www-authenticate'], 'Bearer realm="api", DPoP algs="ES256 EdDSA RS256 PS256", error="invalid_token", error_description="The token is not bound to the key of the DPoP proof"' + SCOPE)
  const unbound = await sign(issuerKey)
  const plain = await app.inject({ url: '/orders', headers: await dpopHeaders(h, unbound) })
  t.equal(plain.statusCode, 401, 'an unbound token is not a DPoP token')
  t.equal(plain.json().code, 'FST_JWT_REVOCATION_INVALID_TOKEN')
  t.equal((await app.inject({ url: '/orders', headers: await dpopHeaders(h, token) })).statusCode, 200, 'the holder is admitted')
  // Now the token is in the verified-token cache: the Bearer hit path must still refuse it.
  const downgrade = await app.inject({ url: '/orders', headers: bearer(token) })
  t.equal(downgrade.statusCode, 401, 'sent as Bearer after being cached')
  t.equal(downgrade.headers['www-authenticate'], 'Bearer realm="api", error="invalid_token", error_description="The token is bound to a key and this request does not prove it"' + SCOPE + DPOP_CHALLENGE)
  const thiefAgain = await app.inject({ url: '/orders', headers: await dpopHeaders(thief, token) })
  t.equal(thiefAgain.statusCode, 401, 'another key, cached token')
})

t.test('a cnf written with an escape binds the token, whatever JSON the process parsed before (nodejs/node#63785)', async (t) => {
  const app = await dpopApp(t)
  const h = await holder()
  const now = Math.floor(Date.now() / 1000)
  // V8's misread follows object shapes: a first claim no other test writes keeps these payloads apart.
  const payloadText = (member: string) => `{"nodejs-63785":"dpop","iss":"${ISSUER}","aud":"${AUDIENCE}","scope":"read:orders","iat":${now},"exp":${now + 600},${member}}`
  const issue = (text: string) => new CompactSign(new TextEncoder().encode(text)).setProtectedHeader({ alg: 'ES256', kid: issuerKey.kid }).sign(issuerKey.privateKey)
  // Any token can set the trap: here a plain one with a claim named cn\.
  const primer = await issue(payloadText('"cn\\\\":1'))
  t.equal((await app.inject({ url: '/orders', headers: bearer(primer) })).statusCode, 200, 'a token with a claim named cn\\ is a plain Bearer token')
  const boundText = payloadText(`"cn\\u0066":{"jkt":"${h.jkt}"}`)
  const bound = await issue(boundText)
  const misread = !Object.hasOwn(JSON.parse(boundText), 'cnf')
  t.comment(`this runtime (Node ${process.version}) ${misread ? 'misreads' : 'reads'} "cn\\u0066" ${misread ? 'as cn\\' : 'right'}`)
  const unreadable = 'The token has duplicate or unreadable member names'
  const asBearer = await app.inject({ url: '/orders', headers: bearer(bound) })
  t.equal(asBearer.statusCode, 401, 'the bound token sent as Bearer is refused')
  t.equal(asBearer.headers['www-authenticate'], `Bearer realm="api", error="invalid_token", error_description="${misread ? unreadable : 'The token is bound to a key and this request does not prove it'}"` + SCOPE + DPOP_CHALLENGE)
  const withProof = await app.inject({ url: '/orders', headers: await dpopHeaders(h, bound) })
  t.equal(withProof.statusCode, misread ? 401 : 200, misread ? 'refused with its proof too: the runtime cannot read it' : 'admitted with its proof')
  if (misread) t.match(withProof.headers['www-authenticate'], `error_description="${unreadable}"`)
  t.equal((await app.inject({ url: '/orders', headers: await dpopHeaders(h, await boundToken(h)) })).statusCode, 200, 'a cnf written plainly is read on any runtime')
})

t.test('a proof is accepted once: a replay is refused, here and on another instance sharing the store', async (t) => {
  const store = new MemoryStore()
  const first = await dpopApp(t, { store })
  const second = await dpopApp(t, { store })
  const h = await holder()
  const token = await boundToken(h)
  const headers = await dpopHeaders(h, token)
  t.equal((await first.inject({ url: '/orders', headers })).statusCode, 200)
  const replay = await first.inject({ url: '/orders', headers })
  t.equal(replay.statusCode, 401)
  t.equal(replay.json().message, 'The DPoP proof has been used before')
  t.match(replay.headers['www-authenticate'], /DPoP algs="[^"]+", error="invalid_dpop_proof"/)
  t.equal((await second.inject({ url: '/orders', headers })).statusCode, 401, 'the other instance refuses it too')
})

async function sharedStoreReplay (t: Test, makeStore: () => RevocationStore) {
  const first = await dpopApp(t, { store: makeStore() })
  const second = await dpopApp(t, { store: makeStore() })
  const h = await holder()
  const token = await boundToken(h)
  const headers = await dpopHeaders(h, token)
  t.equal((await first.inject({ url: '/orders', headers })).statusCode, 200)
  const replay = await second.inject({ url: '/orders', headers })
  t.equal(replay.statusCode, 401, 'a proof used on one instance is refused on another')
  t.equal(replay.json().code, 'FST_JWT_REVOCATION_INVALID_DPOP_PROOF')
  t.equal((await second.inject({ url: '/orders', headers: await dpopHeaders(h, token) })).statusCode, 200, 'a fresh proof passes there')
}

t.test('two instances on one Redis refuse each other\'s proofs', async (t) => {
  const client = await connectRedis(t)
  if (!client) return
  const prefix = `{${uniqueName('dpop')}}:`
  t.teardown(() => deleteKeys(client, prefix))
  await sharedStoreReplay(t, () => new RedisStore({ client, prefix }))
  t.ok((await client.keys(`${prefix.replace(/[{}]/g, '\\$&')}claim:*`)).length > 0, 'claims live under the store prefix')
})

t.test('two instances on one PostgreSQL refuse each other\'s proofs', async (t) => {
  const pool = await connectPostgres(t)
  if (!pool) return
  const tablePrefix = `${uniqueName('dpop')}_`.toLowerCase()
  t.teardown(async () => {
    for (const table of ['schema', 'tokens', 'clients', 'subjects', 'sessions', 'grants', 'leases', 'claims']) await pool.query(`DROP TABLE IF EXISTS ${tablePrefix}${table}`)
  })
  await sharedStoreReplay(t, () => new PostgresStore({ pool, tablePrefix }))
  const store = new PostgresStore({ pool, tablePrefix })
  await store.claimOnce('expired', Date.now() - 1)
  await store.purgeExpired(Date.now())
  const { rows } = await pool.query(`SELECT count(*)::int AS n FROM ${tablePrefix}claims WHERE expires_at <= $1`, [Date.now()])
  t.equal(rows[0].n, 0, 'expired claims are swept')
})

t.test('a store without claimOnce: one warning at boot, replays refused within the process', async (t) => {
  const lines: string[] = []
  const memory = new MemoryStore()
  const store: RevocationStore = {
    lookup: (q) => memory.lookup(q),
    revokeToken: (e) => memory.revokeToken(e),
    listRevokedTokens: (f) => memory.listRevokedTokens(f),
    revokeClient: (e) => memory.revokeClient(e),
    revokeSubject: (e) => memory.revokeSubject(e),
  }
  const app = Fastify({ logger: { level: 'warn', stream: { write: (line: string) => { lines.push(line) } } } })
  t.teardown(() => app.close())
  await app.register(jwtRevocation, { jwks, audience: AUDIENCE, issuer: ISSUER, store })
  app.get('/orders', async () => ({ ok: true }))
  await app.ready()
  t.equal(lines.filter((l) => l.includes('no claimOnce()')).length, 1, 'warned once')
  const h = await holder()
  const token = await boundToken(h)
  const headers = await dpopHeaders(h, token)
  t.equal((await app.inject({ url: '/orders', headers })).statusCode, 200)
  t.equal((await app.inject({ url: '/orders', headers })).statusCode, 401)
  t.equal(lines.filter((l) => l.includes('no claimOnce()')).length, 1, 'not per request')
})

t.test('store down: the replay check follows onStoreError', async (t) => {
  const failing = () => {
    const store = new MemoryStore()
    store.claimOnce = async () => { throw new Error('connection refused') }
    return store
  }
  const denied = await dpopApp(t, { store: failing(), storeTimeout: 200 })
  const h = await holder()
  const token = await boundToken(h)
  const res = await denied.inject({ url: '/orders', headers: await dpopHeaders(h, token) })
  t.equal(res.statusCode, 503)
  t.equal(res.json().code, 'FST_JWT_REVOCATION_UNAVAILABLE')
  t.equal(res.headers['retry-after'], '5')
  t.notMatch(res.body, /connection refused/, 'the driver error is not echoed')
  const allowed = await dpopApp(t, { store: failing(), storeTimeout: 200, onStoreError: 'allow' })
  const headers = await dpopHeaders(h, token)
  t.equal((await allowed.inject({ url: '/orders', headers })).statusCode, 200, "'allow' lets it through…")
  t.equal((await allowed.inject({ url: '/orders', headers })).statusCode, 401, '…still refusing a replay this process has seen')
})

t.test('required: unbound tokens and Bearer requests are refused; per route with config.auth.dpop', async (t) => {
  const everywhere = await dpopApp(t, { dpop: { required: true } })
  const h = await holder()
  const plain = await everywhere.inject({ url: '/orders', headers: bearer(await sign(issuerKey)) })
  t.equal(plain.statusCode, 401)
  t.equal(plain.headers['www-authenticate'], 'Bearer realm="api", error="invalid_token", error_description="This route requires a DPoP-bound token"' + SCOPE + DPOP_CHALLENGE)
  const token = await boundToken(h)
  t.equal((await everywhere.inject({ url: '/orders', headers: await dpopHeaders(h, token) })).statusCode, 200)

  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(jwtRevocation, { jwks, audience: AUDIENCE, issuer: ISSUER })
  app.get('/payments', { config: { auth: { dpop: 'required' } } }, async () => ({ ok: true }))
  app.get('/orders', async () => ({ ok: true }))
  const unbound = await sign(issuerKey)
  t.equal((await app.inject({ url: '/orders', headers: bearer(unbound) })).statusCode, 200, 'other routes take Bearer tokens')
  t.equal((await app.inject({ url: '/payments', headers: bearer(unbound) })).statusCode, 401, 'the route requires DPoP')
  t.equal((await app.inject({ url: '/payments', headers: await dpopHeaders(h, token, { htu: 'http://localhost/payments' }) })).statusCode, 200)
})

t.test('dpop: false answers the DPoP scheme like an unknown scheme', async (t) => {
  const app = await dpopApp(t, { dpop: false })
  const h = await holder()
  const token = await boundToken(h)
  const res = await app.inject({ url: '/orders', headers: await dpopHeaders(h, token) })
  t.equal(res.statusCode, 401)
  t.equal(res.json().code, 'FST_JWT_REVOCATION_TOKEN_MISSING')
  t.equal(res.headers['www-authenticate'], 'Bearer realm="api"' + SCOPE, 'no DPoP challenge')
  t.equal((await app.inject({ url: '/orders', headers: bearer(token) })).statusCode, 401, 'and a bound token is still not a Bearer token')
})

t.test('proof algorithms: the asymmetric ones among `algorithms`, or dpop.algorithms', async (t) => {
  const onlyEs = await dpopApp(t, { algorithms: ['ES256'] })
  const res = await onlyEs.inject({ url: '/orders' })
  t.equal(res.headers['www-authenticate'], 'Bearer realm="api"' + SCOPE + ', DPoP algs="ES256"')
  const ed = await holder('EdDSA')
  const token = await boundToken(ed)
  t.equal((await onlyEs.inject({ url: '/orders', headers: await dpopHeaders(ed, token) })).json().message, 'The DPoP proof is signed with an algorithm that is not allowed')
  const withEd = await dpopApp(t, { algorithms: ['ES256'], dpop: { algorithms: ['EdDSA', 'PS256'] } })
  t.equal((await withEd.inject({ url: '/orders', headers: await dpopHeaders(ed, token) })).statusCode, 200)
  const rsa = await holder('PS256')
  t.equal((await withEd.inject({ url: '/orders', headers: await dpopHeaders(rsa, await boundToken(rsa)) })).statusCode, 200)
})

t.test('nonces: use_dpop_nonce with a DPoP-Nonce, then accepted; every DPoP answer carries one', async (t) => {
  const secret = 'a-nonce-secret-shared-by-every-instance!'
  const app = await dpopApp(t, { dpop: { nonce: { secret } } })
  const peer = await dpopApp(t, { dpop: { nonce: { secret } } })
  const stranger = await dpopApp(t, { dpop: { nonce: true } })
  const h = await holder()
  const token = await boundToken(h)
  const first = await app.inject({ url: '/orders', headers: await dpopHeaders(h, token) })
  t.equal(first.statusCode, 401)
  t.equal(first.headers['www-authenticate'], 'Bearer realm="api", DPoP algs="ES256 EdDSA RS256 PS256", error="use_dpop_nonce", error_description="The DPoP proof must carry the nonce this server provides"' + SCOPE)
  const nonce = first.headers['dpop-nonce'] as string
  t.match(nonce, /^[A-Za-z0-9_-]{43}$/)
  const ok = await app.inject({ url: '/orders', headers: await dpopHeaders(h, token, { nonce }) })
  t.equal(ok.statusCode, 200)
  t.equal(ok.headers['dpop-nonce'], nonce, 'the success answer carries the current nonce')
  t.equal((await peer.inject({ url: '/orders', headers: await dpopHeaders(h, token, { nonce }) })).statusCode, 200, 'an instance with the same secret accepts it')
  const elsewhere = await stranger.inject({ url: '/orders', headers: await dpopHeaders(h, token, { nonce }) })
  t.equal(elsewhere.statusCode, 401, 'an instance with its own secret does not')
  t.not(elsewhere.headers['dpop-nonce'], nonce)
  const badProof = await app.inject({ url: '/orders', headers: { authorization: `DPoP ${token}`, dpop: 'x.y.z' } })
  t.equal(badProof.headers['dpop-nonce'], nonce, 'a refusal carries it too')
  t.equal((await app.inject({ url: '/orders', headers: bearer(await sign(issuerKey)) })).headers['dpop-nonce'], undefined, 'a Bearer answer does not')
})

t.test('nonce windows: the current and the previous window are accepted, older ones not', async (t) => {
  const windows = new NonceWindows(Buffer.alloc(32, 7), 60_000)
  const at = 1_700_000_000_000
  const nonce = windows.issue(at)
  t.equal(windows.issue(at + 1000), nonce, 'stable within a window')
  t.ok(windows.accepts(nonce, at + 30_000))
  t.ok(windows.accepts(nonce, at + 60_000), 'accepted in the next window')
  t.notOk(windows.accepts(nonce, at + 180_000), 'refused two windows later')
  t.notOk(windows.accepts(undefined, at))
  t.notOk(windows.accepts(nonce.slice(1), at))
  t.not(new NonceWindows(Buffer.alloc(32, 8), 60_000).issue(at), nonce, 'another secret, another nonce')
})

t.test('the URL a proof names: publicUrl, or the host and scheme Fastify sees (trustProxy)', async (t) => {
  const h = await holder()
  const token = await boundToken(h)
  const behind = await dpopApp(t, { publicUrl: 'https://api.example.com/shop/' })
  t.equal((await behind.inject({ url: '/orders', headers: await dpopHeaders(h, token, { htu: 'https://api.example.com/shop/orders' }) })).statusCode, 200, 'publicUrl plus the path')
  t.equal((await behind.inject({ url: '/orders', headers: await dpopHeaders(h, token) })).statusCode, 401, 'the internal URL is not the one clients call')

  const forwarded = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'api.example.com', 'x-forwarded-for': '203.0.113.9' }
  const trusting = Fastify({ trustProxy: '127.0.0.1' })
  t.teardown(() => trusting.close())
  await trusting.register(jwtRevocation, { jwks, audience: AUDIENCE, issuer: ISSUER })
  trusting.get('/orders', async () => ({ ok: true }))
  const viaProxy = await trusting.inject({ url: '/orders', remoteAddress: '127.0.0.1', headers: { ...forwarded, ...await dpopHeaders(h, token, { htu: 'https://api.example.com/orders' }) } })
  t.equal(viaProxy.statusCode, 200, 'a trusted proxy names the external URL')
  const direct = await trusting.inject({ url: '/orders', remoteAddress: '198.51.100.7', headers: { ...forwarded, ...await dpopHeaders(h, token, { htu: 'https://api.example.com/orders' }) } })
  t.equal(direct.statusCode, 401, 'a client that connects directly cannot choose the URL')
})

t.test('bad options fail ready() naming the option', async (t) => {
  const base = { jwks, audience: AUDIENCE }
  t.match((await readyError({ ...base, dpop: { requried: true } })).message, /"dpop.requried" is not known; did you mean dpop.required\?/)
  t.match((await readyError({ ...base, dpop: { algorithms: ['HS256'] } })).message, /"dpop.algorithms" contains "HS256"/)
  t.match((await readyError({ ...base, dpop: { nonce: { secret: 'short' } } })).message, /"dpop.nonce.secret" must be at least 32 bytes/)
  t.match((await readyError({ ...base, dpop: { proofMaxAge: 'soon' } })).message, /"dpop.proofMaxAge"/)
  t.match((await readyError({ ...base, dpop: 'yes' })).message, /"dpop" must be true, false or/)
  t.match((await readyError({ ...base, mtls: { header: 'bad header' } })).message, /"mtls.header" must be a header name/)
  t.match((await readyError({ ...base, mtls: { headr: 'x' } })).message, /"mtls.headr" is not known; did you mean mtls.header\?/)
  t.match((await readyError({ ...base, publicUrl: 'https://api.example.com/?q=1' })).message, /"publicUrl" must be an http or https URL without query/)
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(jwtRevocation, { ...base, dpop: false })
  t.throws(() => app.get('/x', { config: { auth: { dpop: 'required' } } }, async () => ({})), /config.auth.dpop of route \/x" needs the plugin option "dpop" on/)
  t.throws(() => app.get('/y', { config: { auth: { dpop: 'yes' as 'required' } } }, async () => ({})), /must be 'required'/)
})

t.test('the replay cache is written only for a verified token bound to the proof key', async (t) => {
  const store = new MemoryStore()
  const keys: string[] = []
  const claimOnce = store.claimOnce.bind(store)
  store.claimOnce = (key, expiresAt) => { keys.push(key); return claimOnce(key, expiresAt) }
  const app = await dpopApp(t, { store })
  const h = await holder()
  const forger = await makeKey('ES256')
  const forged = await sign(forger, { cnf: { jkt: h.jkt } })
  t.equal((await app.inject({ url: '/orders', headers: await dpopHeaders(h, forged) })).statusCode, 401, 'a token the issuer did not sign')
  t.equal((await app.inject({ url: '/orders', headers: await dpopHeaders(h, await boundToken(await holder())) })).statusCode, 401, "a token bound to someone else's key")
  t.equal(keys.length, 0, 'nothing was claimed')
  const headers = await dpopHeaders(h, await boundToken(h))
  t.equal((await app.inject({ url: '/orders', headers })).statusCode, 200)
  t.same(keys, [`${h.jkt}:${JSON.parse(Buffer.from(headers.dpop.split('.')[1]!, 'base64url').toString()).jti}`], 'claimed by key and jti')
})

t.test('an in-process store claims without a promise, yet a claimOnce wrapped after boot is still asked', async (t) => {
  const store = new MemoryStore()
  const app = await dpopApp(t, { store })
  const h = await holder()
  const token = await boundToken(h)
  const headers = await dpopHeaders(h, token)
  t.equal((await app.inject({ url: '/orders', headers })).statusCode, 200)
  t.equal((await app.inject({ url: '/orders', headers })).statusCode, 401, 'the in-memory claim refuses a replay')
  const keys: string[] = []
  const claimOnce = store.claimOnce.bind(store)
  store.claimOnce = (key, expiresAt) => { keys.push(key); return claimOnce(key, expiresAt) }
  const next = await dpopHeaders(h, token)
  t.equal((await app.inject({ url: '/orders', headers: next })).statusCode, 200)
  t.equal(keys.length, 1, 'the wrapper installed after boot took the claim')
  store.claimOnce = async () => false
  t.equal((await app.inject({ url: '/orders', headers: await dpopHeaders(h, token) })).statusCode, 401, "the wrapper's answer is the answer")
})

t.test('the in-process claims are bounded: expired ones go first, then the oldest', async (t) => {
  const claims = new BoundedClaims(3)
  const now = 1_000_000
  t.ok(claims.claimOnce('a', now + 10, now))
  t.notOk(claims.claimOnce('a', now + 10, now), 'a replay')
  t.ok(claims.claimOnce('a', now + 30, now + 11), 'free again once expired')
  t.ok(claims.claimOnce('b', now + 50, now + 11))
  t.ok(claims.claimOnce('c', now + 60, now + 11))
  t.ok(claims.claimOnce('d', now + 70, now + 12), 'full: room is made')
  t.equal(claims.size, 3, 'never more than its bound')
  t.notOk(claims.claimOnce('d', now + 70, now + 12), 'the newest is kept')
  t.notOk(claims.claimOnce('c', now + 70, now + 12))
})
