// The published types as a TypeScript user meets them: the packed tarball checked by the
// ecosystem's own tools (attw, publint), then installed into a fresh app and type-checked
// under every module resolution a current project uses, from ESM and from CommonJS, with
// skipLibCheck off so every declaration file the package ships is checked too.
import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'

const run = promisify(execFile)
const root = join(import.meta.dirname, '..', '..')
const bin = (name: string) => join(root, 'node_modules', '.bin', name)
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')

/** A command's output when it fails, '' when it succeeds. */
function failureOf (command: string, args: string[], cwd: string): Promise<string> {
  return run(command, args, { cwd, timeout: 300_000 }).then(() => '',
    (err: { stdout?: string, stderr?: string }) => `${err.stdout ?? ''}${err.stderr ?? ''}` || String(err))
}

/** The README's quick start: the first ```ts block after "## Quick start". */
async function readmeQuickStart (): Promise<string> {
  const readme = await readFile(join(root, 'README.md'), 'utf8')
  const section = readme.slice(readme.indexOf('## Quick start'))
  const block = /^```ts\n([\s\S]*?)^```$/m.exec(section)?.[1]
  if (block === undefined) throw new Error('README.md has no ```ts block under "## Quick start"')
  return `${block}\nexport {}\n`
}

// Every public subpath, used as a program would use it; the same text compiles as ESM
// (.ts in a "type": "module" app) and as CommonJS (.cts), which resolve to different builds.
const everySubpath = `
import jwtRevocation, { FileStore, MemoryStore, StoreError, TokenRevokedError, type AuthContext, type JwtRevocationError, type RevocationStore } from 'fastify-jwt-revocation'
import { RedisStore } from 'fastify-jwt-revocation/redis'
import { PostgresStore, postgresSchema } from 'fastify-jwt-revocation/postgres'
import { runStoreSuite } from 'fastify-jwt-revocation/testing'
import { ssfReceiver } from 'fastify-jwt-revocation/ssf'
import { backchannelLogout, type BackchannelLogoutOptions } from 'fastify-jwt-revocation/logout'
import { auth0Sync } from 'fastify-jwt-revocation/auth0'
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import { Pool } from 'pg'

const stores: RevocationStore[] = [
  new MemoryStore(),
  new FileStore({ path: './revocations' }),
  new RedisStore({ client: new Redis({ lazyConnect: true }) }),
  new PostgresStore({ pool: new Pool() }),
]
const schema: string = postgresSchema()
const app = Fastify()
void app.register(jwtRevocation, { secret: 'a-secret-that-is-at-least-32-bytes-long', audience: 'https://api.example', store: stores[0] })
app.get('/me', async (req) => {
  const auth: AuthContext | null = req.auth
  return auth?.subject
})
// An error class narrows by instanceof to its own code and status.
function statusOf (err: unknown): 401 | 503 | 500 {
  if (err instanceof TokenRevokedError) {
    const code: 'FST_JWT_REVOCATION_TOKEN_REVOKED' = err.code
    void code
    return err.statusCode
  }
  const failure: JwtRevocationError = new StoreError('the store is unreachable')
  return err === failure ? failure.statusCode as 503 : 500
}
const logout: BackchannelLogoutOptions = { issuer: 'https://idp.example/', jwksUri: 'https://idp.example/jwks', audience: 'client-id' }
void app.register(backchannelLogout, logout)
void [schema, statusOf, runStoreSuite, ssfReceiver, auth0Sync]
`

// How a current project compiles: bundler resolution (Vite, tsx, esbuild) with ES modules,
// and with "preserve", under which require() in a .cts file takes the "require" condition;
// Node's own node16 and nodenext, each from ESM and from CommonJS. ESM and CommonJS are
// separate programs, as in an app: each build augments Fastify's types with its own
// `Revocation` class, and one program that loads both sees two of them.
const esm = ['quick-start.ts', 'subpaths.ts']
const cjs = ['subpaths.cts']
const consumers = [
  { name: 'bundler (module esnext), ESM', module: 'esnext', moduleResolution: 'bundler', files: esm },
  { name: 'bundler (module preserve), CommonJS', module: 'preserve', moduleResolution: 'bundler', files: cjs },
  { name: 'node16, ESM', module: 'node16', moduleResolution: 'node16', files: esm },
  { name: 'node16, CommonJS', module: 'node16', moduleResolution: 'node16', files: cjs },
  { name: 'nodenext, ESM', module: 'nodenext', moduleResolution: 'nodenext', files: esm },
  { name: 'nodenext, CommonJS', module: 'nodenext', moduleResolution: 'nodenext', files: cjs },
]

// Six strict type-checks of Fastify's, Node's, ioredis' and pg's declarations with ours
// take longer than the suite's per-file limit on a busy two-core machine.
t.setTimeout(600_000)

t.test('the packed tarball: attw, publint, and a strict TypeScript consumer under every module resolution', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'jwt-revocation-types-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const { stdout } = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dir], { cwd: root })
  const tarball = join(dir, (JSON.parse(stdout) as Array<{ filename: string }>)[0]!.filename)

  // attw resolves every entry point as each TypeScript resolution mode would, and looks
  // for CJS/ESM masquerading, missing types and broken default exports. The node16
  // profile leaves out node10 (`moduleResolution: "node"`): it predates `exports`, so it
  // cannot reach any subpath, and TypeScript 6 deprecates it; the root entry still
  // resolves there through `main`/`types`.
  t.equal(await failureOf(bin('attw'), [tarball, '--profile', 'node16', '--no-color', '--no-emoji'], dir), '', 'attw finds no problem')
  // publint checks the package.json fields against the files packed (exports targets,
  // formats, conditions order); --strict makes its warnings fail too.
  t.equal(await failureOf(bin('publint'), ['run', tarball, '--strict'], dir), '', 'publint finds no problem')

  const app = join(dir, 'app')
  await mkdir(app)
  await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }))
  const our = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> }
  const version = (name: string) => `${name}@${our.devDependencies[name]}`
  // What an app that uses every entry point has: Fastify, its Node types, ioredis (the
  // current major) and pg with its types.
  await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--ignore-scripts', tarball,
    version('fastify'), version('@types/node'), version('pg'), version('@types/pg'),
    our.devDependencies.ioredis6!.replace(/^npm:/, '')], { cwd: app, timeout: 240_000 })

  await writeFile(join(app, 'quick-start.ts'), await readmeQuickStart())
  await writeFile(join(app, 'subpaths.ts'), everySubpath)
  await writeFile(join(app, 'subpaths.cts'), everySubpath)
  const typeCheck = async ({ name, module, moduleResolution, files }: typeof consumers[number], i: number) => {
    const config = join(app, `tsconfig.${i}.json`)
    await writeFile(config, JSON.stringify({
      compilerOptions: { strict: true, module, moduleResolution, target: 'es2022', noEmit: true, skipLibCheck: false },
      files,
    }))
    t.equal(await failureOf(process.execPath, [tsc, '-p', config], app), '', `the published types check under ${name}`)
  }
  // Two at a time: each run checks every declaration file of Fastify, Node, ioredis and pg too.
  for (let i = 0; i < consumers.length; i += 2) {
    await Promise.all(consumers.slice(i, i + 2).map((consumer, j) => typeCheck(consumer, i + j)))
  }
})
