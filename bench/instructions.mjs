// Instructions per request under callgrind: a count, not a time, so it is the same on a
// busy machine as on a quiet one. It compares the plugin's onRequest hook on a miss
// (every request a new token, MemoryStore) with a bare jose `jwtVerify` hook doing the
// same checks, on the same tokens, in this process (the signature's work in libuv's pool
// included). Each side runs twice, with 3,000 and 8,000 requests; the difference divided
// by 5,000 is one request in steady state, without start-up, key generation, signing and
// V8's optimising compiler (under valgrind it is still at work well past 1,000 requests).
//   npm run build && node bench/instructions.mjs [ES256|RS256|EdDSA]   (valgrind required; a few minutes)
//   npm run build && node bench/instructions.mjs dpop
// dpop: a DPoP request whose ES256 token is cached, with a new ES256 proof each time, against
// jose's jwtVerify of the same proofs with the client's key already imported (the budget of
// a DPoP hit is a Bearer hit plus that verification). Tokens and proofs are signed outside valgrind.
// Plain JavaScript on the built package: under valgrind, a TypeScript loader would be measured too.
// V8 runs in predictable mode (no background threads, a fixed GC schedule) with one libuv
// thread, and each run ends with a full collection: otherwise the collector's timing
// heuristics, and where its schedule stands at the end, move a count by ±10k.
// Two limits: valgrind hides the CPU's SHA extensions, so OpenSSL hashes in software and
// the token's digest counts about 10 times what it costs natively (~11k instructions for
// an ES256 token, ~20k for RS256); and a count weighs a cache miss like any instruction.
// For time, use bench/hook-cost.ts pinned to one CPU.
import { execFile } from 'node:child_process'
import { readFile, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const ISSUER = 'https://issuer.bench/'
const AUDIENCE = 'https://api.bench'
const TOKENS = 2_000
const FEW = 3_000
const MANY = 8_000
const [first = 'ES256', second, third] = process.argv.slice(2)

if (first === '--child') await child(second, third)
else await compare(first)

async function compare (alg) {
  const dir = await mkdtemp(join(tmpdir(), 'instructions-'))
  // One key for every run: an RSA key's generation costs a different count each time (its prime search).
  const { exportJWK, exportPKCS8, generateKeyPair } = await import('jose')
  const { privateKey, publicKey } = await generateKeyPair(alg === 'dpop' ? 'ES256' : alg, { extractable: true })
  const env = { ...process.env, INSTRUCTIONS_KEY: JSON.stringify({ pkcs8: await exportPKCS8(privateKey), jwk: await exportJWK(publicKey) }) }
  if (alg === 'dpop') env.INSTRUCTIONS_DPOP = await writeDpopRequests(dir, privateKey)
  const run = async (side, n) => {
    const out = join(dir, `${side}.${n}.out`)
    await promisify(execFile)('valgrind', ['--tool=callgrind', `--callgrind-out-file=${out}`, '-q',
      process.execPath, '--predictable', '--predictable-gc-schedule', '--expose-gc', import.meta.filename, '--child', `${side}:${alg}`, String(n)],
    { maxBuffer: 1 << 24, env: { ...env, UV_THREADPOOL_SIZE: '1' } })
    const total = /^(?:summary|totals): (\d+)/m.exec(await readFile(out, 'utf8'))
    if (!total) throw new Error(`no total in ${out}`)
    return Number(total[1])
  }
  const perRequest = async (side) => {
    const [few, many] = await Promise.all([run(side, FEW), run(side, MANY)])
    return (many - few) / (MANY - FEW)
  }
  try {
    const [jose, plugin] = await Promise.all([perRequest('jose'), perRequest('plugin')])
    if (alg === 'dpop') {
      process.stdout.write(`dpop: plugin DPoP hit ${Math.round(plugin)} instructions per request, jose's verification of the proof ${Math.round(jose)}: ` +
        `+${Math.round(plugin - jose)}\n`)
      return
    }
    process.stdout.write(`${alg}: plugin miss ${Math.round(plugin)} instructions per request, bare jose ${Math.round(jose)}: ` +
      `jose/plugin ${(jose / plugin).toFixed(3)} (+${Math.round(plugin - jose)})\n`)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/** A DPoP-bound ES256 token and MANY proofs of its client, one per request, in a file the children read. */
async function writeDpopRequests (dir, privateKey) {
  const { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT } = await import('jose')
  const { createHash, randomUUID } = await import('node:crypto')
  const { writeFile } = await import('node:fs/promises')
  const client = await generateKeyPair('ES256', { extractable: true })
  const clientJwk = await exportJWK(client.publicKey)
  const token = await new SignJWT({ scope: 'read:orders', azp: 'partner', cnf: { jkt: await calculateJwkThumbprint(clientJwk) } })
    .setProtectedHeader({ alg: 'ES256', kid: 'k' }).setIssuer(ISSUER).setAudience(AUDIENCE).setSubject('partner@clients')
    .setIssuedAt().setExpirationTime('2h').setJti('bound').sign(privateKey)
  const ath = createHash('sha256').update(token).digest('base64url')
  const proofs = await Promise.all(Array.from({ length: MANY + 1 }, () => new SignJWT({ htm: 'GET', htu: `${AUDIENCE}/orders`, jti: randomUUID(), ath })
    .setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk: clientJwk }).setIssuedAt().sign(client.privateKey)))
  const file = join(dir, 'dpop.json')
  await writeFile(file, JSON.stringify({ token, clientJwk, proofs }))
  return file
}

async function child (spec, count) {
  const [side, alg] = spec.split(':')
  const n = Number(count)
  if (alg === 'dpop') return dpopChild(side, n)
  const { createLocalJWKSet, importPKCS8, jwtVerify, SignJWT } = await import('jose')
  const given = JSON.parse(process.env.INSTRUCTIONS_KEY)
  const privateKey = await importPKCS8(given.pkcs8, alg)
  const jwk = { ...given.jwk, kid: 'k', alg }
  const tokens = await Promise.all(Array.from({ length: TOKENS }, (_, i) => new SignJWT({ scope: 'read:orders', azp: 'partner' })
    .setProtectedHeader({ alg, kid: 'k' }).setIssuer(ISSUER).setAudience(AUDIENCE).setSubject('partner@clients')
    .setIssuedAt().setExpirationTime('2h').setJti(`jti-${i}`).sign(privateKey)))
  let once
  if (side === 'jose') {
    const keys = createLocalJWKSet({ keys: [jwk] })
    const revoked = new Set(['some-revoked-jti'])
    once = async (i) => {
      const { payload } = await jwtVerify(tokens[i], keys, { issuer: ISSUER, audience: AUDIENCE, algorithms: [alg], requiredClaims: ['exp'] })
      if (revoked.has(payload.jti)) throw new Error('revoked')
    }
  } else {
    // The hook as Fastify calls it, on a real request object, with a cache smaller than the rotation.
    // INSTRUCTIONS_OPTIONS: plugin options over these (JSON), to weigh a part: '{"cache":false}'.
    const { request, call } = await pluginHook({
      jwks: { keys: [jwk] }, issuer: ISSUER, audience: AUDIENCE, algorithms: [alg], cache: { max: 1_000, ttl: 60_000 },
      ...JSON.parse(process.env.INSTRUCTIONS_OPTIONS ?? '{}'),
    }, { authorization: `Bearer ${tokens[0]}` })
    const headers = tokens.map((t) => `Bearer ${t}`)
    once = (i) => {
      request.headers.authorization = headers[i]
      return call()
    }
  }
  for (let i = 0; i < n; i++) await once((i + 1) % TOKENS)
  // Every run ends with a full collection: the garbage of its requests is counted whole,
  // wherever the collector's schedule stood when the loop ended.
  globalThis.gc()
}

/** The DPoP sides: the plugin's hook on a DPoP request whose token is cached, or jose verifying the proof alone. */
async function dpopChild (side, n) {
  const { importJWK, jwtVerify } = await import('jose')
  const given = JSON.parse(process.env.INSTRUCTIONS_KEY)
  const { token, clientJwk, proofs } = JSON.parse(await readFile(process.env.INSTRUCTIONS_DPOP, 'utf8'))
  let once
  if (side === 'jose') {
    const clientKey = await importJWK(clientJwk, 'ES256')
    once = async (i) => {
      await jwtVerify(proofs[i], clientKey, { typ: 'dpop+jwt', algorithms: ['ES256'], requiredClaims: ['jti', 'htm', 'htu', 'iat'] })
    }
  } else {
    const { request, call } = await pluginHook({
      jwks: { keys: [{ ...given.jwk, kid: 'k', alg: 'ES256' }] }, issuer: ISSUER, audience: AUDIENCE, algorithms: ['ES256'],
      dpop: { required: true, proofMaxAge: '1h' }, publicUrl: AUDIENCE,
    }, { authorization: `DPoP ${token}`, dpop: proofs[MANY] })
    once = (i) => {
      request.headers.dpop = proofs[i]
      return call()
    }
  }
  for (let i = 0; i < n; i++) await once(i)
  globalThis.gc()
}

/**
 * The plugin's onRequest hook registered with `options`, as Fastify calls it, on the real
 * request object of a first request sent with `headers` (which must pass): `call` runs
 * the hook once more on that request, as the caller has changed its headers.
 */
async function pluginHook (options, headers) {
  const { default: Fastify } = await import('fastify')
  const { default: jwtRevocation } = await import('fastify-jwt-revocation')
  const app = Fastify()
  let hook
  const addHook = app.addHook
  app.addHook = function (name, fn) { if (name === 'onRequest') hook ??= fn; return addHook.call(this, name, fn) }
  await app.register(jwtRevocation, options)
  let captured
  app.get('/orders', async (request, reply) => { captured = { request, reply }; return 'ok' })
  await app.ready()
  const res = await app.inject({ url: '/orders', headers })
  if (res.statusCode !== 200) throw new Error(`setup failed: ${res.statusCode} ${res.body}`)
  const { request, reply } = captured
  return { request, call: () => new Promise((resolve, reject) => hook.call(app, request, reply, (err) => err ? reject(err) : resolve())) }
}
