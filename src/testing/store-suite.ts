import type { ClientGrant, RevocationChange, RevocationStore, RevokedToken } from '../stores/types.js'
import { runLogSuite, type TrimmedStoreFactory } from './log-suite.js'

/** The few assertions the suite uses; tap's `t` provides them (and so do most tap-like runners). */
export interface SuiteTest {
  // `any`: runners type their sub-test richly; the suite only uses the members below.
  test(name: string, fn: (t: any) => Promise<void>): unknown
  equal(found: unknown, wanted: unknown, ...message: any[]): unknown
  same(found: unknown, wanted: unknown, ...message: any[]): unknown
  ok(value: unknown, ...message: any[]): unknown
  teardown(fn: () => any): unknown
}

export interface StoreSuiteOptions {
  /** Run the client-grant tests (the store implements the grant methods). Default: detected. */
  grants?: boolean
  /** ms to wait for a change-feed message from the store. Default 2000. */
  feedTimeout?: number
  /** For a store with the log: makes one keeping at most `logMaxEntries` entries (tests trimming). Without it, that test is skipped. */
  trimmedStore?: TrimmedStoreFactory
}

/** A fresh store per test; the suite closes it. Stores that share a server should use a fresh prefix each time. */
export type StoreFactory = () => RevocationStore | Promise<RevocationStore>

const HOUR = 3_600_000
let counter = 0
const unique = (what: string) => `${what}-${process.pid}-${Date.now().toString(36)}-${(counter++).toString(36)}`

function waitFor (events: RevocationChange[], match: (c: RevocationChange) => boolean, timeout: number): Promise<boolean> {
  return new Promise((resolve) => {
    const started = Date.now()
    const poll = () => {
      if (events.some(match)) return resolve(true)
      if (Date.now() - started > timeout) return resolve(false)
      setTimeout(poll, 5)
    }
    poll()
  })
}

/**
 * The conformance suite every revocation store passes, built in or third-party:
 *
 *   import t from 'tap'
 *   import { runStoreSuite } from 'fastify-jwt-revocation/testing'
 *   runStoreSuite(t, () => new MyStore())
 */
export function runStoreSuite (t: SuiteTest, makeStore: StoreFactory, options: StoreSuiteOptions = {}): void {
  const feedTimeout = options.feedTimeout ?? 2000

  async function fresh (t: SuiteTest, make: () => RevocationStore | Promise<RevocationStore> = makeStore): Promise<RevocationStore> {
    const store = await make()
    t.teardown(() => store.close?.())
    await store.ready?.()
    return store
  }

  t.test('a revoked (aud, jti) is reported for that audience only', async (t: SuiteTest) => {
    const store = await fresh(t)
    const jti = unique('jti')
    await store.revokeToken({ aud: 'https://a.test', jti, expiresAt: Date.now() + HOUR })
    const hit = await store.lookup({ audiences: ['https://a.test'], jti, includeGrant: false })
    t.equal(hit.tokenRevoked, true)
    t.equal((await store.lookup({ audiences: ['https://b.test'], jti, includeGrant: false })).tokenRevoked, false, 'other audience')
    t.equal((await store.lookup({ audiences: ['https://a.test'], jti: unique('jti'), includeGrant: false })).tokenRevoked, false, 'other jti')
    t.equal((await store.lookup({ audiences: ['https://b.test', 'https://a.test'], jti, includeGrant: false })).tokenRevoked, true, 'any of several audiences')
    t.equal(hit.clientRevokedAt, null)
    t.equal(hit.subjectRevokedAt, null)
  })

  t.test('revoking the same token twice is harmless', async (t: SuiteTest) => {
    const store = await fresh(t)
    const jti = unique('jti')
    await store.revokeToken({ aud: 'https://a.test', jti, expiresAt: Date.now() + HOUR })
    await store.revokeToken({ aud: 'https://a.test', jti, expiresAt: Date.now() + HOUR })
    const listed = (await store.listRevokedTokens({ aud: 'https://a.test' })).filter((e) => e.jti === jti)
    t.equal(listed.length, 1)
  })

  t.test('expired entries are neither reported nor listed', async (t: SuiteTest) => {
    const store = await fresh(t)
    const aud = unique('https://aud')
    const gone = unique('jti')
    const kept = unique('jti')
    const forever = unique('jti')
    await store.revokeToken({ aud, jti: gone, expiresAt: Date.now() - 1000 })
    await store.revokeToken({ aud, jti: kept, expiresAt: Date.now() + HOUR })
    await store.revokeToken({ aud, jti: forever, expiresAt: null })
    t.equal((await store.lookup({ audiences: [aud], jti: gone, includeGrant: false })).tokenRevoked, false)
    const listed = await store.listRevokedTokens({ aud })
    t.same(listed.map((e) => e.jti).sort(), [kept, forever].sort())
    t.same(listed.find((e) => e.jti === forever)?.expiresAt, null)
    if (store.purgeExpired) {
      // A store may drop expired entries earlier (Redis never keeps them): only live ones must survive.
      t.ok(await store.purgeExpired(Date.now()) >= 0, 'purgeExpired answers a count')
      t.same((await store.listRevokedTokens({ aud })).map((e) => e.jti).sort(), [kept, forever].sort(), 'live entries survive a purge')
    }
  })

  t.test('listRevokedTokens filters by audience', async (t: SuiteTest) => {
    const store = await fresh(t)
    const a = unique('https://a')
    const b = unique('https://b')
    await store.revokeToken({ aud: a, jti: 'one', expiresAt: Date.now() + HOUR })
    await store.revokeToken({ aud: b, jti: 'two', expiresAt: Date.now() + HOUR })
    t.same((await store.listRevokedTokens({ aud: a })).map((e) => [e.aud, e.jti]), [[a, 'one']])
    const all = await store.listRevokedTokens({})
    t.ok(all.some((e) => e.aud === a) && all.some((e) => e.aud === b), 'no filter lists every audience')
  })

  /** Every page of a walk (each checked against `limit`), and the tokens they listed. */
  async function walk (t: SuiteTest, store: RevocationStore, filter: { aud?: string }, limit: number, between?: () => Promise<void>): Promise<RevokedToken[]> {
    const tokens: RevokedToken[] = []
    let cursor: string | undefined
    for (let pages = 0; ; pages++) {
      const page = await store.listRevokedTokensPage!(filter, { ...(cursor === undefined ? {} : { cursor }), limit })
      if (page.tokens.length > limit) t.ok(false, `a page of ${page.tokens.length} tokens, over its limit of ${limit}`)
      tokens.push(...page.tokens)
      if (page.next === null) return tokens
      if (pages > 100_000) throw new Error('the walk never ends')
      cursor = page.next
      await between?.()
    }
  }

  const keyOf = (e: Pick<RevokedToken, 'aud' | 'jti'>) => `${e.aud} ${e.jti}`

  t.test('listRevokedTokensPage: the pages list every live token once, within their limit', async (t: SuiteTest) => {
    const store = await fresh(t)
    if (typeof store.listRevokedTokensPage !== 'function') return void t.ok(true, 'the store has no paged listing')
    const a = unique('https://a')
    const b = unique('https://b')
    const live: RevokedToken[] = [
      ...Array.from({ length: 23 }, (_, i) => ({ aud: a, jti: `a-${i}`, expiresAt: i % 4 === 0 ? null : Date.now() + HOUR + i })),
      ...Array.from({ length: 6 }, (_, i) => ({ aud: b, jti: `b-${i}`, expiresAt: Date.now() + HOUR })),
      { aud: a, jti: '0f9a7a5e-1d5c-4c8e-9b1a-7d6f2c3b4a59', expiresAt: Date.now() + HOUR },
    ]
    await Promise.all([...live, { aud: a, jti: 'gone-1', expiresAt: Date.now() - 1000 }, { aud: b, jti: 'gone-2', expiresAt: Date.now() - 1 }]
      .map((e) => store.revokeToken(e)))
    const ours = (await walk(t, store, {}, 7)).filter((e) => e.aud === a || e.aud === b)
    t.equal(ours.length, live.length, 'each listed once')
    t.same(ours.map(keyOf).sort(), live.map(keyOf).sort(), 'every live token, no expired one')
    const expiries = new Map(ours.map((e) => [keyOf(e), e.expiresAt]))
    t.ok(live.every((e) => expiries.get(keyOf(e)) === e.expiresAt), 'each with its expiry (null: never)')
    const onlyA = await walk(t, store, { aud: a }, 4)
    t.same(onlyA.map(keyOf).sort(), live.filter((e) => e.aud === a).map(keyOf).sort(), 'an audience filter lists that audience only')
    const first = await store.listRevokedTokensPage({ aud: b })
    t.ok(first.tokens.length <= 1000, 'the default limit holds')
    let refused = false
    try {
      await store.listRevokedTokensPage({}, { cursor: 'not-a-cursor' })
    } catch (err) {
      refused = err instanceof TypeError
    }
    t.ok(refused, 'a cursor the store never gave is refused with a TypeError')
  })

  t.test('listRevokedTokensPage: a cursor stays valid while writes happen', async (t: SuiteTest) => {
    const store = await fresh(t)
    if (typeof store.listRevokedTokensPage !== 'function') return void t.ok(true, 'the store has no paged listing')
    const aud = unique('https://busy')
    const before = Array.from({ length: 30 }, (_, i) => ({ aud, jti: `before-${i}`, expiresAt: Date.now() + HOUR }))
    await Promise.all(before.map((e) => store.revokeToken(e)))
    let round = 0
    const listed = await walk(t, store, { aud }, 4, async () => {
      round++
      // New tokens on either side of the cursor, one revoked again with a later expiry, and a purge.
      await store.revokeToken({ aud, jti: `after-${round}`, expiresAt: Date.now() + HOUR })
      await store.revokeToken({ aud, jti: `a-during-${round}`, expiresAt: Date.now() + HOUR })
      await store.revokeToken({ ...before[round % before.length]!, expiresAt: Date.now() + 2 * HOUR })
      await store.revokeToken({ aud, jti: `expired-${round}`, expiresAt: Date.now() - 1 })
      await store.purgeExpired?.(Date.now())
    })
    const keys = listed.map(keyOf)
    t.equal(new Set(keys).size, keys.length, 'no token listed twice')
    t.ok(before.every((e) => keys.includes(keyOf(e))), 'every token revoked before the walk is listed')
    t.ok(keys.every((k) => !k.includes('expired-')), 'no expired token')
  })

  t.test('client revocations per audience and for all audiences, latest wins', async (t: SuiteTest) => {
    const store = await fresh(t)
    const clientId = unique('client')
    const t1 = Date.now() - 5000
    const t2 = Date.now()
    await store.revokeClient({ clientId, audience: 'https://a.test', revokedAt: t2, expiresAt: Date.now() + HOUR })
    await store.revokeClient({ clientId, audience: 'https://a.test', revokedAt: t1, expiresAt: Date.now() + HOUR })
    t.equal((await store.lookup({ audiences: ['https://a.test'], clientId, includeGrant: false })).clientRevokedAt, t2, 'an earlier revocation does not undo a later one')
    t.equal((await store.lookup({ audiences: ['https://b.test'], clientId, includeGrant: false })).clientRevokedAt, null, 'other audience untouched')
    const t3 = Date.now() + 1
    await store.revokeClient({ clientId, audience: '*', revokedAt: t3, expiresAt: null })
    t.equal((await store.lookup({ audiences: ['https://b.test'], clientId, includeGrant: false })).clientRevokedAt, t3, "'*' covers every audience")
    t.equal((await store.lookup({ audiences: ['https://a.test'], clientId, includeGrant: false })).clientRevokedAt, t3, 'the later of the two applies')
    await store.revokeClient({ clientId: unique('client'), audience: '*', revokedAt: Date.now(), expiresAt: Date.now() - 1 })
  })

  t.test('subject revocations', async (t: SuiteTest) => {
    const store = await fresh(t)
    const subject = unique('user')
    const at = Date.now()
    await store.revokeSubject({ subject, revokedAt: at, expiresAt: Date.now() + HOUR })
    t.equal((await store.lookup({ audiences: ['x'], subject, includeGrant: false })).subjectRevokedAt, at)
    t.equal((await store.lookup({ audiences: ['x'], subject: unique('user'), includeGrant: false })).subjectRevokedAt, null)
    const expired = unique('user')
    await store.revokeSubject({ subject: expired, revokedAt: at, expiresAt: Date.now() - 1 })
    t.equal((await store.lookup({ audiences: ['x'], subject: expired, includeGrant: false })).subjectRevokedAt, null, 'an expired rule is ignored')
  })

  t.test('session revocations (stores with revokeSession)', async (t: SuiteTest) => {
    const store = await fresh(t)
    if (typeof store.revokeSession !== 'function') return
    const sessionId = unique('sid')
    const other = unique('sid')
    const t1 = Date.now() - 5000
    const t2 = Date.now()
    await store.revokeSession({ sessionId, revokedAt: t2, expiresAt: Date.now() + HOUR })
    await store.revokeSession({ sessionId, revokedAt: t1, expiresAt: Date.now() + HOUR })
    t.equal((await store.lookup({ audiences: ['x'], sessionId, includeGrant: false })).sessionRevokedAt, t2, 'an earlier revocation does not undo a later one')
    t.equal((await store.lookup({ audiences: ['x'], sessionId: other, includeGrant: false })).sessionRevokedAt, null, 'another session is untouched')
    t.equal((await store.lookup({ audiences: ['x'], includeGrant: false })).sessionRevokedAt, null, 'a query without a session answers null')
    const subject = unique('user')
    await store.revokeSubject({ subject, revokedAt: t1, expiresAt: null })
    const bySubject = await store.lookup({ audiences: ['x'], subject, sessionId: other, includeGrant: false })
    t.same({ subjectRevokedAt: bySubject.subjectRevokedAt, sessionRevokedAt: bySubject.sessionRevokedAt }, { subjectRevokedAt: t1, sessionRevokedAt: null }, 'sessions and subjects are separate rules')
    await store.revokeSubject({ subject: sessionId, revokedAt: t2, expiresAt: null })
    t.equal((await store.lookup({ audiences: ['x'], sessionId: other, subject: unique('user'), includeGrant: false })).sessionRevokedAt, null, 'a subject named like a session is no session rule')
    const expired = unique('sid')
    await store.revokeSession({ sessionId: expired, revokedAt: t2, expiresAt: Date.now() - 1 })
    t.equal((await store.lookup({ audiences: ['x'], sessionId: expired, includeGrant: false })).sessionRevokedAt, null, 'an expired rule is ignored')
    const later = Date.now() + 10
    await store.revokeSession({ sessionId, revokedAt: later, expiresAt: null })
    t.equal((await store.lookup({ audiences: ['x'], sessionId, includeGrant: false })).sessionRevokedAt, later, 'a later revocation replaces it')
  })

  t.test('rules scoped to an issuer (stores with issuerScopes)', async (t: SuiteTest) => {
    const store = await fresh(t)
    if (store.issuerScopes !== true) return
    const A = 'https://a.issuer.test/'
    const B = 'https://b.issuer.test/'
    const clientId = unique('client')
    const ask = async (issuer: string | undefined, what: { clientId?: string, subject?: string, sessionId?: string } = { clientId }) =>
      store.lookup({ audiences: ['https://a.test'], ...what, ...(issuer === undefined ? {} : { issuer }), includeGrant: false })
    const t1 = Date.now() - 5000
    const t2 = Date.now() - 1000
    await store.revokeClient({ clientId, audience: '*', issuer: A, revokedAt: t1, expiresAt: Date.now() + HOUR })
    t.equal((await ask(A)).clientRevokedAt, t1, "the issuer's tokens are refused")
    t.equal((await ask(B)).clientRevokedAt, null, "another issuer's client of the same id is untouched")
    t.equal((await ask(undefined)).clientRevokedAt, null, 'a token without an issuer is untouched')
    await store.revokeClient({ clientId, audience: 'https://a.test', issuer: A, revokedAt: t2, expiresAt: Date.now() + HOUR })
    t.equal((await ask(A)).clientRevokedAt, t2, 'per audience too, the later wins')
    await store.revokeClient({ clientId, audience: 'https://a.test', issuer: A, revokedAt: t1, expiresAt: Date.now() + HOUR })
    t.equal((await ask(A)).clientRevokedAt, t2, 'an earlier scoped revocation does not undo a later one')
    await store.revokeClient({ clientId, audience: '*', revokedAt: t1, expiresAt: null })
    t.equal((await ask(B)).clientRevokedAt, t1, 'an unscoped rule applies to every issuer')
    t.equal((await ask(undefined)).clientRevokedAt, t1, 'and to a token without an issuer')
    t.equal((await ask(A)).clientRevokedAt, t2, 'the scoped rule, later, wins over the unscoped one')
    const t3 = Date.now()
    await store.revokeClient({ clientId, audience: '*', revokedAt: t3, expiresAt: null })
    t.equal((await ask(A)).clientRevokedAt, t3, 'the unscoped rule, later, wins over the scoped one')
    t.equal((await store.lookup({ audiences: ['https://b.test'], clientId, issuer: B, includeGrant: false })).clientRevokedAt, t3)

    const subject = unique('user')
    await store.revokeSubject({ subject, issuer: B, revokedAt: t2, expiresAt: Date.now() + HOUR })
    t.equal((await ask(B, { subject })).subjectRevokedAt, t2, 'a scoped subject rule')
    t.equal((await ask(A, { subject })).subjectRevokedAt, null, 'the same subject at another issuer is untouched')
    t.equal((await ask(undefined, { subject })).subjectRevokedAt, null)
    await store.revokeSubject({ subject, revokedAt: t1, expiresAt: null })
    t.equal((await ask(A, { subject })).subjectRevokedAt, t1, 'an unscoped subject rule applies to every issuer')
    t.equal((await ask(B, { subject })).subjectRevokedAt, t2, 'the later of the two')

    const expired = unique('user')
    await store.revokeSubject({ subject: expired, issuer: A, revokedAt: t2, expiresAt: Date.now() - 1 })
    t.equal((await ask(A, { subject: expired })).subjectRevokedAt, null, 'an expired scoped rule is ignored')
    const expiredClient = unique('client')
    await store.revokeClient({ clientId: expiredClient, audience: '*', issuer: A, revokedAt: t2, expiresAt: Date.now() - 1 })
    t.equal((await ask(A, { clientId: expiredClient })).clientRevokedAt, null, 'an expired scoped client rule is ignored')

    if (typeof store.revokeSession !== 'function') return
    const sessionId = unique('sid')
    await store.revokeSession({ sessionId, issuer: A, revokedAt: t2, expiresAt: Date.now() + HOUR })
    t.equal((await ask(A, { sessionId })).sessionRevokedAt, t2, 'a scoped session rule')
    t.equal((await ask(B, { sessionId })).sessionRevokedAt, null, "another issuer's session of the same id is untouched")
    await store.revokeSession({ sessionId, revokedAt: t3, expiresAt: null })
    t.equal((await ask(A, { sessionId })).sessionRevokedAt, t3, 'the unscoped session rule, later, wins')
    t.equal((await ask(B, { sessionId })).sessionRevokedAt, t3)
  })

  t.test('one lookup answers token, client, subject and grant together', async (t: SuiteTest) => {
    const store = await fresh(t)
    const jti = unique('jti')
    const clientId = unique('client')
    const subject = unique('user')
    await store.revokeToken({ aud: 'https://a.test', jti, expiresAt: Date.now() + HOUR })
    await store.revokeClient({ clientId, audience: 'https://a.test', revokedAt: 1000, expiresAt: null })
    await store.revokeSubject({ subject, revokedAt: 2000, expiresAt: null })
    const state = await store.lookup({ audiences: ['https://a.test'], jti, clientId, subject, includeGrant: false })
    t.same({ tokenRevoked: state.tokenRevoked, clientRevokedAt: state.clientRevokedAt, subjectRevokedAt: state.subjectRevokedAt },
      { tokenRevoked: true, clientRevokedAt: 1000, subjectRevokedAt: 2000 })
  })

  const grants = options.grants
  t.test('client grants: create, conflict, get, list, update, delete, lookup', async (t: SuiteTest) => {
    const store = await fresh(t)
    if (grants === false || (grants === undefined && typeof store.createGrant !== 'function')) return
    const s = store as Required<RevocationStore>
    const clientId = unique('client')
    const grant: ClientGrant = { id: unique('cgr'), client_id: clientId, audience: 'https://a.test', scope: ['read:orders', 'write:orders'], created_at: Date.now() }
    t.same(await s.createGrant(grant), grant)
    let conflict: unknown
    try {
      await s.createGrant({ ...grant, id: unique('cgr') })
    } catch (err) {
      conflict = err
    }
    t.equal((conflict as { statusCode?: number })?.statusCode, 409, 'a second grant for the same pair is a 409 conflict')
    t.same(await s.getGrant(grant.id), grant)
    t.equal(await s.getGrant(unique('cgr')), null)
    const other: ClientGrant = { ...grant, id: unique('cgr'), audience: 'https://b.test', scope: [] }
    await s.createGrant(other)
    t.same((await s.listGrants({ client_id: clientId })).map((g) => g.id).sort(), [grant.id, other.id].sort())
    t.same((await s.listGrants({ client_id: clientId, audience: 'https://b.test' })).map((g) => g.id), [other.id])
    const withGrant = await s.lookup({ audiences: ['https://a.test'], clientId, includeGrant: true })
    t.same(withGrant.grant, { created_at: grant.created_at, scope: grant.scope })
    t.same((await s.updateGrant(grant.id, ['read:orders']))?.scope, ['read:orders'])
    t.same((await s.lookup({ audiences: ['https://a.test'], clientId, includeGrant: true })).grant?.scope, ['read:orders'], 'lookup sees the update')
    t.equal(await s.updateGrant(unique('cgr'), []), null)
    t.same((await s.deleteGrant(grant.id))?.id, grant.id)
    t.equal(await s.deleteGrant(grant.id), null, 'deleting twice finds nothing')
    t.equal((await s.lookup({ audiences: ['https://a.test'], clientId, includeGrant: true })).grant, null)
    t.same(await s.createGrant({ ...grant, id: unique('cgr') }).then((g) => g.client_id), clientId, 'the pair can be granted again after deletion')
  })

  t.test('lease: one holder at a time, renewed by its holder, free again once it lapses', async (t: SuiteTest) => {
    const store = await fresh(t)
    if (typeof store.lease !== 'function') return
    const name = unique('job')
    t.equal(await store.lease(name, 'a', 60_000), true, 'a free lease is taken')
    t.equal(await store.lease(name, 'b', 60_000), false, 'refused to another holder while it runs')
    t.equal(await store.lease(name, 'a', 60_000), true, 'renewed by its holder')
    t.equal(await store.lease(unique('job'), 'b', 60_000), true, 'leases are independent by name')
    const short = unique('job')
    t.equal(await store.lease(short, 'a', 50), true)
    await new Promise((resolve) => setTimeout(resolve, 120))
    t.equal(await store.lease(short, 'b', 60_000), true, 'taken over once the holder stopped renewing')
    t.equal(await store.lease(short, 'a', 60_000), false, 'the old holder lost it')
  })

  t.test('claimOnce: each key once, even when claimed concurrently', async (t: SuiteTest) => {
    const store = await fresh(t)
    if (typeof store.claimOnce !== 'function') return
    const key = unique('proof')
    const expiresAt = Date.now() + 60_000
    t.equal(await store.claimOnce(key, expiresAt), true, 'a new key is claimed')
    t.equal(await store.claimOnce(key, expiresAt), false, 'and refused the second time')
    t.equal(await store.claimOnce(unique('proof'), expiresAt), true, 'keys are independent')
    const raced = unique('proof')
    const results = await Promise.all(Array.from({ length: 8 }, () => store.claimOnce!(raced, expiresAt)))
    t.equal(results.filter((r) => r === true).length, 1, 'one of eight concurrent claims wins')
    t.ok(results.every((r) => typeof r === 'boolean'), 'answers are booleans')
  })

  t.test('the change feed reports revocations', async (t: SuiteTest) => {
    const store = await fresh(t)
    if (typeof store.subscribe !== 'function') return
    const events: RevocationChange[] = []
    const unsubscribe = await store.subscribe((c) => events.push(c))
    t.teardown(unsubscribe)
    const jti = unique('jti')
    const clientId = unique('client')
    const subject = unique('user')
    await store.revokeToken({ aud: 'https://a.test', jti, expiresAt: Date.now() + HOUR })
    await store.revokeClient({ clientId, audience: '*', revokedAt: Date.now(), expiresAt: null })
    await store.revokeSubject({ subject, revokedAt: Date.now(), expiresAt: null })
    t.ok(await waitFor(events, (c) => c.type === 'token' && c.jti === jti && c.aud === 'https://a.test', feedTimeout), 'token change')
    t.ok(await waitFor(events, (c) => c.type === 'client' && c.clientId === clientId, feedTimeout), 'client change')
    t.ok(await waitFor(events, (c) => c.type === 'subject' && c.subject === subject, feedTimeout), 'subject change')
    if (typeof store.revokeSession !== 'function') return
    const sessionId = unique('sid')
    await store.revokeSession({ sessionId, revokedAt: Date.now(), expiresAt: null })
    t.ok(await waitFor(events, (c) => c.type === 'session' && c.sessionId === sessionId, feedTimeout), 'session change')
  })

  t.test('the change feed names the issuer a scoped rule is for', async (t: SuiteTest) => {
    const store = await fresh(t)
    if (typeof store.subscribe !== 'function' || store.issuerScopes !== true) return
    const events: RevocationChange[] = []
    const unsubscribe = await store.subscribe((c) => events.push(c))
    t.teardown(unsubscribe)
    const issuer = 'https://a.issuer.test/'
    const clientId = unique('client')
    const subject = unique('user')
    await store.revokeClient({ clientId, audience: '*', issuer, revokedAt: Date.now(), expiresAt: null })
    await store.revokeSubject({ subject, issuer, revokedAt: Date.now(), expiresAt: null })
    await store.revokeClient({ clientId: subject, audience: '*', revokedAt: Date.now(), expiresAt: null })
    t.ok(await waitFor(events, (c) => c.type === 'client' && c.clientId === clientId && c.issuer === issuer, feedTimeout), 'scoped client change')
    t.ok(await waitFor(events, (c) => c.type === 'subject' && c.subject === subject && c.issuer === issuer, feedTimeout), 'scoped subject change')
    t.ok(await waitFor(events, (c) => c.type === 'client' && c.clientId === subject && c.issuer === undefined, feedTimeout), 'an unscoped change names no issuer')
    if (typeof store.revokeSession !== 'function') return
    const sessionId = unique('sid')
    await store.revokeSession({ sessionId, issuer, revokedAt: Date.now(), expiresAt: null })
    t.ok(await waitFor(events, (c) => c.type === 'session' && c.sessionId === sessionId && c.issuer === issuer, feedTimeout), 'scoped session change')
  })

  t.test('revokeTokens: a batch is stored whole and announced by one change', async (t: SuiteTest) => {
    const store = await fresh(t)
    if (typeof store.revokeTokens !== 'function') return
    const a = unique('https://a')
    const b = unique('https://b')
    const later = Date.now() + HOUR
    const batch = [
      ...Array.from({ length: 50 }, (_, i) => ({ aud: a, jti: `batch-${i}`, expiresAt: later })),
      { aud: b, jti: 'batch-0', expiresAt: null },
      { aud: a, jti: 'batch-0', expiresAt: later + HOUR },
      { aud: a, jti: 'gone', expiresAt: Date.now() - 1000 },
    ]
    const events: RevocationChange[] = []
    const unsubscribe = typeof store.subscribe === 'function' ? await store.subscribe((c) => events.push(c)) : undefined
    if (unsubscribe) t.teardown(unsubscribe)
    await store.revokeTokens(batch)
    await store.revokeTokens([])
    for (const jti of ['batch-0', 'batch-17', 'batch-49']) {
      t.equal((await store.lookup({ audiences: [a], jti, includeGrant: false })).tokenRevoked, true, `${jti} is revoked`)
    }
    t.equal((await store.lookup({ audiences: [b], jti: 'batch-0', includeGrant: false })).tokenRevoked, true, 'an entry for another audience in the same batch')
    t.equal((await store.lookup({ audiences: [b], jti: 'batch-1', includeGrant: false })).tokenRevoked, false, 'only the pairs listed')
    t.equal((await store.lookup({ audiences: [a], jti: 'gone', includeGrant: false })).tokenRevoked, false, 'an expired entry is not reported')
    const listed = await store.listRevokedTokens({ aud: a })
    t.equal(listed.length, 50, 'a pair given twice is listed once')
    t.equal(listed.find((e) => e.jti === 'batch-0')?.expiresAt, later + HOUR, 'the longer expiry of a pair given twice is kept')
    t.same((await store.listRevokedTokens({ aud: b })).map((e) => e.expiresAt), [null], 'no expiry: kept until removed')
    if (unsubscribe === undefined) return
    const covers = (c: RevocationChange) => c.type === 'reset' ||
      (c.type === 'tokens' && batch.every((e) => c.tokens.some((x) => x.aud === e.aud && x.jti === e.jti)))
    t.ok(await waitFor(events, covers, feedTimeout), 'one change covers every entry of the batch (or flushes every cache)')
    await new Promise((resolve) => setTimeout(resolve, 50))
    t.equal(events.filter((c) => c.type === 'tokens' || c.type === 'token' || c.type === 'reset').length, 1, 'one message for the batch')
  })

  t.test('concurrent revocations are each acknowledged once stored', async (t: SuiteTest) => {
    const store = await fresh(t)
    const aud = unique('https://c')
    const jtis = Array.from({ length: 200 }, (_, i) => `c-${i}`)
    await Promise.all(jtis.map((jti) => store.revokeToken({ aud, jti, expiresAt: Date.now() + HOUR }).then(async () => {
      // Acknowledged means readable at once, whatever batch it was written in.
      if (!(await store.lookup({ audiences: [aud], jti, includeGrant: false })).tokenRevoked) throw new Error(`${jti} acknowledged but not stored`)
    })))
    t.equal((await store.listRevokedTokens({ aud })).length, jtis.length, 'every one of them is stored')
  })

  // The log is optional: for a store without `readLog` (a lossy feed only) these tests pass as skipped.
  const trimmedStore = options.trimmedStore
  runLogSuite(t, (t) => fresh(t), trimmedStore === undefined ? undefined : (t, logMaxEntries) => fresh(t, () => trimmedStore({ logMaxEntries })))
}
