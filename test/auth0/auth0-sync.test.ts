import FakeTimers from '@sinonjs/fake-timers'
import Fastify, { type FastifyInstance } from 'fastify'
import { Writable } from 'node:stream'
import t from 'tap'
import { auth0Sync, type Auth0SyncOptions } from '../../src/auth0/index.js'
import jwtRevocation, { MemoryStore, type JwtRevocationOptions, type RevocationStore } from '../../src/index.js'
import { Auth0StandIn, settle, until } from '../helpers/auth0-stand-in.js'
import { AUDIENCE, bearer, ISSUER, makeKey, sign } from '../helpers/helpers.js'

const key = await makeKey('ES256')
const REPORTS = 'https://reports.test'

type Tap = { teardown: (fn: () => unknown) => void }
type InstalledClock = ReturnType<typeof FakeTimers.install>

interface Setup { app: FastifyInstance, tenant: Auth0StandIn, logs: string[], clock: InstalledClock }

/**
 * An API with grants enforced and the sync on, against a fresh tenant stand-in. Timers
 * and Date are fake so no sync runs unless the test ticks or calls syncNow(); HTTP is real.
 */
async function setup (t: Tap, options: { store?: RevocationStore, sync?: Partial<Auth0SyncOptions>, audience?: string[], plugin?: (tenant: Auth0StandIn) => Partial<JwtRevocationOptions> } = {}): Promise<Setup> {
  const clock = FakeTimers.install({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: Date.now() })
  t.teardown(() => clock.uninstall())
  const tenant = await new Auth0StandIn().start()
  t.teardown(() => tenant.stop())
  const logs: string[] = []
  const stream = new Writable({ write (chunk, _enc, done) { logs.push(String(chunk)); done() } })
  const app = Fastify({ logger: { level: 'debug', stream } })
  t.teardown(() => app.close())
  await app.register(jwtRevocation, {
    jwks: { keys: [key.publicJwk] }, issuer: ISSUER, audience: options.audience ?? [AUDIENCE], grants: true, maxTokenLifetime: '1d',
    store: options.store ?? new MemoryStore(),
    ...options.plugin?.(tenant),
  } as JwtRevocationOptions)
  await app.register(auth0Sync, { domain: tenant.url, clientId: tenant.clientId, clientSecret: tenant.clientSecret, ...options.sync })
  app.get('/orders', async (request) => ({ client: request.auth!.clientId, scopes: request.auth!.scopes }))
  await app.ready()
  return { app, tenant, logs, clock }
}

const get = async (app: FastifyInstance, token: string) => (await app.inject({ url: '/orders', headers: bearer(token) }))
const tokenOf = (client: string, claims: Record<string, unknown> = {}) => sign(key, { azp: client, sub: `${client}@clients`, scope: 'read:orders write:orders', ...claims })

t.test("the seed's procedure at the tenant takes effect at the API after one sync", async (t) => {
  const { app, tenant } = await setup(t)
  const partner = tenant.addGrant('partner', AUDIENCE, ['read:orders'])
  tenant.addGrant('other', AUDIENCE, ['read:orders'])
  // The partner's month-long token, issued before the sync was ever turned on.
  const month = await tokenOf('partner', { jti: 'month-long' })
  const other = await tokenOf('other')
  t.equal((await get(app, month)).statusCode, 401, 'grants enforced and none synced yet: refused')

  await app.auth0Sync.syncNow()
  t.equal((await get(app, month)).statusCode, 200, 'a mirrored grant admits tokens issued before it was first seen')
  t.equal((await get(app, other)).statusCode, 200)

  // Strategy 1 at the tenant: POST /api/v2/blacklists/tokens { aud, jti }.
  tenant.blacklist.push({ aud: AUDIENCE, jti: 'month-long' })
  t.equal((await get(app, month)).statusCode, 200, 'not before the sync')
  await app.auth0Sync.syncNow()
  const refused = await get(app, month)
  t.equal(refused.statusCode, 401)
  t.equal(refused.json().message, 'The token has been revoked')
  const fresh = await tokenOf('partner')
  t.equal((await get(app, fresh)).statusCode, 200, 'a blacklist refuses that one token only')

  // Strategy 2 at the tenant: DELETE /api/v2/client-grants/:id.
  tenant.deleteGrant(partner.id)
  await app.auth0Sync.syncNow()
  t.equal((await get(app, fresh)).statusCode, 401, 'every token of the partner is refused')
  t.equal((await get(app, other)).statusCode, 200, 'other clients are unaffected')
  t.same(app.auth0Sync.status(), { lastSuccessAt: Date.now(), lastErrorAt: null, lastError: null, tokens: 1, grants: 1 })

  // Synced again with nothing new: nothing is written again.
  const before = await app.revocation.listRevokedTokens()
  await app.auth0Sync.syncNow()
  t.same(await app.revocation.listRevokedTokens(), before, 'idempotent')

  // The revocation log names the sync as the author of what it mirrored, and why.
  const { entries } = await app.revocation.history()
  t.ok(entries.length >= 4 && entries.every((e) => e.actor === 'auth0-sync' && e.source === 'auth0'), 'every change the sync made: actor auth0-sync, source auth0')
  t.match(entries.find((e) => e.type === 'token'), { jti: 'month-long', reason: 'blacklisted at Auth0' })
  t.match(entries.find((e) => e.type === 'grant' && e.action === 'delete'), { clientId: 'partner', reason: 'grant deleted at Auth0' })
  t.match(entries.find((e) => e.type === 'grant' && e.action === 'create'), { reason: 'grant created at Auth0' })
})

t.test('syncNow() during a sync in flight resolves on one that started after the call', async (t) => {
  const { app, tenant, clock } = await setup(t)
  const partner = tenant.addGrant('partner', AUDIENCE, ['read:orders'])
  const token = await tokenOf('partner')
  // The first sync, started once the app is ready, has read the grant list (partner's grant included) but not applied it.
  const read = tenant.hold('GET /api/v2/client-grants')
  await clock.tickAsync(0)
  await read.arrived
  tenant.deleteGrant(partner.id)
  const synced = app.auth0Sync.syncNow()
  read.release()
  await synced
  t.equal((await get(app, token)).statusCode, 401, 'the deletion made before the call is in force when it resolves')
  t.equal(tenant.count('GET /api/v2/client-grants'), 2, 'the grant list was read again after the call')
})

t.test('calls made while a sync runs share one more sync', async (t) => {
  const { app, tenant } = await setup(t)
  const syncs = () => tenant.count('GET /api/v2/client-grants')
  const first = tenant.hold('GET /api/v2/client-grants')
  const running = app.auth0Sync.syncNow()
  await first.arrived
  const second = tenant.hold('GET /api/v2/client-grants')
  let resolved = 0
  const calls = Array.from({ length: 5 }, () => app.auth0Sync.syncNow().then(() => { resolved++ }))
  first.release()
  await running
  await second.arrived
  t.equal(syncs(), 2, 'the five calls started one sync, once the running one ended')
  t.equal(resolved, 0, 'none of them resolved on the sync that was running when they were made')
  // A call made once that sync is under way waits for the one after it.
  const later = app.auth0Sync.syncNow()
  second.release()
  await Promise.all([...calls, later])
  t.equal(resolved, 5)
  t.equal(syncs(), 3, 'the running sync, one for the five calls, one for the later call')
})

t.test('130 grants across checkpoint pages, for every audience of the plugin', async (t) => {
  const { app, tenant } = await setup(t, { audience: [AUDIENCE, REPORTS] })
  for (let i = 0; i < 130; i++) tenant.addGrant(`client-${i}`, AUDIENCE, ['read:orders'])
  tenant.addGrant('client-0', REPORTS, ['read:orders'])
  await app.auth0Sync.syncNow()
  t.equal(tenant.count('GET /api/v2/client-grants'), 3, 'two pages for one audience, one for the other')
  t.equal((await app.revocation.listGrants({ audience: AUDIENCE })).length, 130)
  for (const i of [0, 99, 100, 129]) t.equal((await get(app, await tokenOf(`client-${i}`))).statusCode, 200, `client-${i}`)
  t.equal(app.auth0Sync.status().grants, 131)
})

t.test('a scope narrowed at the tenant narrows request.auth.scopes', async (t) => {
  const { app, tenant } = await setup(t)
  const grant = tenant.addGrant('partner', AUDIENCE, ['read:orders', 'write:orders'])
  await app.revocation.createGrant({ client_id: 'local-only', audience: AUDIENCE, scope: ['read:orders'] })
  await app.auth0Sync.syncNow()
  t.same((await app.revocation.listGrants({ audience: AUDIENCE })).map((g) => g.client_id), ['partner'], 'Auth0 is the source of truth for a synced audience')
  const token = await tokenOf('partner')
  t.same((await get(app, token)).json().scopes, ['read:orders', 'write:orders'])
  grant.scope = ['read:orders']
  await app.auth0Sync.syncNow()
  t.same((await get(app, token)).json().scopes, ['read:orders'], 'the same token, narrowed on its next request')
})

t.test('a grant deleted and re-created at the tenant between two syncs still refuses the old tokens', async (t) => {
  const { app, tenant, clock } = await setup(t)
  const first = tenant.addGrant('partner', AUDIENCE, ['read:orders'])
  await app.auth0Sync.syncNow()
  const old = await tokenOf('partner')
  tenant.deleteGrant(first.id)
  tenant.addGrant('partner', AUDIENCE, ['read:orders'])
  clock.tick(1000)
  await app.auth0Sync.syncNow()
  t.equal((await get(app, old)).statusCode, 401, 'issued before the deletion')
  clock.tick(1000)
  t.equal((await get(app, await tokenOf('partner'))).statusCode, 200, 'issued under the new grant')
})

t.test('tenant down or answering garbage: the API keeps serving and keeps what it synced; logged once per outage', async (t) => {
  const { app, tenant, logs } = await setup(t)
  tenant.addGrant('partner', AUDIENCE, ['read:orders'])
  tenant.blacklist.push({ aud: AUDIENCE, jti: 'stolen' })
  await app.auth0Sync.syncNow()
  const good = await tokenOf('partner')
  const stolen = await tokenOf('partner', { jti: 'stolen' })

  const answers = [
    { kind: 'down' as const },
    { kind: 'garbage' as const, body: '{"client_grants": "no"}' },
    { kind: 'garbage' as const, body: '[]' },
    { kind: 'garbage' as const, body: '<html>oops</html>' },
  ]
  for (const fault of answers) {
    tenant.faultsFor.set('GET /api/v2/client-grants', [fault])
    await t.rejects(app.auth0Sync.syncNow(), { code: 'FST_JWT_REVOCATION_OUTBOUND' }, JSON.stringify(fault))
    t.equal((await get(app, good)).statusCode, 200, 'the grant is kept: a failed read is not "no grants"')
    t.equal((await get(app, stolen)).statusCode, 401, 'the blacklist is kept')
  }
  // A partial read: the first page answers, the second fails.
  for (let i = 0; i < 120; i++) tenant.addGrant(`more-${i}`, AUDIENCE, [])
  tenant.faultsFor.set('GET /api/v2/client-grants', [null, { kind: 'down' }])
  await t.rejects(app.auth0Sync.syncNow())
  t.equal((await app.revocation.listGrants({ audience: AUDIENCE })).length, 1, 'nothing from the half-read list was applied')

  const status = app.auth0Sync.status()
  t.ok(status.lastErrorAt !== null && status.lastError !== null && status.lastSuccessAt !== null)
  const errors = logs.map((l) => JSON.parse(l) as { level: number, msg: string }).filter((l) => l.level >= 50 && l.msg.includes('Auth0 sync failed'))
  t.equal(errors.length, 1, 'one error log for the whole outage')

  await app.auth0Sync.syncNow()
  t.equal(app.auth0Sync.status().lastError, null, 'recovered')
  t.ok(logs.some((l) => l.includes('Auth0 sync works again')))
  t.notOk(logs.some((l) => l.includes(tenant.clientSecret)), 'the client secret is never logged')
})

t.test('a 429 is waited out until x-ratelimit-reset, never retried sooner', async (t) => {
  const { app, tenant, clock } = await setup(t)
  tenant.addGrant('partner', AUDIENCE, ['read:orders'])
  const resetAt = Date.now() + 20_000
  tenant.fault = { kind: 'rate-limited', resetAt }
  let done = false
  const sync = app.auth0Sync.syncNow().then(() => { done = true })
  t.ok(await until(() => tenant.count('POST /oauth/token') === 1), 'asked once')
  await clock.tickAsync(19_000)
  await settle()
  t.equal(tenant.count('POST /oauth/token'), 1, 'no retry before the reset')
  t.notOk(done)
  await clock.tickAsync(2_000)
  t.ok(await until(() => done), 'the sync completes after the reset')
  await sync
  t.equal(tenant.count('POST /oauth/token'), 2)
  t.equal((await app.revocation.listGrants({})).length, 1)
})

t.test('the management token is cached until shortly before it expires, and renewed on a 401', async (t) => {
  const { app, tenant, clock } = await setup(t)
  tenant.tokenLifetime = 1800
  await app.auth0Sync.syncNow()
  await app.auth0Sync.syncNow()
  t.equal(tenant.count('POST /oauth/token'), 1, 'one token for both syncs')
  tenant.revokeAccessTokens()
  await app.auth0Sync.syncNow()
  t.equal(tenant.count('POST /oauth/token'), 2, 'renewed after a 401')
  clock.tick(1800_000 - 180_000 - 1)
  await app.auth0Sync.syncNow()
  t.equal(tenant.count('POST /oauth/token'), 2, 'still cached')
  clock.tick(2)
  await app.auth0Sync.syncNow()
  t.equal(tenant.count('POST /oauth/token'), 3, 'renewed a tenth of its life before it expires')
})

t.test('syncs run every jittered interval, slower while Auth0 fails', async (t) => {
  const { app, tenant, clock } = await setup(t, { sync: { interval: '30s' } })
  const syncs = () => tenant.count('GET /api/v2/blacklists/tokens')
  // A background sync is over once status() records it; only then is the next one scheduled.
  const finished = () => { const s = app.auth0Sync.status(); return (s.lastSuccessAt ?? 0) + (s.lastErrorAt ?? 0) }
  const settled = async (mark: number) => t.ok(await until(() => finished() !== mark), 'a sync ran')
  let mark = finished()
  await clock.tickAsync(0)
  await settled(mark)
  t.equal(syncs(), 1, 'the first sync starts once the app is ready')
  mark = finished()
  await clock.tickAsync(26_999)
  await settle()
  t.equal(syncs(), 1, 'not before 90% of the interval')
  await clock.tickAsync(6_002)
  await settled(mark)
  t.equal(syncs(), 2, 'by 110% of it')

  tenant.fault = { kind: 'down' }
  mark = finished()
  await clock.tickAsync(33_001)
  await settled(mark)
  t.equal(app.auth0Sync.status().lastError, 'Auth0 GET /api/v2/blacklists/tokens answered 503 (Service Unavailable)')
  await clock.tickAsync(33_001)
  await settle()
  t.equal(syncs(), 3, 'after a failure, the next try waits longer than one interval')
})

t.test('closing the app stops the syncs: Auth0 is not called after close, and no outage is logged', async (t) => {
  const { app, tenant, logs } = await setup(t)
  await app.close()
  await t.rejects(app.auth0Sync.syncNow(), /aborted|closing/)
  t.equal(tenant.count('POST /oauth/token'), 0)
  t.notOk(logs.some((l) => l.includes('Auth0 sync failed')))
})

t.test('options are validated strictly, naming the option', async (t) => {
  const base = { domain: 'tenant.auth0.com', clientId: 'id', clientSecret: 'secret' }
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ ...base, clientID: 'x' }, /"auth0Sync.clientID" is not known; did you mean auth0Sync.clientId\?/],
    [{ ...base, intervall: '1m' }, /did you mean auth0Sync.interval\?/],
    [{ domain: 'tenant.auth0.com', clientId: 'id' }, /"auth0Sync.clientSecret" is required/],
    [{ ...base, domain: 'http://tenant.auth0.com' }, /"auth0Sync.domain" must be .*http only on a loopback host/],
    [{ ...base, domain: 'https://tenant.auth0.com/api/v2' }, /without a path/],
    [{ ...base, interval: '1s' }, /"auth0Sync.interval" must be at least 5 seconds/],
    [{ ...base, interval: 'soon' }, /"auth0Sync.interval" must be a duration: seconds/],
    [{ ...base, audience: 'https://elsewhere.test' }, /"auth0Sync.audience" names audiences the plugin does not accept/],
  ]
  for (const [options, message] of cases) {
    const app = Fastify()
    await app.register(jwtRevocation, { jwks: { keys: [key.publicJwk] }, audience: AUDIENCE })
    app.register(auth0Sync, options as never)
    await t.rejects(async () => { await app.ready() }, message, JSON.stringify(options))
    await app.close()
  }
  const alone = Fastify()
  alone.register(auth0Sync, base)
  await t.rejects(async () => { await alone.ready() }, /fastify-jwt-revocation/, 'needs the plugin')
  await alone.close()
})

t.test("with several issuers, a grant deleted at the tenant cuts off the tenant issuer's client, not another issuer's of the same id", async (t) => {
  const OTHER = 'https://other-issuer.test/'
  const otherKey = await makeKey('ES256')
  // Grants not enforced: a grant is the client's at every issuer, so a missing one would refuse both issuers' clients.
  const { app, tenant } = await setup(t, {
    plugin: (tenant) => ({
      jwks: undefined, issuer: undefined, grants: false,
      issuers: [{ issuer: `${tenant.url}/`, jwks: { keys: [key.publicJwk] } }, { issuer: OTHER, jwks: { keys: [otherKey.publicJwk] } }],
    }),
  })
  const grant = tenant.addGrant('partner', AUDIENCE, ['read:orders'])
  await app.auth0Sync.syncNow()
  const tenants = await tokenOf('partner', { iss: `${tenant.url}/` })
  const others = await sign(otherKey, { iss: OTHER, azp: 'partner', sub: 'partner@clients', scope: 'read:orders' })
  t.same([(await get(app, tenants)).statusCode, (await get(app, others)).statusCode], [200, 200])

  tenant.deleteGrant(grant.id)
  await app.auth0Sync.syncNow()
  t.equal((await get(app, tenants)).statusCode, 401, "the tenant issuer's partner is cut off")
  t.equal((await get(app, others)).statusCode, 200, "the other issuer's partner is not")
})

t.test("when the tenant's issuer is not one the API names, a deleted grant cuts off the client at every issuer, as before", async (t) => {
  const OTHER = 'https://other-issuer.test/'
  const { app, tenant } = await setup(t, { plugin: () => ({ issuer: [ISSUER, OTHER], grants: false }) })
  const grant = tenant.addGrant('partner', AUDIENCE, ['read:orders'])
  await app.auth0Sync.syncNow()
  const tokens = [await tokenOf('partner'), await tokenOf('partner', { iss: OTHER })]
  for (const token of tokens) t.equal((await get(app, token)).statusCode, 200)
  tenant.deleteGrant(grant.id)
  await app.auth0Sync.syncNow()
  for (const token of tokens) t.equal((await get(app, token)).statusCode, 401)
})

t.test("with several issuers, the tenant's among them, a store without issuer scopes is refused at registration", async (t) => {
  const clock = FakeTimers.install({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: Date.now() })
  t.teardown(() => clock.uninstall())
  const tenant = await new Auth0StandIn().start()
  t.teardown(() => tenant.stop())
  const store = Object.assign(new MemoryStore(), { issuerScopes: false })
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(jwtRevocation, { jwks: { keys: [key.publicJwk] }, issuer: [`${tenant.url}/`, 'https://other-issuer.test/'], audience: AUDIENCE, store })
  app.register(auth0Sync, { domain: tenant.url, clientId: tenant.clientId, clientSecret: tenant.clientSecret })
  await t.rejects(async () => { await app.ready() }, { message: /auth0Sync.*with several issuers, needs a store that keeps rules scoped to an issuer/ })
})
