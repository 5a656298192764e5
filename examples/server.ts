// The example: a mini issuer, a protected API and Auth0-style admin routes in one
// Fastify server, on the embedded FileStore so revocations survive restarts.
//
//   npm start                       # http://localhost:3000, fresh from config.json each start
//   KEEP_DATA=1 npm start           # keep the last run's revocations, grants and keys
//   PORT=4000 DATA_DIR=./demo-data npm start
//   AUTH0_DOMAIN=tenant.eu.auth0.com AUTH0_CLIENT_ID=… AUTH0_CLIENT_SECRET=… npm start
//                                   # + revocations made at your Auth0 tenant take effect here
import formbody from '@fastify/formbody'
import Fastify, { type FastifyInstance } from 'fastify'
import jwtRevocation, { adminRoutes, FileStore, type RevocationStore } from 'fastify-jwt-revocation'
import { auth0Sync, type Auth0SyncOptions } from 'fastify-jwt-revocation/auth0'
import { backchannelLogout } from 'fastify-jwt-revocation/logout'
import { ssfReceiver } from 'fastify-jwt-revocation/ssf'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { readFile, rm, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { adminConsole } from './console.js'
import { issuerRoutes, loadSigningKey, StatusListPublisher, type ExampleConfig } from './issuer.js'
import { metricsRoute } from './telemetry.js'

export const ORDERS = 'https://orders.example.com'
export const REPORTS = 'https://reports.example.com'
export const MANAGEMENT = 'https://admin.example.com/api/v2/'
/** The API's client id at the issuer, the `aud` of the Logout Tokens it receives. */
export const LOGOUT_CLIENT_ID = 'orders-api'
/** Seconds the issuer lets its status list be cached: short, so the demo sees a revocation within seconds. */
export const STATUS_LIST_TTL = 2

export interface ExampleOptions {
  /** Where the server is reached; it is the token issuer and discovers its own keys there. */
  publicUrl: string
  dataDir: string
  configFile?: string
  logger?: boolean | object
  /**
   * Mirror an Auth0 tenant's blacklist and client grants for the Orders and Reports APIs
   * (Auth0 is then the source of truth for their grants; none are seeded locally).
   */
  auth0?: Pick<Auth0SyncOptions, 'domain' | 'clientId' | 'clientSecret' | 'interval'>
  /** Where revocations (and DPoP proofs seen) live; default a FileStore in `dataDir`. Instances behind one URL share one. */
  store?: RevocationStore
}

/** The partner-facing APIs whose revocations an Auth0 tenant drives when the sync is on. */
export const SYNCED_AUDIENCES = [ORDERS, REPORTS]

/** `auth0` options from AUTH0_DOMAIN, AUTH0_CLIENT_ID, AUTH0_CLIENT_SECRET (and AUTH0_SYNC_INTERVAL); undefined when AUTH0_DOMAIN is unset. */
export function auth0FromEnv (env: NodeJS.ProcessEnv = process.env): ExampleOptions['auth0'] {
  if (env.AUTH0_DOMAIN === undefined || env.AUTH0_DOMAIN === '') return undefined
  const { AUTH0_DOMAIN: domain, AUTH0_CLIENT_ID: clientId, AUTH0_CLIENT_SECRET: clientSecret } = env
  if (!clientId || !clientSecret) throw new Error('AUTH0_DOMAIN is set: AUTH0_CLIENT_ID and AUTH0_CLIENT_SECRET are needed too (a machine-to-machine application authorised for the Management API with read:client_grants and blacklist:tokens)')
  return { domain, clientId, clientSecret, ...(env.AUTH0_SYNC_INTERVAL ? { interval: env.AUTH0_SYNC_INTERVAL } : {}) }
}

/** The files the example keeps in its data directory, and only those: DATA_DIR may hold other things. */
const DATA_FILES = ['revocations', 'seeded', 'status-list.json', 'signing-key.json']

/**
 * Starts the example over: its revocations, grants, status list and signing key go, so
 * the next start seeds config.json again and the walk-through works as printed however
 * the last run ended (its step 4 deletes the partner's grant).
 */
export async function resetExampleData (dataDir: string): Promise<void> {
  for (const name of DATA_FILES) await rm(join(dataDir, name), { recursive: true, force: true })
}

async function seedGrantsOnce (app: FastifyInstance, config: ExampleConfig, dataDir: string, synced: string[]): Promise<void> {
  // Only on the very first start: re-seeding would undo a grant the owner deleted.
  const marker = join(dataDir, 'seeded')
  if (existsSync(marker)) return
  for (const grant of config.grants) {
    if (synced.includes(grant.audience)) continue
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
  const statusList = await new StatusListPublisher(join(options.dataDir, 'status-list.json')).load()
  const receiver = `${issuer}ssf/events`
  const logoutEndpoint = `${issuer}backchannel-logout`
  // The secret the issuer (as SET transmitter) presents with each push.
  const pushAuthorization = `Bearer ${randomBytes(24).toString('base64url')}`

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
    store: options.store ?? new FileStore({ path: join(options.dataDir, 'revocations') }),
    // DPoP proofs name the URL clients call: the public one, whichever instance answers.
    publicUrl: issuer,
    // Tokens point into the issuer's status list; the list is on the issuer's origin
    // (listed explicitly because the example runs on plain http on this machine).
    statusList: { allowedOrigins: [new URL(issuer).origin] },
    // A "not revoked" answer is re-checked after 1 s, so a status list change shows quickly.
    cache: { max: 10_000, ttl: 1000 },
  })

  await app.register(issuerRoutes, {
    config,
    issuer,
    key,
    statusList,
    statusListTtl: STATUS_LIST_TTL,
    ssf: { receiver, authorizationHeader: pushAuthorization },
    logout: { endpoint: logoutEndpoint, clientId: LOGOUT_CLIENT_ID },
    admin: { audience: MANAGEMENT, scope: 'blacklist:tokens' },
  })
  // grants: true applies to the admin client too: on the first run (no grant for the
  // management audience yet), give it one with every admin scope.
  await app.register(adminRoutes, { prefix: '/api/v2', audience: MANAGEMENT, bootstrapClientId: 'admin' })
  // The API's OpenID Shared Signals receiver: the issuer pushes security events here.
  await app.register(ssfReceiver, {
    path: '/ssf/events',
    issuer,
    audience: receiver,
    jwksUri: `${issuer}.well-known/jwks.json`,
    algorithms: ['ES256'],
    authorizationHeader: pushAuthorization,
  })

  // OpenID Connect Back-Channel Logout: the issuer posts Logout Tokens here.
  await app.register(backchannelLogout, {
    path: '/backchannel-logout',
    issuer,
    jwksUri: `${issuer}.well-known/jwks.json`,
    audience: LOGOUT_CLIENT_ID,
    algorithms: ['ES256'],
  })

  if (options.auth0 !== undefined) {
    await app.register(auth0Sync, { ...options.auth0, audience: SYNCED_AUDIENCES })
  }

  // The admin routes in a browser page: sign in with the admin client's credentials.
  await app.register(adminConsole, {
    audience: MANAGEMENT,
    adminBase: '/api/v2',
    tokenEndpoint: '/oauth/token',
    apiAudiences: config.apis.map((a) => a.identifier).filter((a) => a !== MANAGEMENT),
  })
  app.get('/health', { config: { auth: false } }, async () => ({ status: 'ok' }))
  // Readiness for a load balancer or Kubernetes: 503 while the store or the keys are unreachable.
  app.get('/health/ready', { config: { auth: false } }, async (_request, reply) => {
    const report = await app.revocation.health()
    return reply.code(report.status === 'down' ? 503 : 200).send(report)
  })
  metricsRoute(app)
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
  await seedGrantsOnce(app, config, options.dataDir, options.auth0 === undefined ? [] : SYNCED_AUDIENCES)
  return app
}

export function banner (url: string): string {
  return `
fastify-jwt-revocation example: issuer + protected API + admin routes
  API        ${url}/api/orders   (scope read:orders)
  Issuer     ${url}/oauth/token  ${url}/.well-known/openid-configuration
  Admin      ${url}/api/v2/blacklists/tokens  ${url}/api/v2/client-grants
  Console    ${url}/admin   (Client ID admin, Client secret admin-secret)
  Feeds      ${url}/statuslists/1 (Token Status List)  ${url}/ssf/events (Shared Signals receiver)
             ${url}/backchannel-logout (OpenID Connect Back-Channel Logout; the issuer's POST /admin/logout posts there)

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
  const auth0 = auth0FromEnv()
  const keepData = process.env.KEEP_DATA === '1'
  if (!keepData) await resetExampleData(dataDir)
  const app = await buildExampleServer({ publicUrl, dataDir, logger, ...(process.env.CONFIG ? { configFile: resolve(process.env.CONFIG) } : {}), ...(auth0 === undefined ? {} : { auth0 }) })
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => { void app.close().then(() => process.exit(0)) })
  await app.listen({ port, host })
  process.stdout.write(banner(publicUrl))
  process.stdout.write(keepData
    ? `\nKEEP_DATA=1: kept the last run's data in ${dataDir}; start without it to begin again from the config.\n`
    : `\nStarted afresh from the config (data in ${dataDir}); KEEP_DATA=1 npm start keeps a run's revocations and grants.\n`)
  if (auth0 !== undefined) process.stdout.write(`\nAuth0 sync on: revocations at ${auth0.domain} reach ${SYNCED_AUDIENCES.join(' and ')} within ${auth0.interval ?? '30s'}\n`)
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().catch((err) => {
    console.error(err)
    process.exit(1)
  })
}
