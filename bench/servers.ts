// One benchmark server per process: `node --import tsx bench/servers.ts <scenario>`.
// Prints "PORT <n>" once listening. Every scenario serves the same route and response.
import Fastify, { type FastifyInstance } from 'fastify'
import jwtRevocation, { MemoryStore } from 'fastify-jwt-revocation'
import { RedisStore } from 'fastify-jwt-revocation/redis'
import { Redis } from 'ioredis'

import { AUDIENCE, ISSUER, SECRET, type ServerKind } from './config.js'

const route = async () => ({ ok: true })

async function build (spec: ServerKind, env: NodeJS.ProcessEnv): Promise<FastifyInstance> {
  const app = Fastify({ logger: false })
  if (spec.kind === 'plugin') {
    const store = spec.store === 'redis'
      ? new RedisStore({ client: new Redis(env.REDIS_URL ?? 'redis://127.0.0.1:6379'), prefix: `{bench-${process.pid}}:` })
      : new MemoryStore()
    await app.register(jwtRevocation, {
      ...(spec.source === 'jwks' ? { jwksUri: env.BENCH_JWKS_URI! } : { secret: SECRET }),
      issuer: ISSUER,
      audience: AUDIENCE,
      algorithms: spec.algorithms,
      store,
      cache: spec.cacheMax === false ? false : { max: spec.cacheMax, ttl: 10_000 },
    })
  } else if (spec.kind === 'fastify-jwt') {
    // The closest peer with the same checks: iss, aud, exp, and a jti blacklist lookup.
    const { default: fastifyJwt } = await import('@fastify/jwt')
    const revoked = new Set<string>(['some-revoked-jti'])
    await app.register(fastifyJwt, {
      secret: { public: env.BENCH_ES256_PEM! },
      verify: { algorithms: ['ES256'], allowedIss: ISSUER, allowedAud: AUDIENCE, cache: spec.cache, requiredClaims: ['exp'] },
      trusted: (_request: unknown, decoded: { jti?: string }) => !revoked.has(decoded.jti ?? ''),
    } as never)
    app.addHook('onRequest', async (request) => { await request.jwtVerify() })
  } else if (spec.kind === 'fastify-jwt-jwks') {
    const { default: fastifyJwtJwks } = await import('fastify-jwt-jwks')
    await app.register(fastifyJwtJwks as never, { jwksUrl: env.BENCH_JWKS_URI!, issuer: ISSUER, audience: AUDIENCE })
    app.addHook('onRequest', (app as unknown as { authenticate: (r: unknown, s: unknown) => Promise<void> }).authenticate)
  }
  app.get('/orders', route)
  return app
}

const spec = JSON.parse(process.argv[2]!) as ServerKind
const app = await build(spec, process.env)
await app.listen({ port: 0, host: '127.0.0.1' })
process.stdout.write(`PORT ${(app.server.address() as import('node:net').AddressInfo).port}\n`)
for (const s of ['SIGTERM', 'SIGINT'] as const) process.on(s, () => { void app.close().finally(() => process.exit(0)) })
