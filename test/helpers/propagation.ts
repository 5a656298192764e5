// Two app instances on one shared store: a revocation through one is refused by the
// other long before its cache ttl, which only the store's change feed can explain.
import Fastify, { type FastifyInstance } from 'fastify'
import type t from 'tap'
import jwtRevocation, { type RevocationStore } from '../../src/index.js'
import { AUDIENCE, bearer, ISSUER, makeKey, sign } from './helpers.js'

export const key = await makeKey('ES256')
const jwks = { keys: [key.publicJwk] }

export async function instance (t: { teardown: (fn: () => unknown) => void }, store: RevocationStore, extra: Record<string, unknown> = {}): Promise<FastifyInstance> {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(jwtRevocation, { jwks, issuer: ISSUER, audience: AUDIENCE, store, cache: { max: 1000, ttl: 60_000 }, ...extra })
  app.get('/orders', async () => 'ok')
  await app.ready()
  return app
}

// Half the cache ttl: a refusal before then can only have come through the change feed.
const FEED_WINDOW_MS = 30_000

/** Revokes through A, then polls B; returns ms until B refuses (Infinity if not within FEED_WINDOW_MS). */
async function propagation (b: FastifyInstance, revoke: () => Promise<void>, token: string): Promise<number> {
  const started = performance.now()
  await revoke()
  while (performance.now() - started < FEED_WINDOW_MS) {
    if ((await b.inject({ url: '/orders', headers: bearer(token) })).statusCode === 401) return performance.now() - started
    await new Promise((resolve) => setImmediate(resolve))
  }
  return Infinity
}

export async function scenario (t: Tap, makeStore: () => RevocationStore, backend: string): Promise<void> {
  const a = await instance(t, makeStore())
  const b = await instance(t, makeStore())
  const delays: number[] = []
  for (let i = 0; i < 20; i++) {
    const token = await sign(key, { jti: `${backend}-${i}`, sub: `user-${i}`, azp: `client-${i}` })
    t.equal((await b.inject({ url: '/orders', headers: bearer(token) })).statusCode, 200, 'B has the token cached as not revoked')
    const kind = i % 3
    const revoke = kind === 0
      ? () => a.revocation.revokeToken({ jti: `${backend}-${i}`, aud: AUDIENCE })
      : kind === 1 ? () => a.revocation.revokeClient(`client-${i}`) : () => a.revocation.revokeSubject(`user-${i}`)
    delays.push(await propagation(b, revoke, token))
  }
  delays.sort((x, y) => x - y)
  const p50 = delays[Math.floor(delays.length * 0.5)]!
  const max = delays.at(-1)!
  t.ok(Number.isFinite(max), 'every revocation on A was refused by B long before its 60 s cache ttl: the change feed carried it')
  t.comment(`${backend}: propagation A→B p50 ${p50.toFixed(1)} ms, max ${max.toFixed(1)} ms over ${delays.length} revocations`)
}

export type Tap = Pick<typeof t, 'equal' | 'ok' | 'comment' | 'teardown'>
