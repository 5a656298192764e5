// Revocation propagation between two instances sharing a store: revoke on A, poll B over
// HTTP until it refuses; p50/p99 in ms. Each instance has its own client connections.
import Fastify from 'fastify'
import { exportJWK, generateKeyPair, SignJWT } from 'jose'
import jwtRevocation, { type RevocationStore } from 'fastify-jwt-revocation'
import { PostgresStore } from 'fastify-jwt-revocation/postgres'
import { RedisStore } from 'fastify-jwt-revocation/redis'
import { Redis } from 'ioredis'
import pg from 'pg'

export type PropagationStore = 'redis' | 'postgres'

interface Connection { store: RevocationStore, close: () => Promise<void> }

function connect (kind: PropagationStore, name: string): Connection {
  if (kind === 'redis') {
    const client = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379')
    return { store: new RedisStore({ client, prefix: `{${name}}:` }), close: async () => { client.disconnect() } }
  }
  const pool = new pg.Pool({ connectionString: process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test', max: 4 })
  return { store: new PostgresStore({ pool, tablePrefix: `${name.replace(/-/g, '_')}_` }), close: () => pool.end() }
}

async function dropPostgresTables (name: string): Promise<void> {
  const pool = new pg.Pool({ connectionString: process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test', max: 1 })
  const { rows } = await pool.query<{ tablename: string }>('SELECT tablename FROM pg_tables WHERE tablename LIKE $1', [`${name.replace(/-/g, '_')}\\_%`])
  for (const { tablename } of rows) await pool.query(`DROP TABLE IF EXISTS "${tablename}" CASCADE`)
  await pool.end()
}

export async function measurePropagation (kind: PropagationStore, samples = 200): Promise<{ p50: number, p99: number, samples: number }> {
  const { privateKey, publicKey } = await generateKeyPair('ES256')
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k', alg: 'ES256' }
  const name = `bench_propagation_${process.pid}`
  const connections: Connection[] = []
  const instance = async () => {
    const connection = connect(kind, name)
    connections.push(connection)
    const app = Fastify()
    await app.register(jwtRevocation, { jwks: { keys: [jwk] }, audience: 'a', store: connection.store, cache: { max: 10_000, ttl: 60_000 } })
    app.get('/orders', async () => ({ ok: true }))
    await app.listen({ port: 0, host: '127.0.0.1' })
    return { app, url: `http://127.0.0.1:${(app.server.address() as import('node:net').AddressInfo).port}/orders` }
  }
  const a = await instance()
  const b = await instance()
  const delays: number[] = []
  try {
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
  } finally {
    await a.app.close()
    await b.app.close()
    if (kind === 'redis') {
      const client = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379')
      const keys = await client.keys(`{${name}}:*`)
      if (keys.length > 0) await client.del(...keys)
      client.disconnect()
    } else {
      await dropPostgresTables(name)
    }
    for (const c of connections) await c.close()
  }
  delays.sort((x, y) => x - y)
  return { p50: delays[Math.floor(samples * 0.5)]!, p99: delays[Math.min(samples - 1, Math.floor(samples * 0.99))]!, samples }
}
