// Real Redis and PostgreSQL for the distributed-store tests, never mocks. Without a
// reachable server the tests skip, naming the variable to set; with REQUIRE_SERVICES=1
// (as in CI) a missing server fails instead.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import pg from 'pg'

// tap's overloads are richer than these; `any` keeps any tap-like `t` acceptable.
interface Skippable {
  skip: (...args: any[]) => unknown
  fail: (...args: any[]) => unknown
  teardown: (fn: () => any) => unknown
}

const required = process.env.REQUIRE_SERVICES === '1'

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
export const PG_URL = process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

function unavailable (t: Skippable, what: string, variable: string, err: unknown): undefined {
  const message = `${what} is not reachable (${(err as Error)?.message ?? err}); set ${variable} to run these tests`
  if (required) t.fail(message + ' — REQUIRE_SERVICES=1, so this is a failure')
  else t.skip(message)
  return undefined
}

/** A connected ioredis client, closed at teardown; undefined when Redis is unreachable (the test is skipped). */
export async function connectRedis (t: Skippable, url = REDIS_URL): Promise<Redis | undefined> {
  const client = new Redis(url, { lazyConnect: true, connectTimeout: 2000, maxRetriesPerRequest: 1, enableOfflineQueue: true })
  client.on('error', () => {})
  try {
    await client.connect()
    await client.ping()
  } catch (err) {
    client.disconnect()
    return unavailable(t, `Redis at ${url}`, 'REDIS_URL', err)
  }
  t.teardown(() => client.disconnect())
  return client
}

/** A pg Pool, ended at teardown; undefined when PostgreSQL is unreachable (the test is skipped). */
export async function connectPostgres (t: Skippable, url = PG_URL): Promise<pg.Pool | undefined> {
  const pool = new pg.Pool({ connectionString: url, max: 5, connectionTimeoutMillis: 2000 })
  pool.on('error', () => {})
  try {
    await pool.query('SELECT 1')
  } catch (err) {
    await pool.end().catch(() => {})
    return unavailable(t, `PostgreSQL at ${url}`, 'PG_URL', err)
  }
  t.teardown(() => pool.end())
  return pool
}

let n = 0
/** A prefix no other test run uses, so parallel test files never see each other's keys or tables. */
export function uniqueName (base: string): string {
  return `${base}_${process.pid}_${Date.now().toString(36)}_${n++}`
}

/** Deletes every key under a prefix (test cleanup). */
export async function deleteKeys (client: Redis, prefix: string): Promise<void> {
  let cursor = '0'
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`, 'COUNT', 500)
    if (keys.length > 0) await client.del(...keys)
    cursor = next
  } while (cursor !== '0')
}

/** A loopback port nothing listens on (yet). */
export async function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as import('node:net').AddressInfo
      s.close(() => resolve(port))
    })
    s.on('error', reject)
  })
}

/** A private redis-server on a loopback port, for outage tests; resolves once it accepts connections. */
function startRedis (port: number, dir: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', ''], { stdio: ['ignore', 'pipe', 'ignore'] })
    child.on('error', reject)
    child.stdout!.on('data', (chunk: Buffer) => { if (chunk.toString().includes('Ready to accept connections')) resolve(child) })
  })
}

export interface PrivateRedis {
  port: number
  /** Starts (or restarts) the server on the same port and data directory. */
  start: () => Promise<void>
  /** Stops it and waits for the process to exit. */
  stop: () => Promise<void>
}

/** A redis-server of the test's own, not yet started; killed at teardown. Undefined (skipped) where Redis is not available. */
export async function privateRedis (t: Skippable): Promise<PrivateRedis | undefined> {
  if (!await connectRedis(t)) return undefined
  const dir = await mkdtemp(join(tmpdir(), 'redis-private-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const port = await freePort()
  let server: ChildProcess | undefined
  t.teardown(() => { server?.kill('SIGKILL') })
  return {
    port,
    start: async () => { server = await startRedis(port, dir) },
    stop: () => new Promise<void>((resolve) => { server!.once('exit', () => resolve()); server!.kill('SIGTERM') }),
  }
}
