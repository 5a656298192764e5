import type { FastifyRequest } from 'fastify'
import {
  resolveDpopOptions, resolveMtlsOptions, resolvePublicUrl,
  type DpopOptions, type MtlsOptions, type ResolvedDpopOptions, type ResolvedMtlsOptions,
} from '../binding/dpop/options.js'
import { leewayRule, lifetimeRule, MAX_TIMER_MS, parseDuration, PLAUSIBLE_SHORT_SECONDS, type Duration } from './duration.js'
import { invalidOption } from '../errors.js'
import { createKeySource, type KeyPolicyLog, type KeySource, type KeySourceOptions } from '../token/keys.js'
import { resolveIntrospectionOptions, type IntrospectionOptions, type ResolvedIntrospectionOptions } from '../sources/introspection/options.js'
import { optionKeys, refuseUnknownKeys, registerOptionKeys } from './option-keys.js'
import { acrValues, maxAgeSeconds, type AcrOption, type MaxAgeOption } from './step-up.js'
import { refuseSingleIssuerOptions, resolveIssuers, type IssuerEntry, type IssuerOptions } from './issuers.js'
import { stringList } from './option-values.js'
import { resolveResourceMetadata, type ResolvedResourceMetadata, type ResourceMetadataOptions } from '../ops/resource-metadata.js'
import { resolveStatusListOptions, type ResolvedStatusListOptions, type StatusListOptions } from '../sources/status-list/options.js'
import { MemoryStore } from '../stores/memory.js'
import { grantMethods, type RevocationStore } from '../stores/types.js'

export interface CacheOptions {
  /** Most tokens remembered (verified header+payload and their revocation status). Default 10000. */
  max?: number
  /**
   * How long a "not revoked" answer is trusted before the store is asked again: ms, or a
   * string such as `'10s'`. Bounds how stale another process's revocation can be when the
   * store has no change feed. Default 10000 (10 s).
   */
  ttl?: Duration
}

export interface JwtRevocationOptions extends KeySourceOptions {
  /** Expected `iss`; one value or several. Discovery supplies it for `issuerBaseURL`. */
  issuer?: string | string[]
  /**
   * Several authorization servers, each with its own key source, instead of the top-level
   * key source, `issuer` and `algorithms`: the token's `iss` picks the entry, whose keys
   * alone verify it. A token from an issuer not listed is refused before any key is fetched.
   */
  issuers?: IssuerOptions[]
  /** Expected `aud`: at least one must be in the token. Required. */
  audience: string | string[]
  /** Expected JWT `typ` header, e.g. `'at+jwt'` (RFC 9068). */
  typ?: string
  /** Leeway for `exp`/`nbf`, seconds or a duration string. Default 0. */
  clockTolerance?: Duration
  /** Claims that must be present (`exp` always is). */
  requiredClaims?: string[]
  /** Refuse tokens whose `exp - iat` exceeds this, however the issuer minted them: seconds, or a string such as `'24h'`. */
  maxTokenLifetime?: Duration
  /** Refuse tokens whose `iat` is older than this: seconds, or a string such as `'24h'`. */
  maxTokenAge?: Duration
  /** Where revocations live. Default: a new `MemoryStore()`. */
  store?: RevocationStore
  /** LRU in front of verification and the store; `false` disables it. */
  cache?: CacheOptions | false
  /** Require a client grant for the token's client and audience. Default false. */
  grants?: boolean
  /** When the store cannot answer: `'deny'` (503, default) or `'allow'`. */
  onStoreError?: 'deny' | 'allow'
  /** Protect every route unless `config.auth === false`. Default true. */
  global?: boolean
  /** `realm` in `WWW-Authenticate`. Default `'api'`. */
  realm?: string
  /** Custom transport; return undefined/null when the request carries no token. */
  extractToken?: (request: FastifyRequest) => string | undefined | null
  /** Largest accepted token, in bytes (characters). Default 8192. */
  maxTokenSize?: number
  /**
   * Accept revocations and grants for audiences this API does not accept (`audience`), for a
   * store shared by several APIs. Default false: such a write would do nothing here, so it is refused.
   */
  acceptForeignAudiences?: boolean
  /** How long any one store call may take before it counts as a store failure: ms, or a string such as `'2s'`. Default 2000. */
  storeTimeout?: Duration
  /**
   * Sent in `Retry-After` with a 503, and the longest pause before a failing store or JWKS is
   * asked again: seconds, or a string such as `'5s'`. Default 5.
   */
  retryAfter?: Duration
  /** Check tokens carrying an IETF Token Status List reference (`status.status_list`). Default off. */
  statusList?: boolean | StatusListOptions
  /** Serve RFC 9728 protected resource metadata and name it in every challenge: `true` derives it, an object adds or overrides fields. */
  resourceMetadata?: ResourceMetadataOptions
  /** Ask the issuer about tokens (RFC 7662): on `config.auth.introspect` routes, and for opaque tokens. */
  introspection?: IntrospectionOptions
  /**
   * DPoP sender-constrained tokens (RFC 9449): `Authorization: DPoP <token>` with a `DPoP` proof.
   * Default true; `false` answers the DPoP scheme like any unknown scheme. A DPoP-bound token
   * is never accepted as a plain Bearer token, whatever this says.
   */
  dpop?: boolean | DpopOptions
  /**
   * Certificate-bound tokens (RFC 8705): `true` for the TLS peer certificate of an `https`
   * server with `requestCert`, `{ header }` for one a trusted proxy forwards. Default false.
   */
  mtls?: boolean | MtlsOptions
  /**
   * The URL clients call this API at (origin plus any path prefix a proxy strips): what DPoP
   * proofs' `htu` is compared with. Default: the request's own scheme and host.
   */
  publicUrl?: string | URL
  /**
   * RFC 9470 step-up: the `acr` values every protected route accepts, unless the route
   * says otherwise (`config.auth.acr`; `null` there lifts this). Default: none asked.
   */
  acr?: AcrOption
  /**
   * RFC 9470 step-up: at most this long since the user authenticated (`auth_time`) on
   * every protected route, unless the route says otherwise (`config.auth.maxAge`; `null`
   * there lifts this): seconds, or a string such as `'15m'`. Default: none asked.
   */
  maxAge?: MaxAgeOption
}

export interface ResolvedOptions {
  /** The one key source; null with `issuers`, where each entry has its own. */
  keySource: KeySource | null
  issuer: string[] | undefined
  /** One entry per issuer; null without the `issuers` option. */
  issuers: IssuerEntry[] | null
  audiences: string[]
  typ: string | undefined
  clockTolerance: number
  requiredClaims: string[]
  maxTokenLifetime: number | undefined
  maxTokenAge: number | undefined
  store: RevocationStore
  /** `ttl` in ms. */
  cache: { max: number, ttl: number } | false
  grants: boolean
  onStoreError: 'deny' | 'allow'
  global: boolean
  realm: string
  extractToken: ((request: FastifyRequest) => string | undefined | null) | undefined
  maxTokenSize: number
  storeTimeout: number
  retryAfter: number
  statusList: ResolvedStatusListOptions | null
  acceptForeignAudiences: boolean
  resourceMetadata: ResolvedResourceMetadata | null
  introspection: ResolvedIntrospectionOptions | null
  dpop: ResolvedDpopOptions | null
  mtls: ResolvedMtlsOptions | null
  publicUrl: string | null
  /** Default accepted `acr` values of protected routes; null: none asked. */
  acr: string[] | null
  /** Default longest time since `auth_time`, in seconds; null: none asked. */
  maxAge: number | null
}

// The one list of plugin options: the compiler holds it to JwtRevocationOptions, so a
// new option is declared in the interface and added here, nowhere else.
const pluginOptionKeys = [...optionKeys<JwtRevocationOptions>({
  jwksUri: true, issuerBaseURL: true, jwks: true, publicKey: true, secret: true, algorithms: true, jwksOptions: true,
  issuer: true, issuers: true, audience: true, typ: true, clockTolerance: true, requiredClaims: true, maxTokenLifetime: true,
  maxTokenAge: true, store: true, cache: true, grants: true, onStoreError: true, global: true, realm: true,
  extractToken: true, maxTokenSize: true, storeTimeout: true, retryAfter: true, statusList: true,
  acceptForeignAudiences: true, resourceMetadata: true, introspection: true, dpop: true, mtls: true, publicUrl: true,
  acr: true, maxAge: true,
}), ...registerOptionKeys]
const cacheOptionKeys = optionKeys<CacheOptions>({ max: true, ttl: true })

const storeMethods = ['lookup', 'revokeToken', 'listRevokedTokens', 'revokeClient', 'revokeSubject'] as const
const QUOTE_OR_CONTROL = /["\\\x00-\x1f\x7f]/

function positiveInteger (value: unknown, name: string, fallback: number, min = 1): number {
  if (value === undefined) return fallback
  if (!Number.isInteger(value) || (value as number) < min) throw invalidOption(name, `must be an integer ≥ ${min}`)
  return value as number
}


/** Validates and defaults every option once, at registration; `log` hears of remote keys the key policy refuses. */
export function resolveOptions (options: JwtRevocationOptions, log?: KeyPolicyLog): ResolvedOptions {
  if (typeof options !== 'object' || options === null) throw invalidOption('options', 'must be an object')
  refuseUnknownKeys(options, pluginOptionKeys)
  const retryAfter = options.retryAfter === undefined ? 5 : parseDuration(options.retryAfter, 'retryAfter', { unit: 'seconds', min: 1, plausibleNumber: PLAUSIBLE_SHORT_SECONDS, example: '5s' })
  const several = options.issuers !== undefined
  if (several) refuseSingleIssuerOptions(options as unknown as Record<string, unknown>)
  const keySource = several ? null : createKeySource(options, retryAfter * 1000, log)

  const realm = options.realm ?? 'api'
  if (typeof realm !== 'string' || QUOTE_OR_CONTROL.test(realm)) throw invalidOption('realm', 'must be a string without quotes, backslashes or control characters')

  if (options.typ !== undefined && (typeof options.typ !== 'string' || options.typ.length === 0)) throw invalidOption('typ', 'must be a non-empty string')

  const requiredClaims = stringList(options.requiredClaims, 'requiredClaims', false) ?? []
  if (!requiredClaims.includes('exp')) requiredClaims.push('exp')

  let cache: ResolvedOptions['cache'] = { max: 10_000, ttl: 10_000 }
  if (options.cache === false) cache = false
  else if (options.cache !== undefined) {
    if (typeof options.cache !== 'object' || options.cache === null) throw invalidOption('cache', 'must be { max, ttl } or false')
    refuseUnknownKeys(options.cache, cacheOptionKeys, 'cache')
    cache = {
      max: positiveInteger(options.cache.max, 'cache.max', 10_000),
      ttl: options.cache.ttl === undefined ? 10_000 : parseDuration(options.cache.ttl, 'cache.ttl', { unit: 'milliseconds', example: '10s' }),
    }
  }

  const store = options.store ?? new MemoryStore()
  for (const method of storeMethods) {
    if (typeof (store as unknown as Record<string, unknown>)[method] !== 'function') throw invalidOption('store', `must implement ${method}()`)
  }
  const grants = options.grants ?? false
  if (typeof grants !== 'boolean') throw invalidOption('grants', 'must be a boolean')
  if (grants) {
    const missing = grantMethods.filter((m) => typeof store[m] !== 'function')
    if (missing.length > 0) throw invalidOption('grants', `needs a store with client grants; this store lacks ${missing.join(', ')}()`)
  }

  const onStoreError = options.onStoreError ?? 'deny'
  if (onStoreError !== 'deny' && onStoreError !== 'allow') throw invalidOption('onStoreError', "must be 'deny' or 'allow'")
  const global = options.global ?? true
  if (typeof global !== 'boolean') throw invalidOption('global', 'must be a boolean')
  const acceptForeignAudiences = options.acceptForeignAudiences ?? false
  if (typeof acceptForeignAudiences !== 'boolean') throw invalidOption('acceptForeignAudiences', 'must be a boolean')
  if (options.extractToken !== undefined && typeof options.extractToken !== 'function') throw invalidOption('extractToken', 'must be a function (request) => string | undefined')
  const issuer = stringList(options.issuer, 'issuer', false)
  const audiences = stringList(options.audience, 'audience', true)!
  const issuers = several
    ? resolveIssuers(options.issuers, { audiences, typ: options.typ, jwksOptions: options.jwksOptions, retryAfterMs: retryAfter * 1000, log })
    : null
  // Each issuer is asked at its own endpoint: one endpoint for all would be a guess.
  if (several && options.introspection !== undefined) throw invalidOption('introspection', 'cannot be used with "issuers": give each issuer that offers introspection its own, as issuers[i].introspection')
  const statusList = issuers === null
    ? resolveStatusListOptions(options.statusList, issuer, options.issuerBaseURL)
    : resolveStatusListOptions(options.statusList, issuers.map((entry) => entry.issuer), undefined, true)
  if (statusList !== null && keySource?.option === 'secret') throw invalidOption('statusList', 'needs the issuer\'s public keys: status list tokens are signed asymmetrically')

  return {
    keySource,
    issuer,
    issuers,
    audiences,
    typ: options.typ,
    clockTolerance: options.clockTolerance === undefined ? 0 : parseDuration(options.clockTolerance, 'clockTolerance', leewayRule),
    requiredClaims,
    maxTokenLifetime: options.maxTokenLifetime === undefined ? undefined : parseDuration(options.maxTokenLifetime, 'maxTokenLifetime', lifetimeRule),
    maxTokenAge: options.maxTokenAge === undefined ? undefined : parseDuration(options.maxTokenAge, 'maxTokenAge', lifetimeRule),
    store,
    cache,
    grants,
    onStoreError,
    global,
    realm,
    extractToken: options.extractToken,
    maxTokenSize: positiveInteger(options.maxTokenSize, 'maxTokenSize', 8192, 16),
    storeTimeout: options.storeTimeout === undefined ? 2000 : parseDuration(options.storeTimeout, 'storeTimeout', { unit: 'milliseconds', min: 1, max: MAX_TIMER_MS, example: '2s' }),
    retryAfter,
    statusList,
    acceptForeignAudiences,
    resourceMetadata: resolveResourceMetadata(options.resourceMetadata, audiences, issuers?.map((entry) => entry.issuer) ?? issuer, keySource),
    introspection: resolveIntrospectionOptions(options.introspection, issuer, options.issuerBaseURL),
    dpop: resolveDpopOptions(options.dpop, options.algorithms),
    mtls: resolveMtlsOptions(options.mtls),
    publicUrl: resolvePublicUrl(options.publicUrl),
    acr: options.acr === undefined ? null : acrValues(options.acr, 'acr'),
    maxAge: options.maxAge === undefined ? null : maxAgeSeconds(options.maxAge, 'maxAge'),
  }
}
