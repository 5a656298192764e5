import type { ChainableCommander, Cluster, Redis } from 'ioredis'
import { parseDuration, type Duration } from '../options/duration.js'
import { GrantConflictError, invalidOption, StoreError } from '../errors.js'
import { optionKeys, refuseUnknownKeys } from '../options/option-keys.js'
import { ChangeFeed, encodeChange, issuerMember } from './change-feed.js'
import type {
  ChangeListener, ClientGrant, ClientRevocation, GrantFilter, RevocationQuery,
  RevocationState, RevocationStore, RevokedToken, SessionRevocation, SubjectRevocation,
} from './types.js'

export interface RedisStoreOptions {
  /** Your ioredis client or Cluster; you own its lifecycle. */
  client: Redis | Cluster
  /**
   * Key prefix. The default carries a hash tag so every key lives in one Cluster slot,
   * which the one-round-trip lookup and the atomic scripts need. Default `'{jwt-revocation}:'`.
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
}

export interface WaitForReplicas {
  /** Replicas that must have the write. */
  replicas: number
  /** How long to wait for them: ms, or a string such as `'500ms'`. */
  timeout: Duration
}

const redisOptionKeys = optionKeys<RedisStoreOptions>({ client: true, prefix: true, subscriber: true, waitForReplicas: true })
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

// Writes and their change message go together in one script: an instance either sees
// both or neither. Expiry uses PEXPIREAT, so Redis forgets an entry once it is useless.
const REVOKE_TOKEN = `
redis.call('SET', KEYS[1], '1')
if ARGV[1] ~= '' then redis.call('PEXPIREAT', KEYS[1], ARGV[1]) end
redis.call('ZADD', KEYS[2], ARGV[1] == '' and '+inf' or ARGV[1], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1`

// A batch: KEYS are the index then one key per token; ARGV the expiries, then the index
// members, then now, channel and message. One script, so the batch and its one change
// message are seen together.
const REVOKE_TOKENS = `
local n = #KEYS - 1
for i = 1, n do
  local expiresAt = ARGV[i]
  redis.call('SET', KEYS[i + 1], '1')
  if expiresAt ~= '' then redis.call('PEXPIREAT', KEYS[i + 1], expiresAt) end
  redis.call('ZADD', KEYS[1], expiresAt == '' and '+inf' or expiresAt, ARGV[n + i])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[2 * n + 1])
redis.call('PUBLISH', ARGV[2 * n + 2], ARGV[2 * n + 3])
return n`

// Keeps the later revocation when one exists already.
const REVOKE_LATEST = `
local current = redis.call('GET', KEYS[1])
if current and tonumber(current) > tonumber(ARGV[1]) then
  redis.call('PUBLISH', ARGV[3], ARGV[4])
  return 0
end
redis.call('SET', KEYS[1], ARGV[1])
if ARGV[2] ~= '' then redis.call('PEXPIREAT', KEYS[1], ARGV[2]) end
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1`

const CREATE_GRANT = `
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'client_id', ARGV[2], 'audience', ARGV[3], 'scope', ARGV[4], 'created_at', ARGV[5])
redis.call('HSET', KEYS[2], ARGV[1], KEYS[1])
redis.call('PUBLISH', ARGV[6], ARGV[7])
return 1`

// Grant keys are found through the id index; they share the prefix's hash slot.
const UPDATE_GRANT = `
local key = redis.call('HGET', KEYS[1], ARGV[1])
if not key then return false end
redis.call('HSET', key, 'scope', ARGV[2])
local grant = redis.call('HGETALL', key)
redis.call('PUBLISH', ARGV[3], cjson.encode({ type = 'grant', clientId = redis.call('HGET', key, 'client_id') }))
return grant`

const DELETE_GRANT = `
local key = redis.call('HGET', KEYS[1], ARGV[1])
if not key then return false end
local grant = redis.call('HGETALL', key)
local clientId = redis.call('HGET', key, 'client_id')
redis.call('DEL', key)
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('PUBLISH', ARGV[2], cjson.encode({ type = 'grant', clientId = clientId }))
return grant`

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

/**
 * `WITHSCORES` pairs in either shape ioredis gives them: a flat `[member, score, …]`
 * of strings (RESP2, and ioredis 6's default `replyMapping`), or `[[member, score], …]`
 * with numeric scores (ioredis 6 with `replyMapping: 'resp3'`).
 */
function scoredMembers (reply: unknown[]): Array<[string, number]> {
  const pairs: Array<[string, number]> = []
  const nested = Array.isArray(reply[0])
  for (let i = 0; i < reply.length; i += nested ? 1 : 2) {
    const [member, score] = nested ? reply[i] as [string, unknown] : [reply[i] as string, reply[i + 1]]
    pairs.push([member, typeof score === 'number' ? score : Number(String(score).replace(/^\+?inf$/, 'Infinity'))])
  }
  return pairs
}

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
  private subscriber: Redis | Cluster | undefined
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
  }

  /**
   * One read under the prefix, as a lookup makes: a server that refuses the client's
   * credentials or permissions fails the boot naming it, where one that does not answer
   * is an outage (retried in the background).
   */
  async ready (): Promise<void> {
    try {
      await this.client.exists(this.tokenIndex)
    } catch (err) {
      throw misconfiguration(err) ?? err
    }
  }

  /** Runs a write script; with `waitForReplicas`, resolves only once enough replicas have it. */
  private async write (script: string, keyCount: number, ...args: string[]): Promise<unknown> {
    if (this.waitForReplicas === undefined) return this.client.eval(script, keyCount, ...args)
    const { replicas, timeout } = this.waitForReplicas
    const results = await replies(this.client.pipeline().eval(script, keyCount, ...args).wait(replicas, timeout))
    const acknowledged = results[1]![1] as number
    if (acknowledged < replicas) {
      throw new StoreError(`RedisStore: the write reached ${acknowledged} of ${replicas} replicas within ${timeout} ms; a failover may lose it, so revoke again`)
    }
    return results[0]![1]
  }

  private tokenKey (aud: string, jti: string) { return `${this.prefix}t:${aud}${SEP}${jti}` }
  // A rule scoped to an issuer has the unscoped key with the issuer appended (the same
  // hash tag): the lookup asks for both in its one MGET.
  private clientKey (clientId: string, audience: string, issuer?: string) { return scoped(`${this.prefix}c:${clientId}${SEP}${audience}`, issuer) }
  private subjectKey (subject: string, issuer?: string) { return scoped(`${this.prefix}s:${subject}`, issuer) }
  private sessionKey (sessionId: string, issuer?: string) { return scoped(`${this.prefix}session:${sessionId}`, issuer) }
  private grantKey (clientId: string, audience: string) { return `${this.prefix}g:${clientId}${SEP}${audience}` }
  private get tokenIndex () { return `${this.prefix}tokens` }
  private get grantIndex () { return `${this.prefix}grants` }

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
    if (jti !== undefined) for (const aud of audiences) keys.push(this.tokenKey(aud, jti))
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
    const results = await replies(pipeline)
    const values = (keys.length > 0 ? results[0]![1] : []) as Array<string | null>
    let tokenRevoked = false
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

  async revokeToken (entry: RevokedToken): Promise<void> {
    await this.write(REVOKE_TOKEN, 2, this.tokenKey(entry.aud, entry.jti), this.tokenIndex,
      expiry(entry.expiresAt), entry.aud + SEP + entry.jti, String(Date.now()), this.channel,
      encodeChange({ type: 'token', aud: entry.aud, jti: entry.jti }))
  }

  async revokeTokens (entries: RevokedToken[]): Promise<void> {
    if (entries.length === 0) return
    const keys = [this.tokenIndex, ...entries.map((e) => this.tokenKey(e.aud, e.jti))]
    const args = [
      ...entries.map((e) => expiry(e.expiresAt)),
      ...entries.map((e) => e.aud + SEP + e.jti),
      String(Date.now()), this.channel,
      encodeChange({ type: 'tokens', tokens: entries.map((e) => ({ aud: e.aud, jti: e.jti })) }),
    ]
    await this.write(REVOKE_TOKENS, keys.length, ...keys, ...args)
  }

  async listRevokedTokens (filter: { aud?: string | undefined }): Promise<RevokedToken[]> {
    const reply = await this.client.zrangebyscore(this.tokenIndex, `(${Date.now()}`, '+inf', 'WITHSCORES')
    const out: RevokedToken[] = []
    for (const [member, score] of scoredMembers(reply as unknown[])) {
      const sep = member.indexOf(SEP)
      const aud = member.slice(0, sep)
      if (filter.aud !== undefined && aud !== filter.aud) continue
      out.push({ aud, jti: member.slice(sep + 1), expiresAt: Number.isFinite(score) ? score : null })
    }
    return out
  }

  async revokeClient (entry: ClientRevocation): Promise<void> {
    const issuer = entry.issuer || undefined
    await this.write(REVOKE_LATEST, 1, this.clientKey(entry.clientId, entry.audience, issuer),
      String(entry.revokedAt), expiry(entry.expiresAt), this.channel, encodeChange({ type: 'client', clientId: entry.clientId, ...issuerMember(issuer) }))
  }

  async revokeSubject (entry: SubjectRevocation): Promise<void> {
    const issuer = entry.issuer || undefined
    await this.write(REVOKE_LATEST, 1, this.subjectKey(entry.subject, issuer),
      String(entry.revokedAt), expiry(entry.expiresAt), this.channel, encodeChange({ type: 'subject', subject: entry.subject, ...issuerMember(issuer) }))
  }

  async revokeSession (entry: SessionRevocation): Promise<void> {
    const issuer = entry.issuer || undefined
    await this.write(REVOKE_LATEST, 1, this.sessionKey(entry.sessionId, issuer),
      String(entry.revokedAt), expiry(entry.expiresAt), this.channel, encodeChange({ type: 'session', sessionId: entry.sessionId, ...issuerMember(issuer) }))
  }

  async createGrant (grant: ClientGrant): Promise<ClientGrant> {
    const created = await this.write(CREATE_GRANT, 2, this.grantKey(grant.client_id, grant.audience), this.grantIndex,
      grant.id, grant.client_id, grant.audience, JSON.stringify(grant.scope), String(grant.created_at),
      this.channel, encodeChange({ type: 'grant', clientId: grant.client_id }))
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

  async updateGrant (id: string, scope: string[]): Promise<ClientGrant | null> {
    return grantFromHash(await this.write(UPDATE_GRANT, 1, this.grantIndex, id, JSON.stringify(scope), this.channel) as string[] | null)
  }

  async deleteGrant (id: string): Promise<ClientGrant | null> {
    return grantFromHash(await this.write(DELETE_GRANT, 1, this.grantIndex, id, this.channel) as string[] | null)
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
    // Token, client, subject and session keys expire in Redis itself; only the listing index needs trimming.
    return this.client.zremrangebyscore(this.tokenIndex, '-inf', `(${now}`)
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
