import t from 'tap'
import { RedisStore } from '../../src/stores/redis.js'
import { keySlot } from '../../src/stores/key-slot.js'
import { runStoreSuite } from '../../src/testing/store-suite.js'
import { scenario } from '../helpers/propagation.js'
import { clusterClient, startCluster } from '../helpers/redis-servers.js'
import { uniqueName } from '../helpers/services.js'

// The README says RedisStore works on Redis Cluster: a real 3-master cluster from
// redis-server processes, the conformance suite and two-instance propagation on it.

const cluster = await startCluster(t)
if (cluster) {
  const connect = () => clusterClient(t, cluster)
  const client = connect()

  t.test('the store conformance suite on an ioredis Cluster', async (t) => {
    const fresh = (options: { logMaxEntries?: number } = {}) => new RedisStore({ client, prefix: `{${uniqueName('cluster')}}:`, ...options })
    runStoreSuite(t, () => fresh(), { trimmedStore: fresh })
  })

  t.test('keySlot answers what the Cluster answers (CLUSTER KEYSLOT)', async (t) => {
    const keys = ['foo', '123456789', '{user1000}.following', 'foo{}{bar}', 'foo{{bar}}zap', 'foo{bar}{zap}', 'x{', '}{y}', 'ünï{çö}', '',
      ...Array.from({ length: 200 }, (_, i) => `jwt-revocation:t:{${i * 37}}`)]
    const node = client.nodes('master')[0]!
    const answers = await Promise.all(keys.map((key) => node.cluster('KEYSLOT', key)))
    t.same(keys.map(keySlot), answers.map(Number))
  })

  t.test('stores under different prefixes spread over the masters', async (t) => {
    // One prefix is one hash slot (its keys must be, for the atomic scripts); many prefixes are many slots.
    for (let i = 0; i < 12; i++) {
      await new RedisStore({ client, prefix: `{${uniqueName('spread')}}:` }).revokeToken({ aud: 'a', jti: 'j', expiresAt: Date.now() + 60_000 })
    }
    const sizes = await Promise.all(client.nodes('master').map((node) => node.dbsize()))
    t.equal(sizes.length, 3, 'three masters')
    t.ok(sizes.filter((n) => n > 0).length > 1, `keys on more than one master (${sizes.join(', ')})`)
  })

  t.test('waitForReplicas runs WAIT on the node of the write', async (t) => {
    // These masters have no replicas: WAIT answers 0, which proves it reached a node
    // (a keyless command in a Cluster pipeline must follow the write's slot).
    const store = new RedisStore({ client, prefix: `{${uniqueName('wait')}}:`, waitForReplicas: { replicas: 1, timeout: 10 } })
    await t.rejects(store.revokeToken({ aud: 'a', jti: 'j', expiresAt: null }), { code: 'FST_JWT_REVOCATION_STORE', message: /reached 0 of 1 replicas/ })
  })

  t.test('two instances, each with its own Cluster client, agree on every revocation', async (t) => {
    const prefix = `{${uniqueName('cluster-multi')}}:`
    const clients = [connect(), connect()]
    let i = 0
    await scenario(t, () => new RedisStore({ client: clients[i++ % 2]!, prefix }), 'redis cluster')
  })
}
