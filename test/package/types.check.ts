// Type tests: checked by `npm run typecheck` (tsc). Each @ts-expect-error line must be an error.
import Fastify from 'fastify'
import jwtRevocation, { MemoryStore, type AuthContext, type DpopOptions, type IntrospectionOptions, type ProvenBinding, type ResourceMetadataOptions, type RevocationStore, type StatusListOptions } from '../../src/index.js'
import { ssfReceiver, type SubjectIdentifier } from '../../src/sources/ssf/index.js'

const app = Fastify()
await app.register(jwtRevocation, { jwksUri: 'https://issuer.example/.well-known/jwks.json', audience: 'https://api.example', maxTokenLifetime: '1d', store: new MemoryStore() })
// @ts-expect-error audience is required
await app.register(jwtRevocation, { jwksUri: 'https://issuer.example/.well-known/jwks.json' })
// @ts-expect-error onStoreError is 'deny' | 'allow'
await app.register(jwtRevocation, { secret: 'x', audience: 'a', onStoreError: 'ignore' })
// Every duration option takes its number or a string with a unit.
await app.register(jwtRevocation, { secret: 'x', audience: 'a', cache: { ttl: '10s' }, storeTimeout: '2s', retryAfter: '5s', jwksOptions: { cacheMaxAge: '10m' } })
// @ts-expect-error cache ttl is a duration: a number of ms or a string
await app.register(jwtRevocation, { secret: 'x', audience: 'a', cache: { ttl: true } })

app.get('/orders', { config: { auth: { scopes: ['read:orders'] } } }, async (req) => {
  const auth: AuthContext | null = req.auth
  const sub: string | null | undefined = req.auth?.subject
  const scopes: string[] | undefined = req.auth?.scopes
  return { auth, sub, scopes }
})
app.get('/health', { config: { auth: false } }, async () => 'ok')
app.get('/payments', { config: { auth: { dpop: 'required' } } }, async (req) => {
  const binding: ProvenBinding | undefined = req.auth?.binding
  const jkt: unknown = req.auth?.confirmation?.jkt
  return { binding, jkt }
})
app.get('/transfer', { config: { auth: { acr: ['mfa'], maxAge: '5m' } } }, async (req) => {
  const acr: string | null | undefined = req.auth?.acr
  const authTime: number | null | undefined = req.auth?.authTime
  return { acr, authTime }
})
app.get('/lifted', { config: { auth: { acr: null, maxAge: null } } }, async () => 'x')
// @ts-expect-error config.auth.acr is a list of acr values
app.get('/one-acr', { config: { auth: { acr: 'mfa' } } }, async () => 'x')
// @ts-expect-error config.auth.dpop is 'required' only
app.get('/dpop', { config: { auth: { dpop: true } } }, async () => 'x')
const dpop: DpopOptions = { required: true, algorithms: ['ES256'], nonce: { secret: Buffer.alloc(32) }, proofMaxAge: '60s' }
await app.register(jwtRevocation, { jwksUri: 'https://issuer.example/jwks', audience: 'a', dpop, mtls: { header: 'x-client-cert' }, publicUrl: 'https://api.example/v1' })
await app.register(jwtRevocation, { jwksUri: 'https://issuer.example/jwks', audience: 'a', dpop: false, mtls: true })
// @ts-expect-error mtls takes { header }
await app.register(jwtRevocation, { jwksUri: 'https://issuer.example/jwks', audience: 'a', mtls: 'x-client-cert' })
// @ts-expect-error scopes is a string array
app.get('/bad', { config: { auth: { scopes: 'read:orders' } } }, async () => 'x')

const revoked: Promise<void> = app.revocation.revokeToken({ jti: 'j', aud: 'a', exp: 1 })
const isRevoked: Promise<boolean> = app.revocation.isTokenRevoked('j', 'a')
const byClient: Promise<void> = app.revocation.revokeClient('client', { audience: 'a' })
const bySubject: Promise<void> = app.revocation.revokeSubject('sub')
// @ts-expect-error jti is required
void app.revocation.revokeToken({ aud: 'a' })
void revoked; void isRevoked; void byClient; void bySubject

const custom: RevocationStore = new MemoryStore()
void custom

const statusList: StatusListOptions = { allowedOrigins: ['https://status.example'], timeout: 2000, maxAge: '5m' }
await app.register(jwtRevocation, { jwksUri: 'https://issuer.example/jwks', audience: 'a', statusList })
await app.register(jwtRevocation, { jwksUri: 'https://issuer.example/jwks', audience: 'a', statusList: true })
// @ts-expect-error allowedOrigins is an array of origins
await app.register(jwtRevocation, { jwksUri: 'https://issuer.example/jwks', audience: 'a', statusList: { allowedOrigins: 'https://status.example' } })
const dated: Promise<void> = app.revocation.revokeSubject('sub', { at: Date.now() - 1000 })
void dated

await app.register(ssfReceiver, {
  path: '/ssf/events',
  issuer: 'https://idp.example/',
  audience: 'https://api.example/ssf',
  jwksUri: 'https://idp.example/jwks',
  resolveSubject: async (subId: SubjectIdentifier) => (subId.format === 'email' ? String(subId.email) : null),
})
// @ts-expect-error issuer is required
await app.register(ssfReceiver, { audience: 'a', jwks: { keys: [] } })
// The back-channel logout entry point: an OP's keys and this client's id.
import { backchannelLogout } from '../../src/sources/logout/index.js'
await app.register(backchannelLogout, { path: '/backchannel-logout', issuer: 'https://idp.example/', jwksUri: 'https://idp.example/jwks', audience: 'client-id', maxAge: '2m' })
await app.register(backchannelLogout, { issuerBaseURL: 'https://idp.example/', audience: ['client-id'] })
// @ts-expect-error audience is required
await app.register(backchannelLogout, { issuer: 'https://idp.example/', jwksUri: 'https://idp.example/jwks' })
// The Auth0 sync entry point: options typed, app.auth0Sync decorated.
import { auth0Sync, type Auth0SyncStatus } from '../../src/auth0/index.js'
await app.register(auth0Sync, { domain: 'tenant.auth0.com', clientId: 'id', clientSecret: 'secret', interval: '30s' })
// @ts-expect-error clientSecret is required
await app.register(auth0Sync, { domain: 'tenant.auth0.com', clientId: 'id' })
const synced: Promise<void> = app.auth0Sync.syncNow()
const status: Auth0SyncStatus = app.auth0Sync.status()
const lastSuccess: number | null = status.lastSuccessAt
void synced; void lastSuccess

const introspection: IntrospectionOptions = { clientId: 'api', clientSecret: 's', cache: '30s', opaqueTokens: true }
const metadata: ResourceMetadataOptions = { resource_name: 'Orders', scopes_supported: ['read:orders'] }
await app.register(jwtRevocation, { issuerBaseURL: 'https://issuer.example/', audience: 'https://api.example', introspection, resourceMetadata: metadata })
await app.register(jwtRevocation, { issuerBaseURL: 'https://issuer.example/', audience: 'https://api.example', resourceMetadata: true })
// @ts-expect-error clientSecret is required
await app.register(jwtRevocation, { issuerBaseURL: 'https://issuer.example/', audience: 'a', introspection: { clientId: 'api' } })
// @ts-expect-error RFC 9728 booleans are booleans
await app.register(jwtRevocation, { issuerBaseURL: 'https://issuer.example/', audience: 'a', resourceMetadata: { dpop_bound_access_tokens_required: 'yes' } })
app.post('/payments', { config: { auth: { introspect: true, scopes: ['pay'] } } }, async () => 'ok')
// @ts-expect-error introspect is a boolean
app.post('/bad-introspect', { config: { auth: { introspect: 'yes' } } }, async () => 'x')
