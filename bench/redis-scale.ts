// RedisStore at scale, on servers of the benchmark's own (never the shared Redis): a
// private standalone redis-server, or a Cluster of 3 primaries, on free loopback ports.
// Revoked UUID jtis go in with the command line (`fastify-jwt-revocation import` of a
// file, the built bin in a child process, startup included), then:
//   - Redis memory per revoked jti: the settled INFO used_memory delta over every
//     primary, less the revocation log (one entry per import batch, bounded by
//     logMaxEntries and logRetention, not by the tokens revoked), at each count;
//   - in a Cluster, the share of token entries on each primary;
//   - RedisStore.lookup latency, one at a time, on a prefix of 10,000 jtis and on one of
//     the largest count (the same bucket count, the same servers), in interleaved rounds:
//     it should not grow.
// Each count has a prefix of its own, with `tokenBuckets` a hundredth of it (as
// docs/reference/stores.md advises), and the servers are flushed in between.
//   npx tsx bench/redis-scale.ts cluster 1000000        (one topology, one count; prints JSON)
import { execFile, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { once } from 'node:events'
import { Cluster, Redis } from 'ioredis'
import { RedisStore } from '../src/stores/redis.js'
import { cpuMicros } from './cpu.js'
import { entriesOn, settledMemory } from '../test/helpers/redis-memory.js'
import { freePort, startCluster, startRedisServer, stop } from '../test/helpers/redis-servers.js'

export type Topology = 'standalone' | 'cluster'

const HOST = '127.0.0.1'
const AUD = 'https://api.bench'
const PREFIX = '{bench-scale}:'
/** At the largest count, a second prefix of the same bucket count holds only the first FIRST jtis: lookups on both, interleaved. */
const SMALL_PREFIX = '{bench-scale-small}:'
const FIRST = 10_000
const LOOKUPS = Number(process.env.BENCH_SCALE_LOOKUPS ?? 20_000)
const bin = join(import.meta.dirname, '..', 'dist', 'esm', 'cli', 'bin.js')

export interface ScaleImport {
  jtis: number
  seconds: number
  perSecond: number
  /** CPU µs per jti of the command line's process, and of the Redis servers together. */
  clientMicrosPerJti: number
  serverMicrosPerJti: number
}
export interface ScaleMemory { jtis: number, buckets: number, bytesPerJti: number, tokenMB: number, logMB: number }
export interface ScaleLookup { revoked: number, samples: number, p50: number, p99: number }
export interface RedisScale {
  topology: Topology
  memory: ScaleMemory[]
  /** Per count, the share of token entries on each primary (a Cluster only). */
  shares: Array<{ jtis: number, shares: number[] }>
  imports: ScaleImport[]
  lookups: ScaleLookup[]
}

interface Servers { url: string, client: Redis | Cluster, primaries: () => Redis[], close: () => Promise<void> }

/** A test helper's `t` for the server helpers: a missing redis-server fails the row. */
function harness (): { t: { skip: (m: string) => never, fail: (m: string) => never, teardown: (fn: () => unknown) => void }, close: () => Promise<void> } {
  const teardowns: Array<() => unknown> = []
  const fail = (message: string): never => { throw new Error(message) }
  return {
    t: { skip: fail, fail, teardown: (fn) => { teardowns.push(fn) } },
    close: async () => { for (const fn of teardowns.reverse()) await fn() },
  }
}

async function startServers (topology: Topology): Promise<Servers> {
  if (topology === 'standalone') {
    const port = await freePort()
    const server: ChildProcess = await startRedisServer(['--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no'])
    const client = new Redis({ host: HOST, port })
    return { url: `redis://${HOST}:${port}`, client, primaries: () => [client], close: async () => { client.disconnect(); await stop(server) } }
  }
  const h = harness()
  const cluster = await startCluster(h.t)
  if (cluster === undefined) throw new Error('no Cluster')
  const client = new Cluster(cluster.nodes, { redisOptions: { maxRetriesPerRequest: 1 } })
  client.on('error', () => {})
  await client.ping()
  const primaries = () => client.nodes('master')
  if (primaries().length !== 3) throw new Error(`${primaries().length} primaries, not 3`)
  return { url: `redis://${HOST}:${cluster.nodes[0]!.port}`, client, primaries, close: async () => { client.disconnect(); await h.close() } }
}

/** Writes `lines` random UUIDs to the files: the first FIRST to `first`, the rest to `rest`; keeps every 100th for lookups. */
async function writeJtis (first: string, rest: string, lines: number): Promise<string[]> {
  const sample: string[] = []
  for (const [path, from, to] of [[first, 0, Math.min(FIRST, lines)], [rest, FIRST, lines]] as const) {
    const out = createWriteStream(path)
    for (let i = from; i < to;) {
      const chunk: string[] = []
      for (const end = Math.min(to, i + 10_000); i < end; i++) {
        const jti = randomUUID()
        if (i % 100 === 0) sample.push(jti)
        chunk.push(jti)
      }
      if (!out.write(chunk.join('\n') + '\n')) await once(out, 'drain')
    }
    out.end()
    await once(out, 'finish')
  }
  return sample
}

/** Every primary's CPU time so far (INFO cpu: user + sys), in seconds. */
async function serverCpu (nodes: Redis[]): Promise<number> {
  const infos = await Promise.all(nodes.map((n) => n.info('cpu')))
  return infos.reduce((sum, info) => sum + Number(/used_cpu_user:([\d.]+)/.exec(info)![1]) + Number(/used_cpu_sys:([\d.]+)/.exec(info)![1]), 0)
}

/**
 * `fastify-jwt-revocation import <file>` into the servers: seconds from spawn to exit,
 * and the CPU time of the command (read from /proc every 100 ms until it exits) and of the servers.
 */
async function cliImport (url: string, file: string, jtis: number, primaries: Redis[], prefix = PREFIX): Promise<ScaleImport> {
  const args = [...(process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_CPU_PROF] : []),
    bin, 'import', file, '--aud', AUD, '--expires-in', '1h', '--json', '--store', url, '--prefix', prefix]
  const serverBefore = await serverCpu(primaries)
  const started = performance.now()
  let clientCpu = 0
  const stdout = await new Promise<string>((resolve, reject) => {
    const child = execFile(process.execPath, args, { maxBuffer: 1 << 26 }, (err, out, stderr) => err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(out))
    const poll = setInterval(() => { try { clientCpu = cpuMicros(child.pid!) / 1e6 } catch {} }, 100)
    child.on('exit', () => clearInterval(poll))
  })
  const seconds = (performance.now() - started) / 1000
  const serverSeconds = await serverCpu(primaries) - serverBefore
  const report = JSON.parse(stdout) as { revoked: number }
  if (report.revoked !== jtis) throw new Error(`import: ${report.revoked} of ${jtis} revoked`)
  return { jtis, seconds, perSecond: jtis / seconds, clientMicrosPerJti: clientCpu * 1e6 / jtis, serverMicrosPerJti: serverSeconds * 1e6 / jtis }
}

/** RedisStore.lookup one at a time, half revoked jtis (checked), half not; latencies in ms. */
async function lookupTimes (store: RedisStore, revoked: string[], count: number, from = 0): Promise<number[]> {
  const times: number[] = []
  for (let i = from; i < from + count; i++) {
    const hit = i % 2 === 0
    const jti = hit ? revoked[(i / 2) % revoked.length]! : randomUUID()
    const start = performance.now()
    const state = await store.lookup({ audiences: [AUD], jti, includeGrant: false })
    times.push(performance.now() - start)
    if (state.tokenRevoked !== hit) throw new Error(`lookup of ${jti}: revoked ${state.tokenRevoked}, expected ${hit}`)
  }
  return times
}

const ROUNDS = 10

/**
 * Lookups on the small and the large prefix of the same servers, in interleaved rounds
 * after a warm-up of each: a busy patch of the machine weighs on both alike.
 */
async function compareLookups (small: { store: RedisStore, revoked: string[], jtis: number }, large: { store: RedisStore, revoked: string[], jtis: number }): Promise<ScaleLookup[]> {
  const times: [number[], number[]] = [[], []]
  for (const s of [small, large]) await lookupTimes(s.store, s.revoked, 2000)
  for (let r = 0; r < ROUNDS; r++) {
    for (const [k, s] of [small, large].entries()) times[k]!.push(...await lookupTimes(s.store, s.revoked, LOOKUPS / ROUNDS, r * LOOKUPS / ROUNDS))
  }
  return [small, large].map((s, k) => {
    const sorted = times[k]!.sort((a, b) => a - b)
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
    return { revoked: s.jtis, samples: sorted.length, p50: at(0.5), p99: at(0.99) }
  })
}

/**
 * Every count on `topology`: a fresh prefix sized to it, the jtis imported by the
 * command line, then memory, shares and (at the largest count) lookups.
 */
export async function measureRedisScale (topology: Topology, counts: number[], log: (line: string) => void = () => {}): Promise<RedisScale> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-redis-scale-'))
  const servers = await startServers(topology)
  const result: RedisScale = { topology, memory: [], shares: [], imports: [], lookups: [] }
  try {
    const largest = Math.max(...counts)
    const firstFile = join(dir, 'first.txt')
    const restFile = join(dir, 'rest.txt')
    log(`redis-scale ${topology}: writing ${largest.toLocaleString('en')} UUID jtis…`)
    const sample = await writeJtis(firstFile, restFile, largest)
    for (const jtis of [...counts].sort((a, b) => a - b)) {
      await Promise.all(servers.primaries().map((node) => node.flushall()))
      const buckets = Math.max(1, Math.round(jtis / 100))
      const store = new RedisStore({ client: servers.client, prefix: PREFIX, tokenBuckets: buckets })
      await store.ready()
      const small = jtis === largest ? new RedisStore({ client: servers.client, prefix: SMALL_PREFIX, tokenBuckets: buckets }) : undefined
      if (small !== undefined) {
        await small.ready()
        await cliImport(servers.url, firstFile, Math.min(FIRST, jtis), servers.primaries(), SMALL_PREFIX)
      }
      const before = await settledMemory(servers.primaries(), 20)
      await cliImport(servers.url, firstFile, Math.min(FIRST, jtis), servers.primaries())
      if (jtis > FIRST) {
        // The rest file holds the largest count's lines: a smaller count imports its head.
        const file = jtis === largest ? restFile : join(dir, `rest-${jtis}.txt`)
        if (file !== restFile) await headOf(restFile, file, jtis - FIRST)
        log(`redis-scale ${topology}: importing ${(jtis - FIRST).toLocaleString('en')} jtis with the command line…`)
        const rest = await cliImport(servers.url, file, jtis - FIRST, servers.primaries())
        result.imports.push(rest)
        log(`redis-scale ${topology}: import of ${rest.jtis.toLocaleString('en')} in ${rest.seconds.toFixed(1)} s: ${Math.round(rest.perSecond).toLocaleString('en')} jtis/s; CPU µs per jti: command ${rest.clientMicrosPerJti.toFixed(1)}, servers ${rest.serverMicrosPerJti.toFixed(1)}`)
        if (file !== restFile) await rm(file)
      }
      const after = await settledMemory(servers.primaries(), 20)
      const logKey = `${PREFIX}log`
      const logBytes = (await Promise.all(servers.primaries().map((n) => n.memory('USAGE', logKey, 'SAMPLES', 0).catch(() => null))))
        .reduce<number>((a, b) => a + Number(b ?? 0), 0)
      const tokenBytes = after - before - logBytes
      const m = { jtis, buckets, bytesPerJti: tokenBytes / jtis, tokenMB: tokenBytes / 2 ** 20, logMB: logBytes / 2 ** 20 }
      result.memory.push(m)
      log(`redis-scale ${topology}: ${jtis.toLocaleString('en')} jtis in ${buckets.toLocaleString('en')} buckets: ${m.bytesPerJti.toFixed(1)} B each (${m.tokenMB.toFixed(0)} MB), log ${m.logMB.toFixed(0)} MB`)
      if (topology === 'cluster') {
        const base = `${PREFIX.replace(/[{}]/g, '')}t:{`
        const counted = await Promise.all(servers.primaries().map((node) => entriesOn(node, base)))
        const total = counted.reduce((a, b) => a + b, 0)
        if (total !== jtis) throw new Error(`${total} entries in the buckets, ${jtis} imported`)
        result.shares.push({ jtis, shares: counted.map((n) => n / total) })
        log(`redis-scale cluster: shares of the primaries ${counted.map((n) => `${(100 * n / total).toFixed(1)}%`).join(', ')}`)
      }
      if (small !== undefined) {
        result.lookups = await compareLookups({ store: small, revoked: sample.slice(0, FIRST / 100), jtis: Math.min(FIRST, jtis) }, { store, revoked: sample, jtis })
        for (const l of result.lookups) log(`redis-scale ${topology}: lookup at ${l.revoked.toLocaleString('en')} revoked: p50 ${l.p50.toFixed(3)} ms, p99 ${l.p99.toFixed(3)} ms`)
        await small.close()
      }
      await store.close()
    }
    return result
  } finally {
    await servers.close()
    await rm(dir, { recursive: true, force: true })
  }
}

/** The first `lines` lines of `from`, written to `to`. */
async function headOf (from: string, to: string, lines: number): Promise<void> {
  await new Promise<void>((resolve, reject) => execFile('sh', ['-c', `head -n ${lines} "$0" > "$1"`, from, to], (err) => err ? reject(err) : resolve()))
}

if (process.argv[1] === import.meta.filename) {
  const topology = process.argv[2] as Topology
  const counts = (process.argv[3] ?? '1000000').split(',').map(Number)
  measureRedisScale(topology, counts, (line) => process.stderr.write(line + '\n'))
    .then((r) => process.stdout.write(JSON.stringify(r) + '\n'))
    .catch((err) => { process.stderr.write(String(err?.stack ?? err) + '\n'); process.exit(1) })
}
