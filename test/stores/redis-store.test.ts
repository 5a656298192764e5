import t from 'tap'
import { RedisStore } from '../../src/stores/redis.js'
import { runStoreSuite } from '../../src/testing/store-suite.js'
import { connectRedis, deleteKeys, REDIS_URL, redisVariants, uniqueName } from '../helpers/services.js'

// One body, every supported client: the store must behave the same on ioredis 5 and 6.
for (const variant of redisVariants) {
  t.test(variant.name, async (t) => {
    const client = await connectRedis(t, REDIS_URL, variant.connect)
    if (!client) return
    const prefixes: string[] = []
    t.teardown(async () => { for (const p of prefixes) await deleteKeys(client, p) })
    const fresh = (options: { logMaxEntries?: number } = {}) => {
      const prefix = `{${uniqueName('jwt-revocation-test')}}:`
      prefixes.push(prefix)
      return new RedisStore({ client, prefix, ...options })
    }
    runStoreSuite(t, () => fresh(), { trimmedStore: fresh })

    t.test('rules carry a TTL equal to what they revoke could still live', async (t) => {
      const prefix = `{${uniqueName('ttl')}}:`
      prefixes.push(prefix)
      const store = new RedisStore({ client, prefix })
      await store.revokeToken({ aud: 'a', jti: 'j', expiresAt: Date.now() + 60_000 })
      await store.revokeClient({ clientId: 'c', audience: '*', revokedAt: Date.now(), expiresAt: Date.now() + 30_000 })
      await store.revokeSession({ sessionId: 'sid', revokedAt: Date.now(), expiresAt: Date.now() + 30_000 })
      const sessionTtl = await client.pttl(`${prefix}session:sid`)
      t.ok(sessionTtl > 25_000 && sessionTtl <= 30_000, `session rule expires, under the prefix's hash tag (${sessionTtl} ms)`)
      const clientTtl = await client.pttl(`${prefix}c:c\u0000*`)
      t.ok(clientTtl > 25_000 && clientTtl <= 30_000, `client rule expires (${clientTtl} ms)`)
    })

    t.test('one lookup is one round trip', async (t) => {
      const prefix = `{${uniqueName('rtt')}}:`
      prefixes.push(prefix)
      const store = new RedisStore({ client, prefix })
      await store.ready()
      const before = Number((await client.info('stats')).match(/total_commands_processed:(\d+)/)![1])
      await store.lookup({ audiences: ['a', 'b'], jti: 'j', clientId: 'c', subject: 's', sessionId: 'sid', includeGrant: true })
      const after = Number((await client.info('stats')).match(/total_commands_processed:(\d+)/)![1])
      // MGET + one HMGET per audience, pipelined, and one HGET per audience sent with them
      // (to the token's buckets); the first INFO itself counts once.
      t.ok(after - before <= 6, `${after - before - 1} commands, sent together`)
    })
  })
}
