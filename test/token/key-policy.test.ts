// The key policy (src/token/key-policy.ts), one test per way a key can never be trusted, through
// every key source that can carry it: a static key fails ready(), a remote one is never used.
import Fastify from 'fastify'
import { SignJWT } from 'jose'
import { createPrivateKey, createPublicKey, generateKeyPairSync, type JsonWebKey } from 'node:crypto'
import t from 'tap'
import jwtRevocation from '../../src/index.js'
import { AUDIENCE, bearer, buildApp, ISSUER, json, jwksServer, makeKey, readyError, sign } from '../helpers/helpers.js'

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
const rsaJwk = rsa.privateKey.export({ format: 'jwk' })
const publicRsaJwk = { kty: 'RSA', n: rsaJwk.n!, e: rsaJwk.e! }

// e = 1: the "signature" is the padded hash itself, so this private key is public knowledge.
const exponentOnePublic = { ...publicRsaJwk, e: 'AQ' }
const exponentOnePrivate = createPrivateKey({ key: { ...rsaJwk, e: 'AQ', d: 'AQ', dp: 'AQ', dq: 'AQ' }, format: 'jwk' })

const smallRsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey

async function claimsSignedWith (key: Parameters<SignJWT['sign']>[0], header: { alg: string, kid?: string }, iss = ISSUER): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  return new SignJWT({ iss, aud: AUDIENCE, sub: 'partner-client@clients', scope: 'read:orders', iat: now, exp: now + 600 })
    .setProtectedHeader(header).sign(key)
}

async function refusal (t: { equal: (found: unknown, wanted: unknown) => unknown }, options: Record<string, unknown>): Promise<string> {
  const err = await readyError({ audience: AUDIENCE, issuer: ISSUER, ...options })
  t.equal((err as { code?: string }).code, 'FST_JWT_REVOCATION_INVALID_OPTION')
  return err.message
}

t.test('an RSA key with exponent 1 fails ready() as publicKey (JWK, PEM, KeyObject) and in jwks', async (t) => {
  const publicKey = createPublicKey({ key: exponentOnePublic as JsonWebKey, format: 'jwk' })
  for (const given of [exponentOnePublic, publicKey.export({ format: 'pem', type: 'spki' }), publicKey]) {
    t.match(await refusal(t, { publicKey: given }), /"publicKey" has RSA public exponent 1; it must be odd and at least 3/)
  }
  t.match(await refusal(t, { jwks: { keys: [{ ...exponentOnePublic, kid: 'weak' }] } }),
    /"jwks" holds a key that can never be trusted \(key "weak" has RSA public exponent 1/)
})

t.test('an even RSA exponent fails ready()', async (t) => {
  t.match(await refusal(t, { publicKey: { ...publicRsaJwk, e: 'AQAA' } }), /public exponent 65536; it must be odd/)
})

t.test('an RSA modulus under 2048 bits fails ready() as publicKey and in jwks', async (t) => {
  t.match(await refusal(t, { publicKey: smallRsa }), /"publicKey" is an RSA key of 1024 bits; at least 2048 are required/)
  t.match(await refusal(t, { jwks: { keys: [smallRsa.export({ format: 'jwk' })] } }), /keys\[0\] is an RSA key of 1024 bits/)
})

t.test('an HMAC secret shorter than the hash of any allowed algorithm fails ready()', async (t) => {
  const cases: Array<[number, string[], RegExp]> = [
    [31, ['HS256'], /at least 32 bytes long for HS256 \(it is 31\)/],
    [47, ['HS384'], /at least 48 bytes long for HS384 \(it is 47\)/],
    [63, ['HS512'], /at least 64 bytes long for HS512 \(it is 63\)/],
    [47, ['HS256', 'HS384'], /at least 48 bytes long for HS384/],
    [63, ['HS512', 'HS256'], /at least 64 bytes long for HS512/],
  ]
  for (const [bytes, algorithms, message] of cases) {
    t.match(await refusal(t, { secret: Buffer.alloc(bytes, 7), algorithms }), message, `${bytes} bytes for ${algorithms}`)
  }
})

t.test('an HMAC secret as long as the hash verifies that algorithm', async (t) => {
  for (const [alg, bytes] of [['HS384', 48], ['HS512', 64]] as const) {
    const secret = Buffer.alloc(bytes, 9)
    const app = await buildApp(t, { secret, algorithms: [alg] })
    const res = await app.inject({ url: '/orders', headers: bearer(await claimsSignedWith(secret, { alg })) })
    t.equal(res.statusCode, 200, alg)
  }
})

t.test('a JWK publicKey whose use, key_ops or alg forbids verifying fails ready()', async (t) => {
  const ec = (await makeKey('ES256')).publicJwk
  const { use: _use, alg: _alg, ...bare } = ec
  const cases: Array<[string, Record<string, unknown>, RegExp, string[]?]> = [
    ['use enc', { ...bare, use: 'enc' }, /"publicKey" has "use": "enc"; a verification key needs "sig"/],
    ['key_ops without verify', { ...bare, key_ops: ['encrypt'] }, /"publicKey" has "key_ops" without "verify"/],
    ['key_ops not a list', { ...bare, key_ops: 'verify' }, /"key_ops" without "verify"/],
    ['alg of another curve', { ...bare, alg: 'ES512' }, /"publicKey" has "alg": "ES512", which this key cannot verify \(it can: ES256\)/],
    ['alg that is no JWS algorithm', { ...bare, alg: 'ES224' }, /"alg": "ES224", which this key cannot verify/],
    ['RSA alg RS256, algorithms PS256', { ...publicRsaJwk, alg: 'RS256' }, /"algorithms" contains "PS256", which a key from "publicKey" cannot verify \(allowed: RS256\)/, ['PS256']],
  ]
  for (const [name, publicKey, message, algorithms] of cases) {
    t.match(await refusal(t, { publicKey, ...(algorithms ? { algorithms } : {}) }), message, name)
  }
  t.match(await refusal(t, { publicKey: rsaJwk }), /"publicKey" must be a public key/, 'a private JWK')
  t.match(await refusal(t, { jwks: { keys: [rsaJwk] } }), /"jwks" holds a private key/, 'a private JWK in jwks')
})

t.test('a JWK publicKey verifies the algorithm it names and no other', async (t) => {
  const app = await buildApp(t, { publicKey: { ...publicRsaJwk, alg: 'PS256', use: 'sig', key_ops: ['verify'] } })
  t.equal((await app.inject({ url: '/orders', headers: bearer(await claimsSignedWith(rsa.privateKey, { alg: 'PS256' })) })).statusCode, 200)
  for (const alg of ['RS256', 'PS384']) {
    const res = await app.inject({ url: '/orders', headers: bearer(await claimsSignedWith(rsa.privateKey, { alg })) })
    t.equal(res.statusCode, 401, alg)
  }
})

t.test('a static jwks may hold an encryption key the policy would refuse: jose never selects it to verify', async (t) => {
  const signing = await makeKey('ES256')
  const encryptionOnly = { ...smallRsa.export({ format: 'jwk' }), use: 'enc', kid: 'enc-1' }
  const app = await buildApp(t, { jwks: { keys: [encryptionOnly, signing.publicJwk] } })
  t.equal((await app.inject({ url: '/orders', headers: bearer(await sign(signing)) })).statusCode, 200)
})

for (const source of ['jwksUri', 'issuerBaseURL'] as const) {
  t.test(`${source}: the key of the remote set that breaks the policy never verifies and is logged once; the good one works`, async (t) => {
    const good = await makeKey('ES256', 'good')
    const bad = { ...exponentOnePublic, kid: 'bad', alg: 'RS256', use: 'sig' }
    let base = ''
    const srv = await jwksServer(t, (path, res) => {
      if (path === '/.well-known/openid-configuration') return json(res, { issuer: `${base}/`, jwks_uri: `${base}/jwks.json` })
      json(res, { keys: [bad, good.publicJwk] })
    })
    base = srv.url
    // Discovery supplies the issuer; with jwksUri it is the one configured.
    const issuer = source === 'jwksUri' ? ISSUER : `${base}/`
    const lines: string[] = []
    const app = Fastify({ logger: { level: 'warn', stream: { write: (line: string) => { lines.push(line) } } } })
    t.teardown(() => app.close())
    const keySource = source === 'jwksUri' ? { jwksUri: `${base}/jwks.json`, issuer } : { issuerBaseURL: `${base}/` }
    await app.register(jwtRevocation, { ...keySource, audience: AUDIENCE, cache: false })
    app.get('/orders', async (req) => ({ sub: req.auth!.subject }))
    await app.ready()

    const forged = await claimsSignedWith(exponentOnePrivate, { alg: 'RS256', kid: 'bad' }, issuer)
    for (let i = 0; i < 3; i++) {
      const res = await app.inject({ url: '/orders', headers: bearer(forged) })
      t.equal(res.statusCode, 401, 'a token for the refused key is refused')
      t.equal(res.json().code, 'FST_JWT_REVOCATION_INVALID_TOKEN')
    }
    t.equal((await app.inject({ url: '/orders', headers: bearer(await sign(good, { iss: issuer })) })).statusCode, 200, 'the good key still verifies')
    const warnings = lines.filter((line) => line.includes('never used'))
    t.equal(warnings.length, 1, 'the refused key is logged once, not per token')
    t.match(JSON.parse(warnings[0]!), { kid: 'bad', jwksUri: `${base}/jwks.json`, msg: /RSA public exponent 1; it must be odd and at least 3/ })
    t.notOk(lines.some((line) => line.includes(forged)), 'the token is never logged')
    t.equal(srv.hits.get('/jwks.json'), 1, 'a refused key does not trigger refetching')
  })
}
