// The audit trail from the command line: --reason and --actor on every write, and
// `history` as a table or JSON, against a FileStore and through a server's admin routes.
import { mkdtemp, rm } from 'node:fs/promises'
import { hostname, tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import { PassThrough, Readable } from 'node:stream'
import t from 'tap'
import { startExampleServer } from '../../examples/demo.js'
import { MANAGEMENT, ORDERS } from '../../examples/server.js'
import { main } from '../../src/cli/main.js'

interface Run { code: number, stdout: string, stderr: string }

async function cli (args: string[], env: NodeJS.ProcessEnv = {}, input = ''): Promise<Run> {
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  let out = ''
  let err = ''
  stdout.on('data', (c: Buffer) => { out += c })
  stderr.on('data', (c: Buffer) => { err += c })
  const code = await main(args, { stdin: Readable.from([input]), stdout, stderr, env })
  return { code, stdout: out, stderr: err }
}

interface Entry { type: string, jti?: string, clientId?: string, action?: string, actor: string | null, reason: string | null, source: string, at: number }

t.test('FileStore: --reason and --actor recorded on every write; history as a table and as JSON', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'cli-history-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const store = ['--store', `file:${dir}`]
  const ok = async (args: string[], input?: string) => {
    const run = await cli([...args, ...store], {}, input)
    t.equal(run.code, 0, `${args.join(' ')}: ${run.stderr}`)
    return run
  }
  await ok(['revoke-token', '--aud', 'https://api', '--jti', 'leaked', '--expires-in', '1h', '--reason', 'pasted in a ticket', '--actor', 'alice'])
  await ok(['revoke-client', 'partner', '--audience', 'https://api', '--reason', 'contract ended'])
  await ok(['revoke-subject', 'user-1', '--actor', 'bob', '--reason', 'account closed'])
  const grant = JSON.parse((await ok(['grants', 'create', '--client', 'p2', '--audience', 'https://api', '--json', '--reason', 'onboarding'])).stdout) as { id: string }
  await ok(['grants', 'update', grant.id, '--scope', 'read:x', '--reason', 'narrowed'])
  await ok(['grants', 'delete', grant.id, '--reason', 'offboarded'])
  await ok(['import', '-', '--aud', 'https://api', '--reason', 'bulk from the gateway logs'], 'i-1\ni-2\n')

  const json = await ok(['history', '--json'])
  const entries = JSON.parse(json.stdout) as Entry[]
  const me = `${userInfo().username}@${hostname()}`
  t.ok(entries.every((e) => e.source === 'cli'), 'source cli')
  t.ok(entries.every((e, i) => i === 0 || e.at <= entries[i - 1]!.at), 'newest first')
  t.match(entries.at(-1), { type: 'token', jti: 'leaked', actor: 'alice', reason: 'pasted in a ticket' }, '--actor and --reason')
  t.match(entries.find((e) => e.type === 'client' && e.reason === 'contract ended'), { clientId: 'partner', actor: me }, 'the actor defaults to user@host')
  t.match(entries.find((e) => e.type === 'subject'), { actor: 'bob', reason: 'account closed' })
  t.same(entries.filter((e) => e.type === 'grant').map((e) => [e.action, e.reason]), [['delete', 'offboarded'], ['update', 'narrowed'], ['create', 'onboarding']])
  t.match(entries[0], { type: 'tokens', reason: 'bulk from the gateway logs' }, 'an import batch is one entry with its reason')

  const text = (await ok(['history'])).stdout
  const [header, ...rows] = text.trimEnd().split('\n')
  t.match(header, /^TIME\s+TYPE\s+WHAT\s+ACTOR\s+SOURCE\s+REASON$/)
  t.equal(rows.length, entries.length)
  t.match(rows.at(-1), /^\d{4}-\d\d-\d\dT\S+Z\s+token\s+token leaked for https:\/\/api\s+alice\s+cli\s+pasted in a ticket$/)

  const byClient = JSON.parse((await ok(['history', '--client', 'partner', '--json'])).stdout) as Entry[]
  t.same(byClient.map((e) => e.type), ['client'], '--client filters')
  t.same(JSON.parse((await ok(['history', '--limit', '2', '--json'])).stdout).length, 2, '--limit')
  t.same(JSON.parse((await ok(['history', '--since', '1h', '--json'])).stdout).length, entries.length, '--since 1h: all of them')
  t.same(JSON.parse((await ok(['history', '--until', new Date(entries.at(-1)!.at).toISOString(), '--json'])).stdout), [], '--until an ISO date-time')
})

t.test('history prints reasons as text: control characters never reach the terminal', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'cli-history-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const store = ['--store', `file:${dir}`]
  t.equal((await cli(['revoke-subject', 'u', '--reason', 'line one\n2026-01-01T00:00:00.000Z  token  forged\u001b[2J', ...store])).code, 0)
  const text = (await cli(['history', ...store])).stdout
  t.equal(text.trimEnd().split('\n').length, 2, 'one row: a newline in a reason forges none')
  t.notMatch(text, '\u001b', 'no escape sequence')
  t.match(JSON.parse((await cli(['history', '--json', ...store])).stdout)[0].reason, 'line one\n', 'JSON keeps the reason as written')
})

t.test('strict flags: unknown ones with did-you-mean, --reason on a listing, bad values', async (t) => {
  const store = ['--store', 'file:/nowhere']
  const typo = await cli(['history', '--sinse', '1h', ...store])
  t.equal(typo.code, 2)
  t.match(typo.stderr, /unknown option --sinse \(did you mean --since\?\)/)
  t.match((await cli(['revoke-token', '--aud', 'a', '--jti', 'j', '--reson', 'x', ...store])).stderr, /did you mean --reason\?/)
  t.match((await cli(['list-revoked', '--reason', 'x', ...store])).stderr, /unknown option --reason/, 'a read command takes no reason')
  const listing = await cli(['grants', 'list', '--reason', 'x', ...store])
  t.equal(listing.code, 2)
  t.match(listing.stderr, /--reason goes with a change/)
  t.match((await cli(['revoke-subject', 'u', '--reason', 'x'.repeat(501), ...store])).stderr, /--reason must be 1 to 500 characters/)
  t.match((await cli(['history', '--since', 'yesterday', ...store])).stderr, /--since must be a duration/)
  t.match((await cli(['history', '--limit', '501', ...store])).stderr, /--limit must be a whole number from 1 to 500/)
  const help = await cli(['history', '--help'])
  t.match(help.stdout, /Usage: fastify-jwt-revocation history/)
  t.match((await cli(['revoke-client', '--help'])).stdout, /--reason <text>.*\n.*--actor <name>/)
})

t.test('--admin: the reason travels to the server, which records the admin token\'s sub; --actor is refused', async (t) => {
  const server = await startExampleServer()
  t.teardown(server.close)
  const { app, url } = server
  const res = await app.inject({ method: 'POST', url: '/oauth/token', payload: { grant_type: 'client_credentials', client_id: 'admin', client_secret: 'admin-secret', audience: MANAGEMENT } })
  const env = { FASTIFY_JWT_REVOCATION_TOKEN: (res.json() as { access_token: string }).access_token }
  const admin = ['--admin', `${url}/api/v2`]
  const cut = await cli(['revoke-client', 'partner', '--audience', ORDERS, '--reason', 'contract ended', ...admin], env)
  t.equal(cut.code, 0, cut.stderr)
  const grant = (await app.revocation.listGrants({ client_id: 'partner', audience: ORDERS }))[0]!
  t.equal((await cli(['grants', 'delete', grant.id, '--reason', 'offboarded & archived', ...admin], env)).code, 0)
  const forged = await cli(['revoke-subject', 'u', '--actor', 'someone-else', ...admin], env)
  t.equal(forged.code, 2)
  t.match(forged.stderr, /--actor goes with --store/)

  const entries = JSON.parse((await cli(['history', '--aud', ORDERS, '--json', ...admin], env)).stdout) as Entry[]
  t.match(entries.find((e) => e.type === 'client' && e.reason === 'contract ended'), { actor: 'admin@clients', source: 'admin' })
  t.match(entries.find((e) => e.type === 'grant'), { action: 'delete', reason: 'offboarded & archived', actor: 'admin@clients' }, 'a DELETE\'s reason, through the query string')
  t.notOk(entries.some((e) => e.type === 'subject'), 'the refused command wrote nothing')
  t.match((await cli(['history', ...admin], env)).stdout, /client\s+client partner for https:\/\/orders\.example\.com\s+admin@clients\s+admin\s+contract ended/)
})
