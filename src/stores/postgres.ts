import type { Pool, PoolClient, QueryResult } from 'pg'
import { MAX_TIMER_MS, parseDuration, type Duration } from '../options/duration.js'
import { GrantConflictError, StoreError } from '../errors.js'
import { optionKeys, refuseUnknownKeys } from '../options/option-keys.js'
import { ChangeFeed, encodeChange, issuerMember } from './change-feed.js'
import { authorOf, historyLimit, latestExpiry } from './log-entries.js'
import { logLimits, type LogOptions } from './revocation-log.js'
import { advance, decodeCursor, encodeCursor, START_WINDOW, type LogCursor } from './postgres-log.js'
import { decodeTokenCursor, encodeTokenCursor, isTokenKey, tokenPageLimit } from './token-pages.js'
import { dayOf, ensureDays, expiryDayOf, inTransaction, purgeTokens, tokensSchema } from './postgres-partitions.js'
import type {
  ChangeAuthor, ChangeListener, ClientGrant, ClientRevocation, GrantFilter, HistoryFilter, LogEntry, LoggedChange, LogPage,
  RevocationQuery, RevocationState, RevocationStore, RevokedToken, RevokedTokenPage, SessionRevocation, SubjectRevocation,
  TokenPageRequest,
} from './types.js'

export interface PostgresStoreOptions extends LogOptions {
  /** Your pg Pool; you own its lifecycle. The change feed holds one of its clients. */
  pool: Pool
  /** Prefix of the store's tables (letters, digits, underscores). Default `'jwt_revocation_'`. */
  tablePrefix?: string
  /** Create or upgrade the tables at `ready()`. Set false if you apply `postgresSchema()` through your own migrations. Default true. */
  migrate?: boolean
  /** Time between attempts to re-establish the LISTEN connection: ms, or a string such as `'1s'`. Default 1000. */
  reconnectDelay?: Duration
}

const postgresOptionKeys = optionKeys<PostgresStoreOptions>({ pool: true, tablePrefix: true, migrate: true, reconnectDelay: true, logRetention: true, logMaxEntries: true })

/**
 * 2: session revocations (the `sessions` table). 3: client, subject and session rules
 * scoped to an issuer (an `issuer` column in their primary keys, '' for every issuer).
 * 4: the revocation log (the `log` and `log_trim` tables). 5: the `tokens` table
 * partitioned by expiry day, dropped whole once expired (postgres-partitions.ts).
 * Every version's schema creates what is missing, so it upgrades any earlier one.
 */
const SCHEMA_VERSION = 5
/** Most log rows one trim deletes (each write trims after itself, so it catches up). */
const LOG_TRIM_BATCH = 1000
/** ms between sweeps of expired claims (DPoP proofs live a minute or two). */
const CLAIM_SWEEP_INTERVAL = 60_000
const IDENTIFIER = /^[a-z_][a-z0-9_]{0,40}$/

/**
 * Upgrades a rule table of schema version 1 or 2 in place: its rules become rules for
 * every issuer (issuer ''), and the issuer joins the primary key. Does nothing to a
 * table that has it already.
 */
function issuerScopeUpgrade (table: string, keyColumns: string): string {
  return `ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS issuer text NOT NULL DEFAULT '';
DO $$
DECLARE old_key name;
BEGIN
  SELECT c.conname INTO old_key FROM pg_constraint c
    WHERE c.conrelid = '${table}'::regclass AND c.contype = 'p'
      AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey) AND a.attname = 'issuer');
  IF old_key IS NOT NULL THEN
    EXECUTE format('ALTER TABLE ${table} DROP CONSTRAINT %I, ADD PRIMARY KEY (${keyColumns}, issuer)', old_key);
  END IF;
END $$;`
}

/**
 * The SQL that creates the store's tables, for users who run migrations themselves.
 * Times are milliseconds since the epoch (bigint): exact, and free of time-zone rules.
 */
export function postgresSchema (tablePrefix = 'jwt_revocation_'): string {
  if (!IDENTIFIER.test(tablePrefix)) throw new TypeError('PostgresStore: tablePrefix must match /^[a-z_][a-z0-9_]{0,40}$/')
  const p = tablePrefix
  return `
CREATE TABLE IF NOT EXISTS ${p}schema (version integer NOT NULL);
${tokensSchema(p)}
CREATE TABLE IF NOT EXISTS ${p}clients (
  client_id text NOT NULL,
  audience text NOT NULL,
  issuer text NOT NULL DEFAULT '',
  revoked_at bigint NOT NULL,
  expires_at bigint,
  PRIMARY KEY (client_id, audience, issuer)
);
CREATE INDEX IF NOT EXISTS ${p}clients_expires_at ON ${p}clients (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS ${p}subjects (
  subject text NOT NULL,
  issuer text NOT NULL DEFAULT '',
  revoked_at bigint NOT NULL,
  expires_at bigint,
  PRIMARY KEY (subject, issuer)
);
CREATE INDEX IF NOT EXISTS ${p}subjects_expires_at ON ${p}subjects (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS ${p}sessions (
  session_id text NOT NULL,
  issuer text NOT NULL DEFAULT '',
  revoked_at bigint NOT NULL,
  expires_at bigint,
  PRIMARY KEY (session_id, issuer)
);
CREATE INDEX IF NOT EXISTS ${p}sessions_expires_at ON ${p}sessions (expires_at) WHERE expires_at IS NOT NULL;
${issuerScopeUpgrade(`${p}clients`, 'client_id, audience')}
${issuerScopeUpgrade(`${p}subjects`, 'subject')}
${issuerScopeUpgrade(`${p}sessions`, 'session_id')}
CREATE TABLE IF NOT EXISTS ${p}grants (
  id text PRIMARY KEY,
  client_id text NOT NULL,
  audience text NOT NULL,
  scope text[] NOT NULL,
  created_at bigint NOT NULL,
  UNIQUE (client_id, audience)
);
CREATE TABLE IF NOT EXISTS ${p}leases (
  name text PRIMARY KEY,
  holder text NOT NULL,
  expires_at bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS ${p}claims (
  key text PRIMARY KEY,
  expires_at bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS ${p}claims_expires_at ON ${p}claims (expires_at);
CREATE TABLE IF NOT EXISTS ${p}log (
  id bigserial PRIMARY KEY,
  at bigint NOT NULL,
  type text NOT NULL,
  change jsonb NOT NULL,
  actor text,
  reason text,
  source text NOT NULL
);
CREATE INDEX IF NOT EXISTS ${p}log_at ON ${p}log (at);
CREATE TABLE IF NOT EXISTS ${p}log_trim (trimmed_through bigint NOT NULL);
INSERT INTO ${p}log_trim (trimmed_through) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM ${p}log_trim);
INSERT INTO ${p}schema (version) SELECT ${SCHEMA_VERSION} WHERE NOT EXISTS (SELECT 1 FROM ${p}schema);
UPDATE ${p}schema SET version = ${SCHEMA_VERSION} WHERE version < ${SCHEMA_VERSION};
`
}

/**
 * Largest NOTIFY payload sent: the log carries the change, NOTIFY only wakes the readers
 * (a batch too large for it wakes them with a reset, which a log reader ignores and an
 * instance of an older version obeys).
 */
const NOTIFY_LIMIT = 1000

/**
 * One entry per (aud, jti), keeping the longest expiry (null: forever): one INSERT … ON
 * CONFLICT may not touch the same row twice.
 */
function distinctTokens (entries: RevokedToken[]): RevokedToken[] {
  const byPair = new Map<string, RevokedToken>()
  for (const e of entries) {
    const key = e.aud + '\u0000' + e.jti
    const seen = byPair.get(key)
    if (seen === undefined) byPair.set(key, { aud: e.aud, jti: e.jti, expiresAt: e.expiresAt })
    else if (seen.expiresAt !== null && (e.expiresAt === null || e.expiresAt > seen.expiresAt)) seen.expiresAt = e.expiresAt
  }
  return [...byPair.values()]
}

function checkSchemaVersion (rows: Array<{ version?: unknown }>, migrated: boolean): void {
  const version = Number(rows[0]?.version)
  if (version > SCHEMA_VERSION) throw new StoreError(`PostgresStore: tables are at schema version ${version}, newer than this package (${SCHEMA_VERSION}); upgrade the package`)
  // Without migrate, older tables lack what this package reads: say so rather than fail on each lookup.
  if (!migrated && !(version >= SCHEMA_VERSION)) throw new StoreError(`PostgresStore: tables are at schema version ${rows[0]?.version ?? 'none'}, older than this package (${SCHEMA_VERSION}: the tokens table partitioned by expiry day); apply postgresSchema() through your migrations, or set migrate: true`)
}

// Answers no retry can change (SQLSTATE → what to fix): the pool names a database, role
// or password that is wrong, the role lacks a permission, or the tables were never
// created (`migrate: false`). They fail the boot rather than pass for an outage.
const misconfigurations: Record<string, string> = {
  '3D000': 'check the database the pool connects to',
  '28P01': "check the pool's user and password",
  '28000': "check the pool's user: the role may not exist, or may not connect",
  '42501': 'grant the role what the store needs: CREATE on the schema to migrate; SELECT, INSERT, UPDATE and DELETE on its tables',
  '42P01': 'apply postgresSchema() through your migrations, or set migrate: true',
}

/** A StoreError naming the misconfiguration behind `err`, or undefined when `err` may be an outage. */
function misconfiguration (err: unknown): Error | undefined {
  const code = (err as { code?: unknown })?.code
  const fix = typeof code === 'string' ? misconfigurations[code] : undefined
  if (fix === undefined) return undefined
  // The server's message names the database, role or table, never a password.
  const refused = new StoreError(`PostgresStore: PostgreSQL refused the store (${code} ${(err as Error).message}); ${fix}`)
  refused.cause = err
  return refused
}

/** A bigint column (ms) as pg returns it, a string, or null. */
const timeOf = (value: string | null): number | null => (value === null ? null : Number(value))

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never

interface LogRow { id: string | number, at: string | number, type: LoggedChange['type'], change: Record<string, unknown>, actor: string | null, reason: string | null, source: LogEntry['source'] }
const entryOf = (r: LogRow): LogEntry => ({ ...r.change, type: r.type, id: String(r.id), at: Number(r.at), actor: r.actor, reason: r.reason, source: r.source }) as LogEntry

interface GrantRow { id: string, client_id: string, audience: string, scope: string[], created_at: string }
const grantOf = (r: GrantRow): ClientGrant => ({ id: r.id, client_id: r.client_id, audience: r.audience, scope: r.scope, created_at: Number(r.created_at) })

/**
 * Revocations in PostgreSQL, shared by every instance. One request's lookup is one
 * query; each write notifies a channel in the same statement (NOTIFY is delivered on
 * commit), and a lost LISTEN connection is re-established with a cache flush.
 */
export class PostgresStore implements RevocationStore {
  readonly issuerScopes = true
  private readonly pool: Pool
  private readonly p: string
  private readonly channel: string
  private readonly migrate: boolean
  private readonly reconnectDelay: number
  private readonly sql: Record<string, string>
  private readonly log: { retentionMs: number, maxEntries: number }
  private readonly feed = new ChangeFeed(() => this.listen(), () => this.unlisten())
  private preparing: Promise<void> | undefined
  private listenClient: PoolClient | undefined
  private reconnectTimer: NodeJS.Timeout | undefined
  /** The feed wants a LISTEN connection (between its start and its stop). */
  private listening = false
  private closed = false
  /** ms of the last sweep of expired claims: one sweep a minute, whoever claims. */
  private sweptAt = 0

  constructor (options: PostgresStoreOptions) {
    if (options?.pool === undefined || typeof options.pool.query !== 'function' || typeof options.pool.connect !== 'function') {
      throw new TypeError('PostgresStore: pool must be a pg Pool')
    }
    refuseUnknownKeys(options, postgresOptionKeys, 'PostgresStore')
    this.pool = options.pool
    this.p = options.tablePrefix ?? 'jwt_revocation_'
    postgresSchema(this.p)
    this.channel = `${this.p}changes`
    this.migrate = options.migrate ?? true
    // 0 would retry in a tight loop while the database is down.
    this.reconnectDelay = parseDuration(options.reconnectDelay ?? 1000, 'PostgresStore.reconnectDelay', { unit: 'milliseconds', min: 1, max: MAX_TIMER_MS, example: '1s' })
    this.log = logLimits(options, 'PostgresStore')
    const p = this.p
    const notify = `pg_notify('${this.channel}', $N::text)`
    // The log entry of a write, in its statement: the transaction takes its id (x, run
    // first as a materialized CTE) before the entry takes its log id, which the reader's
    // settling of holes relies on (see postgres-log.ts). $n.. are the change (unless
    // given as an expression over \`from\`), actor, reason and source.
    const now = '(extract(epoch FROM clock_timestamp()) * 1000)::bigint'
    const logged = (type: string, n: number, change?: { expr: string, from: string }) => {
      const [c, a, r, src] = change === undefined ? [`$${n}::jsonb`, `$${n + 1}`, `$${n + 2}`, `$${n + 3}`] : [change.expr, `$${n}`, `$${n + 1}`, `$${n + 2}`]
      return `x AS MATERIALIZED (SELECT txid_current()),
        l AS (INSERT INTO ${p}log (at, type, change, actor, reason, source) SELECT ${now}, '${type}', ${c}, ${a}, ${r}, ${src} FROM x${change === undefined ? '' : `, ${change.from}`})`
    }
    // The rules for every issuer, and those scoped to the token's (none when it has no issuer).
    const forIssuer = `(issuer = '' OR issuer = $8::text)`
    // Entries of one expiry day share a row (the key includes the day; null is a day of its own): the later expiry wins.
    const longerExpiry = `ON CONFLICT (aud, jti, expiry_day) DO UPDATE SET expires_at = GREATEST(${p}tokens.expires_at, EXCLUDED.expires_at)`
    this.sql = {
      lookup: `SELECT
        EXISTS (SELECT 1 FROM ${p}tokens WHERE jti = $2 AND aud = ANY($1::text[]) AND (expires_at IS NULL OR expires_at > $5)
          AND expiry_day >= ${expiryDayOf('$5::bigint')}) AS token_revoked,
        (SELECT max(revoked_at) FROM ${p}clients WHERE client_id = $3 AND (audience = ANY($1::text[]) OR audience = '*') AND ${forIssuer} AND (expires_at IS NULL OR expires_at > $5)) AS client_revoked_at,
        (SELECT max(revoked_at) FROM ${p}subjects WHERE subject = $4 AND ${forIssuer} AND (expires_at IS NULL OR expires_at > $5)) AS subject_revoked_at,
        (SELECT max(revoked_at) FROM ${p}sessions WHERE session_id = $7 AND ${forIssuer} AND (expires_at IS NULL OR expires_at > $5)) AS session_revoked_at,
        CASE WHEN $6::boolean THEN (SELECT json_build_object('created_at', created_at, 'scope', scope) FROM ${p}grants WHERE client_id = $3 AND audience = ANY($1::text[]) ORDER BY created_at LIMIT 1) END AS grant`,
      revokeToken: `WITH w AS (INSERT INTO ${p}tokens (aud, jti, expires_at, expiry_day) VALUES ($1, $2, $3, ${expiryDayOf('$3::bigint')})
        ${longerExpiry})
        , ${logged('token', 5)}
        SELECT ${notify.replace('$N', '$4')}`,
      // A batch as one statement: arrays unnested into rows (the entries are distinct pairs).
      revokeTokens: `WITH w AS (INSERT INTO ${p}tokens (aud, jti, expires_at, expiry_day)
          SELECT a, j, e, ${expiryDayOf('e')} FROM unnest($1::text[], $2::text[], $3::bigint[]) AS u (a, j, e)
        ${longerExpiry})
        , ${logged('tokens', 5)}
        SELECT ${notify.replace('$N', '$4')}`,
      revokeClient: `WITH w AS (INSERT INTO ${p}clients (client_id, audience, revoked_at, expires_at, issuer) VALUES ($1, $2, $3, $4, $6)
        ON CONFLICT (client_id, audience, issuer) DO UPDATE SET revoked_at = EXCLUDED.revoked_at, expires_at = EXCLUDED.expires_at
        WHERE ${p}clients.revoked_at <= EXCLUDED.revoked_at)
        , ${logged('client', 7)}
        SELECT ${notify.replace('$N', '$5')}`,
      revokeSubject: `WITH w AS (INSERT INTO ${p}subjects (subject, revoked_at, expires_at, issuer) VALUES ($1, $2, $3, $5)
        ON CONFLICT (subject, issuer) DO UPDATE SET revoked_at = EXCLUDED.revoked_at, expires_at = EXCLUDED.expires_at
        WHERE ${p}subjects.revoked_at <= EXCLUDED.revoked_at)
        , ${logged('subject', 6)}
        SELECT ${notify.replace('$N', '$4')}`,
      revokeSession: `WITH w AS (INSERT INTO ${p}sessions (session_id, revoked_at, expires_at, issuer) VALUES ($1, $2, $3, $5)
        ON CONFLICT (session_id, issuer) DO UPDATE SET revoked_at = EXCLUDED.revoked_at, expires_at = EXCLUDED.expires_at
        WHERE ${p}sessions.revoked_at <= EXCLUDED.revoked_at)
        , ${logged('session', 6)}
        SELECT ${notify.replace('$N', '$4')}`,
      createGrant: `WITH w AS (INSERT INTO ${p}grants (id, client_id, audience, scope, created_at) VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT DO NOTHING RETURNING id, client_id, audience, scope)
        , ${logged('grant', 7, { expr: "jsonb_build_object('action', 'create', 'grantId', w.id, 'clientId', w.client_id, 'audience', w.audience, 'scope', to_jsonb(w.scope))", from: 'w' })}
        SELECT (SELECT count(*) FROM w) AS created, CASE WHEN EXISTS (SELECT 1 FROM w) THEN ${notify.replace('$N', '$6')} END`,
      updateGrant: `WITH w AS (UPDATE ${p}grants SET scope = $2 WHERE id = $1 RETURNING *)
        , ${logged('grant', 3, { expr: "jsonb_build_object('action', 'update', 'grantId', w.id, 'clientId', w.client_id, 'audience', w.audience, 'scope', to_jsonb(w.scope))", from: 'w' })}
        SELECT w.*, ${notify.replace('$N', "json_build_object('type', 'grant', 'clientId', w.client_id)")} FROM w`,
      // One statement, one snapshot: the rows after the cursor's top and in its holes, and
      // the snapshot's bounds that settle holes (postgres-log.ts).
      readLog: `SELECT txid_snapshot_xmin(txid_current_snapshot())::text AS xmin, txid_snapshot_xmax(txid_current_snapshot())::text AS xmax,
        (SELECT max(trimmed_through) FROM ${p}log_trim)::text AS trimmed,
        (SELECT coalesce(json_agg(r ORDER BY r.id), '[]') FROM (
          SELECT * FROM (
            (SELECT * FROM ${p}log WHERE id > $1::bigint ORDER BY id LIMIT $4)
            UNION ALL
            (SELECT l.* FROM ${p}log l JOIN unnest($2::bigint[], $3::bigint[]) AS h (lo, hi) ON l.id BETWEEN h.lo AND h.hi)
          ) u ORDER BY id LIMIT $4) r) AS entries`,
      // The end of the log: its highest id, and the ids committed in the window below it.
      logEnd: `WITH top AS (SELECT coalesce(max(id), 0) AS top FROM ${p}log),
          floor AS (SELECT GREATEST((SELECT top FROM top) - $1::bigint, (SELECT max(trimmed_through) FROM ${p}log_trim), 0) AS floor)
        SELECT (SELECT top FROM top)::text AS top, (SELECT floor FROM floor)::text AS floor,
          txid_snapshot_xmax(txid_current_snapshot())::text AS xmax,
          ARRAY(SELECT id::text FROM ${p}log WHERE id > (SELECT floor FROM floor) ORDER BY id) AS ids`,
      history: `SELECT * FROM ${p}log WHERE ($1::bigint IS NULL OR id < $1) AND ($2::bigint IS NULL OR at >= $2) AND ($3::bigint IS NULL OR at < $3)
        AND ($4::text IS NULL OR (type = 'token' AND change->>'aud' = $4) OR (type = 'tokens' AND change->'tokens' @> jsonb_build_array(jsonb_build_object('aud', $4::text)))
          OR (type = 'client' AND change->>'audience' IN ($4, '*')) OR (type = 'grant' AND change->>'audience' = $4))
        AND ($5::text IS NULL OR (type IN ('client', 'grant') AND change->>'clientId' = $5))
        AND ($6::text IS NULL OR (type = 'subject' AND change->>'subject' = $6))
        AND ($7::text IS NULL OR (type = 'token' AND change->>'jti' = $7) OR (type = 'tokens' AND change->'tokens' @> jsonb_build_array(jsonb_build_object('jti', $7::text))))
        ORDER BY id DESC LIMIT $8`,
      trimLog: `WITH doomed AS (SELECT id FROM ${p}log WHERE at < $1 OR id <= (SELECT max(id) FROM ${p}log) - $2::bigint ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED),
          d AS (DELETE FROM ${p}log WHERE id IN (SELECT id FROM doomed) RETURNING id),
          mark AS (UPDATE ${p}log_trim SET trimmed_through = GREATEST(trimmed_through, (SELECT max(id) FROM d)) WHERE EXISTS (SELECT 1 FROM d))
        SELECT count(*) AS deleted FROM d`,
      deleteGrant: `WITH w AS (DELETE FROM ${p}grants WHERE id = $1 RETURNING *)
        , ${logged('grant', 2, { expr: "jsonb_build_object('action', 'delete', 'grantId', w.id, 'clientId', w.client_id, 'audience', w.audience, 'scope', to_jsonb(w.scope))", from: 'w' })}
        SELECT w.*, ${notify.replace('$N', "json_build_object('type', 'grant', 'clientId', w.client_id)")} FROM w`,
    }
  }

  ready (): Promise<void> {
    if (this.preparing === undefined) {
      // A preparation that failed (PostgreSQL unreachable at boot) is tried again by the next call.
      const preparing: Promise<void> = (this.migrate ? this.createTables() : this.checkTables()).catch((err: unknown) => {
        if (this.preparing === preparing) this.preparing = undefined
        throw misconfiguration(err) ?? err
      })
      this.preparing = preparing
    }
    return this.preparing
  }

  /** With `migrate: false`: every table is there and readable, at a schema this package knows. */
  private async checkTables (): Promise<void> {
    const tables = ['tokens', 'clients', 'subjects', 'sessions', 'grants', 'leases', 'claims', 'log', 'log_trim']
    const results = await this.pool.query(tables.map((t) => `SELECT FROM ${this.p}${t} LIMIT 0;`).join('') + `SELECT version FROM ${this.p}schema`) as unknown as QueryResult[]
    checkSchemaVersion(results.at(-1)!.rows, false)
  }

  private async createTables (): Promise<void> {
    await inTransaction(this.pool, async (client) => {
      // Instances starting together must not race on CREATE TABLE.
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`${this.p}migrate`])
      await client.query(postgresSchema(this.p))
      const { rows } = await client.query(`SELECT version FROM ${this.p}schema`)
      checkSchemaVersion(rows, true)
    })
    // Without the days ahead, entries land in tokens_rest: still read, purged by DELETE
    // rather than dropped. The next purge tries again, so a busy table does not fail the boot.
    await ensureDays(this.pool, this.p, dayOf(Date.now())).catch(() => {})
  }

  /** A write's statement with its log entry's change and author after its own values; trims the log now and then. */
  private async logged (name: string, values: unknown[], change: DistributiveOmit<LoggedChange, 'type'> | null, author: ChangeAuthor | undefined): Promise<QueryResult> {
    const { actor, reason, source } = authorOf(author)
    const result = await this.query(name, this.sql[name]!, [...values, ...(change === null ? [] : [JSON.stringify(change)]), actor, reason, source])
    // The write is done whatever the trim does; the next write trims again.
    await this.trimLog(Date.now()).catch(() => {})
    return result
  }

  private async query (name: string, text: string, values: unknown[]): Promise<QueryResult> {
    await this.ready()
    // Named statements are prepared once per connection and reused.
    return this.pool.query({ name: `${this.p}${name}`, text, values })
  }

  async lookup (query: RevocationQuery): Promise<RevocationState> {
    const { rows } = await this.query('lookup', this.sql.lookup!, [
      query.audiences, query.jti ?? null, query.clientId ?? null, query.subject ?? null, Date.now(), query.includeGrant, query.sessionId ?? null, query.issuer || null,
    ])
    const row = rows[0] as {
      token_revoked: boolean, client_revoked_at: string | null, subject_revoked_at: string | null, session_revoked_at: string | null,
      grant: { created_at: number, scope: string[] } | null
    }
    const state: RevocationState = {
      tokenRevoked: row.token_revoked,
      clientRevokedAt: timeOf(row.client_revoked_at),
      subjectRevokedAt: timeOf(row.subject_revoked_at),
      sessionRevokedAt: timeOf(row.session_revoked_at),
    }
    if (query.includeGrant) state.grant = row.grant === null ? null : { created_at: Number(row.grant.created_at), scope: row.grant.scope }
    return state
  }

  async revokeToken (entry: RevokedToken, author?: ChangeAuthor): Promise<void> {
    const { aud, jti, expiresAt } = entry
    await this.logged('revokeToken', [aud, jti, expiresAt, encodeChange({ type: 'token', aud, jti })], { aud, jti, expiresAt }, author)
  }

  async revokeTokens (entries: RevokedToken[], author?: ChangeAuthor): Promise<void> {
    const distinct = distinctTokens(entries)
    if (distinct.length === 0) return
    const tokens = distinct.map((e) => ({ aud: e.aud, jti: e.jti }))
    let change = encodeChange({ type: 'tokens', tokens })
    if (Buffer.byteLength(change) > NOTIFY_LIMIT) change = encodeChange({ type: 'reset' })
    await this.logged('revokeTokens', [distinct.map((e) => e.aud), distinct.map((e) => e.jti), distinct.map((e) => e.expiresAt), change],
      { tokens, expiresAt: latestExpiry(distinct) }, author)
  }

  async listRevokedTokens (filter: { aud?: string | undefined }): Promise<RevokedToken[]> {
    await this.ready()
    return this.liveTokens(filter.aud, undefined, null)
  }

  /** Keyset pages on (aud, jti), the primary key's order: each page one index range scan, whatever the table holds. */
  async listRevokedTokensPage (filter: { aud?: string | undefined }, page?: TokenPageRequest): Promise<RevokedTokenPage> {
    const limit = tokenPageLimit(page, 'PostgresStore')
    const after = page?.cursor === undefined ? undefined : decodeTokenCursor(page.cursor, 'PostgresStore', isTokenKey)
    await this.ready()
    const tokens = await this.liveTokens(filter.aud, after, limit)
    const last = tokens.at(-1)
    return { tokens, next: tokens.length === limit && last !== undefined ? encodeTokenCursor([last.aud, last.jti]) : null }
  }

  /** Live tokens (of one audience) after the key `after`, in key order, at most `limit` (null: all). */
  private async liveTokens (aud: string | undefined, after: readonly [string, string] | undefined, limit: number | null): Promise<RevokedToken[]> {
    const { rows } = await this.pool.query(
      // A jti revoked with expiries on two days has a row in each: the longest-lived one answers.
      `SELECT DISTINCT ON (aud, jti) aud, jti, expires_at FROM ${this.p}tokens WHERE (expires_at IS NULL OR expires_at > $1) AND ($2::text IS NULL OR aud = $2)
        ${after === undefined ? '' : 'AND (aud, jti) > ($3, $4)'}
        ORDER BY aud, jti, expires_at DESC NULLS FIRST${limit === null ? '' : ` LIMIT ${limit}`}`,
      [Date.now(), aud ?? null, ...(after ?? [])])
    return rows.map((r: { aud: string, jti: string, expires_at: string | null }) => ({ aud: r.aud, jti: r.jti, expiresAt: r.expires_at === null ? null : Number(r.expires_at) }))
  }

  async revokeClient (entry: ClientRevocation, author?: ChangeAuthor): Promise<void> {
    const { clientId, audience, revokedAt } = entry
    const issuer = issuerMember(entry.issuer)
    await this.logged('revokeClient', [clientId, audience, revokedAt, entry.expiresAt, encodeChange({ type: 'client', clientId, ...issuer }), entry.issuer || ''],
      { clientId, audience, ...issuer, revokedAt }, author)
  }

  async revokeSubject (entry: SubjectRevocation, author?: ChangeAuthor): Promise<void> {
    const { subject, revokedAt } = entry
    const issuer = issuerMember(entry.issuer)
    await this.logged('revokeSubject', [subject, revokedAt, entry.expiresAt, encodeChange({ type: 'subject', subject, ...issuer }), entry.issuer || ''],
      { subject, ...issuer, revokedAt }, author)
  }

  async revokeSession (entry: SessionRevocation, author?: ChangeAuthor): Promise<void> {
    const { sessionId, revokedAt } = entry
    const issuer = issuerMember(entry.issuer)
    await this.logged('revokeSession', [sessionId, revokedAt, entry.expiresAt, encodeChange({ type: 'session', sessionId, ...issuer }), entry.issuer || ''],
      { sessionId, ...issuer, revokedAt }, author)
  }

  async createGrant (grant: ClientGrant, author?: ChangeAuthor): Promise<ClientGrant> {
    const { rows } = await this.logged('createGrant', [grant.id, grant.client_id, grant.audience, grant.scope, grant.created_at, encodeChange({ type: 'grant', clientId: grant.client_id })], null, author)
    if (Number(rows[0].created) !== 1) throw new GrantConflictError()
    return { ...grant, scope: [...grant.scope] }
  }

  async getGrant (id: string): Promise<ClientGrant | null> {
    await this.ready()
    const { rows } = await this.pool.query(`SELECT * FROM ${this.p}grants WHERE id = $1`, [id])
    return rows[0] ? grantOf(rows[0] as GrantRow) : null
  }

  async listGrants (filter: GrantFilter): Promise<ClientGrant[]> {
    await this.ready()
    const { rows } = await this.pool.query(
      `SELECT * FROM ${this.p}grants WHERE ($1::text IS NULL OR client_id = $1) AND ($2::text IS NULL OR audience = $2) ORDER BY created_at, id`,
      [filter.client_id ?? null, filter.audience ?? null])
    return (rows as GrantRow[]).map(grantOf)
  }

  async updateGrant (id: string, scope: string[], author?: ChangeAuthor): Promise<ClientGrant | null> {
    const { rows } = await this.logged('updateGrant', [id, scope], null, author)
    return rows[0] ? grantOf(rows[0] as GrantRow) : null
  }

  async deleteGrant (id: string, author?: ChangeAuthor): Promise<ClientGrant | null> {
    const { rows } = await this.logged('deleteGrant', [id], null, author)
    return rows[0] ? grantOf(rows[0] as GrantRow) : null
  }

  /**
   * Entries after `cursor`, oldest first (see postgres-log.ts for what the cursor keeps).
   * `cursor` null: the current end, with the last START_WINDOW ids counted as read and
   * any of them not yet committed left to be read once they are.
   */
  async readLog (cursor: string | null, limit: number): Promise<LogPage> {
    await this.ready()
    if (cursor === null) {
      const { rows } = await this.pool.query(this.sql.logEnd!, [START_WINDOW])
      const row = rows[0] as { top: string, floor: string, xmax: string, ids: string[] }
      const start: LogCursor = { top: BigInt(row.floor), holes: [], checkpoint: null }
      return { entries: [], cursor: encodeCursor(advance(start, { ids: row.ids.map(BigInt), truncated: false, xmin: 0n, xmax: BigInt(row.xmax), trimmedThrough: 0n }).cursor), gap: false }
    }
    const before = decodeCursor(cursor)
    const take = Math.max(0, Math.floor(limit))
    const { rows } = await this.pool.query(this.sql.readLog!, [String(before.top), before.holes.map(([lo]) => String(lo)), before.holes.map(([, hi]) => String(hi)), take])
    const row = rows[0] as { xmin: string, xmax: string, trimmed: string, entries: LogRow[] }
    const entries = row.entries.map(entryOf)
    const { cursor: after, gap } = advance(before, {
      ids: entries.map((e) => BigInt(e.id)), truncated: take > 0 && entries.length === take, xmin: BigInt(row.xmin), xmax: BigInt(row.xmax), trimmedThrough: BigInt(row.trimmed),
    })
    return { entries, cursor: encodeCursor(after), gap }
  }

  /** The log newest first, filtered by the database (one query per page). */
  async history (filter: HistoryFilter): Promise<{ entries: LogEntry[], next: string | null }> {
    await this.ready()
    if (filter.from !== undefined && !/^\d{1,19}$/.test(filter.from)) throw new TypeError('PostgresStore: not a history position of this log')
    const limit = historyLimit(filter)
    const { rows } = await this.pool.query(this.sql.history!, [
      filter.from ?? null, filter.since ?? null, filter.until ?? null, filter.aud ?? null, filter.clientId ?? null, filter.subject ?? null, filter.jti ?? null, limit,
    ])
    const entries = (rows as LogRow[]).map(entryOf)
    return { entries, next: entries.length === limit ? entries.at(-1)!.id : null }
  }

  /**
   * Deletes up to LOG_TRIM_BATCH entries older than logRetention or past logMaxEntries
   * (rows another instance is deleting are skipped, never waited for), and records the
   * highest id deleted: a reader not past it has a gap. Returns how many.
   */
  private async trimLog (now: number): Promise<number> {
    const { rows } = await this.pool.query(this.sql.trimLog!, [now - this.log.retentionMs, this.log.maxEntries, LOG_TRIM_BATCH])
    return Number((rows[0] as { deleted: string }).deleted)
  }

  async lease (name: string, holder: string, ttl: number): Promise<boolean> {
    // One row per lease; the database's clock decides expiry, so skewed instances agree.
    const { rows } = await this.query('lease', `INSERT INTO ${this.p}leases AS l (name, holder, expires_at)
      VALUES ($1, $2, (extract(epoch FROM clock_timestamp()) * 1000)::bigint + $3)
      ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
      WHERE l.holder = EXCLUDED.holder OR l.expires_at <= (extract(epoch FROM clock_timestamp()) * 1000)::bigint
      RETURNING holder`, [name, holder, Math.max(1, Math.round(ttl))])
    return rows.length === 1
  }

  async claimOnce (key: string, expiresAt: number): Promise<boolean> {
    // The primary key decides between instances racing for the same key: one insert wins.
    const { rowCount } = await this.query('claim', `INSERT INTO ${this.p}claims (key, expires_at) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`, [key, Math.ceil(expiresAt)])
    const now = Date.now()
    if (now - this.sweptAt > CLAIM_SWEEP_INTERVAL) {
      this.sweptAt = now
      this.pool.query(`DELETE FROM ${this.p}claims WHERE expires_at <= $1`, [now]).catch(() => { this.sweptAt = 0 })
    }
    return rowCount === 1
  }

  async purgeExpired (now: number): Promise<number> {
    await this.ready()
    // Token entries go by whole partitions; the other tables hold rules, few by comparison.
    let removed = await purgeTokens(this.pool, this.p, now)
    for (const table of ['clients', 'subjects', 'sessions', 'claims']) {
      const result = await this.pool.query(`DELETE FROM ${this.p}${table} WHERE expires_at IS NOT NULL AND expires_at <= $1`, [now])
      removed += result.rowCount ?? 0
    }
    return removed
  }

  subscribe (listener: ChangeListener): Promise<() => Promise<void>> {
    return this.feed.subscribe(listener)
  }

  private async listen (): Promise<void> {
    this.listening = true
    const client = await this.pool.connect()
    if (!this.listening) {
      // The feed was stopped while this connection was being made.
      client.release()
      return
    }
    this.listenClient = client
    client.on('notification', (msg) => {
      if (msg.channel === this.channel) this.feed.emitMessage(msg.payload)
    })
    const lost = () => {
      if (this.listenClient !== client) return
      this.listenClient = undefined
      client.release(true)
      this.feed.emit({ type: 'reset' })
      this.scheduleReconnect()
    }
    client.on('error', lost)
    client.on('end', lost)
    try {
      await client.query(`LISTEN ${this.channel}`)
    } catch (err) {
      if (this.listenClient === client) {
        this.listenClient = undefined
        client.release(true)
      }
      throw err
    }
  }

  private scheduleReconnect (): void {
    if (!this.listening || this.reconnectTimer !== undefined) return
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined
      if (!this.listening) return
      this.listen().then(
        // Whatever was notified while we were away is lost: drop every cached answer.
        () => this.feed.emit({ type: 'reset' }),
        () => this.scheduleReconnect())
    }, this.reconnectDelay)
    this.reconnectTimer.unref()
  }

  /** Gives the LISTEN client back to the pool (which `pool.end()` waits for). */
  private async unlisten (): Promise<void> {
    this.listening = false
    clearTimeout(this.reconnectTimer)
    this.reconnectTimer = undefined
    const client = this.listenClient
    this.listenClient = undefined
    if (client) {
      await client.query(`UNLISTEN ${this.channel}`).catch(() => {})
      client.release()
    }
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.feed.close()
    await this.unlisten()
  }
}
