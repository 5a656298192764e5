import { createPublicKey, createSecretKey, KeyObject } from 'node:crypto'
import { createLocalJWKSet, createRemoteJWKSet, customFetch } from 'jose'
import type { JSONWebKeySet, JWK, JWTVerifyGetKey } from '../lib/jose-types.js'
import { Breaker } from '../lib/breaker.js'
import { MAX_TIMER_MS, parseDuration, type Duration } from '../options/duration.js'
import { InvalidTokenError, invalidOption, ServiceUnavailableError } from '../errors.js'
import { algorithmsForKey, algorithmsWithoutKey, describeKeys } from './key-algorithms.js'
import { allowsVerification, jwkMetadataProblem, publicKeyProblem, secretKeyProblem } from './key-policy.js'
import { optionKeys, refuseUnknownKeys } from '../options/option-keys.js'

/** What jose verifies against: a key, or a function picking one from a key set by `kid`/`alg`. */
export type VerificationKey = KeyObject | JWTVerifyGetKey

export interface ResolvedKey {
  key: VerificationKey
  /** Issuer learned from discovery, when the user did not set one. */
  issuer?: string
  /** RFC 7662 endpoint the discovery document names, if any (for the `introspection` option). */
  introspectionEndpoint?: string
}

/** Resolves the verification key; async only for OIDC discovery before it first succeeds. */
export interface KeySource {
  resolve(): ResolvedKey | Promise<ResolvedKey>
  algorithms: string[]
  /** Human name of the option that configured the source, for messages. */
  option: string
  /**
   * For health reports: `up`, `stale` (the endpoint fails; the last good key set verifies),
   * `down` (fails and no key set yet), `unknown` (not fetched yet). Static keys: absent, always up.
   */
  state?: () => 'up' | 'stale' | 'down' | 'unknown'
}

/** Each a duration: ms, or a string such as `'5s'`. */
export interface RemoteJwksOptions {
  /** How long before a JWKS request is abandoned (default 5000, 5 s). */
  timeoutDuration?: Duration
  /** How long an unknown `kid` does not trigger another fetch (default 30000, 30 s). */
  cooldownDuration?: Duration
  /** How long a fetched key set is trusted before it is refreshed (default 600000, 10 min). */
  cacheMaxAge?: Duration
}

/** {@link RemoteJwksOptions} in ms, as jose takes them. */
type ResolvedJwksOptions = { [name in keyof RemoteJwksOptions]?: number }

/** Where a key refused by the key policy is reported (a pino or Fastify logger fits). */
export interface KeyPolicyLog {
  warn: (details: object, message: string) => void
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
export const ASYMMETRIC = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519']
/** JWK key types that can carry one of the signature algorithms above. */
const SIGNATURE_KTY = ['RSA', 'EC', 'OKP']

export const jwksOptionKeys = optionKeys<RemoteJwksOptions>({ timeoutDuration: true, cooldownDuration: true, cacheMaxAge: true })

const sourceNames = ['jwksUri', 'issuerBaseURL', 'jwks', 'publicKey', 'secret'] as const

/**
 * Builds the one key source the options name. `retryAfterMs` bounds how often an
 * unreachable JWKS or discovery endpoint is asked again, so an outage is not
 * multiplied by the request rate.
 */
export function createKeySource (options: KeySourceOptions, retryAfterMs: number, log?: KeyPolicyLog): KeySource {
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
    const algorithms = checkAlgorithms(options.algorithms, ['HS256'], HMAC, option)
    const secret = importSecret(options.secret!)
    const problem = secretKeyProblem(secret.symmetricKeySize!, algorithms)
    if (problem !== undefined) throw invalidOption('secret', problem)
    const key = hmacKeyGetter(secret)
    return { option, algorithms, resolve: () => ({ key }) }
  }
  if (option === 'publicKey') {
    const { key, jwk } = importPublicKey(options.publicKey!)
    let family = [...algorithmsForKey(key)]
    if (family.length === 0) throw invalidOption('publicKey', `uses a key type JWS does not support (${key.asymmetricKeyType})`)
    const problem = publicKeyProblem(key) ?? (jwk === undefined ? undefined : jwkMetadataProblem(jwk, family))
    if (problem !== undefined) throw invalidOption('publicKey', problem)
    // A JWK that names its algorithm verifies that one only, as a key set's member would.
    if (typeof jwk?.alg === 'string') family = [jwk.alg]
    return { option, algorithms: checkAlgorithms(options.algorithms, family.slice(0, 1), family, option), resolve: () => ({ key }) }
  }
  const algorithms = checkAlgorithms(options.algorithms, ASYMMETRIC, ASYMMETRIC, option)
  if (option === 'jwks') {
    const set = checkKeySet(options.jwks!)
    if (options.algorithms !== undefined) refuseAlgorithmsWithoutKey(algorithms, set)
    const key = createLocalJWKSet(set)
    return { option, algorithms, resolve: () => ({ key }) }
  }
  const health = new RemoteKeyHealth()
  // Only an allow-list the user wrote is held to the keys: the default names every algorithm.
  const remote = { options: jwksOptions, retryAfterMs, log, health, listed: options.algorithms === undefined ? [] : algorithms }
  const state = () => health.state()
  if (option === 'jwksUri') {
    const key = remoteKeySet(parseUrl(options.jwksUri!, 'jwksUri'), remote)
    return { option, algorithms, state, resolve: () => ({ key }) }
  }
  return { option, algorithms, state, ...discoveredKeySource(parseUrl(options.issuerBaseURL!, 'issuerBaseURL'), remote) }
}

/** What the remote key set (and discovery) last saw, for `app.revocation.health()`. */
class RemoteKeyHealth {
  private fetched = false
  private failing = false

  reached (): void {
    this.fetched = true
    this.failing = false
  }

  failed (haveKeys: boolean): void {
    this.failing = true
    this.fetched ||= haveKeys
  }

  state (): 'up' | 'stale' | 'down' | 'unknown' {
    if (this.failing) return this.fetched ? 'stale' : 'down'
    return this.fetched ? 'up' : 'unknown'
  }
}

/**
 * A static key set is checked whole at registration: a member that could verify a signature
 * (jose already skips those whose `use`/`key_ops` forbid it) must import and pass the key policy.
 */
function checkKeySet (set: JSONWebKeySet): JSONWebKeySet {
  if (typeof set !== 'object' || set === null || !Array.isArray(set.keys) || set.keys.some((k) => typeof k?.kty !== 'string' || k.kty === 'oct')) {
    throw invalidOption('jwks', 'must be a JSON Web Key Set ({ keys: [...] }) of public keys')
  }
  set.keys.forEach((jwk, i) => {
    const which = typeof jwk.kid === 'string' ? `key ${JSON.stringify(jwk.kid)}` : `keys[${i}]`
    if (jwk.d !== undefined) throw invalidOption('jwks', `holds a private key (${which}); give public keys only`)
    if (!SIGNATURE_KTY.includes(jwk.kty!) || !allowsVerification(jwk)) return
    let key: KeyObject
    try {
      key = createPublicKey({ key: jwk as import('node:crypto').JsonWebKey, format: 'jwk' })
    } catch {
      throw invalidOption('jwks', `holds a key that is not a valid public JWK (${which})`)
    }
    const problem = publicKeyProblem(key)
    if (problem !== undefined) throw invalidOption('jwks', `holds a key that can never be trusted (${which} ${problem})`)
    // An "alg" the key cannot verify makes it a member jose never selects: a typo, not a key.
    const family = algorithmsForKey(key)
    const metadata = family.length === 0 ? undefined : jwkMetadataProblem(jwk, family)
    if (metadata !== undefined) throw invalidOption('jwks', `holds a key that can never verify anything (${which} ${metadata})`)
  })
  return set
}

/**
 * Every algorithm the user allow-listed must be one a key of the static set can verify: an
 * entry no key serves either refuses every token signed with it (['RS256'] with EC keys) or
 * sits there dead beside one that works, hiding the same mistake.
 */
function refuseAlgorithmsWithoutKey (algorithms: readonly string[], set: JSONWebKeySet): void {
  const missing = algorithmsWithoutKey(algorithms, set.keys)
  if (missing.length === 0) return
  throw invalidOption('algorithms', `lists ${missing.join(', ')}, which no key in "jwks" can verify (its keys: ${describeKeys(set.keys)}); ` +
    'every listed algorithm needs a key: remove the entry or add the key')
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

function validateJwksOptions (value: RemoteJwksOptions | undefined): ResolvedJwksOptions {
  if (value === undefined) return {}
  if (typeof value !== 'object' || value === null) throw invalidOption('jwksOptions', 'must be an object')
  refuseUnknownKeys(value, jwksOptionKeys, 'jwksOptions')
  const resolved: ResolvedJwksOptions = {}
  for (const name of jwksOptionKeys as ReadonlyArray<keyof RemoteJwksOptions>) {
    if (value[name] !== undefined) resolved[name] = parseDuration(value[name], `jwksOptions.${name}`, { unit: 'milliseconds', max: MAX_TIMER_MS, example: '30s' })
  }
  return resolved
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
  if (secret instanceof KeyObject) {
    if (secret.type !== 'secret') throw invalidOption('secret', 'must be a secret KeyObject (use "publicKey" for asymmetric keys)')
    return secret
  }
  if (typeof secret === 'string' || secret instanceof Uint8Array) {
    return createSecretKey(typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret)
  }
  throw invalidOption('secret', 'must be a string, Buffer, Uint8Array or secret KeyObject')
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

/** The key, and the JWK it came from when it was given as one (its metadata is part of the key). */
function importPublicKey (value: string | Buffer | JWK | KeyObject): { key: KeyObject, jwk?: JWK } {
  let key: KeyObject
  let jwk: JWK | undefined
  try {
    if (value instanceof KeyObject) key = value
    else if (typeof value === 'string' || Buffer.isBuffer(value)) key = createPublicKey(value)
    else {
      jwk = value
      key = createPublicKey({ key: value as import('node:crypto').JsonWebKey, format: 'jwk' })
    }
  } catch {
    throw invalidOption('publicKey', 'must be a PEM public key or certificate, a public JWK, or a KeyObject')
  }
  // A private JWK imports as its public half: refuse it, a private key has no place here.
  if (key.type !== 'public' || jwk?.d !== undefined) throw invalidOption('publicKey', 'must be a public key (never pass a private or secret key)')
  return { key, jwk }
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

interface RemoteKeySetting {
  options: ResolvedJwksOptions
  retryAfterMs: number
  log: KeyPolicyLog | undefined
  health: RemoteKeyHealth
  /** The allow-list as the user wrote it; empty when it is the default. */
  listed: readonly string[]
}

/**
 * jose's remote key set (one fetch in flight, cooldown for unknown `kid`s), made to
 * survive an outage: when a refresh fails, the last good key set keeps verifying
 * tokens, and the endpoint is not asked again for `retryAfterMs` (one probe at a time after).
 */
function remoteKeySet (url: URL, { options, retryAfterMs, log, health, listed }: RemoteKeySetting): JWTVerifyGetKey {
  // Counts the fetches, so each fetched set is audited once, not each token.
  let fetches = 0
  let audited = 0
  const remote = createRemoteJWKSet(url, { ...options, [customFetch]: (input, init) => { fetches++; return fetch(input, init) } })
  const warnKeyless = keylessAlgorithmWarning(listed, url, log)
  const breaker = new Breaker({ pause: retryAfterMs })

  function reached () {
    breaker.succeeded()
    health.reached()
    if (audited === fetches || remote.reloading) return
    audited = fetches
    const set = remote.jwks()
    if (set !== undefined) warnKeyless(set)
  }
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

  return trustedKeysOnly(async (header, token) => {
    if (!breaker.allow()) return fromLastGoodSet(header, token, undefined)
    let key: Awaited<ReturnType<JWTVerifyGetKey>>
    try {
      key = await remote(header, token)
    } catch (err) {
      if (!isKeyMismatch(err)) {
        breaker.failed()
        health.failed(remote.jwks() !== undefined)
        return fromLastGoodSet(header, token, err)
      }
      reached()
      throw err
    }
    reached()
    return key
  }, url, log)
}

/**
 * A remote set may gain the missing key at its next rotation, so an allow-listed algorithm
 * none of its keys verifies is not refused at start but reported, once per algorithm.
 */
function keylessAlgorithmWarning (listed: readonly string[], url: URL, log: KeyPolicyLog | undefined): (set: JSONWebKeySet) => void {
  const reported = new Set<string>()
  return (set) => {
    for (const alg of algorithmsWithoutKey(listed, set.keys)) {
      if (reported.has(alg)) continue
      reported.add(alg)
      log?.warn({ algorithm: alg, jwksUri: url.href },
        `fastify-jwt-revocation: the remote key set has no key for ${alg}, which "algorithms" lists: every token signed with it is refused (its keys: ${describeKeys(set.keys)})`)
    }
  }
}

/**
 * A remote set is the issuer's to change at any time, so its keys meet the key policy as jose
 * imports them (jose keeps one imported key per JWK: the verdict is computed once per key).
 * A refused key verifies nothing, and is reported once per `kid`, not once per token.
 */
function trustedKeysOnly (getKey: JWTVerifyGetKey, url: URL, log: KeyPolicyLog | undefined): JWTVerifyGetKey {
  const verdicts = new WeakMap<object, string | null>()
  const reported = new Set<string>()
  return async (header, token) => {
    const key = await getKey(header, token)
    let problem = verdicts.get(key)
    if (problem === undefined) {
      problem = key instanceof Uint8Array ? 'is a symmetric key' : publicKeyProblem(key instanceof KeyObject ? key : KeyObject.from(key as CryptoKey)) ?? null
      verdicts.set(key, problem)
    }
    if (problem === null) return key
    const kid = header.kid ?? ''
    if (!reported.has(kid)) {
      reported.add(kid)
      log?.warn({ kid: header.kid, jwksUri: url.href }, `fastify-jwt-revocation: a key of the remote key set is never used: it ${problem}`)
    }
    throw new InvalidTokenError('No trusted key matches the token')
  }
}

const AUTH0_HOST = /\.auth0\.com$/i

interface DiscoveryDocument { issuer: string, jwks_uri: string, introspection_endpoint?: unknown }

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

function discoveredKeySource (base: URL, remote: RemoteKeySetting): Pick<KeySource, 'resolve'> {
  const { options, retryAfterMs } = remote
  if (AUTH0_HOST.test(base.hostname)) {
    const resolved = { key: remoteKeySet(new URL('/.well-known/jwks.json', base.origin), remote), issuer: `https://${base.host}/` }
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
        resolved = { key: remoteKeySet(parseUrl(doc.jwks_uri, 'jwks_uri'), remote), issuer: doc.issuer }
        if (typeof doc.introspection_endpoint === 'string') resolved.introspectionEndpoint = doc.introspection_endpoint
        return resolved
      }, (err) => {
        breaker.failed()
        remote.health.failed(false)
        throw unavailable('The discovery document', err)
      }).finally(() => { pending = undefined })
      return pending
    },
  }
}
