import Fastify from 'fastify'
import t, { type Test } from 'tap'
import jwtRevocation, { type JwtRevocationOptions } from '../../src/index.js'
import { bearer, ISSUER, json, jwksServer, makeKey, readyError, sign } from '../helpers/helpers.js'

// DPoP is on by default: every document says so and every challenge offers it after Bearer.
const DPOP_ALGS = ['ES256', 'EdDSA', 'RS256', 'PS256']
const DPOP_FIELDS = { dpop_signing_alg_values_supported: DPOP_ALGS, dpop_bound_access_tokens_required: false }
const DPOP_CHALLENGE = `, DPoP algs="${DPOP_ALGS.join(' ')}"`

// RFC 9728: a client that knows only the API's URL learns from a 401 where the
// metadata is, and from it which authorization server issues tokens for the API.

const key = await makeKey('ES256')
const jwks = { keys: [key.publicJwk] }
const API = 'https://api.test'
const MCP = 'https://api.test/mcp'

async function app (t: Test, options: Partial<JwtRevocationOptions>) {
  const server = Fastify()
  t.teardown(() => server.close())
  await server.register(jwtRevocation, { jwks, issuer: ISSUER, audience: [API, MCP, 'urn:internal'], resourceMetadata: true, ...options } as JwtRevocationOptions)
  server.get('/orders', { config: { auth: { scopes: ['read:orders'] } } }, async () => ({ ok: true }))
  server.post('/mcp', { config: { auth: { audience: MCP, scopes: ['mcp:tools'] } } }, async () => ({ ok: true }))
  server.get('/internal', { config: { auth: { audience: 'urn:internal', scopes: ['internal'] } } }, async () => ({ ok: true }))
  await server.ready()
  return server
}

t.test('one document per URL audience, at the well-known path with the resource path after it', async (t) => {
  const server = await app(t, {})
  const root = await server.inject({ url: '/.well-known/oauth-protected-resource' })
  t.equal(root.statusCode, 200)
  t.match(root.headers['content-type'], /^application\/json/)
  t.equal(root.headers['cache-control'], 'public, max-age=3600')
  t.same(root.json(), {
    resource: API,
    authorization_servers: [ISSUER],
    bearer_methods_supported: ['header'],
    scopes_supported: ['read:orders'],
    ...DPOP_FIELDS,
  }, 'scopes of the routes of any audience, not of another resource; DPoP on by default')
  const mcp = await server.inject({ url: '/.well-known/oauth-protected-resource/mcp' })
  t.same(mcp.json(), { resource: MCP, authorization_servers: [ISSUER], bearer_methods_supported: ['header'], scopes_supported: ['mcp:tools', 'read:orders'], ...DPOP_FIELDS })
  t.equal((await server.inject({ url: '/.well-known/oauth-protected-resource/internal' })).statusCode, 401, 'no document for an audience that is not a URL (unknown paths stay protected)')
})

t.test('every challenge names the metadata of the route\'s resource (RFC 9728 §5.1)', async (t) => {
  const server = await app(t, {})
  const missing = await server.inject({ method: 'POST', url: '/mcp' })
  t.equal(missing.statusCode, 401)
  t.equal(missing.headers['www-authenticate'], `Bearer realm="api", resource_metadata="https://api.test/.well-known/oauth-protected-resource/mcp", scope="mcp:tools"${DPOP_CHALLENGE}`)
  const wrong = await server.inject({ url: '/orders', headers: bearer('not-a-token') })
  t.equal(wrong.headers['www-authenticate'], `Bearer realm="api", resource_metadata="https://api.test/.well-known/oauth-protected-resource", error="invalid_token", error_description="The token is malformed", scope="read:orders"${DPOP_CHALLENGE}`)
  const token = await sign(key, { aud: MCP, scope: 'read:orders' })
  const scope = await server.inject({ method: 'POST', url: '/mcp', headers: bearer(token) })
  t.equal(scope.statusCode, 403)
  t.match(scope.headers['www-authenticate'], /^Bearer realm="api", resource_metadata="https:\/\/api\.test\/\.well-known\/oauth-protected-resource\/mcp", error="insufficient_scope", .*scope="mcp:tools", DPoP algs="[^"]+"$/)
  const internal = await server.inject({ url: '/internal' })
  t.match(internal.headers['www-authenticate'], /resource_metadata="https:\/\/api\.test\/\.well-known\/oauth-protected-resource"/, 'a route of a non-URL audience names the first resource')
  t.equal((await server.inject({ url: '/orders', headers: bearer(await sign(key, { aud: API })) })).statusCode, 200)
})

t.test('a trailing slash in the resource stays in the path, as clients build it', async (t) => {
  const server = await app(t, { audience: ['https://api.test/tools/', MCP, 'urn:internal'] })
  const doc = await server.inject({ url: '/.well-known/oauth-protected-resource/tools/' })
  t.equal(doc.json().resource, 'https://api.test/tools/')
  t.match((await server.inject({ url: '/orders' })).headers['www-authenticate'], /resource_metadata="https:\/\/api\.test\/\.well-known\/oauth-protected-resource\/tools\/"/)
})

t.test('without the option: no document, challenges unchanged', async (t) => {
  const server = await app(t, { resourceMetadata: false })
  t.equal((await server.inject({ url: '/.well-known/oauth-protected-resource' })).statusCode, 401, 'the path is just another protected route')
  t.equal((await server.inject({ url: '/orders' })).headers['www-authenticate'], `Bearer realm="api", scope="read:orders"${DPOP_CHALLENGE}`)
})

t.test('fields given override or add to the derived ones; resource narrows to one document', async (t) => {
  const server = await app(t, {
    resourceMetadata: { resource: MCP, resource_name: 'Tools', scopes_supported: ['mcp:tools'], authorization_servers: ['https://as.test'], dpop_bound_access_tokens_required: false },
  })
  t.same((await server.inject({ url: '/.well-known/oauth-protected-resource/mcp' })).json(), {
    resource: MCP, authorization_servers: ['https://as.test'], bearer_methods_supported: ['header'], scopes_supported: ['mcp:tools'], resource_name: 'Tools', ...DPOP_FIELDS,
  })
  t.equal((await server.inject({ url: '/.well-known/oauth-protected-resource' })).statusCode, 401)
  t.match((await server.inject({ url: '/orders' })).headers['www-authenticate'], /resource_metadata="https:\/\/api\.test\/\.well-known\/oauth-protected-resource\/mcp"/)
})

t.test('authorization_servers from discovery when issuerBaseURL is used', async (t) => {
  const issuer = await jwksServer(t, (path, res) => {
    if (path === '/.well-known/openid-configuration') return json(res, { issuer: `${issuer.url}/`, jwks_uri: `${issuer.url}/jwks` })
    if (path === '/jwks') return json(res, jwks)
    json(res, {}, 404)
  })
  const server = await app(t, { jwks: undefined, issuer: undefined, issuerBaseURL: `${issuer.url}/` })
  const doc = await server.inject({ url: '/.well-known/oauth-protected-resource' })
  t.same(doc.json().authorization_servers, [`${issuer.url}/`])
})

t.test('bad options fail ready() naming the field', async (t) => {
  const base = { jwks, issuer: ISSUER, audience: [API] }
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ resourceMetadata: { resource_nme: 'x' } }, /"resourceMetadata\.resource_nme" is not known; did you mean resourceMetadata\.resource_name\?/],
    [{ resourceMetadata: { resource: 'https://other.test' } }, /"resourceMetadata\.resource" must be one of the audiences/],
    [{ resourceMetadata: { scopes_supported: 'a b' } }, /"resourceMetadata\.scopes_supported" must be an array/],
    [{ resourceMetadata: { dpop_bound_access_tokens_required: 'yes' } }, /must be a boolean/],
    [{ resourceMetadata: 'yes' }, /"resourceMetadata" must be true or an object/],
    [{ resourceMetadata: true, audience: ['urn:api', 'http://api.example.com'] }, /needs an audience that is an https URL/],
    [{ resourceMetadata: true, issuer: undefined }, /"resourceMetadata\.authorization_servers" is required/],
  ]
  for (const [options, message] of cases) t.match((await readyError({ ...base, ...options })).message, message)
})

t.test('the sender-constraint fields follow the dpop and mtls options', async (t) => {
  const strict = await app(t, { algorithms: ['ES256'], dpop: { required: true }, mtls: true })
  t.match((await strict.inject({ url: '/.well-known/oauth-protected-resource' })).json(), {
    dpop_signing_alg_values_supported: ['ES256'],
    dpop_bound_access_tokens_required: true,
    tls_client_certificate_bound_access_tokens: true,
  })
  const plain = (await (await app(t, { dpop: false })).inject({ url: '/.well-known/oauth-protected-resource' })).json()
  t.notOk('dpop_signing_alg_values_supported' in plain, 'no DPoP fields with dpop: false')
  t.notOk('tls_client_certificate_bound_access_tokens' in plain, 'no mTLS field without mtls')
})
