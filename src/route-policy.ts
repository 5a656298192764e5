import { invalidOption } from './errors.js'

/** What a route asks of `config.auth`: `false` opens it, `true` or an object protects it. */
export type RouteAuthConfig = boolean | {
  /** Every listed scope must be in the token (`scope` or `permissions`). */
  scopes?: string[]
  /** The token's `aud` must include this one (it must be among the plugin's audiences). */
  audience?: string
}

export interface RoutePolicy {
  scopes: string[]
  audience: string | undefined
}

// RFC 6749 §3.3 scope-token: printable ASCII without space, quote and backslash.
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/

/** The route's policy, or null when the route is open. Throws at route registration on a bad config. */
export function routePolicy (config: unknown, global: boolean, audiences: readonly string[], url: string): RoutePolicy | null {
  if (config === false) return null
  if (config === undefined || config === null) return global ? { scopes: [], audience: undefined } : null
  if (config === true) return { scopes: [], audience: undefined }
  if (typeof config !== 'object') throw invalidOption(`config.auth of route ${url}`, 'must be false, true or { scopes, audience }')
  const { scopes = [], audience } = config as { scopes?: unknown, audience?: unknown }
  if (!Array.isArray(scopes) || scopes.some((s) => typeof s !== 'string' || !SCOPE_TOKEN.test(s))) {
    throw invalidOption(`config.auth.scopes of route ${url}`, 'must be an array of scope tokens (no spaces, quotes or backslashes)')
  }
  if (audience !== undefined && (typeof audience !== 'string' || !audiences.includes(audience))) {
    throw invalidOption(`config.auth.audience of route ${url}`, `must be one of the plugin's audiences (${audiences.join(', ')})`)
  }
  return { scopes: scopes as string[], audience: audience as string | undefined }
}
