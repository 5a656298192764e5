// The load generator, in its own process (pinned to its own CPU by bench/run.ts):
// receives token sets once, then one message per run, and answers with the run's
// figures. The server's CPU time is read here, right around autocannon.
import autocannon from 'autocannon'
import { createHash, randomUUID } from 'node:crypto'
import { importJWK, SignJWT, type JWK } from 'jose'
import { cpuMicros } from './cpu.js'
import { DPOP_PUBLIC_URL, type DpopLoad } from './config.js'

export interface LoadRequest { port: number, pid: number, tokens: string, seconds: number, connections: number }
export interface LoadResult { rps: number, requests: number, non2xx: number, errors: number, cpuMicros: number, seconds: number }

const tokenSets = new Map<string, string[]>()
/** DPoP rows: proof k is for token k of its set; each is sent once, so the count runs on across runs. */
const proofSets = new Map<string, { proofs: string[], next: number }>()

/** Signs `count` proofs up front (jose, not the code under test), so the run measures the server alone. */
async function signProofs (dpop: DpopLoad, name: string, tokens: string[], count: number): Promise<void> {
  const key = await importJWK(dpop.privateJwk as JWK, 'ES256')
  const header = { typ: 'dpop+jwt', alg: 'ES256', jwk: dpop.publicJwk as JWK }
  const hashes = tokens.map((t) => createHash('sha256').update(t).digest('base64url'))
  const proofs: string[] = []
  for (let k = 0; k < count; k++) {
    proofs.push(await new SignJWT({ htm: 'GET', htu: `${DPOP_PUBLIC_URL}/orders`, jti: randomUUID(), ath: hashes[k % hashes.length] })
      .setProtectedHeader(header).setIssuedAt().sign(key))
  }
  proofSets.set(name, { proofs, next: 0 })
}

function run ({ port, pid, tokens, seconds, connections }: LoadRequest): Promise<LoadResult> {
  const set = tokenSets.get(tokens) ?? []
  const dpop = proofSets.get(tokens)
  let i = dpop?.next ?? 0
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
          if (dpop !== undefined) {
            // Past the last proof, the first ones come again: refused as replays, and the run reports non-2xx.
            const k = i++
            req.headers = { authorization: `DPoP ${set[k % set.length]}`, dpop: dpop.proofs[k % dpop.proofs.length]! }
            dpop.next = i
          } else if (set.length > 0) req.headers = { authorization: `Bearer ${set[i++ % set.length]}` }
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

process.on('message', (message: { tokens?: Record<string, string[]>, dpop?: DpopLoad, run?: LoadRequest }) => {
  if (message.tokens) {
    for (const [name, set] of Object.entries(message.tokens)) tokenSets.set(name, set)
    const { dpop } = message
    const signing = dpop === undefined
      ? Promise.resolve()
      : Promise.all(Object.entries(dpop.proofs).map(([name, count]) => signProofs(dpop, name, tokenSets.get(name)!, count)))
    signing.then(() => process.send!({ ready: true }), (err: Error) => process.send!({ error: String(err.stack ?? err) }))
  } else if (message.run) {
    run(message.run).then((result) => process.send!({ result }), (err: Error) => process.send!({ error: String(err.stack ?? err) }))
  }
})
process.send!({ started: true })
