import type { FastifyBaseLogger } from 'fastify'
import { Breaker } from '../lib/breaker.js'
import { isPackageError, StoreError } from '../errors.js'

/** Settles like `run()`, or rejects after `ms`; the call itself may still complete later. */
export function withTimeout<T> (run: () => Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)
  })
  return Promise.race([Promise.resolve().then(run), timeout]).finally(() => clearTimeout(timer))
}

/** First pause after a store failure; it doubles per failed attempt, up to `retryAfter`. */
export const FIRST_PAUSE_MS = 500

export interface StoreGuardOptions {
  storeTimeout: number
  /** Seconds; also the longest pause between probes. */
  retryAfter: number
  onStoreError: 'deny' | 'allow'
}

/**
 * The one place every store call passes: bounded by `storeTimeout`, failures turned
 * into the package's StoreError, and one breaker (with its log lines, once per outage
 * and once on recovery) shared by the request path, `app.revocation` and the
 * connection at boot.
 */
export class StoreGuard {
  private readonly breaker: Breaker
  private readonly options: StoreGuardOptions
  private readonly log: FastifyBaseLogger
  /** The last health probe failed (its failure is logged once, not per probe). */
  private probeFailing = false

  constructor (options: StoreGuardOptions, log: FastifyBaseLogger) {
    this.options = options
    this.log = log
    this.breaker = new Breaker({ pause: Math.min(FIRST_PAUSE_MS, options.retryAfter * 1000), maxPause: options.retryAfter * 1000 })
  }

  /** False while the store is known to be failing. */
  get up (): boolean {
    return !this.breaker.isOpen
  }

  /** Whether a request may ask the store now (see Breaker.allow). */
  allow (): boolean {
    return this.breaker.allow()
  }

  /** Runs one store call under `storeTimeout`; reports its outcome to the breaker. */
  async call<T> (what: string, run: () => Promise<T>): Promise<T> {
    let result: T
    try {
      result = await withTimeout(run, this.options.storeTimeout)
    } catch (err) {
      // A refusal the store raised on purpose (a conflict, a full store) is an answer.
      if (isPackageError(err)) throw err
      this.failed(err)
      const wrapped = new StoreError(`fastify-jwt-revocation: ${what} failed: the revocation store did not answer`)
      wrapped.cause = err
      throw wrapped
    }
    this.answered()
    return result
  }

  /**
   * A readiness probe's store call, bounded by `storeTimeout`. A success is evidence the
   * store answers and closes the breaker; a failure is reported (and logged once) but
   * does not open it: only requests' own failures decide whether requests are refused,
   * so a probe can never be what takes an app out of service.
   */
  async probe (run: () => Promise<unknown>): Promise<boolean> {
    try {
      await withTimeout(run, this.options.storeTimeout)
    } catch (err) {
      if (!this.probeFailing && !this.breaker.isOpen) this.log.warn({ err }, 'fastify-jwt-revocation: health check: the revocation store did not answer')
      this.probeFailing = true
      return false
    }
    this.probeFailing = false
    this.answered()
    return true
  }

  failed (err: unknown, what = 'revocation store failed'): void {
    if (this.breaker.failed()) {
      this.log.error({ err }, `fastify-jwt-revocation: ${what}; requests are ${this.options.onStoreError === 'deny' ? 'refused (503)' : 'let through unchecked'} until it answers`)
    }
  }

  answered (): void {
    if (this.breaker.succeeded()) this.log.info('fastify-jwt-revocation: revocation store reachable again')
  }
}
