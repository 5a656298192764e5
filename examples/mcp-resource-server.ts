// An MCP-shaped resource server: one JSON-RPC endpoint behind the plugin, which a
// standard OAuth client finds its way into from nothing but its URL, as the Model
// Context Protocol's authorization spec asks:
//   401 + resource_metadata → RFC 9728 metadata → the issuer's RFC 8414 metadata →
//   a token for this resource (RFC 8707 `resource`) → 200.
//
//   npx tsx examples/mcp-resource-server.ts   # issuer on :3000, MCP server on :3001
import Fastify, { type FastifyInstance } from 'fastify'
import jwtRevocation from 'fastify-jwt-revocation'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { freePort } from './demo.js'
import type { ExampleConfig } from './issuer.js'
import { buildExampleServer } from './server.js'

export const MCP_SCOPE = 'mcp:tools'

interface JsonRpcRequest { jsonrpc?: unknown, id?: string | number | null, method?: unknown, params?: { name?: unknown } }

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

  const tools = [{ name: 'whoami', description: 'Who the calling client is', inputSchema: { type: 'object', properties: {} } }]
  app.post<{ Body: JsonRpcRequest }>('/mcp', { config: { auth: { scopes: [MCP_SCOPE] } } }, async (request, reply) => {
    const { id, method, params } = request.body ?? {}
    // A notification (no id) gets no answer.
    if (id === undefined) return reply.code(202).send()
    const result = (value: unknown) => ({ jsonrpc: '2.0', id, result: value })
    switch (method) {
      case 'initialize':
        return result({ protocolVersion: '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: 'example-mcp', version: '1.0.0' } })
      case 'tools/list':
        return result({ tools })
      case 'tools/call':
        if (params?.name === 'whoami') return result({ content: [{ type: 'text', text: `You are client ${request.auth!.clientId}` }] })
        return { jsonrpc: '2.0', id, error: { code: -32602, message: 'Unknown tool' } }
      default:
        return { jsonrpc: '2.0', id, error: { code: -32601, message: 'Method not found' } }
    }
  })
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
MCP server  ${example.mcpUrl}/mcp   (JSON-RPC, scope ${MCP_SCOPE})
Issuer      ${example.issuerUrl}/   (client "partner", secret "partner-secret")

  curl -i -X POST ${example.mcpUrl}/mcp                      # 401 naming resource_metadata
  curl -s ${example.mcpUrl}/.well-known/oauth-protected-resource/mcp
  curl -s ${example.issuerUrl}/.well-known/oauth-authorization-server
  TOKEN=$(curl -s ${example.issuerUrl}/oauth/token -u partner:partner-secret -d grant_type=client_credentials \\
    --data-urlencode resource=${example.mcpUrl}/mcp | node -pe 'JSON.parse(require("fs").readFileSync(0)).access_token')
  curl -s ${example.mcpUrl}/mcp -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \\
    -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami"}}'
`)
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().catch((err) => {
    console.error(err)
    process.exit(1)
  })
}
