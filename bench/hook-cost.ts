// The plugin's onRequest hook alone, in this process: CPU µs per call on a cache hit
// (one token) or a miss (rotating tokens), or jose alone on the miss tokens.
// Complements `npm run bench` (whole requests) when working on the hook:
//   node --import tsx bench/hook-cost.ts [hit|miss|jose] [ES256|RS256|EdDSA]
// (jose: jose's jwtVerify alone on the miss tokens, with the same checks: the ceiling;
// hit-introspect: a hit on an `introspect: true` route whose answer is cached;
// dpop-hit: one DPoP-bound ES256 token, cached, with a new ES256 proof on every call.)
//   node --cpu-prof --import tsx bench/hook-cost.ts hit   (then open the .cpuprofile)
//   CACHE_MAX=1 … miss   (the token cache of the plugin, default 1,000)
import Fastify, { type FastifyReply, type FastifyRequest, type onRequestHookHandler } from 'fastify'
import { calculateJwkThumbprint, createLocalJWKSet, exportJWK, generateKeyPair, jwtVerify, SignJWT } from 'jose'
import { createHash, randomUUID } from 'node:crypto'
import jwtRevocation from 'fastify-jwt-revocation'
import { existsSync, readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { AUDIENCE, DPOP_PUBLIC_URL, ISSUER } from './config.js'

const [mode = 'hit', alg = 'ES256'] = process.argv.slice(2)
const { privateKey, publicKey } = await generateKeyPair(alg)
const jwk = { ...(await exportJWK(publicKey)), kid: 'k', alg }
const hitMode = mode === 'hit' || mode === 'hit-introspect'
const dpopMode = mode === 'dpop-hit'
const count = hitMode || dpopMode ? 1 : 5_000
// DPoP: the client's key, the token bound to it, and a proof per call (each is accepted once).
const client = dpopMode ? await generateKeyPair('ES256') : undefined
const clientJwk = client ? await exportJWK(client.publicKey) : undefined
const cnf = clientJwk ? { cnf: { jkt: await calculateJwkThumbprint(clientJwk) } } : {}
const tokens = await Promise.all(Array.from({ length: count }, (_, i) => new SignJWT({ scope: 'read:orders', azp: 'partner', ...cnf })
  .setProtectedHeader({ alg, kid: 'k' }).setIssuer(ISSUER).setAudience(AUDIENCE).setSubject('partner@clients')
  .setIssuedAt().setExpirationTime('2h').setJti(`jti-${i}`).sign(privateKey)))

const app = Fastify()
let hook: onRequestHookHandler | undefined
const addHook = app.addHook
app.addHook = function (this: typeof app, name: string, fn: onRequestHookHandler) {
  if (name === 'onRequest') hook ??= fn
  return (addHook as (name: string, fn: unknown) => typeof app).call(this, name, fn)
} as unknown as typeof app.addHook
// An endpoint that finds every token active, asked once: the answer stays cached for the run.
const introspection = mode === 'hit-introspect' ? await activeEverywhere() : undefined
await app.register(jwtRevocation, {
  jwks: { keys: [jwk] }, issuer: ISSUER, audience: AUDIENCE, algorithms: [alg], cache: { max: Number(process.env.CACHE_MAX ?? 1_000), ttl: 60_000 },
  ...(introspection ? { introspection } : {}),
  ...(dpopMode ? { dpop: { required: true, proofMaxAge: '1h' }, publicUrl: DPOP_PUBLIC_URL } : {}),
})
let captured: { request: FastifyRequest, reply: FastifyReply } | undefined
app.get('/orders', { config: { auth: { introspect: introspection !== undefined } } }, async (request, reply) => { captured = { request, reply }; return { ok: true } })
await app.ready()
const dpopRuns = 3_000
const ath = createHash('sha256').update(tokens[0]!).digest('base64url')
const proofs = client === undefined
  ? []
  : await Promise.all(Array.from({ length: dpopRuns * 8 + 1 }, () => new SignJWT({ htm: 'GET', htu: `${DPOP_PUBLIC_URL}/orders`, jti: randomUUID(), ath })
    .setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk: clientJwk! }).setIssuedAt().sign(client.privateKey)))
const scheme = dpopMode ? 'DPoP' : 'Bearer'
const res = await app.inject({ url: '/orders', headers: { authorization: `${scheme} ${tokens[0]}`, ...(dpopMode ? { dpop: proofs[0]! } : {}) } })
if (res.statusCode !== 200 || !hook || !captured) throw new Error(`setup failed: ${res.statusCode} ${res.body}`)
const { request, reply } = captured
const headers = tokens.map((t) => `${scheme} ${t}`)
let nextProof = 1

async function activeEverywhere () {
  const endpoint = createServer((_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{"active":true}') })
  await new Promise<void>((resolve) => endpoint.listen(0, '127.0.0.1', resolve))
  endpoint.unref()
  const origin = `http://127.0.0.1:${(endpoint.address() as import('node:net').AddressInfo).port}`
  return { endpoint: `${origin}/introspect`, allowedOrigins: [origin], clientId: 'bench', clientSecret: 'bench', cache: '1h' }
}

const localJwks = createLocalJWKSet({ keys: [jwk] })
const revoked = new Set(['some-revoked-jti'])
async function joseOnce (i: number): Promise<void> {
  const { payload } = await jwtVerify(tokens[i % tokens.length]!, localJwks, { issuer: ISSUER, audience: AUDIENCE, algorithms: [alg], requiredClaims: ['exp'] })
  if (revoked.has(payload.jti!)) throw new Error('revoked')
}

function once (i: number): Promise<void> {
  request.headers.authorization = headers[i % headers.length]
  if (dpopMode) request.headers.dpop = proofs[nextProof++]
  return new Promise((resolve, reject) => hook!.call(app, request, reply, (err?: Error) => err ? reject(err) : resolve()))
}

// Sync loop for a hit (the hook must call done() before returning), awaited for a miss.
// Process CPU time (every thread: jose's signature checks run on libuv's pool), in ns.
const cpuNs = () => { const { user, system } = process.cpuUsage(); return (user + system) * 1000 }
// The main thread's own CPU time in ns (Linux schedstat): what runs the hook, its
// reactions and the collector's main-thread work; the rest is libuv's pool (the signatures).
const mainStat = '/proc/thread-self/schedstat'
const hasMainStat = existsSync(mainStat)
const mainNs = () => hasMainStat ? Number(readFileSync(mainStat, 'latin1').split(' ')[0]) : NaN

let mainSample = 0
async function measure (n: number): Promise<number> {
  const start = cpuNs()
  const mainStart = mainNs()
  if (hitMode) {
    let called = 0
    const done = () => { called++ }
    for (let i = 0; i < n; i++) hook!.call(app, request, reply, done)
    if (called !== n) throw new Error('a hit did not complete synchronously')
  } else if (mode === 'jose') {
    for (let i = 0; i < n; i++) await joseOnce(i)
  } else {
    for (let i = 0; i < n; i++) await once(i)
  }
  const total = (cpuNs() - start) / n
  mainSample = (mainNs() - mainStart) / n
  return total
}

const n = hitMode ? 1_000_000 : dpopMode ? dpopRuns : 5_000
await measure(n)
const samples: number[] = []
const mainSamples: number[] = []
for (let r = 0; r < 7; r++) { samples.push(await measure(n)); mainSamples.push(mainSample) }
samples.sort((a, b) => a - b)
mainSamples.sort((a, b) => a - b)
const main = hasMainStat ? `; main thread ${(mainSamples[3]! / 1000).toFixed(3)}` : ''
process.stdout.write(`${mode} ${alg}: ${(samples[3]! / 1000).toFixed(3)} CPU µs per call (min ${(samples[0]! / 1000).toFixed(3)}, ${n} calls × 7${main})\n`)
