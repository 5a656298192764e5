import type { FastifyBaseLogger } from 'fastify'
import {
  GrantNotFoundError, InvalidArgumentError, ServiceUnavailableError, StoreError, tokenRevoked, type RevocationReason,
} from '../errors.js'
import { newGrantId } from './grant-id.js'
import type { HealthContributor, HealthReport, HealthReporter } from '../ops/health.js'
import { Metrics } from '../ops/metrics.js'
import type { ResolvedOptions } from '../options/options.js'
import { StatusListChecker } from '../sources/status-list/checker.js'
import { withTimeout, type StoreGuard } from './store-guard.js'
import { issuerMember } from '../stores/change-feed.js'
import { inMemoryLookup, lookupNow, type InMemoryLookup } from '../stores/state-backed.js'
import type { TokenCache, TokenRecord } from '../request/token-cache.js'
import { FeedMonitor, type FeedStatus } from './feed-status.js'
import { changeAuthor, historyFilter, type HistoryPage, type WriteAuthor } from './audit.js'
import type {
  ClientGrant, GrantFilter, HistoryFilter, RevocationChange, RevocationQuery, RevocationState, RevocationStore, RevokedToken,
  RevokedTokenPage, SessionRevocation, TokenPageRequest,
} from '../stores/types.js'

export interface RevokeTokenInput {
  jti: string
  /** Audience the token was issued for; defaults to the first configured `audience`. */
  aud?: string
  /** The token's `exp` (seconds): the entry is dropped once the token could no longer be used. */
  exp?: number
}

/** Scopes a client, subject or session rule to the tokens of one issuer. */
export interface IssuerScope {
  /**
   * Only tokens whose `iss` is this issuer (one the API accepts): a client id or subject
   * is only unique within its issuer. Default: every issuer.
   */
  issuer?: string
}

export interface RevokeClientOptions extends IssuerScope {
  /** Only the client's tokens for this audience (one the API accepts). Default: every audience. */
  audience?: string
}

export interface RevokeSubjectOptions extends IssuerScope {
  /** ms, not in the future: dates the revocation to when it happened elsewhere. Default now. */
  at?: number
}

export interface RevokeSessionOptions extends IssuerScope {
  /** ms: tokens of the session issued up to this time are refused. Default now; a time in the future counts as now. */
  revokedAt?: number
  /** ms: when the rule may be forgotten. Default: once no token it refuses could still be valid (`maxTokenLifetime`), else never. */
  expiresAt?: number
}

export interface CreateGrantInput {
  client_id: string
  audience: string
  scope: string[]
}

/** Refuses an argument object that is not an object or holds a key not in `known`. */
function knownArgumentKeys (value: object, known: string[], name: string): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InvalidArgumentError(`${name} must be an object { ${known.map((k) => `${k}?`).join(', ')} }`)
  const unknown = Object.keys(value).find((key) => !known.includes(key))
  if (unknown !== undefined) throw new InvalidArgumentError(`${name}.${unknown} is not known; it takes { ${known.map((k) => `${k}?`).join(', ')} }`)
}

function nonEmpty (value: unknown, name: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.includes('\u0000')) {
    throw new InvalidArgumentError(`${name} must be a non-empty string`)
  }
  return value
}

/** An optional time in ms; a value that reads as seconds (before 2001) is a unit mistake that would refuse nothing. */
function optionalTime (value: unknown, name: string): number | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 1e12) {
    throw new InvalidArgumentError(`${name} must be a time in milliseconds since the epoch`)
  }
  return value
}

/**
 * Both revocation strategies of the API owner, decorated as `app.revocation`, and the
 * per-request check behind them. Revocations made here invalidate this process's
 * cache at once; the store's change feed carries them to other processes.
 */
export class Revocation {
  readonly store: RevocationStore
  private readonly options: ResolvedOptions
  private readonly cache: TokenCache | null
  private readonly ttl: number
  /** Bumped by every invalidation, so a lookup started before it is not cached after it. */
  private epoch = 0
  private readonly guard: StoreGuard
  private readonly statusList: StatusListChecker | null
  /** The store, when it answers from memory at once (Memory, File) and no status list is read beside it. */
  private readonly memory: InMemoryLookup | null

  constructor (
    options: ResolvedOptions, cache: TokenCache | null, guard: StoreGuard, log: FastifyBaseLogger,
    private readonly metrics = new Metrics(), private readonly healthReporter?: HealthReporter,
    private readonly feed = new FeedMonitor(),
  ) {
    this.options = options
    this.store = options.store
    this.cache = cache
    this.guard = guard
    this.ttl = options.cache === false ? 0 : options.cache.ttl
    this.statusList = options.statusList === null ? null : new StatusListChecker({ ...options, statusList: options.statusList }, log)
    this.memory = this.statusList === null ? inMemoryLookup(this.store) : null
  }

  /** The access tokens' expected issuers, when the `issuer` or `issuers` option names them. */
  get tokenIssuers (): readonly string[] | undefined {
    return this.options.issuer ?? this.options.issuers?.map((entry) => entry.issuer)
  }

  /** The audiences this API accepts (the plugin's `audience` option). */
  get audiences (): readonly string[] {
    return this.options.audiences
  }

  /**
   * Readiness: the store asked now (bounded by `storeTimeout`), the change feed and the key
   * source as last seen, and any check an extension added (the Auth0 sync adds `auth0Sync`).
   * `status` is `down` when the store or the keys are unreachable, `degraded` when something
   * is behind (feed disconnected, keys served from the last good set, a sync failing).
   */
  async health (): Promise<HealthReport> {
    if (this.healthReporter === undefined) throw new TypeError('fastify-jwt-revocation: health() is available on app.revocation')
    return this.healthReporter.report()
  }

  /** Adds a named check to `health()` (for extensions of the plugin, e.g. a feed or a sync). */
  addHealthCheck (name: string, check: HealthContributor): void {
    if (this.healthReporter === undefined) throw new TypeError('fastify-jwt-revocation: addHealthCheck() is available on app.revocation')
    this.healthReporter.add(name, check)
  }

  /** Seconds a client should wait before retrying after a 503 (the `retryAfter` option). */
  get retryAfter (): number {
    return this.options.retryAfter
  }

  /**
   * Every store call outside the request path goes through the guard: bounded by
   * `storeTimeout`, rejected with StoreError on failure. Not held back by an open
   * breaker: an operator's revocation is worth a try.
   */
  private call<T> (what: string, run: () => Promise<T>): Promise<T> {
    return this.guard.call(what, run)
  }

  /**
   * A write for an audience this API does not accept would do nothing here (a trailing
   * slash is enough): refused, unless the store is shared by several APIs.
   */
  private ownAudience (value: unknown, name: string): string {
    const audience = nonEmpty(value, name)
    if (!this.options.acceptForeignAudiences && !this.options.audiences.includes(audience)) {
      throw new InvalidArgumentError(`${name} must be an audience this API accepts: ${this.options.audiences.join(', ')}`)
    }
    return audience
  }

  /** Whether the store keeps rules scoped to an issuer (its `issuerScopes`). */
  get issuerScopesSupported (): boolean {
    return this.store.issuerScopes === true
  }

  /**
   * The issuer a rule is scoped to, or undefined for every issuer. A rule for an issuer
   * this API does not accept would refuse nothing here, and a store without issuer
   * scopes would have to widen or drop it: both are refused.
   */
  private scope (value: unknown): { issuer?: string } {
    if (value === undefined) return {}
    const issuer = nonEmpty(value, 'issuer')
    const accepted = this.tokenIssuers
    if (accepted !== undefined && !accepted.includes(issuer)) {
      throw new InvalidArgumentError(`issuer must be an issuer this API accepts: ${accepted.join(', ')}`)
    }
    if (!this.issuerScopesSupported) {
      throw new StoreError('this store does not keep rules scoped to an issuer (it does not declare issuerScopes); revoke for every issuer instead')
    }
    return { issuer }
  }

  // ---- the log: the audit trail and the feed ----------------------------------------

  /** Whether the store keeps the revocation log (`readLog` and `history`). */
  get logSupported (): boolean {
    return typeof this.store.readLog === 'function' && typeof this.store.history === 'function'
  }

  /**
   * The audit trail: who changed what, when and why, newest first, filtered; `next` is
   * the `from` of the next page, or null. Refused when the store keeps no log.
   */
  async history (filter: HistoryFilter = {}): Promise<HistoryPage> {
    const checked = historyFilter(filter)
    const store = this.store
    if (typeof store.history !== 'function') {
      throw new StoreError('this store keeps no revocation log (it has no history method)')
    }
    return this.call('history', () => store.history!(checked))
  }

  /** How this instance follows the changes made elsewhere: connected, its cursor in the log, lag, resets. */
  feedStatus (): FeedStatus {
    return this.feed.status()
  }

  // ---- strategy 1: blacklist one token -------------------------------------------

  async revokeToken (input: RevokeTokenInput, author?: WriteAuthor): Promise<void> {
    const entry = this.tokenEntry(input)
    const by = changeAuthor(author)
    await this.call('revokeToken', () => this.store.revokeToken(entry, by))
    this.invalidate({ type: 'token', aud: entry.aud, jti: entry.jti })
  }

  /**
   * Blacklists many tokens: one store write when the store has `revokeTokens` (one by
   * one otherwise) and one invalidation for all of them. Every input is checked first:
   * one bad input refuses the whole batch.
   */
  async revokeTokens (inputs: RevokeTokenInput[], author?: WriteAuthor): Promise<void> {
    if (!Array.isArray(inputs)) throw new InvalidArgumentError('revokeTokens takes an array of { jti, aud?, exp? }')
    const entries = inputs.map((input) => this.tokenEntry(input))
    const by = changeAuthor(author)
    if (entries.length === 0) return
    const store = this.store
    await this.call('revokeTokens', async () => {
      if (store.revokeTokens) return store.revokeTokens(entries, by)
      for (const entry of entries) await store.revokeToken(entry, by)
    })
    this.invalidate({ type: 'tokens', tokens: entries.map((e) => ({ aud: e.aud, jti: e.jti })) })
  }

  private tokenEntry (input: RevokeTokenInput): RevokedToken {
    const jti = nonEmpty(input?.jti, 'jti')
    const aud = input.aud === undefined ? this.options.audiences[0]! : this.ownAudience(input.aud, 'aud')
    if (input.exp !== undefined && (typeof input.exp !== 'number' || !Number.isFinite(input.exp))) {
      throw new InvalidArgumentError('exp must be a number of seconds since the epoch')
    }
    return { aud, jti, expiresAt: this.entryExpiry(input.exp) }
  }

  async isTokenRevoked (jti: string, aud?: string): Promise<boolean> {
    const query = {
      audiences: [aud === undefined ? this.options.audiences[0]! : nonEmpty(aud, 'aud')],
      jti: nonEmpty(jti, 'jti'),
      includeGrant: false,
    }
    const state = await this.call('isTokenRevoked', () => this.store.lookup(query))
    return state.tokenRevoked
  }

  async listRevokedTokens (filter: { aud?: string } = {}): Promise<RevokedToken[]> {
    return this.call('listRevokedTokens', () => this.store.listRevokedTokens({ aud: filter.aud }))
  }

  /**
   * The same listing in pages: pass each page's `next` as the following `cursor` until it
   * is null. A store without paged listing answers everything as one page.
   */
  async listRevokedTokensPage (filter: { aud?: string } = {}, page: TokenPageRequest = {}): Promise<RevokedTokenPage> {
    // A misspelt `cursor` would start the walk again from the first page, for ever.
    knownArgumentKeys(filter, ['aud'], 'filter')
    knownArgumentKeys(page, ['cursor', 'limit'], 'page')
    if (page.limit !== undefined && (!Number.isInteger(page.limit) || page.limit < 1)) throw new InvalidArgumentError('limit must be a positive integer')
    const store = this.store
    if (typeof store.listRevokedTokensPage !== 'function') {
      if (page.cursor !== undefined) throw new InvalidArgumentError('cursor: this store lists its tokens in one page')
      return { tokens: await this.listRevokedTokens(filter), next: null }
    }
    // A cursor the store refuses (a TypeError) is the caller's mistake, not an outage for the breaker.
    return this.call('listRevokedTokens', () => store.listRevokedTokensPage!({ aud: filter.aud }, page).catch((err: unknown) => {
      throw err instanceof TypeError ? new InvalidArgumentError(`cursor: ${err.message}`) : err
    }))
  }

  // ---- strategy 2: cut off a client (or a subject) -------------------------------

  /**
   * Every token of `clientId` (for `audience`, or all audiences; from `issuer`, or every
   * issuer) issued up to now is refused.
   */
  async revokeClient (clientId: string, options: RevokeClientOptions = {}, author?: WriteAuthor): Promise<void> {
    const id = nonEmpty(clientId, 'clientId')
    const audience = options.audience === undefined ? '*' : this.ownAudience(options.audience, 'audience')
    await this.revokeClientFor(id, audience, this.scope(options.issuer), changeAuthor(author))
  }

  private async revokeClientFor (id: string, audience: string, scope: { issuer?: string }, by: WriteAuthor): Promise<void> {
    const entry = { clientId: id, audience, ...scope, revokedAt: Date.now(), expiresAt: this.entryExpiry(undefined) }
    await this.call('revokeClient', () => this.store.revokeClient(entry, by))
    this.invalidate({ type: 'client', clientId: id, ...scope })
  }

  /**
   * "Log out everywhere": every token of `subject` issued up to now is refused. `at` (ms,
   * not in the future) dates the revocation to when it happened elsewhere, e.g. the time
   * of a pushed security event: tokens issued after it stay valid. With `issuer`, only
   * that issuer's tokens of the subject.
   */
  async revokeSubject (subject: string, options: RevokeSubjectOptions = {}, author?: WriteAuthor): Promise<void> {
    const sub = nonEmpty(subject, 'subject')
    const by = changeAuthor(author)
    const now = Date.now()
    if (options.at !== undefined && (typeof options.at !== 'number' || !Number.isFinite(options.at))) {
      throw new InvalidArgumentError('at must be a time in milliseconds')
    }
    const scope = this.scope(options.issuer)
    const entry = { subject: sub, ...scope, revokedAt: Math.min(options.at ?? now, now), expiresAt: this.entryExpiry(undefined) }
    await this.call('revokeSubject', () => this.store.revokeSubject(entry, by))
    this.invalidate({ type: 'subject', subject: sub, ...scope })
  }

  /** Whether the store keeps session revocations (`revokeSession`): what a logout or a CAEP session event needs. */
  get sessionsSupported (): boolean {
    return typeof this.store.revokeSession === 'function'
  }

  /**
   * Logs out one session: every token whose `sid` claim is `sessionId` issued up to
   * `revokedAt` (ms, default now; not in the future) is refused; the subject's other
   * sessions, and tokens without `sid`, are untouched. The rule is kept until
   * `expiresAt` (ms), by default as long as a token issued before it could be valid
   * (`maxTokenLifetime`), else until removed.
   */
  async revokeSession (sessionId: string, options: RevokeSessionOptions = {}, author?: WriteAuthor): Promise<void> {
    const entry = this.sessionEntry(sessionId, options)
    const by = changeAuthor(author)
    const store = this.store
    if (typeof store.revokeSession !== 'function') {
      throw new StoreError('this store does not keep session revocations (it has no revokeSession method)')
    }
    await this.call('revokeSession', () => store.revokeSession!(entry, by))
    this.invalidate({ type: 'session', sessionId: entry.sessionId, ...issuerMember(entry.issuer) })
  }

  private sessionEntry (sessionId: string, options: RevokeSessionOptions): SessionRevocation {
    const sid = nonEmpty(sessionId, 'sessionId')
    if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('revokeSession options must be an object { revokedAt?, expiresAt?, issuer? }')
    const now = Date.now()
    const revokedAt = optionalTime(options.revokedAt, 'revokedAt')
    const expiresAt = optionalTime(options.expiresAt, 'expiresAt')
    // A rule already over would refuse nothing: a mistake, not a revocation.
    if (expiresAt !== undefined && expiresAt <= now) throw new InvalidArgumentError('expiresAt must be a time in milliseconds in the future')
    return { sessionId: sid, ...this.scope(options.issuer), revokedAt: Math.min(revokedAt ?? now, now), expiresAt: expiresAt ?? this.entryExpiry(undefined) }
  }

  // ---- client grants ---------------------------------------------------------------

  private grantStore (): Required<Pick<RevocationStore, 'createGrant' | 'getGrant' | 'listGrants' | 'updateGrant' | 'deleteGrant'>> {
    const s = this.store
    if (!s.createGrant || !s.getGrant || !s.listGrants || !s.updateGrant || !s.deleteGrant) {
      throw new StoreError('this store does not keep client grants')
    }
    return s as never
  }

  async createGrant (input: CreateGrantInput, author?: WriteAuthor): Promise<ClientGrant> {
    const grant: ClientGrant = {
      id: newGrantId(),
      client_id: nonEmpty(input?.client_id, 'client_id'),
      audience: this.ownAudience(input.audience, 'audience'),
      scope: [...new Set(input.scope ?? [])],
      created_at: Date.now(),
    }
    const by = changeAuthor(author)
    const store = this.grantStore()
    const created = await this.call('createGrant', () => store.createGrant(grant, by))
    this.invalidate({ type: 'grant', clientId: created.client_id })
    return created
  }

  async getGrant (id: string): Promise<ClientGrant | null> {
    const store = this.grantStore()
    return this.call('getGrant', () => store.getGrant(id))
  }

  async listGrants (filter: GrantFilter = {}): Promise<ClientGrant[]> {
    const store = this.grantStore()
    return this.call('listGrants', () => store.listGrants(filter))
  }

  /** Replaces the grant's scopes; tokens of the client lose the removed scopes on their next request. */
  async updateGrant (id: string, scope: string[], author?: WriteAuthor): Promise<ClientGrant> {
    const by = changeAuthor(author)
    const store = this.grantStore()
    const updated = await this.call('updateGrant', () => store.updateGrant(id, [...new Set(scope)], by))
    if (!updated) throw new GrantNotFoundError()
    this.invalidate({ type: 'grant', clientId: updated.client_id })
    return updated
  }

  /**
   * Deletes the grant and revokes the client's tokens for that audience issued up to
   * now: unlike at an issuer, the deletion takes effect on the next request. The grant
   * itself is the client's at every issuer; with `issuer`, only that issuer's tokens of
   * the client are revoked (an issuer's grant deleted, another issuer's client of the same id kept).
   */
  async deleteGrant (id: string, options: IssuerScope = {}, author?: WriteAuthor): Promise<ClientGrant> {
    const by = changeAuthor(author)
    const store = this.grantStore()
    // Checked before the grant goes: a bad scope must not leave a deleted grant with its client unrevoked.
    const scope = this.scope(options?.issuer)
    const deleted = await this.call('deleteGrant', () => store.deleteGrant(id, by))
    if (!deleted) throw new GrantNotFoundError()
    // The grant may predate a narrower `audience` option: its own audience is what to revoke.
    await this.revokeClientFor(deleted.client_id, deleted.audience, scope, by)
    return deleted
  }

  // ---- the per-request check -------------------------------------------------------

  /**
   * Applies the token's revocation status, reading the store only when the cached
   * answer is missing or older than `cache.ttl`. Synchronous on a fresh cache hit.
   */
  check (record: TokenRecord, now: number): void | Promise<void> {
    if (record.checkedAt !== 0 && now - record.checkedAt < this.ttl) return verdict(record)
    if (record.revokedReason !== null) return verdict(record)
    if (record.pending === null) {
      if (this.memory !== null) {
        const started = performance.now()
        const state = this.memory[lookupNow](this.queryOf(record), now)
        if (state !== undefined) {
          this.metrics.storeAnswered(started)
          this.apply(record, state, now)
          return verdict(record)
        }
      }
      // While the store is failing, requests are answered at once, not after a timeout each.
      if (!this.guard.allow()) return this.unavailable()
      record.pending = this.refresh(record, now)
    }
    return record.pending.then(() => verdict(record))
  }

  private queryOf (record: TokenRecord): RevocationQuery {
    return {
      audiences: record.audiences,
      jti: typeof record.payload.jti === 'string' ? record.payload.jti : undefined,
      clientId: record.clientId ?? undefined,
      subject: record.subject ?? undefined,
      sessionId: record.sessionId ?? undefined,
      // Verified by jose against the issuer whose keys verified the token (with `issuers`, or `issuer`).
      issuer: typeof record.payload.iss === 'string' ? record.payload.iss : undefined,
      includeGrant: this.options.grants,
    }
  }

  private async refresh (record: TokenRecord, now: number): Promise<void> {
    const epoch = this.epoch
    let state: RevocationState
    // The issuer's status list, when the token points into one, is read beside the store.
    const listStatus = this.statusList?.statusOf(record.payload)
    listStatus?.catch(() => {})
    try {
      state = await this.metrics.storeCall(withTimeout(() => this.store.lookup(this.queryOf(record)), this.options.storeTimeout))
      checkStoreAnswer(state, this.options.grants, this.sessionsSupported)
    } catch (err) {
      record.pending = null
      this.guard.failed(err)
      return this.unavailable()
    }
    this.guard.answered()
    if (listStatus !== undefined) {
      try {
        record.listStatus = await listStatus
      } catch (err) {
        record.pending = null
        return this.statusListFailed(err)
      }
    }
    // A revocation that landed while we were asking must not be hidden for `ttl`.
    this.apply(record, state, epoch === this.epoch ? now : 0)
    record.pending = null
  }

  /** The answer while the store cannot give one: 503, or let through, per `onStoreError`. */
  private unavailable (): void {
    if (this.options.onStoreError === 'deny') throw new ServiceUnavailableError('Revocation status is unavailable')
  }

  /** A bad status reference is the token's fault (401); an unavailable list is an outage, as for the store. */
  private statusListFailed (err: unknown): void {
    if ((err as { statusCode?: number }).statusCode !== 503) throw err
    if (this.options.onStoreError === 'deny') throw err
  }

  /** Applies the store's answer; `checkedAt` 0 keeps it from being reused. */
  private apply (record: TokenRecord, state: RevocationState, checkedAt: number): void {
    record.checkedAt = checkedAt
    const iat = typeof record.payload.iat === 'number' ? record.payload.iat : -Infinity
    // Status 0x01 (INVALID) is final; others (0x02 SUSPENDED, …) refuse while they last.
    if (state.tokenRevoked) record.revokedReason = 'token'
    else if (record.listStatus === 1) record.revokedReason = 'status-list'
    else if (issuedBy(iat, state.clientRevokedAt)) record.revokedReason = 'client'
    else if (issuedBy(iat, state.subjectRevokedAt)) record.revokedReason = 'subject'
    else if (record.sessionId !== null && issuedBy(iat, state.sessionRevokedAt ?? null)) record.revokedReason = 'session'
    if (!this.options.grants) return
    const grant = state.grant
    // Not sticky, unlike a revocation: the answer follows the grant as it changes.
    record.grantDenied = !grant || iat < Math.floor(grant.created_at / 1000)
    if (grant) {
      const allowed = new Set(grant.scope)
      record.scopes = Object.freeze(record.tokenScopes.filter((s) => allowed.has(s))) as string[]
    }
  }

  /** Drops what a change makes stale: cached statuses of the tokens it concerns. */
  invalidate (change: RevocationChange): void {
    this.epoch++
    if (this.cache === null) return
    for (const record of this.cache.affected(change)) {
      if (record.revokedReason !== null) continue
      record.checkedAt = 0
      record.pending = null
      // Revocation wins over caches: the issuer is asked again too.
      if (record.introspectedUntil !== undefined) record.introspectedUntil = 0
    }
  }

  /** When a revocation entry may be forgotten: once no token it refuses could still be valid. */
  private entryExpiry (exp: number | undefined): number | null {
    if (exp !== undefined) return exp * 1000
    const lifetime = this.options.maxTokenLifetime
    return lifetime === undefined ? null : Date.now() + lifetime * 1000 + this.options.clockTolerance * 1000
  }
}

/** Whether a token issued at `iat` (s) predates a revocation at `revokedAt` (ms); second precision: the same second is refused. */
function issuedBy (iat: number, revokedAt: number | null): boolean {
  return revokedAt !== null && iat <= Math.floor(revokedAt / 1000)
}

const isTime = (v: unknown) => v === null || (typeof v === 'number' && Number.isFinite(v))

/**
 * A store answering garbage is a failing store: fail by onStoreError, never guess. A
 * store that keeps sessions must say whether the token's session is revoked; one without
 * `revokeSession` may stay silent, having none to report.
 */
function checkStoreAnswer (state: RevocationState, grants: boolean, sessions: boolean): void {
  const ok = state !== null && typeof state === 'object' &&
    typeof state.tokenRevoked === 'boolean' && isTime(state.clientRevokedAt) && isTime(state.subjectRevokedAt) &&
    (sessions ? isTime(state.sessionRevokedAt) : state.sessionRevokedAt === undefined || isTime(state.sessionRevokedAt)) &&
    (!grants || state.grant === null || (typeof state.grant === 'object' && Number.isFinite(state.grant.created_at) && Array.isArray(state.grant.scope)))
  if (!ok) throw new Error('revocation store returned a malformed answer')
}

function verdict (record: TokenRecord): void {
  if (record.revokedReason !== null) throw revokedError(record, record.revokedReason)
  if (record.listStatus) throw revokedError(record, 'status-list')
  if (record.grantDenied) throw revokedError(record, 'grant')
}

/** The refusal of a revoked token, saying to server-side code (never to the client) which rule matched. */
export function revokedError (record: TokenRecord, reason: RevocationReason): Error {
  const jti = record.payload.jti
  return tokenRevoked({
    reason,
    ...(record.clientId === null ? {} : { clientId: record.clientId }),
    ...(record.subject === null ? {} : { subject: record.subject }),
    ...(record.sessionId === null ? {} : { sessionId: record.sessionId }),
    ...(typeof jti === 'string' ? { jti } : {}),
  })
}
