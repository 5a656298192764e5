// PostgresStore's purge (row `pg-purge` of `npm run bench`): lookup latency on the
// partitioned token table (today and 31 days ahead, plus the rest) against a
// version-4-style table, each with a million rows; then lookup latency while a million
// expired entries are purged — by dropping their day's partition (the store's
// purgeExpired), and by the DELETE version 4 ran. Lookups run on 4 concurrent loops; the
// "during" figures count only the lookups that overlapped the purge itself.
//   PG_URL=postgres://postgres@127.0.0.1:5432/test npx tsx bench/pg-purge.ts   (--json: the figures as JSON)
import pg from 'pg'
import { DAY_MS } from '../src/stores/postgres-partitions.js'
import { PostgresStore } from '../src/stores/postgres.js'

export interface Latency { samples: number, p50: number, p99: number, max: number }
export interface PgPurge {
  rows: number
  partitions: number
  version: string
  /** The store's whole lookup, before the purge and while it ran; the purge's duration. */
  before: Latency
  during: Latency
  purgeMs: number
  removed: number
  /** The same for the version 4 table (its token query alone) and its DELETE. */
  v4Before: Latency
  v4During: Latency
  v4DeleteMs: number
  v4DeadTuples: number
}

const percentile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN
const latency = (times: number[]): Latency => {
  const sorted = [...times].sort((a, b) => a - b)
  return { samples: sorted.length, p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), max: sorted.at(-1) ?? NaN }
}

interface Timed { start: number, end: number }

/** Lookups from `lookup` on 4 concurrent loops until `until` resolves (or `until` each); their start and end times. */
async function lookups (lookup: (jti: string) => Promise<unknown>, until: Promise<unknown> | number): Promise<Timed[]> {
  const times: Timed[] = []
  let running = true
  if (typeof until !== 'number') until.finally(() => { running = false })
  await Promise.all([0, 1, 2, 3].map(async (loop) => {
    for (let i = 0; typeof until === 'number' ? i < until : running; i++) {
      const start = performance.now()
      await lookup(`miss-${loop}-${i}`)
      times.push({ start, end: performance.now() })
    }
  }))
  return times
}

const durations = (times: Timed[]) => times.map((t) => t.end - t.start)

/** Lookups around `purge` (run 200 ms after they start); those that overlapped it, and how long it took. */
async function duringPurge<T> (lookup: (jti: string) => Promise<unknown>, purge: () => Promise<T>): Promise<{ during: Latency, ms: number, result: T }> {
  let window = { start: 0, end: 0 }
  let result: T | undefined
  const run = (async () => {
    await new Promise((resolve) => setTimeout(resolve, 200))
    window.start = performance.now()
    result = await purge()
    window = { ...window, end: performance.now() }
    await new Promise((resolve) => setTimeout(resolve, 200))
  })()
  const times = await lookups(lookup, run)
  const overlapping = times.filter((t) => t.start < window.end && t.end > window.start)
  return { during: latency(durations(overlapping)), ms: window.end - window.start, result: result as T }
}

export async function measurePgPurge (rows = 1_000_000, log: (line: string) => void = () => {}): Promise<PgPurge> {
  const pool = new pg.Pool({ connectionString: process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test', max: 8 })
  const p = `bench_purge_${process.pid}_`
  const old = `${p}v4tokens`
  const store = new PostgresStore({ pool, tablePrefix: p })
  try {
    const version = String((await pool.query('SELECT version()')).rows[0].version)
    await store.ready()
    const today = Math.floor(Date.now() / DAY_MS)
    // A million entries that expire tomorrow (the day purged below), spread over its hours.
    const fill = `SELECT 'api', 'jti-' || i, ${(today + 1) * DAY_MS}::bigint + (i % 86400000)`
    let start = Date.now()
    await pool.query(`INSERT INTO ${p}tokens (aud, jti, expires_at, expiry_day) ${fill}, ${today + 1} FROM generate_series(1, ${rows}) i`)
    log(`pg-purge: partitioned: ${rows} rows inserted in ${Date.now() - start} ms`)
    await pool.query(`CREATE TABLE ${old} (aud text NOT NULL, jti text NOT NULL, expires_at bigint, PRIMARY KEY (aud, jti));
      CREATE INDEX ${old}_expires_at ON ${old} (expires_at) WHERE expires_at IS NOT NULL`)
    start = Date.now()
    await pool.query(`INSERT INTO ${old} ${fill} FROM generate_series(1, ${rows}) i`)
    log(`pg-purge: version 4 table: ${rows} rows inserted in ${Date.now() - start} ms`)
    await pool.query(`VACUUM ANALYZE ${p}tokens`)
    await pool.query(`VACUUM ANALYZE ${old}`)
    const partitions = (await pool.query(`SELECT count(*)::int AS n FROM pg_inherits WHERE inhparent = $1::regclass`, [`${p}tokens`])).rows[0].n as number

    const oldLookup = (jti: string) => pool.query({ name: 'old', text: `SELECT EXISTS (SELECT 1 FROM ${old} WHERE jti = $2 AND aud = ANY($1::text[]) AND (expires_at IS NULL OR expires_at > $3))`, values: [['api'], jti, Date.now()] })
    const storeLookup = (jti: string) => store.lookup({ audiences: ['api'], jti, includeGrant: false })
    await lookups(storeLookup, 500)
    await lookups(oldLookup, 500)
    const v4Before = latency(durations(await lookups(oldLookup, 5000)))
    const before = latency(durations(await lookups(storeLookup, 5000)))

    // As if the day had passed: the purge drops tomorrow's partition (1M entries).
    const purgeAt = (today + 2) * DAY_MS
    const purged = await duringPurge(storeLookup, () => store.purgeExpired(purgeAt))
    log(`pg-purge: partitioned purge: ${purged.result} entries in ${purged.ms.toFixed(0)} ms`)
    const deleted = await duringPurge(oldLookup, async () =>
      (await pool.query(`DELETE FROM ${old} WHERE expires_at IS NOT NULL AND expires_at <= $1`, [purgeAt])).rowCount ?? 0)
    log(`pg-purge: version 4 purge: ${deleted.result} rows DELETEd in ${deleted.ms.toFixed(0)} ms`)
    const dead = Number((await pool.query(`SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = $1`, [old])).rows[0]?.n_dead_tup ?? 0)
    return {
      rows, partitions, version, before, during: purged.during, purgeMs: purged.ms, removed: purged.result,
      v4Before, v4During: deleted.during, v4DeleteMs: deleted.ms, v4DeadTuples: dead,
    }
  } finally {
    await pool.query(`DROP TABLE IF EXISTS ${old}`)
    for (const t of ['schema', 'tokens', 'clients', 'subjects', 'sessions', 'grants', 'leases', 'claims', 'log', 'log_trim']) await pool.query(`DROP TABLE IF EXISTS ${p}${t}`)
    await store.close()
    await pool.end()
  }
}

if (process.argv[1] === import.meta.filename) {
  const ms = (l: Latency) => `n=${String(l.samples).padStart(6)}  p50 ${l.p50.toFixed(3)} ms  p99 ${l.p99.toFixed(3)} ms  max ${l.max.toFixed(3)} ms`
  const json = process.argv.includes('--json')
  measurePgPurge(Number(process.env.PURGE_ROWS ?? 1_000_000), (line) => (json ? console.error : console.log)(line)).then((r) => {
    if (json) return console.log(JSON.stringify(r))
    console.log(r.version)
    console.log(`idle, the store's whole lookup (${r.partitions} partitions)`.padEnd(58), ms(r.before))
    console.log('during the purge (DROP of the day)'.padEnd(58), ms(r.during))
    console.log('idle, version 4 table (one index)'.padEnd(58), ms(r.v4Before))
    console.log('during the purge, version 4 (DELETE of 1M rows)'.padEnd(58), ms(r.v4During))
    console.log(`version 4 table after its DELETE: ${r.v4DeadTuples} dead tuples for VACUUM; partitioned: none (the file is unlinked)`)
  }).catch((err) => { console.error(err); process.exit(1) })
}
