// A mini OAuth 2.0 issuer for the example: client credentials only, ES256 tokens shaped
// like Auth0's, keys published as a JWKS with OIDC discovery. It refuses clients without
// a grant for the audience, reading grants from the same store the API checks.
import type { FastifyInstance, FastifyReply } from 'fastify'
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, SignJWT, type JWK } from 'jose'
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto'
import { readFile, writeFile, mkdir } from 'node:fs/promises'
import { join } from 'node:path'

export interface ApiConfig { identifier: string, name: string, token_lifetime: number, scopes: string[] }
export interface ClientConfig { client_id: string, client_secret: string, name: string }
export interface GrantConfig { client_id: string, audience: string, scope: string[] }
export interface ExampleConfig { apis: ApiConfig[], clients: ClientConfig[], grants: GrantConfig[] }

export interface SigningKey { kid: string, privateKey: CryptoKey, publicJwk: JWK }

/** The issuer's ES256 key, kept in the data directory so tokens stay valid across restarts. */
export async function loadSigningKey (dataDir: string): Promise<SigningKey> {
  const file = join(dataDir, 'signing-key.json')
  let privateJwk: JWK
  try {
    privateJwk = JSON.parse(await readFile(file, 'utf8')) as JWK
  } catch {
    const { privateKey } = await generateKeyPair('ES256', { extractable: true })
    privateJwk = await exportJWK(privateKey)
    privateJwk.kid = await calculateJwkThumbprint(privateJwk)
    await mkdir(dataDir, { recursive: true })
    await writeFile(file, JSON.stringify(privateJwk), { mode: 0o600 })
  }
  const { d: _private, ...publicJwk } = privateJwk
  return {
    kid: privateJwk.kid!,
    privateKey: await importJWK(privateJwk, 'ES256') as CryptoKey,
    publicJwk: { ...publicJwk, alg: 'ES256', use: 'sig' },
  }
}

const digest = (value: string) => createHash('sha256').update(value).digest()
const sameSecret = (a: string, b: string) => timingSafeEqual(digest(a), digest(b))

function oauthError (reply: FastifyReply, status: number, error: string, description: string) {
  if (status === 401) reply.header('www-authenticate', 'Basic realm="token"')
  return reply.code(status).send({ error, error_description: description })
}

interface TokenRequest { grant_type?: string, client_id?: string, client_secret?: string, audience?: string }

function basicCredentials (header: string | undefined): { id: string, secret: string } | undefined {
  if (header === undefined || !/^basic /i.test(header)) return undefined
  const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon === -1) return undefined
  return { id: decodeURIComponent(decoded.slice(0, colon)), secret: decodeURIComponent(decoded.slice(colon + 1)) }
}

export async function issuerRoutes (app: FastifyInstance, opts: { config: ExampleConfig, issuer: string, key: SigningKey }): Promise<void> {
  const { config, issuer, key } = opts
  const open = { auth: false as const }

  app.get('/.well-known/jwks.json', { config: open }, async () => ({ keys: [key.publicJwk] }))

  app.get('/.well-known/openid-configuration', { config: open }, async () => ({
    issuer,
    jwks_uri: `${issuer}.well-known/jwks.json`,
    token_endpoint: `${issuer}oauth/token`,
    grant_types_supported: ['client_credentials'],
    token_endpoint_auth_methods_supported: ['client_secret_post', 'client_secret_basic'],
    id_token_signing_alg_values_supported: ['ES256'],
  }))

  app.post<{ Body: TokenRequest }>('/oauth/token', { config: open, bodyLimit: 4096 }, async (request, reply) => {
    reply.header('cache-control', 'no-store')
    const body = (request.body ?? {}) as TokenRequest
    if (body.grant_type !== 'client_credentials') return oauthError(reply, 400, 'unsupported_grant_type', 'Only client_credentials is supported')
    const basic = basicCredentials(request.headers.authorization)
    const clientId = basic?.id ?? body.client_id
    const secret = basic?.secret ?? body.client_secret
    const client = config.clients.find((c) => c.client_id === clientId)
    if (!client || typeof secret !== 'string' || !sameSecret(secret, client.client_secret)) {
      return oauthError(reply, 401, 'invalid_client', 'Unknown client or wrong secret')
    }
    const api = config.apis.find((a) => a.identifier === body.audience)
    if (!api) return oauthError(reply, 400, 'invalid_request', 'Unknown audience')
    const [grant] = await app.revocation.listGrants({ client_id: client.client_id, audience: api.identifier })
    if (!grant) return oauthError(reply, 403, 'access_denied', 'The client has no grant for this audience')
    const now = Math.floor(Date.now() / 1000)
    const scope = grant.scope.join(' ')
    const accessToken = await new SignJWT({ azp: client.client_id, client_id: client.client_id, scope })
      .setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'at+jwt' })
      .setIssuer(issuer)
      .setAudience(api.identifier)
      .setSubject(`${client.client_id}@clients`)
      .setIssuedAt(now)
      .setExpirationTime(now + api.token_lifetime)
      .setJti(randomUUID())
      .sign(key.privateKey)
    return { access_token: accessToken, token_type: 'Bearer', expires_in: api.token_lifetime, scope }
  })
}
