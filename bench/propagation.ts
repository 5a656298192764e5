// Revocation propagation between two instances sharing a store: revoke on A, poll B over
// HTTP until it refuses; p50/p99 in ms. Each instance has its own client connections.
// With `killEvery`, B's connections (its client, its subscriber or LISTEN connection) are
// killed at that interval while the samples run: every revocation must still arrive, and
// B's feedStatus() says how many times it had to drop its cache (the log makes that zero).
import Fastify from 'fastify'
import { exportJWK, generateKeyPair, SignJWT } from 'jose'
import jwtRevocation, { type RevocationStore } from 'fastify-jwt-revocation'
import { PostgresStore } from 'fastify-jwt-revocation/postgres'
import { RedisStore } from 'fastify-jwt-revocation/redis'
import { Redis } from 'ioredis'
import pg from 'pg'

export type PropagationStore = 'redis' | 'postgres'

interface Connection { store: RevocationStore, close: () => Promise<void> }

function connect (kind: PropagationStore, name: string, label: string): Connection {
  if (kind === 'redis') {
    // The store's subscriber is a duplicate of this client, so it carries the same name.
    const client = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { connectionName: label })
    client.on('error', () => {})
    return { store: new RedisStore({ client, prefix: `{${name}}:` }), close: async () => { client.disconnect() } }
  }
  const pool = new pg.Pool({ connectionString: process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test', max: 4, application_name: label })
  pool.on('error', () => {})
  return { store: new PostgresStore({ pool, tablePrefix: `${name.replace(/-/g, '_')}_` }), close: () => pool.end() }
}

async function dropPostgresTables (name: string): Promise<void> {
  const pool = new pg.Pool({ connectionString: process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test', max: 1 })
  const { rows } = await pool.query<{ tablename: string }>('SELECT tablename FROM pg_tables WHERE tablename LIKE $1', [`${name.replace(/-/g, '_')}\\_%`])
  for (const { tablename } of rows) await pool.query(`DROP TABLE IF EXISTS "${tablename}" CASCADE`)
  await pool.end()
}

/** Kills every server connection named `label` (a Redis connection name, a PostgreSQL application_name). */
async function killConnections (kind: PropagationStore, label: string): Promise<void> {
  if (kind === 'redis') {
    const admin = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379')
    try {
      const list = await admin.client('LIST') as string
      for (const line of list.split('\n')) {
        if (!line.includes(` name=${label} `)) continue
        const id = /\bid=(\d+)/.exec(line)?.[1]
        if (id !== undefined) await admin.client('KILL', 'ID', id).catch(() => {})
      }
    } finally {
      admin.disconnect()
    }
    return
  }
  const admin = new pg.Client({ connectionString: process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test' })
  await admin.connect()
  try {
    await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [label])
  } finally {
    await admin.end()
  }
}

export interface Propagation { p50: number, p99: number, samples: number, arrived: number, resets: number, kills: number }

export async function measurePropagation (kind: PropagationStore, samples = 200, killEvery?: number): Promise<Propagation> {
  const { privateKey, publicKey } = await generateKeyPair('ES256')
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k', alg: 'ES256' }
  const name = `bench_propagation_${process.pid}`
  const connections: Connection[] = []
  const instance = async (label: string) => {
    const connection = connect(kind, name, label)
    connections.push(connection)
    const app = Fastify()
    await app.register(jwtRevocation, { jwks: { keys: [jwk] }, audience: 'a', store: connection.store, cache: { max: 10_000, ttl: 60_000 } })
    app.get('/orders', async () => ({ ok: true }))
    await app.listen({ port: 0, host: '127.0.0.1' })
    return { app, url: `http://127.0.0.1:${(app.server.address() as import('node:net').AddressInfo).port}/orders` }
  }
  const labelB = `${name}-b`
  const a = await instance(`${name}-a`)
  const b = await instance(labelB)
  const delays: number[] = []
  let kills = 0
  let resets = 0
  const killer = killEvery === undefined
    ? undefined
    : setInterval(() => { kills++; killConnections(kind, labelB).catch(() => {}) }, killEvery)
  try {
    for (let i = 0; i < samples; i++) {
      const jti = `p-${i}`
      const token = await new SignJWT({ jti }).setProtectedHeader({ alg: 'ES256', kid: 'k' }).setAudience('a').setIssuedAt().setExpirationTime('1h').sign(privateKey)
      const headers = { authorization: `Bearer ${token}` }
      // While B's connections are being killed it may answer 503 (its store unreachable) for a moment.
      const admitted = performance.now()
      while ((await fetch(b.url, { headers })).status !== 200) {
        if (performance.now() - admitted > 5000) throw new Error('token not accepted by B')
      }
      const started = performance.now()
      await a.app.revocation.revokeToken({ jti, aud: 'a' })
      while ((await fetch(b.url, { headers })).status !== 401) {
        if (performance.now() - started > 5000) throw new Error('revocation never reached B')
      }
      delays.push(performance.now() - started)
      // Spread the samples over several kills (200 samples otherwise finish within one second).
      if (killEvery !== undefined) await new Promise((resolve) => setTimeout(resolve, killEvery / 20))
    }
  } finally {
    clearInterval(killer)
    resets = b.app.revocation.feedStatus().resets
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
  return { p50: delays[Math.floor(samples * 0.5)]!, p99: delays[Math.min(samples - 1, Math.floor(samples * 0.99))]!, samples, arrived: delays.length, resets, kills }
}
