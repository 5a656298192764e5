// Rules scoped to one issuer: a client id or subject is only unique within its issuer,
// so revoking issuer A's `partner` must leave issuer B's `partner` alone, while a rule
// without an issuer still cuts off both.
import Fastify, { type FastifyInstance } from 'fastify'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough, Readable } from 'node:stream'
import t from 'tap'
import { main } from '../../src/cli/main.js'
import jwtRevocation, { adminRoutes, FileStore, MemoryStore, type RevocationStore } from '../../src/index.js'
import { PostgresStore } from '../../src/stores/postgres.js'
import { RedisStore } from '../../src/stores/redis.js'
import { AUDIENCE, bearer, makeKey, sign } from '../helpers/helpers.js'
import { connectPostgres, connectRedis, deleteKeys, uniqueName } from '../helpers/services.js'

const A = 'https://a.issuer.test/'
const B = 'https://b.issuer.test/'
const keyA = await makeKey('ES256')
const keyB = await makeKey('RS256')

async function api (t: { teardown: (fn: () => unknown) => void }, store: RevocationStore): Promise<FastifyInstance> {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(jwtRevocation, {
    audience: AUDIENCE,
    issuers: [{ issuer: A, jwks: { keys: [keyA.publicJwk] } }, { issuer: B, jwks: { keys: [keyB.publicJwk] } }],
    store,
    cache: { max: 1000, ttl: 60_000 },
  })
  app.get('/orders', async (request) => ({ issuer: request.auth!.issuer }))
  await app.ready()
  return app
}

const iat = () => Math.floor(Date.now() / 1000) - 60
const partnerOf = async (issuer: string, claims: Record<string, unknown> = {}) =>
  sign(issuer === A ? keyA : keyB, { iss: issuer, azp: 'partner', sub: 'partner@clients', iat: iat(), ...claims })

const status = async (app: FastifyInstance, token: string) => (await app.inject({ url: '/orders', headers: bearer(token) })).statusCode

/** Polls until `app` answers `wanted` for `token` (the change feed is asynchronous); returns the last status. */
async function eventually (app: FastifyInstance, token: string, wanted: number): Promise<number> {
  const deadline = Date.now() + 10_000
  let last = await status(app, token)
  while (last !== wanted && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 10))
    last = await status(app, token)
  }
  return last
}

/**
 * Revokes through `writer`; `reader` (another instance on the same store, or the same one)
 * had both partners' tokens cached as good.
 */
async function scenario (t: Tap, writer: FastifyInstance, reader: FastifyInstance): Promise<void> {
  const tokens = { a: await partnerOf(A), b: await partnerOf(B) }
  for (const app of [writer, reader]) for (const token of Object.values(tokens)) t.equal(await status(app, token), 200, 'cached as good')

  await writer.revocation.revokeClient('partner', { issuer: A })
  t.equal(await eventually(reader, tokens.a, 401), 401, "issuer A's partner is cut off")
  t.equal(await status(reader, tokens.b), 200, "issuer B's partner, the same client id, is not")
  t.equal(await status(writer, tokens.b), 200)

  const user = { a: await partnerOf(A, { sub: 'alice', azp: 'web' }), b: await partnerOf(B, { sub: 'alice', azp: 'web' }) }
  for (const token of Object.values(user)) t.equal(await status(reader, token), 200)
  await writer.revocation.revokeSubject('alice', { issuer: B })
  t.equal(await eventually(reader, user.b, 401), 401, "issuer B's alice is logged out")
  t.equal(await status(reader, user.a), 200, "issuer A's alice is not")

  await writer.revocation.revokeClient('partner')
  t.equal(await eventually(reader, tokens.b, 401), 401, 'a revocation without issuer cuts off every issuer\'s partner')
  t.equal(await status(writer, tokens.b), 401)
}

type Tap = Pick<typeof t, 'equal' | 'ok' | 'same' | 'comment' | 'teardown' | 'rejects'>

t.test('MemoryStore: a scoped client or subject rule cuts off one issuer only; an unscoped one every issuer', async (t) => {
  const app = await api(t, new MemoryStore())
  await scenario(t, app, app)
})

t.test('a scoped session rule cuts off one issuer\'s session of that id only', async (t) => {
  const app = await api(t, new MemoryStore())
  const a = await partnerOf(A, { sid: 'sid-1' })
  const b = await partnerOf(B, { sid: 'sid-1' })
  await app.revocation.revokeSession('sid-1', { issuer: A })
  t.same([await status(app, a), await status(app, b)], [401, 200])
})

t.test("deleteGrant with an issuer revokes that issuer's client only; a refused issuer leaves the grant in place", async (t) => {
  const app = await api(t, new MemoryStore())
  const a = await partnerOf(A)
  const b = await partnerOf(B)
  const grant = await app.revocation.createGrant({ client_id: 'partner', audience: AUDIENCE, scope: ['read:orders'] })
  await t.rejects(app.revocation.deleteGrant(grant.id, { issuer: 'https://unknown.issuer.test/' }), { code: 'FST_JWT_REVOCATION_INVALID_ARGUMENT' })
  t.ok(await app.revocation.getGrant(grant.id), 'not deleted')
  await app.revocation.deleteGrant(grant.id, { issuer: A })
  t.equal(await app.revocation.getGrant(grant.id), null)
  t.same([await status(app, a), await status(app, b)], [401, 200])
})

t.test('an issuer the API does not accept is refused, and so is a scope the store cannot keep', async (t) => {
  const app = await api(t, new MemoryStore())
  await t.rejects(app.revocation.revokeClient('partner', { issuer: 'https://a.issuer.test' }), { code: 'FST_JWT_REVOCATION_INVALID_ARGUMENT', message: /issuer must be an issuer this API accepts: https:\/\/a\.issuer\.test\/, https:\/\/b\.issuer\.test\// })
  await t.rejects(app.revocation.revokeSubject('alice', { issuer: '' }), { code: 'FST_JWT_REVOCATION_INVALID_ARGUMENT' })
  await t.rejects(app.revocation.revokeSession('sid', { issuer: 42 as never }), { code: 'FST_JWT_REVOCATION_INVALID_ARGUMENT' })

  // A third-party store that keeps no issuer scopes: a scoped revocation is neither widened nor dropped.
  const written: unknown[] = []
  const memory = new MemoryStore()
  const plain: RevocationStore = {
    lookup: (query) => memory.lookup(query),
    revokeToken: (entry) => memory.revokeToken(entry),
    listRevokedTokens: (filter) => memory.listRevokedTokens(filter),
    revokeClient: async (entry) => { written.push(entry); await memory.revokeClient(entry) },
    revokeSubject: async (entry) => { written.push(entry); await memory.revokeSubject(entry) },
  }
  const other = await api(t, plain)
  t.equal(other.revocation.issuerScopesSupported, false)
  await t.rejects(other.revocation.revokeClient('partner', { issuer: A }), { code: 'FST_JWT_REVOCATION_STORE', message: /does not keep rules scoped to an issuer/ })
  await t.rejects(other.revocation.revokeSubject('alice', { issuer: A }), { code: 'FST_JWT_REVOCATION_STORE' })
  t.same(written, [], 'nothing was written')
  await other.revocation.revokeClient('partner')
  t.equal(await status(other, await partnerOf(B)), 401, 'an unscoped revocation still works on it')
})

t.test('RedisStore: two instances agree on scoped rules', async (t) => {
  const client = await connectRedis(t)
  if (!client) return
  const prefix = `{${uniqueName('issuer-scopes')}}:`
  t.teardown(() => deleteKeys(client, prefix))
  await scenario(t, await api(t, new RedisStore({ client, prefix })), await api(t, new RedisStore({ client, prefix })))
})

t.test('PostgresStore: two instances agree on scoped rules', async (t) => {
  const pool = await connectPostgres(t)
  if (!pool) return
  const tablePrefix = uniqueName('issuer_scopes').toLowerCase() + '_'
  t.teardown(async () => { for (const x of ['schema', 'tokens', 'clients', 'subjects', 'sessions', 'grants', 'leases', 'claims']) await pool.query(`DROP TABLE IF EXISTS ${tablePrefix}${x}`) })
  await scenario(t, await api(t, new PostgresStore({ pool, tablePrefix })), await api(t, new PostgresStore({ pool, tablePrefix })))
})

t.test('rules written before issuer scopes still apply to every issuer', async (t) => {
  t.test('a FileStore log of the earlier layout', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'jwtr-issuer-'))
    t.teardown(() => rm(dir, { recursive: true, force: true }))
    const revokedAt = Date.now() - 1000
    await writeFile(join(dir, 'revocations.log'), [
      { op: 'client', entry: { clientId: 'partner', audience: '*', revokedAt, expiresAt: null } },
      { op: 'subject', entry: { subject: 'alice', revokedAt, expiresAt: null } },
    ].map((line) => JSON.stringify(line) + '\n').join(''))
    const store = new FileStore({ path: dir })
    const app = await api(t, store)
    for (const issuer of [A, B]) {
      t.equal(await status(app, await partnerOf(issuer)), 401, `the old client rule refuses ${issuer}'s partner`)
      t.equal(await status(app, await partnerOf(issuer, { sub: 'alice', azp: 'web' })), 401, `the old subject rule refuses ${issuer}'s alice`)
    }
    await app.revocation.revokeClient('web', { issuer: A })
    await app.close()
    const reopened = await api(t, new FileStore({ path: dir }))
    t.equal(await status(reopened, await partnerOf(A, { sub: 'bob', azp: 'web' })), 401, 'a scoped rule survives a restart')
    t.equal(await status(reopened, await partnerOf(B, { sub: 'bob', azp: 'web' })), 200, 'still scoped after the log is replayed')
  })

  t.test('Redis keys of the earlier layout', async (t) => {
    const client = await connectRedis(t)
    if (!client) return
    const prefix = `{${uniqueName('issuer-old')}}:`
    t.teardown(() => deleteKeys(client, prefix))
    // The keys an earlier release wrote: client and subject rules without an issuer.
    await client.set(`${prefix}c:partner\u0000*`, String(Date.now() - 1000))
    await client.set(`${prefix}s:alice`, String(Date.now() - 1000))
    const app = await api(t, new RedisStore({ client, prefix }))
    for (const issuer of [A, B]) {
      t.equal(await status(app, await partnerOf(issuer)), 401, `the old client rule refuses ${issuer}'s partner`)
      t.equal(await status(app, await partnerOf(issuer, { sub: 'alice', azp: 'web' })), 401, `the old subject rule refuses ${issuer}'s alice`)
    }
  })
})

const MGMT = 'https://admin.test/api/v2/'

/** Runs the command line in this process; its exit code and what it printed. */
async function cli (args: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
  const out = { stdout: '', stderr: '' }
  const stream = (name: 'stdout' | 'stderr') => Object.assign(new PassThrough(), { isTTY: false }).on('data', (c: Buffer) => { out[name] += c })
  const code = await main(args, { stdin: Readable.from([]), stdout: stream('stdout'), stderr: stream('stderr'), env: {} })
  return { code, ...out }
}

t.test('admin routes and the command line take an issuer', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(jwtRevocation, {
    audience: [AUDIENCE, MGMT],
    issuers: [{ issuer: A, jwks: { keys: [keyA.publicJwk] } }, { issuer: B, jwks: { keys: [keyB.publicJwk] } }],
    store: new MemoryStore(),
  })
  await app.register(adminRoutes, { prefix: '/api/v2', audience: MGMT })
  app.get('/orders', { config: { auth: { audience: AUDIENCE } } }, async () => 'ok')
  const address = await app.listen({ port: 0, host: '127.0.0.1' })
  const admin = await sign(keyA, { iss: A, aud: MGMT, sub: 'admin@clients', azp: 'admin', scope: 'blacklist:tokens delete:client_grants read:client_grants' })
  const post = (url: string, payload: unknown) => app.inject({ method: 'POST', url: `/api/v2/revocations/${url}`, headers: bearer(admin), payload: payload as object })

  const tokens = { a: await partnerOf(A), b: await partnerOf(B) }
  t.equal((await post('clients', { client_id: 'partner', issuer: A })).statusCode, 204)
  t.same([await status(app, tokens.a), await status(app, tokens.b)], [401, 200], 'the route revoked issuer A\'s partner only')
  const unknown = await post('clients', { client_id: 'partner', issuer: 'https://c.issuer.test/' })
  t.equal(unknown.statusCode, 400, 'an issuer the API does not accept is refused')
  t.match(unknown.json(), { message: /issuer must be an issuer this API accepts/ })
  t.equal((await post('clients', { client_id: 'partner', issuer: '' })).statusCode, 400, 'an empty issuer is refused by the schema')

  const alice = { a: await partnerOf(A, { sub: 'alice', azp: 'web' }), b: await partnerOf(B, { sub: 'alice', azp: 'web' }) }
  t.equal((await post('subjects', { subject: 'alice', issuer: B })).statusCode, 204)
  t.same([await status(app, alice.a), await status(app, alice.b)], [200, 401], 'the route revoked issuer B\'s alice only')

  const target = ['--admin', `${address}/api/v2`, '--token', admin]
  const bob = { a: await partnerOf(A, { sub: 'bob', azp: 'cli-client' }), b: await partnerOf(B, { sub: 'bob', azp: 'cli-client' }) }
  const client = await cli(['revoke-client', 'cli-client', '--issuer', B, '--json', ...target])
  t.equal(client.code, 0, client.stderr)
  t.same(JSON.parse(client.stdout), { revokedClient: { clientId: 'cli-client', audience: '*', issuer: B } })
  t.same([await status(app, bob.a), await status(app, bob.b)], [200, 401], 'revoke-client --issuer through the admin routes')
  const subject = await cli(['revoke-subject', 'bob', '--issuer', A, ...target])
  t.equal(subject.code, 0, subject.stderr)
  t.match(subject.stdout, /revoked subject bob: its tokens from https:\/\/a\.issuer\.test\/ issued up to now are refused/)
  t.equal(await status(app, bob.a), 401, 'revoke-subject --issuer through the admin routes')
  const refused = await cli(['revoke-client', 'partner', '--issuer', 'https://c.issuer.test/', ...target])
  t.not(refused.code, 0, 'the server refuses an issuer it does not accept')
  t.equal((await cli(['revoke-client', 'partner', '--issuer', '', ...target])).code, 2, 'an empty --issuer is a usage error')
})

t.test('the command line scopes rules in a store it opens', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'jwtr-issuer-cli-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const store = ['--store', `file:${dir}`]
  t.equal((await cli(['revoke-client', 'partner', '--issuer', A, ...store])).code, 0)
  t.equal((await cli(['revoke-subject', 'alice', '--issuer', B, ...store])).code, 0)
  const app = await api(t, new FileStore({ path: dir }))
  t.same([await status(app, await partnerOf(A)), await status(app, await partnerOf(B))], [401, 200])
  t.same([await status(app, await partnerOf(A, { sub: 'alice', azp: 'web' })), await status(app, await partnerOf(B, { sub: 'alice', azp: 'web' }))], [200, 401])
})
