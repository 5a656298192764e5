import { InsufficientUserAuthenticationError, InvalidTokenError } from '../errors.js'
import type { TokenRecord } from './token-cache.js'

/** What a route asks of the user's authentication (RFC 9470): computed once per route. */
export interface StepUpPolicy {
  /** Accepted `acr` values, in order of preference; null: any (or none). */
  acr: readonly string[] | null
  /** Longest time since `auth_time`, in seconds; null: any. */
  maxAge: number | null
}

/** The route's step-up requirements, or null when it asks none: the hot path then tests one field. */
export function stepUpPolicy (acr: readonly string[] | null, maxAge: number | null): StepUpPolicy | null {
  return acr === null && maxAge === null ? null : { acr, maxAge }
}

/**
 * RFC 9470 §3 auth-params naming every requirement of the route, whichever one the token
 * missed: a client that asks its issuer for all of them at once gets a token this route
 * takes, rather than a second refusal. `acr_values` is a quoted list; `max_age` a
 * number token (§3 allows either form for it).
 */
export function stepUpChallenge (stepUp: StepUpPolicy | null): string {
  if (stepUp === null) return ''
  let value = ''
  if (stepUp.acr !== null) value += `, acr_values="${stepUp.acr.join(' ')}"`
  if (stepUp.maxAge !== null) value += `, max_age=${stepUp.maxAge}`
  return value
}

/**
 * Why the token's authentication falls short of the route's, or undefined when it does
 * not. A token that does not say (no `acr`, no numeric `auth_time`) falls short of a
 * requirement on it; an `auth_time` in the future beyond the leeway is no valid time at all.
 */
export function stepUpShortfall (stepUp: StepUpPolicy, record: TokenRecord, clockTolerance: number): Error | undefined {
  let recent = true
  if (stepUp.maxAge !== null) {
    if (record.authTime === null) {
      recent = false
    } else {
      const now = Math.floor(Date.now() / 1000)
      if (record.authTime - now > clockTolerance) return new InvalidTokenError('The token has an invalid authentication time')
      recent = now - clockTolerance - record.authTime <= stepUp.maxAge
    }
  }
  if (stepUp.acr !== null && (record.acr === null || !stepUp.acr.includes(record.acr))) {
    return new InsufficientUserAuthenticationError('A different authentication level is required')
  }
  return recent ? undefined : new InsufficientUserAuthenticationError('More recent authentication is required')
}
