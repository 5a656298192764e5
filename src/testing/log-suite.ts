import type { LogEntry, RevocationStore } from '../stores/types.js'
import type { SuiteTest } from './store-suite.js'

/** Makes a store of the kind under test that keeps at most `logMaxEntries` log entries. */
export type TrimmedStoreFactory = (options: { logMaxEntries: number }) => RevocationStore | Promise<RevocationStore>

const HOUR = 3_600_000
let counter = 0
const unique = (what: string) => `${what}-${process.pid}-${Date.now().toString(36)}-${(counter++).toString(36)}`

type LogStore = RevocationStore & Required<Pick<RevocationStore, 'readLog' | 'history'>>

/** Every entry after `cursor`, oldest first, read page by page. */
async function readAll (store: LogStore, cursor: string, limit = 100): Promise<LogEntry[]> {
  const out: LogEntry[] = []
  for (;;) {
    const page = await store.readLog(cursor, limit)
    if (page.gap) throw new Error('unexpected gap')
    out.push(...page.entries)
    if (page.entries.length === 0) return out
    cursor = page.cursor
  }
}

/**
 * The revocation log's part of the conformance suite, for a store that has `readLog`:
 * one entry per write with its author, oldest first after a cursor, a batch as one
 * entry, history's filters and pages, trimming seen as a gap, concurrent writes each
 * logged once in order.
 */
export function runLogSuite (t: SuiteTest, fresh: (t: SuiteTest) => Promise<RevocationStore>, trimmed: ((t: SuiteTest, logMaxEntries: number) => Promise<RevocationStore>) | undefined): void {
  /** The store under test, or null (the test then passes as skipped) when it keeps no log. */
  async function logStore (t: SuiteTest): Promise<LogStore | null> {
    const store = await fresh(t)
    if (typeof store.readLog !== 'function') {
      t.ok(true, 'skipped: the store keeps no log (no readLog)')
      return null
    }
    t.ok(typeof store.history === 'function', 'a store with readLog has history')
    return store as LogStore
  }

  t.test('log: every write is one entry with its author, oldest first after the cursor', async (t: SuiteTest) => {
    const store = await logStore(t)
    if (store === null) return
    const start = (await store.readLog(null, 0))
    t.same(start.entries, [], 'a null cursor reads no entries, only the end')
    t.equal(start.gap, false)
    const jti = unique('jti')
    const client = unique('client')
    const subject = unique('subject')
    const session = unique('session')
    const before = Date.now()
    const expiresAt = before + HOUR
    await store.revokeToken({ aud: 'https://a.test', jti, expiresAt }, { actor: 'alice', reason: 'leaked in a log', source: 'admin' })
    await store.revokeTokens!([{ aud: 'https://a.test', jti: jti + '-1', expiresAt }, { aud: 'https://b.test', jti: jti + '-2', expiresAt }], { actor: 'bob', source: 'cli' })
    await store.revokeClient({ clientId: client, audience: '*', revokedAt: before, expiresAt: null }, { reason: 'contract ended' })
    await store.revokeSubject({ subject, issuer: 'https://issuer.test/', revokedAt: before, expiresAt: null }, { actor: 'ssf:https://issuer.test/', source: 'ssf' })
    if (store.revokeSession) await store.revokeSession({ sessionId: session, revokedAt: before, expiresAt: null }, { source: 'logout' })
    const entries = await readAll(store, start.cursor)
    const types = entries.map((e) => e.type)
    t.same(types, store.revokeSession ? ['token', 'tokens', 'client', 'subject', 'session'] : ['token', 'tokens', 'client', 'subject'])
    const [token, tokens, clientEntry, subjectEntry] = entries as [LogEntry, LogEntry, LogEntry, LogEntry]
    t.same({ ...token, id: undefined, at: undefined }, { type: 'token', aud: 'https://a.test', jti, expiresAt, actor: 'alice', reason: 'leaked in a log', source: 'admin', id: undefined, at: undefined })
    t.ok(token.at >= before && token.at <= Date.now(), 'at is when the store wrote it')
    t.same(tokens.type === 'tokens' && tokens.tokens, [{ aud: 'https://a.test', jti: jti + '-1' }, { aud: 'https://b.test', jti: jti + '-2' }], 'a batch is one entry')
    t.same([tokens.actor, tokens.reason, tokens.source], ['bob', null, 'cli'])
    t.same(clientEntry.type === 'client' && [clientEntry.clientId, clientEntry.audience, clientEntry.revokedAt], [client, '*', before])
    t.same([clientEntry.actor, clientEntry.reason, clientEntry.source], [null, 'contract ended', 'api'], "source 'api' when absent")
    t.same(subjectEntry.type === 'subject' && [subjectEntry.subject, subjectEntry.issuer], [subject, 'https://issuer.test/'])
    const page = await store.readLog(start.cursor, 2)
    t.same(page.entries.map((e) => e.id), entries.slice(0, 2).map((e) => e.id), 'limit bounds a page')
    t.equal(page.cursor, entries[1]!.id, 'the cursor is the last entry read')
    const end = await store.readLog(entries[entries.length - 1]!.id, 10)
    t.same([end.entries, end.cursor, end.gap], [[], entries[entries.length - 1]!.id, false], 'nothing new: the same cursor')
  })

  t.test('log: grant changes are entries with their action', async (t: SuiteTest) => {
    const store = await logStore(t)
    if (store === null) return
    if (store === null || !store.createGrant || !store.updateGrant || !store.deleteGrant) return
    const { cursor } = await store.readLog(null, 0)
    const id = unique('grant')
    const clientId = unique('client')
    await store.createGrant({ id, client_id: clientId, audience: 'https://a.test', scope: ['read'], created_at: Date.now() }, { actor: 'alice', source: 'admin' })
    await store.updateGrant(id, ['read', 'write'], { actor: 'alice', source: 'admin' })
    await store.deleteGrant(id, { actor: 'auth0-sync', source: 'auth0' })
    const entries = await readAll(store, cursor)
    t.same(entries.map((e) => e.type === 'grant' && [e.action, e.grantId, e.clientId, e.audience]), [
      ['create', id, clientId, 'https://a.test'], ['update', id, clientId, 'https://a.test'], ['delete', id, clientId, 'https://a.test'],
    ])
    t.same(entries[1]!.type === 'grant' && entries[1]!.scope, ['read', 'write'])
    t.same(entries.map((e) => e.source), ['admin', 'admin', 'auth0'])
  })

  t.test('history: newest first, filtered, paged', async (t: SuiteTest) => {
    const store = await logStore(t)
    if (store === null) return
    const jti = unique('jti')
    const client = unique('client')
    const subject = unique('subject')
    const expiresAt = Date.now() + HOUR
    const since = Date.now()
    await store.revokeToken({ aud: 'https://a.test', jti, expiresAt }, { actor: 'alice' })
    await store.revokeTokens!([{ aud: 'https://b.test', jti: jti + '-b', expiresAt }, { aud: 'https://a.test', jti: jti + '-c', expiresAt }])
    await store.revokeClient({ clientId: client, audience: 'https://a.test', revokedAt: Date.now(), expiresAt: null })
    await store.revokeClient({ clientId: client, audience: '*', revokedAt: Date.now(), expiresAt: null })
    await store.revokeSubject({ subject, revokedAt: Date.now(), expiresAt: null })
    const all = await store.history({ since, limit: 500 })
    t.same(all.entries.map((e) => e.type), ['subject', 'client', 'client', 'tokens', 'token'], 'newest first')
    t.equal(all.next, null)
    const ids = all.entries.map((e) => e.id)
    t.same((await store.history({ since, jti })).entries.map((e) => e.id), [ids[4]], 'by jti')
    t.same((await store.history({ since, jti: jti + '-c' })).entries.map((e) => e.id), [ids[3]], 'by a jti of a batch')
    t.same((await store.history({ since, clientId: client })).entries.map((e) => e.id), [ids[1], ids[2]], 'by client')
    t.same((await store.history({ since, subject })).entries.map((e) => e.id), [ids[0]], 'by subject')
    t.same((await store.history({ since, aud: 'https://b.test' })).entries.map((e) => e.id), [ids[1], ids[3]], "by audience: batches naming it, client rules for it or '*'")
    t.same((await store.history({ since, until: all.entries[4]!.at })).entries, [], 'until excludes that time')
    const first = await store.history({ since, limit: 2 })
    t.same(first.entries.map((e) => e.id), ids.slice(0, 2))
    t.ok(first.next !== null, 'a full page says where the next starts')
    const second = await store.history({ since, limit: 2, from: first.next! })
    t.same(second.entries.map((e) => e.id), ids.slice(2, 4))
    const third = await store.history({ since, limit: 2, from: second.next! })
    t.same(third.entries.map((e) => e.id), ids.slice(4))
    t.equal(third.next, null, 'the last page')
  })

  t.test('log: concurrent writes are each one entry, in a strict order', async (t: SuiteTest) => {
    const store = await logStore(t)
    if (store === null) return
    const { cursor } = await store.readLog(null, 0)
    const jtis = Array.from({ length: 50 }, () => unique('jti'))
    await Promise.all(jtis.map((jti, i) => i % 5 === 0
      ? store.revokeTokens!([{ aud: 'https://a.test', jti, expiresAt: null }], { actor: `writer-${i}` })
      : store.revokeToken({ aud: 'https://a.test', jti, expiresAt: null }, { actor: `writer-${i}` })))
    const entries = await readAll(store, cursor, 7)
    const seen = entries.flatMap((e) => e.type === 'token' ? [e.jti] : e.type === 'tokens' ? e.tokens.map((x) => x.jti) : [])
    t.same([...seen].sort(), [...jtis].sort(), 'every write present once')
    t.equal(new Set(entries.map((e) => e.id)).size, entries.length, 'ids are unique')
    // The order readLog hands out is the log's order: reading after each id gives the rest.
    for (let i = 0; i < entries.length - 1; i += 13) {
      const rest = await readAll(store, entries[i]!.id, 50)
      t.same(rest.map((e) => e.id), entries.slice(i + 1).map((e) => e.id), `after entry ${i}`)
    }
  })

  t.test('log: entries trimmed unread are a gap', async (t: SuiteTest) => {
    if (trimmed === undefined) {
      t.ok(true, 'skipped: the suite was given no store with a small log')
      return
    }
    const store = await trimmed(t, 3) as LogStore
    if (typeof store.readLog !== 'function') {
      t.ok(true, 'skipped: the store keeps no log (no readLog)')
      return
    }
    const { cursor } = await store.readLog(null, 0)
    for (let i = 0; i < 3; i++) await store.revokeToken({ aud: 'https://a.test', jti: unique('jti'), expiresAt: null })
    const kept = await store.readLog(cursor, 10)
    t.equal(kept.gap, false, 'nothing trimmed yet')
    t.equal(kept.entries.length, 3)
    for (let i = 0; i < 3; i++) await store.revokeToken({ aud: 'https://a.test', jti: unique('jti'), expiresAt: null })
    const lost = await store.readLog(cursor, 10)
    t.equal(lost.gap, true, 'a cursor older than the oldest kept entry')
    const resumed = await store.readLog(lost.cursor, 10)
    t.equal(resumed.gap, false, 'the cursor handed back with the gap reads on')
    const onTime = await store.readLog(kept.cursor, 10)
    t.same([onTime.gap, onTime.entries.length], [false, 3], 'a reader that kept up loses nothing')
  })
}
