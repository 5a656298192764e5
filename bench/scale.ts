// The scale-out rows of `npm run bench` (issue 31): scale-redis and scale-cluster
// (bench/redis-scale.ts: Redis memory per revoked jti, the share of each primary, the
// command line's import rate, lookup latency at 10,000 and at the largest count) and
// pg-purge (bench/pg-purge.ts). Each runs in a child process allowed every CPU: the
// servers it starts inherit its affinity, and they must not share the load generator's one.
import { spawn } from 'node:child_process'
import { cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import type { PgPurge } from './pg-purge.js'
import type { RedisScale, Topology } from './redis-scale.js'

const here = import.meta.dirname
const counts = process.env.BENCH_SCALE_COUNTS ?? '1000000,10000000'

/** Load averages (1 min) when a measure started and ended: the machine's other work. */
export interface Load { start: number, end: number }
export interface Scale {
  redis: Array<RedisScale & { load: Load }>
  pgPurge?: PgPurge & { load: Load }
}

/** Runs `script` with `args` in a child process on every CPU (`cpus` > 0: through taskset); its stdout as JSON. */
async function child<T> (script: string, args: string[], cpus: number): Promise<T & { load: Load }> {
  const node = [process.execPath, '--import', 'tsx', join(here, script), ...args]
  const [command, ...rest] = cpus > 0 ? ['taskset', '-c', `0-${cpus - 1}`, ...node] : node
  const start = loadavg()[0]!
  const out = await new Promise<string>((resolve, reject) => {
    const c = spawn(command!, rest, { stdio: ['ignore', 'pipe', 'inherit'] })
    let stdout = ''
    c.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
    c.on('error', reject)
    c.on('exit', (code) => code === 0 ? resolve(stdout) : reject(new Error(`${script} ${args.join(' ')} exited with ${code}`)))
  })
  return { ...JSON.parse(out) as T, load: { start, end: loadavg()[0]! } }
}

export async function measureScale (wanted: (id: string) => boolean, cpus: number): Promise<Scale> {
  const scale: Scale = { redis: [] }
  for (const [id, topology] of [['scale-redis', 'standalone'], ['scale-cluster', 'cluster']] as const) {
    if (wanted(id)) scale.redis.push(await child<RedisScale>('redis-scale.ts', [topology satisfies Topology, counts], cpus))
  }
  if (wanted('pg-purge')) scale.pgPurge = await child<PgPurge>('pg-purge.ts', ['--json'], cpus)
  return scale
}

const n = (x: number) => x.toLocaleString('en')
const ms = (x: number, digits = 2) => `${x.toFixed(digits)} ms`
const load = (l: Load) => `load average ${l.start.toFixed(1)}–${l.end.toFixed(1)} on this ${cpus().length}-CPU machine shared with other work`
const verdict = (ok: boolean) => ok ? '**met**' : '**missed**'

/** The lines of "Against the targets" for what was measured. */
export function scaleTargets (scale: Scale): string[] {
  const lines: string[] = []
  for (const r of scale.redis) {
    const where = r.topology === 'cluster' ? 'a Cluster of 3 primaries' : 'a standalone Redis'
    const largest = r.memory.at(-1)
    lines.push(`- Redis memory per revoked UUID jti in ${where} (settled \`INFO used_memory\` delta over every primary, the revocation log not counted; \`tokenBuckets\` a hundredth of the count): ` +
      r.memory.map((m) => `**${m.bytesPerJti.toFixed(1)} B** at ${n(m.jtis)} (${m.tokenMB.toFixed(0)} MB)`).join(', ') +
      `: target ≤ 64 B ${verdict(r.memory.every((m) => m.bytesPerJti <= 64))}.` +
      (largest ? ` The revocation log holds every jti of each import batch besides (each audience once, its jtis under it): ${largest.logMB.toFixed(0)} MB at ${n(largest.jtis)} (${(largest.logMB * 2 ** 20 / largest.jtis).toFixed(0)} B per jti), kept until \`logRetention\` (30 days) or \`logMaxEntries\`.` : ''))
    for (const s of r.shares) {
      lines.push(`- Token entries on each primary at ${n(s.jtis)}: ${s.shares.map((x) => `${(100 * x).toFixed(1)}%`).join(', ')}: target 25–42% each ${verdict(s.shares.every((x) => x >= 0.25 && x <= 0.42))}.`)
    }
    for (const i of r.imports) {
      lines.push(`- \`fastify-jwt-revocation import\` of ${n(i.jtis)} jtis into ${where}, timed from the shell: **${n(Math.round(i.perSecond))} jtis/s** (${i.seconds.toFixed(1)} s; CPU per jti: ${i.clientMicrosPerJti.toFixed(1)} µs in the command, ${i.serverMicrosPerJti.toFixed(1)} µs in Redis; ${load(r.load)}): target ≥ 100,000/s ${verdict(i.perSecond >= 100_000)}.`)
    }
    const [small, large] = [r.lookups[0], r.lookups.at(-1)]
    if (small && large && small !== large) {
      // Flat: the median within a quarter, the 99th percentile within twice, on a shared machine.
      const flat = large.p50 <= small.p50 * 1.25 && large.p99 <= small.p99 * 2
      lines.push(`- \`RedisStore.lookup\` in ${where}, one at a time (${n(large.samples)} each, half revoked jtis): p50 **${ms(small.p50, 3)}**, p99 **${ms(small.p99, 3)}** at ${n(small.revoked)} revoked; p50 **${ms(large.p50, 3)}**, p99 **${ms(large.p99, 3)}** at ${n(large.revoked)} (two prefixes of the same bucket count on the same servers, in interleaved rounds): target flat (p50 within 25 %, p99 within 2×) ${verdict(flat)}.`)
    }
  }
  const p = scale.pgPurge
  if (p !== undefined) {
    const kept = p.during.p99 <= Math.max(2 * p.before.p99, p.before.p99 + 1)
    lines.push(`- PostgreSQL purge of ${n(p.removed)} expired entries (their expiry day's partition dropped): **${p.purgeMs.toFixed(0)} ms**; the store's lookup during it p50 ${ms(p.during.p50)}, p99 **${ms(p.during.p99)}** (${n(p.during.samples)} lookups overlapped it, 4 loops) against p50 ${ms(p.before.p50)}, p99 **${ms(p.before.p99)}** before: target p99 kept (within 2×, or 1 ms) ${verdict(kept)}. ` +
      `The DELETE of version 4 on the same rows: ${n(Math.round(p.v4DeleteMs))} ms, its lookup p99 ${ms(p.v4During.p99)} during against ${ms(p.v4Before.p99)} before, and ${n(p.v4DeadTuples)} dead rows left for VACUUM (${load(p.load)}).`)
  }
  return lines
}
