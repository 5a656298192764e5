import type { Pool, PoolClient } from 'pg'

// PostgresStore's token entries, partitioned by the day they expire: a day whose last
// millisecond has passed holds only expired entries, and is dropped whole. No DELETE
// over the table, so no dead rows for VACUUM to chase and no purge competing with
// lookups for the same pages.
//
// - `tokens` is PARTITION BY RANGE (expiry_day): days since the epoch of `expires_at`.
// - `tokens_d<day>` holds one day; they are created for today and DAYS_AHEAD days after
//   at `ready()` and at each purge.
// - `tokens_rest` is the DEFAULT partition: entries that never expire (expiry_day
//   NEVER_DAY), and those expiring past the days created so far (or on a day already
//   dropped). When a day's partition is created, its entries are moved out of it in the
//   same transaction; the few expired ones left in it are deleted in small batches.
// The primary key includes the partition key (a PostgreSQL requirement): (aud, jti,
// expiry_day). A jti revoked again with an expiry on another day gets a second row, which
// is harmless: it is revoked while any of its rows is live.

export const DAY_MS = 86_400_000
/** expiry_day of an entry that never expires (the largest integer: only `tokens_rest` holds it). */
export const NEVER_DAY = 2_147_483_647
/** Day partitions created after today's: lookups probe each, so a month, not a year. */
export const DAYS_AHEAD = 31
/** Most expired rows one DELETE removes from `tokens_rest` (short transactions, few locks). */
const REST_DELETE_BATCH = 5000
/** Partition DDL waits this long for the table's lock, then gives up until the next purge: lookups would queue behind it. */
const DDL_LOCK_TIMEOUT = "SET LOCAL lock_timeout = '500ms'"

/** The SQL expression of the expiry day of `expiresAt` (a bigint expression, null for never). */
export function expiryDayOf (expiresAt: string): string {
  return `COALESCE(GREATEST(LEAST(${expiresAt} / ${DAY_MS}, ${NEVER_DAY - 1}), 0)::integer, ${NEVER_DAY})`
}

/** The day `ms` falls in. */
export const dayOf = (ms: number): number => Math.floor(ms / DAY_MS)

/**
 * The schema of the token table (version 5), and the in-place upgrade of a version 4
 * table. Creates the partitions of today and the DAYS_AHEAD days after (by the database's
 * clock) unless `tokens_rest` holds entries of that day (the store moves those). An old
 * table is renamed, its live rows copied into the partitioned one and it is dropped, all
 * in the migration's transaction: a lookup waits for it (the rename takes the old table's
 * lock) and then reads the new table, so none finds neither.
 */
export function tokensSchema (p: string): string {
  return `DO $$
BEGIN
  IF (SELECT relkind FROM pg_class WHERE oid = to_regclass('${p}tokens')) = 'r' THEN
    ALTER TABLE ${p}tokens RENAME TO ${p}tokens_v4;
    ALTER TABLE ${p}tokens_v4 RENAME CONSTRAINT ${p}tokens_pkey TO ${p}tokens_v4_pkey;
  END IF;
END $$;
CREATE TABLE IF NOT EXISTS ${p}tokens (
  aud text NOT NULL,
  jti text NOT NULL,
  expires_at bigint,
  expiry_day integer NOT NULL,
  PRIMARY KEY (aud, jti, expiry_day)
) PARTITION BY RANGE (expiry_day);
CREATE TABLE IF NOT EXISTS ${p}tokens_rest PARTITION OF ${p}tokens DEFAULT;
CREATE INDEX IF NOT EXISTS ${p}tokens_rest_day ON ${p}tokens_rest (expiry_day);
DO $$
DECLARE today integer := (extract(epoch FROM clock_timestamp()) * 1000)::bigint / ${DAY_MS};
BEGIN
  FOR d IN today .. today + ${DAYS_AHEAD} LOOP
    IF to_regclass('${p}tokens_d' || d) IS NULL AND NOT EXISTS (SELECT 1 FROM ${p}tokens_rest WHERE expiry_day = d) THEN
      EXECUTE format('CREATE TABLE %I PARTITION OF ${p}tokens FOR VALUES FROM (%s) TO (%s)', '${p}tokens_d' || d, d, d + 1);
    END IF;
  END LOOP;
  IF to_regclass('${p}tokens_v4') IS NOT NULL THEN
    INSERT INTO ${p}tokens (aud, jti, expires_at, expiry_day)
      SELECT aud, jti, expires_at, ${expiryDayOf('expires_at')} FROM ${p}tokens_v4
      WHERE expires_at IS NULL OR expires_at > (extract(epoch FROM clock_timestamp()) * 1000)::bigint
      ON CONFLICT DO NOTHING;
    DROP TABLE ${p}tokens_v4;
  END IF;
END $$;`
}

/** The day partitions of the token table, oldest first (their names end with the day). */
export async function dayPartitions (pool: Pool | PoolClient, p: string): Promise<number[]> {
  const { rows } = await pool.query(`SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = to_regclass($1) AND c.relname LIKE $2`, [`${p}tokens`, `${p.replace(/_/g, '\\_')}tokens\\_d%`])
  return (rows as Array<{ relname: string }>).map((r) => Number(r.relname.slice(`${p}tokens_d`.length))).sort((a, b) => a - b)
}

/** Runs `run` in a transaction on one client of `pool`; rolled back if it throws. */
export async function inTransaction (pool: Pool, run: (client: PoolClient) => Promise<void>): Promise<void> {
  const client = await pool.connect()
  try {
    await inClientTransaction(client, () => run(client))
  } finally {
    client.release()
  }
}

/** Runs `run` in a transaction on `client`; rolled back if it throws. */
async function inClientTransaction (client: PoolClient, run: () => Promise<void>): Promise<void> {
  await client.query('BEGIN')
  try {
    await run()
    await client.query('COMMIT')
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    throw err
  }
}

/**
 * Creates the partition of `day`: an empty table with the parent's key, filled with that
 * day's entries taken out of `tokens_rest`, then attached. One transaction holding the
 * table's exclusive lock: ATTACH alone takes a weaker one, and a lookup planned before the
 * attach but reading after the commit would scan `tokens_rest` without the entries moved
 * and not the new partition. The lock lasts as long as the move: the entries of a day a
 * month away, few.
 */
async function createDay (pool: Pool, p: string, day: number): Promise<void> {
  const name = `${p}tokens_d${day}`
  await inTransaction(pool, async (client) => {
    await client.query(DDL_LOCK_TIMEOUT)
    await client.query(`LOCK TABLE ${p}tokens IN ACCESS EXCLUSIVE MODE`)
    await client.query(`CREATE TABLE ${name} (LIKE ${p}tokens INCLUDING DEFAULTS, PRIMARY KEY (aud, jti, expiry_day),
      CHECK (expiry_day >= ${day} AND expiry_day < ${day + 1}))`)
    await client.query(`WITH moved AS (DELETE FROM ${p}tokens_rest WHERE expiry_day = ${day} RETURNING aud, jti, expires_at, expiry_day)
      INSERT INTO ${name} SELECT * FROM moved`)
    await client.query(`ALTER TABLE ${p}tokens ATTACH PARTITION ${name} FOR VALUES FROM (${day}) TO (${day + 1})`)
  })
}

/** Day tables no longer attached to the token table: detached by a purge that stopped before dropping them. */
async function detachedDays (client: PoolClient, p: string): Promise<number[]> {
  const { rows } = await client.query(`SELECT c.relname FROM pg_class c
    WHERE c.relkind = 'r' AND NOT c.relispartition AND c.relname LIKE $2
      AND c.relnamespace = (SELECT relnamespace FROM pg_class WHERE oid = to_regclass($1))`, [`${p}tokens`, `${p.replace(/_/g, '\\_')}tokens\\_d%`])
  return (rows as Array<{ relname: string }>).map((r) => Number(r.relname.slice(`${p}tokens_d`.length))).filter(Number.isInteger)
}

/**
 * Drops each day partition whose day ended at or before `now`, in two steps, and returns
 * how many entries they held. First it is detached: the parent's ACCESS EXCLUSIVE lock,
 * which lookups queue behind, is held for a change of the catalog only. Then the table,
 * now read by no lookup, is counted and dropped (the files go at that commit, tens of ms
 * for a million entries, which a DROP of the partition itself did under the parent's
 * lock). `DETACH PARTITION … CONCURRENTLY` would spare the parent's lock altogether, but
 * PostgreSQL refuses it while the table has a DEFAULT partition (`tokens_rest`).
 *
 * A purge stopped between the steps leaves a day table detached: the next one drops it
 * (and counts it). Instances purging together take turns by an advisory lock: one drops,
 * the others skip to what follows (a DROP waiting for another's would deadlock).
 */
async function dropPassedDays (pool: Pool, p: string, now: number): Promise<number> {
  const lockKey = `${p}tokens_drop`
  const client = await pool.connect()
  let broken = false
  try {
    const { rows: [lock] } = await client.query('SELECT pg_try_advisory_lock(hashtext($1)) AS taken', [lockKey])
    if (!(lock as { taken: boolean }).taken) return 0
    try {
      const passed = (day: number) => (day + 1) * DAY_MS <= now
      for (const day of (await dayPartitions(client, p)).filter(passed)) await detachDay(client, p, day)
      let removed = 0
      for (const day of (await detachedDays(client, p)).filter(passed)) removed += await dropDetachedDay(client, p, day)
      return removed
    } finally {
      // A session that cannot unlock must not go back to the pool holding the lock.
      await client.query('SELECT pg_advisory_unlock(hashtext($1))', [lockKey]).catch(() => { broken = true })
    }
  } catch (err) {
    // The connection may be what failed: it is not reused.
    broken = true
    throw err
  } finally {
    client.release(broken)
  }
}

/** Detaches the partition of `day` from the token table (entries of that day revoked later land in `tokens_rest`). */
async function detachDay (client: PoolClient, p: string, day: number): Promise<void> {
  await inClientTransaction(client, async () => {
    await client.query(DDL_LOCK_TIMEOUT)
    await client.query(`ALTER TABLE ${p}tokens DETACH PARTITION ${p}tokens_d${day}`)
  })
}

/** Counts and drops the detached table of `day`. The count runs without parallel workers, which would take the CPUs lookups run on. */
async function dropDetachedDay (client: PoolClient, p: string, day: number): Promise<number> {
  const name = `${p}tokens_d${day}`
  let removed = 0
  await inClientTransaction(client, async () => {
    await client.query(DDL_LOCK_TIMEOUT)
    await client.query('SET LOCAL max_parallel_workers_per_gather = 0')
    await client.query(`LOCK TABLE ${name} IN ACCESS EXCLUSIVE MODE`)
    const { rows } = await client.query(`SELECT count(*)::bigint AS n FROM ${name}`)
    removed = Number((rows[0] as { n: string }).n)
    await client.query(`DROP TABLE ${name}`)
  })
  return removed
}

/**
 * Drops every day partition whose day ended at or before `now` (each entry in it expired),
 * creates those of today and the DAYS_AHEAD days after, and deletes the expired entries
 * left in `tokens_rest` in small batches. Returns how many entries went.
 */
export async function purgeTokens (pool: Pool, p: string, now: number): Promise<number> {
  let removed = await dropPassedDays(pool, p, now)
  const today = dayOf(now)
  await ensureDays(pool, p, today)
  for (;;) {
    const { rowCount } = await pool.query(`DELETE FROM ${p}tokens_rest WHERE ctid = ANY (ARRAY(
      SELECT ctid FROM ${p}tokens_rest WHERE expiry_day <= $1 AND expires_at <= $2 LIMIT ${REST_DELETE_BATCH} FOR UPDATE SKIP LOCKED))`, [today, now])
    removed += rowCount ?? 0
    if ((rowCount ?? 0) < REST_DELETE_BATCH) return removed
  }
}

/** Creates the partitions of `today` and the DAYS_AHEAD days after it that are missing. */
export async function ensureDays (pool: Pool, p: string, today: number, existing?: number[]): Promise<void> {
  const have = new Set(existing ?? await dayPartitions(pool, p))
  for (let day = today; day <= today + DAYS_AHEAD; day++) {
    if (have.has(day)) continue
    try {
      await createDay(pool, p, day)
    } catch (err) {
      // Another instance created it first (42P07): that is the partition wanted.
      if ((err as { code?: unknown }).code !== '42P07') throw err
    }
  }
}
