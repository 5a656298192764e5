// Memory of revoked jtis, each measured in a fresh process with --expose-gc:
//   store N — N revocations in a MemoryStore
//   lru N   — N distinct tokens verified, revoked and cached by the plugin (its LRU)
// Prints one JSON line with the growth of RSS and heap.
import Fastify from 'fastify'
import { SignJWT } from 'jose'
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
const aud = 'https://api.example.com'

gc(); gc()
const before = process.memoryUsage()
let kept: unknown
if (what === 'store') {
  const store = new MemoryStore({ maxEntries: N + 1 })
  const expiresAt = Date.now() + 86_400_000
  for (let i = 0; i < N; i++) await store.revokeToken({ aud, jti: newJti(), expiresAt })
  kept = store
} else {
  const secret = new TextEncoder().encode('a-benchmark-secret-of-at-least-32-bytes')
  const app = Fastify()
  await app.register(jwtRevocation, { secret: 'a-benchmark-secret-of-at-least-32-bytes', audience: aud, cache: { max: N, ttl: 60_000 }, store: new MemoryStore({ maxEntries: N + 1 }) })
  app.get('/', async () => 'ok')
  await app.ready()
  for (let i = 0; i < N; i++) {
    const jti = newJti()
    const token = await new SignJWT({ jti, scope: 'read:orders' }).setProtectedHeader({ alg: 'HS256' }).setAudience(aud).setSubject('partner@clients').setIssuedAt().setExpirationTime('1h').sign(secret)
    await app.revocation.revokeToken({ jti, aud })
    await app.inject({ url: '/', headers: { authorization: `Bearer ${token}` } })
  }
  kept = app
}
gc(); gc()
const after = process.memoryUsage()
;(globalThis as { kept?: unknown }).kept = kept
process.stdout.write(JSON.stringify({ what, entries: N, rssMB: mb(after.rss - before.rss), heapMB: mb(after.heapUsed - before.heapUsed) }) + '\n')
