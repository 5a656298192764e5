// Real Redis and PostgreSQL for the distributed-store tests, never mocks. Without a
// reachable server the tests skip, naming the variable to set; with REQUIRE_SERVICES=1
// (as in CI) a missing server fails instead.
import { Redis } from 'ioredis'
import { Redis as Redis6 } from 'ioredis6'
import pg from 'pg'

// tap's overloads are richer than these; `any` keeps any tap-like `t` acceptable.
export interface Skippable {
  skip: (...args: any[]) => unknown
  fail: (...args: any[]) => unknown
  teardown: (fn: () => any) => unknown
}

const required = process.env.REQUIRE_SERVICES === '1'

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
export const PG_URL = process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

/** Skips the test with `message`, or fails it under REQUIRE_SERVICES=1. */
export function serviceMissing (t: Skippable, message: string): undefined {
  if (required) t.fail(message + ' — REQUIRE_SERVICES=1, so this is a failure')
  else t.skip(message)
  return undefined
}

function unavailable (t: Skippable, what: string, variable: string, err: unknown): undefined {
  return serviceMissing(t, `${what} is not reachable (${(err as Error)?.message ?? err}); set ${variable} to run these tests`)
}

/**
 * The supported ioredis majors (6 through the `ioredis6` npm alias), as the store sees
 * them: tests run one body against each. Version 6 speaks RESP3; its `replyMapping:
 * 'resp3'` changes the shape of some replies, so that mode is a variant of its own.
 */
export const redisVariants = [
  { name: 'ioredis 5', connect: (url: string) => new Redis(url, clientOptions) },
  { name: 'ioredis 6', connect: (url: string) => new Redis6(url, clientOptions) as unknown as Redis },
  { name: "ioredis 6, replyMapping 'resp3'", connect: (url: string) => new Redis6(url, { ...clientOptions, replyMapping: 'resp3' }) as unknown as Redis },
] as const

const clientOptions = { lazyConnect: true, connectTimeout: 2000, maxRetriesPerRequest: 1, enableOfflineQueue: true }

/** A connected ioredis client, closed at teardown; undefined when Redis is unreachable (the test is skipped). */
export async function connectRedis (t: Skippable, url = REDIS_URL, connect = redisVariants[0].connect): Promise<Redis | undefined> {
  const client = connect(url)
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
  // A RedisStore's token buckets start with the prefix without its hash tag's braces.
  for (const start of [prefix, `${prefix.replace(/[{}]/g, '')}t:{`]) {
    let cursor = '0'
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${start.replace(/[*?[\]\\]/g, '\\$&')}*`, 'COUNT', 500)
      if (keys.length > 0) await client.del(...keys)
      cursor = next
    } while (cursor !== '0')
  }
}
