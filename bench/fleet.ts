// The fleet rows: a realistic mix of live tokens against a Redis-backed revocation
// check, counted as the whole system's CPU: the server's and Redis's own. Each row gets
// a private redis-server (its CPU is nobody else's), read with INFO cpu around each run.
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer, type AddressInfo } from 'node:net'
import { Redis } from 'ioredis'

/** 2,000 live tokens; 95 % of requests carry one of the busiest 500. */
export const FLEET = { live: 2_000, busiest: 500, busiestShare: 0.95 }
/** Requests in one pass of the mix before it repeats: long enough that its order does not matter. */
const SEQUENCE = 50_000

/**
 * The order in which the load generator sends `tokens` (the first `FLEET.live` are used):
 * each request draws from the busiest 500 with probability 0.95, else from the other
 * 1,500, uniformly within each group. A fixed seed: every run and row sends the same mix.
 */
export function fleetMix (tokens: string[]): string[] {
  const live = tokens.slice(0, FLEET.live)
  if (live.length < FLEET.live) throw new Error(`the fleet mix needs ${FLEET.live} tokens, got ${live.length}`)
  let seed = 0x2545f491
  // xorshift32: deterministic, and fast enough for 50,000 draws.
  const next = (): number => {
    seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5
    return (seed >>> 0) / 0x100000000
  }
  const rest = FLEET.live - FLEET.busiest
  return Array.from({ length: SEQUENCE }, () => next() < FLEET.busiestShare
    ? live[Math.floor(next() * FLEET.busiest)]!
    : live[FLEET.busiest + Math.floor(next() * rest)]!)
}

async function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.on('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo
      s.close(() => resolve(port))
    })
  })
}

export interface PrivateRedis {
  url: string
  pid: number
  /** Redis's own CPU time so far (INFO cpu: used_cpu_user + used_cpu_sys), in µs. */
  cpuMicros: () => Promise<number>
  stop: () => void
}

/** A redis-server of the bench's own on a free loopback port, without persistence. */
export async function startPrivateRedis (): Promise<PrivateRedis> {
  const port = await freePort()
  const child: ChildProcess = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'inherit'] })
  await new Promise<void>((resolve, reject) => {
    let log = ''
    child.on('error', reject)
    child.on('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${log.slice(-300)}`)))
    child.stdout!.on('data', (chunk: Buffer) => {
      log += chunk.toString()
      if (/Ready to accept connections/.test(log)) resolve()
    })
  })
  child.removeAllListeners('exit')
  const url = `redis://127.0.0.1:${port}`
  const info = new Redis(url)
  return {
    url,
    pid: child.pid!,
    async cpuMicros () {
      const text = await info.info('cpu')
      const field = (name: string) => Number(new RegExp(`^${name}:([0-9.]+)`, 'm').exec(text)?.[1] ?? NaN)
      return (field('used_cpu_user') + field('used_cpu_sys')) * 1e6
    },
    stop () {
      info.disconnect()
      child.kill('SIGKILL')
    },
  }
}
