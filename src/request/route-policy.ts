import { invalidOption } from '../errors.js'
import { optionKeys, refuseUnknownKeys } from '../options/option-keys.js'
import { acrValues, maxAgeSeconds, type AcrOption, type MaxAgeOption } from '../options/step-up.js'
import { routeChallenge, type RouteChallenge } from './challenge.js'
import { stepUpChallenge, stepUpPolicy, type StepUpPolicy } from './step-up.js'

/** What a route asks of `config.auth`: `false` opens it, `true` or an object protects it. */
export type RouteAuthConfig = boolean | {
  /** Every listed scope must be in the token (`scope` or `permissions`). */
  scopes?: string[]
  /** The token's `aud` must include this one (it must be among the plugin's audiences). */
  audience?: string
  /** After local verification, ask the issuer (RFC 7662 introspection; needs the `introspection` option). */
  introspect?: boolean
  /** `'required'`: only DPoP-bound tokens, proven with a DPoP proof (needs the plugin's `dpop` on). */
  dpop?: 'required'
  /** RFC 9470: the token's `acr` must be one of these; `null` lifts the plugin's `acr` on this route. */
  acr?: AcrOption
  /** RFC 9470: at most this long since `auth_time` (seconds or `'15m'`); `null` lifts the plugin's `maxAge` on this route. */
  maxAge?: MaxAgeOption
}

// A misspelled key (`scopez`) would leave an object that asks for nothing: the
// route would admit any valid token. Listed against the type so they cannot drift.
const routeAuthKeys = optionKeys<Exclude<RouteAuthConfig, boolean>>({
  scopes: true, audience: true, introspect: true, dpop: true, acr: true, maxAge: true,
})

export interface RoutePolicy {
  scopes: string[]
  audience: string | undefined
  introspect: boolean
  /** Only a DPoP request with a DPoP-bound token is admitted. */
  dpopRequired: boolean
  /** RFC 9470 requirements on the user's authentication; null when the route asks none. */
  stepUp: StepUpPolicy | null
  /** What this route's challenges add: `resource_metadata`, `scope`, step-up auth-params. */
  challenge: RouteChallenge
}

/** What the plugin offers a route beyond its own config: a metadata URL per audience, introspection, DPoP. */
export interface RouteContext {
  metadataUrl?: ((audience: string | undefined) => string) | undefined
  introspection?: boolean
  /** What the plugin's options say about DPoP on every route (default 'on'). */
  dpop?: DpopDefault
  /** The plugin's `acr` and `maxAge`: every protected route's, unless its own config says otherwise. */
  acr?: readonly string[] | null
  maxAge?: number | null
}

/** What the plugin's options say about DPoP on every route: off, on, or required. */
export type DpopDefault = 'off' | 'on' | 'required'

// RFC 6749 §3.3 scope-token: printable ASCII without space, quote and backslash.
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/

/** The route's policy, or null when the route is open. Throws at route registration on a bad config. */
export function routePolicy (config: unknown, global: boolean, audiences: readonly string[], url: string, context: RouteContext = {}): RoutePolicy | null {
  if (config === false) return null
  const dpop = context.dpop ?? 'on'
  const policy = (scopes: string[], audience: string | undefined, introspect: boolean, dpopRequired: boolean, stepUp = stepUpPolicy(context.acr ?? null, context.maxAge ?? null)): RoutePolicy =>
    ({ scopes, audience, introspect, dpopRequired, stepUp, challenge: routeChallenge(scopes, context.metadataUrl?.(audience), stepUpChallenge(stepUp)) })
  if (config === undefined || config === null) return global ? policy([], undefined, false, dpop === 'required') : null
  if (config === true) return policy([], undefined, false, dpop === 'required')
  if (typeof config !== 'object' || Array.isArray(config)) throw invalidOption(`config.auth of route ${url}`, `must be false, true or { ${routeAuthKeys.join(', ')} }`)
  refuseUnknownKeys(config, routeAuthKeys, 'config.auth', `route ${url}`)
  const { scopes = [], audience, introspect = false, dpop: routeDpop, acr, maxAge } = config as Record<keyof Exclude<RouteAuthConfig, boolean>, unknown>
  if (routeDpop !== undefined && routeDpop !== 'required') throw invalidOption(`config.auth.dpop of route ${url}`, "must be 'required'")
  if (routeDpop === 'required' && dpop === 'off') throw invalidOption(`config.auth.dpop of route ${url}`, 'needs the plugin option "dpop" on')
  if (!Array.isArray(scopes) || scopes.some((s) => typeof s !== 'string' || !SCOPE_TOKEN.test(s))) {
    throw invalidOption(`config.auth.scopes of route ${url}`, 'must be an array of scope tokens (no spaces, quotes or backslashes)')
  }
  if (audience !== undefined && (typeof audience !== 'string' || !audiences.includes(audience))) {
    throw invalidOption(`config.auth.audience of route ${url}`, `must be one of the plugin's audiences (${audiences.join(', ')})`)
  }
  if (typeof introspect !== 'boolean') throw invalidOption(`config.auth.introspect of route ${url}`, 'must be a boolean')
  if (introspect && context.introspection !== true) throw invalidOption(`config.auth.introspect of route ${url}`, 'needs the plugin\'s introspection option')
  const stepUp = stepUpPolicy(
    acr === undefined ? context.acr ?? null : acrValues(acr, `config.auth.acr of route ${url}`),
    maxAge === undefined ? context.maxAge ?? null : maxAgeSeconds(maxAge, `config.auth.maxAge of route ${url}`))
  return policy(scopes as string[], audience as string | undefined, introspect, dpop === 'required' || routeDpop === 'required', stepUp)
}
