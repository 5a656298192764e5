import { createHash } from 'node:crypto'
import type { ChainableCommander, Cluster, Redis } from 'ioredis'
import { parseDuration, type Duration } from '../options/duration.js'
import { GrantConflictError, invalidOption, StoreError } from '../errors.js'
import { optionKeys, refuseUnknownKeys } from '../options/option-keys.js'
import { ChangeFeed, encodeChange, issuerMember } from './change-feed.js'
import { authorFields, decodeEntry, encodeEntry, historyLimit, latestExpiry } from './log-entries.js'
import {
  audienceTag, BUCKET_COUNT, bucketBase, bucketKey, bucketOf, DEFAULT_TOKEN_BUCKETS, inFlight, liveExpiry,
  hasFieldExpiry, MAX_TOKEN_BUCKETS, packBucketWrites, SWEEP_BUCKET, tokenField, WRITE_BUCKETS, WRITE_BUCKETS_WITH_FIELD_EXPIRY,
} from './redis-tokens.js'
import { keySlot } from './key-slot.js'
import { revokedTokenPage, scoredMembers } from './redis-listing.js'
import { MAX_TOKEN_PAGE, revokedTokenPages, tokenPageLimit } from './token-pages.js'
import { logLimits, matchesHistory, type LogOptions } from './revocation-log.js'
import type {
  ChangeAuthor, ChangeListener, ClientGrant, ClientRevocation, GrantFilter, HistoryFilter, LogEntry, LoggedChange, LogPage,
  RevocationChange, RevocationQuery, RevocationState, RevocationStore, RevokedToken, RevokedTokenPage, SessionRevocation, SubjectRevocation,
  TokenPageRequest,
} from './types.js'

export interface RedisStoreOptions extends LogOptions {
  /** Your ioredis client or Cluster; you own its lifecycle. */
  client: Redis | Cluster
  /**
   * Key prefix. The default carries a hash tag so the control data (rules, grants, the
   * log) lives in one Cluster slot, as the atomic scripts need; revoked tokens live in
   * bucket hashes under the prefix without its braces (`jwt-revocation:t:{n}`), each its
   * own slot. Default `'{jwt-revocation}:'`.
   */
  prefix?: string
  /**
   * Connection for the change feed (pub/sub needs its own). Default: `client.duplicate()`,
   * created on first subscription and closed by `close()`. One you pass stays yours.
   */
  subscriber?: Redis | Cluster
  /**
   * Acknowledge a write only once this many replicas have it (Redis `WAIT`, in the same
   * pipeline as the write), so a failover cannot lose an acknowledged revocation. A
   * write not replicated within `timeout` ms fails with `FST_JWT_REVOCATION_STORE`: it
   * may or may not survive a failover, and revoking again is harmless. Default: none
   * (Redis replication is asynchronous; see docs/guides/many-instances.md).
   */
  waitForReplicas?: WaitForReplicas
  /**
   * How many hashes hold the revoked tokens of a NEW prefix (a prefix keeps the count it
   * was first used with). Size it so each holds at most ~100 entries at the most tokens
   * you expect revoked at once (Redis keeps a hash compact up to `hash-max-listpack-entries`,
   * 128 by default): `expected / 100`. Default 4096 (about 400,000 tokens).
   */
  tokenBuckets?: number
}

export interface WaitForReplicas {
  /** Replicas that must have the write. */
  replicas: number
  /** How long to wait for them: ms, or a string such as `'500ms'`. */
  timeout: Duration
}

const redisOptionKeys = optionKeys<RedisStoreOptions>({ client: true, prefix: true, subscriber: true, waitForReplicas: true, tokenBuckets: true, logRetention: true, logMaxEntries: true })
const waitOptionKeys = optionKeys<WaitForReplicas>({ replicas: true, timeout: true })

function checkWaitForReplicas (value: WaitForReplicas | undefined): { replicas: number, timeout: number } | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'object' || value === null) throw invalidOption('RedisStore.waitForReplicas', 'must be { replicas, timeout }')
  refuseUnknownKeys(value, waitOptionKeys, 'RedisStore.waitForReplicas')
  if (!Number.isInteger(value.replicas) || value.replicas < 1) throw invalidOption('RedisStore.waitForReplicas.replicas', 'must be an integer ≥ 1')
  // timeout 0 would make WAIT block forever, and the connection with it.
  const timeout = parseDuration(value.timeout, 'RedisStore.waitForReplicas.timeout', { unit: 'milliseconds', min: 1, example: '500ms' })
  return { replicas: value.replicas, timeout }
}

const SEP = '\u0000'

/** Most entries one write trims from the log (so a write never stalls Redis); the rest go with the next writes. */
const TRIM_BATCH = 100
/** Entries read per round trip while looking for a history page, and the most one page looks at. */
const HISTORY_CHUNK = 200
const HISTORY_BUDGET = 10_000
const STREAM_ID = /^\d{1,20}-\d{1,20}$/
/** Tokens of the previous layout moved per round of `migrateLegacyTokens`. */
const MIGRATE_BATCH = 1000
/**
 * Most fields one call of the write script writes (a script runs alone on its node: a
 * few ms at most), and most fields one pipeline of such calls carries.
 */
const FIELDS_PER_CALL = 512
const FIELDS_PER_PIPELINE = 2048
/** Pipelines of token writes in flight at once, per `writeTokens`. */
const PIPELINES_IN_FLIGHT = 8

/** One call of the write script: its bucket keys, each bucket's entries (indexes into the batch), how many in all. */
interface BucketsWrite { keys: string[], buckets: number[][], fields: number }

// The write scripts go by EVALSHA as commands defined on the client (ioredis sends the
// body once per connection, and again on NOSCRIPT). The name carries the script's hash,
// so stores of different versions sharing a client never run each other's script.
const commandName = (lua: string) => `jwtRevocation_${createHash('sha1').update(lua).digest('hex').slice(0, 16)}`
type ScriptCommand = (keyCount: number, ...args: Array<string | Buffer>) => unknown
/** The command `name` defined on a client (on its pipelines too), bound to `on`. */
const scriptCommand = (on: Redis | Cluster | ChainableCommander, name: string): ScriptCommand =>
  (on as unknown as Record<string, ScriptCommand>)[name]!.bind(on)

// Stream ids ('ms-seq') compared in Lua, and the log's append. KEYS[1] is the log (a
// Stream), KEYS[2] the id of the newest entry trimmed from it; ARGV[1] the entry,
// ARGV[2] the retention (ms), ARGV[3] the most entries kept. Trimming is exact (MINID
// just past the newest entry to go), so the store knows exactly what it trimmed: a
// reader's cursor before that id missed entries (a gap); one at or after it did not.
const LOG = `
local function idParts (id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function idBefore (a, b)
  local am, as = idParts(a)
  local bm, bs = idParts(b)
  return am < bm or (am == bm and as < bs)
end
local function appendLog (entry)
  local id = redis.call('XADD', KEYS[1], '*', 'e', entry)
  local ms = idParts(id)
  local expired = redis.call('XRANGE', KEYS[1], '-', '(' .. string.format('%.0f', ms - tonumber(ARGV[2])) .. '-0', 'COUNT', ${TRIM_BATCH})
  local n = math.max(#expired, math.min(${TRIM_BATCH}, redis.call('XLEN', KEYS[1]) - tonumber(ARGV[3])))
  if n > 0 then
    local newest = n == #expired and expired[n][1] or redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', n)[n][1]
    local newestMs, newestSeq = idParts(newest)
    redis.call('XTRIM', KEYS[1], 'MINID', string.format('%.0f-%.0f', newestMs, newestSeq + 1))
    redis.call('SET', KEYS[2], newest)
  end
end
`

// Every write goes with its log entry and its change message in one script: an instance
// sees all or none of them. KEYS[1], KEYS[2], ARGV[1..3] are the log's (above); the
// write's own keys and arguments follow (K and A are their offsets). Expiry uses
// PEXPIREAT, so Redis forgets an entry once it is useless.
//
// Token entries live in bucket hashes of other slots (see redis-tokens.ts), which no
// script of the control slot may touch in a Cluster: they are written first, then this
// script logs and announces them. A crash in between leaves a revocation in force but
// unannounced (other instances' caches learn of it when they expire or the next change
// arrives); the reverse order would let an instance invalidate its cache, read the
// token as not yet revoked, and cache that.
const LOG_TOKENS = `${LOG}
local K, A = 2, 3
appendLog(ARGV[1])
redis.call('PUBLISH', ARGV[A + 1], ARGV[A + 2])
return 1`

// Records audience tags (ARGV: tag, audience pairs) in the hash KEYS[1]; refuses a tag
// that already names another audience, before any token of that audience is written.
const REGISTER_AUDIENCES = `
for i = 1, #ARGV, 2 do
  local known = redis.call('HGET', KEYS[1], ARGV[i])
  if known and known ~= ARGV[i + 1] then
    return redis.error_reply('ERR audience tag ' .. ARGV[i] .. ' already names another audience')
  end
end
for i = 1, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return 1`

// Keeps the later revocation when one exists already; the attempt is logged either way
// (the audit trail records who asked).
const REVOKE_LATEST = `${LOG}
local K, A = 2, 3
appendLog(ARGV[1])
redis.call('PUBLISH', ARGV[A + 3], ARGV[A + 4])
local current = redis.call('GET', KEYS[K + 1])
if current and tonumber(current) > tonumber(ARGV[A + 1]) then return 0 end
redis.call('SET', KEYS[K + 1], ARGV[A + 1])
if ARGV[A + 2] ~= '' then redis.call('PEXPIREAT', KEYS[K + 1], ARGV[A + 2]) end
return 1`

const CREATE_GRANT = `${LOG}
local K, A = 2, 3
if redis.call('EXISTS', KEYS[K + 1]) == 1 or redis.call('HEXISTS', KEYS[K + 2], ARGV[A + 1]) == 1 then return 0 end
redis.call('HSET', KEYS[K + 1], 'id', ARGV[A + 1], 'client_id', ARGV[A + 2], 'audience', ARGV[A + 3], 'scope', ARGV[A + 4], 'created_at', ARGV[A + 5])
redis.call('HSET', KEYS[K + 2], ARGV[A + 1], KEYS[K + 1])
appendLog(ARGV[1])
redis.call('PUBLISH', ARGV[A + 6], ARGV[A + 7])
return 1`

// A grant found through the id index (its key shares the prefix's hash slot) is logged
// with what it was: ARGV[1] is then who and why as a JSON object, completed here into the
// entry, and ARGV[4] the channel. cjson.encode quotes strings; the scope is JSON already.
const GRANT_ENTRY = `
local function logGrant (action, key, id, scope)
  local clientId = redis.call('HGET', key, 'client_id')
  appendLog('{"type":"grant","action":"' .. action .. '","grantId":' .. cjson.encode(id) ..
    ',"clientId":' .. cjson.encode(clientId) .. ',"audience":' .. cjson.encode(redis.call('HGET', key, 'audience')) ..
    ',"scope":' .. scope .. ',' .. string.sub(ARGV[1], 2))
  redis.call('PUBLISH', ARGV[4], cjson.encode({ type = 'grant', clientId = clientId }))
end
`

const UPDATE_GRANT = `${LOG}${GRANT_ENTRY}
local K, A = 2, 3
local key = redis.call('HGET', KEYS[K + 1], ARGV[A + 2])
if not key then return false end
redis.call('HSET', key, 'scope', ARGV[A + 3])
logGrant('update', key, ARGV[A + 2], ARGV[A + 3])
return redis.call('HGETALL', key)`

const DELETE_GRANT = `${LOG}${GRANT_ENTRY}
local K, A = 2, 3
local key = redis.call('HGET', KEYS[K + 1], ARGV[A + 2])
if not key then return false end
local grant = redis.call('HGETALL', key)
logGrant('delete', key, ARGV[A + 2], redis.call('HGET', key, 'scope'))
redis.call('DEL', key)
redis.call('HDEL', KEYS[K + 1], ARGV[A + 2])
return grant`

// The log after a cursor (ARGV[1]; '' for none: just the end) and at most ARGV[2]
// entries, with whether entries after the cursor were trimmed: flat strings, the same
// reply in every protocol and reply mapping. A log that ends before the cursor was lost
// (flushed, or a failover to a replica behind it): a gap, read again from its start.
const READ_LOG = `${LOG}
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
local trimmed = redis.call('GET', KEYS[2])
local tail = (newest and newest[1]) or trimmed or '0-0'
if ARGV[1] == '' then return { '0', tail } end
local cursor, gap = ARGV[1], '0'
if trimmed and idBefore(cursor, trimmed) then gap = '1' end
if idBefore(tail, cursor) then gap, cursor = '1', '0-0' end
local out = { gap, cursor }
if tonumber(ARGV[2]) > 0 then
  for _, entry in ipairs(redis.call('XRANGE', KEYS[1], '(' .. cursor, '+', 'COUNT', ARGV[2])) do
    out[#out + 1] = entry[1]
    out[#out + 1] = entry[2][2]
  end
end
return out`

// Newest first from ARGV[1] down to ARGV[2], at most ARGV[3]: flat id, entry pairs.
const READ_HISTORY = `
local out = {}
for _, entry in ipairs(redis.call('XREVRANGE', KEYS[1], ARGV[1], ARGV[2], 'COUNT', ARGV[3])) do
  out[#out + 1] = entry[1]
  out[#out + 1] = entry[2][2]
end
return out`

const GET_GRANT = `
local key = redis.call('HGET', KEYS[1], ARGV[1])
if not key then return false end
return redis.call('HGETALL', key)`

// Taken when free (SET NX PX), renewed by its holder, refused to anyone else until it lapses.
const LEASE = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0`

function grantFromHash (flat: string[] | null): ClientGrant | null {
  if (!flat || flat.length === 0) return null
  const h: Record<string, string> = {}
  for (let i = 0; i < flat.length; i += 2) h[flat[i]!] = flat[i + 1]!
  return { id: h.id!, client_id: h.client_id!, audience: h.audience!, scope: JSON.parse(h.scope ?? '[]') as string[], created_at: Number(h.created_at) }
}

// ioredis 6 types `duplicate` generically on both classes, and a union of two generic
// signatures cannot be called; each class's own is called instead.
const duplicateOf = (client: Redis | Cluster): Redis | Cluster =>
  client.isCluster ? (client as Cluster).duplicate() : (client as Redis).duplicate()

/** A pipeline's replies; the first error among them is thrown. */
async function replies (pipeline: ChainableCommander): Promise<Array<[Error | null, unknown]>> {
  const results = await pipeline.exec()
  if (results === null) throw new Error('RedisStore: pipeline aborted')
  for (const [err] of results) if (err) throw err
  return results
}

// Replies no retry can change: no or wrong credentials, or an ACL that forbids the
// store's commands or keys (its prefix).
const MISCONFIGURED = /^(NOAUTH|WRONGPASS|NOPERM)\b/

/** A StoreError naming the misconfiguration behind `err`, or undefined when `err` may be an outage. */
function misconfiguration (err: unknown): Error | undefined {
  const message = (err as Error)?.message
  if (typeof message !== 'string' || !MISCONFIGURED.test(message)) return undefined
  // Redis's reply names at most a user, never a password.
  const refused = new StoreError(`RedisStore: Redis refused the store (${message}); check the client's username and password, and that its ACL allows the store's commands on keys and channels under its prefix`)
  refused.cause = err
  return refused
}

/** A rule's key, with the issuer it is scoped to appended ('' counts as none). */
const scoped = (key: string, issuer: string | undefined) => (issuer ? key + SEP + issuer : key)

/** The latest time among the MGET reply's values from `start` (inclusive) to `end` (exclusive); null when none. */
function latestIn (values: Array<string | null>, start: number, end: number): number | null {
  let latest: number | null = null
  for (let i = start; i < end; i++) {
    const v = values[i]
    if (v != null && (latest === null || Number(v) > latest)) latest = Number(v)
  }
  return latest
}

const expiry = (expiresAt: number | null) => (expiresAt === null ? '' : String(expiresAt))

/** Log entries from a script's flat reply of id, entry pairs from `start`; an entry's time is its id's. */
function entriesOf (reply: string[], start: number): LogEntry[] {
  const entries: LogEntry[] = []
  for (let i = start; i < reply.length; i += 2) {
    const id = reply[i]!
    entries.push(decodeEntry(id, Number(id.slice(0, id.indexOf('-'))), reply[i + 1]!))
  }
  return entries
}

/**
 * Revocations in Redis, shared by every instance. One request's lookup is one
 * pipelined round trip; changes are published on a channel so every instance's cache
 * drops stale entries at once, and a reconnect of the feed flushes them all (messages
 * may have been missed while it was down).
 */
export class RedisStore implements RevocationStore {
  readonly issuerScopes = true
  private readonly client: Redis | Cluster
  private readonly prefix: string
  private readonly channel: string
  private readonly ownSubscriber: boolean
  private readonly waitForReplicas: { replicas: number, timeout: number } | undefined
  private readonly log: { retentionMs: number, maxEntries: number }
  private subscriber: Redis | Cluster | undefined
  private readonly requestedBuckets: number
  private readonly bucketPrefix: string
  /** The prefix's bucket count, read (or fixed) once: every token operation needs it. */
  private buckets: Promise<number> | undefined
  /** Whether the server has per-field expiry (Redis 7.4): asked once, at the first token write. */
  private fieldExpiry: Promise<boolean> | undefined
  /** Audiences whose tag this process has recorded already. */
  private readonly knownAudiences = new Set<string>()
  private readonly feed = new ChangeFeed(() => this.startFeed(), () => this.stopFeed())
  private wired = false
  private closed = false

  constructor (options: RedisStoreOptions) {
    if (options?.client === undefined || typeof (options.client as Redis).pipeline !== 'function') {
      throw new TypeError('RedisStore: client must be an ioredis client or Cluster')
    }
    refuseUnknownKeys(options, redisOptionKeys, 'RedisStore')
    this.client = options.client
    this.prefix = options.prefix ?? '{jwt-revocation}:'
    if (typeof this.prefix !== 'string') throw new TypeError('RedisStore: prefix must be a string')
    this.channel = `${this.prefix}changes`
    this.subscriber = options.subscriber
    this.ownSubscriber = options.subscriber === undefined
    this.waitForReplicas = checkWaitForReplicas(options.waitForReplicas)
    this.log = logLimits(options, 'RedisStore')
    const buckets = options.tokenBuckets ?? DEFAULT_TOKEN_BUCKETS
    if (!Number.isInteger(buckets) || buckets < 1 || buckets > MAX_TOKEN_BUCKETS) {
      throw invalidOption('RedisStore.tokenBuckets', `must be an integer from 1 to ${MAX_TOKEN_BUCKETS}`)
    }
    this.requestedBuckets = buckets
    this.bucketPrefix = bucketBase(this.prefix)
  }

  /** The bucket count this prefix was first used with (fixed then: a new count would move every entry). */
  private bucketCount (): Promise<number> {
    this.buckets ??= (this.client.eval(BUCKET_COUNT, 1, `${this.prefix}token-buckets`, String(this.requestedBuckets)) as Promise<string>)
      .then(Number, (err: unknown) => {
        this.buckets = undefined
        throw err
      })
    return this.buckets
  }

  /** Records the tags of audiences not recorded yet (by this process), so a listing can name them. */
  private async registerAudiences (audiences: Iterable<string>): Promise<void> {
    const fresh = [...new Set(audiences)].filter((aud) => !this.knownAudiences.has(aud))
    if (fresh.length === 0) return
    await this.client.eval(REGISTER_AUDIENCES, 1, this.audienceIndex, ...fresh.flatMap((aud) => [audienceTag(aud), aud]))
    for (const aud of fresh) this.knownAudiences.add(aud)
  }

  /**
   * Writes token entries into their buckets: several buckets per script call (of one slot
   * in a Cluster), calls pipelined per node, a few pipelines in flight continuously.
   */
  private async writeTokens (entries: RevokedToken[]): Promise<void> {
    const now = Date.now()
    const live = entries.filter((e) => e.expiresAt === null || e.expiresAt > now)
    if (live.length === 0) return
    const buckets = await this.bucketCount()
    await this.registerAudiences(live.map((e) => e.aud))
    // Each audience's tag once, and each entry's bucket: the calls carry indexes into `live`.
    const tagOfAudience = new Map<string, string>()
    const tags = live.map(({ aud }) => {
      let tag = tagOfAudience.get(aud)
      if (tag === undefined) tagOfAudience.set(aud, tag = audienceTag(aud))
      return tag
    })
    const byBucket = new Map<number, number[]>()
    for (const [i, { aud, jti }] of live.entries()) {
      const bucket = bucketOf(aud, jti, buckets)
      const indexes = byBucket.get(bucket)
      if (indexes === undefined) byBucket.set(bucket, [i])
      else indexes.push(i)
    }
    const name = await this.writeCommand()
    await inFlight(this.pipelinesOf(this.bucketCalls(byBucket)), PIPELINES_IN_FLIGHT,
      (calls) => this.writePipeline(name, calls.map((c) => [...c.keys, packBucketWrites(live, tags, c.buckets)])))
  }

  /** The write script's command, defined on the client at the first token write. */
  private writeCommand (): Promise<string> {
    this.fieldExpiry ??= hasFieldExpiry(this.client)
    return this.fieldExpiry.then((fieldExpiry) => {
      const lua = fieldExpiry ? WRITE_BUCKETS_WITH_FIELD_EXPIRY : WRITE_BUCKETS
      const name = commandName(lua)
      if (!(name in this.client)) this.client.defineCommand(name, { lua })
      return name
    })
  }

  /**
   * The script calls for these buckets' fields: buckets of one slot share a call (in a
   * Cluster a call's keys must; standalone, every bucket is "slot 0"), up to FIELDS_PER_CALL.
   */
  private bucketCalls (byBucket: Map<number, number[]>): Array<{ slot: number, call: BucketsWrite }> {
    const cluster = this.client.isCluster
    const open = new Map<number, BucketsWrite>()
    const calls: Array<{ slot: number, call: BucketsWrite }> = []
    for (const [bucket, indexes] of byBucket) {
      const key = bucketKey(this.bucketPrefix, bucket)
      const slot = cluster ? keySlot(key) : 0
      let call = open.get(slot)
      if (call === undefined || call.fields >= FIELDS_PER_CALL) {
        open.set(slot, call = { keys: [], buckets: [], fields: 0 })
        calls.push({ slot, call })
      }
      call.keys.push(key)
      call.buckets.push(indexes)
      call.fields += indexes.length
    }
    return calls
  }

  /**
   * Calls grouped into pipelines of one node each (a Cluster pipeline must not span
   * nodes; by the client's slot map, which a failed pipeline does not trust), at most
   * FIELDS_PER_PIPELINE fields in each.
   */
  private pipelinesOf (calls: Array<{ slot: number, call: BucketsWrite }>): BucketsWrite[][] {
    const slots = this.client.isCluster ? (this.client as Cluster).slots : []
    const open = new Map<string, { calls: BucketsWrite[], fields: number }>()
    const pipelines: BucketsWrite[][] = []
    for (const { slot, call } of calls) {
      const node = slots[slot]?.[0] ?? ''
      let pipeline = open.get(node)
      if (pipeline === undefined || pipeline.fields >= FIELDS_PER_PIPELINE) {
        open.set(node, pipeline = { calls: [], fields: 0 })
        pipelines.push(pipeline.calls)
      }
      pipeline.calls.push(call)
      pipeline.fields += call.fields
    }
    return pipelines
  }

  /**
   * Sends one node's calls (each its keys, then its packed entries) in one pipeline (with
   * `waitForReplicas`, its WAIT last, so it covers them all). Calls that failed in it, as
   * after a slot moved, are sent again one by one, each routed by the client: writing a
   * field again is harmless.
   */
  private async writePipeline (name: string, calls: Array<Array<string | Buffer>>): Promise<void> {
    const pipeline = this.client.pipeline()
    const command = scriptCommand(pipeline, name)
    for (const args of calls) command(args.length - 1, ...args)
    if (this.waitForReplicas !== undefined) pipeline.wait(this.waitForReplicas.replicas, this.waitForReplicas.timeout)
    const results = await pipeline.exec().catch(() => null)
    const failed = results === null ? calls : calls.filter((_, i) => results[i]![0] !== null)
    if (results !== null && this.waitForReplicas !== undefined) {
      const [err, acknowledged] = results[calls.length]!
      if (err) throw err
      this.checkReplicas(acknowledged as number)
    }
    for (const args of failed) await this.replicated((on) => scriptCommand(on, name)(args.length - 1, ...args))
  }

  /** Every bucket key of this prefix. */
  private async bucketKeys (): Promise<string[]> {
    const buckets = await this.bucketCount()
    return Array.from({ length: buckets }, (_, i) => bucketKey(this.bucketPrefix, i))
  }

  /**
   * One read under the prefix, as a lookup makes: a server that refuses the client's
   * credentials or permissions fails the boot naming it, where one that does not answer
   * is an outage (retried in the background).
   */
  async ready (): Promise<void> {
    try {
      await this.bucketCount()
    } catch (err) {
      throw misconfiguration(err) ?? err
    }
  }

  /** Runs a write script; with `waitForReplicas`, resolves only once enough replicas have it. */
  private write (script: string, keyCount: number, ...args: Array<string | Buffer>): Promise<unknown> {
    return this.replicated((on) => on.eval(script, keyCount, ...args))
  }

  /**
   * Sends a write on the client (its reply is the result) or, with `waitForReplicas`, on a
   * pipeline followed by WAIT, resolving only once enough replicas have it.
   */
  private async replicated (send: (on: Redis | Cluster | ChainableCommander) => unknown): Promise<unknown> {
    if (this.waitForReplicas === undefined) return send(this.client)
    const pipeline = this.client.pipeline()
    send(pipeline)
    const results = await replies(pipeline.wait(this.waitForReplicas.replicas, this.waitForReplicas.timeout))
    this.checkReplicas(results[1]![1] as number)
    return results[0]![1]
  }

  /** Throws unless `acknowledged` replicas are enough for `waitForReplicas`. */
  private checkReplicas (acknowledged: number): void {
    const { replicas, timeout } = this.waitForReplicas!
    if (acknowledged < replicas) {
      throw new StoreError(`RedisStore: the write reached ${acknowledged} of ${replicas} replicas within ${timeout} ms; a failover may lose it, so revoke again`)
    }
  }

  /**
   * Runs a write script with its log entry: the log's keys and arguments first (as every
   * write script expects), then the write's own.
   */
  private logged (script: string, entry: string, keys: string[], args: string[]): Promise<unknown> {
    return this.write(script, keys.length + 2, this.logKey, this.trimmedKey, ...keys,
      entry, String(this.log.retentionMs), String(this.log.maxEntries), ...args)
  }

  /** A token's key in the layout of versions up to 0.x: read until `migrate` moved them (and their index) to buckets. */
  private legacyTokenKey (aud: string, jti: string) { return `${this.prefix}t:${aud}${SEP}${jti}` }
  // A rule scoped to an issuer has the unscoped key with the issuer appended (the same
  // hash tag): the lookup asks for both in its one MGET.
  private clientKey (clientId: string, audience: string, issuer?: string) { return scoped(`${this.prefix}c:${clientId}${SEP}${audience}`, issuer) }
  private subjectKey (subject: string, issuer?: string) { return scoped(`${this.prefix}s:${subject}`, issuer) }
  private sessionKey (sessionId: string, issuer?: string) { return scoped(`${this.prefix}session:${sessionId}`, issuer) }
  private grantKey (clientId: string, audience: string) { return `${this.prefix}g:${clientId}${SEP}${audience}` }
  private get legacyTokenIndex () { return `${this.prefix}tokens` }
  private get audienceIndex () { return `${this.prefix}audiences` }
  private get grantIndex () { return `${this.prefix}grants` }
  private get logKey () { return `${this.prefix}log` }
  private get trimmedKey () { return `${this.prefix}log-trimmed` }

  async lookup (query: RevocationQuery): Promise<RevocationState> {
    const keys: string[] = []
    const { audiences, jti, clientId, subject, sessionId } = query
    const issuer = query.issuer || undefined
    /** Pushes a rule's unscoped key and, for a token with an issuer, its scoped one; returns where they start. */
    const rule = (key: (issuer?: string) => string) => {
      const start = keys.push(key()) - 1
      if (issuer !== undefined) keys.push(key(issuer))
      return start
    }
    if (jti !== undefined) for (const aud of audiences) keys.push(this.legacyTokenKey(aud, jti))
    const clientStart = keys.length
    if (clientId !== undefined) {
      for (const aud of audiences) rule((i) => this.clientKey(clientId, aud, i))
      rule((i) => this.clientKey(clientId, '*', i))
    }
    const clientEnd = keys.length
    const subjectIndex = subject === undefined ? -1 : rule((i) => this.subjectKey(subject, i))
    const sessionIndex = sessionId === undefined ? -1 : rule((i) => this.sessionKey(sessionId, i))
    const perRule = issuer === undefined ? 1 : 2
    const pipeline = this.client.pipeline()
    if (keys.length > 0) pipeline.mget(...keys)
    const withGrant = query.includeGrant && clientId !== undefined
    if (withGrant) for (const aud of audiences) pipeline.hmget(this.grantKey(clientId, aud), 'created_at', 'scope')
    // The token's buckets are other slots (other nodes, in a Cluster): asked at the same
    // time as the control slot, so a lookup still waits for one round trip.
    const buckets = jti === undefined ? 0 : await this.bucketCount()
    const [results, ...tokens] = await Promise.all([replies(pipeline), ...this.tokenReads(audiences, jti, buckets)])
    const values = (keys.length > 0 ? results[0]![1] : []) as Array<string | null>
    const now = Date.now()
    let tokenRevoked = tokens.some((value) => liveExpiry(value, now) !== undefined)
    for (let i = 0; i < clientStart; i++) if (values[i] !== null) tokenRevoked = true
    const ruleAt = (index: number) => (index === -1 ? null : latestIn(values, index, index + perRule))
    const state: RevocationState = {
      tokenRevoked,
      clientRevokedAt: latestIn(values, clientStart, clientEnd),
      subjectRevokedAt: ruleAt(subjectIndex),
      sessionRevokedAt: ruleAt(sessionIndex),
    }
    if (query.includeGrant) {
      state.grant = null
      if (withGrant) {
        for (let i = keys.length > 0 ? 1 : 0; i < results.length; i++) {
          const [createdAt, scope] = results[i]![1] as [string | null, string | null]
          if (createdAt !== null) {
            state.grant = { created_at: Number(createdAt), scope: JSON.parse(scope ?? '[]') as string[] }
            break
          }
        }
      }
    }
    return state
  }

  /** One HGET per audience, each sent now to its bucket's node; none without a jti. */
  private tokenReads (audiences: string[], jti: string | undefined, buckets: number): Array<Promise<string | null>> {
    if (jti === undefined) return []
    return audiences.map((aud) => this.client.hget(bucketKey(this.bucketPrefix, bucketOf(aud, jti, buckets)), tokenField(aud, jti)))
  }

  async revokeToken (entry: RevokedToken, author?: ChangeAuthor): Promise<void> {
    const { aud, jti, expiresAt } = entry
    await this.writeTokens([entry])
    await this.logged(LOG_TOKENS, encodeEntry({ type: 'token', aud, jti, expiresAt }, author), [],
      [this.channel, encodeChange({ type: 'token', aud, jti })])
  }

  async revokeTokens (entries: RevokedToken[], author?: ChangeAuthor): Promise<void> {
    if (entries.length === 0) return
    const tokens = entries.map((e) => ({ aud: e.aud, jti: e.jti }))
    await this.writeTokens(entries)
    await this.logged(LOG_TOKENS, encodeEntry({ type: 'tokens', tokens, expiresAt: latestExpiry(entries) }, author), [],
      [this.channel, encodeChange({ type: 'tokens', tokens })])
  }

  /** Every live revoked token (of one audience): the pages of {@link listRevokedTokensPage}, joined. */
  async listRevokedTokens (filter: { aud?: string | undefined }): Promise<RevokedToken[]> {
    const tokens: RevokedToken[] = []
    for await (const page of revokedTokenPages(this, filter, MAX_TOKEN_PAGE)) tokens.push(...page)
    return tokens
  }

  /**
   * A page of the listing (redis-listing.ts): the previous layout's index first, then the
   * buckets in order, at most 1,024 buckets read per page, so a page may be short.
   */
  async listRevokedTokensPage (filter: { aud?: string | undefined }, page?: TokenPageRequest): Promise<RevokedTokenPage> {
    const limit = tokenPageLimit(page, 'RedisStore')
    const source = { client: this.client, buckets: await this.bucketCount(), bucketPrefix: this.bucketPrefix, audienceIndex: this.audienceIndex, legacyIndex: this.legacyTokenIndex }
    return revokedTokenPage(source, filter.aud, page?.cursor, limit)
  }

  /**
   * Moves tokens of the previous layout (a key each, listed in the `tokens` index) into
   * buckets, online: each round writes its tokens to their buckets first and only then
   * deletes their old keys and index members, and lookups read both layouts, so every
   * token stays refused throughout. Not logged (nothing is revoked or lifted). Returns how
   * many live tokens moved; run it again after the last instance of an earlier version
   * has stopped writing the old layout.
   */
  async migrateLegacyTokens (): Promise<number> {
    let moved = 0
    for (;;) {
      const pairs = scoredMembers(await this.client.zrangebyscore(this.legacyTokenIndex, '-inf', '+inf', 'WITHSCORES', 'LIMIT', 0, MIGRATE_BATCH) as unknown[])
      if (pairs.length === 0) return moved
      const now = Date.now()
      const live: RevokedToken[] = []
      for (const [member, score] of pairs) {
        const sep = member.indexOf(SEP)
        if (score > now) live.push({ aud: member.slice(0, sep), jti: member.slice(sep + 1), expiresAt: Number.isFinite(score) ? score : null })
      }
      await this.writeTokens(live)
      // The old keys share the prefix's slot: one pipeline.
      const pipeline = this.client.pipeline()
      for (const [member] of pairs) {
        const sep = member.indexOf(SEP)
        pipeline.del(this.legacyTokenKey(member.slice(0, sep), member.slice(sep + 1))).zrem(this.legacyTokenIndex, member)
      }
      await replies(pipeline)
      moved += live.length
    }
  }

  /** A client, subject or session rule: the later revocation kept, the attempt logged. */
  private async revokeLatest (key: string, logged: LoggedChange, change: RevocationChange,
    entry: { revokedAt: number, expiresAt: number | null }, author: ChangeAuthor | undefined): Promise<void> {
    await this.logged(REVOKE_LATEST, encodeEntry(logged, author), [key],
      [String(entry.revokedAt), expiry(entry.expiresAt), this.channel, encodeChange(change)])
  }

  async revokeClient (entry: ClientRevocation, author?: ChangeAuthor): Promise<void> {
    const { clientId, audience, revokedAt } = entry
    const issuer = issuerMember(entry.issuer || undefined)
    await this.revokeLatest(this.clientKey(clientId, audience, issuer.issuer), { type: 'client', clientId, audience, ...issuer, revokedAt },
      { type: 'client', clientId, ...issuer }, entry, author)
  }

  async revokeSubject (entry: SubjectRevocation, author?: ChangeAuthor): Promise<void> {
    const { subject, revokedAt } = entry
    const issuer = issuerMember(entry.issuer || undefined)
    await this.revokeLatest(this.subjectKey(subject, issuer.issuer), { type: 'subject', subject, ...issuer, revokedAt },
      { type: 'subject', subject, ...issuer }, entry, author)
  }

  async revokeSession (entry: SessionRevocation, author?: ChangeAuthor): Promise<void> {
    const { sessionId, revokedAt } = entry
    const issuer = issuerMember(entry.issuer || undefined)
    await this.revokeLatest(this.sessionKey(sessionId, issuer.issuer), { type: 'session', sessionId, ...issuer, revokedAt },
      { type: 'session', sessionId, ...issuer }, entry, author)
  }

  async createGrant (grant: ClientGrant, author?: ChangeAuthor): Promise<ClientGrant> {
    const { id, client_id: clientId, audience, scope } = grant
    const created = await this.logged(CREATE_GRANT, encodeEntry({ type: 'grant', action: 'create', grantId: id, clientId, audience, scope }, author),
      [this.grantKey(clientId, audience), this.grantIndex],
      [id, clientId, audience, JSON.stringify(scope), String(grant.created_at), this.channel, encodeChange({ type: 'grant', clientId })])
    if (created !== 1) throw new GrantConflictError()
    return { ...grant, scope: [...grant.scope] }
  }

  async getGrant (id: string): Promise<ClientGrant | null> {
    return grantFromHash(await this.client.eval(GET_GRANT, 1, this.grantIndex, id) as string[] | null)
  }

  async listGrants (filter: GrantFilter): Promise<ClientGrant[]> {
    const keys = Object.values(await this.client.hgetall(this.grantIndex))
    if (keys.length === 0) return []
    const pipeline = this.client.pipeline()
    for (const key of keys) pipeline.hgetall(key)
    const results = (await pipeline.exec()) ?? []
    const out: ClientGrant[] = []
    for (const [err, hash] of results) {
      if (err) throw err
      const h = hash as Record<string, string>
      if (h.id === undefined) continue
      const g = grantFromHash(Object.entries(h).flat())!
      if ((filter.client_id === undefined || g.client_id === filter.client_id) && (filter.audience === undefined || g.audience === filter.audience)) out.push(g)
    }
    return out
  }

  async updateGrant (id: string, scope: string[], author?: ChangeAuthor): Promise<ClientGrant | null> {
    const grant = await this.logged(UPDATE_GRANT, JSON.stringify(authorFields(author)), [this.grantIndex], [this.channel, id, JSON.stringify(scope)])
    return grantFromHash(grant as string[] | null)
  }

  async deleteGrant (id: string, author?: ChangeAuthor): Promise<ClientGrant | null> {
    return grantFromHash(await this.logged(DELETE_GRANT, JSON.stringify(authorFields(author)), [this.grantIndex], [this.channel, id]) as string[] | null)
  }

  /** Entries after `cursor` (a stream id), oldest first; a gap when entries after it were trimmed. */
  async readLog (cursor: string | null, limit: number): Promise<LogPage> {
    if (cursor !== null && !STREAM_ID.test(cursor)) throw new TypeError('RedisStore: not a cursor of this log')
    const reply = await this.client.eval(READ_LOG, 2, this.logKey, this.trimmedKey, cursor ?? '', String(Math.max(0, Math.floor(limit)))) as string[]
    const entries = entriesOf(reply, 2)
    return { entries, cursor: entries.at(-1)?.id ?? reply[1]!, gap: reply[0] === '1' }
  }

  /**
   * The log newest first, filtered here: read in chunks down the stream until the page is
   * full, the log ends, or HISTORY_BUDGET entries were looked at (then `next` continues
   * below the last one looked at, so a rare filter never makes one call long).
   */
  async history (filter: HistoryFilter): Promise<{ entries: LogEntry[], next: string | null }> {
    if (filter.from !== undefined && !STREAM_ID.test(filter.from)) throw new TypeError('RedisStore: not a history position of this log')
    const limit = historyLimit(filter)
    const start = filter.since === undefined ? '-' : `${Math.max(0, Math.ceil(filter.since))}-0`
    let end = filter.from !== undefined ? `(${filter.from}` : filter.until === undefined ? '+' : `(${Math.max(0, Math.ceil(filter.until))}-0`
    const entries: LogEntry[] = []
    for (let looked = 0; looked < HISTORY_BUDGET;) {
      const chunk = entriesOf(await this.client.eval(READ_HISTORY, 1, this.logKey, end, start, String(HISTORY_CHUNK)) as string[], 0)
      for (const entry of chunk) {
        if (!matchesHistory(entry, filter)) continue
        entries.push(entry)
        if (entries.length === limit) return { entries, next: entry.id }
      }
      looked += chunk.length
      if (chunk.length < HISTORY_CHUNK) return { entries, next: null }
      end = `(${chunk.at(-1)!.id}`
    }
    return { entries, next: end.slice(1) }
  }

  async lease (name: string, holder: string, ttl: number): Promise<boolean> {
    // Expiry is Redis's own clock, so instances with skewed clocks agree on who holds it.
    return await this.client.eval(LEASE, 1, `${this.prefix}lease:${name}`, holder, String(Math.max(1, Math.round(ttl)))) === 1
  }

  async claimOnce (key: string, expiresAt: number): Promise<boolean> {
    // SET NX PX: atomic on one key, and Redis forgets the claim once it is useless. The
    // key keeps the prefix (and so its hash tag and any ACL on it) like every other key.
    const ttl = Math.max(1, Math.ceil(expiresAt - Date.now()))
    return await this.client.set(`${this.prefix}claim:${key}`, '1', 'PX', ttl, 'NX') === 'OK'
  }

  async purgeExpired (now: number): Promise<number> {
    // Rule keys (and legacy token keys) expire in Redis itself; token fields do not on
    // Redis 7.0 (no HEXPIRE): every bucket is swept, one script each, at most 256 in flight. On
    // 7.4 fields written since carry their own expiry, but fields written before (by 7.0,
    // or by an earlier version of this store) do not, so the sweep still runs.
    const swept = await inFlight(await this.bucketKeys(), 256, async (key) => Number(await this.client.eval(SWEEP_BUCKET, 1, key, String(now))))
    return swept.reduce((a, b) => a + b, 0) + await this.client.zremrangebyscore(this.legacyTokenIndex, '-inf', `(${now}`)
  }

  subscribe (listener: ChangeListener): Promise<() => Promise<void>> {
    return this.feed.subscribe(listener)
  }

  /** The feed's connection, wired once: a failed subscription is retried on it, not on a new one. */
  private feedConnection (): Redis | Cluster {
    if (this.subscriber !== undefined && this.wired) return this.subscriber
    const subscriber = this.subscriber ?? duplicateOf(this.client)
    this.subscriber = subscriber
    this.wired = true
    let readyCount = subscriber.status === 'ready' ? 1 : 0
    subscriber.on('ready', () => {
      // ioredis re-subscribes after a reconnect; what was published meanwhile is lost.
      if (++readyCount > 1) this.feed.emit({ type: 'reset' })
    })
    subscriber.on('error', () => {
      // Reconnection is ioredis's job; lookups fail meanwhile and onStoreError decides.
    })
    subscriber.on('message', (channel: string, message: string) => {
      if (channel === this.channel) this.feed.emitMessage(message)
    })
    return subscriber
  }

  private async startFeed (): Promise<void> {
    await this.feedConnection().subscribe(this.channel)
  }

  private async stopFeed (): Promise<void> {
    const subscriber = this.subscriber
    if (subscriber === undefined) return
    if (this.ownSubscriber) {
      this.subscriber = undefined
      this.wired = false
      subscriber.disconnect()
    } else {
      await subscriber.unsubscribe(this.channel).catch(() => {})
    }
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.feed.close()
    if (this.ownSubscriber) await this.stopFeed()
  }
}
