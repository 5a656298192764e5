import { execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { runDemo, startExampleServer } from '../../examples/demo.js'
import { auth0FromEnv, banner, buildExampleServer, MANAGEMENT, ORDERS } from '../../examples/server.js'
import { Auth0StandIn } from '../helpers/auth0-stand-in.js'

async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

t.test('npm run demo: every step of the partner story behaves as printed', async (t) => {
  const server = await startExampleServer()
  t.teardown(server.close)
  const lines: string[] = []
  const steps = await runDemo(server.url, (line) => lines.push(line))
  t.equal(steps.length, 26)
  t.ok(steps.every((s) => s.status === s.expected))
  t.same(steps.map((s) => s.status), [200, 200, 200, 204, 401, 200, 200, 200, 200, 401, 401, 401, 200, 204, 401, 403, 200, 401, 201, 200, 200, 204, 401, 200, 202, 401])
  t.match(lines.join('\n'), /The API refuses it within the list's ttl \(2 s\): 401 — The token has been revoked/)
  t.match(lines.join('\n'), /A thief sends the stolen token with a proof from its own key: 401 — invalid_token: The token is not bound to the key of the DPoP proof/)
  t.match(lines.join('\n'), /DPoP-bound token: 200 — token_type dpop, cnf\.jkt [A-Za-z0-9_-]{43}/)
  t.match(lines.join('\n'), /The partner is cut off on the next request: 401 — The token has been revoked/)
  t.match(lines.at(-1), /Every step behaved as described/)
})

t.test("the start-up banner's curl commands work as printed", async (t) => {
  const server = await startExampleServer()
  t.teardown(server.close)
  const text = banner(server.url)
  const script = text.slice(text.indexOf('(copy and paste):') + 17, text.indexOf('Or run the whole story'))
  const { stdout } = await promisify(execFile)('bash', ['-euo', 'pipefail', '-c', script], { timeout: 30_000 })
  const statuses = [...stdout.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]))
  t.same(statuses, [200, 204, 401, 204], 'API 200, blacklist 204, API 401, grant deleted 204')
  t.notOk(stdout.includes('undefined'), 'every extracted value was found')
})

t.test('the issuer: Basic auth, form bodies, wrong secrets, unknown audiences', async (t) => {
  const server = await startExampleServer()
  t.teardown(server.close)
  const post = (body: string, headers: Record<string, string>) => fetch(`${server.url}/oauth/token`, { method: 'POST', body, headers })
  const basic = 'Basic ' + Buffer.from('partner:partner-secret').toString('base64')
  const ok = await post(`grant_type=client_credentials&audience=${encodeURIComponent(ORDERS)}`, { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' })
  t.equal(ok.status, 200)
  t.equal(ok.headers.get('cache-control'), 'no-store')
  const claims = JSON.parse(Buffer.from((await ok.json() as { access_token: string }).access_token.split('.')[1]!, 'base64url').toString())
  t.match(claims, { iss: `${server.url}/`, aud: ORDERS, sub: 'partner@clients', azp: 'partner', client_id: 'partner', scope: 'read:orders', jti: /^[0-9a-f-]{36}$/ })
  t.equal(claims.exp - claims.iat, 30 * 86400)
  const wrong = await post(JSON.stringify({ grant_type: 'client_credentials', client_id: 'partner', client_secret: 'nope', audience: ORDERS }), { 'content-type': 'application/json' })
  t.equal(wrong.status, 401)
  t.equal((await wrong.json() as { error: string }).error, 'invalid_client')
  const unknown = await post(JSON.stringify({ grant_type: 'client_credentials', client_id: 'partner', client_secret: 'partner-secret', audience: 'https://nope' }), { 'content-type': 'application/json' })
  t.equal(unknown.status, 400)
  const grantType = await post(JSON.stringify({ grant_type: 'password' }), { 'content-type': 'application/json' })
  t.equal((await grantType.json() as { error: string }).error, 'unsupported_grant_type')
})

t.test('npm start twice: the second walk-through works as printed (each start begins from the config; KEEP_DATA=1 keeps the data)', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'example-npm-start-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))
  const walkThrough = async (env: Record<string, string>): Promise<number[]> => {
    const port = await freePort()
    const child = spawn(process.execPath, ['--import', 'tsx', 'examples/server.ts'], {
      cwd: join(import.meta.dirname, '..', '..'),
      env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', DATA_DIR: dataDir, ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    try {
      let output = ''
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString(); if (output.includes('KEEP_DATA')) resolve() })
        child.once('exit', (code) => reject(new Error(`the example exited (${code}) before it printed its banner`)))
      })
      const script = output.slice(output.indexOf('(copy and paste):') + 17, output.indexOf('Or run the whole story'))
      const { stdout } = await promisify(execFile)('bash', ['-euo', 'pipefail', '-c', script], { timeout: 30_000 })
      return [...stdout.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]))
    } finally {
      child.kill('SIGTERM')
      await once(child, 'exit')
    }
  }
  t.same(await walkThrough({ KEEP_DATA: '0' }), [200, 204, 401, 204], 'first start')
  t.same(await walkThrough({ KEEP_DATA: '0' }), [200, 204, 401, 204], 'second start: the grant deleted by the first is seeded again')
  const kept = await walkThrough({ KEEP_DATA: '1' }).catch((err: Error) => err)
  t.ok(kept instanceof Error, 'with KEEP_DATA=1 the deleted grant stays deleted, so step 1 gets no token')
})

t.test('a deleted grant stays deleted across a restart (no re-seeding)', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'example-restart-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))
  const first = await buildExampleServer({ publicUrl: 'http://127.0.0.1:1', dataDir })
  const [grant] = await first.revocation.listGrants({ client_id: 'partner', audience: ORDERS })
  await first.revocation.deleteGrant(grant!.id)
  await first.close()
  const second = await buildExampleServer({ publicUrl: 'http://127.0.0.1:1', dataDir })
  t.teardown(() => second.close())
  t.same(await second.revocation.listGrants({ client_id: 'partner', audience: ORDERS }), [])
})

t.test('with AUTH0_DOMAIN set, the example mirrors the tenant: a grant deleted there refuses the partner here', async (t) => {
  const tenant = await new Auth0StandIn().start()
  t.teardown(() => tenant.stop())
  const grant = tenant.addGrant('partner', ORDERS, ['read:orders'])
  const auth0 = auth0FromEnv({ AUTH0_DOMAIN: tenant.url, AUTH0_CLIENT_ID: tenant.clientId, AUTH0_CLIENT_SECRET: tenant.clientSecret })
  const server = await startExampleServer({ auth0: auth0! })
  t.teardown(server.close)
  const app = server.app
  // The first sync starts once the app is ready and may already have mirrored the tenant's grant: only that one may be here.
  t.same((await app.revocation.listGrants({ client_id: 'partner', audience: ORDERS })).filter((g) => g.id !== grant.id), [], 'no local seed for a synced audience')
  await app.auth0Sync.syncNow()
  const issued = await app.inject({ method: 'POST', url: '/oauth/token', payload: { grant_type: 'client_credentials', client_id: 'partner', client_secret: 'partner-secret', audience: ORDERS } })
  t.equal(issued.statusCode, 200, issued.body)
  const token = (issued.json() as { access_token: string }).access_token
  t.equal((await app.inject({ url: '/api/orders', headers: { authorization: `Bearer ${token}` } })).statusCode, 200, 'the grant mirrored from the tenant admits the partner')
  tenant.deleteGrant(grant.id)
  await app.auth0Sync.syncNow()
  t.equal((await app.inject({ url: '/api/orders', headers: { authorization: `Bearer ${token}` } })).statusCode, 401, 'deleted at the tenant: refused here')
})

t.test('AUTH0_* variables: off without AUTH0_DOMAIN, a clear error when the credentials are missing', async (t) => {
  t.equal(auth0FromEnv({}), undefined)
  t.throws(() => auth0FromEnv({ AUTH0_DOMAIN: 'tenant.auth0.com', AUTH0_CLIENT_ID: 'id' }), /AUTH0_CLIENT_ID and AUTH0_CLIENT_SECRET are needed/)
  t.same(auth0FromEnv({ AUTH0_DOMAIN: 'tenant.auth0.com', AUTH0_CLIENT_ID: 'id', AUTH0_CLIENT_SECRET: 's', AUTH0_SYNC_INTERVAL: '1m' }), { domain: 'tenant.auth0.com', clientId: 'id', clientSecret: 's', interval: '1m' })
})

t.test('a Prometheus scrape of /metrics shows decisions by outcome and reason', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'example-metrics-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))
  const app = await buildExampleServer({ publicUrl: 'http://127.0.0.1:1', dataDir })
  t.teardown(() => app.close())
  // Counters are per process and earlier tests in this file count too: compare before and after.
  const decisions = async (outcome: string, reason: string) => {
    const scrape = await app.inject({ url: '/metrics' })
    t.equal(scrape.statusCode, 200)
    t.match(scrape.headers['content-type'], /^text\/plain/)
    const line = new RegExp(`^jwt_revocation_decisions_total\\{outcome="${outcome}",reason="${reason}"[^}]*\\} (\\d+)$`, 'm').exec(scrape.body)
    return Number(line?.[1] ?? 0)
  }
  const missing = await decisions('refused', 'missing')
  const malformed = await decisions('refused', 'malformed')
  t.equal((await app.inject({ url: '/api/orders' })).statusCode, 401)
  t.equal((await app.inject({ url: '/api/orders' })).statusCode, 401)
  t.equal((await app.inject({ url: '/api/orders?access_token=x' })).statusCode, 400)
  t.equal(await decisions('refused', 'missing'), missing + 2, 'two requests without a token')
  t.equal(await decisions('refused', 'malformed'), malformed + 1, 'one with a token in the query string')
})

t.test('the example serves readiness at /health/ready', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'example-health-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))
  const app = await buildExampleServer({ publicUrl: 'http://127.0.0.1:1', dataDir })
  t.teardown(() => app.close())
  const res = await app.inject({ url: '/health/ready' })
  t.equal(res.statusCode, 200)
  t.match(res.json(), { status: 'ok', checks: { store: { status: 'up' }, feed: { status: 'up' }, keys: { status: 'unknown', source: 'issuerBaseURL' } } })
})

t.test('POST /admin/logout: the issuer posts a Logout Token to the API, which logs the user out', async (t) => {
  const server = await startExampleServer()
  t.teardown(server.close)
  const token = async (client: string, secret: string, audience: string) => {
    const res = await fetch(`${server.url}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ grant_type: 'client_credentials', client_id: client, client_secret: secret, audience }) })
    return (await res.json() as { access_token: string }).access_token
  }
  const partner = await token('partner', 'partner-secret', ORDERS)
  const admin = await token('admin', 'admin-secret', MANAGEMENT)
  const orders = () => fetch(`${server.url}/api/orders`, { headers: { authorization: `Bearer ${partner}` } }).then((r) => r.status)
  const logout = (body: unknown, bearer = admin) => fetch(`${server.url}/admin/logout`, { method: 'POST', headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' }, body: JSON.stringify(body) })
  t.equal(await orders(), 200)

  const session = await logout({ sid: 'a-browser-session' })
  t.equal(session.status, 200)
  t.same(await session.json(), { status: 200 }, 'the API accepted the Logout Token for a session')
  t.equal(await orders(), 200, 'a token without that session is untouched')

  const user = await logout({ sub: 'partner@clients' })
  t.same(await user.json(), { status: 200 }, 'the API accepted the Logout Token for the user')
  t.equal(await orders(), 401, 'every token of the user is refused on the next request')

  t.equal((await logout({})).status, 400, 'a logout names a session or a user')
  t.equal((await logout({ sub: 'x' }, partner)).status, 401, 'only an admin token may log users out')
  const direct = await fetch(`${server.url}/backchannel-logout`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `logout_token=${partner}` })
  t.equal(direct.status, 400, 'an access token posted as a Logout Token is refused')
  t.equal(direct.headers.get('cache-control'), 'no-store')
})
