import { parseDuration, type Duration } from '../../options/duration.js'
import { invalidOption } from '../../errors.js'
import { isLoopbackHost } from '../../lib/fetch.js'
import { optionKeys, refuseUnknownKeys } from '../../options/option-keys.js'

export interface IntrospectionOptions {
  /**
   * The issuer's RFC 7662 endpoint. Default: `introspection_endpoint` from the discovery
   * document at `issuerBaseURL`. Only on the issuer's origin unless `allowedOrigins` lists it.
   */
  endpoint?: string
  /** This API's client at the issuer; sent with `client_secret_basic`. */
  clientId: string
  clientSecret: string
  /** Longest an answer is reused, never beyond the token's `exp`: seconds, or a string such as `'30s'`; `false` asks every time. Default `'30s'`. */
  cache?: Duration | false
  /** Introspect tokens that are not JWS (opaque tokens) on every protected route. Default false. */
  opaqueTokens?: boolean
  /** Origins besides the issuer's the endpoint may be on (`https://introspect.example`). */
  allowedOrigins?: string[]
}

export interface ResolvedIntrospectionOptions {
  /** undefined: learned from discovery, on the first token that needs it. */
  endpoint: URL | undefined
  /** `Authorization` header value, built once. */
  authorization: string
  /** ms an answer is reused; 0 for none. */
  cache: number
  opaqueTokens: boolean
  /** Origins the endpoint may be on: the issuer's and those listed. */
  origins: string[]
}

const introspectionOptionKeys = optionKeys<IntrospectionOptions>({
  endpoint: true, clientId: true, clientSecret: true, cache: true, opaqueTokens: true, allowedOrigins: true,
})

const AUTH0_HOST = /\.auth0\.com$/i

function originOf (value: string | URL): string | undefined {
  try {
    const url = new URL(String(value))
    if (url.protocol === 'https:' || (url.protocol === 'http:' && isLoopbackHost(url.hostname))) return url.origin
  } catch {}
  return undefined
}

// RFC 6749 §2.3.1: client_secret_basic encodes each part form-style before base64.
const formEncode = (value: string) => encodeURIComponent(value).replace(/%20/g, '+')

/**
 * Validates the `introspection` plugin option (or an `issuers` entry's, at `path`) once,
 * at registration; null when it is off.
 */
export function resolveIntrospectionOptions (value: unknown, issuers: readonly string[] | undefined, issuerBaseURL: string | URL | undefined, path = 'introspection'): ResolvedIntrospectionOptions | null {
  if (value === undefined || value === false) return null
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalidOption(path, 'must be { endpoint, clientId, clientSecret, cache, opaqueTokens, allowedOrigins }')
  const options = value as IntrospectionOptions
  refuseUnknownKeys(options, introspectionOptionKeys, path)
  for (const name of ['clientId', 'clientSecret'] as const) {
    if (typeof options[name] !== 'string' || options[name] === '') throw invalidOption(`${path}.${name}`, 'is required (a non-empty string)')
  }
  const listed = options.allowedOrigins ?? []
  if (!Array.isArray(listed)) throw invalidOption(`${path}.allowedOrigins`, 'must be an array of origins')
  const extra = listed.map((o) => {
    const origin = typeof o === 'string' ? originOf(o) : undefined
    if (origin === undefined) throw invalidOption(`${path}.allowedOrigins`, `contains ${JSON.stringify(o)}: origins must be https (http only on a loopback host)`)
    return origin
  })
  const issuerOrigins = [...(issuers ?? []), ...(issuerBaseURL === undefined ? [] : [issuerBaseURL])]
    .map(originOf).filter((o): o is string => o !== undefined)
  const origins = [...new Set([...issuerOrigins, ...extra])]

  let endpoint: URL | undefined
  if (options.endpoint !== undefined) {
    const origin = typeof options.endpoint === 'string' ? originOf(options.endpoint) : undefined
    if (origin === undefined) throw invalidOption(`${path}.endpoint`, 'must be an https URL (http only on a loopback host)')
    // A token sent to any other origin would leak to whoever runs it.
    if (!origins.includes(origin)) throw invalidOption(`${path}.endpoint`, `is not on the issuer's origin (${issuerOrigins.join(', ') || 'no issuer set'}); list its origin in ${path}.allowedOrigins`)
    endpoint = new URL(options.endpoint)
  } else {
    if (issuerBaseURL === undefined) throw invalidOption(`${path}.endpoint`, 'is required unless issuerBaseURL lets discovery find it')
    if (AUTH0_HOST.test(new URL(String(issuerBaseURL)).hostname)) throw invalidOption(path, 'is not offered by Auth0; use the Auth0 sync (fastify-jwt-revocation/auth0) to see its revocations')
  }

  const opaqueTokens = options.opaqueTokens ?? false
  if (typeof opaqueTokens !== 'boolean') throw invalidOption(`${path}.opaqueTokens`, 'must be a boolean')
  // An hour: 30000 (thirty seconds in ms) would reuse an "active" answer for eight hours.
  const cache = options.cache === false ? 0 : parseDuration(options.cache ?? '30s', `${path}.cache`, { unit: 'seconds', plausibleNumber: 3600, example: '30s' }) * 1000
  return {
    endpoint,
    authorization: 'Basic ' + Buffer.from(`${formEncode(options.clientId)}:${formEncode(options.clientSecret)}`).toString('base64'),
    cache,
    opaqueTokens,
    origins,
  }
}
