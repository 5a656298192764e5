import t from 'tap'
import { TokenCache, type TokenRecord } from '../src/token-cache.js'

function record (token: string, jti: string | undefined, clientId: string | null, subject: string | null, aud = 'a'): TokenRecord {
  return {
    token,
    recheckAt: Infinity,
    binding: null,
    confirmation: null,
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
  const r1 = record('t1', 'j1', 'c1', 's1')
  const r2 = record('t2', 'j2', 'c1', 's2')
  const r3 = record('t3', 'j3', 'c2', 's1', 'b')
  cache.set(r1)
  cache.set(r2)
  cache.set(r3)
  t.same([...cache.affected({ type: 'token', aud: 'a', jti: 'j1' })], [r1])
  t.same([...cache.affected({ type: 'token', aud: 'b', jti: 'j1' })], [], 'the audience must match')
  t.same(new Set(cache.affected({ type: 'client', clientId: 'c1' })), new Set([r1, r2]))
  t.same([...cache.affected({ type: 'grant', clientId: 'c2' })], [r3])
  t.same(new Set(cache.affected({ type: 'subject', subject: 's1' })), new Set([r1, r3]))
  t.equal([...cache.affected({ type: 'reset' })].length, 3)
})

t.test('evicted and replaced tokens leave the indexes', async (t) => {
  const cache = new TokenCache(2)
  const r1 = record('t1', 'j1', 'c1', 's1')
  cache.set(r1)
  cache.set(record('t2', 'j2', 'c2', 's2'))
  cache.set(record('t3', 'j3', 'c3', 's3'))
  t.equal(cache.size, 2)
  t.same([...cache.affected({ type: 'client', clientId: 'c1' })], [], 'the evicted token is no longer indexed')
  const replacement = record('t2', 'j2', 'c2', 's2')
  cache.set(replacement)
  t.same([...cache.affected({ type: 'token', aud: 'a', jti: 'j2' })], [replacement], 'a replaced record is unindexed')
})

t.test('a hit is the exact token: same slot is not enough', async (t) => {
  const cache = new TokenCache(100)
  const signature = 'S'.repeat(40)
  const verified = record(`aaaa.bbbb.${signature}`, 'j1', 'c1', 's1')
  cache.set(verified)
  t.equal(cache.get(`aaaa.bbbb.${signature}`), verified, 'an equal string (another instance) hits')
  t.equal(cache.get(`aaaa.bbbX.${signature}`), undefined, 'same length and signature, other signed bytes: a miss')
  t.equal(cache.get(`Xaaa.bbbb.${signature}`), undefined, 'a difference in the first character: a miss')
  const other = record(`cccc.dddd.${signature}`, 'j2', 'c2', 's2')
  cache.set(other)
  t.equal(cache.get(`cccc.dddd.${signature}`), other, 'a token sharing the slot takes it over')
  t.equal(cache.get(`aaaa.bbbb.${signature}`), undefined, 'and the one it displaced is a miss, never the other record')
  t.same([...cache.affected({ type: 'client', clientId: 'c1' })], [], 'the displaced record left the indexes')
  t.equal(cache.size, 1)
})

t.test('records sharing a jti, client or subject stay indexed one by one', async (t) => {
  const cache = new TokenCache(100)
  const a = record('ta', 'j', 'c', 's')
  const b = record('tb', 'j', 'c', 's', 'b')
  cache.set(a)
  cache.set(b)
  t.same([...cache.affected({ type: 'token', aud: 'b', jti: 'j' })], [b])
  t.same(new Set(cache.affected({ type: 'subject', subject: 's' })), new Set([a, b]))
  cache.set(record('ta', 'j2', 'c2', 's2'))
  t.same([...cache.affected({ type: 'client', clientId: 'c' })], [b], 'the replaced record left the shared entry')
  t.same([...cache.affected({ type: 'token', aud: 'a', jti: 'j' })], [], 'audience a no longer holds jti j')
})
