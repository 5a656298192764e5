import type { JWTPayload } from '../lib/jose-types.js'

const CLIENTS_SUFFIX = '@clients'

/** RFC 9068 `client_id`, else Auth0's `azp`, else `sub` without Auth0's `@clients` suffix. */
export function clientIdOf (payload: JWTPayload): string | null {
  if (typeof payload.client_id === 'string' && payload.client_id !== '') return payload.client_id
  if (typeof payload.azp === 'string' && payload.azp !== '') return payload.azp
  const sub = payload.sub
  if (typeof sub !== 'string' || sub === '') return null
  return sub.endsWith(CLIENTS_SUFFIX) ? sub.slice(0, -CLIENTS_SUFFIX.length) : sub
}

export function subjectOf (payload: JWTPayload): string | null {
  return typeof payload.sub === 'string' && payload.sub !== '' ? payload.sub : null
}

/** The OpenID Connect session the token belongs to (`sid`, as in an ID Token or a Logout Token), or null. */
export function sessionIdOf (payload: JWTPayload): string | null {
  return typeof payload.sid === 'string' && payload.sid !== '' ? payload.sid : null
}

/** Scopes from `scope` (RFC 8693, space-delimited) and Auth0's RBAC `permissions` array, merged. */
export function scopesOf (payload: JWTPayload): string[] {
  const scopes = new Set<string>()
  if (typeof payload.scope === 'string') {
    for (const s of payload.scope.split(' ')) if (s !== '') scopes.add(s)
  }
  if (Array.isArray(payload.permissions)) {
    for (const p of payload.permissions) if (typeof p === 'string' && p !== '') scopes.add(p)
  }
  return [...scopes]
}

/** The token's audiences that this API accepts, in the token's order. */
export function acceptedAudiences (payload: JWTPayload, accepted: ReadonlySet<string>): string[] {
  const aud = payload.aud
  if (typeof aud === 'string') return accepted.has(aud) ? [aud] : []
  if (!Array.isArray(aud)) return []
  return aud.filter((a) => typeof a === 'string' && accepted.has(a))
}
