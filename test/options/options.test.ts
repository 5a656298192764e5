import Fastify from 'fastify'
import t from 'tap'
import jwtRevocation from '../../src/index.js'
import { AUDIENCE, makeKey, readyError, SECRET } from '../helpers/helpers.js'

const key = await makeKey('ES256')
const jwks = { keys: [key.publicJwk] }

const cases: Array<[string, Record<string, unknown>, RegExp]> = [
  ['no key source', { audience: AUDIENCE }, /option "jwksUri" is required/],
  ['two key sources', { audience: AUDIENCE, jwks, secret: SECRET }, /jwks\/secret" are mutually exclusive/],
  ['no audience', { jwks }, /option "audience" is required/],
  ['empty audience list', { jwks, audience: [] }, /option "audience" must be/],
  ['alg none', { jwks, audience: AUDIENCE, algorithms: ['none'] }, /"algorithms" must never contain "none"/],
  ['alg NoNe', { jwks, audience: AUDIENCE, algorithms: ['ES256', 'NoNe'] }, /never contain "none"/],
  ['HS256 with a JWKS', { jwks, audience: AUDIENCE, algorithms: ['HS256'] }, /"algorithms" contains "HS256", which a key from "jwks" cannot verify/],
  ['RS256 with a secret', { secret: SECRET, audience: AUDIENCE, algorithms: ['RS256'] }, /cannot verify/],
  ['ES384 with a P-256 key', { publicKey: key.publicJwk, audience: AUDIENCE, algorithms: ['ES384'] }, /cannot verify/],
  ['short secret', { secret: 'short', audience: AUDIENCE }, /"secret" must be at least 32 bytes/],
  ['private key as publicKey', { publicKey: { kty: 'oct', k: 'AAAA' }, audience: AUDIENCE }, /"publicKey" must be/],
  ['garbage PEM', { publicKey: 'not a key', audience: AUDIENCE }, /"publicKey" must be a PEM/],
  ['bad jwksUri', { jwksUri: 'ftp://x', audience: AUDIENCE }, /"jwksUri" must be an absolute http\(s\) URL/],
  ['bad issuerBaseURL', { issuerBaseURL: 'nope', audience: AUDIENCE }, /"issuerBaseURL" must be/],
  ['jwks with a secret key', { jwks: { keys: [{ kty: 'oct', k: 'AAAA' }] }, audience: AUDIENCE }, /"jwks" must be a JSON Web Key Set/],
  ['bad duration', { jwks, audience: AUDIENCE, maxTokenLifetime: '1 fortnight' }, /"maxTokenLifetime" must be a duration: seconds/],
  ['negative duration', { jwks, audience: AUDIENCE, clockTolerance: -1 }, /"clockTolerance" must be a duration: seconds as an integer ≥ 0/],
  ['zero lifetime', { jwks, audience: AUDIENCE, maxTokenAge: 0 }, /"maxTokenAge" must be a duration: seconds as an integer ≥ 1/],
  ['bad cache', { jwks, audience: AUDIENCE, cache: { max: 0 } }, /"cache.max" must be an integer/],
  ['bad onStoreError', { jwks, audience: AUDIENCE, onStoreError: 'maybe' }, /"onStoreError" must be 'deny' or 'allow'/],
  ['bad acceptForeignAudiences', { jwks, audience: AUDIENCE, acceptForeignAudiences: 'yes' }, /"acceptForeignAudiences" must be a boolean/],
  ['bad store', { jwks, audience: AUDIENCE, store: {} }, /"store" must implement lookup\(\)/],
  ['grants without grant methods', { jwks, audience: AUDIENCE, grants: true, store: { lookup () {}, revokeToken () {}, listRevokedTokens () {}, revokeClient () {}, revokeSubject () {} } }, /"grants" needs a store with client grants; this store lacks createGrant/],
  ['realm with a quote', { jwks, audience: AUDIENCE, realm: 'a"b' }, /"realm" must be a string without quotes/],
  ['bad jwksOptions', { jwksUri: 'https://x.test/jwks', audience: AUDIENCE, jwksOptions: { timeoutDuration: -5 } }, /"jwksOptions.timeoutDuration" must be/],
  ['bad extractToken', { jwks, audience: AUDIENCE, extractToken: 'header' }, /"extractToken" must be a function/],
]

for (const [name, options, message] of cases) {
  t.test(`ready() fails on ${name}`, async (t) => {
    const err = await readyError(options)
    t.match(err.message, message)
    t.equal((err as { code?: string }).code, 'FST_JWT_REVOCATION_INVALID_OPTION')
  })
}

t.test('a bad route config fails at route registration', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(jwtRevocation, { jwks, audience: AUDIENCE })
  t.throws(() => app.get('/x', { config: { auth: { scopes: ['has space'] } } }, async () => 'x'), /config.auth.scopes of route \/x/)
  t.throws(() => app.get('/y', { config: { auth: { audience: 'https://elsewhere' } } }, async () => 'x'), /config.auth.audience of route \/y/)
})
