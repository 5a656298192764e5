import { invalidOption } from '../errors.js'
import { parseDuration, PLAUSIBLE_LIFETIME_SECONDS, type Duration, type DurationRule } from './duration.js'

// RFC 9470 step-up requirements, read the same way from the plugin's defaults and
// from a route's `config.auth`. `null` says "no requirement": the way a route lifts a
// plugin default. An empty `acr` list is refused rather than read as "none": a list
// that admits nothing and a list that asks nothing must not look alike.

/** The `acr` values a route accepts, or null to ask none (a route lifting the plugin's default). */
export type AcrOption = string[] | null

/** At most this long since the user last authenticated (`auth_time`), or null to ask nothing. */
export type MaxAgeOption = Duration | null

// An OIDC acr is a string or URI; here also an RFC 9470 §3 `acr_values` item, which
// the challenge joins with spaces inside a quoted string: printable ASCII without
// space, quote or backslash.
const ACR_VALUE = /^[\x21\x23-\x5b\x5d-\x7e]+$/

/**
 * `max_age` is a whole number of seconds (RFC 9470 §3); 0 asks for an authentication
 * at this very moment, as OIDC's `max_age=0` does. A plain number above 30 days is
 * refused as surely milliseconds, like the token-age options.
 */
const maxAgeRule: DurationRule = { unit: 'seconds', min: 0, plausibleNumber: PLAUSIBLE_LIFETIME_SECONDS, example: '15m' }

/** The accepted `acr` values, deduplicated in the given order (the challenge's order of preference); null for none. */
export function acrValues (value: unknown, name: string): string[] | null {
  if (value === null) return null
  if (!Array.isArray(value) || value.length === 0 || value.some((v) => typeof v !== 'string' || !ACR_VALUE.test(v))) {
    throw invalidOption(name, 'must be a non-empty array of acr values (no spaces, quotes or backslashes), or null for none')
  }
  return [...new Set(value as string[])]
}

/** The longest time since `auth_time`, in seconds; null for none. */
export function maxAgeSeconds (value: unknown, name: string): number | null {
  return value === null ? null : parseDuration(value, name, maxAgeRule)
}
