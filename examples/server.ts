// The example: a mini issuer, a protected API and Auth0-style admin routes in one
// Fastify server, on the embedded FileStore so revocations survive restarts.
//
//   npm start                       # http://localhost:3000
//   PORT=4000 DATA_DIR=./demo-data npm start
import formbody from '@fastify/formbody'
import Fastify, { type FastifyInstance } from 'fastify'
import jwtRevocation, { adminRoutes, FileStore } from 'fastify-jwt-revocation'
import { existsSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { issuerRoutes, loadSigningKey, type ExampleConfig } from './issuer.js'

export const ORDERS = 'https://orders.example.com'
export const REPORTS = 'https://reports.example.com'
export const MANAGEMENT = 'https://admin.example.com/api/v2/'

export interface ExampleOptions {
  /** Where the server is reached; it is the token issuer and discovers its own keys there. */
  publicUrl: string
  dataDir: string
  configFile?: string
  logger?: boolean | object
}

async function seedGrantsOnce (app: FastifyInstance, config: ExampleConfig, dataDir: string): Promise<void> {
  // Only on the very first start: re-seeding would undo a grant the owner deleted.
  const marker = join(dataDir, 'seeded')
  if (existsSync(marker)) return
  for (const grant of config.grants) {
    const existing = await app.revocation.listGrants({ client_id: grant.client_id, audience: grant.audience })
    if (existing.length === 0) await app.revocation.createGrant(grant)
  }
  await writeFile(marker, new Date().toISOString())
}

export async function buildExampleServer (options: ExampleOptions): Promise<FastifyInstance> {
  const configFile = options.configFile ?? fileURLToPath(new URL('./config.json', import.meta.url))
  const config = JSON.parse(await readFile(configFile, 'utf8')) as ExampleConfig
  const issuer = options.publicUrl.replace(/\/+$/, '') + '/'
  const key = await loadSigningKey(options.dataDir)

  const app = Fastify({ logger: options.logger ?? false })
  await app.register(formbody)
  await app.register(jwtRevocation, {
    // As a real deployment would: find the issuer's keys through OIDC discovery.
    issuerBaseURL: issuer,
    audience: config.apis.map((a) => a.identifier),
    algorithms: ['ES256'],
    typ: 'at+jwt',
    // The API owner's policy: no token may live longer than 30 days, whatever the issuer says.
    maxTokenLifetime: '30d',
    grants: true,
    store: new FileStore({ path: join(options.dataDir, 'revocations') }),
  })

  await app.register(issuerRoutes, { config, issuer, key })
  // grants: true applies to the admin client too: on the first run (no grant for the
  // management audience yet), give it one with every admin scope.
  await app.register(adminRoutes, { prefix: '/api/v2', audience: MANAGEMENT, bootstrapClientId: 'admin' })

  app.get('/health', { config: { auth: false } }, async () => ({ status: 'ok' }))
  app.get('/api/orders', { config: { auth: { scopes: ['read:orders'], audience: ORDERS } } }, async (request) => ({
    client: request.auth!.clientId,
    orders: [{ id: 'ord_1', total: 42 }, { id: 'ord_2', total: 7 }],
  }))
  app.post('/api/orders', { config: { auth: { scopes: ['write:orders'], audience: ORDERS } } }, async (request, reply) => {
    reply.code(201)
    return { id: 'ord_3', client: request.auth!.clientId }
  })
  app.get('/api/reports', { config: { auth: { scopes: ['read:reports'], audience: REPORTS } } }, async () => ({ revenue: 49 }))

  await app.ready()
  await seedGrantsOnce(app, config, options.dataDir)
  return app
}

export function banner (url: string): string {
  return `
fastify-jwt-revocation example: issuer + protected API + admin routes
  API        ${url}/api/orders   (scope read:orders)
  Issuer     ${url}/oauth/token  ${url}/.well-known/openid-configuration
  Admin      ${url}/api/v2/blacklists/tokens  ${url}/api/v2/client-grants

The partner story (copy and paste):

  # 1. The partner gets a 30-day token and calls the API (200)
  TOKEN=$(curl -s ${url}/oauth/token -H 'content-type: application/json' \\
    -d '{"grant_type":"client_credentials","client_id":"partner","client_secret":"partner-secret","audience":"${ORDERS}"}' | node -pe 'JSON.parse(require("fs").readFileSync(0)).access_token')
  curl -i ${url}/api/orders -H "authorization: Bearer $TOKEN"

  # 2. The owner gets an admin token
  ADMIN=$(curl -s ${url}/oauth/token -d grant_type=client_credentials -d client_id=admin -d client_secret=admin-secret \\
    --data-urlencode audience=${MANAGEMENT} | node -pe 'JSON.parse(require("fs").readFileSync(0)).access_token')

  # 3. Strategy 1: blacklist the partner's token by its jti (the next call is 401)
  JTI=$(node -pe 'JSON.parse(Buffer.from(process.argv[1].split(".")[1], "base64url")).jti' "$TOKEN")
  curl -i ${url}/api/v2/blacklists/tokens -H "authorization: Bearer $ADMIN" -H 'content-type: application/json' \\
    -d "{\\"aud\\":\\"${ORDERS}\\",\\"jti\\":\\"$JTI\\"}"
  curl -i ${url}/api/orders -H "authorization: Bearer $TOKEN"

  # 4. Strategy 2: delete the partner's client grant (all its tokens are 401 at once; no new ones)
  GRANT=$(curl -s "${url}/api/v2/client-grants?client_id=partner&audience=${encodeURIComponent(ORDERS)}" -H "authorization: Bearer $ADMIN" | node -pe 'JSON.parse(require("fs").readFileSync(0))[0].id')
  curl -i -X DELETE ${url}/api/v2/client-grants/$GRANT -H "authorization: Bearer $ADMIN"

Or run the whole story scripted: npm run demo
`
}

async function main (): Promise<void> {
  const port = Number(process.env.PORT ?? 3000)
  const host = process.env.HOST ?? '127.0.0.1'
  const publicUrl = process.env.PUBLIC_URL ?? `http://${host === '0.0.0.0' || host === '::' ? 'localhost' : host}:${port}`
  const dataDir = resolve(process.env.DATA_DIR ?? 'data')
  const logger = process.stdout.isTTY ? { transport: { target: 'pino-pretty', options: { ignore: 'pid,hostname' } } } : true
  const app = await buildExampleServer({ publicUrl, dataDir, logger, ...(process.env.CONFIG ? { configFile: resolve(process.env.CONFIG) } : {}) })
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => { void app.close().then(() => process.exit(0)) })
  await app.listen({ port, host })
  process.stdout.write(banner(publicUrl))
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().catch((err) => {
    console.error(err)
    process.exit(1)
  })
}
