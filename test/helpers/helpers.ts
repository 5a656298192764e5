import Fastify, { type FastifyInstance } from 'fastify'
import { exportJWK, generateKeyPair, SignJWT, type JWK, type JWTPayload, type CryptoKey } from 'jose'
import { randomUUID } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import jwtRevocation, { type JwtRevocationOptions, type RevocationRefusal } from '../../src/index.js'

export const ISSUER = 'https://issuer.test/'
export const AUDIENCE = 'https://api.test'
export const SECRET = 'a-test-secret-of-at-least-32-bytes-long!!'

export interface TestKey {
  alg: string
  kid: string
  privateKey: CryptoKey
  publicJwk: JWK
}

export async function makeKey (alg = 'ES256', kid: string = randomUUID()): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true })
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' }
  return { alg, kid, privateKey, publicJwk }
}

export interface SignOptions {
  header?: Record<string, unknown>
  /** Seconds from now; default 3600. */
  expiresIn?: number | null
}

/** Signs a token with sensible claims; `claims` override them (set a claim to undefined to drop it). */
export async function sign (key: TestKey | Uint8Array, claims: JWTPayload = {}, options: SignOptions = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  const payload: JWTPayload = {
    iss: ISSUER,
    aud: AUDIENCE,
    sub: 'partner-client@clients',
    azp: 'partner-client',
    scope: 'read:orders',
    iat: now,
    jti: randomUUID(),
    ...(options.expiresIn === null ? {} : { exp: now + (options.expiresIn ?? 3600) }),
    ...claims,
  }
  for (const k of Object.keys(payload)) if (payload[k] === undefined) delete payload[k]
  const isSecret = key instanceof Uint8Array
  const header = { alg: isSecret ? 'HS256' : key.alg, ...(isSecret ? {} : { kid: key.kid }), ...options.header } as { alg: string }
  return new SignJWT(payload).setProtectedHeader(header).sign(isSecret ? key : key.privateKey)
}

export const secretBytes = new TextEncoder().encode(SECRET)

/** An app with the plugin and a few routes; closed by the test's teardown. */
const refusals = new WeakMap<FastifyInstance, RevocationRefusal[]>()

/** The `revocation` details of each revoked-token refusal of the app so far, as server-side code reads them. */
export function refusalsOf (app: FastifyInstance): RevocationRefusal[] {
  let seen = refusals.get(app)
  if (seen === undefined) {
    seen = []
    refusals.set(app, seen)
    const list = seen
    app.addHook('onError', async (_request, _reply, err) => {
      const revocation = (err as { revocation?: RevocationRefusal }).revocation
      if (revocation !== undefined) list.push(revocation)
    })
  }
  return seen
}

export async function buildApp (t: { teardown: (fn: () => unknown) => void }, options: Partial<JwtRevocationOptions>): Promise<FastifyInstance> {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(jwtRevocation, { audience: AUDIENCE, issuer: ISSUER, ...options } as JwtRevocationOptions)
  refusalsOf(app)
  app.get('/orders', { config: { auth: { scopes: ['read:orders'] } } }, async (req) => ({ sub: req.auth!.subject, client: req.auth!.clientId, scopes: req.auth!.scopes }))
  app.post('/orders', { config: { auth: { scopes: ['write:orders'] } } }, async () => ({ ok: true }))
  app.get('/me', async (req) => ({ sub: req.auth!.subject }))
  app.get('/health', { config: { auth: false } }, async (req) => ({ ok: true, auth: req.auth }))
  await app.ready()
  return app
}

/** The error `ready()` fails with for these options; throws when it does not fail. */
export async function readyError (options: Record<string, unknown>): Promise<Error> {
  const app = Fastify()
  app.register(jwtRevocation, options as unknown as JwtRevocationOptions)
  try {
    await app.ready()
  } catch (err) {
    return err as Error
  } finally {
    await app.close()
  }
  throw new Error('ready() did not fail')
}

/** The DPoP challenge that follows the Bearer one when `dpop` is on with its default algorithms. */
export const DPOP_CHALLENGE = ', DPoP algs="ES256 EdDSA RS256 PS256"'

export function bearer (token: string): { authorization: string } {
  return { authorization: `Bearer ${token}` }
}

/** A local HTTP server whose handler the test controls; counts requests per path. */
export async function jwksServer (t: { teardown: (fn: () => unknown) => void }, handler: (path: string, res: import('node:http').ServerResponse) => void): Promise<{ url: string, hits: Map<string, number>, server: Server }> {
  const hits = new Map<string, number>()
  const server = createServer((req, res) => {
    const path = req.url ?? '/'
    hits.set(path, (hits.get(path) ?? 0) + 1)
    handler(path, res)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits, server }
}

export function json (res: import('node:http').ServerResponse, body: unknown, status = 200): void {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify(body))
}
