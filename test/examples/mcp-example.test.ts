import * as oauth from 'oauth4webapi'
import t from 'tap'
import { startMcpExample } from '../../examples/mcp-resource-server.js'

// The MCP authorization flow, done by a standard OAuth client library that is told
// nothing but the MCP server's URL and its own client credentials.

t.test('a client discovers the issuer from a 401 and gets a 200', async (t) => {
  const example = await startMcpExample()
  t.teardown(example.close)
  const insecure = { [oauth.allowInsecureRequests]: true }
  const serverUrl = new URL(`${example.mcpUrl}/mcp`)
  const call = { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'whoami' } }
  const headers = new Headers({ 'content-type': 'application/json' })

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
    method: 'POST', headers: { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json' }, body: JSON.stringify(body),
  })
  const { access_token: accessToken } = await (await token({ resource: `${example.mcpUrl}/mcp` })).json() as { access_token: string }
  t.same((await (await rpc(accessToken, { jsonrpc: '2.0', id: 2, method: 'tools/list' })).json() as { result: { tools: Array<{ name: string }> } }).result.tools.map((tool) => tool.name), ['whoami'])
  t.equal((await rpc(accessToken, { jsonrpc: '2.0', method: 'notifications/initialized' })).status, 202)
  const orders = await (await token({ audience: 'https://orders.example.com' })).json() as { access_token: string }
  t.equal((await rpc(orders.access_token, { jsonrpc: '2.0', id: 3, method: 'tools/list' })).status, 401, 'a token for another API is refused')
})
