import { invalidOption } from '../errors.js'
import type { IssuerScope, Revocation } from './revocation.js'

// A feed (an Auth0 tenant, an SSF transmitter, an OpenID Provider's logout) learns of a
// client, subject or session at one issuer. With several issuers a client id or subject
// is only unique within its issuer, so the rule must not reach another issuer's tokens.

/**
 * Where a rule learned from `iss` applies: that issuer's tokens when the API accepts
 * several issuers and `iss` is one of them; else every issuer (with one issuer, the same
 * tokens), as before issuers could be told apart.
 */
export function feedScope (revocation: Revocation, iss: string | undefined): IssuerScope {
  const accepted = revocation.tokenIssuers ?? []
  return iss !== undefined && accepted.length > 1 && accepted.includes(iss) ? { issuer: iss } : {}
}

/**
 * Refuses, at registration, a feed that may have to scope a rule to an issuer on a store
 * that cannot keep such rules: it would otherwise fail each write at run time.
 * `issuers`: the issuers the feed may name (default: any the API accepts).
 */
export function requireIssuerScopes (revocation: Revocation, registration: string, issuers?: readonly string[]): void {
  const scoped = (issuers ?? revocation.tokenIssuers ?? []).some((iss) => feedScope(revocation, iss).issuer !== undefined)
  if (scoped && !revocation.issuerScopesSupported) {
    throw invalidOption(registration, 'with several issuers, needs a store that keeps rules scoped to an issuer (issuerScopes); every built-in store does')
  }
}
