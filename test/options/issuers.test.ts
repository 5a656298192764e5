import t from 'tap'
import { AUDIENCE, makeKey, readyError } from '../helpers/helpers.js'

// `issuers` replaces the top-level key source: every mistake in it fails ready() naming
// the option, so no entry is silently verified with the wrong keys or rules.

const key = await makeKey('ES256')
const jwks = { keys: [key.publicJwk] }
const entry = (issuer: string, extra: Record<string, unknown> = {}) => ({ issuer, jwks, ...extra })
const client = { clientId: 'api', clientSecret: 'api-secret' }

const cases: Array<[string, Record<string, unknown>, RegExp]> = [
  ['issuers and jwksUri', { issuers: [entry('https://a.test/')], jwksUri: 'https://a.test/jwks' }, /option "jwksUri" cannot be used with "issuers"/],
  ['issuers and a secret', { issuers: [entry('https://a.test/')], secret: 'a-test-secret-of-at-least-32-bytes-long!!' }, /option "secret" cannot be used with "issuers"/],
  ['issuers and issuer', { issuers: [entry('https://a.test/')], issuer: 'https://a.test/' }, /option "issuer" cannot be used with "issuers"/],
  ['issuers and algorithms', { issuers: [entry('https://a.test/')], algorithms: ['ES256'] }, /option "algorithms" cannot be used with "issuers": give algorithms in each entry/],
  ['an empty list', { issuers: [] }, /option "issuers" must be a non-empty array/],
  ['an entry that is not an object', { issuers: ['https://a.test/'] }, /option "issuers\[0\]" must be an object/],
  ['an entry without a key source', { issuers: [entry('https://a.test/'), { issuer: 'https://b.test/' }] }, /option "issuers\[1\]" needs a key source: jwksUri, issuerBaseURL, jwks or publicKey/],
  ['an entry with two key sources', { issuers: [entry('https://a.test/', { jwksUri: 'https://a.test/jwks' })] }, /option "issuers\[0\]\.jwksUri\/jwks" are mutually exclusive/],
  ['an entry without issuer', { issuers: [{ jwks }] }, /option "issuers\[0\]\.issuer" is required/],
  ['a duplicate issuer', { issuers: [entry('https://a.test/'), entry('https://b.test/'), entry('https://a.test/')] }, /option "issuers\[2\]\.issuer" repeats issuers\[0\]\.issuer/],
  ['a misspelled key', { issuers: [entry('https://a.test/', { algorithm: ['ES256'] })] }, /option "issuers\[0\]\.algorithm" is not known; did you mean issuers\[0\]\.algorithms\?/],
  ['a secret in an entry', { issuers: [{ issuer: 'https://a.test/', secret: 'a-test-secret-of-at-least-32-bytes-long!!' }] }, /option "issuers\[0\]\.secret" is not known/],
  ['a bad key source in an entry', { issuers: [entry('https://a.test/'), { issuer: 'https://b.test/', jwksUri: 'not a url' }] }, /option "issuers\[1\]\.jwksUri" must be an absolute http\(s\) URL/],
  ['an algorithm the entry\'s keys cannot verify', { issuers: [entry('https://a.test/', { algorithms: ['RS256'] })] }, /option "issuers\[0\]\.algorithms" lists RS256/],
  ['an audience outside the plugin\'s', { issuers: [entry('https://a.test/', { audience: 'https://other.test' })] }, /option "issuers\[0\]\.audience" names https:\/\/other\.test, not among the plugin's audience/],
  ['an empty typ', { issuers: [entry('https://a.test/', { typ: '' })] }, /option "issuers\[0\]\.typ" must be a non-empty string/],
  ['discovery at another URL than the issuer', { issuers: [{ issuer: 'https://a.test/', issuerBaseURL: 'https://b.test' }] }, /option "issuers\[0\]\.issuerBaseURL" must be the issuer's own URL/],
  ['a top-level introspection', { issuers: [entry('https://a.test/')], introspection: { endpoint: 'https://a.test/introspect', clientId: 'c', clientSecret: 's' } }, /option "introspection" cannot be used with "issuers": give each issuer that offers introspection its own, as issuers\[i\]\.introspection/],
  ['a misspelled introspection key in an entry', { issuers: [entry('https://a.test/'), entry('https://b.test/', { introspection: { endpiont: 'https://b.test/introspect', ...client } })] }, /option "issuers\[1\]\.introspection\.endpiont" is not known; did you mean issuers\[1\]\.introspection\.endpoint\?/],
  ['an entry\'s introspection without credentials', { issuers: [entry('https://a.test/', { introspection: { endpoint: 'https://a.test/introspect' } })] }, /option "issuers\[0\]\.introspection\.clientId" is required/],
  // An issuer's tokens are sent to its own origin, never to another issuer's.
  ['an entry\'s introspection endpoint on another issuer\'s origin', { issuers: [entry('https://a.test/'), entry('https://b.test/', { introspection: { endpoint: 'https://a.test/introspect', ...client } })] }, /option "issuers\[1\]\.introspection\.endpoint" is not on the issuer's origin \(https:\/\/b\.test\); list its origin in issuers\[1\]\.introspection\.allowedOrigins/],
  ['an entry\'s introspection without endpoint nor discovery', { issuers: [entry('https://a.test/', { introspection: client })] }, /option "issuers\[0\]\.introspection\.endpoint" is required unless issuerBaseURL/],
  ['opaque tokens at two issuers', {
    issuers: [
      entry('https://a.test/', { introspection: { endpoint: 'https://a.test/introspect', opaqueTokens: true, ...client } }),
      entry('https://b.test/', { introspection: { endpoint: 'https://b.test/introspect', opaqueTokens: true, ...client } }),
    ],
  }, /option "issuers\[1\]\.introspection\.opaqueTokens" is already set in issuers\[0\]: an opaque token names no issuer/],
  ['status lists when no issuer is an https URL', { issuers: [entry('partner-a'), entry('http://127.0.0.1:1/')], statusList: true }, /option "statusList\.allowedOrigins" is required when no https issuer gives a default origin/],
]

for (const [name, options, message] of cases) {
  t.test(`ready() fails on ${name}`, async (t) => {
    const err = await readyError({ audience: AUDIENCE, ...options })
    t.match(err.message, message)
  })
}

t.test('good entries register: discovery whose URL differs from the issuer by a trailing slash, typ, audience and introspection per entry, status lists', async (t) => {
  await t.rejects(readyError({
    audience: [AUDIENCE, 'https://admin.test'],
    typ: 'at+jwt',
    jwksOptions: { timeoutDuration: '2s' },
    issuers: [
      { issuer: 'https://a.test/', issuerBaseURL: 'https://a.test', audience: AUDIENCE },
      { issuer: 'https://b.test', publicKey: key.publicJwk, typ: 'jwt', algorithms: ['ES256'], introspection: { endpoint: 'https://b.test/oauth/introspect', opaqueTokens: true, ...client } },
    ],
    statusList: true,
  }), /ready\(\) did not fail/)
})
