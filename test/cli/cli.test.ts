// The command line as operators run it: the built bin in a child process, against a real
// FileStore directory, real Redis and PostgreSQL, and the example server's admin routes.
import { spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough, Readable } from 'node:stream'
import t from 'tap'
import { startExampleServer } from '../../examples/demo.js'
import { MANAGEMENT, ORDERS } from '../../examples/server.js'
import { main } from '../../src/cli/main.js'
import { FileStore } from '../../src/index.js'
import { PostgresStore } from '../../src/stores/postgres.js'
import { RedisStore } from '../../src/stores/redis.js'
import { clusterClient, startCluster } from '../helpers/redis-servers.js'
import { connectPostgres, connectRedis, deleteKeys, PG_URL, REDIS_URL, uniqueName } from '../helpers/services.js'

const bin = join(import.meta.dirname, '..', '..', 'dist', 'esm', 'cli', 'bin.js')

interface Run { code: number | null, stdout: string, stderr: string }

function cli (args: string[], options: { input?: string, env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { env: { ...process.env, ...options.env }, stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => { stdout += c })
    child.stderr.on('data', (c: Buffer) => { stderr += c })
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
    child.stdin.end(options.input ?? '')
  })
}

const HOUR = 3600
const future = () => Math.floor(Date.now() / 1000) + HOUR

t.test('help for every command, usage errors that name what is missing', async (t) => {
  const help = await cli(['--help'])
  t.equal(help.code, 0)
  for (const command of ['revoke-token', 'revoke-client', 'revoke-subject', 'list-revoked', 'grants', 'import', 'purge', 'migrate', 'status']) {
    t.match(help.stdout, command, `${command} is listed`)
    const one = await cli([command, '--help'])
    t.equal(one.code, 0, `${command} --help`)
    t.match(one.stdout, `Usage: fastify-jwt-revocation ${command}`)
  }
  t.match(help.stdout, /Exit codes: 0 .* 1 .* 2 .* 3 .* 4/)
  const none = await cli([])
  t.equal(none.code, 2, 'no command is a usage error')
  const missing = await cli(['revoke-token', '--aud', 'https://api', '--store', 'file:/nowhere'])
  t.equal(missing.code, 2)
  t.match(missing.stderr, /missing --jti\nusage: fastify-jwt-revocation revoke-token/)
  const typo = await cli(['revoke-tokn'])
  t.match(typo.stderr, /did you mean revoke-token\?/)
  const option = await cli(['list-revoked', '--adu', 'x', '--store', 'file:/nowhere'])
  t.equal(option.code, 2)
  t.match(option.stderr, /unknown option --adu \(did you mean --aud\?\)/)
  const target = await cli(['status'])
  t.equal(target.code, 2)
  t.match(target.stderr, /missing the target: --store .* --admin/)
  const both = await cli(['status', '--store', 'file:x', '--admin', 'http://127.0.0.1:1'])
  t.match(both.stderr, /--store or --admin, not both/)
  const plainHttp = await cli(['status', '--admin', 'http://admin.example.com/api/v2', '--token', 't'])
  t.equal(plainHttp.code, 2, 'an admin token is never sent over plain http off this machine')
  const nowhere = await cli(['status', '--store', `file:${join(tmpdir(), uniqueName('absent'))}`])
  t.equal(nowhere.code, 3, 'a mistyped directory is not silently created')
  t.match(nowhere.stderr, /no FileStore at .*the directory does not exist/)
})

t.test('FileStore: every command, then the store as a server would read it', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'cli-file-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const store = ['--store', `file:${dir}`]
  const exp = future()
  t.equal((await cli(['revoke-token', '--aud', 'https://api', '--jti', 'leaked', '--exp', String(exp), ...store])).code, 0)
  t.equal((await cli(['revoke-client', 'partner', '--audience', 'https://api', ...store])).code, 0)
  t.equal((await cli(['revoke-subject', 'user-1', ...store])).code, 0)
  const listed = await cli(['list-revoked', '--json', ...store])
  t.same(JSON.parse(listed.stdout), [{ aud: 'https://api', jti: 'leaked', expiresAt: exp * 1000 }])
  t.match((await cli(['list-revoked', ...store])).stdout, /AUDIENCE\s+JTI\s+EXPIRES\nhttps:\/\/api\s+leaked\s+\d{4}-/)

  const created = await cli(['grants', 'create', '--client', 'partner', '--audience', 'https://api', '--scope', 'read:orders write:orders', '--json', ...store])
  const grant = JSON.parse(created.stdout) as { id: string, scope: string[] }
  t.same(grant.scope, ['read:orders', 'write:orders'])
  const updated = await cli(['grants', 'update', grant.id, '--scope', 'read:orders', '--json', ...store])
  t.same(JSON.parse(updated.stdout).scope, ['read:orders'], 'narrowed')
  t.match((await cli(['grants', 'list', '--client', 'partner', ...store])).stdout, new RegExp(`${grant.id}\\s+partner\\s+https://api\\s+read:orders\\n`))
  t.equal((await cli(['grants', 'delete', grant.id, ...store])).code, 0)
  const again = await cli(['grants', 'delete', grant.id, ...store])
  t.equal(again.code, 1)
  t.match(again.stderr, /no grant/)
  t.match((await cli(['grants', 'frobnicate', ...store])).stderr, /unknown grants action/)

  const lines = ['# exported from the gateway logs', 'j-1', 'j-2', '', `{"jti":"j-3","aud":"https://other","exp":${exp}}`, 'two words',
    '{"jti": ', `{"jti":"j-4","exp":${Math.floor(Date.now() / 1000) - 10}}`, '{"aud":"https://api"}', 'j-1']
  await writeFile(join(dir, '..', `${dir.split('/').pop()}.txt`), lines.join('\n') + '\n')
  const imported = await cli(['import', join(dir, '..', `${dir.split('/').pop()}.txt`), '--aud', 'https://api', '--expires-in', '30d', '--json', ...store])
  t.teardown(() => rm(join(dir, '..', `${dir.split('/').pop()}.txt`), { force: true }))
  t.equal(imported.code, 4, 'refused lines: exit 4')
  const report = JSON.parse(imported.stdout) as { lines: number, revoked: number, refused: Array<{ line: number, reason: string }> }
  t.equal(report.lines, 10)
  t.equal(report.revoked, 4, 'j-1, j-2, j-3, and j-1 again')
  t.same(report.refused.map((r) => r.line), [6, 7, 8, 9], 'each refused line by its number')
  t.match(report.refused[2]!.reason, /exp has passed/)
  t.match(report.refused[3]!.reason, /no jti/)
  const text = await cli(['import', '-', '--aud', 'https://api', ...store], { input: 'k-1\nk 2\n' })
  t.match(text.stdout, /revoked 1 tokens from 2 lines; refused 1 lines\n {2}line 2: jti contains whitespace/)
  t.match(text.stdout, /warning: 1 tokens had no exp and no --exp\/--expires-in was given: they are kept until removed by hand/, 'an import without expiry says it keeps its entries')
  const dated = await cli(['import', '-', '--aud', 'https://api', '--expires-in', '1h', '--json', ...store], { input: 'k-3\n{"jti":"k-4"}\n' })
  t.equal(JSON.parse(dated.stdout).keptUntilRemoved, 0, 'with --expires-in nothing is kept forever')
  const mixed = await cli(['import', '-', '--aud', 'https://api', '--json', ...store], { input: `{"jti":"k-5","exp":${Math.floor(Date.now() / 1000) + 60}}\nk-6\n` })
  t.equal(JSON.parse(mixed.stdout).keptUntilRemoved, 1, 'a line with its own exp is not counted')

  const status = JSON.parse((await cli(['status', '--json', ...store])).stdout)
  t.same(status, { target: `FileStore ${dir}`, revokedTokens: 9, grants: 0 }, 'five, and the four of the expiry checks')
  t.same(JSON.parse((await cli(['purge', '--json', ...store])).stdout), { purged: 0 })

  // The effect, as the plugin reads it.
  const fileStore = new FileStore({ path: dir })
  t.teardown(() => fileStore.close())
  const ask = (query: Parameters<FileStore['lookup']>[0]) => fileStore.lookup(query)
  t.equal((await ask({ audiences: ['https://api'], jti: 'leaked', includeGrant: false })).tokenRevoked, true)
  t.equal((await ask({ audiences: ['https://other'], jti: 'j-3', includeGrant: false })).tokenRevoked, true, 'a JSON line\'s own audience')
  t.equal((await ask({ audiences: ['https://api'], jti: 'k-1', includeGrant: false })).tokenRevoked, true, 'from stdin')
  t.ok((await ask({ audiences: ['https://api'], clientId: 'partner', includeGrant: false })).clientRevokedAt, 'client revoked')
  t.ok((await ask({ audiences: ['https://api'], subject: 'user-1', includeGrant: false })).subjectRevokedAt, 'subject revoked')
  const expiry = (await fileStore.listRevokedTokens({ aud: 'https://api' })).find((e) => e.jti === 'j-1')!.expiresAt!
  t.ok(Math.abs(expiry - (Date.now() + 30 * 86400_000)) < 60_000, '--expires-in 30d sets the expiry')
})

t.test('Redis: cut a partner off from a shell, import through one script per batch', async (t) => {
  const client = await connectRedis(t)
  if (!client) return
  const prefix = `{${uniqueName('cli')}}:`
  t.teardown(() => deleteKeys(client, prefix))
  const store = ['--store', REDIS_URL, '--prefix', prefix]
  const cut = await cli(['revoke-client', 'partner', '--audience', 'https://api', ...store])
  t.equal(cut.code, 0, cut.stderr)
  const redisStore = new RedisStore({ client, prefix })
  t.ok((await redisStore.lookup({ audiences: ['https://api'], clientId: 'partner', includeGrant: false })).clientRevokedAt, 'the partner is revoked in Redis')
  const jtis = Array.from({ length: 12_000 }, (_, i) => `r-${i}`)
  const imported = await cli(['import', '-', '--aud', 'https://api', '--expires-in', '1h', '--json', ...store], { input: jtis.join('\n') })
  t.equal(imported.code, 0, imported.stderr)
  t.equal(JSON.parse(imported.stdout).revoked, 12_000)
  const listed = await redisStore.listRevokedTokens({ aud: 'https://api' })
  t.equal(listed.length, 12_000)
  t.ok(listed.find((e) => e.jti === 'r-11999')!.expiresAt! > Date.now() + 3_500_000, 'entries expire with --expires-in')
  // list-revoked writes page after page (Redis: many buckets, at most 10,000 tokens each): one JSON array, one table.
  const asJson = await cli(['list-revoked', '--aud', 'https://api', '--json', ...store])
  t.equal(asJson.code, 0, asJson.stderr)
  const streamed = JSON.parse(asJson.stdout) as Array<{ jti: string }>
  t.same(streamed.map((e) => e.jti).sort(), [...jtis].sort(), 'every token once, as one JSON array')
  t.equal(asJson.stdout, JSON.stringify(streamed, null, 2) + '\n', 'written as JSON.stringify would')
  const asTable = (await cli(['list-revoked', '--aud', 'https://api', ...store])).stdout.trimEnd().split('\n')
  t.equal(asTable.length, 12_001, 'a table of one header and a row per token')
  t.equal(asTable.filter((line) => line.startsWith('AUDIENCE')).length, 1, 'the header once')
  const empty = await cli(['list-revoked', '--aud', 'https://nothing-here', '--json', ...store])
  t.equal(empty.stdout, '[]\n', 'nothing listed: an empty array')
  const bad = await cli(['status', '--store', 'redis://127.0.0.1:1'])
  t.equal(bad.code, 1)
  t.match(bad.stderr, /cannot reach Redis at redis:\/\/127\.0\.0\.1:1/)
})

t.test('Redis Cluster: the URL of any node opens the Cluster; an import lands on every primary', async (t) => {
  const cluster = await startCluster(t)
  if (!cluster) return
  const client = clusterClient(t, cluster)
  const prefix = '{cli-cluster}:'
  // Node 2 holds neither the prefix's slot nor every bucket: a plain client would be MOVED.
  const store = ['--store', `redis://127.0.0.1:${cluster.nodes[2]!.port}`, '--prefix', prefix]
  const jtis = Array.from({ length: 3000 }, (_, i) => `c-${i}`)
  const imported = await cli(['import', '-', '--aud', 'https://api', '--expires-in', '1h', '--json', ...store], { input: jtis.join('\n') })
  t.equal(imported.code, 0, imported.stderr)
  t.equal(JSON.parse(imported.stdout).revoked, 3000)
  const cut = await cli(['revoke-client', 'partner', '--audience', 'https://api', ...store])
  t.equal(cut.code, 0, cut.stderr)
  const redisStore = new RedisStore({ client, prefix })
  const states = await Promise.all(['c-0', 'c-2999', 'not-imported'].map((jti) => redisStore.lookup({ audiences: ['https://api'], jti, clientId: 'partner', includeGrant: false })))
  t.same(states.map((s) => s.tokenRevoked), [true, true, false], 'the imported jtis are revoked, no other')
  t.ok(states[2]!.clientRevokedAt, 'the partner is revoked in the Cluster')
  const keys = await Promise.all(client.nodes('master').map((node) => node.keys('cli-cluster:t:{*')))
  t.ok(keys.every((k) => k.length > 0), `buckets on every primary (${keys.map((k) => k.length).join(', ')})`)
})

t.test('Redis: migrate moves tokens of the previous layout online, each refused throughout', async (t) => {
  const client = await connectRedis(t)
  if (!client) return
  const prefix = `{${uniqueName('cli-migrate')}}:`
  t.teardown(() => deleteKeys(client, prefix))
  // The previous layout, as earlier versions wrote it: a key per token and the index.
  const legacy = Array.from({ length: 3000 }, (_, i) => `old-${i}`)
  const expiresAt = Date.now() + 3_600_000
  const write = client.pipeline()
  for (const jti of legacy) write.set(`${prefix}t:https://api\u0000${jti}`, '1', 'PX', 3_600_000).zadd(`${prefix}tokens`, expiresAt, `https://api\u0000${jti}`)
  write.zadd(`${prefix}tokens`, Date.now() - 1000, 'https://api\u0000long-gone')
  await write.exec()
  const store = new RedisStore({ client, prefix })
  let passed = 0
  let lookups = 0
  let migrating = true
  const traffic = (async () => {
    while (migrating) {
      const states = await Promise.all(legacy.filter((_, i) => i % 50 === lookups % 50).map((jti) => store.lookup({ audiences: ['https://api'], jti, includeGrant: false })))
      passed += states.filter((s) => !s.tokenRevoked).length
      lookups++
    }
  })()
  const migrated = await cli(['migrate', '--json', '--store', REDIS_URL, '--prefix', prefix])
  migrating = false
  await traffic
  t.equal(migrated.code, 0, migrated.stderr)
  t.same(JSON.parse(migrated.stdout), { moved: 3000 }, 'every live token moved, the expired one dropped')
  t.ok(lookups > 0, `${lookups} rounds of lookups ran during the migration`)
  t.equal(passed, 0, 'no token passed while it moved')
  t.equal(await client.exists(`${prefix}tokens`, `${prefix}t:https://api\u0000old-0`), 0, 'the old keys are gone')
  for (const jti of ['old-0', 'old-1500', 'old-2999']) {
    t.equal((await store.lookup({ audiences: ['https://api'], jti, includeGrant: false })).tokenRevoked, true, `${jti} refused from its bucket`)
  }
  t.equal((await store.listRevokedTokens({ aud: 'https://api' })).find((e) => e.jti === 'old-7')?.expiresAt, expiresAt, 'with its expiry')
})

t.test('PostgreSQL: grants and an import through multi-row statements', async (t) => {
  const pool = await connectPostgres(t)
  if (!pool) return
  const tablePrefix = uniqueName('cli').toLowerCase() + '_'
  t.teardown(async () => {
    for (const table of ['schema', 'tokens', 'clients', 'subjects', 'sessions', 'grants', 'leases']) await pool.query(`DROP TABLE IF EXISTS ${tablePrefix}${table}`)
  })
  const store = ['--store', PG_URL, '--prefix', tablePrefix]
  const created = await cli(['grants', 'create', '--client', 'partner', '--audience', 'https://api', '--scope', 'read:orders', '--json', ...store])
  t.equal(created.code, 0, created.stderr)
  const imported = await cli(['import', '-', '--json', ...store], { input: Array.from({ length: 7000 }, (_, i) => JSON.stringify({ aud: 'https://api', jti: `p-${i}` })).join('\n') })
  t.equal(JSON.parse(imported.stdout).revoked, 7000)
  const pgStore = new PostgresStore({ pool, tablePrefix })
  t.equal((await pgStore.listRevokedTokens({ aud: 'https://api' })).length, 7000)
  t.equal((await cli(['grants', 'delete', JSON.parse(created.stdout).id, ...store])).code, 0)
  t.ok((await pgStore.lookup({ audiences: ['https://api'], clientId: 'partner', includeGrant: true })).clientRevokedAt, 'deleting a grant revokes the client for that audience')
  t.same(JSON.parse((await cli(['status', '--json', ...store])).stdout).revokedTokens, 7000)
})

t.test('a FileStore held by a server is refused; --admin goes through the server', async (t) => {
  const server = await startExampleServer()
  t.teardown(server.close)
  const { app, dataDir, url: address } = server
  const token = async (clientId: string, secret: string, audience: string) => {
    const res = await app.inject({ method: 'POST', url: '/oauth/token', payload: { grant_type: 'client_credentials', client_id: clientId, client_secret: secret, audience } })
    return (res.json() as { access_token: string }).access_token
  }
  const held = await cli(['status', '--store', `file:${join(dataDir, 'revocations')}`])
  t.equal(held.code, 3)
  t.match(held.stderr, /held by a running server \(process \d+\).*--admin <url of the admin routes> --token/)

  const admin = ['--admin', `${address}/api/v2`]
  const env = { FASTIFY_JWT_REVOCATION_TOKEN: await token('admin', 'admin-secret', MANAGEMENT) }
  const partner = await token('partner', 'partner-secret', ORDERS)
  const call = async () => (await app.inject({ url: '/api/orders', headers: { authorization: `Bearer ${partner}` } })).statusCode
  t.equal(await call(), 200)
  const jti = JSON.parse(Buffer.from(partner.split('.')[1]!, 'base64url').toString()).jti as string
  const input = ['x-1', jti, '{"jti":"y-1","aud":"https://orders.example.com/"}', 'x-2'].join('\n')
  const imported = await cli(['import', '-', '--aud', ORDERS, '--json', ...admin], { env, input })
  t.equal(imported.code, 4, imported.stderr)
  const report = JSON.parse(imported.stdout) as { revoked: number, refused: Array<{ line: number, reason: string }> }
  t.equal(report.revoked, 3)
  t.same(report.refused.map((r) => r.line), [3], 'an audience the server does not accept (a trailing slash) refuses that line only')
  t.match(report.refused[0]!.reason, /must be an audience this API accepts/)
  t.equal(await call(), 401, 'the imported jti is refused on the next call')
  t.same((JSON.parse((await cli(['list-revoked', '--aud', ORDERS, '--json', ...admin], { env })).stdout) as Array<{ jti: string }>).map((e) => e.jti).sort(), [jti, 'x-1', 'x-2'].sort())

  const fresh = await token('partner', 'partner-secret', ORDERS)
  t.equal((await cli(['revoke-client', 'partner', '--audience', ORDERS, ...admin], { env })).code, 0)
  t.equal((await app.inject({ url: '/api/orders', headers: { authorization: `Bearer ${fresh}` } })).statusCode, 401, 'the partner is cut off')
  const grants = JSON.parse((await cli(['grants', 'list', '--client', 'partner', '--json', ...admin], { env })).stdout) as Array<{ audience: string }>
  t.same(grants.map((g) => g.audience).sort(), [ORDERS, 'https://reports.example.com'])
  t.match(JSON.parse((await cli(['status', '--json', ...admin], { env })).stdout), { revokedTokens: 3, grants: 3 })
  const purge = await cli(['purge', ...admin], { env })
  t.equal(purge.code, 2)
  t.match(purge.stderr, /purge works on a store/)
  const wrong = await cli(['status', ...admin, '--token', 'not-a-token'])
  t.equal(wrong.code, 3, 'a refused token is exit 3')
  t.match(wrong.stderr, /answered 401/)
  t.notMatch(wrong.stderr, /not-a-token/, 'the token is not echoed')
})

t.test('import shows its progress on a terminal, and only there', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'cli-tty-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const run = async (isTTY: boolean) => {
    const stderr = Object.assign(new PassThrough(), { isTTY })
    let progress = ''
    stderr.on('data', (c: Buffer) => { progress += c })
    const stdout = new PassThrough()
    stdout.resume()
    const stdin = Readable.from(Array.from({ length: 20_000 }, (_, i) => `tty-${i}\n`))
    const code = await main(['import', '-', '--aud', 'https://api', '--store', `file:${dir}`], { stdin, stdout, stderr, env: {} })
    return { code, progress }
  }
  const tty = await run(true)
  t.equal(tty.code, 0)
  t.match(tty.progress, /\r20,000 lines read, 20,000 revoked, 0 refused\n$/, 'a progress line, rewritten in place')
  t.equal((await run(false)).progress, '', 'nothing when stderr is not a terminal (a script, a pipe)')
})
