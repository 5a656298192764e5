// Bulk revocation through the plugin: app.revocation.revokeTokens on one instance, one
// change-feed message, and every affected token cached on another instance is refused.
import Fastify from 'fastify'
import t from 'tap'
import jwtRevocation, { adminRoutes, MemoryStore, type RevocationChange, type RevocationStore } from '../../src/index.js'
import { PostgresStore } from '../../src/stores/postgres.js'
import { RedisStore } from '../../src/stores/redis.js'
import { AUDIENCE, bearer, ISSUER, sign } from '../helpers/helpers.js'
import { instance, key } from '../helpers/propagation.js'
import { connectPostgres, connectRedis, deleteKeys, uniqueName } from '../helpers/services.js'

type Tap = Pick<typeof t, 'equal' | 'ok' | 'teardown'>

async function refusedWithin (check: () => Promise<boolean>, ms = 5000): Promise<boolean> {
  const started = performance.now()
  while (performance.now() - started < ms) {
    if (await check()) return true
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  return false
}

async function batchAcrossInstances (t: Tap, makeStore: () => RevocationStore, count: number): Promise<void> {
  const a = await instance(t, makeStore())
  const storeB = makeStore()
  const b = await instance(t, storeB)
  const messages: RevocationChange[] = []
  await storeB.subscribe!((c) => messages.push(c))
  const jtis = Array.from({ length: count }, (_, i) => `bulk-${i}`)
  const tokens = await Promise.all([...jtis.slice(0, 3), 'kept'].map((jti) => sign(key, { jti })))
  for (const token of tokens) t.equal((await b.inject({ url: '/orders', headers: bearer(token) })).statusCode, 200, 'cached on B as not revoked')
  await a.revocation.revokeTokens(jtis.map((jti) => ({ jti, aud: AUDIENCE })))
  const status = (token: string) => b.inject({ url: '/orders', headers: bearer(token) }).then((r) => r.statusCode)
  t.ok(await refusedWithin(async () => (await Promise.all(tokens.slice(0, 3).map(status))).every((s) => s === 401)), 'B refuses every token of the batch long before its 60 s cache ttl')
  t.equal(await status(tokens[3]!), 200, 'a token outside the batch is still served')
  t.equal(messages.length, 1, `one change-feed message for ${count} revocations (${messages[0]?.type})`)
}

t.test('Redis: one batch, one message, every instance refuses', async (t) => {
  const client = await connectRedis(t)
  if (!client) return
  const prefix = `{${uniqueName('bulk')}}:`
  t.teardown(() => deleteKeys(client, prefix))
  await batchAcrossInstances(t, () => new RedisStore({ client, prefix }), 2000)
})

t.test('PostgreSQL: a small batch names its tokens; a large one resets the caches', async (t) => {
  const pool = await connectPostgres(t)
  if (!pool) return
  for (const count of [20, 2000]) {
    const tablePrefix = uniqueName('bulk').toLowerCase() + '_'
    t.teardown(async () => { for (const x of ['schema', 'tokens', 'clients', 'subjects', 'sessions', 'grants', 'leases']) await pool.query(`DROP TABLE IF EXISTS ${tablePrefix}${x}`) })
    await t.test(`${count} tokens`, (t) => batchAcrossInstances(t, () => new PostgresStore({ pool, tablePrefix }), count))
  }
})

t.test('app.revocation.revokeTokens checks every entry first; the admin batch route', async (t) => {
  const store = new MemoryStore()
  const app = Fastify()
  t.teardown(() => app.close())
  const admin = 'https://api.test/api/v2/'
  await app.register(jwtRevocation, { jwks: { keys: [key.publicJwk] }, issuer: ISSUER, audience: [AUDIENCE, admin], store })
  await app.register(adminRoutes, { prefix: '/api/v2', audience: admin })
  await app.ready()
  await t.rejects(app.revocation.revokeTokens([{ jti: 'ok' }, { jti: '' }]), { code: 'FST_JWT_REVOCATION_INVALID_ARGUMENT' })
  t.same(await store.listRevokedTokens({}), [], 'one bad entry: nothing written')
  await t.rejects(app.revocation.revokeTokens('x' as never), /takes an array/)
  await app.revocation.revokeTokens([])

  const token = await sign(key, { aud: admin, scope: 'blacklist:tokens delete:client_grants' })
  const post = (url: string, payload: unknown) => app.inject({ method: 'POST', url, payload: payload as object, headers: bearer(token) })
  const batch = await post('/api/v2/blacklists/tokens/batch', { tokens: [{ jti: 'a' }, { jti: 'b', aud: AUDIENCE, exp: Math.floor(Date.now() / 1000) + 60 }] })
  t.equal(batch.statusCode, 200)
  t.same(batch.json(), { revoked: 2 })
  t.same((await store.listRevokedTokens({ aud: AUDIENCE })).map((e) => e.jti).sort(), ['a', 'b'])
  const foreign = await post('/api/v2/blacklists/tokens/batch', { tokens: [{ jti: 'c', aud: 'https://api.test/' }] })
  t.equal(foreign.statusCode, 400)
  t.match(foreign.json(), { statusCode: 400, message: /audience this API accepts/ })
  const tooMany = await post('/api/v2/blacklists/tokens/batch', { tokens: Array.from({ length: 1001 }, (_, i) => ({ jti: `t-${i}` })) })
  t.equal(tooMany.statusCode, 400, 'at most 1,000 per batch')
  t.equal((await post('/api/v2/blacklists/tokens/batch', { tokens: [] })).statusCode, 400)
  t.equal((await post('/api/v2/revocations/clients', { client_id: 'partner' })).statusCode, 204)
  t.ok((await store.lookup({ audiences: [AUDIENCE], clientId: 'partner', includeGrant: false })).clientRevokedAt)
  t.equal((await post('/api/v2/revocations/subjects', { subject: 'user-1' })).statusCode, 204)
  t.ok((await store.lookup({ audiences: [AUDIENCE], subject: 'user-1', includeGrant: false })).subjectRevokedAt)
  const narrow = await sign(key, { aud: admin, scope: 'blacklist:tokens' })
  const refused = await app.inject({ method: 'POST', url: '/api/v2/revocations/clients', payload: { client_id: 'x' }, headers: bearer(narrow) })
  t.equal(refused.statusCode, 403, 'revoking a client needs delete:client_grants')
})
