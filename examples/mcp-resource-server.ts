// An MCP server behind the plugin, built with the official MCP SDK (stateless Streamable
// HTTP, one tool), which an MCP client finds its way into from nothing but its URL, as
// the Model Context Protocol's authorization spec asks:
//   401 + resource_metadata and scope → RFC 9728 metadata → the issuer's RFC 8414
//   metadata → a token for this resource (RFC 8707 `resource`) → 200.
//
//   npx tsx examples/mcp-resource-server.ts   # issuer on :3000, MCP server on :3001
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify'
import jwtRevocation from 'fastify-jwt-revocation'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { freePort } from './demo.js'
import type { ExampleConfig } from './issuer.js'
import { buildExampleServer } from './server.js'

export const MCP_SCOPE = 'mcp:tools'

/** The MCP server one request sees: its tools answer for the client the plugin verified. */
function mcpServerFor (clientId: string | null): McpServer {
  const server = new McpServer({ name: 'example-mcp', version: '1.0.0' })
  server.registerTool('whoami', { description: 'Who the calling client is' }, () => ({
    content: [{ type: 'text', text: clientId === null ? 'You are a client without a client id' : `You are client ${clientId}` }],
  }))
  return server
}

/** The resource server: it knows its own URL and its issuer, nothing else. */
export async function buildMcpServer (options: { publicUrl: string, issuer: string, logger?: boolean }): Promise<FastifyInstance> {
  const resource = `${options.publicUrl.replace(/\/+$/, '')}/mcp`
  const app = Fastify({ logger: options.logger ?? false })
  await app.register(jwtRevocation, {
    issuerBaseURL: options.issuer,
    audience: resource,
    algorithms: ['ES256'],
    typ: 'at+jwt',
    // Served at /.well-known/oauth-protected-resource/mcp and named in every 401.
    resourceMetadata: { resource_name: 'Example MCP server' },
  })

  const scoped = { config: { auth: { scopes: [MCP_SCOPE] } } }
  app.post('/mcp', scoped, async (request, reply) => {
    // Stateless: a server and a transport per request, so no session outlives the token
    // that the plugin checked for this request.
    const server = mcpServerFor(request.auth!.clientId)
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true })
    reply.hijack()
    reply.raw.on('close', () => {
      void transport.close()
      void server.close()
    })
    await server.connect(transport)
    await transport.handleRequest(request.raw, reply.raw, request.body)
  })
  // No server-initiated stream and no session to end in stateless mode (MCP Streamable HTTP).
  const notAllowed = async (_request: unknown, reply: FastifyReply) => reply.code(405).header('allow', 'POST').send()
  app.get('/mcp', scoped, notAllowed)
  app.delete('/mcp', scoped, notAllowed)
  await app.ready()
  return app
}

/** The example issuer's configuration plus this resource, and a grant of it to the partner client. */
export async function issuerConfigFor (resource: string): Promise<ExampleConfig> {
  const config = JSON.parse(await readFile(fileURLToPath(new URL('./config.json', import.meta.url)), 'utf8')) as ExampleConfig
  config.apis.push({ identifier: resource, name: 'Example MCP server', token_lifetime: 3600, scopes: [MCP_SCOPE] })
  config.grants.push({ client_id: 'partner', audience: resource, scope: [MCP_SCOPE] })
  return config
}

/** The example issuer and the MCP server, each on its own port (free ones unless given). */
export async function startMcpExample (options: { host?: string, issuerPort?: number, mcpPort?: number, logger?: boolean } = {}) {
  const host = options.host ?? '127.0.0.1'
  const [issuerPort, mcpPort] = [options.issuerPort ?? await freePort(), options.mcpPort ?? await freePort()]
  const issuerUrl = `http://${host}:${issuerPort}`
  const mcpUrl = `http://${host}:${mcpPort}`
  const dataDir = await mkdtemp(join(tmpdir(), 'jwt-revocation-mcp-'))
  const configFile = join(dataDir, 'config.json')
  await writeFile(configFile, JSON.stringify(await issuerConfigFor(`${mcpUrl}/mcp`)))
  const issuer = await buildExampleServer({ publicUrl: issuerUrl, dataDir, configFile, logger: options.logger ?? false })
  await issuer.listen({ port: issuerPort, host })
  const mcp = await buildMcpServer({ publicUrl: mcpUrl, issuer: `${issuerUrl}/`, logger: options.logger ?? false })
  await mcp.listen({ port: mcpPort, host })
  return {
    issuerUrl,
    mcpUrl,
    close: async () => {
      await mcp.close()
      await issuer.close()
      await rm(dataDir, { recursive: true, force: true })
    },
  }
}

async function main (): Promise<void> {
  const example = await startMcpExample({ host: 'localhost', issuerPort: Number(process.env.PORT ?? 3000), mcpPort: Number(process.env.MCP_PORT ?? 3001) })
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => { void example.close().then(() => process.exit(0)) })
  process.stdout.write(`
MCP server  ${example.mcpUrl}/mcp   (Streamable HTTP, scope ${MCP_SCOPE})
Issuer      ${example.issuerUrl}/   (client "partner", secret "partner-secret")

  curl -i -X POST ${example.mcpUrl}/mcp                      # 401 naming resource_metadata
  curl -s ${example.mcpUrl}/.well-known/oauth-protected-resource/mcp
  curl -s ${example.issuerUrl}/.well-known/oauth-authorization-server
  TOKEN=$(curl -s ${example.issuerUrl}/oauth/token -u partner:partner-secret -d grant_type=client_credentials \\
    --data-urlencode resource=${example.mcpUrl}/mcp | node -pe 'JSON.parse(require("fs").readFileSync(0)).access_token')
  curl -s ${example.mcpUrl}/mcp -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \\
    -H 'accept: application/json, text/event-stream' \\
    -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami"}}'
`)
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().catch((err) => {
    console.error(err)
    process.exit(1)
  })
}
