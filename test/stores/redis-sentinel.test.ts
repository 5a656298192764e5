import { Redis } from 'ioredis'
import t from 'tap'
import { RedisStore, type WaitForReplicas } from '../../src/stores/redis.js'
import { runStoreSuite } from '../../src/testing/store-suite.js'
import { command, startSentinelSet } from '../helpers/redis-servers.js'
import { uniqueName, type Skippable } from '../helpers/services.js'

// Redis replication is asynchronous: a master acknowledges a write before its replica
// has it, so a failover can lose acknowledged revocations. Measured here on a real
// master + replica + sentinel: a stream of revocations, `SENTINEL FAILOVER` in the middle,
// then every acknowledged revocation looked up on the new master. `waitForReplicas`
// (Redis WAIT) must make the loss zero; without it the loss is reported, not asserted.

const BEFORE_FAILOVER = 50
/** How long the stream runs on after the sentinel reports the new master. */
const AFTER_SWITCH_MS = 1000

interface Outcome { acknowledged: number, refused: number, lost: number }

async function failoverDuringStream (t: Skippable, waitForReplicas: WaitForReplicas | undefined): Promise<Outcome | undefined> {
  const set = await startSentinelSet(t)
  if (!set) return undefined
  // The client configuration the README recommends for Sentinel: follow a switch at once,
  // and reconnect (to the new master) when a write meets a demoted one.
  const client = new Redis({
    sentinels: [set.sentinel],
    name: set.name,
    maxRetriesPerRequest: 1,
    failoverDetector: true,
    reconnectOnError: (err) => err.message.startsWith('READONLY'),
  })
  client.on('error', () => {})
  t.teardown(() => client.disconnect())
  const store = new RedisStore({ client, prefix: 'failover:', waitForReplicas })
  const oldMaster = await set.masterPort()

  const acknowledged: string[] = []
  let refused = 0
  let next = 0
  let stopAt = Infinity
  const stream = async () => {
    while (performance.now() < stopAt) {
      const jti = `jti-${next++}`
      try {
        await store.revokeToken({ aud: 'api', jti, expiresAt: null })
        acknowledged.push(jti)
      } catch {
        refused++
      }
    }
  }
  const failover = async () => {
    while (acknowledged.length < BEFORE_FAILOVER) await new Promise((resolve) => setTimeout(resolve, 5))
    await command(set.sentinel.port, 'SENTINEL', 'FAILOVER', set.name)
    while (await set.masterPort() === oldMaster) await new Promise((resolve) => setTimeout(resolve, 20))
    stopAt = performance.now() + AFTER_SWITCH_MS
  }
  await Promise.all([stream(), stream(), failover()])

  // What the new master holds is what survives: the old one drops its own writes when
  // the sentinel makes it a replica and it resyncs.
  const survivor = new Redis({ port: await set.masterPort() })
  t.teardown(() => survivor.disconnect())
  const kept = new Set((await new RedisStore({ client: survivor, prefix: 'failover:' }).listRevokedTokens({})).map((e) => e.jti))
  return { acknowledged: acknowledged.length, refused, lost: acknowledged.filter((jti) => !kept.has(jti)).length }
}

t.test('a failover in the middle of a stream of revocations', async (t) => {
  const [plain, waited] = await Promise.all([
    failoverDuringStream(t, undefined),
    failoverDuringStream(t, { replicas: 1, timeout: 200 }),
  ])
  if (!plain || !waited) return
  t.ok(plain.acknowledged > BEFORE_FAILOVER && waited.acknowledged > BEFORE_FAILOVER, 'both streams ran through the failover')
  t.equal(waited.lost, 0, 'with waitForReplicas, no acknowledged revocation is lost')
  t.comment(`without waitForReplicas: ${plain.lost} of ${plain.acknowledged} acknowledged revocations lost (${plain.refused} refused)`)
  t.comment(`with waitForReplicas { replicas: 1, timeout: 200 }: ${waited.lost} of ${waited.acknowledged} lost (${waited.refused} refused, to be retried)`)
})

t.test('waitForReplicas refuses a write no replica acknowledged', async (t) => {
  const set = await startSentinelSet(t)
  if (!set) return
  const client = new Redis({ port: await set.masterPort() })
  t.teardown(() => client.disconnect())
  // The one replica acknowledges first (so it is attached and in sync), then two are asked of it.
  const ok = new RedisStore({ client, prefix: 'alone:', waitForReplicas: { replicas: 1, timeout: 5000 } })
  await ok.revokeToken({ aud: 'api', jti: 'two', expiresAt: null })
  const store = new RedisStore({ client, prefix: 'alone:', waitForReplicas: { replicas: 2, timeout: 50 } })
  // Under load the replica may not acknowledge within 50 ms either: what matters is the refusal.
  await t.rejects(store.revokeToken({ aud: 'api', jti: 'one', expiresAt: null }),
    { code: 'FST_JWT_REVOCATION_STORE', message: /reached [01] of 2 replicas within 50 ms/ })
  t.equal((await ok.lookup({ audiences: ['api'], jti: 'two', includeGrant: false })).tokenRevoked, true, 'one replica, one required: acknowledged')
})

t.test('the store conformance suite through a Sentinel-managed client', async (t) => {
  const set = await startSentinelSet(t)
  if (!set) return
  const client = new Redis({ sentinels: [set.sentinel], name: set.name, maxRetriesPerRequest: 1 })
  client.on('error', () => {})
  t.teardown(() => client.disconnect())
  const fresh = (options: { logMaxEntries?: number } = {}) => new RedisStore({ client, prefix: `{${uniqueName('sentinel')}}:`, ...options })
  runStoreSuite(t, () => fresh(), { trimmedStore: fresh })
})
