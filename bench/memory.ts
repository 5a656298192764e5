// Heap kept per entry, each measured in a fresh process with --expose-gc:
//   store N — N revoked jtis in a MemoryStore
//   cache N — an app whose token cache (max N) holds N distinct ES256 tokens (the
//             benchmark's claims), each sent as a real Authorization header would be;
//             measured from before the app exists, so the cache's own arrays count.
//             The fixed cost of an app cancels out between two sizes: bench/run.ts
//             reports (heap(2N) − heap(N)) / N as the bytes of one cached token.
// Prints one JSON line: the growth of RSS and heap, and heap bytes per entry.
import Fastify from 'fastify'
import { exportJWK, generateKeyPair, SignJWT } from 'jose'
import jwtRevocation, { MemoryStore } from 'fastify-jwt-revocation'
import { randomUUID } from 'node:crypto'

// A jti as the admin route receives it: parsed from JSON, so a flat string (randomUUID
// itself returns a concatenation tree that would be measured instead).
const newJti = () => JSON.parse(`"${randomUUID()}"`) as string

const [what = 'store', count = '1000000'] = process.argv.slice(2)
const N = Number(count)
const gc = (globalThis as { gc?: () => void }).gc
if (!gc) throw new Error('run with --expose-gc')
const mb = (n: number) => Math.round(n / 1048576)
const aud = 'https://api.bench'
const WARM = 200
let tokenChars: number | undefined

let measure: () => Promise<unknown>
if (what === 'store') {
  const store = new MemoryStore({ maxEntries: N + 1 })
  const expiresAt = Date.now() + 86_400_000
  measure = async () => {
    for (let i = 0; i < N; i++) await store.revokeToken({ aud, jti: newJti(), expiresAt })
    return store
  }
} else {
  const { privateKey, publicKey } = await generateKeyPair('ES256')
  const jwk = { ...(await exportJWK(publicKey)), kid: 'es256', alg: 'ES256' }
  const sign = () => new SignJWT({ scope: 'read:orders', azp: 'partner' }).setProtectedHeader({ alg: 'ES256', kid: 'es256' })
    .setIssuer('https://issuer.bench/').setAudience(aud).setSubject('partner@clients').setIssuedAt().setExpirationTime('2h').setJti(newJti())
    .sign(privateKey)
  // Warm the code paths in a throwaway app first, so compiled code is not counted.
  const build = async (max: number) => {
    const app = Fastify()
    await app.register(jwtRevocation, { jwks: { keys: [jwk] }, issuer: 'https://issuer.bench/', audience: aud, algorithms: ['ES256'], cache: { max, ttl: 60_000 } })
    app.get('/orders', async () => 'ok')
    await app.ready()
    return async () => {
      const token = await sign()
      tokenChars = token.length
      // The header string is built as the HTTP parser builds it: one flat string.
      const res = await app.inject({ url: '/orders', headers: { authorization: JSON.parse(JSON.stringify(`Bearer ${token}`)) as string } })
      if (res.statusCode !== 200) throw new Error(`token refused: ${res.statusCode}`)
      return app
    }
  }
  const warm = await build(WARM)
  for (let i = 0; i < WARM; i++) await warm()
  measure = async () => {
    const request = await build(N)
    let app
    for (let i = 0; i < N; i++) app = await request()
    return app
  }
}
gc(); gc()
const before = process.memoryUsage()
const kept = await measure()
gc(); gc()
const after = process.memoryUsage()
;(globalThis as { kept?: unknown }).kept = kept
const heap = after.heapUsed - before.heapUsed
process.stdout.write(JSON.stringify({ what, entries: N, rssMB: mb(after.rss - before.rss), heapMB: mb(heap), heapBytes: heap, bytesPerEntry: Math.round(heap / N), tokenChars }) + '\n')
