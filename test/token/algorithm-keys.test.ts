// An allow-listed algorithm no configured key can verify: a static key set fails ready()
// naming it and the keys present; a remote set, whose keys rotate, is reported once.
import Fastify from 'fastify'
import t from 'tap'
import jwtRevocation from '../../src/index.js'
import { AUDIENCE, bearer, buildApp, ISSUER, json, jwksServer, makeKey, readyError, sign } from '../helpers/helpers.js'

const ec = await makeKey('ES256', 'ec')
const rsa = await makeKey('RS256', 'rsa')
const { alg: _ecAlg, ...ecWithoutAlg } = ec.publicJwk

t.test('a static JWKS refuses an allow-listed algorithm none of its keys verifies', async (t) => {
  const err = await readyError({ jwks: { keys: [ec.publicJwk] }, audience: AUDIENCE, algorithms: ['RS256'] })
  t.equal((err as { code?: string }).code, 'FST_JWT_REVOCATION_INVALID_OPTION')
  t.match(err.message, /option "algorithms" lists RS256, which no key in "jwks" can verify \(its keys: EC P-256 \(alg ES256\)\)/)
})

t.test('one dead entry beside one that works is refused too, and named alone', async (t) => {
  const err = await readyError({ jwks: { keys: [ec.publicJwk] }, audience: AUDIENCE, algorithms: ['ES256', 'PS256', 'EdDSA'] })
  t.match(err.message, /lists PS256, EdDSA, which no key/)
  t.notMatch(err.message, /ES256,/)
})

t.test('a key that pins its "alg" serves only that one, as jose selects it', async (t) => {
  const err = await readyError({ jwks: { keys: [rsa.publicJwk] }, audience: AUDIENCE, algorithms: ['RS256', 'PS256'] })
  t.match(err.message, /lists PS256, which no key in "jwks" can verify \(its keys: RSA \(alg RS256\)\)/)
  const { alg: _alg, ...unpinned } = rsa.publicJwk
  await t.resolves(buildApp(t, { jwks: { keys: [unpinned] }, algorithms: ['RS256', 'PS256'] }), 'an RSA key without "alg" serves both')
})

t.test('a key whose use forbids verifying serves nothing', async (t) => {
  const err = await readyError({ jwks: { keys: [{ ...ecWithoutAlg, use: 'enc' }, rsa.publicJwk] }, audience: AUDIENCE, algorithms: ['ES256'] })
  t.match(err.message, /lists ES256, which no key in "jwks" can verify \(its keys: RSA \(alg RS256\)\)/)
})

t.test('every listed algorithm with a key, or no list at all, starts and verifies', async (t) => {
  const app = await buildApp(t, { jwks: { keys: [ec.publicJwk, rsa.publicJwk] }, algorithms: ['ES256', 'RS256'] })
  t.equal((await app.inject({ url: '/orders', headers: bearer(await sign(rsa)) })).statusCode, 200)
  await t.resolves(buildApp(t, { jwks: { keys: [ec.publicJwk] } }), 'the default list names every algorithm and is not held to the keys')
})

t.test('a static JWKS member whose "alg" its key cannot verify is refused', async (t) => {
  const err = await readyError({ jwks: { keys: [{ ...ec.publicJwk, alg: 'RS256' }] }, audience: AUDIENCE })
  t.match(err.message, /option "jwks" holds a key that can never verify anything \(key "ec" has "alg": "RS256", which this key cannot verify \(it can: ES256\)\)/)
})

t.test('a remote set without a key for a listed algorithm is reported once, and the others still verify', async (t) => {
  const srv = await jwksServer(t, (_path, res) => json(res, { keys: [ec.publicJwk] }))
  const lines: string[] = []
  const app = Fastify({ logger: { level: 'warn', stream: { write: (line: string) => { lines.push(line) } } } })
  t.teardown(() => app.close())
  await app.register(jwtRevocation, { jwksUri: `${srv.url}/jwks.json`, issuer: ISSUER, audience: AUDIENCE, algorithms: ['ES256', 'RS256'], cache: false, jwksOptions: { cooldownDuration: 0 } })
  app.get('/orders', async (req) => ({ sub: req.auth!.subject }))
  await app.ready()
  t.equal(lines.length, 0, 'nothing is known before the set is fetched')

  t.equal((await app.inject({ url: '/orders', headers: bearer(await sign(ec)) })).statusCode, 200)
  for (let i = 0; i < 3; i++) t.equal((await app.inject({ url: '/orders', headers: bearer(await sign(rsa)) })).statusCode, 401)
  t.ok(srv.hits.get('/jwks.json')! > 1, 'the set was fetched again for the unknown key')
  const warnings = lines.filter((line) => line.includes('has no key for'))
  t.equal(warnings.length, 1, 'once, not per token or per fetch')
  t.match(JSON.parse(warnings[0]!), { algorithm: 'RS256', jwksUri: `${srv.url}/jwks.json`, msg: /has no key for RS256, which "algorithms" lists: every token signed with it is refused \(its keys: EC P-256 \(alg ES256\)\)/ })
})

t.test('a remote set is not held to the default list', async (t) => {
  const srv = await jwksServer(t, (_path, res) => json(res, { keys: [ec.publicJwk] }))
  const lines: string[] = []
  const app = Fastify({ logger: { level: 'warn', stream: { write: (line: string) => { lines.push(line) } } } })
  t.teardown(() => app.close())
  await app.register(jwtRevocation, { jwksUri: `${srv.url}/jwks.json`, issuer: ISSUER, audience: AUDIENCE, cache: false })
  app.get('/orders', async (req) => ({ sub: req.auth!.subject }))
  t.equal((await app.inject({ url: '/orders', headers: bearer(await sign(ec)) })).statusCode, 200)
  t.equal(lines.length, 0)
})
