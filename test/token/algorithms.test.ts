import { createPublicKey, createSecretKey, generateKeyPairSync } from 'node:crypto'
import { exportSPKI, importJWK } from 'jose'
import t from 'tap'
import { bearer, buildApp, makeKey, secretBytes, SECRET, sign } from '../helpers/helpers.js'

for (const alg of ['RS256', 'PS256', 'ES256', 'EdDSA']) {
  t.test(`${alg}: PEM, JWK and KeyObject public keys all verify`, async (t) => {
    const key = await makeKey(alg)
    const pem = await exportSPKI(await importJWK(key.publicJwk, alg) as CryptoKey)
    const sources = { pem, jwk: key.publicJwk, keyObject: createPublicKey(pem) }
    for (const [name, publicKey] of Object.entries(sources)) {
      const app = await buildApp(t, { publicKey, algorithms: [alg] })
      const ok = await app.inject({ url: '/orders', headers: bearer(await sign(key)) })
      t.equal(ok.statusCode, 200, `${alg} via ${name}`)
      const other = await makeKey(alg, key.kid)
      t.equal((await app.inject({ url: '/orders', headers: bearer(await sign(other)) })).statusCode, 401, `${alg} via ${name}: another key is refused`)
    }
  })
}

t.test('a public key defaults to its own family only', async (t) => {
  const es = await makeKey('ES256')
  const app = await buildApp(t, { publicKey: es.publicJwk })
  t.equal((await app.inject({ url: '/orders', headers: bearer(await sign(es)) })).statusCode, 200)
  const rs = await makeKey('RS256')
  t.equal((await app.inject({ url: '/orders', headers: bearer(await sign(rs)) })).statusCode, 401)
})

t.test('HS256 with a secret string, Buffer or KeyObject', async (t) => {
  for (const secret of [SECRET, Buffer.from(SECRET), createSecretKey(Buffer.from(SECRET))]) {
    const app = await buildApp(t, { secret })
    t.equal((await app.inject({ url: '/orders', headers: bearer(await sign(secretBytes)) })).statusCode, 200)
    const forged = await sign(new TextEncoder().encode('another-secret-of-at-least-32-bytes!!'))
    t.equal((await app.inject({ url: '/orders', headers: bearer(forged) })).statusCode, 401)
  }
})

t.test('HS256 signed with the public key as secret is refused (algorithm confusion)', async (t) => {
  const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const pem = publicKey.export({ type: 'spki', format: 'pem' }) as string
  const app = await buildApp(t, { publicKey: pem })
  const confused = await sign(new TextEncoder().encode(pem))
  const res = await app.inject({ url: '/orders', headers: bearer(confused) })
  t.equal(res.statusCode, 401)
  t.match(res.json().message, /algorithm/)
})

t.test('an HMAC secret is imported once, not on every verification', async (t) => {
  // Signed first: signing imports its own key.
  // HS512 is allowed too, so the secret must be 64 bytes at least (RFC 7518 §3.2).
  const secret = SECRET.repeat(2)
  const tokens = await Promise.all(Array.from({ length: 10 }, () => sign(new TextEncoder().encode(secret))))
  const subtle = globalThis.crypto.subtle
  const original = subtle.importKey.bind(subtle)
  let imports = 0
  subtle.importKey = ((...args: Parameters<typeof subtle.importKey>) => { imports++; return original(...args) }) as typeof subtle.importKey
  t.teardown(() => { subtle.importKey = original })
  const app = await buildApp(t, { secret, algorithms: ['HS256', 'HS512'], cache: false })
  for (const token of tokens) t.equal((await app.inject({ url: '/orders', headers: bearer(token) })).statusCode, 200)
  t.equal(imports, 1, 'one import for HS256 across ten distinct tokens')
})
