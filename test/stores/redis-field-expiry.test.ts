import { spawn, type ChildProcess } from 'node:child_process'
import { Redis } from 'ioredis'
import t from 'tap'
import { RedisStore } from '../../src/stores/redis.js'
import { audienceTag, FIELD_EXPIRY_MARGIN, hasFieldExpiry, packBucketWrites, tokenField, WRITE_BUCKETS, WRITE_BUCKETS_WITH_FIELD_EXPIRY } from '../../src/stores/redis-tokens.js'
import { runStoreSuite } from '../../src/testing/store-suite.js'
import { freePort, stop } from '../helpers/redis-servers.js'
import { connectRedis, deleteKeys, uniqueName } from '../helpers/services.js'

// Per-field expiry (HPEXPIREAT, Redis 7.4) is used only where the server has it. On the
// shared server (7.0 here) this checks the detection and that the 7.4 write script,
// run where the commands are missing (a Cluster upgraded node by node), writes exactly
// what the 7.0 script writes. The 7.4 path itself runs against a redis-server ≥ 7.4
// named by REDIS_7_4_SERVER (its path), and is skipped without one.

const HOUR = 3_600_000
const version = (info: string) => info.match(/redis_version:(\d+)\.(\d+)/)!.slice(1).map(Number) as [number, number]
const atLeast74 = ([major, minor]: [number, number]) => major > 7 || (major === 7 && minor >= 4)

t.test('detection answers what the server has; the 7.4 script writes what the 7.0 one does', async (t) => {
  const client = await connectRedis(t)
  if (!client) return
  const prefix = `{${uniqueName('field-expiry')}}:`
  t.teardown(() => deleteKeys(client, prefix))
  const has = atLeast74(version(await client.info('server')))
  t.equal(await hasFieldExpiry(client), has, `HPEXPIREAT ${has ? 'found' : 'absent'}, as the server's version says`)
  const soon = Date.now() + HOUR
  const later = Date.now() + 2 * HOUR
  const writes = [[{ aud: 'a', jti: 'one', expiresAt: soon }, { aud: 'a', jti: 'two', expiresAt: null }], [{ aud: 'a', jti: 'one', expiresAt: later }, { aud: 'a', jti: 'two', expiresAt: soon }]]
  const [plain, expiring] = [`${prefix}plain`, `${prefix}expiring`]
  for (const entries of writes) {
    const packed = packBucketWrites(entries, entries.map(() => audienceTag('a')), [[0, 1]])
    t.equal(await client.eval(WRITE_BUCKETS_WITH_FIELD_EXPIRY, 1, expiring, packed), await client.eval(WRITE_BUCKETS, 1, plain, packed), 'the same count written')
  }
  t.same(await client.hgetall(expiring), await client.hgetall(plain), 'the same fields and values: the later expiry, never kept')
})

/** A private redis-server from `binary`, on a free loopback port. */
async function startServer (binary: string): Promise<{ child: ChildProcess, port: number }> {
  const port = await freePort()
  const child = spawn(binary, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'ignore'] })
  await new Promise<void>((resolve, reject) => {
    let log = ''
    child.on('error', reject)
    child.on('exit', () => reject(new Error(`${binary} exited: ${log.slice(-300)}`)))
    child.stdout!.on('data', (chunk: Buffer) => {
      log += chunk.toString()
      if (/Ready to accept connections/.test(log)) resolve()
    })
  })
  return { child, port }
}

const binary = process.env.REDIS_7_4_SERVER
t.test('Redis 7.4: fields expire by themselves, and every read answers as on 7.0', { skip: binary ? false : 'set REDIS_7_4_SERVER to a redis-server ≥ 7.4 to run' }, async (t) => {
  const { child, port } = await startServer(binary!)
  t.teardown(() => stop(child))
  const client = new Redis({ port, host: '127.0.0.1' })
  t.teardown(() => client.disconnect())
  t.ok(atLeast74(version(await client.info('server'))), 'the server is 7.4 or later')
  t.equal(await hasFieldExpiry(client), true, 'detected')
  const store = new RedisStore({ client, prefix: '{fx}:', tokenBuckets: 1 })
  const expiresAt = Date.now() + HOUR
  await store.revokeTokens([{ aud: 'a', jti: 'soon', expiresAt }, { aud: 'a', jti: 'never', expiresAt: null }, { aud: 'a', jti: 'later', expiresAt }])
  await store.revokeToken({ aud: 'a', jti: 'later', expiresAt: expiresAt + HOUR })
  const times = await client.call('HPEXPIRETIME', 'fx:t:{0}', 'FIELDS', 3, tokenField('a', 'soon'), tokenField('a', 'never'), tokenField('a', 'later')) as number[]
  t.same(times.map(Number), [expiresAt + FIELD_EXPIRY_MARGIN, -1, expiresAt + HOUR + FIELD_EXPIRY_MARGIN], 'each field expires its margin after its entry; never: no expiry; revoked again: the later one')
  // An entry whose expiry has passed while Redis still keeps its field (the margin): written as a revocation would have been.
  await client.eval(WRITE_BUCKETS_WITH_FIELD_EXPIRY, 1, 'fx:t:{0}', packBucketWrites([{ aud: 'a', jti: 'gone', expiresAt: Date.now() - 1000 }], [audienceTag('a')], [[0]]))
  t.equal((await store.lookup({ audiences: ['a'], jti: 'gone', includeGrant: false })).tokenRevoked, false, 'past its expiry, before Redis drops the field: absent, as on 7.0')
  t.same((await store.listRevokedTokens({ aud: 'a' })).map((e) => e.jti).sort(), ['later', 'never', 'soon'])
  let n = 0
  runStoreSuite(t, () => new RedisStore({ client, prefix: `{fx-suite-${n++}}:` }), { trimmedStore: (log) => new RedisStore({ client, prefix: `{fx-suite-${n++}}:`, ...log }) })
})
