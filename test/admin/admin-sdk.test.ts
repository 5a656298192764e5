// The admin routes driven over real HTTP by Auth0's own Node SDKs: v7 (the current
// major, client grants with checkpoint pagination) and v4 (blacklists, which v7 dropped).
import { ManagementClient } from 'auth0'
import { ManagementClient as ManagementClientV4 } from 'auth0-v4'
import Fastify, { type FastifyInstance } from 'fastify'
import t from 'tap'
import jwtRevocation, { adminRoutes, MemoryStore } from '../../src/index.js'
import { compareGrants } from '../../src/admin/pagination.js'
import { AUDIENCE, bearer, ISSUER, makeKey, sign } from '../helpers/helpers.js'

const MGMT = 'https://issuer.test/api/v2/'
const key = await makeKey('ES256')
const ALL_SCOPES = 'blacklist:tokens read:client_grants create:client_grants update:client_grants delete:client_grants'

/** A listening app; `fetch` sends the SDK's `https://<domain>` requests to it over plain HTTP on loopback. */
async function serve (t: { teardown: (fn: () => unknown) => void }): Promise<{ app: FastifyInstance, fetch: typeof globalThis.fetch, token: string, store: MemoryStore }> {
  const app = Fastify()
  t.teardown(() => app.close())
  const store = new MemoryStore()
  await app.register(jwtRevocation, { jwks: { keys: [key.publicJwk] }, issuer: ISSUER, audience: [AUDIENCE, MGMT], store })
  await app.register(adminRoutes, { prefix: '/api/v2', audience: MGMT })
  app.get('/orders', { config: { auth: { audience: AUDIENCE } } }, async () => 'ok')
  const origin = await app.listen({ port: 0, host: '127.0.0.1' })
  const local: typeof globalThis.fetch = (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input))
    const target = origin + url.pathname + url.search
    return input instanceof Request ? globalThis.fetch(new Request(target, input), init) : globalThis.fetch(target, init)
  }
  const token = await sign(key, { aud: MGMT, sub: 'admin@clients', azp: 'admin', scope: ALL_SCOPES })
  return { app, fetch: local, token, store }
}

t.test('auth0 v7: list (checkpoint pages through 120 grants), get, create, update, delete', async (t) => {
  const { app, fetch, token, store } = await serve(t)
  const management = new ManagementClient({ domain: 'tenant.test', token, fetch, maxRetries: 0 })

  const created: string[] = []
  for (let i = 0; i < 120; i++) {
    const grant = await management.clientGrants.create({ client_id: `client-${i}`, audience: AUDIENCE, scope: ['read:orders'] })
    created.push(grant.id!)
  }

  // The SDK's default call: include_totals=true&take=50, then `from` = next until it is absent.
  const seen: string[] = []
  const first = await management.clientGrants.list({ audience: AUDIENCE })
  t.equal(first.data.length, 50, 'first page: take=50')
  t.ok(first.hasNextPage(), 'a next checkpoint is given')
  for await (const grant of first) seen.push(grant.id!)
  t.equal(seen.length, 120, 'every grant, across three pages')
  t.same([...seen].sort(), [...created].sort(), 'each grant once')
  // The pages' order: creation time, then id (grants made in the same millisecond are ordered by id).
  const ordered = (await store.listGrants({ audience: AUDIENCE })).sort(compareGrants).map((g) => g.id)
  t.same(seen, ordered, 'in creation order')

  const small = await management.clientGrants.list({ take: 100 })
  t.equal(small.data.length, 100)
  const last = await small.getNextPage()
  t.equal(last.data.length, 20)
  t.notOk(last.hasNextPage(), 'no next on the last page')

  const one = await management.clientGrants.list({ client_id: 'client-7' })
  t.same(one.data.map((g) => g.id), [created[7]], 'client_id filter, as in the issue')
  t.notOk(one.hasNextPage())

  const other = await management.clientGrants.list({ subject_type: 'user', allow_any_organization: true })
  t.same(other.data, [], "Auth0's other filters are accepted (no user or organization grants here)")

  const got = await management.clientGrants.get(created[3]!)
  t.same(got, { id: created[3], client_id: 'client-3', audience: AUDIENCE, scope: ['read:orders'] })

  const updated = await management.clientGrants.update(created[3]!, { scope: ['read:orders', 'write:orders'] })
  t.same(updated.scope, ['read:orders', 'write:orders'])

  await management.clientGrants.delete(created[3]!)
  const missing = await management.clientGrants.get(created[3]!).then(() => null, (err: unknown) => err as { statusCode?: number })
  t.equal(missing?.statusCode, 404, 'a deleted grant is a 404')

  const conflict = await management.clientGrants.create({ client_id: 'client-5', audience: AUDIENCE, scope: [] }).then(() => null, (err: unknown) => err as { statusCode?: number })
  t.equal(conflict?.statusCode, 409)

  t.equal((await app.inject({ url: '/orders', headers: bearer(await sign(key, { azp: 'client-3' })) })).statusCode, 401, 'the deletion refuses the client at the API')
})

t.test('a checkpoint survives the deletion of the grant it follows', async (t) => {
  const { app, token } = await serve(t)
  for (let i = 0; i < 5; i++) await app.revocation.createGrant({ client_id: `c${i}`, audience: AUDIENCE, scope: [] })
  const list = (query: Record<string, string>) => app.inject({ url: '/api/v2/client-grants', query, headers: bearer(token) }).then((r) => r.json() as { client_grants: Array<{ id: string }>, next?: string })
  const ids = (await list({ take: '100' })).client_grants.map((g) => g.id)
  const first = await list({ take: '2' })
  t.same(first.client_grants.map((g) => g.id), ids.slice(0, 2))
  await app.revocation.deleteGrant(ids[1]!)
  const second = await list({ take: '2', from: first.next! })
  t.same(second.client_grants.map((g) => g.id), ids.slice(2, 4), 'nothing skipped, nothing repeated')
  const last = await list({ take: '2', from: second.next! })
  t.same(last.client_grants.map((g) => g.id), ids.slice(4))
  t.notOk('next' in last, 'no next on the last page')
})

t.test('a checkpoint that was not issued by the server is a 400 in Auth0 shape', async (t) => {
  const { app, token } = await serve(t)
  const res = await app.inject({ url: '/api/v2/client-grants', query: { from: 'not-a-checkpoint', take: '10' }, headers: bearer(token) })
  t.equal(res.statusCode, 400)
  t.equal(res.json().errorCode, 'invalid_query_string')
  const big = await app.inject({ url: '/api/v2/client-grants', query: { take: '101' }, headers: bearer(token) })
  t.equal(big.statusCode, 400, 'take is at most 100, as at Auth0')
})

t.test('auth0 v4: blacklists.add answers like Auth0 (204) and getAll lists it', async (t) => {
  const { app, fetch, token } = await serve(t)
  const management = new ManagementClientV4({ domain: 'tenant.test', token, fetch })
  const added = await management.blacklists.add({ aud: AUDIENCE, jti: 'partner-jti' })
  t.equal(added.status, 204)
  const listed = await management.blacklists.getAll({ aud: AUDIENCE })
  t.same(listed.data, [{ aud: AUDIENCE, jti: 'partner-jti' }])
  t.equal((await app.inject({ url: '/orders', headers: bearer(await sign(key, { jti: 'partner-jti' })) })).statusCode, 401, 'the blacklisted token is refused')
})
