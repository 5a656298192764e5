import { ClientCredentialsProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import * as oauth from 'oauth4webapi'
import t, { type Test } from 'tap'
import { MCP_SCOPE, startMcpExample } from '../../examples/mcp-resource-server.js'

interface Exchange { method: string, url: URL, body: string, status: number, challenge: string | null }

/** A fetch that passes every request on and keeps what went out and what came back. */
function recordingFetch (): { fetch: typeof fetch, exchanges: Exchange[] } {
  const exchanges: Exchange[] = []
  return {
    exchanges,
    fetch: async (input, init) => {
      const response = await fetch(input, init)
      const url = new URL(input instanceof Request ? input.url : input)
      exchanges.push({ method: init?.method ?? 'GET', url, body: String(init?.body ?? ''), status: response.status, challenge: response.headers.get('www-authenticate') })
      return response
    },
  }
}

/** The official MCP SDK client, machine to machine, told only the server's URL and its credentials. */
async function sdkSession (t: Test, example: { issuerUrl: string, mcpUrl: string }, scope?: string) {
  const recorder = recordingFetch()
  const authProvider = new ClientCredentialsProvider({
    clientId: 'partner', clientSecret: 'partner-secret', expectedIssuer: `${example.issuerUrl}/`, ...(scope === undefined ? {} : { scope }),
  })
  const client = new Client({ name: 'example-mcp-client', version: '1.0.0' })
  t.teardown(() => client.close())
  await client.connect(new StreamableHTTPClientTransport(new URL(`${example.mcpUrl}/mcp`), { authProvider, fetch: recorder.fetch }))
  const tokenRequests = recorder.exchanges.filter((e) => e.url.href === `${example.issuerUrl}/oauth/token`)
  return { client, exchanges: recorder.exchanges, tokenRequests: tokenRequests.map((e) => ({ params: new URLSearchParams(e.body), status: e.status })) }
}

t.test('the official MCP SDK client connects on its first token and calls the tool', async (t) => {
  const example = await startMcpExample()
  t.teardown(example.close)
  const { client, exchanges, tokenRequests } = await sdkSession(t, example)

  // The first call is refused with a challenge naming the metadata and the route's scope.
  const [first] = exchanges
  t.equal(first!.status, 401)
  t.match(first!.challenge, `resource_metadata="${example.mcpUrl}/.well-known/oauth-protected-resource/mcp", scope="${MCP_SCOPE}"`)
  // One token request, for this resource (RFC 8707), and it is enough.
  t.equal(tokenRequests.length, 1, 'one token request')
  const [token] = tokenRequests
  t.equal(token!.status, 200)
  t.equal(token!.params.get('grant_type'), 'client_credentials')
  t.equal(token!.params.get('resource'), `${example.mcpUrl}/mcp`)
  // SDK 1.x: a client_credentials request carries the provider's own `scope` option, not
  // the challenge's (that reaches authorization-code flows); without one the issuer's grant
  // decides. Whatever the SDK asks, it never asks for a scope the route does not name.
  t.ok([null, MCP_SCOPE].includes(token!.params.get('scope')), 'no scope, or the challenged one')

  const { tools } = await client.listTools()
  t.same(tools.map((tool) => tool.name), ['whoami'])
  t.same(await client.callTool({ name: 'whoami' }), { content: [{ type: 'text', text: 'You are client partner' }] })
  t.same(exchanges.filter((e) => e.status === 401).length, 1, 'only the first call was refused')
  t.notOk(exchanges.some((e) => e.status === 403 || e.challenge?.includes('insufficient_scope')), 'no insufficient_scope along the way')
})

t.test('the official MCP SDK client with a scope asks for it on its first token request', async (t) => {
  const example = await startMcpExample()
  t.teardown(example.close)
  const { client, exchanges, tokenRequests } = await sdkSession(t, example, MCP_SCOPE)
  t.same(tokenRequests.map((request) => [request.params.get('scope'), request.status]), [[MCP_SCOPE, 200]])
  t.same((await client.callTool({ name: 'whoami' })).content, [{ type: 'text', text: 'You are client partner' }])
  t.notOk(exchanges.some((e) => e.status === 403), 'no insufficient_scope along the way')
})

// The MCP authorization flow, done by a standard OAuth client library that is told
// nothing but the MCP server's URL and its own client credentials.

t.test('a client discovers the issuer from a 401 and gets a 200', async (t) => {
  const example = await startMcpExample()
  t.teardown(example.close)
  const insecure = { [oauth.allowInsecureRequests]: true }
  const serverUrl = new URL(`${example.mcpUrl}/mcp`)
  const call = { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'whoami' } }
  // Streamable HTTP: a client says it takes either a JSON answer or an event stream.
  const headers = new Headers({ 'content-type': 'application/json', accept: 'application/json, text/event-stream' })

  // 1. No token: 401, and the challenge says where the metadata is and which scope the
  // route needs, so that the first token asked for is the right one (MCP 2025-11-25).
  const first = await fetch(serverUrl, { method: 'POST', headers, body: JSON.stringify(call) })
  t.equal(first.status, 401)
  t.match(first.headers.get('www-authenticate'), `Bearer realm="api", resource_metadata="${example.mcpUrl}/.well-known/oauth-protected-resource/mcp", scope="mcp:tools", DPoP algs=`)
  // The library reads the same from a refused call of its own.
  const refused = await oauth.protectedResourceRequest('stale', 'POST', serverUrl, headers, JSON.stringify(call), insecure).then(() => undefined, (err: unknown) => err)
  t.ok(refused instanceof oauth.WWWAuthenticateChallengeError)
  const [challenge] = (refused as oauth.WWWAuthenticateChallengeError).cause
  t.equal(challenge!.scheme, 'bearer')
  t.equal(challenge!.parameters.error, 'invalid_token')
  const metadataUrl = challenge!.parameters.resource_metadata!
  // The scope to ask for comes from the challenge, before any metadata is read.
  const challengedScope = challenge!.parameters.scope!
  t.equal(challengedScope, 'mcp:tools', 'the invalid-token challenge names the scope too')

  // 2. RFC 9728: the resource's metadata, checked against the resource identifier.
  const metadataResponse = await oauth.resourceDiscoveryRequest(serverUrl, insecure)
  t.equal(metadataResponse.url, metadataUrl, 'the document the challenge named')
  t.equal(metadataResponse.headers.get('cache-control'), 'public, max-age=3600')
  const resource = await oauth.processResourceDiscoveryResponse(serverUrl, metadataResponse)
  t.same(resource.authorization_servers, [`${example.issuerUrl}/`])
  t.same(resource.scopes_supported, ['mcp:tools'])
  t.equal(resource.resource_name, 'Example MCP server')

  // 3. RFC 8414: the issuer's metadata.
  const issuer = new URL(resource.authorization_servers![0]!)
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }))
  t.equal(as.token_endpoint, `${example.issuerUrl}/oauth/token`)

  // 4. A token for this resource (RFC 8707).
  const client: oauth.Client = { client_id: 'partner' }
  const tokenResponse = await oauth.clientCredentialsGrantRequest(as, client, oauth.ClientSecretBasic('partner-secret'),
    { resource: resource.resource, scope: challengedScope }, insecure)
  const { access_token: accessToken } = await oauth.processClientCredentialsResponse(as, client, tokenResponse)

  // 5. The call goes through.
  const answer = await oauth.protectedResourceRequest(accessToken, 'POST', serverUrl, headers, JSON.stringify(call), insecure)
  t.equal(answer.status, 200)
  t.same(await answer.json(), { jsonrpc: '2.0', id: 1, result: { content: [{ type: 'text', text: 'You are client partner' }] } })
})

t.test('the example issuer: RFC 8707 resource and RFC 8414 metadata', async (t) => {
  const example = await startMcpExample()
  t.teardown(example.close)
  const token = (body: Record<string, string>) => fetch(`${example.issuerUrl}/oauth/token`, {
    method: 'POST',
    headers: { authorization: 'Basic ' + Buffer.from('partner:partner-secret').toString('base64'), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', ...body }),
  })
  const unknown = await token({ resource: 'https://unknown.test' })
  t.equal(unknown.status, 400)
  t.equal((await unknown.json() as { error: string }).error, 'invalid_target')
  const conflicting = await token({ resource: `${example.mcpUrl}/mcp`, audience: 'https://orders.example.com' })
  t.equal((await conflicting.json() as { error: string }).error, 'invalid_target')
  const metadata = await (await fetch(`${example.issuerUrl}/.well-known/oauth-authorization-server`)).json() as { issuer: string }
  t.equal(metadata.issuer, `${example.issuerUrl}/`)
  const rpc = async (accessToken: string, body: unknown) => fetch(`${example.mcpUrl}/mcp`, {
    method: 'POST',
    headers: { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify(body),
  })
  const { access_token: accessToken } = await (await token({ resource: `${example.mcpUrl}/mcp` })).json() as { access_token: string }
  t.same((await (await rpc(accessToken, { jsonrpc: '2.0', id: 2, method: 'tools/list' })).json() as { result: { tools: Array<{ name: string }> } }).result.tools.map((tool) => tool.name), ['whoami'])
  t.equal((await rpc(accessToken, { jsonrpc: '2.0', method: 'notifications/initialized' })).status, 202)
  const orders = await (await token({ audience: 'https://orders.example.com' })).json() as { access_token: string }
  t.equal((await rpc(orders.access_token, { jsonrpc: '2.0', id: 3, method: 'tools/list' })).status, 401, 'a token for another API is refused')
})

t.test('the example issuer: RFC 8414 metadata an MCP SDK client accepts, and no authorization-code flow', async (t) => {
  const example = await startMcpExample()
  t.teardown(example.close)
  const metadata = await (await fetch(`${example.issuerUrl}/.well-known/oauth-authorization-server`)).json() as Record<string, unknown>
  t.match(metadata, {
    authorization_endpoint: `${example.issuerUrl}/oauth/authorize`,
    response_types_supported: [],
    grant_types_supported: ['client_credentials'],
    token_endpoint_auth_methods_supported: ['client_secret_post', 'client_secret_basic'],
  })
  t.ok((metadata.scopes_supported as string[]).includes(MCP_SCOPE), 'the MCP scope among the scopes it issues')
  const authorize = await fetch(`${example.issuerUrl}/oauth/authorize?response_type=code&client_id=partner&redirect_uri=https%3A%2F%2Fevil.test%2F`, { redirect: 'manual' })
  t.equal(authorize.status, 400, 'refused, not redirected')
  t.equal((await authorize.json() as { error: string }).error, 'unsupported_response_type')
})
