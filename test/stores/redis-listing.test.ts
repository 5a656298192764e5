import { randomUUID } from 'node:crypto'
import type { Cluster, Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { RedisStore } from '../../src/stores/redis.js'
import type { RevokedToken } from '../../src/stores/types.js'
import { clusterClient, startCluster } from '../helpers/redis-servers.js'
import { connectRedis, deleteKeys, uniqueName } from '../helpers/services.js'

// RedisStore's paged listing where the conformance suite does not reach: buckets holding
// many entries each (a page ends inside a bucket), tokens of the previous layout (a run of
// them with one expiry across several pages, one with a copy in its bucket already, one
// expired), on one server and on a Cluster of 3 primaries.

const HOUR = 3_600_000
const aud = 'https://api.example'
const other = 'https://other.example'
const keyOf = (e: Pick<RevokedToken, 'aud' | 'jti'>) => `${e.aud} ${e.jti}`

async function walk (store: RedisStore, filter: { aud?: string }, limit: number): Promise<{ tokens: RevokedToken[], pages: number, largest: number }> {
  const tokens: RevokedToken[] = []
  let cursor: string | undefined
  let pages = 0
  let largest = 0
  do {
    const page = await store.listRevokedTokensPage(filter, { ...(cursor === undefined ? {} : { cursor }), limit })
    tokens.push(...page.tokens)
    largest = Math.max(largest, page.tokens.length)
    pages++
    cursor = page.next ?? undefined
  } while (cursor !== undefined)
  return { tokens, pages, largest }
}

async function listing (t: Test, client: Redis | Cluster, prefix: string): Promise<void> {
  const store = new RedisStore({ client, prefix, tokenBuckets: 3 })
  const expiresAt = Date.now() + HOUR
  const current: RevokedToken[] = [
    ...Array.from({ length: 120 }, (_, i) => ({ aud, jti: i % 2 === 0 ? randomUUID() : `opaque-${i}`, expiresAt: i % 5 === 0 ? null : expiresAt + i })),
    ...Array.from({ length: 15 }, (_, i) => ({ aud: other, jti: `other-${i}`, expiresAt })),
  ]
  await store.revokeTokens(current)
  await store.revokeToken({ aud, jti: 'expired', expiresAt: Date.now() - 1 })
  // The previous layout: a member `aud NUL jti` of the index, scored by expiry (its key is not read by a listing).
  const legacyExpiry = Date.now() + 2 * HOUR
  const legacy = Array.from({ length: 7 }, (_, i) => ({ aud, jti: `legacy-${i}`, expiresAt: legacyExpiry }))
  const index = `${prefix}tokens`
  for (const e of legacy) await client.zadd(index, e.expiresAt, `${e.aud}\u0000${e.jti}`)
  await client.zadd(index, 'inf', `${other}\u0000legacy-forever`)
  await client.zadd(index, Date.now() - 1000, `${aud}\u0000legacy-expired`)
  await client.zadd(index, legacyExpiry, `${aud}\u0000${current[1]!.jti}`)
  const wanted = [...current, ...legacy, { aud: other, jti: 'legacy-forever', expiresAt: null }]

  const { tokens, pages, largest } = await walk(store, {}, 3)
  t.equal(tokens.length, wanted.length, 'each live token listed once, including one kept in both layouts')
  t.same(tokens.map(keyOf).sort(), wanted.map(keyOf).sort(), 'every live token of both layouts, no expired one')
  t.ok(largest <= 3 && pages >= wanted.length / 3, `${pages} pages of at most 3`)
  const expiries = new Map(tokens.map((e) => [keyOf(e), e.expiresAt]))
  t.ok(wanted.every((e) => expiries.get(keyOf(e)) === e.expiresAt), 'each with its expiry')

  const ofOther = await walk(store, { aud: other }, 4)
  t.same(ofOther.tokens.map(keyOf).sort(), wanted.filter((e) => e.aud === other).map(keyOf).sort(), 'by audience, in both layouts')
  t.same((await store.listRevokedTokensPage({ aud: 'https://never.example' })).tokens, [], 'an audience never revoked lists nothing')
  t.same((await store.listRevokedTokens({})).map(keyOf).sort(), wanted.map(keyOf).sort(), 'listRevokedTokens: the same, whole')

  const refused = [
    Buffer.from(JSON.stringify({ bucket: 3 })).toString('base64url'),
    Buffer.from(JSON.stringify({ bucket: 0, after: '!' })).toString('base64url'),
    Buffer.from(JSON.stringify({ legacy: ['soon', 0] })).toString('base64url'),
  ]
  for (const cursor of refused) await t.rejects(store.listRevokedTokensPage({}, { cursor }), TypeError, 'a cursor past the buckets, or malformed, is refused')
}

t.test('one server: pages end inside buckets and run through the previous layout', async (t) => {
  const client = await connectRedis(t)
  if (!client) return
  const prefix = `{${uniqueName('listing')}}:`
  t.teardown(() => deleteKeys(client, prefix))
  await listing(t, client, prefix)
})

t.test('a Cluster of 3 primaries: the same walk over buckets on every node', async (t) => {
  const cluster = await startCluster(t)
  if (!cluster) return
  const client = clusterClient(t, cluster)
  await listing(t, client, `{${uniqueName('listing')}}:`)
})
