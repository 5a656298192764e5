// One benchmark server per process: `node --import tsx bench/servers.ts <ServerKind JSON>`.
// Prints "PORT <n>" once listening. Every server serves the same route and response and,
// where it verifies tokens, does the same checks: signature with an allow-listed
// algorithm, iss, aud, exp required and not passed, and a jti revocation lookup.
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify'
import { createLocalJWKSet, jwtVerify } from 'jose'
import jwtRevocation, { FileStore, MemoryStore } from 'fastify-jwt-revocation'
import { RedisStore } from 'fastify-jwt-revocation/redis'
import { Redis } from 'ioredis'
import { mkdtemp } from 'node:fs/promises'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AUDIENCE, DPOP_PUBLIC_URL, ISSUER, REVOKED_JTI, type BenchKeys, type ServerKind, type Store } from './config.js'

const route = async () => ({ ok: true })
const keys = JSON.parse(process.env.BENCH_KEYS!) as BenchKeys
const unauthorized = () => Object.assign(new Error('Unauthorized'), { statusCode: 401 })

async function revocationStore (store: Store) {
  if (store === 'redis') return new RedisStore({ client: new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'), prefix: `{bench-${process.pid}}:` })
  if (store === 'file') return new FileStore({ path: await mkdtemp(join(tmpdir(), 'bench-file-store-')) })
  return new MemoryStore()
}

async function registerMetricsSdk (): Promise<void> {
  const { metrics } = await import('@opentelemetry/api')
  const sdk = await import('@opentelemetry/sdk-metrics')
  const exporter = new sdk.InMemoryMetricExporter(sdk.AggregationTemporality.CUMULATIVE)
  metrics.setGlobalMeterProvider(new sdk.MeterProvider({ readers: [new sdk.PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 1000 })] }))
}

/** A local RFC 7662 endpoint that finds every token active, closed with the app. */
async function introspectionOf (app: FastifyInstance) {
  const endpoint = createServer((_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{"active":true}') })
  await new Promise<void>((resolve) => endpoint.listen(0, '127.0.0.1', resolve))
  app.addHook('onClose', () => { endpoint.close() })
  const origin = `http://127.0.0.1:${(endpoint.address() as import('node:net').AddressInfo).port}`
  return { endpoint: `${origin}/introspect`, allowedOrigins: [origin], clientId: 'bench', clientSecret: 'bench', cache: '1h' }
}

let routeConfig: { auth: { introspect: true } } | undefined

async function build (spec: ServerKind): Promise<FastifyInstance> {
  const app = Fastify({ logger: false })
  const revoked = new Set([REVOKED_JTI])
  if (spec.kind === 'bare' && spec.hook === true) {
    // What any onRequest hook costs before it does anything: Fastify's hook runner.
    app.addHook('onRequest', (_request, _reply, done) => done())
  } else if (spec.kind === 'plugin') {
    // The metrics' cost when an app records them: an SDK registered before the plugin.
    if (spec.otel === true) await registerMetricsSdk()
    const store = await revocationStore(spec.store)
    await app.register(jwtRevocation, {
      jwks: keys.jwks as never,
      issuer: ISSUER,
      audience: AUDIENCE,
      algorithms: [spec.alg],
      store,
      cache: { max: spec.cacheMax, ttl: 10_000 },
      // An issuer answering active for every token, asked once per token: the rows measure a warm answer cache.
      ...(spec.introspect === true ? { introspection: await introspectionOf(app) } : {}),
      // Proofs are signed before the run starts, so they must stay fresh for all of it.
      ...(spec.dpop === true ? { dpop: { required: true, proofMaxAge: '1h' }, publicUrl: DPOP_PUBLIC_URL } : {}),
    })
    if (spec.introspect === true) routeConfig = { auth: { introspect: true } }
    await app.revocation.revokeToken({ jti: REVOKED_JTI })
  } else if (spec.kind === 'jose') {
    // The ceiling of the chosen dependency: jose alone, in the simplest hook.
    const jwks = createLocalJWKSet(keys.jwks as never)
    const options = { issuer: ISSUER, audience: AUDIENCE, algorithms: [spec.alg], requiredClaims: ['exp'] }
    app.addHook('onRequest', async (request: FastifyRequest) => {
      const header = request.headers.authorization
      if (header === undefined || !header.startsWith('Bearer ')) throw unauthorized()
      const { payload } = await jwtVerify(header.slice(7), jwks, options)
      if (typeof payload.jti === 'string' && revoked.has(payload.jti)) throw unauthorized()
    })
  } else if (spec.kind === 'fastify-jwt') {
    // One PEM key (it cannot pick a key from a JWKS by kid), its verified-token cache off.
    const { default: fastifyJwt } = await import('@fastify/jwt')
    await app.register(fastifyJwt, {
      secret: { public: keys.pem[spec.alg] },
      verify: { algorithms: [spec.alg], allowedIss: ISSUER, allowedAud: AUDIENCE, cache: false, requiredClaims: ['exp'] },
      trusted: (_request: unknown, decoded: { jti?: string }) => !revoked.has(decoded.jti ?? ''),
    } as never)
    app.addHook('onRequest', async (request) => { await request.jwtVerify() })
  } else if (spec.kind === 'fastify-jwt-redis') {
    // What @fastify/jwt's README suggests for revocation, with its verified-token cache on:
    // `trusted` asks Redis whether the token's jti is revoked, on every request.
    const { default: fastifyJwt } = await import('@fastify/jwt')
    const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379')
    const prefix = `bench-revoked-${process.pid}:`
    await redis.set(prefix + REVOKED_JTI, '1')
    app.addHook('onClose', () => { redis.disconnect() })
    await app.register(fastifyJwt, {
      secret: { public: keys.pem[spec.alg] },
      verify: { algorithms: [spec.alg], allowedIss: ISSUER, allowedAud: AUDIENCE, cache: spec.cacheMax, requiredClaims: ['exp'] },
      trusted: async (_request: unknown, decoded: { jti?: string }) => typeof decoded.jti === 'string' && await redis.exists(prefix + decoded.jti) === 0,
    } as never)
    app.addHook('onRequest', async (request) => { await request.jwtVerify() })
  } else if (spec.kind === 'fastify-jwt-jwks') {
    // Keys from a JWKS URL (cached by kid); RS256 and EdDSA only; its options do not
    // reach @fastify/jwt's `trusted`, so the jti lookup runs in a hook after it.
    const { default: fastifyJwtJwks } = await import('fastify-jwt-jwks')
    await app.register(fastifyJwtJwks as never, { jwksUrl: keys.jwksUri, issuer: ISSUER, audience: AUDIENCE, cache: false, requiredClaims: ['exp'] })
    app.addHook('onRequest', (app as unknown as { authenticate: (r: unknown, s: unknown) => Promise<void> }).authenticate)
    app.addHook('onRequest', async (request) => {
      const jti = (request.user as { jti?: string }).jti
      if (typeof jti === 'string' && revoked.has(jti)) throw unauthorized()
    })
  }
  app.get('/orders', routeConfig === undefined ? {} : { config: routeConfig }, route)
  return app
}

const app = await build(JSON.parse(process.argv[2]!) as ServerKind)
await app.listen({ port: 0, host: '127.0.0.1' })
process.stdout.write(`PORT ${(app.server.address() as import('node:net').AddressInfo).port}\n`)
for (const s of ['SIGTERM', 'SIGINT'] as const) process.on(s, () => { void app.close().finally(() => process.exit(0)) })
