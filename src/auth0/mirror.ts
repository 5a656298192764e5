import type { IssuerScope, Revocation } from '../revocation/revocation.js'
import { MAX_TOKEN_PAGE, revokedTokenPages } from '../stores/token-pages.js'
import type { ChangeAuthor, ClientGrant } from '../stores/types.js'
import type { Auth0BlacklistEntry, Auth0Grant } from './management-api.js'

// Applies what Auth0 says to the store, idempotently: a sync that finds nothing new
// writes nothing (no log line, no change message, no cache flush).

/**
 * A grant first seen at Auth0 was already in force there, so it admits tokens issued
 * before we saw it (created_at 0). A local grant with created_at 0 is therefore one
 * this sync mirrored.
 */
const IN_FORCE_SINCE_UNKNOWN = 0

/** The sync's entries in the revocation log: who (the sync) and why (what Auth0 said). */
const bySync = (reason: string): ChangeAuthor => ({ actor: 'auth0-sync', reason, source: 'auth0' })

/** Revokes the jtis Auth0 blacklists that the store does not list yet; returns how many were new. */
export async function applyBlacklist (revocation: Revocation, aud: string, entries: Auth0BlacklistEntry[]): Promise<number> {
  const known = new Set<string>()
  // Page by page: the set of jtis is all this needs to hold, not every listed entry.
  for await (const page of revokedTokenPages(revocation, { aud }, MAX_TOKEN_PAGE)) for (const e of page) known.add(e.jti)
  let added = 0
  for (const { jti } of entries) {
    if (known.has(jti)) continue
    // No exp is known: the entry is kept maxTokenLifetime, the longest any such token can live.
    await revocation.revokeToken({ jti, aud }, bySync('blacklisted at Auth0'))
    known.add(jti)
    added++
  }
  return added
}

/**
 * Makes the store's grants for `audience` those of Auth0 (one per client): scopes
 * follow Auth0's, a grant gone from Auth0 is deleted — which revokes that client's
 * tokens for the audience (within `scope`: the tenant's issuer, or every issuer) — and a
 * grant new at Auth0 is mirrored. `remote` must be Auth0's complete list: the caller
 * never passes a partial read.
 */
export async function mirrorGrants (revocation: Revocation, audience: string, remote: Auth0Grant[], scope: IssuerScope = {}): Promise<number> {
  const store = revocation.store as Required<Pick<typeof revocation.store, 'createGrant' | 'deleteGrant'>>
  const wanted = new Map<string, Auth0Grant>()
  // Only client (machine-to-machine) grants govern client-credentials tokens; user-access grants are Auth0's business.
  for (const g of remote) if (g.subject_type === undefined || g.subject_type === 'client') wanted.set(g.client_id, g)
  const local = new Map<string, ClientGrant>()
  for (const g of await revocation.listGrants({ audience })) local.set(g.client_id, g)

  for (const [clientId, mine] of local) {
    const theirs = wanted.get(clientId)
    // Gone from Auth0; or, for a grant this sync mirrored, replaced at Auth0 by a new one
    // since the last sync — deleted in between, so the client's tokens up to now are refused.
    if (theirs === undefined || (mine.created_at === IN_FORCE_SINCE_UNKNOWN && mine.id !== theirs.id)) {
      await revocation.deleteGrant(mine.id, scope, bySync(theirs === undefined ? 'grant deleted at Auth0' : 'grant replaced at Auth0')).catch(ignoreNotFound)
      local.delete(clientId)
    } else if (!sameScopes(mine.scope, theirs.scope)) {
      await revocation.updateGrant(mine.id, theirs.scope, bySync('scopes changed at Auth0')).catch(ignoreNotFound)
    }
  }
  for (const [clientId, theirs] of wanted) {
    if (local.has(clientId)) continue
    try {
      await store.createGrant({ id: theirs.id, client_id: clientId, audience, scope: theirs.scope, created_at: IN_FORCE_SINCE_UNKNOWN }, bySync('grant created at Auth0'))
    } catch (err) {
      // Another instance mirrored it first: the store already says what Auth0 says.
      if ((err as { statusCode?: number }).statusCode !== 409) throw err
    }
    revocation.invalidate({ type: 'grant', clientId })
  }
  return wanted.size
}

function sameScopes (a: string[], b: string[]): boolean {
  if (a.length !== b.length) return false
  const set = new Set(a)
  return b.every((s) => set.has(s))
}

/** A concurrent sync (another instance's syncNow) got there first. */
function ignoreNotFound (err: unknown): void {
  if ((err as { statusCode?: number }).statusCode !== 404) throw err
}
