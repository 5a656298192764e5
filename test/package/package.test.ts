// The package as users meet it: packed, installed into a fresh Fastify app, used from
// ESM, CommonJS and TypeScript through its public entry points only.
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { connectRedis, deleteKeys, REDIS_URL, uniqueName } from '../helpers/services.js'

const run = promisify(execFile)
const root = join(import.meta.dirname, '..', '..')

const consumerEsm = `
import Fastify from 'fastify'
import { SignJWT } from 'jose'
import jwtRevocation, { FileStore, MemoryStore, adminRoutes } from 'fastify-jwt-revocation'
import { RedisStore } from 'fastify-jwt-revocation/redis'
import { PostgresStore, postgresSchema } from 'fastify-jwt-revocation/postgres'
import { runStoreSuite } from 'fastify-jwt-revocation/testing'
import { ssfReceiver } from 'fastify-jwt-revocation/ssf'
import { backchannelLogout } from 'fastify-jwt-revocation/logout'
import { auth0Sync } from 'fastify-jwt-revocation/auth0'

const secret = 'a-secret-that-is-at-least-32-bytes-long'
const app = Fastify()
await app.register(jwtRevocation, { secret, issuer: 'https://issuer.example/', audience: 'https://api.example', maxTokenLifetime: '1d', store: new FileStore({ path: process.argv[2] }) })
app.get('/orders', { config: { auth: { scopes: ['read:orders'] } } }, async (req) => req.auth.payload.sub)
app.get('/health', { config: { auth: false } }, async () => 'ok')
const sign = (claims, lifetime = 3600) => new SignJWT({ scope: 'read:orders', ...claims }).setProtectedHeader({ alg: 'HS256' })
  .setIssuer('https://issuer.example/').setAudience('https://api.example').setSubject('partner@clients').setIssuedAt().setExpirationTime(Math.floor(Date.now() / 1000) + lifetime)
  .sign(new TextEncoder().encode(secret))
const token = await sign({ jti: 'one' })
const statuses = []
statuses.push((await app.inject({ url: '/orders', headers: { authorization: 'Bearer ' + token } })).statusCode)
await app.revocation.revokeToken({ jti: 'one', aud: 'https://api.example', exp: Math.floor(Date.now() / 1000) + 3600 })
statuses.push((await app.inject({ url: '/orders', headers: { authorization: 'Bearer ' + token } })).statusCode)
statuses.push((await app.inject({ url: '/orders', headers: { authorization: 'Bearer ' + await sign({}, 30 * 86400) } })).statusCode)
statuses.push((await app.inject({ url: '/health' })).statusCode)
await app.close()
console.log(JSON.stringify({ statuses, exports: [typeof MemoryStore, typeof adminRoutes, typeof RedisStore, typeof PostgresStore, typeof postgresSchema, typeof runStoreSuite, typeof ssfReceiver, typeof backchannelLogout, typeof auth0Sync] }))
`

const consumerCjs = `
const { default: jwtRevocation, jwtRevocation: named, MemoryStore } = require('fastify-jwt-revocation')
const { RedisStore } = require('fastify-jwt-revocation/redis')
const { PostgresStore } = require('fastify-jwt-revocation/postgres')
const { ssfReceiver } = require('fastify-jwt-revocation/ssf')
const { backchannelLogout } = require('fastify-jwt-revocation/logout')
const { auth0Sync } = require('fastify-jwt-revocation/auth0')
const Fastify = require('fastify')
;(async () => {
  const app = Fastify()
  await app.register(jwtRevocation, { secret: 'a-secret-that-is-at-least-32-bytes-long', audience: 'a', store: new MemoryStore() })
  app.get('/x', async () => 'x')
  const res = await app.inject({ url: '/x' })
  await app.close()
  console.log(JSON.stringify({ status: res.statusCode, same: jwtRevocation === named, redis: typeof RedisStore, postgres: typeof PostgresStore, ssf: typeof ssfReceiver, logout: typeof backchannelLogout, auth0: typeof auth0Sync }))
})()
`

const consumerTs = `
import Fastify from 'fastify'
import jwtRevocation, { MemoryStore, type AuthContext } from 'fastify-jwt-revocation'
import { RedisStore } from 'fastify-jwt-revocation/redis'
import { Cluster, Redis } from 'ioredis'
const app = Fastify()
// ioredis is the current major (6), installed beside the package without a peer conflict.
void new RedisStore({ client: new Redis({ lazyConnect: true }), subscriber: new Redis({ lazyConnect: true }) })
void new RedisStore({ client: new Cluster([{ host: '127.0.0.1', port: 7000 }], { lazyConnect: true }) })
await app.register(jwtRevocation, { jwksUri: 'https://issuer.example/.well-known/jwks.json', audience: 'https://api.example', store: new MemoryStore() })
app.get('/me', { config: { auth: { scopes: ['profile'] } } }, async (req) => {
  const auth: AuthContext | null = req.auth
  return auth?.clientId
})
const revoked: Promise<void> = app.revocation.revokeClient('partner', { audience: 'https://api.example' })
void revoked
void RedisStore
`

t.test('npm pack, install into a fresh Fastify app, use from ESM, CommonJS and TypeScript', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'jwt-revocation-pack-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const { stdout } = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dir], { cwd: root })
  const [packed] = JSON.parse(stdout) as Array<{ filename: string, files: Array<{ path: string }> }>
  const files = packed!.files.map((f) => f.path)
  t.ok(files.includes('dist/esm/index.js') && files.includes('dist/commonjs/index.js'), 'both builds are packed')
  t.ok(files.includes('README.md') && files.includes('LICENSE') && files.includes('CHANGELOG.md'), 'docs are packed')
  t.notOk(files.some((f) => f.startsWith('test/') || f.startsWith('src/') || f.startsWith('examples/') || f.startsWith('.ci/')), 'no sources, tests or examples')

  const app = join(dir, 'app')
  const ourPackage = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> }
  await run('mkdir', ['-p', app])
  await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }))
  await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--ignore-scripts',
    join(dir, packed!.filename), `fastify@${ourPackage.devDependencies.fastify}`,
    // The current ioredis major, as an app that already uses it has it (once a peer conflict).
    ourPackage.devDependencies.ioredis6!.replace(/^npm:/, '')], { cwd: app, timeout: 240_000 })

  const installed = JSON.parse(await readFile(join(app, 'node_modules', 'fastify-jwt-revocation', 'package.json'), 'utf8')) as { scripts?: Record<string, string> }
  const installScripts = ['preinstall', 'install', 'postinstall', 'prepare'].filter((name) => installed.scripts?.[name] !== undefined)
  t.same(installScripts, [], 'no script runs when the tarball is installed (npm would warn about it); the build runs at prepack')
  await writeFile(join(app, 'esm.mjs'), consumerEsm)
  const esm = JSON.parse((await run(process.execPath, ['esm.mjs', join(app, 'revocations')], { cwd: app })).stdout)
  t.same(esm.statuses, [200, 401, 401, 200], 'valid → revoked → month-long token refused → open route')
  t.same(esm.exports, ['function', 'function', 'function', 'function', 'function', 'function', 'function', 'function', 'function'], 'every entry point resolves')

  await writeFile(join(app, 'cjs.cjs'), consumerCjs)
  const cjs = JSON.parse((await run(process.execPath, ['cjs.cjs'], { cwd: app })).stdout)
  t.same(cjs, { status: 401, same: true, redis: 'function', postgres: 'function', ssf: 'function', logout: 'function', auth0: 'function' }, 'require() gives a working plugin')

  await writeFile(join(app, 'consumer.ts'), consumerTs)
  await writeFile(join(app, 'tsconfig.json'), JSON.stringify({ compilerOptions: { strict: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', noEmit: true, skipLibCheck: true, types: [] }, files: ['consumer.ts'] }))
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
  const typed = await run(process.execPath, [tsc, '-p', app], { cwd: app }).then(() => 'ok', (err: { stdout?: string }) => err.stdout ?? String(err))
  t.equal(typed, 'ok', 'the published types check in a strict TypeScript consumer')

  // The command line, as an operator installing the package gets it.
  t.ok(files.includes('dist/esm/cli/bin.js'), 'the bin is packed')
  const npx = (...args: string[]) => run('npx', ['--no-install', 'fastify-jwt-revocation', ...args], { cwd: app }).then(
    ({ stdout }) => ({ code: 0, stdout, stderr: '' }),
    (err: { code: number, stdout: string, stderr: string }) => ({ code: err.code, stdout: err.stdout, stderr: err.stderr }))
  t.match((await npx('--help')).stdout, /Usage: fastify-jwt-revocation <command>/)
  await run('mkdir', ['-p', join(app, 'cli-store')])
  t.equal((await npx('revoke-token', '--aud', 'https://api.example', '--jti', 'from-a-shell', '--store', 'file:cli-store')).code, 0)
  t.same(JSON.parse((await npx('list-revoked', '--json', '--store', 'file:cli-store')).stdout).map((e: { jti: string }) => e.jti), ['from-a-shell'])
  // This app installed ioredis but not pg: the PostgreSQL target says what to install.
  const noPg = await npx('status', '--store', 'postgres://postgres@127.0.0.1:5432/test')
  t.equal(noPg.code, 3)
  t.match(noPg.stderr, /needs the pg package, which is not installed here: npm install pg/)
  const redis = await connectRedis(t)
  if (redis) {
    // The incident: a partner cut off from a shell, through the app's own ioredis (6 here).
    const prefix = `{${uniqueName('npx')}}:`
    t.teardown(() => deleteKeys(redis, prefix))
    const cut = await npx('revoke-client', 'partner', '--audience', 'https://api.example', '--store', REDIS_URL, '--prefix', prefix)
    t.equal(cut.code, 0, cut.stderr)
    t.ok(await redis.exists(`${prefix}c:partner\u0000https://api.example`), 'the revocation is in Redis')
  }
})

t.test('the public entry point exports the plugin, stores, admin routes and error classes only', async (t) => {
  const api = await import('../../src/index.js')
  t.same(Object.keys(api).sort(), [
    'FileStore', 'GrantConflictError', 'GrantNotFoundError', 'InsufficientScopeError', 'InsufficientUserAuthenticationError', 'InvalidArgumentError', 'InvalidDpopProofError', 'InvalidOptionError',
    'InvalidRequestError', 'InvalidTokenError', 'MemoryStore', 'OutboundRequestError', 'Revocation', 'RouteMisconfiguredError', 'ServiceUnavailableError', 'StoreError',
    'TokenExpiredError', 'TokenLifetimeError', 'TokenMissingError', 'TokenRevokedError', 'UseDpopNonceError', 'adminRoutes', 'default',
    'jwtRevocation',
  ])
  t.equal(new api.TokenRevokedError('x').code, 'FST_JWT_REVOCATION_TOKEN_REVOKED')
  t.equal(api.default, api.jwtRevocation)
})
