// PostgresStore's purge, measured once (not part of `npm run bench`): lookup latency on
// the partitioned token table (today and 31 days ahead, plus the rest) against a
// version-4-style table, each with a million rows; then lookup p50/p99 while a million
// expired entries are purged — by dropping their day's partition, and by the DELETE
// version 4 ran.
//   PG_URL=postgres://postgres@127.0.0.1:5432/test npx tsx bench/pg-purge.ts
import pg from 'pg'
import { DAY_MS } from '../src/stores/postgres-partitions.js'
import { PostgresStore } from '../src/stores/postgres.js'

const ROWS = Number(process.env.PURGE_ROWS ?? 1_000_000)
const pool = new pg.Pool({ connectionString: process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test', max: 8 })
const p = `bench_purge_${process.pid}_`
const old = `${p}v4tokens`

const percentile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
const ms = (n: number) => `${n.toFixed(3)} ms`

/** Lookups from `lookup` on 4 concurrent loops until `done` resolves (or `count` each); their latencies sorted. */
async function lookups (lookup: (jti: string) => Promise<unknown>, until: Promise<unknown> | number): Promise<number[]> {
  const times: number[] = []
  let running = true
  if (typeof until !== 'number') until.finally(() => { running = false })
  await Promise.all([0, 1, 2, 3].map(async (loop) => {
    for (let i = 0; typeof until === 'number' ? i < until : running; i++) {
      const start = process.hrtime.bigint()
      await lookup(`miss-${loop}-${i}`)
      times.push(Number(process.hrtime.bigint() - start) / 1e6)
    }
  }))
  return times.sort((a, b) => a - b)
}

const report = (name: string, times: number[]) =>
  console.log(`${name.padEnd(58)} n=${String(times.length).padStart(6)}  p50 ${ms(percentile(times, 0.5))}  p99 ${ms(percentile(times, 0.99))}  max ${ms(times.at(-1)!)}`)

const store = new PostgresStore({ pool, tablePrefix: p })
try {
  console.log((await pool.query('SELECT version()')).rows[0].version)
  await store.ready()
  const today = Math.floor(Date.now() / DAY_MS)
  // A million entries that expire tomorrow (the day purged below), spread over its hours.
  const fill = `SELECT 'api', 'jti-' || i, ${(today + 1) * DAY_MS}::bigint + (i % 86400000)`
  let start = Date.now()
  await pool.query(`INSERT INTO ${p}tokens (aud, jti, expires_at, expiry_day) ${fill}, ${today + 1} FROM generate_series(1, ${ROWS}) i`)
  console.log(`partitioned: ${ROWS} rows inserted in ${Date.now() - start} ms`)
  await pool.query(`CREATE TABLE ${old} (aud text NOT NULL, jti text NOT NULL, expires_at bigint, PRIMARY KEY (aud, jti));
    CREATE INDEX ${old}_expires_at ON ${old} (expires_at) WHERE expires_at IS NOT NULL`)
  start = Date.now()
  await pool.query(`INSERT INTO ${old} ${fill} FROM generate_series(1, ${ROWS}) i`)
  console.log(`version 4 table: ${ROWS} rows inserted in ${Date.now() - start} ms`)
  await pool.query(`VACUUM ANALYZE ${p}tokens`)
  await pool.query(`VACUUM ANALYZE ${old}`)
  const partitions = (await pool.query(`SELECT count(*)::int AS n FROM pg_inherits WHERE inhparent = $1::regclass`, [`${p}tokens`])).rows[0].n
  console.log(`partitions: ${partitions}`)

  const oldLookup = (jti: string) => pool.query({ name: 'old', text: `SELECT EXISTS (SELECT 1 FROM ${old} WHERE jti = $2 AND aud = ANY($1::text[]) AND (expires_at IS NULL OR expires_at > $3))`, values: [['api'], jti, Date.now()] })
  // The token part of the store's lookup, as each schema runs it (the whole lookup adds the rule tables).
  const newLookup = (jti: string) => pool.query({ name: 'new', text: `SELECT EXISTS (SELECT 1 FROM ${p}tokens WHERE jti = $2 AND aud = ANY($1::text[]) AND (expires_at IS NULL OR expires_at > $3)
    AND expiry_day >= ($3::bigint / ${DAY_MS})::integer)`, values: [['api'], jti, Date.now()] })
  const storeLookup = (jti: string) => store.lookup({ audiences: ['api'], jti, includeGrant: false })
  await lookups(newLookup, 500)
  await lookups(oldLookup, 500)
  report('idle, version 4 table (one index)', await lookups(oldLookup, 5000))
  report(`idle, partitioned (${partitions} partitions)`, await lookups(newLookup, 5000))
  report(`idle, partitioned, the store's whole lookup`, await lookups(storeLookup, 5000))

  // As if the day had passed: the purge drops tomorrow's partition (1M entries).
  const purgeAt = (today + 2) * DAY_MS
  let purgeMs = 0
  const purge = (async () => {
    await new Promise((resolve) => setTimeout(resolve, 200))
    const t0 = Date.now()
    const removed = await store.purgeExpired(purgeAt)
    purgeMs = Date.now() - t0
    console.log(`partitioned purge: ${removed} entries in ${purgeMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 200))
  })()
  report('during the purge, partitioned (DROP of the day)', await lookups(newLookup, purge))

  const del = (async () => {
    await new Promise((resolve) => setTimeout(resolve, 200))
    const t0 = Date.now()
    const { rowCount } = await pool.query(`DELETE FROM ${old} WHERE expires_at IS NOT NULL AND expires_at <= $1`, [purgeAt])
    console.log(`version 4 purge: ${rowCount} rows DELETEd in ${Date.now() - t0} ms`)
    await new Promise((resolve) => setTimeout(resolve, 200))
  })()
  report('during the purge, version 4 (DELETE of 1M rows)', await lookups(oldLookup, del))
  const dead = (await pool.query(`SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = $1`, [old])).rows[0]?.n_dead_tup
  console.log(`version 4 table after its DELETE: ${dead} dead tuples for VACUUM; partitioned: none (the file is unlinked)`)
} finally {
  await pool.query(`DROP TABLE IF EXISTS ${old}`)
  for (const t of ['schema', 'tokens', 'clients', 'subjects', 'sessions', 'grants', 'leases', 'claims', 'log', 'log_trim']) await pool.query(`DROP TABLE IF EXISTS ${p}${t}`)
  await store.close()
  await pool.end()
}
