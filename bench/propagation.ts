// Revocation propagation between two instances on RedisStore: revoke on A, poll B over
// HTTP until it refuses; p50/p99 in ms. Each instance has its own Redis connections.
import Fastify from 'fastify'
import { exportJWK, generateKeyPair, SignJWT } from 'jose'
import jwtRevocation from 'fastify-jwt-revocation'
import { RedisStore } from 'fastify-jwt-revocation/redis'
import { Redis } from 'ioredis'

export async function measurePropagation (samples = 200): Promise<{ p50: number, p99: number, samples: number }> {
  const { privateKey, publicKey } = await generateKeyPair('ES256')
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k', alg: 'ES256' }
  const prefix = `{bench-propagation-${process.pid}}:`
  const clients: Redis[] = []
  const instance = async () => {
    const client = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379')
    clients.push(client)
    const app = Fastify()
    await app.register(jwtRevocation, { jwks: { keys: [jwk] }, audience: 'a', store: new RedisStore({ client, prefix }), cache: { max: 10_000, ttl: 60_000 } })
    app.get('/orders', async () => ({ ok: true }))
    await app.listen({ port: 0, host: '127.0.0.1' })
    return { app, url: `http://127.0.0.1:${(app.server.address() as import('node:net').AddressInfo).port}/orders` }
  }
  const a = await instance()
  const b = await instance()
  const delays: number[] = []
  for (let i = 0; i < samples; i++) {
    const jti = `p-${i}`
    const token = await new SignJWT({ jti }).setProtectedHeader({ alg: 'ES256', kid: 'k' }).setAudience('a').setIssuedAt().setExpirationTime('1h').sign(privateKey)
    const headers = { authorization: `Bearer ${token}` }
    if ((await fetch(b.url, { headers })).status !== 200) throw new Error('token not accepted by B')
    const started = performance.now()
    await a.app.revocation.revokeToken({ jti, aud: 'a' })
    while ((await fetch(b.url, { headers })).status !== 401) {
      if (performance.now() - started > 5000) throw new Error('revocation never reached B')
    }
    delays.push(performance.now() - started)
  }
  await a.app.close()
  await b.app.close()
  const cleanup = clients[0]!
  const keys = await cleanup.keys(`${prefix.replace(/[{}]/g, '\\$&')}*`)
  if (keys.length > 0) await cleanup.del(...keys)
  for (const c of clients) c.disconnect()
  delays.sort((x, y) => x - y)
  return { p50: delays[Math.floor(samples * 0.5)]!, p99: delays[Math.floor(samples * 0.99)]!, samples }
}
