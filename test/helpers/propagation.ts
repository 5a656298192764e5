// Two app instances on one shared store: a revocation through one is refused by the
// other long before its cache ttl, which only the store's change feed can explain.
import Fastify, { type FastifyInstance } from 'fastify'
import { decodeJwt } from 'jose'
import type t from 'tap'
import jwtRevocation, { type RevocationStore } from '../../src/index.js'
import { AUDIENCE, bearer, ISSUER, makeKey, refusalsOf, sign } from './helpers.js'

export const key = await makeKey('ES256')
const jwks = { keys: [key.publicJwk] }

export async function instance (t: { teardown: (fn: () => unknown) => void }, store: RevocationStore, extra: Record<string, unknown> = {}): Promise<FastifyInstance> {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(jwtRevocation, { jwks, issuer: ISSUER, audience: AUDIENCE, store, cache: { max: 1000, ttl: 60_000 }, ...extra })
  app.get('/orders', async () => 'ok')
  refusalsOf(app)
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

/**
 * A user logged out of one session through A: B refuses that session's tokens long before
 * its cache ttl, and keeps accepting the user's other session, tokens without `sid` and
 * tokens issued after the logout.
 */
export async function sessionScenario (t: Tap, makeStore: () => RevocationStore, backend: string): Promise<void> {
  const a = await instance(t, makeStore())
  const b = await instance(t, makeStore())
  const now = Math.floor(Date.now() / 1000)
  const [loggedOut, other] = [`${backend}-sid-${process.pid}-${now}-1`, `${backend}-sid-${process.pid}-${now}-2`]
  const user = { sub: `${backend}-user`, azp: 'web-app', iat: now - 120 }
  const tokens = {
    loggedOut: await sign(key, { ...user, sid: loggedOut }),
    otherSession: await sign(key, { ...user, sid: other }),
    noSession: await sign(key, user),
    afterLogout: await sign(key, { ...user, sid: loggedOut, iat: now - 30 }),
  }
  const status = async (app: FastifyInstance, token: string) => (await app.inject({ url: '/orders', headers: bearer(token) })).statusCode
  for (const app of [a, b]) for (const token of Object.values(tokens)) t.equal(await status(app, token), 200, 'cached as not revoked')
  const delay = await propagation(b, () => a.revocation.revokeSession(loggedOut, { revokedAt: (now - 60) * 1000 }), tokens.loggedOut)
  t.ok(Number.isFinite(delay), 'B refused the logged-out session long before its cache ttl: the change feed carried it')
  t.equal(await status(a, tokens.loggedOut), 401, 'A refuses it too')
  for (const app of [a, b]) {
    t.same(refusalsOf(app).at(-1), { reason: 'session', clientId: 'web-app', subject: user.sub, sessionId: loggedOut, jti: decodeJwt(tokens.loggedOut).jti }, "err.revocation.reason is 'session'")
    t.equal(await status(app, tokens.otherSession), 200, "the user's other session is still accepted")
    t.equal(await status(app, tokens.noSession), 200, 'a token without sid is unaffected')
    t.equal(await status(app, tokens.afterLogout), 200, 'a token of the session issued after revokedAt is accepted')
  }
  const fresh = await instance(t, makeStore())
  t.equal(await status(fresh, tokens.loggedOut), 401, 'a new instance reads the rule from the store')
  t.comment(`${backend}: session revocation A→B in ${delay.toFixed(1)} ms`)
}

export type Tap = Pick<typeof t, 'equal' | 'ok' | 'same' | 'comment' | 'teardown'>
