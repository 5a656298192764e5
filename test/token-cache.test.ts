import t from 'tap'
import { TokenCache, type TokenRecord } from '../src/token-cache.js'

function record (jti: string | undefined, clientId: string | null, subject: string | null, aud = 'a'): TokenRecord {
  return {
    header: { alg: 'HS256' },
    payload: jti === undefined ? {} : { jti },
    audiences: [aud],
    clientId,
    subject,
    tokenScopes: [],
    scopes: [],
    revokedReason: null,
    grantDenied: false,
    state: null,
    checkedAt: 0,
    pending: null,
  }
}

t.test('a change finds exactly the cached tokens it concerns', async (t) => {
  const cache = new TokenCache(100)
  const r1 = record('j1', 'c1', 's1')
  const r2 = record('j2', 'c1', 's2')
  const r3 = record('j3', 'c2', 's1', 'b')
  cache.set('t1', r1, 60_000)
  cache.set('t2', r2, 60_000)
  cache.set('t3', r3, 60_000)
  t.same([...cache.affected({ type: 'token', aud: 'a', jti: 'j1' })], [r1])
  t.same([...cache.affected({ type: 'token', aud: 'b', jti: 'j1' })], [], 'the audience must match')
  t.same(new Set(cache.affected({ type: 'client', clientId: 'c1' })), new Set([r1, r2]))
  t.same([...cache.affected({ type: 'grant', clientId: 'c2' })], [r3])
  t.same(new Set(cache.affected({ type: 'subject', subject: 's1' })), new Set([r1, r3]))
  t.equal([...cache.affected({ type: 'reset' })].length, 3)
})

t.test('evicted and replaced tokens leave the indexes', async (t) => {
  const cache = new TokenCache(2)
  const r1 = record('j1', 'c1', 's1')
  cache.set('t1', r1, 60_000)
  cache.set('t2', record('j2', 'c2', 's2'), 60_000)
  cache.set('t3', record('j3', 'c3', 's3'), 60_000)
  t.equal(cache.size, 2)
  t.same([...cache.affected({ type: 'client', clientId: 'c1' })], [], 'the evicted token is no longer indexed')
  const replacement = record('j2', 'c2', 's2')
  cache.set('t2', replacement, 60_000)
  t.same([...cache.affected({ type: 'token', aud: 'a', jti: 'j2' })], [replacement], 'a replaced record is unindexed')
})
