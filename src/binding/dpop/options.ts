import { randomBytes } from 'node:crypto'
import { parseDuration, type Duration } from '../../options/duration.js'
import { invalidOption } from '../../errors.js'
import { ASYMMETRIC } from '../../token/keys.js'
import { optionKeys, refuseUnknownKeys } from '../../options/option-keys.js'

export interface DpopNonceOptions {
  /**
   * Key of the nonce HMAC (string or bytes, at least 32 bytes). Every instance given the same
   * secret accepts the others' nonces. Default: random per process.
   */
  secret?: string | Buffer | Uint8Array
}

export interface DpopOptions {
  /** Refuse tokens that are not DPoP-bound, on every protected route. Default false. */
  required?: boolean
  /** Proof algorithms accepted. Default: the asymmetric ones among `algorithms`, else ES256, EdDSA, RS256, PS256. */
  algorithms?: string[]
  /** Server-provided nonces (RFC 9449 §8): `true` or `{ secret }`. Default off. */
  nonce?: boolean | DpopNonceOptions
  /** How far a proof's `iat` may be from now, either way (plus `clockTolerance`). Default `'60s'`. */
  proofMaxAge?: Duration
}

export interface MtlsOptions {
  /**
   * Request header in which a TLS-terminating proxy forwards the client certificate (URL-encoded PEM),
   * e.g. `'x-client-cert'`. Honoured only when the immediate peer is trusted by Fastify's `trustProxy`.
   */
  header: string
}

export interface ResolvedDpopOptions {
  required: boolean
  algorithms: string[]
  /** Null: no nonces. A Buffer: the HMAC key (given, or random for this process). */
  nonceSecret: Buffer | null
  /** Seconds. */
  proofMaxAge: number
}

export interface ResolvedMtlsOptions {
  /** Lower-cased header name, or null for the TLS socket's own peer certificate. */
  header: string | null
}

const dpopOptionKeys = optionKeys<DpopOptions>({ required: true, algorithms: true, nonce: true, proofMaxAge: true })
const nonceOptionKeys = optionKeys<DpopNonceOptions>({ secret: true })
const mtlsOptionKeys = optionKeys<MtlsOptions>({ header: true })
const DEFAULT_ALGORITHMS = ['ES256', 'EdDSA', 'RS256', 'PS256']
// RFC 7230 token characters: what a header name may be.
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
const MIN_SECRET_BYTES = 32

// Without a configured secret, nonces are this process's own.
const random = (): Buffer => randomBytes(32)

function nonceSecret (nonce: DpopOptions['nonce']): Buffer | null {
  if (nonce === undefined || nonce === false) return null
  if (nonce === true) return random()
  if (typeof nonce !== 'object' || nonce === null) throw invalidOption('dpop.nonce', 'must be true, false or { secret }')
  refuseUnknownKeys(nonce, nonceOptionKeys, 'dpop.nonce')
  if (nonce.secret === undefined) return random()
  const secret = typeof nonce.secret === 'string' ? Buffer.from(nonce.secret, 'utf8') : nonce.secret instanceof Uint8Array ? Buffer.from(nonce.secret) : undefined
  if (secret === undefined) throw invalidOption('dpop.nonce.secret', 'must be a string or a Buffer')
  if (secret.length < MIN_SECRET_BYTES) throw invalidOption('dpop.nonce.secret', `must be at least ${MIN_SECRET_BYTES} bytes`)
  return secret
}

/** `dpop` resolved: null when off. `pluginAlgorithms` is the plugin's own `algorithms` option as given. */
export function resolveDpopOptions (value: boolean | DpopOptions | undefined, pluginAlgorithms: unknown): ResolvedDpopOptions | null {
  if (value === false) return null
  const given: DpopOptions = value === undefined || value === true ? {} : value
  if (typeof given !== 'object' || given === null || Array.isArray(given)) throw invalidOption('dpop', 'must be true, false or { required, algorithms, nonce, proofMaxAge }')
  refuseUnknownKeys(given, dpopOptionKeys, 'dpop')
  const required = given.required ?? false
  if (typeof required !== 'boolean') throw invalidOption('dpop.required', 'must be a boolean')
  let algorithms: string[]
  if (given.algorithms !== undefined) {
    if (!Array.isArray(given.algorithms) || given.algorithms.length === 0) throw invalidOption('dpop.algorithms', 'must be a non-empty array of asymmetric JWS algorithm names')
    for (const alg of given.algorithms) {
      // RFC 9449 §4.2: a proof is signed with an asymmetric key; a shared secret proves nothing.
      if (typeof alg !== 'string' || !ASYMMETRIC.includes(alg)) throw invalidOption('dpop.algorithms', `contains ${JSON.stringify(alg)}; allowed: ${ASYMMETRIC.join(', ')}`)
    }
    algorithms = [...new Set(given.algorithms)]
  } else {
    const fromPlugin = Array.isArray(pluginAlgorithms) ? pluginAlgorithms.filter((alg): alg is string => ASYMMETRIC.includes(alg as string)) : []
    algorithms = fromPlugin.length > 0 ? [...new Set(fromPlugin)] : DEFAULT_ALGORITHMS
  }
  // An hour: proofs are made for the request at hand; 60000 (a minute in ms) would accept a proof for 16 hours.
  const proofMaxAge = parseDuration(given.proofMaxAge ?? '60s', 'dpop.proofMaxAge', { unit: 'seconds', min: 1, plausibleNumber: 3600, example: '60s' })
  return { required, algorithms, nonceSecret: nonceSecret(given.nonce), proofMaxAge }
}

export function resolveMtlsOptions (value: boolean | MtlsOptions | undefined): ResolvedMtlsOptions | null {
  if (value === undefined || value === false) return null
  if (value === true) return { header: null }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalidOption('mtls', 'must be true, false or { header }')
  refuseUnknownKeys(value, mtlsOptionKeys, 'mtls')
  if (typeof value.header !== 'string' || !HEADER_NAME.test(value.header)) throw invalidOption('mtls.header', 'must be a header name')
  return { header: value.header.toLowerCase() }
}

/** `publicUrl`: the external origin and path prefix; its path is kept without a trailing slash. */
export function resolvePublicUrl (value: string | URL | undefined): string | null {
  if (value === undefined) return null
  let url: URL
  try {
    url = new URL(String(value))
  } catch {
    throw invalidOption('publicUrl', 'must be an absolute http or https URL')
  }
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    throw invalidOption('publicUrl', 'must be an http or https URL without query, fragment or credentials')
  }
  return url.origin + url.pathname.replace(/\/+$/, '')
}
