// A V8 Map holds at most 2^24 keys and throws a RangeError past that. MemoryStore and
// FileStore keep every entry in Maps, so they refuse a bound they could not hold, and a
// state that would outgrow a Map refuses the write with a StoreError naming the limit.
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { FileStore, MemoryStore } from '../../src/index.js'
import { MAP_CAPACITY, StoreState, type StoreOperation } from '../../src/stores/state.js'

const AUD = 'api'
const NEVER = null
const tooMany = /16,777,216 entries.*RedisStore or PostgresStore/

t.test('MemoryStore and FileStore refuse a maxEntries past what a V8 Map holds, naming the limit', async (t) => {
  t.equal(MAP_CAPACITY, 16_777_216)
  t.throws(() => new MemoryStore({ maxEntries: 2 ** 24 + 1 }), { name: 'TypeError', message: tooMany })
  t.throws(() => new FileStore({ path: join(tmpdir(), 'never-opened'), maxEntries: 2 ** 24 + 1 }), { name: 'TypeError', message: tooMany })
  t.throws(() => new MemoryStore({ logMaxEntries: 2 ** 24 + 1 }), { name: 'TypeError', message: /logMaxEntries 16777217 .*16,777,216/ })
  t.doesNotThrow(() => new MemoryStore({ maxEntries: 2 ** 24 }), 'the limit itself is accepted')
  t.throws(() => new MemoryStore({ maxEntries: 0 }), /maxEntries must be a positive integer/)
})

t.test('live writes past what a Map holds are refused with a StoreError, whatever maxEntries says', async (t) => {
  const state = new StoreState(Number.MAX_SAFE_INTEGER, 3)
  const now = Date.now()
  for (const jti of ['a', 'b', 'c']) {
    state.ensureRoom(now)
    state.apply({ op: 'token', entry: { aud: AUD, jti, expiresAt: NEVER } })
  }
  t.throws(() => state.ensureRoom(now), { code: 'FST_JWT_REVOCATION_STORE', message: /full \(3 live entries, the most a V8 Map holds\).*RedisStore or PostgresStore/ })
  t.throws(() => state.ensureRoom(now, 1, 0), { code: 'FST_JWT_REVOCATION_STORE' })
  t.equal(state.lookup({ audiences: [AUD], jti: 'a', includeGrant: false }, now).tokenRevoked, true, 'nothing was evicted')
})

t.test('every Map of the state refuses a key past its capacity with a StoreError, not a RangeError (a log replayed)', async (t) => {
  const ops: Array<(i: number) => StoreOperation> = [
    (i) => ({ op: 'token', entry: { aud: AUD, jti: `j${i}`, expiresAt: NEVER } }),
    (i) => ({ op: 'token', entry: { aud: `aud${i}`, jti: 'j', expiresAt: NEVER } }),
    (i) => ({ op: 'client', entry: { clientId: `c${i}`, audience: AUD, revokedAt: 1, expiresAt: NEVER } }),
    (i) => ({ op: 'subject', entry: { subject: `s${i}`, revokedAt: 1, expiresAt: NEVER } }),
    (i) => ({ op: 'session', entry: { sessionId: `x${i}`, revokedAt: 1, expiresAt: NEVER } }),
    (i) => ({ op: 'grant', grant: { id: `g${i}`, client_id: `c${i}`, audience: AUD, scope: [], created_at: 1 } }),
  ]
  for (const op of ops) {
    const state = new StoreState(Number.MAX_SAFE_INTEGER, 2)
    state.apply(op(0))
    state.apply(op(1))
    state.apply(op(1))
    t.pass('an existing key is replaced at capacity')
    t.throws(() => state.apply(op(2)), { code: 'FST_JWT_REVOCATION_STORE', message: /more entries than a V8 Map can \(2\).*RedisStore or PostgresStore/ }, op(2).op)
  }
})
