/**
 * "Once per key until it expires", in this process's memory: the replay cache of
 * MemoryStore and FileStore, and the fallback for a store without `claimOnce`. Bounded:
 * when full, expired keys are dropped first, then the ones that expire soonest, so an
 * attacker sending fresh proofs can never grow it without limit. A key dropped early can
 * be claimed again; the proof's `iat` window limits how long that could matter.
 */
export class BoundedClaims {
  /** Insertion order is roughly expiry order (every key lives the same time), which the sweep relies on. */
  private readonly claims = new Map<string, number>()

  constructor (private readonly max = 100_000) {}

  claimOnce (key: string, expiresAt: number, now = Date.now()): boolean {
    const held = this.claims.get(key)
    if (held !== undefined && held > now) return false
    if (held === undefined && this.claims.size >= this.max) this.sweep(now)
    this.claims.set(key, expiresAt)
    return true
  }

  get size (): number {
    return this.claims.size
  }

  private sweep (now: number): void {
    for (const [key, expiresAt] of this.claims) {
      if (expiresAt <= now || this.claims.size >= this.max) this.claims.delete(key)
      else break
    }
  }
}
