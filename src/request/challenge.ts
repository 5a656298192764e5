import { bearerErrorOf } from '../errors.js'

/** Which scheme a request presented its token with: the error attribute goes on that challenge. */
export type AuthScheme = 'Bearer' | 'DPoP'

/** What a route adds to each of its challenges: computed once with the route's policy, never per request. */
export interface RouteChallenge {
  /** RFC 9728 §5.1 URL of the route's protected resource metadata, when served. */
  resourceMetadata: string | undefined
  /**
   * `, scope="…"` naming the route's scopes, or '': on every challenge of the route
   * (RFC 6750 §3 allows it on any), so that a client asks for the right scopes on its
   * first try, as the MCP authorization spec asks.
   */
  scope: string
  /** RFC 9470 §3 `acr_values` and `max_age` of the route, or '': on its step-up challenges. */
  stepUp: string
}

/** A route with no scopes, no metadata, no step-up (and the fallback for an unexpected error). */
export const plainChallenge: RouteChallenge = Object.freeze({ resourceMetadata: undefined, scope: '', stepUp: '' })

/** A route's additions to its challenges. Scope tokens carry no quote or backslash (checked at registration). */
export function routeChallenge (scopes: readonly string[], resourceMetadata: string | undefined, stepUp: string): RouteChallenge {
  return { resourceMetadata, scope: scopes.length > 0 ? `, scope="${scopes.join(' ')}"` : '', stepUp }
}

/**
 * The `WWW-Authenticate` value for an error of this package: RFC 6750 §3 `Bearer` first,
 * then, when DPoP is on (`dpopAlgs` not null), RFC 9449 §7.1 `DPoP` with the accepted
 * proof algorithms. The error attributes and the route's scope are on the scheme the
 * request used. `resource_metadata` goes on the first challenge, which every client reads.
 */
export function challenge (
  realm: string, code: string, description: string, route: RouteChallenge,
  dpopAlgs: string | null = null, scheme: AuthScheme = 'Bearer',
): string {
  const attributes = errorAttributes(code, description, route) + route.scope
  let value = `Bearer realm="${realm}"`
  // A URL parsed by WHATWG URL: its quotes and controls are percent-encoded.
  if (route.resourceMetadata !== undefined) value += `, resource_metadata="${route.resourceMetadata}"`
  if (scheme === 'Bearer') value += attributes
  if (dpopAlgs !== null) {
    value += `, DPoP algs="${dpopAlgs}"`
    if (scheme === 'DPoP') value += attributes
  }
  return value
}

function errorAttributes (code: string, description: string, route: RouteChallenge): string {
  const error = bearerErrorOf(code)
  if (error === undefined) return ''
  // Descriptions are this package's own fixed sentences: never token content.
  const value = `, error="${error}", error_description="${description}"`
  return error === 'insufficient_user_authentication' ? value + route.stepUp : value
}
