import t from 'tap'
import { createHash } from 'node:crypto'
import { TokenCache, tokenDigest, type TokenRecord } from '../../src/request/token-cache.js'

function record (jti: string | undefined, clientId: string | null, subject: string | null, aud = 'a', sessionId: string | null = null): TokenRecord {
  return {
    recheckAt: Infinity,
    binding: null,
    confirmation: null,
    header: { alg: 'HS256' },
    payload: jti === undefined ? {} : { jti },
    audiences: [aud],
    clientId,
    subject,
    sessionId,
    tokenScopes: [],
    scopes: [],
    revokedReason: null,
    grantDenied: false,
    checkedAt: 0,
    pending: null,
  }
}

t.test('a change finds exactly the cached tokens it concerns', async (t) => {
  const cache = new TokenCache(100)
  const r1 = record('j1', 'c1', 's1')
  const r2 = record('j2', 'c1', 's2')
  const r3 = record('j3', 'c2', 's1', 'b', 'sid-1')
  const r4 = record(undefined, 'c4', 's1', 'a', 'sid-2')
  cache.set(tokenDigest('t1'), r1)
  cache.set(tokenDigest('t2'), r2)
  cache.set(tokenDigest('t3'), r3)
  cache.set(tokenDigest('t4'), r4)
  t.same([...cache.affected({ type: 'token', aud: 'a', jti: 'j1' })], [r1])
  t.same([...cache.affected({ type: 'token', aud: 'b', jti: 'j1' })], [], 'the audience must match')
  t.same(new Set(cache.affected({ type: 'client', clientId: 'c1' })), new Set([r1, r2]))
  t.same([...cache.affected({ type: 'grant', clientId: 'c2' })], [r3])
  t.same(new Set(cache.affected({ type: 'subject', subject: 's1' })), new Set([r1, r3, r4]))
  t.same([...cache.affected({ type: 'session', sessionId: 'sid-1' })], [r3], "a session change finds that session's tokens only")
  t.same([...cache.affected({ type: 'session', sessionId: 'sid-3' })], [])
  t.equal([...cache.affected({ type: 'reset' })].length, 4)
})

t.test('evicted and replaced tokens leave the indexes', async (t) => {
  const cache = new TokenCache(2)
  const r1 = record('j1', 'c1', 's1')
  cache.set(tokenDigest('t1'), r1)
  cache.set(tokenDigest('t2'), record('j2', 'c2', 's2'))
  cache.set(tokenDigest('t3'), record('j3', 'c3', 's3'))
  t.equal(cache.size, 2)
  t.same([...cache.affected({ type: 'client', clientId: 'c1' })], [], 'the evicted token is no longer indexed')
  const replacement = record('j2', 'c2', 's2')
  cache.set(tokenDigest('t2'), replacement)
  t.same([...cache.affected({ type: 'token', aud: 'a', jti: 'j2' })], [replacement], 'a replaced record is unindexed')
})

t.test('a hit is the exact token', async (t) => {
  const cache = new TokenCache(100)
  const signature = 'S'.repeat(40)
  const verified = record('j1', 'c1', 's1')
  cache.set(tokenDigest(`aaaa.bbbb.${signature}`), verified)
  t.equal(cache.get(tokenDigest(JSON.parse(JSON.stringify(`aaaa.bbbb.${signature}`)) as string)), verified, 'an equal string (another instance) hits')
  t.equal(cache.get(tokenDigest(`aaaa.bbbX.${signature}`)), undefined, 'same length and signature, other signed bytes: a miss')
  t.equal(cache.get(tokenDigest(`Xaaa.bbbb.${signature}`)), undefined, 'a difference in the first character: a miss')
  t.equal(cache.get(tokenDigest(`aaaa.bbbb.${signature}X`)), undefined, 'a longer token: a miss')
  t.equal(cache.get(tokenDigest(`aaaa.bbbb.${signature.slice(1)}`)), undefined, 'a shorter token: a miss')
  t.equal(cache.get(tokenDigest(`aaaa.bbbb.${signature}`.replace('a', '\u0101'))), undefined, 'a character outside Latin-1: a miss')
  const other = record('j2', 'c2', 's2')
  cache.set(tokenDigest(`cccc.dddd.${signature}`), other)
  t.equal(cache.get(tokenDigest(`cccc.dddd.${signature}`)), other, 'a token with the same signature segment has its own entry')
  t.equal(cache.get(tokenDigest(`aaaa.bbbb.${signature}`)), verified, 'and displaces nothing')
  t.equal(cache.size, 2)
})

t.test('the key is a digest: tokenDigest is SHA-256 of the text', async (t) => {
  const token = 'aaaa.bbbb.cccc'
  t.equal(Buffer.from(tokenDigest(token), 'latin1').toString('hex'), createHash('sha256').update(token).digest('hex'))
  t.not(tokenDigest(token), tokenDigest('aaaa.bbbb.cccd'))
})

t.test('records sharing a jti, client or subject stay indexed one by one', async (t) => {
  const cache = new TokenCache(100)
  const a = record('j', 'c', 's')
  const b = record('j', 'c', 's', 'b')
  cache.set(tokenDigest('ta'), a)
  cache.set(tokenDigest('tb'), b)
  t.same([...cache.affected({ type: 'token', aud: 'b', jti: 'j' })], [b])
  t.same(new Set(cache.affected({ type: 'subject', subject: 's' })), new Set([a, b]))
  cache.set(tokenDigest('ta'), record('j2', 'c2', 's2'))
  t.same([...cache.affected({ type: 'client', clientId: 'c' })], [b], 'the replaced record left the shared entry')
  t.same([...cache.affected({ type: 'token', aud: 'a', jti: 'j' })], [], 'audience a no longer holds jti j')
})
