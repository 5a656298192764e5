import type { FastifyBaseLogger } from 'fastify'
import { ServiceUnavailableError } from '../../errors.js'
import { withTimeout } from '../../revocation/store-guard.js'
import { BoundedClaims } from '../../stores/claims.js'
import type { RevocationStore } from '../../stores/types.js'
import { LogoutRefusal } from './refusal.js'

/** Bound on one claim: a logout is rare, but an OP's request must not hang on a stuck store. */
const CLAIM_TIMEOUT_MS = 5000

/**
 * "Each Logout Token once" (§2.6: a `jti` recently received is refused), across every
 * instance when the store has `claimOnce`, as DPoP proofs are; else within this process
 * (said once at registration). A store that cannot answer fails closed: 503, so the OP
 * retries rather than the check being skipped.
 */
export class LogoutJtiOnce {
  private readonly local = new BoundedClaims()
  private readonly shared: boolean

  constructor (private readonly store: RevocationStore, log: FastifyBaseLogger) {
    this.shared = typeof store.claimOnce === 'function'
    if (!this.shared) {
      log.warn('backchannelLogout: the store has no claimOnce(); Logout Tokens are remembered by this process only, so another instance would accept a replayed one')
    }
  }

  /** Resolves once `iss`+`jti` is claimed for the first time; a replay is refused. */
  async claim (iss: string, jti: string, expiresAt: number): Promise<void> {
    const key = `logout:${iss}\u0000${jti}`
    let claimed: unknown
    if (this.shared) {
      try {
        claimed = await withTimeout(() => this.store.claimOnce!(key, expiresAt), CLAIM_TIMEOUT_MS)
      } catch (err) {
        const unavailable = new ServiceUnavailableError('The Logout Token replay check is unavailable')
        unavailable.cause = err
        throw unavailable
      }
      // Anything but a boolean is a broken store: refused, never guessed.
      if (typeof claimed !== 'boolean') throw new ServiceUnavailableError('The Logout Token replay check is unavailable')
    } else {
      claimed = this.local.claimOnce(key, expiresAt)
    }
    if (!claimed) throw new LogoutRefusal('The Logout Token has been received before')
  }
}
