import t from 'tap'
import { DAY_MS } from '../../src/stores/postgres-partitions.js'
import { PostgresStore, postgresSchema } from '../../src/stores/postgres.js'
import { runStoreSuite } from '../../src/testing/store-suite.js'
import { connectPostgres, uniqueName } from '../helpers/services.js'

const pool = await connectPostgres(t)
if (pool) {
  const prefixes: string[] = []
  t.teardown(async () => {
    for (const p of prefixes) {
      for (const table of ['schema', 'tokens', 'clients', 'subjects', 'sessions', 'grants', 'leases', 'claims', 'log', 'log_trim']) await pool.query(`DROP TABLE IF EXISTS ${p}${table}`)
    }
  })
  /**
   * The tables of schema version 2 as that release created them (rules without issuers);
   * version 1 is the same without the sessions table.
   */
  const version2Tables = async (tablePrefix: string) => {
    const p = tablePrefix
    await pool.query(postgresSchema(p))
    await pool.query(`DROP TABLE ${p}clients, ${p}subjects, ${p}sessions;
      CREATE TABLE ${p}clients (client_id text NOT NULL, audience text NOT NULL, revoked_at bigint NOT NULL, expires_at bigint, PRIMARY KEY (client_id, audience));
      CREATE TABLE ${p}subjects (subject text PRIMARY KEY, revoked_at bigint NOT NULL, expires_at bigint);
      CREATE TABLE ${p}sessions (session_id text PRIMARY KEY, revoked_at bigint NOT NULL, expires_at bigint);
      UPDATE ${p}schema SET version = 2`)
  }

  const fresh = () => {
    const tablePrefix = uniqueName('jwtr').toLowerCase() + '_'
    prefixes.push(tablePrefix)
    return tablePrefix
  }

  runStoreSuite(t, () => new PostgresStore({ pool, tablePrefix: fresh() }), { trimmedStore: (options) => new PostgresStore({ pool, tablePrefix: fresh(), ...options }) })

  t.test('migration is idempotent and safe when instances start together', async (t) => {
    const tablePrefix = fresh()
    const stores = [1, 2, 3].map(() => new PostgresStore({ pool, tablePrefix }))
    await Promise.all(stores.map((s) => s.ready()))
    const again = new PostgresStore({ pool, tablePrefix })
    await again.ready()
    const { rows } = await pool.query(`SELECT version FROM ${tablePrefix}schema`)
    t.same(rows, [{ version: 5 }], 'one version row')
  })

  t.test('migrate: false uses tables the user created from postgresSchema()', async (t) => {
    const tablePrefix = fresh()
    await pool.query(postgresSchema(tablePrefix))
    const store = new PostgresStore({ pool, tablePrefix, migrate: false })
    await store.revokeToken({ aud: 'a', jti: 'j', expiresAt: null })
    t.equal((await store.lookup({ audiences: ['a'], jti: 'j', includeGrant: false })).tokenRevoked, true)
    t.throws(() => new PostgresStore({ pool, tablePrefix: 'bad; DROP TABLE x' }), /tablePrefix must match/)
  })

  t.test('a lost LISTEN connection is re-established, with a cache flush', async (t) => {
    const tablePrefix = fresh()
    const store = new PostgresStore({ pool, tablePrefix, reconnectDelay: 50 })
    t.teardown(() => store.close())
    const writer = new PostgresStore({ pool, tablePrefix })
    const events: string[] = []
    await store.subscribe((c) => events.push(c.type === 'token' ? `token:${c.jti}` : c.type))
    const waitFor = async (what: string) => {
      const deadline = Date.now() + 5000
      while (!events.includes(what) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
      return events.includes(what)
    }
    await writer.revokeToken({ aud: 'a', jti: 'before', expiresAt: null })
    t.ok(await waitFor('token:before'), 'notified before the fault')
    const { rowCount } = await pool.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = 'LISTEN ${tablePrefix}changes'`)
    t.equal(rowCount, 1, 'the LISTEN backend was terminated')
    t.ok(await waitFor('reset'), 'caches are told to flush')
    // The second flush comes once LISTEN has completed on the new connection; a LISTEN
    // merely visible in pg_stat_activity may not be registered yet (a NOTIFY then is lost).
    const deadline = Date.now() + 5000
    while (events.filter((e) => e === 'reset').length < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
    t.equal(events.filter((e) => e === 'reset').length, 2, 'a second flush once listening again')
    await writer.revokeToken({ aud: 'a', jti: 'after', expiresAt: null })
    t.ok(await waitFor('token:after'), 'notifications flow again after the reconnect')
  })

  t.test('tables at schema version 1 (before sessions) are upgraded in place, their revocations kept', async (t) => {
    const tablePrefix = fresh()
    await version2Tables(tablePrefix)
    await pool.query(`DROP TABLE ${tablePrefix}sessions; UPDATE ${tablePrefix}schema SET version = 1`)
    const old = new PostgresStore({ pool, tablePrefix, migrate: false })
    await t.rejects(old.ready(), { code: 'FST_JWT_REVOCATION_STORE', message: /42P01|older than this package/ }, 'migrate: false names the missing upgrade')
    await pool.query(`INSERT INTO ${tablePrefix}subjects (subject, revoked_at, expires_at) VALUES ('user-1', 1000, NULL)`)
    const store = new PostgresStore({ pool, tablePrefix })
    await store.ready()
    const { rows } = await pool.query(`SELECT version FROM ${tablePrefix}schema`)
    t.same(rows, [{ version: 5 }], 'the version row is bumped, not duplicated')
    await store.revokeSession({ sessionId: 'sid-1', revokedAt: 2000, expiresAt: null })
    const state = await store.lookup({ audiences: ['a'], subject: 'user-1', sessionId: 'sid-1', includeGrant: false })
    t.same({ subjectRevokedAt: state.subjectRevokedAt, sessionRevokedAt: state.sessionRevokedAt }, { subjectRevokedAt: 1000, sessionRevokedAt: 2000 })
    await pool.query(`UPDATE ${tablePrefix}schema SET version = 1`)
    await t.rejects(new PostgresStore({ pool, tablePrefix, migrate: false }).ready(), { message: /schema version 1, older than this package \(5: [^)]*\); apply postgresSchema\(\)/ })
  })

  t.test('tables at schema version 2 (rules without issuers) are upgraded in place: their rules apply to every issuer', async (t) => {
    const tablePrefix = fresh()
    await version2Tables(tablePrefix)
    await pool.query(`INSERT INTO ${tablePrefix}clients VALUES ('partner', '*', 1000, NULL);
      INSERT INTO ${tablePrefix}subjects VALUES ('user-1', 2000, NULL);
      INSERT INTO ${tablePrefix}sessions VALUES ('sid-1', 3000, NULL)`)
    await t.rejects(new PostgresStore({ pool, tablePrefix, migrate: false }).ready(), { message: /schema version 2, older than this package \(5/ }, 'migrate: false names the missing upgrade')
    const store = new PostgresStore({ pool, tablePrefix })
    await store.ready()
    t.same((await pool.query(`SELECT version FROM ${tablePrefix}schema`)).rows, [{ version: 5 }])
    for (const issuer of [undefined, 'https://a.test/', 'https://b.test/']) {
      const state = await store.lookup({ audiences: ['a'], clientId: 'partner', subject: 'user-1', sessionId: 'sid-1', ...(issuer ? { issuer } : {}), includeGrant: false })
      t.same([state.clientRevokedAt, state.subjectRevokedAt, state.sessionRevokedAt], [1000, 2000, 3000], `old rules apply to ${issuer ?? 'a token without an issuer'}`)
    }
    await store.revokeClient({ clientId: 'partner', audience: '*', issuer: 'https://a.test/', revokedAt: 5000, expiresAt: null })
    await store.revokeSubject({ subject: 'user-1', issuer: 'https://a.test/', revokedAt: 5000, expiresAt: null })
    const a = await store.lookup({ audiences: ['a'], clientId: 'partner', subject: 'user-1', issuer: 'https://a.test/', includeGrant: false })
    const b = await store.lookup({ audiences: ['a'], clientId: 'partner', subject: 'user-1', issuer: 'https://b.test/', includeGrant: false })
    t.same([a.clientRevokedAt, a.subjectRevokedAt, b.clientRevokedAt, b.subjectRevokedAt], [5000, 5000, 1000, 2000], 'a scoped rule sits beside the old one')
    const again = new PostgresStore({ pool, tablePrefix })
    await again.ready()
    t.same((await pool.query(`SELECT count(*)::int AS n FROM ${tablePrefix}clients`)).rows, [{ n: 2 }], 'a second migration changes nothing')
  })

  t.test('purgeExpired deletes expired rows only', async (t) => {
    const store = new PostgresStore({ pool, tablePrefix: fresh() })
    // Expired two days ago: no partition holds that day, so the entry sits in tokens_rest until purged.
    await store.revokeToken({ aud: 'a', jti: 'old', expiresAt: Date.now() - 2 * DAY_MS })
    await store.revokeClient({ clientId: 'c', audience: '*', revokedAt: 1, expiresAt: Date.now() - 1000 })
    await store.revokeSession({ sessionId: 's', revokedAt: 1, expiresAt: Date.now() - 1000 })
    await store.revokeToken({ aud: 'a', jti: 'new', expiresAt: Date.now() + 60_000 })
    t.equal(await store.purgeExpired(Date.now()), 3)
    t.same((await store.listRevokedTokens({})).map((e) => e.jti), ['new'])
  })

  /** The day partitions of the token table under `p`, oldest first. */
  const partitionDays = async (p: string) => (await pool.query(`SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = $1::regclass ORDER BY c.relname`, [`${p}tokens`])).rows.map((r: { relname: string }) => r.relname.slice(p.length))
  const revoked = (store: PostgresStore, jti: string) => store.lookup({ audiences: ['a'], jti, includeGrant: false }).then((s) => s.tokenRevoked)

  t.test('purgeExpired drops the partitions of days that have passed, whole, and never an unexpired entry', async (t) => {
    const p = fresh()
    const store = new PostgresStore({ pool, tablePrefix: p })
    await store.ready()
    const today = Math.floor(Date.now() / DAY_MS)
    const dayNames = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `tokens_d${from + i}`)
    t.same(await partitionDays(p), [...dayNames(today, today + 31), 'tokens_rest'], 'today and the 31 days after, and the rest')
    const expiries: Record<string, number | null> = {
      today: (today + 1) * DAY_MS - 1, tomorrow: (today + 1) * DAY_MS + 5, day2: (today + 2) * DAY_MS, day3: (today + 3) * DAY_MS + 1, never: null, far: (today + 90) * DAY_MS,
    }
    await store.revokeTokens(Object.entries(expiries).map(([jti, expiresAt]) => ({ aud: 'a', jti, expiresAt })))
    t.same((await pool.query(`SELECT jti FROM ${p}tokens_rest ORDER BY jti`)).rows, [{ jti: 'far' }, { jti: 'never' }], 'beyond the days created, and never, in the rest')

    // Two days and a bit later: today's and tomorrow's partitions hold only expired entries.
    const later = (today + 2) * DAY_MS + 1000
    t.equal(await store.purgeExpired(later), 2, 'the entries of the two dropped days')
    t.same(await partitionDays(p), [...dayNames(today + 2, today + 2 + 31), 'tokens_rest'], 'dropped whole, and the days ahead created')
    const left = (await pool.query(`SELECT jti FROM ${p}tokens ORDER BY jti`)).rows.map((r: { jti: string }) => r.jti)
    t.same(left, ['day2', 'day3', 'far', 'never'], 'every entry not expired at that time is kept')
    for (const jti of ['day2', 'day3', 'far', 'never']) t.equal(await revoked(store, jti), true, `${jti} still revoked`)

    // Within a day, nothing is deleted early: day2 expires at its first millisecond, its partition stays until the day ends.
    t.equal(await store.purgeExpired((today + 3) * DAY_MS - 1), 0)
    t.ok((await partitionDays(p)).includes(`tokens_d${today + 2}`))
  })

  /** A store under a fresh prefix with `perDay` entries expiring on each of today and tomorrow, and one the day after. */
  const twoDaysOfEntries = async (perDay: number) => {
    const p = fresh()
    const store = new PostgresStore({ pool, tablePrefix: p })
    const today = Math.floor(Date.now() / DAY_MS)
    const entries = [today, today + 1].flatMap((day) => Array.from({ length: perDay }, (_, i) => ({ aud: 'a', jti: `${day}-${i}`, expiresAt: day * DAY_MS + i })))
    await store.revokeTokens([...entries, { aud: 'a', jti: 'kept', expiresAt: (today + 2) * DAY_MS + 5 }])
    return { p, store, today, later: (today + 2) * DAY_MS + 1 }
  }

  t.test('a day table left detached by a purge stopped before its DROP is counted and dropped by the next purge', async (t) => {
    const { p, store, today, later } = await twoDaysOfEntries(3)
    // What a purge stopped after its first step leaves: the day detached, its table still there.
    await pool.query(`ALTER TABLE ${p}tokens DETACH PARTITION ${p}tokens_d${today}`)
    t.notOk((await partitionDays(p)).includes(`tokens_d${today}`))
    t.equal(await store.purgeExpired(later), 6, 'the detached day and the partition of the next one')
    t.equal((await pool.query('SELECT to_regclass($1) AS t', [`${p}tokens_d${today}`])).rows[0].t, null, 'the detached table is gone')
    t.same((await store.listRevokedTokens({})).map((e) => e.jti), ['kept'])
    t.equal(await store.purgeExpired(later), 0, 'nothing left to count twice')
  })

  t.test('instances purging together: each day dropped once, counted once, nothing live lost', async (t) => {
    const { p, store, later } = await twoDaysOfEntries(500)
    const others = [1, 2].map(() => new PostgresStore({ pool, tablePrefix: p }))
    const counts = await Promise.all([store, ...others].map((s) => s.purgeExpired(later)))
    t.equal(counts.reduce((a, b) => a + b, 0), 1000, 'the entries of the two days, once')
    t.same((await store.listRevokedTokens({})).map((e) => e.jti), ['kept'])
    t.equal(await revoked(store, 'kept'), true)
  })

  t.test('while another instance drops days, a purge leaves them to it, and the next one drops them', async (t) => {
    const { p, store, today, later } = await twoDaysOfEntries(2)
    const other = await pool.connect()
    t.teardown(() => other.release())
    await other.query('SELECT pg_advisory_lock(hashtext($1))', [`${p}tokens_drop`])
    t.equal(await store.purgeExpired(later), 0, 'the days are the other instance\'s to drop')
    t.ok((await partitionDays(p)).includes(`tokens_d${today}`), 'not dropped meanwhile')
    await other.query('SELECT pg_advisory_unlock(hashtext($1))', [`${p}tokens_drop`])
    t.equal(await store.purgeExpired(later), 4)
    t.notOk((await partitionDays(p)).includes(`tokens_d${today + 1}`))
  })

  t.test('a version-4 token table with rows upgrades in place: its revoked jtis stay revoked throughout', async (t) => {
    const p = fresh()
    await pool.query(postgresSchema(p))
    await pool.query(`DROP TABLE ${p}tokens;
      CREATE TABLE ${p}tokens (aud text NOT NULL, jti text NOT NULL, expires_at bigint, PRIMARY KEY (aud, jti));
      CREATE INDEX ${p}tokens_expires_at ON ${p}tokens (expires_at) WHERE expires_at IS NOT NULL;
      UPDATE ${p}schema SET version = 4`)
    const now = Date.now()
    await pool.query(`INSERT INTO ${p}tokens SELECT 'a', 'live-' || i, $1::bigint + i::bigint * 3600000 FROM generate_series(1, 2000) i;
      INSERT INTO ${p}tokens VALUES ('a', 'never', NULL), ('a', 'expired', $2::bigint)`.replace('$1::bigint', String(now + 60_000)).replace('$2::bigint', String(now - 1000)))
    await t.rejects(new PostgresStore({ pool, tablePrefix: p, migrate: false }).ready(),
      { message: /schema version 4, older than this package \(5: the tokens table partitioned by expiry day\); apply postgresSchema\(\)/ }, 'migrate: false names the upgrade')

    // Lookups as version 4 made them, while the upgrade runs: every one answers revoked.
    const v4Lookup = `SELECT EXISTS (SELECT 1 FROM ${p}tokens WHERE jti = $1 AND aud = 'a' AND (expires_at IS NULL OR expires_at > $2)) AS r`
    let migrating = true
    let lookups = 0
    let passed = 0
    const traffic = (async () => {
      while (migrating) {
        const jti = lookups % 2 === 0 ? 'never' : `live-${1 + (lookups % 2000)}`
        const { rows } = await pool.query(v4Lookup, [jti, Date.now()])
        lookups++
        if (rows[0].r !== true) passed++
      }
    })()
    const store = new PostgresStore({ pool, tablePrefix: p })
    await store.ready()
    migrating = false
    await traffic
    t.equal(passed, 0, `no lookup during the upgrade let a revoked token pass (${lookups} made)`)
    t.same((await pool.query(`SELECT version FROM ${p}schema`)).rows, [{ version: 5 }])
    t.equal((await pool.query(`SELECT relkind FROM pg_class WHERE oid = $1::regclass`, [`${p}tokens`])).rows[0].relkind, 'p', 'partitioned')
    t.equal(await revoked(store, 'never'), true)
    t.equal(await revoked(store, 'expired'), false)
    for (const i of [1, 500, 1000, 2000]) t.equal(await revoked(store, `live-${i}`), true, `live-${i} stays revoked`)
    t.equal((await pool.query(`SELECT count(*)::int AS n FROM ${p}tokens`)).rows[0].n, 2001, 'the live rows were copied, the expired one left behind')
    const rest = (await pool.query(`SELECT count(*)::int AS n FROM ${p}tokens_rest WHERE expiry_day <= $1`, [Math.floor(now / DAY_MS) + 31])).rows[0].n
    t.equal(rest, 0, 'the rows of the days created were moved into their partitions')
    t.equal((await store.listRevokedTokens({ aud: 'a' })).length, 2001)
    const again = new PostgresStore({ pool, tablePrefix: p })
    await again.ready()
    t.equal((await pool.query(`SELECT count(*)::int AS n FROM ${p}tokens`)).rows[0].n, 2001, 'a second migration changes nothing')
  })

  t.test('100,000 entries over several days: each live one revoked after purges, the expired days dropped', async (t) => {
    const p = fresh()
    const store = new PostgresStore({ pool, tablePrefix: p })
    const today = Math.floor(Date.now() / DAY_MS)
    const expiryOf = (i: number) => (today + (i % 5)) * DAY_MS + (i % 997) * 60_000
    for (let start = 0; start < 100_000; start += 10_000) {
      await store.revokeTokens(Array.from({ length: 10_000 }, (_, k) => ({ aud: 'a', jti: `t-${start + k}`, expiresAt: expiryOf(start + k) })))
    }
    const at = (today + 2) * DAY_MS + 30 * 60_000
    const expected = new Set<string>()
    for (let i = 0; i < 100_000; i++) if (expiryOf(i) > at) expected.add(`t-${i}`)
    await store.purgeExpired(at)
    t.notOk((await partitionDays(p)).includes(`tokens_d${today + 1}`), 'the days that passed were dropped')
    const { rows } = await pool.query(`SELECT jti FROM ${p}tokens WHERE expires_at > $1`, [at])
    t.equal(rows.length, expected.size, 'every entry still live is kept')
    t.ok(rows.every((r: { jti: string }) => expected.has(r.jti)))
    // Purging as if two days had passed took today's and tomorrow's entries; every other one is listed (live now).
    const kept = new Set<string>()
    for (let i = 0; i < 100_000; i++) if (Math.floor(expiryOf(i) / DAY_MS) >= today + 2) kept.add(`t-${i}`)
    const listed = (await store.listRevokedTokens({ aud: 'a' })).map((e) => e.jti)
    t.equal(listed.length, kept.size)
    t.ok(listed.every((jti) => kept.has(jti)), 'exactly the entries of the days kept')
    for (let i = 0; i < 100_000; i += 4999) if (kept.has(`t-${i}`)) t.equal(await revoked(store, `t-${i}`), true, `t-${i}`)
  })
}
