import { MAX_TIMER_MS, parseDuration, type Duration } from '../../options/duration.js'
import { invalidOption } from '../../errors.js'
import { optionKeys, refuseUnknownKeys } from '../../options/option-keys.js'

export interface StatusListOptions {
  /**
   * Origins status lists may be fetched from (`https://status.example`), for the tokens of
   * every issuer. Default: the origin of `issuer` (or `issuerBaseURL`); with `issuers`, each
   * issuer's tokens may point at its own origin only. `http:` only for a loopback host listed here.
   */
  allowedOrigins?: string[]
  /** How long a status list fetch may take: ms, or a string such as `'5s'`. Default 5000. */
  timeout?: Duration
  /** Longest a status list is used before it is fetched again, whatever its `ttl`. Default `'5m'`. */
  maxAge?: Duration
}

export interface ResolvedStatusListOptions {
  /** Origins lists may be fetched from: those listed, else the issuer's. */
  allowedOrigins: ReadonlySet<string>
  /**
   * With `issuers` and no `allowedOrigins`: the one origin (or none, for an issuer that is
   * not an https URL) each issuer's tokens may point at. Null: `allowedOrigins` serves all.
   */
  originsByIssuer: ReadonlyMap<string, ReadonlySet<string>> | null
  timeout: number
  /** Seconds. */
  maxAge: number
}

const statusListOptionKeys = optionKeys<StatusListOptions>({ allowedOrigins: true, timeout: true, maxAge: true })

const LOOPBACK = new Set(['127.0.0.1', '[::1]', 'localhost'])

function originOf (value: string, listed: boolean): string | undefined {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return undefined
  }
  if (url.protocol === 'https:') return url.origin
  // Plain http only for a test or stand-in on this machine, and only when named.
  if (url.protocol === 'http:' && listed && LOOPBACK.has(url.hostname)) return url.origin
  return undefined
}

/**
 * Validates the `statusList` plugin option once, at registration; null when it is off.
 * `issuers` are the accepted issuers' names; `perIssuer` when they are entries of the
 * `issuers` option, each verified with its own keys and, by default, its own origin.
 */
export function resolveStatusListOptions (value: unknown, issuers: readonly string[] | undefined, issuerBaseURL: string | URL | undefined, perIssuer = false): ResolvedStatusListOptions | null {
  if (value === undefined || value === false) return null
  if (value !== true && (typeof value !== 'object' || value === null)) throw invalidOption('statusList', 'must be true or { allowedOrigins, timeout, maxAge }')
  const options: StatusListOptions = value === true ? {} : value as StatusListOptions
  refuseUnknownKeys(options, statusListOptionKeys, 'statusList')
  let origins: string[]
  let originsByIssuer: Map<string, ReadonlySet<string>> | null = null
  if (options.allowedOrigins !== undefined) {
    if (!Array.isArray(options.allowedOrigins) || options.allowedOrigins.length === 0) throw invalidOption('statusList.allowedOrigins', 'must be a non-empty array of origins')
    origins = options.allowedOrigins.map((o) => {
      const origin = typeof o === 'string' ? originOf(o, true) : undefined
      if (origin === undefined) throw invalidOption('statusList.allowedOrigins', `contains ${JSON.stringify(o)}: origins must be https (http only on a loopback host)`)
      return origin
    })
  } else {
    const sources = issuers ?? (issuerBaseURL === undefined ? [] : [String(issuerBaseURL)])
    origins = sources.map((s) => originOf(s, false)).filter((o): o is string => o !== undefined)
    // One issuer's token cannot make the API fetch from another issuer's origin unless listed.
    if (perIssuer) {
      originsByIssuer = new Map(sources.map((s) => {
        const origin = originOf(s, false)
        return [s, new Set(origin === undefined ? [] : [origin])]
      }))
    }
    if (origins.length === 0) throw invalidOption('statusList.allowedOrigins', 'is required when no https issuer gives a default origin')
  }
  const timeout = parseDuration(options.timeout ?? 5000, 'statusList.timeout', { unit: 'milliseconds', min: 1, max: MAX_TIMER_MS, example: '5s' })
  // A day: lists are refreshed in minutes; 300000 (five minutes in ms) would be 3.5 days of a stale list.
  const maxAge = parseDuration(options.maxAge ?? '5m', 'statusList.maxAge', { unit: 'seconds', min: 1, plausibleNumber: 86_400, example: '5m' })
  return { allowedOrigins: new Set(origins), originsByIssuer, timeout, maxAge }
}
