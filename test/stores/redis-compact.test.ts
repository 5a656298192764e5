import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { RedisStore } from '../../src/stores/redis.js'
import { entriesOn, settledMemory, usedMemory } from '../helpers/redis-memory.js'
import { clusterClient, freePort, startCluster, startRedisServer, stop } from '../helpers/redis-servers.js'
import { audienceTag } from '../../src/stores/redis-tokens.js'
import { connectRedis, deleteKeys, uniqueName } from '../helpers/services.js'

// The compact token layout at 100,000 revoked UUID jtis (a lean version of the
// benchmark): every revoked jti reads as revoked and no other does, ≤ 64 B of Redis
// memory each, and in a Cluster the entries spread over the three primaries.

const COUNT = 100_000
const BATCH = 20_000
const SAMPLE = 10_000
const DAY = 86_400_000
const MAX_BYTES = 64
const aud = 'https://api.example'

async function revokeAll (store: RedisStore, jtis: string[]): Promise<void> {
  const expiresAt = Date.now() + DAY
  for (let i = 0; i < jtis.length; i += BATCH) await store.revokeTokens(jtis.slice(i, i + BATCH).map((jti) => ({ aud, jti, expiresAt })))
}

/** How many of `jtis` read as revoked (1,000 lookups in flight). */
async function revokedAmong (store: RedisStore, jtis: string[]): Promise<number> {
  let revoked = 0
  for (let i = 0; i < jtis.length; i += 1000) {
    const states = await Promise.all(jtis.slice(i, i + 1000).map((jti) => store.lookup({ audiences: [aud], jti, includeGrant: false })))
    revoked += states.filter((s) => s.tokenRevoked).length
  }
  return revoked
}

async function measure (t: Test, store: RedisStore, nodes: Redis[], logKey: string): Promise<void> {
  const jtis = Array.from({ length: COUNT }, () => randomUUID())
  await store.ready()
  const before = (await Promise.all(nodes.map(usedMemory))).reduce((a, b) => a + b, 0)
  await revokeAll(store, jtis)
  const after = await settledMemory(nodes)
  // The log keeps one entry per batch (every jti of it, for instances to follow); it is
  // bounded by logMaxEntries and logRetention, not by the tokens revoked, and not counted.
  const logBytes = (await Promise.all(nodes.map((n) => n.memory('USAGE', logKey, 'SAMPLES', 0).catch(() => null)))).reduce<number>((a, b) => a + Number(b ?? 0), 0)
  const perEntry = (after - before - logBytes) / COUNT
  t.ok(perEntry <= MAX_BYTES, `${perEntry.toFixed(1)} B of Redis memory per revoked jti (at most ${MAX_BYTES})`)
  t.equal(await revokedAmong(store, jtis), COUNT, 'every revoked jti reads as revoked')
  t.equal(await revokedAmong(store, Array.from({ length: SAMPLE }, () => randomUUID())), 0, 'no other jti does')
}

t.test('standalone: 100,000 revoked jtis, compact', async (t) => {
  if (!await connectRedis(t)) return
  const port = await freePort()
  const server = await startRedisServer(['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'])
  t.teardown(() => stop(server))
  const client = new Redis({ port, host: '127.0.0.1' })
  t.teardown(() => client.disconnect())
  const prefix = '{lean}:'
  await measure(t, new RedisStore({ client, prefix, tokenBuckets: COUNT / 100 }), [client], `${prefix}log`)

  t.test('tokens of the previous layout (a key each, and the index) still refuse their token', async (t) => {
    const store = new RedisStore({ client, prefix })
    const legacy = randomUUID()
    await client.set(`${prefix}t:${aud}\u0000${legacy}`, '1', 'PX', 60_000)
    await client.zadd(`${prefix}tokens`, Date.now() + 60_000, `${aud}\u0000${legacy}`)
    t.equal((await store.lookup({ audiences: [aud], jti: legacy, includeGrant: false })).tokenRevoked, true, 'refused')
    t.ok((await store.listRevokedTokens({ aud })).some((e) => e.jti === legacy), 'and listed')
  })
})

t.test('a Cluster of 3 primaries: 100,000 revoked jtis, compact and spread', async (t) => {
  const cluster = await startCluster(t)
  if (!cluster) return
  const client = clusterClient(t, cluster)
  await client.ping()
  const prefix = '{lean}:'
  const primaries = client.nodes('master')
  t.equal(primaries.length, 3, 'three primaries')
  await measure(t, new RedisStore({ client, prefix }), primaries, `${prefix}log`)
  const shares = (await Promise.all(primaries.map((node) => entriesOn(node, 'lean:t:{')))).map((n) => n / COUNT)
  t.equal(Math.round(shares.reduce((a, b) => a + b, 0) * COUNT), COUNT, 'every entry is in a bucket')
  for (const share of shares) t.ok(share >= 0.25 && share <= 0.42, `a primary holds ${(share * 100).toFixed(1)}% of the entries`)
})

t.test('two audiences whose 36-bit tags collide never share entries: the second is refused', async (t) => {
  const client = await connectRedis(t)
  if (!client) return
  const prefix = `{${uniqueName('tags')}}:`
  t.teardown(() => deleteKeys(client, prefix))
  // A birthday search: about 2^18 audiences until two share a tag.
  const seen = new Map<string, string>()
  let pair: [string, string] | undefined
  for (let i = 0; pair === undefined; i++) {
    const aud = `https://api-${i}.example`
    const other = seen.get(audienceTag(aud))
    if (other !== undefined) pair = [other, aud]
    else seen.set(audienceTag(aud), aud)
  }
  const [first, second] = pair
  const store = new RedisStore({ client, prefix })
  await store.revokeToken({ aud: first, jti: 'shared', expiresAt: Date.now() + DAY })
  await t.rejects(store.revokeToken({ aud: second, jti: 'other', expiresAt: Date.now() + DAY }), /already names another audience/)
  t.equal((await store.lookup({ audiences: [second], jti: 'shared', includeGrant: false })).tokenRevoked, false, 'the first audience\'s jti is not the second\'s')
  t.same((await store.listRevokedTokens({})).map((e) => [e.aud, e.jti]), [[first, 'shared']], 'listed under its own audience')
})
