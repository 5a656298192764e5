// npm run bench — what a request costs on one core. Each server runs in its own process
// pinned to one CPU (taskset -c 1), autocannon runs in another pinned to the other
// (taskset -c 0), and the server's CPU time is read from /proc/<pid>/stat around each
// run: CPU µs per request is far steadier than req/s on a shared machine. Rounds are
// interleaved across servers; medians with their spread (min–max).
//   BENCH_DURATION=3 BENCH_ROUNDS=5 BENCH_CONNECTIONS=32 npm run bench
//   BENCH_ONLY=bare,hit,miss-es256 BENCH_DURATION=2 BENCH_ROUNDS=3 npm run bench   (quick; prints, writes nothing)
//   BENCH_SKIP=scale-redis,scale-cluster npm run bench   (every measure but those)
//   BENCH_WRITE=1 BENCH_ONLY=… npm run bench   (writes what it measured into docs/benchmarks.md, keeping the rest)
// Writing docs/benchmarks.md replaces what the run measured and keeps the rest (bench/report-merge.ts).
// Row ids: see `rows` below; prop-redis, prop-pg, prop-redis-killed, prop-pg-killed, memory, hook-cost, import-file, import-redis,
// import-pg, file-concurrent, scale-redis, scale-cluster and pg-purge select the other measures
// (scale-*: BENCH_SCALE_COUNTS=1000000,10000000 by default).
import { execFile, execFileSync, fork, spawn, type ChildProcess } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import { cpus } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { calculateJwkThumbprint, exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose'
import { AUDIENCE, ISSUER, type Alg, type BenchKeys, type DpopLoad, type ServerKind } from './config.js'
import { procAvailable } from './cpu.js'
import type { LoadRequest, LoadResult } from './load.js'
import { measureConcurrentRevocations, measureImport, type ConcurrentResult, type ImportResult, type ImportStore } from './operator.js'
import { measurePropagation, type Propagation, type PropagationStore } from './propagation.js'
import { measureScale, scaleTargets, type Scale } from './scale.js'
import { FLEET, fleetMix, startPrivateRedis, type PrivateRedis } from './fleet.js'
import { mergeReport } from './report-merge.js'

const duration = Number(process.env.BENCH_DURATION ?? 3)
const rounds = Number(process.env.BENCH_ROUNDS ?? 5)
const connections = Number(process.env.BENCH_CONNECTIONS ?? 32)
const only = process.env.BENCH_ONLY?.split(',').map((s) => s.trim()).filter(Boolean)
const skipped = new Set(process.env.BENCH_SKIP?.split(',').map((s) => s.trim()).filter(Boolean))
const write = only === undefined || process.env.BENCH_WRITE === '1'
const propagationSamples = Number(process.env.BENCH_PROPAGATION_SAMPLES ?? 200)
const ROTATION = 5_000
const LRU = 1_000
const here = import.meta.dirname
const ALGS: Alg[] = ['ES256', 'RS256', 'EdDSA']

interface Row { id: string, name: string, spec: ServerKind | null, alg: Alg, tokens: 'none' | 'one' | 'rotation' | 'dpop-one' | 'dpop-rotation' | 'fleet', note?: string, privateRedis?: true }

const rotating = `${ROTATION.toLocaleString('en')} rotating tokens`
const fleetName = `${FLEET.live.toLocaleString('en')} live tokens, ${FLEET.busiestShare * 100} % of requests from the busiest ${FLEET.busiest}`
const rows: Row[] = [
  // The bare rows receive the same Authorization header, unread: parsing it is not the plugin's cost.
  { id: 'bare', name: 'bare Fastify, one route, no auth', spec: { kind: 'bare' }, alg: 'ES256', tokens: 'one' },
  { id: 'bare-hook', name: 'bare Fastify with an empty onRequest hook (the floor of any hook)', spec: { kind: 'bare', hook: true }, alg: 'ES256', tokens: 'one' },
  { id: 'hit', name: 'plugin, ES256, one token (cache hit), MemoryStore', spec: { kind: 'plugin', alg: 'ES256', cacheMax: 10_000, store: 'memory' }, alg: 'ES256', tokens: 'one' },
  { id: 'hit-introspect', name: 'plugin, ES256, one token (cache hit), MemoryStore, an `introspect: true` route with a warm introspection cache', spec: { kind: 'plugin', alg: 'ES256', cacheMax: 10_000, store: 'memory', introspect: true }, alg: 'ES256', tokens: 'one' },
  { id: 'hit-otel', name: 'plugin, ES256, one token (cache hit), MemoryStore, an OpenTelemetry metrics SDK registered', spec: { kind: 'plugin', alg: 'ES256', cacheMax: 10_000, store: 'memory', otel: true }, alg: 'ES256', tokens: 'one' },
  ...ALGS.map((alg): Row => ({ id: `miss-${alg.toLowerCase()}`, name: `plugin, ${alg}, ${rotating}, LRU ${LRU.toLocaleString('en')} (every request a miss), MemoryStore`, spec: { kind: 'plugin', alg, cacheMax: LRU, store: 'memory' }, alg, tokens: 'rotation' })),
  ...ALGS.map((alg): Row => ({ id: `jose-${alg.toLowerCase()}`, name: `bare onRequest hook: jose jwtVerify, local JWKS, ${alg}, same checks, jti Set`, spec: { kind: 'jose', alg }, alg, tokens: 'rotation' })),
  ...ALGS.map((alg): Row => ({ id: `fjwt-${alg.toLowerCase()}`, name: `@fastify/jwt, ${alg}, its cache off, same checks, jti via trusted (one PEM key: no kid selection)`, spec: { kind: 'fastify-jwt', alg }, alg, tokens: 'rotation' })),
  ...ALGS.map((alg): Row => alg === 'ES256'
    ? { id: 'jwks-es256', name: 'fastify-jwt-jwks, ES256', spec: null, alg, tokens: 'rotation', note: 'cannot: it verifies RS256 and EdDSA only (its `algorithms` option is refused)' }
    : { id: `jwks-${alg.toLowerCase()}`, name: `fastify-jwt-jwks, ${alg}, JWKS URL, uncached, same checks, jti in a second hook (its options do not reach \`trusted\`)`, spec: { kind: 'fastify-jwt-jwks', alg }, alg, tokens: 'rotation' }),
  { id: 'file-es256', name: `plugin, ES256, ${rotating}, LRU ${LRU.toLocaleString('en')}, FileStore`, spec: { kind: 'plugin', alg: 'ES256', cacheMax: LRU, store: 'file' }, alg: 'ES256', tokens: 'rotation' },
  { id: 'dpop-hit', name: 'plugin, ES256 DPoP-bound token (cache hit) + an ES256 DPoP proof per request (verified, jti claimed once), MemoryStore', spec: { kind: 'plugin', alg: 'ES256', cacheMax: 10_000, store: 'memory', dpop: true }, alg: 'ES256', tokens: 'dpop-one' },
  { id: 'dpop-miss', name: `plugin, ES256 DPoP-bound, ${rotating}, LRU ${LRU.toLocaleString('en')} (every token a miss) + an ES256 DPoP proof per request, MemoryStore`, spec: { kind: 'plugin', alg: 'ES256', cacheMax: LRU, store: 'memory', dpop: true }, alg: 'ES256', tokens: 'dpop-rotation' },
  { id: 'redis-es256', name: `plugin, ES256, ${rotating}, LRU ${LRU.toLocaleString('en')}, RedisStore (a round trip per request)`, spec: { kind: 'plugin', alg: 'ES256', cacheMax: LRU, store: 'redis' }, alg: 'ES256', tokens: 'rotation' },
  // The fleet pair (bench/fleet.ts): CPU µs per request is the server's plus its private Redis's.
  { id: 'fleet', name: `fleet: plugin, ES256, ${fleetName}, RedisStore; server + Redis CPU`, spec: { kind: 'plugin', alg: 'ES256', cacheMax: 10_000, store: 'redis' }, alg: 'ES256', tokens: 'fleet', privateRedis: true },
  { id: 'fleet-fjwt', name: `fleet: \`@fastify/jwt\`, ES256, ${fleetName}, its verify cache on (10,000), a Redis jti lookup in \`trusted\`; server + Redis CPU`, spec: { kind: 'fastify-jwt-redis', alg: 'ES256', cacheMax: 10_000 }, alg: 'ES256', tokens: 'fleet', privateRedis: true },
]
const wanted = (id: string) => !skipped.has(id) && (only === undefined || only.includes(id))

// ---- pinning -------------------------------------------------------------------------

const hasTaskset = (() => { try { execFileSync('taskset', ['-V'], { stdio: 'ignore' }); return true } catch { return false } })()
const cpuCount = cpus().length
const pinning = hasTaskset && cpuCount >= 2

/** Pins every thread of `pid` to `cpu` (threads started later inherit it). */
function pin (pid: number, cpu: number): void {
  if (pinning) execFileSync('taskset', ['-a', '-p', '-c', String(cpu), String(pid)], { stdio: 'ignore' })
}

// ---- keys, tokens, processes -----------------------------------------------------------

interface Signer { alg: Alg, kid: string, key: CryptoKey, jwk: JWK, pem: string }

async function signer (alg: Alg): Promise<Signer> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true })
  const kid = alg.toLowerCase()
  return { alg, kid, key: privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' }, pem: await exportSPKI(publicKey) }
}

function sign (s: Signer, i: number, jkt?: string): Promise<string> {
  return new SignJWT({ scope: 'read:orders', azp: 'partner', ...(jkt === undefined ? {} : { cnf: { jkt } }) })
    .setProtectedHeader({ alg: s.alg, kid: s.kid })
    .setIssuer(ISSUER).setAudience(AUDIENCE).setSubject('partner@clients')
    .setIssuedAt().setExpirationTime('2h').setJti(`jti-${i}`)
    .sign(s.key)
}

function startServer (spec: ServerKind, env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess, port: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(here, 'servers.ts'), JSON.stringify(spec)], { env, stdio: ['ignore', 'pipe', 'inherit'] })
    child.on('error', reject)
    child.on('exit', (code) => reject(new Error(`server ${JSON.stringify(spec)} exited with ${code}`)))
    child.stdout!.on('data', (chunk: Buffer) => {
      const match = /PORT (\d+)/.exec(chunk.toString())
      if (match) resolve({ child, port: Number(match[1]) })
    })
  })
}

function startLoad (tokens: Record<string, string[]>, dpop: DpopLoad | undefined): Promise<{ run: (r: LoadRequest) => Promise<LoadResult>, stop: () => void }> {
  const child = fork(join(here, 'load.ts'), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  children.push(child)
  let pending: { resolve: (r: LoadResult) => void, reject: (e: Error) => void } | undefined
  return new Promise((resolve, reject) => {
    child.on('error', reject)
    child.on('message', (m: { started?: true, ready?: true, result?: LoadResult, error?: string }) => {
      if (m.started) {
        pin(child.pid!, 0)
        child.send({ tokens, dpop })
      } else if (m.ready) {
        resolve({
          run: (r) => new Promise((resolve, reject) => { pending = { resolve, reject }; child.send({ run: r }) }),
          stop: () => child.kill('SIGTERM'),
        })
      } else if (m.result) pending?.resolve(m.result)
      else if (m.error && pending === undefined) reject(new Error(m.error))
      else if (m.error) pending?.reject(new Error(m.error))
    })
  })
}

// ---- statistics ------------------------------------------------------------------------

interface Stat { median: number, min: number, max: number }
function stat (xs: number[]): Stat {
  const sorted = [...xs].sort((a, b) => a - b)
  return { median: sorted[Math.floor(sorted.length / 2)]!, min: sorted[0]!, max: sorted[sorted.length - 1]! }
}
const fmt = (s: Stat, digits = 0) => `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`

interface Measured { row: Row, rps: Stat, cpu: Stat, redis?: Stat }
interface Operator { imports: ImportResult[], concurrent?: ConcurrentResult }
interface Memory { what: string, entries: number, rssMB: number, heapMB: number, heapBytes: number, bytesPerEntry: number, tokenChars?: number }
const CACHED = 10_000

// ---- main ------------------------------------------------------------------------------

/** Servers still running when this process ends, however it ends. */
const children: ChildProcess[] = []
const redises: PrivateRedis[] = []
process.on('exit', () => {
  for (const child of children) child.kill('SIGTERM')
  for (const redis of redises) redis.stop()
})

async function main (): Promise<void> {
  pin(process.pid, 0)
  process.stdout.write(pinning
    ? 'pinning: servers on CPU 1, load generator (and this process) on CPU 0\n'
    : `pinning: none (${hasTaskset ? `${cpuCount} CPU` : 'taskset not found'}); servers and load share the CPUs, req/s is not per core\n`)
  if (!procAvailable) process.stdout.write('CPU time: /proc not available, the CPU µs column stays empty\n')

  const signers = Object.fromEntries(await Promise.all(ALGS.map(async (a) => [a, await signer(a)] as const))) as Record<Alg, Signer>
  const jwks = { keys: ALGS.map((a) => signers[a].jwk) }
  const jwksServer = createServer((_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }); res.end(JSON.stringify(jwks)) })
  await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve))
  const keys: BenchKeys = {
    jwks: jwks as BenchKeys['jwks'],
    pem: Object.fromEntries(ALGS.map((a) => [a, signers[a].pem])) as Record<Alg, string>,
    jwksUri: `http://127.0.0.1:${(jwksServer.address() as import('node:net').AddressInfo).port}/.well-known/jwks.json`,
  }
  const env = { ...process.env, BENCH_KEYS: JSON.stringify(keys) }

  const selected = rows.filter((r) => wanted(r.id) && r.spec !== null)
  const tokens: Record<string, string[]> = { none: [] }
  for (const alg of new Set(selected.map((r) => r.alg))) {
    const rotation = await Promise.all(Array.from({ length: ROTATION }, (_, i) => sign(signers[alg], i)))
    tokens[`${alg}:rotation`] = rotation
    tokens[`${alg}:one`] = [rotation[0]!]
    tokens[`${alg}:fleet`] = fleetMix(rotation)
    // The fleet rows' warm-up sends every live token in turn: both caches hold the fleet before the rounds.
    tokens[`${alg}:fleet-warm`] = rotation.slice(0, FLEET.live)
  }
  // DPoP rows: tokens bound to one client key, and a proof signed for every request the
  // run can make (each proof is accepted once). The load generator signs them before it starts.
  let dpop: DpopLoad | undefined
  const dpopRows = selected.filter((r) => r.tokens.startsWith('dpop-'))
  if (dpopRows.length > 0) {
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true })
    const publicJwk = await exportJWK(publicKey)
    const jkt = await calculateJwkThumbprint(publicJwk)
    const rotation = await Promise.all(Array.from({ length: ROTATION }, (_, i) => sign(signers.ES256, i, jkt)))
    tokens['ES256:dpop-rotation'] = rotation
    tokens['ES256:dpop-one'] = [rotation[0]!]
    const seconds = Math.max(1, Math.ceil(duration / 2)) + rounds * duration
    // Generous ceilings on one core's rate; a run that outruns its proofs fails loudly (replays are refused).
    const perSecond = Number(process.env.BENCH_DPOP_RATE ?? 12_000)
    dpop = {
      privateJwk: { ...(await exportJWK(privateKey)) },
      publicJwk: { ...publicJwk },
      proofs: Object.fromEntries(dpopRows.map((r) => [`ES256:${r.tokens}`, Math.ceil(seconds * (r.tokens === 'dpop-one' ? perSecond : perSecond / 2))])),
    }
    process.stdout.write(`signing ${Object.values(dpop.proofs).reduce((a, b) => a + b, 0).toLocaleString('en')} DPoP proofs for ${dpopRows.map((r) => r.id).join(', ')}…\n`)
  }
  const load = await startLoad(tokens, dpop)

  // Every server is up at once and rounds are interleaved, so a slow patch of the
  // machine (other processes) weighs on every row alike instead of on one.
  const servers: Array<{ row: Row, child: ChildProcess, port: number, tokens: string, runs: LoadResult[], redis: PrivateRedis | undefined, redisMicros: number[] }> = []
  for (const row of selected) {
    const redis = row.privateRedis === true ? await startPrivateRedis() : undefined
    if (redis !== undefined) redises.push(redis)
    const server = await startServer(row.spec!, redis === undefined ? env : { ...env, REDIS_URL: redis.url })
    children.push(server.child)
    server.child.removeAllListeners('exit')
    pin(server.child.pid!, 1)
    if (redis !== undefined) pin(redis.pid, 1)
    servers.push({ row, ...server, redis, tokens: row.tokens === 'none' ? 'none' : `${row.alg}:${row.tokens}`, runs: [] as LoadResult[], redisMicros: [] as number[] })
  }
  const runOn = async (s: typeof servers[number], seconds: number, tokens = s.tokens): Promise<LoadResult & { redisMicros?: number }> => {
    if (s.redis === undefined) return load.run({ port: s.port, pid: s.child.pid!, tokens, seconds, connections })
    // A row with its own Redis counts Redis's CPU over the run too: the system's cost, not the server's alone.
    const before = await s.redis.cpuMicros()
    const run = await load.run({ port: s.port, pid: s.child.pid!, tokens, seconds, connections })
    const redisMicros = await s.redis.cpuMicros() - before
    return { ...run, cpuMicros: run.cpuMicros + redisMicros, redisMicros }
  }
  for (const s of servers) {
    const warm = await runOn(s, Math.max(1, Math.ceil(duration / 2)), s.row.tokens === 'fleet' ? `${s.row.alg}:fleet-warm` : s.tokens)
    if (warm.non2xx > 0 || warm.requests === 0) throw new Error(`${s.row.id}: ${warm.non2xx} non-2xx of ${warm.requests} responses in the warm-up — the row is misconfigured`)
  }
  for (let r = 0; r < rounds; r++) {
    for (const s of servers) {
      const run = await runOn(s, duration)
      if (run.non2xx > 0) throw new Error(`${s.row.id}: ${run.non2xx} non-2xx responses — the row is misconfigured`)
      s.runs.push(run)
      if (run.redisMicros !== undefined) s.redisMicros.push(run.redisMicros / run.requests)
      process.stdout.write(`round ${r + 1}/${rounds} ${s.row.id.padEnd(12)} ${Math.round(run.rps).toString().padStart(6)} req/s  ${(run.cpuMicros / run.requests).toFixed(1).padStart(7)} µs/req\n`)
    }
  }
  for (const s of servers) s.child.kill('SIGTERM')
  for (const redis of redises) redis.stop()
  load.stop()
  jwksServer.close()

  const measured: Measured[] = servers.map((s) => ({
    row: s.row,
    rps: stat(s.runs.map((x) => x.rps)),
    cpu: stat(s.runs.map((x) => x.cpuMicros / x.requests)),
    ...(s.redisMicros.length > 0 ? { redis: stat(s.redisMicros) } : {}),
  }))
  const byId = new Map(measured.map((m) => [m.row.id, m]))

  const propagation: Array<Propagation & { kind: PropagationStore, killEvery: number | undefined }> = []
  // The *-killed rows kill B's store connections every second while revocations are made on A.
  for (const [id, kind, killEvery] of [['prop-redis', 'redis', undefined], ['prop-pg', 'postgres', undefined], ['prop-redis-killed', 'redis', 1000], ['prop-pg-killed', 'postgres', 1000]] as const) {
    if (!wanted(id)) continue
    process.stdout.write(`propagation: two instances on ${kind}${killEvery === undefined ? '' : ', B\'s connections killed every second'}…\n`)
    const p = await measurePropagation(kind, propagationSamples, killEvery)
    process.stdout.write(`propagation ${kind}: p50 ${p.p50.toFixed(2)} ms, p99 ${p.p99.toFixed(2)} ms, ${p.arrived}/${p.samples} arrived, ${p.resets} resets, ${p.kills} kills\n`)
    propagation.push({ kind, killEvery, ...p })
  }
  const memory: Memory[] = []
  if (wanted('memory')) {
    const run = async (what: string, n: number): Promise<Memory> => {
      process.stdout.write(`memory: ${what} with ${n.toLocaleString('en')} entries…\n`)
      const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', '--import', 'tsx', join(here, 'memory.ts'), what, String(n)], { maxBuffer: 1 << 20 })
      process.stdout.write(stdout)
      return JSON.parse(stdout) as Memory
    }
    const small = await run('cache', CACHED)
    const large = await run('cache', 2 * CACHED)
    // The app's fixed cost cancels out: what one more cached token costs.
    memory.push({ ...large, bytesPerEntry: Math.round((large.heapBytes - small.heapBytes) / CACHED) })
    memory.push(await run('store', 1_000_000))
  }

  const hookCosts: string[] = []
  if (wanted('hook-cost')) {
    // The hook alone, in one process pinned to CPU 1: CPU time per call, far steadier
    // than whole requests on a busy machine.
    const runs = [['hit', 'ES256'], ['dpop-hit', 'ES256'], ...['ES256', 'RS256', 'EdDSA'].flatMap((alg) => [['miss', alg], ['jose', alg]])]
    for (const [mode, alg] of runs) {
      const args = ['--import', 'tsx', join(here, 'hook-cost.ts'), mode!, alg!]
      const { stdout } = await promisify(execFile)(pinning ? 'taskset' : process.execPath, pinning ? ['-c', '1', process.execPath, ...args] : args)
      process.stdout.write(stdout)
      hookCosts.push(stdout.trim())
    }
  }

  const operator: Operator = { imports: [] }
  for (const [id, store] of [['import-file', 'file'], ['import-redis', 'redis'], ['import-pg', 'postgres']] as const) {
    if (!wanted(id)) continue
    const result = await measureImport(store)
    process.stdout.write(`import into ${store}: ${result.jtis.toLocaleString('en')} jtis in ${result.seconds.toFixed(2)} s\n`)
    operator.imports.push(result)
  }
  if (wanted('file-concurrent')) {
    operator.concurrent = await measureConcurrentRevocations()
    process.stdout.write(`FileStore concurrent revocations: ${Math.round(operator.concurrent.perSecond).toLocaleString('en')}/s in ${operator.concurrent.fsyncs} fsyncs\n`)
  }

  const scale: Scale = await measureScale(wanted, pinning ? cpuCount : 0)

  const report = render(byId, propagation, memory, hookCosts, operator, scale)
  process.stdout.write('\n' + report)
  if (write) {
    const file = join(here, '..', 'docs', 'benchmarks.md')
    const previous = await readFile(file, 'utf8').catch(() => null)
    await writeFile(file, mergeReport(report, previous))
    process.stdout.write('wrote docs/benchmarks.md\n')
  }
}

function render (
  byId: Map<string, Measured>,
  propagation: Array<Propagation & { kind: PropagationStore, killEvery: number | undefined }>,
  memory: Memory[],
  hookCosts: string[],
  operator: Operator,
  scale: Scale,
): string {
  const bare = byId.get('bare')
  const lines = [
    '# Benchmarks',
    '',
    `Measured by \`npm run bench\` on ${cpuCount} × ${cpus()[0]?.model.trim() ?? 'CPU'}, Node ${process.version}, ${process.platform}.`,
    '',
    '## Method',
    '',
    pinning
      ? '- Each server runs in its own process pinned to CPU 1 (`taskset -c 1`); the load generator (autocannon, ' +
        `${connections} connections) runs in another process pinned to CPU 0. A server gets one core, as in production with one process per core.`
      : `- Not pinned (${hasTaskset ? 'fewer than 2 CPUs' : '`taskset` not found'}): servers and the load generator share the CPUs.`,
    '- **CPU µs per request** is the server process\'s CPU time (utime + stime from `/proc/<pid>/stat`, every thread, ' +
      'clock ticks of `getconf CLK_TCK`) over one run, divided by the responses of that run. It is the figure to compare: ' +
      'req/s depends on how much CPU the load generator and the neighbours get, CPU per request hardly does.',
    `- After a warm-up run per server, ${rounds} rounds of ${duration} s, interleaved across servers (every server is up ` +
      'throughout), so a busy patch of the machine weighs on every row alike. Figures are medians, with the spread (min–max) of the rounds.',
    `- Every verifying row does the same checks on the same tokens: signature with one allow-listed algorithm, \`iss\`, \`aud\`, ` +
      `\`exp\` required and not passed, and a \`jti\` revocation lookup. Every row, bare ones included, receives the same \`Authorization\` header. "Miss" rows rotate through ${ROTATION.toLocaleString('en')} ` +
      `distinct tokens, more than the plugin's LRU of ${LRU.toLocaleString('en')}, so every request verifies a signature and asks the store.`,
    '',
    '| row | server (one core) | CPU µs per request | req/s |',
    '|---|---|---:|---:|',
    ...rows.filter((r) => byId.has(r.id) || (r.spec === null && (only === undefined || only.includes(r.id)))).map((r) => {
      const m = byId.get(r.id)
      return m === undefined
        ? `| ${r.id} | ${r.name} | ${r.note} | — |`
        : `| ${r.id} | ${r.name} | ${fmt(m.cpu, 1)} | ${fmt(m.rps)} |`
    }),
    '',
  ]
  const targets: string[] = []
  const verdict = (ok: boolean) => ok ? '**met**' : '**missed**'
  // On a busy machine two rows' rounds can overlap by more than a target: say so rather than call it.
  const overlap = (a: Measured, b: Measured) => Math.min(a.cpu.max, b.cpu.max) - Math.max(a.cpu.min, b.cpu.min)
  const judged = (ok: boolean, a: Measured, b: Measured, margin: number) =>
    overlap(a, b) > margin ? `not resolved by this run (their rounds overlap by ${overlap(a, b).toFixed(0)} µs; by the medians: ${ok ? 'met' : 'missed'})` : verdict(ok)
  const hit = byId.get('hit')
  if (bare && hit) {
    const added = hit.cpu.median - bare.cpu.median
    const floor = byId.get('bare-hook')
    targets.push(`- Cache hit adds **${added.toFixed(1)} µs** per request over bare Fastify (${hit.cpu.median.toFixed(1)} vs ${bare.cpu.median.toFixed(1)}): target ≤ 3 µs ${judged(added <= 3, hit, bare, 3)}.` +
      (floor ? ` An empty onRequest hook alone adds ${(floor.cpu.median - bare.cpu.median).toFixed(1)} µs.` : ''))
  }
  const fleet = byId.get('fleet')
  const fleetPeer = byId.get('fleet-fjwt')
  if (fleet && fleetPeer) {
    const ratio = fleetPeer.cpu.median / fleet.cpu.median
    // Resolved when the worst pairing of rounds agrees with the medians.
    const surely = fleetPeer.cpu.min / fleet.cpu.max >= 2 || fleetPeer.cpu.max / fleet.cpu.min < 2
    const fleetVerdict = surely ? verdict(ratio >= 2) : `not resolved by this run (the rounds' ratios span ${(fleetPeer.cpu.min / fleet.cpu.max).toFixed(2)}–${(fleetPeer.cpu.max / fleet.cpu.min).toFixed(2)}; by the medians: ${ratio >= 2 ? 'met' : 'missed'})`
    targets.push(`- Fleet (${fleetName}), server + Redis CPU per request: plugin ${fleet.cpu.median.toFixed(1)} µs (Redis ${fleet.redis?.median.toFixed(1)}), ` +
      `\`@fastify/jwt\` + verify cache + Redis in \`trusted\` ${fleetPeer.cpu.median.toFixed(1)} µs (Redis ${fleetPeer.redis?.median.toFixed(1)}): **${ratio.toFixed(2)}×** cheaper: target ≥ 2× ${fleetVerdict}.`)
  }
  const introspecting = byId.get('hit-introspect')
  if (hit && introspecting) {
    targets.push(`- An \`introspect: true\` route with a warm answer cache: ${introspecting.cpu.median.toFixed(1)} vs ${hit.cpu.median.toFixed(1)} µs for the plain route — **${(hit.cpu.median / introspecting.cpu.median).toFixed(2)}** of its throughput per core.`)
  }
  // Sender-constrained tokens cost a proof signature per request; say how much, against the Bearer rows of this run.
  for (const [id, bearerId] of [['dpop-hit', 'hit'], ['dpop-miss', 'miss-es256']] as const) {
    const dpop = byId.get(id)
    const bearer = byId.get(bearerId)
    if (dpop && bearer) {
      targets.push(`- ${id}: ${dpop.cpu.median.toFixed(1)} µs per request vs ${bearer.cpu.median.toFixed(1)} µs for \`${bearerId}\` (Bearer): **${(bearer.cpu.median / dpop.cpu.median).toFixed(2)}** of its throughput per core.`)
    } else if (dpop) {
      targets.push(`- ${id}: ${dpop.cpu.median.toFixed(1)} µs per request (run with \`${bearerId}\` for the ratio to Bearer).`)
    }
  }
  // A DPoP hit's budget: a Bearer hit, one bare jose ES256 verification (the jose row less bare Fastify) and 10 µs.
  const dpopHit = byId.get('dpop-hit')
  const joseEs256 = byId.get('jose-es256')
  if (dpopHit && hit && joseEs256 && bare) {
    const budget = hit.cpu.median + (joseEs256.cpu.median - bare.cpu.median) + 10
    targets.push(`- DPoP hit: ${dpopHit.cpu.median.toFixed(1)} µs against a budget of ${budget.toFixed(1)} (hit ${hit.cpu.median.toFixed(1)} + one jose ES256 verification ` +
      `${(joseEs256.cpu.median - bare.cpu.median).toFixed(1)} + 10): target ${judged(dpopHit.cpu.median <= budget, dpopHit, joseEs256, 10)}.`)
  }
  for (const alg of ALGS) {
    const a = alg.toLowerCase()
    const miss = byId.get(`miss-${a}`)
    const jose = byId.get(`jose-${a}`)
    const fjwt = byId.get(`fjwt-${a}`)
    if (miss && jose) {
      const ratio = jose.cpu.median / miss.cpu.median
      targets.push(`- ${alg} miss: ${miss.cpu.median.toFixed(1)} µs vs bare jose ${jose.cpu.median.toFixed(1)} µs — **${ratio.toFixed(2)}** of bare jose's throughput per core: target ≥ 0.95 ${judged(ratio >= 0.95, miss, jose, jose.cpu.median * 0.05)}.`)
    }
    if (miss && fjwt) {
      targets.push(`- ${alg} miss vs \`@fastify/jwt\` uncached: ${miss.cpu.median.toFixed(1)} vs ${fjwt.cpu.median.toFixed(1)} µs: target ≤ ${judged(miss.cpu.median <= fjwt.cpu.median, miss, fjwt, 0)}.`)
    }
  }
  for (const m of memory) {
    targets.push(m.what === 'cache'
      ? `- A cached token (ES256, the rows' claims, ${m.tokenChars} characters): **${m.bytesPerEntry} B** of heap each, the difference between caches of ${CACHED.toLocaleString('en')} and ${m.entries.toLocaleString('en')} tokens (the latter: ${m.heapMB} MB heap, RSS +${m.rssMB} MB): target ≤ 700 B ${verdict(m.bytesPerEntry <= 700)}.`
      : `- ${m.entries.toLocaleString('en')} revoked \`jti\`s in a MemoryStore: ${m.heapMB} MB heap (${m.bytesPerEntry} B each), RSS +${m.rssMB} MB.`)
  }
  for (const p of propagation) {
    const store = p.kind === 'redis' ? 'Redis' : 'PostgreSQL'
    targets.push(p.killEvery === undefined
      ? `- Revocation propagation between two instances on ${store} (revoke on A, poll B over HTTP, ${p.samples} samples): p50 **${p.p50.toFixed(2)} ms**, p99 **${p.p99.toFixed(2)} ms**; B reset its cache ${p.resets} times.`
      : `- The same on ${store} while B's store connections are killed every ${p.killEvery / 1000} s (${p.kills} kills): ${p.arrived}/${p.samples} revocations arrived, p50 **${p.p50.toFixed(2)} ms**, p99 **${p.p99.toFixed(2)} ms**, **${p.resets} resets** (each instance follows the revocation log from its cursor).`)
  }
  const importTarget: Record<ImportStore, number> = { file: 5, redis: 5, postgres: 10 }
  const storeName: Record<ImportStore, string> = { file: 'a FileStore', redis: 'Redis', postgres: 'PostgreSQL' }
  for (const i of operator.imports) {
    targets.push(`- \`fastify-jwt-revocation import\` of ${i.jtis.toLocaleString('en')} jtis into ${storeName[i.store]}, timed from the shell (process start included): **${i.seconds.toFixed(2)} s**: target ≤ ${importTarget[i.store]} s ${verdict(i.seconds <= importTarget[i.store])}.`)
  }
  const c = operator.concurrent
  if (c !== undefined) {
    targets.push(`- FileStore single revocations from ${c.callers.toLocaleString('en')} concurrent callers, each acknowledged once durable: **${Math.round(c.perSecond).toLocaleString('en')}/s** (${c.revocations.toLocaleString('en')} in ${c.fsyncs.toLocaleString('en')} group commits, one fsync each): target ≥ 20,000/s ${verdict(c.perSecond >= 20_000)}.`)
  }
  targets.push(...scaleTargets(scale))
  if (targets.length > 0) lines.push('## Against the targets', '', ...targets, '')
  if (hookCosts.length > 0) {
    lines.push('## The hook alone', '',
      '`bench/hook-cost.ts` calls the plugin\'s onRequest hook in a loop on a real Fastify request, pinned to CPU 1, and reads ' +
      'the process\'s CPU time (every thread); `jose` is jose\'s `jwtVerify` with the same checks on the same tokens. Medians of 7 runs:', '',
      ...hookCosts.map((h) => `- ${h}`), '')
    const perCall = (prefix: string) => Number(hookCosts.find((h) => h.startsWith(prefix))?.match(/: ([\d.]+) CPU/)?.[1])
    const [hitCall, dpopCall, joseCall] = [perCall('hit ES256'), perCall('dpop-hit ES256'), perCall('jose ES256')]
    if (![hitCall, dpopCall, joseCall].some(Number.isNaN)) {
      const budget = hitCall + joseCall + 10
      lines.push(`DPoP hit in the hook alone: ${dpopCall.toFixed(1)} µs against a budget of ${budget.toFixed(1)} (hit ${hitCall.toFixed(1)} + jose ES256 ${joseCall.toFixed(1)} + 10): ${verdict(dpopCall <= budget)}.`, '')
    }
  }
  return lines.join('\n')
}

main().catch((err) => {
  process.stderr.write(String(err?.stack ?? err) + '\n')
  process.exit(1)
})
