// A mini OAuth 2.0 issuer for the example: client credentials only, ES256 tokens shaped
// like Auth0's, keys published as a JWKS with OIDC discovery. It refuses clients without
// a grant for the audience, reading grants from the same store the API checks.
// Like Okta, Entra or Keycloak it also revokes through standards: every token points
// into its published Token Status List, revoking a subject pushes a CAEP
// session-revoked Security Event Token to the API's Shared Signals receiver, and a
// logout posts an OpenID Connect Logout Token to the API's back-channel logout endpoint.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { base64url, calculateJwkThumbprint, EmbeddedJWK, exportJWK, generateKeyPair, importJWK, jwtVerify, SignJWT, type JWK } from 'jose'
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto'
import { readFile, writeFile, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { deflateSync } from 'node:zlib'

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

/** Proof algorithms the issuer accepts on its token endpoint (the API checks its own list). */
const DPOP_ALGORITHMS = ['ES256', 'EdDSA', 'PS256', 'RS256']

/**
 * RFC 9449 §5: a `DPoP` header on the token request binds the token to the proof's key.
 * Returns that key's thumbprint, null without a header, or undefined for a bad proof.
 * (An authorization server's check; the API's is the package's own.)
 */
async function dpopKeyOf (request: FastifyRequest, tokenEndpoint: string): Promise<string | null | undefined> {
  const header = request.headers.dpop
  if (header === undefined) return null
  if (typeof header !== 'string') return undefined
  try {
    const { payload, protectedHeader } = await jwtVerify(header, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: DPOP_ALGORITHMS, requiredClaims: ['jti', 'htm', 'htu', 'iat'] })
    const fresh = Math.abs(Date.now() / 1000 - (payload.iat as number)) <= 60
    if (payload.htm !== 'POST' || payload.htu !== tokenEndpoint || !fresh) return undefined
    return await calculateJwkThumbprint(protectedHeader.jwk!)
  } catch {
    return undefined
  }
}

interface TokenRequest { grant_type?: string, client_id?: string, client_secret?: string, audience?: string, resource?: string }

function basicCredentials (header: string | undefined): { id: string, secret: string } | undefined {
  if (header === undefined || !/^basic /i.test(header)) return undefined
  const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon === -1) return undefined
  return { id: decodeURIComponent(decoded.slice(0, colon)), secret: decodeURIComponent(decoded.slice(colon + 1)) }
}

/**
 * The issuer's Token Status List (1 bit per token): an index for each token it mints,
 * kept in the data directory, published as a signed Status List Token.
 */
export class StatusListPublisher {
  private revoked = new Set<number>()
  private next = 0

  constructor (private readonly file: string, readonly size = 1 << 16) {}

  async load (): Promise<this> {
    try {
      const saved = JSON.parse(await readFile(this.file, 'utf8')) as { next: number, revoked: number[] }
      this.next = saved.next
      this.revoked = new Set(saved.revoked)
    } catch {}
    return this
  }

  private save (): Promise<void> {
    return writeFile(this.file, JSON.stringify({ next: this.next, revoked: [...this.revoked] }))
  }

  async allocate (): Promise<number> {
    const idx = this.next
    this.next = (this.next + 1) % this.size
    this.revoked.delete(idx)
    await this.save()
    return idx
  }

  async revoke (idx: number): Promise<void> {
    this.revoked.add(idx)
    await this.save()
  }

  /** Token Status List §4.1: statuses packed least-significant bit first, then zlib. */
  encoded (): string {
    const bytes = Buffer.alloc(this.size / 8)
    for (const idx of this.revoked) bytes[idx >> 3]! |= 1 << (idx % 8)
    return base64url.encode(deflateSync(bytes))
  }
}

export interface IssuerOptions {
  config: ExampleConfig
  issuer: string
  key: SigningKey
  statusList: StatusListPublisher
  /** Seconds relying parties may cache the status list: short, so the demo shows a revocation quickly. */
  statusListTtl: number
  /** Where "revoke subject" pushes its SET, and the Authorization header the receiver expects. */
  ssf: { receiver: string, authorizationHeader: string }
  /** Where a logout posts its Logout Token, and the client id the API is registered under. */
  logout: { endpoint: string, clientId: string }
  /** Audience and scope of the issuer's own admin calls (the Management API's). */
  admin: { audience: string, scope: string }
}

export async function issuerRoutes (app: FastifyInstance, opts: IssuerOptions): Promise<void> {
  const { config, issuer, key, statusList } = opts
  const open = { auth: false as const }
  const statusListUri = `${issuer}statuslists/1`
  const adminOnly = { auth: { scopes: [opts.admin.scope], audience: opts.admin.audience } }

  app.get('/.well-known/jwks.json', { config: open }, async () => ({ keys: [key.publicJwk] }))

  const metadata = {
    issuer,
    jwks_uri: `${issuer}.well-known/jwks.json`,
    token_endpoint: `${issuer}oauth/token`,
    // RFC 8414 needs no authorization endpoint when no grant uses one, but MCP SDK clients
    // refuse metadata without it: one that turns every request away (below), and no
    // response type supported.
    authorization_endpoint: `${issuer}oauth/authorize`,
    response_types_supported: [],
    grant_types_supported: ['client_credentials'],
    scopes_supported: [...new Set(config.apis.flatMap((api) => api.scopes))],
    token_endpoint_auth_methods_supported: ['client_secret_post', 'client_secret_basic'],
    id_token_signing_alg_values_supported: ['ES256'],
    dpop_signing_alg_values_supported: DPOP_ALGORITHMS,
  }
  // OIDC Discovery, and RFC 8414 for OAuth clients (MCP clients look there).
  app.get('/.well-known/openid-configuration', { config: open }, async () => metadata)
  app.get('/.well-known/oauth-authorization-server', { config: open }, async () => metadata)

  // No client has a redirect URI, so nothing is redirected back (RFC 6749 §4.1.2.1).
  app.get('/oauth/authorize', { config: open }, async (_request, reply) =>
    oauthError(reply, 400, 'unsupported_response_type', 'This issuer only issues client_credentials tokens'))

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
    // RFC 8707 `resource` (what MCP clients send) or Auth0's `audience`: the same choice.
    if (body.resource !== undefined && body.audience !== undefined && body.resource !== body.audience) {
      return oauthError(reply, 400, 'invalid_target', 'resource and audience differ')
    }
    const api = config.apis.find((a) => a.identifier === (body.resource ?? body.audience))
    if (!api) return body.resource === undefined ? oauthError(reply, 400, 'invalid_request', 'Unknown audience') : oauthError(reply, 400, 'invalid_target', 'Unknown resource')
    const [grant] = await app.revocation.listGrants({ client_id: client.client_id, audience: api.identifier })
    if (!grant) return oauthError(reply, 403, 'access_denied', 'The client has no grant for this audience')
    const jkt = await dpopKeyOf(request, `${issuer}oauth/token`)
    if (jkt === undefined) return oauthError(reply, 400, 'invalid_dpop_proof', 'The DPoP proof is invalid')
    const now = Math.floor(Date.now() / 1000)
    const scope = grant.scope.join(' ')
    const status = { status_list: { idx: await statusList.allocate(), uri: statusListUri } }
    const accessToken = await new SignJWT({ azp: client.client_id, client_id: client.client_id, scope, status, ...(jkt === null ? {} : { cnf: { jkt } }) })
      .setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'at+jwt' })
      .setIssuer(issuer)
      .setAudience(api.identifier)
      .setSubject(`${client.client_id}@clients`)
      .setIssuedAt(now)
      .setExpirationTime(now + api.token_lifetime)
      .setJti(randomUUID())
      .sign(key.privateKey)
    return { access_token: accessToken, token_type: jkt === null ? 'Bearer' : 'DPoP', expires_in: api.token_lifetime, scope }
  })

  // The Status List Token (IETF Token Status List §5.1), signed with the token key.
  app.get('/statuslists/1', { config: open }, async (_request, reply) => {
    const jwt = await new SignJWT({ status_list: { bits: 1, lst: statusList.encoded() }, ttl: opts.statusListTtl })
      .setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'statuslist+jwt' })
      .setIssuer(issuer)
      .setSubject(statusListUri)
      .setIssuedAt()
      .sign(key.privateKey)
    return reply.type('application/statuslist+jwt').header('cache-control', `max-age=${opts.statusListTtl}`).send(jwt)
  })

  // Marks a token's index revoked, as an issuer's admin console would.
  app.post<{ Body: { idx: number } }>('/statuslists/1/revoke', {
    config: adminOnly,
    schema: { body: { type: 'object', required: ['idx'], additionalProperties: false, properties: { idx: { type: 'integer', minimum: 0, maximum: statusList.size - 1 } } } },
  }, async (request, reply) => {
    await statusList.revoke(request.body.idx)
    return reply.code(204).send()
  })

  // "Revoke subject" at the issuer: its sessions end, and a CAEP session-revoked SET is
  // pushed to the API's receiver (RFC 8935), which cuts the subject off there too.
  app.post<{ Body: { sub: string } }>('/admin/revoke-subject', {
    config: adminOnly,
    schema: { body: { type: 'object', required: ['sub'], additionalProperties: false, properties: { sub: { type: 'string', minLength: 1, maxLength: 256 } } } },
  }, async (request) => {
    const now = Math.floor(Date.now() / 1000)
    const set = await new SignJWT({
      sub_id: { format: 'iss_sub', iss: issuer, sub: request.body.sub },
      events: { 'https://schemas.openid.net/secevent/caep/event-type/session-revoked': { event_timestamp: now } },
    })
      .setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'secevent+jwt' })
      .setIssuer(issuer)
      .setAudience(opts.ssf.receiver)
      .setIssuedAt(now)
      .setJti(randomUUID())
      .sign(key.privateKey)
    const pushed = await fetch(opts.ssf.receiver, {
      method: 'POST',
      body: set,
      headers: { 'content-type': 'application/secevent+jwt', accept: 'application/json', authorization: opts.ssf.authorizationHeader },
      signal: AbortSignal.timeout(5000),
    })
    return { pushed: pushed.status }
  })

  // A logout at the issuer (OpenID Connect Back-Channel Logout 1.0 §2.5): one session
  // (`sid`) or every session of a user (`sub`) ends, and the API is told with a Logout
  // Token posted as a form; it answers 200, or 400 with the reason.
  const id = { type: 'string', minLength: 1, maxLength: 256 }
  app.post<{ Body: { sid?: string, sub?: string } }>('/admin/logout', {
    config: adminOnly,
    schema: { body: { type: 'object', minProperties: 1, additionalProperties: false, properties: { sid: id, sub: id } } },
  }, async (request) => {
    const now = Math.floor(Date.now() / 1000)
    const { sid, sub } = request.body
    const jwt = new SignJWT({ ...(sid === undefined ? {} : { sid }), events: { 'http://schemas.openid.net/event/backchannel-logout': {} } })
      .setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'logout+jwt' })
      .setIssuer(issuer)
      .setAudience(opts.logout.clientId)
      .setIssuedAt(now)
      // §4: a short lifetime, so a captured Logout Token is soon useless.
      .setExpirationTime(now + 120)
      .setJti(randomUUID())
    if (sub !== undefined) jwt.setSubject(sub)
    const posted = await fetch(opts.logout.endpoint, {
      method: 'POST',
      body: new URLSearchParams({ logout_token: await jwt.sign(key.privateKey) }),
      signal: AbortSignal.timeout(5000),
    })
    return { status: posted.status }
  })
}
