import { generateKeyPairSync } from 'node:crypto'
import t from 'tap'
import { hasCanonicalSegments } from '../../src/lib/canonical-segments.js'
import { hasRocaFingerprint, publicKeyProblem } from '../../src/token/key-policy.js'
import { bearer, buildApp, makeKey, sign } from '../helpers/helpers.js'

t.test('canonical base64url segments', async (t) => {
  t.ok(hasCanonicalSegments('eyJhbGciOiJFUzI1NiJ9.e30.AAAA'), 'lengths 4k + 2 and 4k with zero unused bits')
  t.ok(hasCanonicalSegments('QQ.QUI.QUJD'), '"A", "AB", "ABC"')
  t.notOk(hasCanonicalSegments('QR.QUI.QUJD'), 'one byte with non-zero unused bits')
  t.notOk(hasCanonicalSegments('QQ.QUJ.QUJD'), 'two bytes with non-zero unused bits')
  t.notOk(hasCanonicalSegments('QQ.QUI.QUJDR'), 'a length no byte string encodes to')
})

t.test('a verifying token rewritten with non-zero unused bits is refused, the original accepted', async (t) => {
  const key = await makeKey('ES256')
  const app = await buildApp(t, { jwks: { keys: [key.publicJwk] } })
  const token = await sign(key)
  t.equal((await app.inject({ url: '/orders', headers: bearer(token) })).statusCode, 200)
  // An ES256 signature is 64 bytes: 86 characters, the last one with 4 unused bits.
  const last = token.at(-1)!
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
  const variant = token.slice(0, -1) + alphabet[alphabet.indexOf(last) | 1]
  t.not(variant, token)
  t.same(Buffer.from(variant.split('.')[2]!, 'base64url'), Buffer.from(token.split('.')[2]!, 'base64url'), 'same signature bytes')
  const res = await app.inject({ url: '/orders', headers: bearer(variant) })
  t.equal(res.statusCode, 401)
  t.equal(res.json().code, 'FST_JWT_REVOCATION_INVALID_TOKEN')
})

t.test('the ROCA fingerprint: ordinary keys pass, a modulus built like the flawed generator is refused', async (t) => {
  for (let i = 0; i < 3; i++) {
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
    t.equal(publicKeyProblem(publicKey), undefined, `generated key ${i} is accepted`)
  }
  // Residues of 65537 powers for every prime: the shape the flawed generator's primes have.
  const M = [3n, 5n, 7n, 11n, 13n, 17n, 19n, 23n, 29n, 31n, 37n, 41n, 43n, 47n, 53n, 59n, 61n, 67n, 71n, 73n, 79n,
    83n, 89n, 97n, 101n, 103n, 107n, 109n, 113n, 127n, 131n, 137n, 139n, 149n, 151n, 157n, 163n, 167n].reduce((a, b) => a * b)
  const pow = (base: bigint, exp: bigint, mod: bigint) => {
    let result = 1n
    for (let b = base % mod, e = exp; e > 0n; e >>= 1n, b = b * b % mod) if (e & 1n) result = result * b % mod
    return result
  }
  const flawedPrimeLike = (k: bigint, a: bigint) => k * M + pow(65537n, a, M)
  t.ok(hasRocaFingerprint(flawedPrimeLike(12345n, 77n) * flawedPrimeLike(67890n, 1234n)), 'fingerprint found')
  t.notOk(hasRocaFingerprint(flawedPrimeLike(12345n, 77n) * (flawedPrimeLike(67890n, 1234n) + 2n)), 'one factor off the shape: no fingerprint')
})
