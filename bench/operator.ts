// Operator tools at store speed: `fastify-jwt-revocation import` of 100,000 jtis into each
// store, timed from the shell (the built command line in a child process, startup
// included), and FileStore single revocations from many concurrent callers (group commit).
import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { FileStore } from 'fastify-jwt-revocation'
import { Redis } from 'ioredis'
import pg from 'pg'

export type ImportStore = 'file' | 'redis' | 'postgres'

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
const PG_URL = process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const bin = join(import.meta.dirname, '..', 'dist', 'esm', 'cli', 'bin.js')
const AUD = 'https://api.bench'

export interface ImportResult { store: ImportStore, jtis: number, seconds: number, revoked: number }

/** Imports `count` uuid-sized jtis with the command line; seconds from spawn to exit. */
export async function measureImport (store: ImportStore, count = 100_000): Promise<ImportResult> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-import-'))
  const file = join(dir, 'jtis.txt')
  await writeFile(file, Array.from({ length: count }, (_, i) => `${i.toString(16).padStart(8, '0')}-4b1d-4c2e-9f3a-bench${i}`).join('\n') + '\n')
  const name = `bench_import_${process.pid}`
  let target: string[]
  if (store === 'file') {
    target = ['--store', `file:${dir}`]
  } else if (store === 'redis') {
    target = ['--store', REDIS_URL, '--prefix', `{${name}}:`]
  } else {
    target = ['--store', PG_URL, '--prefix', `${name}_`]
  }
  try {
    const started = performance.now()
    const { stdout } = await promisify(execFile)(process.execPath, [bin, 'import', file, '--aud', AUD, '--expires-in', '1h', '--json', ...target], { maxBuffer: 1 << 24 })
    const seconds = (performance.now() - started) / 1000
    const report = JSON.parse(stdout) as { revoked: number }
    if (report.revoked !== count) throw new Error(`import into ${store}: ${report.revoked} of ${count} revoked`)
    return { store, jtis: count, seconds, revoked: report.revoked }
  } finally {
    await rm(dir, { recursive: true, force: true })
    if (store === 'redis') {
      const client = new Redis(REDIS_URL)
      let cursor = '0'
      do {
        const [next, keys] = await client.scan(cursor, 'MATCH', `{${name}}:*`, 'COUNT', 10_000)
        if (keys.length > 0) await client.del(...keys)
        cursor = next
      } while (cursor !== '0')
      client.disconnect()
    } else if (store === 'postgres') {
      const pool = new pg.Pool({ connectionString: PG_URL, max: 1 })
      for (const table of ['schema', 'tokens', 'clients', 'subjects', 'grants', 'leases']) await pool.query(`DROP TABLE IF EXISTS ${name}_${table}`)
      await pool.end()
    }
  }
}

export interface ConcurrentResult { revocations: number, callers: number, perSecond: number, fsyncs: number }

/**
 * `callers` concurrent loops, each revoking one token and waiting for its
 * acknowledgement (durable) before the next, as requests to an admin route would.
 */
export async function measureConcurrentRevocations (total = 200_000, callers = 1000): Promise<ConcurrentResult> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-group-commit-'))
  const store = new FileStore({ path: dir, compactAfter: 1_000_000 })
  // Counts the batches: one fdatasync each.
  let fsyncs = 0
  const commit = (store as unknown as { commit: (ops: unknown[]) => Promise<void> }).commit.bind(store)
  ;(store as unknown as { commit: (ops: unknown[]) => Promise<void> }).commit = (ops) => { fsyncs++; return commit(ops) }
  try {
    await store.ready()
    let next = 0
    const expiresAt = Date.now() + 3_600_000
    const started = performance.now()
    await Promise.all(Array.from({ length: callers }, async () => {
      while (next < total) {
        const i = next++
        await store.revokeToken({ aud: AUD, jti: `c-${i}`, expiresAt })
      }
    }))
    const seconds = (performance.now() - started) / 1000
    return { revocations: total, callers, perSecond: total / seconds, fsyncs }
  } finally {
    await store.close()
    await rm(dir, { recursive: true, force: true })
  }
}
