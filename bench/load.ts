// The load generator, in its own process (pinned to its own CPU by bench/run.ts):
// receives token sets once, then one message per run, and answers with the run's
// figures. The server's CPU time is read here, right around autocannon.
import autocannon from 'autocannon'
import { cpuMicros } from './cpu.js'

export interface LoadRequest { port: number, pid: number, tokens: string, seconds: number, connections: number }
export interface LoadResult { rps: number, requests: number, non2xx: number, errors: number, cpuMicros: number, seconds: number }

const tokenSets = new Map<string, string[]>()

function run ({ port, pid, tokens, seconds, connections }: LoadRequest): Promise<LoadResult> {
  const set = tokenSets.get(tokens) ?? []
  let i = 0
  const started = performance.now()
  const cpuBefore = cpuMicros(pid)
  return new Promise((resolve, reject) => {
    autocannon({
      url: `http://127.0.0.1:${port}/orders`,
      connections,
      duration: seconds,
      requests: [{
        method: 'GET',
        setupRequest: (req) => {
          if (set.length > 0) req.headers = { authorization: `Bearer ${set[i++ % set.length]}` }
          return req
        },
      }],
    }, (err, r) => {
      if (err) return reject(err)
      const cpu = cpuMicros(pid) - cpuBefore
      const elapsed = (performance.now() - started) / 1000
      const requests = r['2xx'] + r.non2xx
      resolve({ rps: requests / elapsed, requests, non2xx: r.non2xx, errors: r.errors, cpuMicros: cpu, seconds: elapsed })
    })
  })
}

process.on('message', (message: { tokens?: Record<string, string[]>, run?: LoadRequest }) => {
  if (message.tokens) {
    for (const [name, set] of Object.entries(message.tokens)) tokenSets.set(name, set)
    process.send!({ ready: true })
  } else if (message.run) {
    run(message.run).then((result) => process.send!({ result }), (err: Error) => process.send!({ error: String(err.stack ?? err) }))
  }
})
process.send!({ started: true })
