import { parseDuration, type Duration } from '../options/duration.js'
import { invalidOption } from '../errors.js'
import { outboundOrigin } from '../lib/fetch.js'
import { optionKeys, refuseUnknownKeys, registerOptionKeys } from '../options/option-keys.js'

export interface Auth0SyncOptions {
  /** The tenant: a host (`tenant.eu.auth0.com`, https assumed) or a URL (`http:` only on a loopback host). */
  domain: string
  /** A machine-to-machine application authorised for the Management API with `read:client_grants` and `blacklist:tokens`. */
  clientId: string
  clientSecret: string
  /** Time between syncs (jittered by ±10%): seconds or a duration string. Default `'30s'`, at least 5 seconds. */
  interval?: Duration
  /** Audiences to sync, each one of the plugin's. Default: all of the plugin's audiences. */
  audience?: string | string[]
  /** How long one call to Auth0 may take: ms, or a string such as `'10s'`. Default 10000. */
  timeout?: Duration
}

export interface ResolvedAuth0SyncOptions {
  /** `https://tenant.auth0.com`, no trailing slash. */
  base: string
  /** The tenant's issuer, as its tokens name it in `iss`: `https://tenant.auth0.com/`. */
  issuer: string
  clientId: string
  clientSecret: string
  /** ms */
  interval: number
  audiences: string[] | undefined
  timeout: number
}

const KNOWN = [...optionKeys<Auth0SyncOptions>({ domain: true, clientId: true, clientSecret: true, interval: true, audience: true, timeout: true }), ...registerOptionKeys]
const MIN_INTERVAL_S = 5
const name = (key: string) => `auth0Sync.${key}`

/** Validates every option once, at registration; an unknown key fails, naming the nearest known one. */
export function resolveAuth0SyncOptions (options: Auth0SyncOptions): ResolvedAuth0SyncOptions {
  if (typeof options !== 'object' || options === null) throw invalidOption('auth0Sync', 'options must be an object')
  refuseUnknownKeys(options, KNOWN, 'auth0Sync')
  const text = (key: 'domain' | 'clientId' | 'clientSecret') => {
    const value = options[key]
    if (typeof value !== 'string' || value.trim().length === 0) throw invalidOption(name(key), 'is required (a non-empty string)')
    return value.trim()
  }
  // At most a day (a longer timer would overflow); a number above an hour is 30000 ms read as seconds.
  const interval = parseDuration(options.interval ?? '30s', name('interval'), { unit: 'seconds', max: 86_400, plausibleNumber: 3600, example: '30s' })
  if (interval < MIN_INTERVAL_S) throw invalidOption(name('interval'), `must be at least ${MIN_INTERVAL_S} seconds (Auth0 rate-limits the Management API)`)
  let audiences: string[] | undefined
  if (options.audience !== undefined) {
    const list = Array.isArray(options.audience) ? options.audience : [options.audience]
    if (list.length === 0 || list.some((a) => typeof a !== 'string' || a.length === 0)) throw invalidOption(name('audience'), 'must be a non-empty string or array of them')
    audiences = [...new Set(list)]
  }
  const timeout = parseDuration(options.timeout ?? 10_000, name('timeout'), { unit: 'milliseconds', min: 100, max: 120_000, example: '10s' })
  const base = tenantBase(text('domain'))
  return { base, issuer: `${base}/`, clientId: text('clientId'), clientSecret: text('clientSecret'), interval: interval * 1000, audiences, timeout }
}

/** `tenant.auth0.com` → `https://tenant.auth0.com`; a URL keeps its scheme (http only on loopback) and must name no path. */
function tenantBase (domain: string): string {
  const url = /^[a-z][a-z0-9+.-]*:\/\//i.test(domain) ? domain : `https://${domain}`
  let origin: string
  try {
    origin = outboundOrigin(url, 'domain')
  } catch {
    throw invalidOption(name('domain'), 'must be a tenant host (tenant.auth0.com) or an https URL (http only on a loopback host)')
  }
  const parsed = new URL(url)
  if ((parsed.pathname !== '/' && parsed.pathname !== '') || parsed.search !== '' || parsed.hash !== '') {
    throw invalidOption(name('domain'), 'must be the tenant alone, without a path (the package adds /oauth/token and /api/v2/)')
  }
  return origin
}
