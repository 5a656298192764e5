// Project Wycheproof's JWS and JWK vectors, run through the plugin with every key source that
// can express their key, the vector's `result` as the oracle. The vectors are copied into
// fixtures/wycheproof/ (origin, licence and method in its README.md); WYCHEPROOF_DIR runs
// another copy.
//
// Each vector is sent twice: as published (its payload is "foo" or prose, never claims, so the
// oracle is only "never 200, never 500"), and rebuilt around valid claims with the vector's own
// private key (test/security/wycheproof-rebuild.ts), where `valid` must answer 200 and anything else 400
// or 401. A key source that refuses the key at registration refuses every token.
import Fastify, { type FastifyInstance } from 'fastify'
import { createPublicKey, type JsonWebKey } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import t from 'tap'
import jwtRevocation, { type JwtRevocationOptions } from '../../src/index.js'
import { allowsVerification } from '../../src/token/key-policy.js'
import { AUDIENCE, bearer, ISSUER, json, jwksServer } from '../helpers/helpers.js'
import { claimsPayload, GroupKey, rebuild, signedToken, type Jwk } from './wycheproof-rebuild.js'

const dir = process.env.WYCHEPROOF_DIR === undefined ? join(import.meta.dirname, '..', 'fixtures', 'wycheproof') : resolve(process.env.WYCHEPROOF_DIR)

interface Test { tcId: number, comment: string, jws: string | object, result: 'valid' | 'invalid' | 'acceptable', flags: string[] }
interface Group { comment: string, private: Jwk & { keys?: Jwk[] }, public?: Jwk & { keys?: Jwk[] }, tests: Test[] }
interface VectorFile { testGroups: Group[] }

// Where fixtures/wycheproof/README.md departs from the published results.
const TAKEN_AS_INVALID = new Set([372, 373]) // a "?" inside a base64url segment (RFC 7515 §2)
// Sent as published only: PSS encodings changed in more than one byte of what is hashed (no
// search finds the change to carry over), and keys too broken to sign with (every source refuses
// them at registration anyway).
const NOT_REBUILT = ['jws #280', 'jws #291', 'jws #296', 'jws #297', 'jws #298', 'jws #299', 'jws #306', 'jws #307', 'jws #316', 'jwk #22', 'jwk #23', 'jwk #24']

interface Source { name: string, options: Partial<JwtRevocationOptions> & Record<string, unknown> }
interface Case { id: string, expected: 'valid' | 'invalid', published: string, rebuilt?: string, how: string }
interface Unit { sources: Source[], cases: Case[] }

const headerOf = (token: string) => token.split('.')[0]!
const algOf = (segment: string): string => {
  try {
    return JSON.parse(Buffer.from(segment, 'base64url').toString('utf8')).alg
  } catch {
    return 'none'
  }
}
const pem = (jwk: Jwk) => createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' }).export({ format: 'pem', type: 'spki' })
/** Whether the key's metadata lets it verify `alg`: only then can a PEM (which has none) stand for it. */
const metadataAllows = (jwk: Jwk, alg: string) => allowsVerification(jwk) && (jwk.alg === undefined || jwk.alg === alg)

function likeness (a: string, b: string): number {
  let prefix = 0
  while (prefix < a.length && a[prefix] === b[prefix]) prefix++
  let suffix = 0
  while (suffix < a.length - prefix && suffix < b.length - prefix && a.at(-1 - suffix) === b.at(-1 - suffix)) suffix++
  return prefix + suffix
}

function jwsUnits (file: VectorFile): Unit[] {
  return file.testGroups.map((group) => {
    const expected = (test: Test) => test.result === 'valid' && !TAKEN_AS_INVALID.has(test.tcId) ? 'valid' : 'invalid'
    const valid = group.tests.filter((test) => expected(test) === 'valid' && typeof test.jws === 'string').map((test) => test.jws as string)
    const alg = algOf(headerOf(valid[0] ?? (group.tests[0]!.jws as string)))
    const key = new GroupKey(group.private)
    const sources: Source[] = []
    if (key.secret !== undefined) sources.push({ name: 'secret', options: { secret: key.secret, algorithms: [alg] } })
    else if (group.public !== undefined) {
      const pub = group.public
      // RFC 7520 keys carry an alg Wycheproof gave them that contradicts their valid tokens: PEM only.
      const contradicted = pub.alg !== undefined && pub.alg !== alg && group.tests.every((test) => expected(test) === 'valid')
      // A PEM is the same key without metadata: it adds a case only where the JWK cannot serve.
      if (contradicted) sources.push({ name: 'publicKey PEM', options: { publicKey: pem(pub), algorithms: [alg] } })
      else {
        sources.push({ name: 'jwks', options: { jwks: { keys: [pub] } } })
        sources.push({ name: 'publicKey JWK', options: { publicKey: pub, algorithms: [alg] } })
      }
    }
    const cases = group.tests.map((test): Case => {
      const published = typeof test.jws === 'string' ? test.jws : JSON.stringify(test.jws)
      const exp = expected(test)
      const reference = exp === 'valid' ? published : valid.filter((v) => v !== published).sort((a, b) => likeness(b, published) - likeness(a, published))[0]
      const { token, how } = rebuild(published, reference, key, claimsPayload(ISSUER, AUDIENCE), test.comment)
      return { id: `jws #${test.tcId} ${test.comment}`, expected: exp, published, rebuilt: token, how }
    })
    return { sources, cases }
  })
}

function jwkUnits (file: VectorFile, jwksUrl: (keys: Jwk[]) => string): Unit[] {
  const units: Unit[] = []
  for (const group of file.testGroups) {
    for (const test of group.tests) {
      const published = test.jws as string
      const header = headerOf(published)
      const alg = algOf(header)
      const kid = JSON.parse(Buffer.from(header, 'base64url').toString('utf8')).kid
      const expected = test.result === 'valid' ? 'valid' : 'invalid'
      const privateKeys = group.private.keys ?? [group.private]
      const sources: Source[] = []
      if (group.public?.keys !== undefined) {
        const keys = group.public.keys
        sources.push({ name: 'jwks', options: { jwks: { keys } } })
        sources.push({ name: 'jwksUri', options: { jwksUri: jwksUrl(keys) } })
        if (keys.length === 1) {
          sources.push({ name: 'publicKey JWK', options: { publicKey: keys[0], algorithms: [alg] } })
          let text: string | Buffer | undefined
          try { text = metadataAllows(keys[0]!, alg) ? pem(keys[0]!) : undefined } catch { /* not importable: the JWK sources refuse it */ }
          if (text !== undefined) sources.push({ name: 'publicKey PEM', options: { publicKey: text, algorithms: [alg] } })
        }
      } else if (privateKeys.length === 1 && privateKeys[0]!.kty === 'oct') {
        const jwk = privateKeys[0]!
        sources.push({ name: 'secret', options: { secret: Buffer.from(jwk.k ?? '', 'base64url'), algorithms: [jwk.alg ?? alg] } })
      } else if (expected === 'invalid') {
        sources.push({ name: 'jwks', options: { jwks: { keys: privateKeys } } })
      } else {
        t.comment(`not expressible: jwk #${test.tcId} ${test.comment} (a key set of HMAC keys; the plugin takes one secret)`)
        continue
      }
      let rebuilt: string | undefined
      let how = 'key defect'
      try {
        const signer = privateKeys.find((k) => k.kid === kid) ?? privateKeys[0]!
        rebuilt = signedToken(header, claimsPayload(ISSUER, AUDIENCE), new GroupKey(signer))
      } catch {
        how = 'the private key cannot sign'
      }
      units.push({ sources, cases: [{ id: `jwk #${test.tcId} ${group.comment} ${test.comment}`, expected, published, rebuilt, how }] })
    }
  }
  return units
}

async function appFor (options: Source['options']): Promise<FastifyInstance | Error> {
  const app = Fastify()
  try {
    await app.register(jwtRevocation, { audience: AUDIENCE, issuer: ISSUER, cache: false, ...options } as JwtRevocationOptions)
    app.get('/orders', async () => 'ok')
    await app.ready()
    return app
  } catch (err) {
    await app.close()
    return err as Error
  }
}

if (!existsSync(join(dir, 'json_web_signature_test.json'))) {
  // The vectors are part of the repository: a clone without them is broken, not a reason to skip.
  t.fail(`Wycheproof vectors not found at ${dir} (see test/fixtures/wycheproof/README.md; WYCHEPROOF_DIR points elsewhere)`)
} else {
  t.test('every Wycheproof JWS and JWK vector the options can express answers as its result says', async (t) => {
    const read = (name: string) => JSON.parse(readFileSync(join(dir, name), 'utf8')) as VectorFile
    const sets = new Map<string, Jwk[]>()
    const srv = await jwksServer(t, (path, res) => sets.has(path) ? json(res, { keys: sets.get(path) }) : json(res, {}, 404))
    const jwksUrl = (keys: Jwk[]) => {
      const path = `/set-${sets.size}.json`
      sets.set(path, keys)
      return srv.url + path
    }
    const units = [...jwsUnits(read('json_web_signature_test.json')), ...jwkUnits(read('json_web_key_test.json'), jwksUrl)]

    const mismatches: string[] = []
    const carried = new Map<string, number>()
    let sent = 0
    for (const unit of units) {
      for (const c of unit.cases) carried.set(c.how, (carried.get(c.how) ?? 0) + 1)
      for (const source of unit.sources) {
        const app = await appFor(source.options)
        // Concurrently: jose verifies on the WebCrypto thread pool.
        await Promise.all(unit.cases.map(async (c) => {
          const report = (what: string) => mismatches.push(`${c.id} via ${source.name}: ${what}`)
          if (app instanceof Error) {
            if ((app as { code?: string }).code !== 'FST_JWT_REVOCATION_INVALID_OPTION') report(`ready() failed without a clear reason: ${app.message}`)
            else if (c.expected === 'valid' && c.rebuilt !== undefined) report(`ready() refused the key: ${app.message}`)
            return
          }
          const published = await app.inject({ url: '/orders', headers: bearer(c.published) })
          sent++
          if (published.statusCode === 200 || published.statusCode >= 500) report(`as published answered ${published.statusCode}`)
          if (c.rebuilt === undefined) return
          const rebuilt = await app.inject({ url: '/orders', headers: bearer(c.rebuilt) })
          sent++
          const ok = c.expected === 'valid' ? rebuilt.statusCode === 200 : rebuilt.statusCode === 400 || rebuilt.statusCode === 401
          if (!ok) report(`with valid claims (${c.how}) answered ${rebuilt.statusCode}, expected ${c.expected === 'valid' ? 200 : '400 or 401'}`)
        }))
        if (!(app instanceof Error)) await app.close()
      }
    }
    const cases = units.flatMap((u) => u.cases)
    t.comment(`${cases.length} vectors, ${sent} requests; how each defect was carried over: ${[...carried].map(([how, n]) => `${how} ${n}`).join(', ')}`)
    t.same(mismatches, [], 'no vector answers against its result')
    // The rebuilding must keep working: a vector silently left as published would weaken the check.
    t.same(cases.filter((c) => c.rebuilt === undefined).map((c) => c.id.split(' ').slice(0, 2).join(' ')), NOT_REBUILT, 'every other defect is rebuilt around valid claims')
  })
}
