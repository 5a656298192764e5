import t from 'tap'
import { MemoryStore } from '../../src/stores/memory.js'
import type { LogPage, RevocationStore } from '../../src/stores/types.js'
import { AUDIENCE, bearer, ISSUER, sign } from '../helpers/helpers.js'
import { instance, key } from '../helpers/propagation.js'

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** The same store seen through a connection that can fail: no feed (only the poll wakes it), readLog rejecting while `failing`. */
function flakyView (store: MemoryStore): RevocationStore & { failing: boolean } {
  const view = Object.create(store, {
    subscribe: { value: undefined },
    readLog: {
      value: async (cursor: string | null, limit: number): Promise<LogPage> => {
        if (view.failing) throw new Error('connection lost')
        return store.readLog(cursor, limit)
      },
    },
  }) as RevocationStore & { failing: boolean }
  view.failing = false
  return view
}

async function token (jti: string): Promise<string> {
  return sign(key, { iss: ISSUER, aud: AUDIENCE, sub: 'user-1', jti, exp: Math.floor(Date.now() / 1000) + 3600 })
}

t.test('two apps on one MemoryStore: a revocation on one reaches the other through the log, no reset', async (t) => {
  const store = new MemoryStore()
  const a = await instance(t, store)
  const b = await instance(t, store)
  const jwt = await token('jti-1')
  t.equal((await b.inject({ url: '/orders', headers: bearer(jwt) })).statusCode, 200, 'cached as valid by b')
  await a.revocation.revokeToken({ jti: 'jti-1' }, { actor: 'alice', reason: 'leaked' })
  await pause(20)
  t.equal((await b.inject({ url: '/orders', headers: bearer(jwt) })).statusCode, 401, 'b refuses it')
  const status = b.revocation.feedStatus()
  t.same([status.connected, status.resets, status.lastResetReason, status.lagMs], [true, 0, null, 0])
  const [entry] = (await b.revocation.history({ jti: 'jti-1' })).entries
  t.same([entry?.type, entry?.actor, entry?.reason, entry?.source], ['token', 'alice', 'leaked', 'api'])
  t.equal(status.cursor, entry?.id, 'b read up to the entry')
})

t.test('a failed read keeps the cursor: after recovery the token is refused and nothing was reset', async (t) => {
  const store = new MemoryStore()
  const a = await instance(t, store)
  const view = flakyView(store)
  const b = await instance(t, view)
  const jwt = await token('jti-2')
  t.equal((await b.inject({ url: '/orders', headers: bearer(jwt) })).statusCode, 200)
  view.failing = true
  await a.revocation.revokeToken({ jti: 'jti-2' })
  await pause(1300)
  t.equal(b.revocation.feedStatus().connected, false, 'the failed read is seen')
  t.equal((await b.inject({ url: '/orders', headers: bearer(jwt) })).statusCode, 200, 'b has not read it yet (its cache holds)')
  view.failing = false
  await pause(1300)
  t.equal((await b.inject({ url: '/orders', headers: bearer(jwt) })).statusCode, 401, 'refused after recovery')
  const status = b.revocation.feedStatus()
  t.same([status.connected, status.resets], [true, 0], 'connected again, nothing reset')
  const health = await b.revocation.health()
  t.match(health.checks.feed, { status: 'up', log: true, resets: 0 })
})

t.test('a log trimmed past the cursor is a gap: one reset, reason gap', async (t) => {
  const store = new MemoryStore({ logMaxEntries: 2 })
  const a = await instance(t, store)
  const view = flakyView(store)
  const b = await instance(t, view)
  view.failing = true
  for (const jti of ['x', 'y', 'z']) await a.revocation.revokeToken({ jti })
  view.failing = false
  await pause(1300)
  const status = b.revocation.feedStatus()
  t.same([status.resets, status.lastResetReason], [1, 'gap'])
})

t.test('history and the author are refused clearly when wrong or when the store keeps no log', async (t) => {
  const store = new MemoryStore()
  const a = await instance(t, store)
  await t.rejects(a.revocation.revokeToken({ jti: 'j' }, { reason: 'x'.repeat(501) }), { code: 'FST_JWT_REVOCATION_INVALID_ARGUMENT' })
  await t.rejects(a.revocation.history({ limit: 501 }), { code: 'FST_JWT_REVOCATION_INVALID_ARGUMENT' })
  const noLog = Object.create(store, { readLog: { value: undefined }, history: { value: undefined } }) as RevocationStore
  const b = await instance(t, noLog)
  await t.rejects(b.revocation.history(), { code: 'FST_JWT_REVOCATION_STORE', message: /keeps no revocation log/ })
  t.same(b.revocation.feedStatus(), { connected: true, cursor: null, lagMs: 0, resets: 0, lastResetReason: null })
})
