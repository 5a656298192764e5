import { createPublicKey, createSecretKey, KeyObject } from 'node:crypto'
import {
  createLocalJWKSet, createRemoteJWKSet,
  type JSONWebKeySet, type JWK, type JWTVerifyGetKey,
} from 'jose'
import { Breaker } from './breaker.js'
import { invalidOption, ServiceUnavailableError } from './errors.js'

/** What jose verifies against: a key, or a function picking one from a key set by `kid`/`alg`. */
export type VerificationKey = KeyObject | JWTVerifyGetKey

export interface ResolvedKey {
  key: VerificationKey
  /** Issuer learned from discovery, when the user did not set one. */
  issuer?: string
}

/** Resolves the verification key; async only for OIDC discovery before it first succeeds. */
export interface KeySource {
  resolve(): ResolvedKey | Promise<ResolvedKey>
  algorithms: string[]
  /** Human name of the option that configured the source, for messages. */
  option: string
}

export interface RemoteJwksOptions {
  /** ms before a JWKS request is abandoned (default 5000). */
  timeoutDuration?: number
  /** ms during which an unknown `kid` does not trigger another fetch (default 30000). */
  cooldownDuration?: number
  /** ms a fetched key set is trusted before it is refreshed (default 600000). */
  cacheMaxAge?: number
}

export interface KeySourceOptions {
  jwksUri?: string | URL
  issuerBaseURL?: string | URL
  jwks?: JSONWebKeySet
  publicKey?: string | Buffer | JWK | KeyObject
  secret?: string | Buffer | Uint8Array | KeyObject
  algorithms?: string[]
  jwksOptions?: RemoteJwksOptions
}

const HMAC = ['HS256', 'HS384', 'HS512']
const ASYMMETRIC = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519']
const MIN_SECRET_BYTES = 32

const sourceNames = ['jwksUri', 'issuerBaseURL', 'jwks', 'publicKey', 'secret'] as const

/**
 * Builds the one key source the options name. `retryAfterMs` bounds how often an
 * unreachable JWKS or discovery endpoint is asked again, so an outage is not
 * multiplied by the request rate.
 */
export function createKeySource (options: KeySourceOptions, retryAfterMs: number): KeySource {
  const given = sourceNames.filter((name) => options[name] !== undefined && options[name] !== null)
  if (given.length !== 1) {
    throw invalidOption(given.length === 0 ? 'jwksUri' : given.join('/'),
      given.length === 0
        ? 'is required: give exactly one key source (jwksUri, issuerBaseURL, jwks, publicKey or secret)'
        : 'are mutually exclusive: give exactly one key source')
  }
  const option = given[0]!
  const jwksOptions = validateJwksOptions(options.jwksOptions)

  if (option === 'secret') {
    const key = hmacKeyGetter(importSecret(options.secret!))
    return { option, algorithms: checkAlgorithms(options.algorithms, ['HS256'], HMAC, option), resolve: () => ({ key }) }
  }
  if (option === 'publicKey') {
    const key = importPublicKey(options.publicKey!)
    const family = algorithmsForKey(key)
    return { option, algorithms: checkAlgorithms(options.algorithms, family.slice(0, 1), family, option), resolve: () => ({ key }) }
  }
  const algorithms = checkAlgorithms(options.algorithms, ASYMMETRIC, ASYMMETRIC, option)
  if (option === 'jwks') {
    const set = options.jwks!
    if (typeof set !== 'object' || !Array.isArray(set.keys) || set.keys.some((k) => typeof k?.kty !== 'string' || k.kty === 'oct')) {
      throw invalidOption('jwks', 'must be a JSON Web Key Set ({ keys: [...] }) of public keys')
    }
    const key = createLocalJWKSet(set)
    return { option, algorithms, resolve: () => ({ key }) }
  }
  if (option === 'jwksUri') {
    const key = remoteKeySet(parseUrl(options.jwksUri!, 'jwksUri'), jwksOptions, retryAfterMs)
    return { option, algorithms, resolve: () => ({ key }) }
  }
  return { option, algorithms, ...discoveredKeySource(parseUrl(options.issuerBaseURL!, 'issuerBaseURL'), jwksOptions, retryAfterMs) }
}

function parseUrl (value: string | URL, option: string): URL {
  let url: URL
  try {
    url = new URL(String(value))
  } catch {
    throw invalidOption(option, 'must be an absolute http(s) URL')
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw invalidOption(option, 'must be an absolute http(s) URL')
  return url
}

function validateJwksOptions (value: RemoteJwksOptions | undefined): RemoteJwksOptions {
  if (value === undefined) return {}
  if (typeof value !== 'object' || value === null) throw invalidOption('jwksOptions', 'must be an object')
  for (const name of ['timeoutDuration', 'cooldownDuration', 'cacheMaxAge'] as const) {
    const n = value[name]
    if (n !== undefined && (!Number.isInteger(n) || n < 0)) throw invalidOption(`jwksOptions.${name}`, 'must be a non-negative integer of milliseconds')
  }
  return value
}

function checkAlgorithms (given: string[] | undefined, defaults: string[], allowed: string[], source: string): string[] {
  if (given === undefined) return defaults
  if (!Array.isArray(given) || given.length === 0) throw invalidOption('algorithms', 'must be a non-empty array of JWS algorithm names')
  for (const alg of given) {
    if (typeof alg !== 'string' || alg.toLowerCase() === 'none') throw invalidOption('algorithms', 'must never contain "none"')
    if (!allowed.includes(alg)) {
      throw invalidOption('algorithms', `contains ${JSON.stringify(alg)}, which a key from "${source}" cannot verify (allowed: ${allowed.join(', ')})`)
    }
  }
  return [...new Set(given)]
}

function importSecret (secret: string | Buffer | Uint8Array | KeyObject): KeyObject {
  let key: KeyObject
  if (secret instanceof KeyObject) {
    if (secret.type !== 'secret') throw invalidOption('secret', 'must be a secret KeyObject (use "publicKey" for asymmetric keys)')
    key = secret
  } else if (typeof secret === 'string' || secret instanceof Uint8Array) {
    key = createSecretKey(typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret)
  } else {
    throw invalidOption('secret', 'must be a string, Buffer, Uint8Array or secret KeyObject')
  }
  // RFC 7518 §3.2: an HS256 key shorter than the hash output is a guessable key.
  if (key.symmetricKeySize! < MIN_SECRET_BYTES) throw invalidOption('secret', `must be at least ${MIN_SECRET_BYTES} bytes long`)
  return key
}

/**
 * jose turns a secret KeyObject into a WebCrypto key on every verification; a
 * CryptoKey it uses as is. WebCrypto binds an HMAC key to its hash, so one is imported
 * per algorithm, once, on first use (jose checks the allow-list before asking).
 */
function hmacKeyGetter (secret: KeyObject): JWTVerifyGetKey {
  const raw = secret.export()
  const imported = new Map<string, Promise<CryptoKey>>()
  return (header) => {
    const alg = header.alg!
    let key = imported.get(alg)
    if (key === undefined) {
      key = crypto.subtle.importKey('raw', raw, { name: 'HMAC', hash: `SHA-${alg.slice(2)}` }, false, ['verify'])
      imported.set(alg, key)
    }
    return key
  }
}

function importPublicKey (value: string | Buffer | JWK | KeyObject): KeyObject {
  let key: KeyObject
  try {
    if (value instanceof KeyObject) key = value
    else if (typeof value === 'string' || Buffer.isBuffer(value)) key = createPublicKey(value)
    else key = createPublicKey({ key: value as import('node:crypto').JsonWebKey, format: 'jwk' })
  } catch {
    throw invalidOption('publicKey', 'must be a PEM public key or certificate, a public JWK, or a KeyObject')
  }
  if (key.type !== 'public') throw invalidOption('publicKey', 'must be a public key (never pass a private or secret key)')
  return key
}

function algorithmsForKey (key: KeyObject): string[] {
  switch (key.asymmetricKeyType) {
    case 'rsa': return ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512']
    case 'rsa-pss': return ['PS256', 'PS384', 'PS512']
    case 'ed25519': return ['EdDSA', 'Ed25519']
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve
      if (curve === 'prime256v1') return ['ES256']
      if (curve === 'secp384r1') return ['ES384']
      if (curve === 'secp521r1') return ['ES512']
    }
  }
  throw invalidOption('publicKey', `uses a key type JWS does not support (${key.asymmetricKeyType})`)
}

function unavailable (what: string, cause: unknown): Error {
  const err = new ServiceUnavailableError(`${what} could not be fetched`)
  err.cause = cause
  return err
}

function isKeyMismatch (err: unknown): boolean {
  const code = (err as { code?: unknown })?.code
  return code === 'ERR_JWKS_NO_MATCHING_KEY' || code === 'ERR_JWKS_MULTIPLE_MATCHING_KEYS'
}

/**
 * jose's remote key set (one fetch in flight, cooldown for unknown `kid`s), made to
 * survive an outage: when a refresh fails, the last good key set keeps verifying
 * tokens, and the endpoint is not asked again for `retryAfterMs` (one probe at a time after).
 */
function remoteKeySet (url: URL, options: RemoteJwksOptions, retryAfterMs: number): JWTVerifyGetKey {
  const remote = createRemoteJWKSet(url, options)
  const breaker = new Breaker({ pause: retryAfterMs })
  let lastSet: JSONWebKeySet | undefined
  let lastLocal: JWTVerifyGetKey | undefined

  function fromLastGoodSet (header: Parameters<JWTVerifyGetKey>[0], token: Parameters<JWTVerifyGetKey>[1], cause: unknown) {
    const set = remote.jwks()
    if (!set) throw unavailable('The signing keys', cause)
    if (set !== lastSet) {
      lastSet = set
      lastLocal = createLocalJWKSet(set)
    }
    return lastLocal!(header, token)
  }

  return async (header, token) => {
    if (!breaker.allow()) return fromLastGoodSet(header, token, undefined)
    let key: Awaited<ReturnType<JWTVerifyGetKey>>
    try {
      key = await remote(header, token)
    } catch (err) {
      if (!isKeyMismatch(err)) {
        breaker.failed()
        return fromLastGoodSet(header, token, err)
      }
      breaker.succeeded()
      throw err
    }
    breaker.succeeded()
    return key
  }
}

const AUTH0_HOST = /\.auth0\.com$/i

interface DiscoveryDocument { issuer: string, jwks_uri: string }

async function fetchDiscovery (base: URL, timeout: number): Promise<DiscoveryDocument> {
  const prefix = base.href.replace(/\/+$/, '')
  let lastError: unknown
  // OIDC Discovery first, then the RFC 8414 authorization server metadata.
  for (const path of ['/.well-known/openid-configuration', '/.well-known/oauth-authorization-server']) {
    try {
      const response = await fetch(prefix + path, { signal: AbortSignal.timeout(timeout), redirect: 'manual', headers: { accept: 'application/json' } })
      if (response.status !== 200) {
        lastError = new Error(`discovery answered HTTP ${response.status}`)
        continue
      }
      const doc = await response.json() as Partial<DiscoveryDocument>
      if (typeof doc?.issuer !== 'string' || typeof doc.jwks_uri !== 'string') throw new Error('discovery document lacks issuer or jwks_uri')
      // OIDC Discovery §4.3: the issuer must be the URL the document was found under.
      if (doc.issuer.replace(/\/+$/, '') !== prefix) throw new Error(`discovery issuer ${doc.issuer} does not match ${base.href}`)
      return doc as DiscoveryDocument
    } catch (err) {
      lastError = err
    }
  }
  throw lastError
}

function discoveredKeySource (base: URL, options: RemoteJwksOptions, retryAfterMs: number): Pick<KeySource, 'resolve'> {
  if (AUTH0_HOST.test(base.hostname)) {
    const resolved = { key: remoteKeySet(new URL('/.well-known/jwks.json', base.origin), options, retryAfterMs), issuer: `https://${base.host}/` }
    return { resolve: () => resolved }
  }
  let resolved: ResolvedKey | undefined
  let pending: Promise<ResolvedKey> | undefined
  const breaker = new Breaker({ pause: retryAfterMs })
  return {
    resolve () {
      if (resolved) return resolved
      if (pending) return pending
      if (!breaker.allow()) throw unavailable('The discovery document', undefined)
      pending = fetchDiscovery(base, options.timeoutDuration ?? 5000).then((doc) => {
        breaker.succeeded()
        resolved = { key: remoteKeySet(parseUrl(doc.jwks_uri, 'jwks_uri'), options, retryAfterMs), issuer: doc.issuer }
        return resolved
      }, (err) => {
        breaker.failed()
        throw unavailable('The discovery document', err)
      }).finally(() => { pending = undefined })
      return pending
    },
  }
}
