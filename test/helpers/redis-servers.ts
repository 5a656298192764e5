// Private redis-server processes for the tests that need a topology the shared Redis
// cannot give: a Redis Cluster, a Sentinel-monitored master and replica, a server to
// stop and restart. Each lives in a temporary directory on free loopback ports and is
// killed at teardown. Without redis-server on PATH the test skips (fails under
// REQUIRE_SERVICES=1).
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Cluster, Redis } from 'ioredis'
import { connectRedis, serviceMissing, type Skippable } from './services.js'

const run = promisify(execFile)
const HOST = '127.0.0.1'

export async function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, HOST, () => {
      const { port } = s.address() as AddressInfo
      s.close(() => resolve(port))
    })
    s.on('error', reject)
  })
}

/** Starts `redis-server` with `args`; resolves once its log says `ready` (a pattern), rejects if it exits first. */
export function startRedisServer (args: string[], ready = /Ready to accept connections/): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'ignore'] })
    let log = ''
    const exited = () => reject(new Error(`redis-server ${args.join(' ')} exited before it was ready: ${log.slice(-500)}`))
    child.on('error', reject)
    child.on('exit', exited)
    child.stdout!.on('data', (chunk: Buffer) => {
      log += chunk.toString()
      if (ready.test(log)) {
        child.off('exit', exited)
        resolve(child)
      }
    })
  })
}

/** Stops `child` with `signal` and resolves once it has exited. */
export function stop (child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    child.once('exit', () => resolve())
    child.kill(signal)
  })
}

/**
 * A temporary directory and the processes started in it, all removed at teardown;
 * undefined (the test skipped, or failed under REQUIRE_SERVICES=1) without redis-server.
 */
async function workspace (t: Skippable, what: string): Promise<{ dir: string, track: (c: ChildProcess) => ChildProcess } | undefined> {
  try {
    await run('redis-server', ['--version'])
  } catch {
    return serviceMissing(t, `redis-server is not on PATH; install Redis to run the ${what} tests`)
  }
  const dir = await mkdtemp(join(tmpdir(), `jwt-revocation-${what.toLowerCase()}-`))
  const children: ChildProcess[] = []
  // Should the test process die before its teardown, its servers die with it.
  const killAll = () => { for (const c of children) c.kill('SIGKILL') }
  process.once('exit', killAll)
  t.teardown(async () => {
    process.off('exit', killAll)
    await Promise.all(children.map((c) => stop(c)))
    await rm(dir, { recursive: true, force: true })
  })
  return { dir, track: (c) => { children.push(c); return c } }
}

// No persistence, and a replica's first sync starts at once (diskless sync waits 5 s by default).
const base = (port: number, dir: string) => ['--port', String(port), '--bind', HOST, '--dir', dir, '--save', '', '--appendonly', 'no',
  '--repl-diskless-sync-delay', '0']

async function poll (what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** One-off command to a node on `port`. */
export async function command (port: number, ...args: string[]): Promise<unknown> {
  const client = new Redis({ host: HOST, port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
  client.on('error', () => {})
  try {
    await client.connect()
    return await client.call(args[0]!, ...args.slice(1))
  } finally {
    client.disconnect()
  }
}

export interface ClusterNodes { nodes: Array<{ host: string, port: number }> }

/** An ioredis Cluster client of `cluster`, disconnected at the test's teardown (its errors are the test's to see in replies). */
export function clusterClient (t: Skippable, cluster: ClusterNodes): Cluster {
  const client = new Cluster(cluster.nodes, { redisOptions: { maxRetriesPerRequest: 1 } })
  client.on('error', () => {})
  t.teardown(() => client.disconnect())
  return client
}

/** A Redis Cluster of `masters` masters (no replicas), every slot assigned and the cluster state ok. */
export async function startCluster (t: Skippable, masters = 3): Promise<ClusterNodes | undefined> {
  const ws = await workspace(t, 'Cluster')
  if (!ws) return undefined
  const ports: Array<[number, number]> = []
  // Each node's bus port is chosen too: the default, port + 10000, may be out of range.
  for (let i = 0; i < masters; i++) ports.push([await freePort(), await freePort()])
  await Promise.all(ports.map(([port, bus]) => startRedisServer([...base(port, ws.dir), '--cluster-enabled', 'yes',
    '--cluster-port', String(bus), '--cluster-config-file', `nodes-${port}.conf`, '--cluster-node-timeout', '2000']).then(ws.track)))
  await run('redis-cli', ['--cluster', 'create', ...ports.map(([port]) => `${HOST}:${port}`), '--cluster-yes'])
  await poll('cluster state ok', async () => {
    const infos = await Promise.all(ports.map(([port]) => command(port, 'CLUSTER', 'INFO')))
    return infos.every((info) => String(info).includes('cluster_state:ok'))
  })
  return { nodes: ports.map(([port]) => ({ host: HOST, port })) }
}

const fieldsOf = (flat: string[]): Record<string, string | undefined> =>
  Object.fromEntries(flat.flatMap((v, i) => (i % 2 === 0 ? [[v, flat[i + 1]]] : [])))

export interface SentinelSet {
  name: string
  sentinel: { host: string, port: number }
  master: ChildProcess
  /** The port of the master now, as the sentinel reports it. */
  masterPort: () => Promise<number>
}

/**
 * A master, one replica and one sentinel (quorum 1) watching them, the replica in sync
 * and known to the sentinel, so `SENTINEL FAILOVER` can promote it at once.
 */
export async function startSentinelSet (t: Skippable): Promise<SentinelSet | undefined> {
  const ws = await workspace(t, 'Sentinel')
  if (!ws) return undefined
  const name = 'revocations'
  const [masterPort, replicaPort, sentinelPort] = [await freePort(), await freePort(), await freePort()]
  const conf = join(ws.dir, 'sentinel.conf')
  await writeFile(conf, [
    `port ${sentinelPort}`, `bind ${HOST}`, `dir ${ws.dir}`,
    `sentinel monitor ${name} ${HOST} ${masterPort} 1`,
    `sentinel down-after-milliseconds ${name} 1000`,
    `sentinel failover-timeout ${name} 5000`,
  ].join('\n') + '\n')
  const [master] = await Promise.all([
    startRedisServer([...base(masterPort, ws.dir), '--dbfilename', 'master.rdb']).then(ws.track),
    startRedisServer([...base(replicaPort, ws.dir), '--dbfilename', 'replica.rdb', '--replicaof', HOST, String(masterPort)]).then(ws.track),
  ])
  await poll('the replica in sync', async () => String(await command(replicaPort, 'INFO', 'replication')).includes('master_link_status:up'))
  ws.track(await startRedisServer([conf, '--sentinel'], /\+monitor master/))
  // Only a replica the sentinel has read INFO from (its link to the master up) can be promoted.
  await poll('the sentinel to know the replica in sync', async () => {
    const replicas = await command(sentinelPort, 'SENTINEL', 'REPLICAS', name) as string[][]
    return replicas.length === 1 && fieldsOf(replicas[0]!)['master-link-status'] === 'ok'
  })
  return {
    name,
    sentinel: { host: HOST, port: sentinelPort },
    master: master!,
    masterPort: async () => Number((await command(sentinelPort, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name) as string[])[1]),
  }
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
    start: async () => { server = await startRedisServer(['--port', String(port), '--bind', HOST, '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', '']) },
    stop: () => new Promise<void>((resolve) => { server!.once('exit', () => resolve()); server!.kill('SIGTERM') }),
  }
}
