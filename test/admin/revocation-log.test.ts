// The audit trail through the admin routes: a reason in every write body (the query
// string for DELETE), the admin token's sub as the actor, and GET /revocation-log.
import Fastify, { type FastifyInstance } from 'fastify'
import t from 'tap'
import jwtRevocation, { adminRoutes, MemoryStore, type RevocationStore } from '../../src/index.js'
import { AUDIENCE, bearer, ISSUER, makeKey, sign } from '../helpers/helpers.js'

const MGMT = 'https://issuer.test/api/v2/'
const key = await makeKey('ES256')
const jwks = { keys: [key.publicJwk] }
const WRITE_SCOPES = 'blacklist:tokens create:client_grants update:client_grants delete:client_grants'

async function build (t: { teardown: (fn: () => unknown) => void }, store: RevocationStore = new MemoryStore()): Promise<FastifyInstance> {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(jwtRevocation, { jwks, issuer: ISSUER, audience: [AUDIENCE, MGMT], store })
  await app.register(adminRoutes, { prefix: '/api/v2', audience: MGMT })
  await app.ready()
  return app
}

const adminToken = (sub: string, scope: string) => sign(key, { aud: MGMT, sub, azp: 'admin', scope })

t.test('every write route records its reason and the admin token\'s sub; GET /revocation-log answers them newest first', async (t) => {
  const app = await build(t)
  const alice = bearer(await adminToken('alice@example.com', WRITE_SCOPES))
  const reader = bearer(await adminToken('auditor@example.com', 'read:logs'))
  const post = (url: string, payload: object) => app.inject({ method: 'POST', url: `/api/v2${url}`, headers: alice, payload })

  t.equal((await post('/blacklists/tokens', { aud: AUDIENCE, jti: 'leaked-1', reason: 'token pasted in a public issue' })).statusCode, 204)
  t.equal((await post('/blacklists/tokens/batch', { tokens: [{ aud: AUDIENCE, jti: 'b-1' }, { aud: AUDIENCE, jti: 'b-2' }], reason: 'gateway log leak' })).statusCode, 200)
  t.equal((await post('/revocations/clients', { client_id: 'partner', audience: AUDIENCE, reason: 'contract ended' })).statusCode, 204)
  t.equal((await post('/revocations/subjects', { subject: 'user-7', reason: 'account closed' })).statusCode, 204)
  const created = await post('/client-grants', { client_id: 'partner-2', audience: AUDIENCE, scope: ['read:orders'], reason: 'new partner' })
  t.equal(created.statusCode, 201)
  t.notOk('reason' in created.json(), 'the grant answered in Auth0\'s shape, without the reason')
  const id = created.json().id as string
  t.equal((await app.inject({ method: 'PATCH', url: `/api/v2/client-grants/${id}`, headers: alice, payload: { scope: [], reason: 'narrowed during the audit' } })).statusCode, 200)
  t.equal((await app.inject({ method: 'DELETE', url: `/api/v2/client-grants/${id}`, query: { reason: 'offboarded' }, headers: alice })).statusCode, 204)
  t.equal((await post('/blacklists/tokens', { aud: AUDIENCE, jti: 'no-reason' })).statusCode, 204, 'the reason is optional')

  const log = await app.inject({ url: '/api/v2/revocation-log', headers: reader })
  t.equal(log.statusCode, 200)
  const { entries, next } = log.json() as { entries: Array<Record<string, unknown>>, next?: string }
  t.equal(next, undefined, 'one page: no next')
  t.ok(entries.every((e) => e.actor === 'alice@example.com' && e.source === 'admin'), 'every entry names the admin token\'s sub, source admin')
  t.ok(entries.every((e, i) => i === 0 || (e.at as number) <= (entries[i - 1]!.at as number)), 'newest first')
  t.match(entries[0], { type: 'token', jti: 'no-reason', reason: null })
  const reasons = entries.map((e) => [e.type, e.reason])
  t.same(reasons.slice(1).reverse().slice(0, 5), [
    ['token', 'token pasted in a public issue'],
    ['tokens', 'gateway log leak'],
    ['client', 'contract ended'],
    ['subject', 'account closed'],
    ['grant', 'new partner'],
  ])
  t.match(entries.find((e) => e.type === 'tokens'), { tokens: [{ aud: AUDIENCE, jti: 'b-1' }, { aud: AUDIENCE, jti: 'b-2' }] }, 'a batch is one entry')
  t.match(entries.find((e) => e.type === 'grant' && e.action === 'update'), { clientId: 'partner-2', reason: 'narrowed during the audit' })
  t.match(entries.find((e) => e.type === 'grant' && e.action === 'delete'), { clientId: 'partner-2', reason: 'offboarded' }, 'DELETE takes its reason from the query string')

  // A body cannot name another actor: `actor` is not a property the routes take.
  const forged = await post('/blacklists/tokens', { aud: AUDIENCE, jti: 'forged', actor: 'bob' })
  t.equal(forged.statusCode, 400)
  t.equal(forged.json().errorCode, 'invalid_body')
})

t.test('GET /revocation-log: read:logs required, filters, paging with from/take', async (t) => {
  const app = await build(t)
  const writer = bearer(await adminToken('ops@example.com', WRITE_SCOPES))
  for (let i = 0; i < 5; i++) {
    await app.inject({ method: 'POST', url: '/api/v2/blacklists/tokens', headers: writer, payload: { aud: AUDIENCE, jti: `j-${i}`, reason: `r-${i}` } })
  }
  await app.inject({ method: 'POST', url: '/api/v2/revocations/clients', headers: writer, payload: { client_id: 'partner' } })

  const denied = await app.inject({ url: '/api/v2/revocation-log', headers: writer })
  t.equal(denied.statusCode, 403, 'every write scope together does not read the log')
  t.match(denied.headers['www-authenticate'], 'scope="read:logs"')
  t.equal((await app.inject({ url: '/api/v2/revocation-log' })).statusCode, 401)

  const reader = bearer(await adminToken('auditor', 'read:logs'))
  const get = async (query: Record<string, string>) => {
    const res = await app.inject({ url: '/api/v2/revocation-log', query, headers: reader })
    return { status: res.statusCode, body: res.json() as { entries: Array<{ jti?: string, type: string, at: number }>, next?: string, errorCode?: string } }
  }
  const pages: string[][] = []
  let from: string | undefined
  do {
    const { status, body } = await get({ take: '2', ...(from === undefined ? {} : { from }) })
    t.equal(status, 200)
    pages.push(body.entries.map((e) => e.jti ?? e.type))
    from = body.next
  } while (from !== undefined && pages.length < 10)
  t.same(pages, [['client', 'j-4'], ['j-3', 'j-2'], ['j-1', 'j-0']], 'pages of two, newest first, next absent on the last')

  t.same((await get({ jti: 'j-2' })).body.entries.map((e) => e.jti), ['j-2'], 'by jti')
  t.same((await get({ client_id: 'partner' })).body.entries.map((e) => e.type), ['client'], 'by client')
  const all = (await get({})).body.entries
  const since = all.at(-1)!.at + 1
  t.ok((await get({ since: String(since) })).body.entries.every((e) => e.at >= since), 'since, in ms')
  t.same((await get({ until: new Date(all.at(-1)!.at).toISOString() })).body.entries, [], 'until, as an ISO date-time, excludes that instant')
  for (const query of [{ since: 'yesterday' }, { take: '0' }, { take: '101' }, { color: 'red' }] as Array<Record<string, string>>) {
    const { status, body } = await get(query)
    t.equal(status, 400, JSON.stringify(query))
    t.equal(body.errorCode, 'invalid_query_string')
  }
})

t.test('a reason longer than 500 characters, empty or not a string is refused before anything is written', async (t) => {
  const app = await build(t)
  const admin = bearer(await adminToken('ops', WRITE_SCOPES))
  for (const reason of ['x'.repeat(501), '', 42]) {
    const res = await app.inject({ method: 'POST', url: '/api/v2/blacklists/tokens', headers: admin, payload: { aud: AUDIENCE, jti: 'j', reason } })
    t.equal(res.statusCode, 400, JSON.stringify(reason).slice(0, 20))
  }
  const grant = await app.revocation.createGrant({ client_id: 'c', audience: AUDIENCE, scope: [] })
  const res = await app.inject({ method: 'DELETE', url: `/api/v2/client-grants/${grant.id}`, query: { reason: 'x'.repeat(501) }, headers: admin })
  t.equal(res.statusCode, 400)
  t.equal(res.json().errorCode, 'invalid_query_string')
  t.same(await app.revocation.listRevokedTokens(), [], 'nothing written')
  t.equal((await app.revocation.listGrants()).length, 1, 'the grant is still there')
})

t.test('a store without the log: the writes work, the log route answers 501 (not a passing 503)', async (t) => {
  const store = new MemoryStore()
  // A third-party store of before the log: no readLog, no history.
  Object.defineProperty(store, 'history', { value: undefined })
  Object.defineProperty(store, 'readLog', { value: undefined })
  const app = await build(t, store)
  const admin = bearer(await adminToken('ops', `${WRITE_SCOPES} read:logs`))
  t.equal((await app.inject({ method: 'POST', url: '/api/v2/blacklists/tokens', headers: admin, payload: { aud: AUDIENCE, jti: 'j', reason: 'still works' } })).statusCode, 204)
  const res = await app.inject({ url: '/api/v2/revocation-log', headers: admin })
  t.equal(res.statusCode, 501)
  t.match(res.json(), { statusCode: 501, errorCode: 'not_implemented', message: /keeps no revocation log/ })
})
