// One pause-and-probe breaker for every outbound dependency (the store, the JWKS
// endpoint, discovery): after a failure the dependency is left alone for a pause, then
// one call at a time probes it; the first success closes the breaker. Without it, an
// outage is multiplied by the request rate and every request waits for a timeout.

export interface BreakerOptions {
  /** ms of the first pause after a failure. */
  pause: number
  /** ms the pause grows to (doubling per failed probe). Default: `pause` (no growth). */
  maxPause?: number
}

export class Breaker {
  private readonly firstPause: number
  private readonly maxPause: number
  private failures = 0
  private openUntil = 0
  private probing = false

  constructor (options: BreakerOptions) {
    this.firstPause = options.pause
    this.maxPause = Math.max(options.pause, options.maxPause ?? options.pause)
  }

  /** True while the dependency is known to be failing. */
  get isOpen (): boolean {
    return this.failures > 0
  }

  /** ms of the pause that follows the current number of consecutive failures. */
  get pause (): number {
    return Math.min(this.maxPause, this.firstPause * 2 ** Math.max(0, this.failures - 1))
  }

  /**
   * Whether a call may go out now: always while closed; while open, one probe once the
   * pause is over. A caller told yes must report `succeeded()` or `failed()`.
   */
  allow (): boolean {
    if (this.failures === 0) return true
    if (this.probing || Date.now() < this.openUntil) return false
    this.probing = true
    return true
  }

  /** Reports a success; true when it ends an outage (log the recovery once). */
  succeeded (): boolean {
    const recovered = this.failures > 0
    this.failures = 0
    this.probing = false
    return recovered
  }

  /** Reports a failure; true when it starts an outage (log it once). */
  failed (): boolean {
    const started = this.failures === 0
    // Calls that set out before the outage was noticed fail together: they count as
    // one failure, and only a failed probe lengthens the pause.
    if (!started && !this.probing) return false
    this.failures++
    this.probing = false
    this.openUntil = Date.now() + this.pause
    return started
  }
}
