import t from 'tap'
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
    t.same(rows, [{ version: 4 }], 'one version row')
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
    t.same(rows, [{ version: 4 }], 'the version row is bumped, not duplicated')
    await store.revokeSession({ sessionId: 'sid-1', revokedAt: 2000, expiresAt: null })
    const state = await store.lookup({ audiences: ['a'], subject: 'user-1', sessionId: 'sid-1', includeGrant: false })
    t.same({ subjectRevokedAt: state.subjectRevokedAt, sessionRevokedAt: state.sessionRevokedAt }, { subjectRevokedAt: 1000, sessionRevokedAt: 2000 })
    await pool.query(`UPDATE ${tablePrefix}schema SET version = 1`)
    await t.rejects(new PostgresStore({ pool, tablePrefix, migrate: false }).ready(), { message: /schema version 1, older than this package \(4\); apply postgresSchema\(\)/ })
  })

  t.test('tables at schema version 2 (rules without issuers) are upgraded in place: their rules apply to every issuer', async (t) => {
    const tablePrefix = fresh()
    await version2Tables(tablePrefix)
    await pool.query(`INSERT INTO ${tablePrefix}clients VALUES ('partner', '*', 1000, NULL);
      INSERT INTO ${tablePrefix}subjects VALUES ('user-1', 2000, NULL);
      INSERT INTO ${tablePrefix}sessions VALUES ('sid-1', 3000, NULL)`)
    await t.rejects(new PostgresStore({ pool, tablePrefix, migrate: false }).ready(), { message: /schema version 2, older than this package \(4\)/ }, 'migrate: false names the missing upgrade')
    const store = new PostgresStore({ pool, tablePrefix })
    await store.ready()
    t.same((await pool.query(`SELECT version FROM ${tablePrefix}schema`)).rows, [{ version: 4 }])
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
    await store.revokeToken({ aud: 'a', jti: 'old', expiresAt: Date.now() - 1000 })
    await store.revokeClient({ clientId: 'c', audience: '*', revokedAt: 1, expiresAt: Date.now() - 1000 })
    await store.revokeSession({ sessionId: 's', revokedAt: 1, expiresAt: Date.now() - 1000 })
    await store.revokeToken({ aud: 'a', jti: 'new', expiresAt: Date.now() + 60_000 })
    t.equal(await store.purgeExpired(Date.now()), 3)
    t.same((await store.listRevokedTokens({})).map((e) => e.jti), ['new'])
  })
}
