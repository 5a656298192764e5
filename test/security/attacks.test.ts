// Known JWT attacks (RFC 8725 and its successor draft) and malformed input. Every token
// is built here; each must be refused with 401 invalid_token or 400 invalid_request and
// must never reach the revocation store.
import { createPrivateKey, sign as cryptoSign, type KeyObject } from 'node:crypto'
import { request } from 'node:http'
import { exportJWK, exportSPKI, importJWK, SignJWT } from 'jose'
import t from 'tap'
import { MemoryStore } from '../../src/index.js'
import { AUDIENCE, bearer, buildApp, ISSUER, makeKey, sign, type TestKey } from '../helpers/helpers.js'

const key = await makeKey('ES256', 'key-1')
const rsa = await makeKey('RS256', 'rsa-1')
const attacker = await makeKey('ES256', 'key-1')
const b64 = (text: string) => Buffer.from(text).toString('base64url')
const now = Math.floor(Date.now() / 1000)
const goodClaims = { iss: ISSUER, aud: AUDIENCE, sub: 'partner@clients', azp: 'partner', scope: 'read:orders', iat: now, exp: now + 3600, jti: 'j-1' }

async function privateKeyObject (k: TestKey): Promise<KeyObject> {
  return createPrivateKey({ key: await exportJWK(k.privateKey) as import('node:crypto').JsonWebKey, format: 'jwk' })
}

/** A JWS over exactly these header and payload texts (duplicate keys and all), signed with `k`. */
async function rawJws (headerText: string, payloadText: string, k: TestKey = key): Promise<string> {
  const input = `${b64(headerText)}.${b64(payloadText)}`
  const signature = cryptoSign('sha256', Buffer.from(input), { key: await privateKeyObject(k), dsaEncoding: 'ieee-p1363' })
  return `${input}.${signature.toString('base64url')}`
}

const header = (extra: Record<string, unknown> = {}) => JSON.stringify({ alg: 'ES256', kid: 'key-1', ...extra })
const payload = (extra: Record<string, unknown> = {}) => JSON.stringify({ ...goodClaims, ...extra })

function countingStore (): MemoryStore & { lookups: number } {
  const store = new MemoryStore() as MemoryStore & { lookups: number }
  store.lookups = 0
  const lookup = store.lookup.bind(store)
  store.lookup = async (q) => { store.lookups++; return lookup(q) }
  return store
}

t.test('the attack corpus is refused before the store', async (t) => {
  const store = countingStore()
  const app = await buildApp(t, { jwks: { keys: [key.publicJwk, rsa.publicJwk] }, algorithms: ['ES256'], maxTokenLifetime: '1d', store })
  const valid = await rawJws(header(), payload())
  t.equal((await app.inject({ url: '/orders', headers: bearer(valid) })).statusCode, 200, 'the hand-built token is valid as is')
  const baseline = store.lookups
  const [h, p, s] = valid.split('.') as [string, string, string]
  const rsaPem = await exportSPKI(await importJWK(rsa.publicJwk, 'RS256') as CryptoKey)
  const hmacWith = (secret: string) => new SignJWT(goodClaims).setProtectedHeader({ alg: 'HS256', kid: 'key-1' }).sign(new TextEncoder().encode(secret))

  const corpus: Array<[string, string]> = [
    ['alg none', `${b64('{"alg":"none"}')}.${p}.`],
    ['alg None', `${b64('{"alg":"None"}')}.${p}.`],
    ['alg nOnE with a signature', `${b64('{"alg":"nOnE","kid":"key-1"}')}.${p}.${s}`],
    ['alg none, signature kept', `${b64('{"alg":"none","kid":"key-1"}')}.${p}.${s}`],
    ['HS256 keyed with the public JWK', await hmacWith(JSON.stringify(key.publicJwk))],
    ['HS256 keyed with the RSA public PEM', await hmacWith(rsaPem)],
    ['RS256 outside the allow-list', await sign(rsa)],
    ['embedded jwk of the attacker', await rawJws(header({ jwk: attacker.publicJwk }), payload(), attacker)],
    ['jku to the attacker', await rawJws(header({ jku: 'https://evil.test/jwks.json' }), payload(), attacker)],
    ['x5u to the attacker', await rawJws(header({ x5u: 'https://evil.test/cert.pem' }), payload(), attacker)],
    ['x5c of the attacker', await rawJws(header({ x5c: ['MIIBkTCB+wIJAK'] }), payload(), attacker)],
    ['kid path traversal', await rawJws(header({ kid: '../../../../etc/passwd' }), payload())],
    ['kid SQL-ish', await rawJws(header({ kid: "' OR 1=1 --" }), payload())],
    ['kid 4000 characters', await rawJws(header({ kid: 'k'.repeat(4000) }), payload())],
    ['unknown crit header', await rawJws(header({ crit: ['urn:evil'], 'urn:evil': true }), payload())],
    ['b64: false', await rawJws(header({ b64: false, crit: ['b64'] }), payload())],
    ['JWE (five segments)', `${b64('{"alg":"dir","enc":"A256GCM"}')}..${b64('iv')}.${b64('ciphertext')}.${b64('tag')}`],
    ['nested JWT as payload', await rawJws(header({ cty: 'JWT' }), valid)],
    ['signature stripped', `${h}.${p}.`],
    ['signature truncated', `${h}.${p}.${s.slice(0, -10)}`],
    ['signature of another token', `${h}.${b64(payload({ sub: 'admin' }))}.${s}`],
    ['duplicate alg in header', await rawJws('{"alg":"ES256","kid":"key-1","alg":"ES256"}', payload())],
    ['duplicate aud in payload', await rawJws(header(), payload().replace('{', '{"aud":"https://evil.test",'))],
    ['duplicate key via an escape', await rawJws(header(), payload().replace('{', '{"\\u0061ud":"https://evil.test",'))],
    ['non-base64url characters', `${h}.${p.slice(0, 5)}+/${p.slice(5)}.${s}`],
    ['extra dot at the end', `${valid}.`],
    ['extra dot at the start', `.${valid}`],
    ['empty middle segment', `${h}..${s}`],
    ['exp as a string', await rawJws(header(), payload({ exp: String(now + 3600) }))],
    ['nbf as a string', await rawJws(header(), payload({ nbf: String(now) }))],
    ['iat as a string', await rawJws(header(), payload({ iat: String(now) }))],
    ['exp negative', await rawJws(header(), payload({ exp: -1 }))],
    ['exp a float in the past', await rawJws(header(), payload({ exp: now - 0.5 }))],
    ['exp huge', await rawJws(header(), payload({ exp: 1e15 }))],
    ['iat negative', await rawJws(header(), payload({ iat: -1e9 }))],
    ['iat far in the future (would escape revocation)', await rawJws(header(), payload({ iat: now + 3000, exp: now + 3600 }))],
    ['jti not a string', await rawJws(header(), payload({ jti: 42 }))],
    ['aud array without ours', await rawJws(header(), payload({ aud: ['https://a.test', 'https://b.test'] }))],
    ['permissions not an array', await rawJws(header(), payload({ permissions: 'read:orders' }))],
  ]
  for (const [name, token] of corpus) {
    const res = await app.inject({ url: '/orders', headers: bearer(token) })
    t.ok(res.statusCode === 401 || res.statusCode === 400, `${name}: ${res.statusCode}`)
    t.match(res.headers['www-authenticate'], /error="(invalid_token|invalid_request)"/, `${name}: RFC 6750 error`)
  }
  t.equal(store.lookups, baseline, 'no attack reached the store')

  const malformedHeaders = ['Bearer ' + valid + ' ', 'Bearer  ' + valid, 'Bearer ' + valid.replace('.', '$'), 'Bearer ' + valid + ',x']
  for (const authorization of malformedHeaders) t.equal((await app.inject({ url: '/orders', headers: { authorization } })).statusCode, 400, JSON.stringify(authorization.slice(-12)))
  t.equal(store.lookups, baseline)
})

t.test('escaped member names are read as written: PHP\'s namespaced claims are accepted, a duplicate behind an escape is not', async (t) => {
  const app = await buildApp(t, { jwks: { keys: [key.publicJwk] }, maxTokenLifetime: '1d' })
  // PHP's json_encode escapes every slash unless told not to.
  const php = (text: string) => text.replaceAll('/', '\\/')
  const escapedHeader = php('{"alg":"ES256","kid":"key-1","https://example.com/h":1}')
  const escapedPayload = php(payload({ 'https://example.com/roles': ['admin'] }))
  for (let i = 0; i < 2; i++) {
    const res = await app.inject({ url: '/orders', headers: bearer(await rawJws(escapedHeader, escapedPayload)) })
    t.equal(res.statusCode, 200, `escaped names in header and payload (${i === 0 ? 'first' : 'second'} token of this header)`)
  }
  const hidden = await app.inject({ url: '/orders', headers: bearer(await rawJws(header(), escapedPayload.replace('{', '{"https:\\/\\/example.com\\/roles":[],'))) })
  t.equal(hidden.statusCode, 401, 'the same escaped name twice')
})

t.test('wrong typ, oversize, query-string and doubled headers are refused before the store', async (t) => {
  const store = countingStore()
  const app = await buildApp(t, { jwks: { keys: [key.publicJwk] }, typ: 'at+jwt', maxTokenSize: 1024, store })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as import('node:net').AddressInfo).port
  const valid = await sign(key, {}, { header: { typ: 'at+jwt' } })
  t.equal((await app.inject({ url: '/orders', headers: bearer(await sign(key, {}, { header: { typ: 'JWT' } })) })).statusCode, 401, 'wrong typ')
  t.equal((await app.inject({ url: '/orders', headers: bearer('a'.repeat(1025)) })).statusCode, 400, 'over the size bound')
  t.equal((await app.inject({ url: `/orders?access_token=${valid}` })).statusCode, 400, 'Bearer in the query string')
  const status = await new Promise<number>((resolve, reject) => {
    const req = request({ port, host: '127.0.0.1', path: '/orders', headers: [['Authorization', `Bearer ${valid}`], ['authorization', 'Bearer other']] as never }, (res) => { res.resume(); resolve(res.statusCode!) })
    req.on('error', reject)
    req.end()
  })
  t.equal(status, 400, 'two Authorization headers')
  t.equal(store.lookups, 0)
})

t.test('an admin route flooded with huge or malformed bodies stays healthy', async (t) => {
  const Fastify = (await import('fastify')).default
  const { default: jwtRevocation, adminRoutes } = await import('../../src/index.js')
  const MGMT = 'https://issuer.test/api/v2/'
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(jwtRevocation, { jwks: { keys: [key.publicJwk] }, audience: [AUDIENCE, MGMT] })
  await app.register(adminRoutes, { prefix: '/api/v2', audience: MGMT })
  app.get('/health', { config: { auth: false } }, async () => 'ok')
  const admin = bearer(await sign(key, { aud: MGMT, scope: 'blacklist:tokens create:client_grants' }))
  const bodies = [
    JSON.stringify({ jti: 'x'.repeat(1_000_000) }),
    '{"jti":',
    '[]',
    'null',
    JSON.stringify({ jti: { $gt: '' } }),
    '{"__proto__":{"polluted":true},"jti":"a"}',
    JSON.stringify({ client_id: 'c', audience: 'a', scope: Array.from({ length: 1000 }, (_, i) => `s${i}`) }),
  ]
  const statuses = await Promise.all(Array.from({ length: 140 }, (_, i) => {
    const url = i % 2 ? '/api/v2/blacklists/tokens' : '/api/v2/client-grants'
    return app.inject({ method: 'POST', url, headers: { ...admin, 'content-type': 'application/json' }, payload: bodies[i % bodies.length]! }).then((r) => r.statusCode)
  }))
  t.ok(statuses.every((s) => s === 400 || s === 413), `only 400 and 413: ${[...new Set(statuses)].join(', ')}`)
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'no prototype pollution')
  t.equal((await app.inject({ url: '/health' })).statusCode, 200)
  t.same(await app.revocation.listRevokedTokens(), [], 'nothing was stored')
})
