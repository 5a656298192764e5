import type { FastifyBaseLogger } from 'fastify'
import { InvalidDpopProofError, ServiceUnavailableError } from '../../errors.js'
import type { StoreGuard } from '../../revocation/store-guard.js'
import { BoundedClaims } from '../../stores/claims.js'
import { claimNow, inMemoryClaim, type InMemoryClaim } from '../../stores/state-backed.js'
import type { RevocationStore } from '../../stores/types.js'

const UNAVAILABLE = 'The DPoP replay check is unavailable'

/**
 * "Each proof once" (RFC 9449 §11.1), across every instance when the store has
 * `claimOnce`, else within this process (and said so once at boot). The store call goes
 * through the StoreGuard like every other: `storeTimeout`, the breaker, and
 * `onStoreError` deciding when it cannot answer ('allow' falls back to this process's
 * memory rather than to no check at all).
 */
export class ReplayCache {
  private readonly local = new BoundedClaims()
  private readonly shared: boolean
  /** The store, when it claims in this process's memory (Memory, File): no promise, no timeout to arm. */
  private readonly memory: InMemoryClaim | null

  constructor (
    private readonly store: RevocationStore,
    private readonly guard: StoreGuard,
    private readonly onStoreError: 'deny' | 'allow',
    log: FastifyBaseLogger,
  ) {
    this.shared = typeof store.claimOnce === 'function'
    this.memory = this.shared ? inMemoryClaim(store) : null
    if (!this.shared) {
      log.warn('fastify-jwt-revocation: the store has no claimOnce(); DPoP proofs are remembered by this process only, so another instance would accept a replayed proof')
    }
  }

  /**
   * Claims `key` for the first time, synchronously when the store claims in memory or
   * there is no store claim, else by the promise returned; a replay is refused (thrown or
   * rejected) with invalid_dpop_proof.
   */
  claim (key: string, expiresAt: number): void | Promise<void> {
    const claimed = this.memory?.[claimNow](key, expiresAt)
    if (claimed === undefined && this.shared) return this.claimAsync(key, expiresAt)
    if (!(claimed ?? this.local.claimOnce(key, expiresAt))) throw new InvalidDpopProofError('The DPoP proof has been used before')
  }

  private async claimAsync (key: string, expiresAt: number): Promise<void> {
    if (!await this.claimShared(key, expiresAt) && !this.local.claimOnce(key, expiresAt)) {
      throw new InvalidDpopProofError('The DPoP proof has been used before')
    }
  }

  /** True when the store took the claim; throws on a replay; false to fall back to memory. */
  private async claimShared (key: string, expiresAt: number): Promise<boolean> {
    let claimed: boolean
    if (this.guard.allow()) {
      try {
        claimed = await this.guard.call('DPoP replay check', () => this.store.claimOnce!(key, expiresAt))
      } catch {
        // The guard has logged it (once per outage); the request gets the revocation check's answer.
        if (this.onStoreError === 'deny') throw new ServiceUnavailableError(UNAVAILABLE)
        return false
      }
      if (claimed === true) return true
      if (claimed === false) throw new InvalidDpopProofError('The DPoP proof has been used before')
      // Anything else is a broken store: refused, never guessed.
      if (this.onStoreError === 'deny') throw new ServiceUnavailableError(UNAVAILABLE)
      return false
    }
    if (this.onStoreError === 'deny') throw new ServiceUnavailableError(UNAVAILABLE)
    return false
  }
}
