// No downgrade: a sender-constrained token (DPoP `cnf.jkt`, mTLS `cnf["x5t#S256"]`) sent as
// a plain Bearer token is refused, and never reaches the store.
import t from 'tap'
import { MemoryStore } from '../../src/index.js'
import { bearer, buildApp, DPOP_CHALLENGE, makeKey, sign } from '../helpers/helpers.js'

const key = await makeKey('ES256')
const jwks = { keys: [key.publicJwk] }

t.test('a bound token sent as Bearer is refused before any store lookup; an unbound one is accepted', async (t) => {
  const store = new MemoryStore()
  let lookups = 0
  const lookup = store.lookup.bind(store)
  store.lookup = (query) => { lookups++; return lookup(query) }
  const app = await buildApp(t, { jwks, store })
  const cases: Array<[string, Record<string, unknown>, string]> = [
    ['DPoP-bound (cnf.jkt)', { cnf: { jkt: '0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I' } }, 'The token is bound to a key and this request does not prove it'],
    ['certificate-bound (cnf["x5t#S256"])', { cnf: { 'x5t#S256': 'bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2' } }, 'The token is bound to a key and this request does not prove it'],
    ['cnf that is not an object', { cnf: 'jkt' }, 'The token has an invalid claim'],
  ]
  for (const [name, claims, description] of cases) {
    const res = await app.inject({ url: '/orders', headers: bearer(await sign(key, claims)) })
    t.equal(res.statusCode, 401, name)
    t.equal(res.json().code, 'FST_JWT_REVOCATION_INVALID_TOKEN', name)
    t.equal(res.headers['www-authenticate'], `Bearer realm="api", error="invalid_token", error_description="${description}", scope="read:orders"` + DPOP_CHALLENGE, name)
  }
  t.equal(lookups, 0, 'the store is never asked about a token refused for its binding')
  t.equal((await app.inject({ url: '/orders', headers: bearer(await sign(key)) })).statusCode, 200, 'an unbound token is accepted')
})
