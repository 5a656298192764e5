// Two instances on one RedisStore and on one PostgresStore follow the store's log: a
// connection killed while the other revokes costs no reset, a 5,000-token batch arrives
// whole, and a PostgreSQL log id that commits after a later one is still applied.
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import t from 'tap'
import { PostgresStore } from '../../src/stores/postgres.js'
import { RedisStore } from '../../src/stores/redis.js'
import type { RevocationStore } from '../../src/stores/types.js'
import { AUDIENCE, bearer, sign } from '../helpers/helpers.js'
import { instance, key } from '../helpers/propagation.js'
import { connectPostgres, connectRedis, deleteKeys, REDIS_URL, uniqueName } from '../helpers/services.js'

const status = async (app: FastifyInstance, token: string) => (await app.inject({ url: '/orders', headers: bearer(token) })).statusCode

/** Polls until `app` refuses `token` (true) or 10 s pass (false). */
async function refusedWithin (app: FastifyInstance, token: string): Promise<boolean> {
  const deadline = Date.now() + 10_000
  while (Date.now() < deadline) {
    if (await status(app, token) === 401) return true
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  return false
}

/** (a) B's connections die while A revokes: B refuses the token once back, and reset nothing. */
async function killedWhileRevoking (t: Tap, makeStore: () => RevocationStore, kill: () => Promise<number>): Promise<void> {
  const a = await instance(t, makeStore())
  const b = await instance(t, makeStore())
  const jti = uniqueName('killed')
  const token = await sign(key, { jti })
  t.equal(await status(b, token), 200, 'B has the token cached as not revoked')
  t.ok(await kill() > 0, "B's connections were killed")
  await a.revocation.revokeToken({ jti, aud: AUDIENCE })
  t.ok(await refusedWithin(b, token), 'B refuses the token revoked while it was cut off')
  t.equal(b.revocation.feedStatus().resets, 0, 'B reset nothing')
}

/** (b) A 5,000-token batch through A reaches B whole: B refuses its tokens and reset nothing. */
async function bigBatch (t: Tap, makeStore: () => RevocationStore): Promise<void> {
  const a = await instance(t, makeStore())
  const b = await instance(t, makeStore())
  const prefix = uniqueName('batch')
  const first = await sign(key, { jti: `${prefix}-0` })
  const last = await sign(key, { jti: `${prefix}-4999` })
  const untouched = await sign(key, { jti: `${prefix}-other` })
  for (const token of [first, last, untouched]) t.equal(await status(b, token), 200, 'cached on B as not revoked')
  await a.revocation.revokeTokens(Array.from({ length: 5000 }, (_, i) => ({ jti: `${prefix}-${i}`, aud: AUDIENCE })))
  t.ok(await refusedWithin(b, last), 'B refuses a token of the batch')
  t.equal(await status(b, first), 401, 'and the first one')
  t.equal(await status(b, untouched), 200, 'a token outside the batch is still accepted')
  t.equal(b.revocation.feedStatus().resets, 0, 'B reset nothing')
}

type Tap = Pick<typeof t, 'equal' | 'ok' | 'same' | 'teardown'>

t.test('RedisStore', async (t) => {
  const client = await connectRedis(t)
  if (!client) return
  const prefix = `{${uniqueName('log-dist')}}:`
  t.teardown(() => deleteKeys(client, prefix))

  t.test('an instance whose connections are killed while another revokes resets nothing', async (t) => {
    // The name is a client option, so the subscriber duplicated from it carries it too.
    const name = uniqueName('victim')
    const victim = (await connectRedis(t, REDIS_URL, (url) => new Redis(url, { lazyConnect: true, connectionName: name })))!
    const stores = [new RedisStore({ client, prefix }), new RedisStore({ client: victim, prefix })]
    let i = 0
    await killedWhileRevoking(t, () => stores[i++]!, async () => {
      // Its own connection and the subscriber duplicated from it (which keeps the name).
      const list = (await client.client('LIST') as string).split('\n').filter((line) => line.includes(` name=${name} `))
      for (const line of list) await client.client('KILL', 'ID', line.match(/\bid=(\d+)/)![1]!)
      t.equal(list.length, 2, 'its client and its subscriber')
      return list.length
    })
  })

  t.test('a 5,000-token batch reaches the other instance without a reset', async (t) => {
    await bigBatch(t, () => new RedisStore({ client, prefix }))
  })

  t.test('the log is trimmed by age exactly: a reader before the trimmed entries has a gap, one after them not', async (t) => {
    const store = new RedisStore({ client, prefix: `{${uniqueName('log-age')}}:`, logRetention: '1s' })
    const { cursor } = await store.readLog(null, 0)
    await store.revokeToken({ aud: 'a', jti: 'old-1', expiresAt: null })
    await store.revokeToken({ aud: 'a', jti: 'old-2', expiresAt: null })
    const upToDate = (await store.readLog(cursor, 10)).cursor
    await new Promise((resolve) => setTimeout(resolve, 1100))
    await store.revokeToken({ aud: 'a', jti: 'new', expiresAt: null })
    const behind = await store.readLog(cursor, 10)
    t.same([behind.gap, behind.entries.map((e) => e.type === 'token' && e.jti)], [true, ['new']], 'entries read by no one were trimmed: a gap')
    const caughtUp = await store.readLog(upToDate, 10)
    t.same([caughtUp.gap, caughtUp.entries.map((e) => e.type === 'token' && e.jti)], [false, ['new']], 'a reader past the trimmed entries lost nothing')
  })
})

t.test('PostgresStore', async (t) => {
  const pool = await connectPostgres(t)
  if (!pool) return
  const tablePrefix = uniqueName('logdist').toLowerCase() + '_'
  t.teardown(async () => {
    for (const table of ['schema', 'tokens', 'clients', 'subjects', 'sessions', 'grants', 'leases', 'claims', 'log', 'log_trim']) await pool.query(`DROP TABLE IF EXISTS ${tablePrefix}${table}`)
  })
  const makeStore = () => {
    const store = new PostgresStore({ pool, tablePrefix, reconnectDelay: 50 })
    t.teardown(() => store.close())
    return store
  }

  t.test('an instance whose LISTEN connection is killed while another revokes resets nothing', async (t) => {
    await killedWhileRevoking(t, makeStore, async () => {
      const { rowCount } = await pool.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = 'LISTEN ${tablePrefix}changes'`)
      return rowCount ?? 0
    })
  })

  t.test('a 5,000-token batch reaches the other instance without a reset', async (t) => {
    await bigBatch(t, makeStore)
  })

  t.test('a log id that commits after a later one was read is still read', async (t) => {
    const store = makeStore()
    await store.ready()
    const { cursor } = await store.readLog(null, 0)
    // A transaction of the store's own shape (transaction id first, then its log id), held open.
    const slow = await pool.connect()
    t.teardown(() => slow.release())
    await slow.query('BEGIN')
    await slow.query('SELECT txid_current()')
    await slow.query(`INSERT INTO ${tablePrefix}log (at, type, change, source) VALUES (0, 'token', '{"aud":"a","jti":"slow","expiresAt":null}', 'api')`)
    await store.revokeToken({ aud: 'a', jti: 'fast', expiresAt: null })
    const first = await store.readLog(cursor, 10)
    t.same(first.entries.map((e) => e.type === 'token' && e.jti), ['fast'], 'the later id is read; the earlier is not committed yet')
    const again = await store.readLog(first.cursor, 10)
    t.same(again.entries, [], 'nothing read twice')
    await slow.query('COMMIT')
    const late = await store.readLog(again.cursor, 10)
    t.same([late.gap, late.entries.map((e) => e.type === 'token' && e.jti)], [false, ['slow']], 'the earlier id is read once it commits')
    const settled = await store.readLog(late.cursor, 10)
    t.same(settled.entries, [], 'and never again')
    t.match(settled.cursor, /^\d+$/, 'the cursor is an entry id again once nothing is pending')
  })
})
