import { metrics, ValueType, type Attributes, type Counter, type Histogram } from '@opentelemetry/api'
import type { ResetReason } from '../stores/types.js'

// Counts what the plugin decides, through the OpenTelemetry metrics API. Without an
// SDK registered the API hands out no-op instruments, so each record below is one
// empty call; attribute sets are built once here, never per request.

const METER = 'fastify-jwt-revocation'

/** A refusal's reason, by error code: `refused` unless the answer was a 503. */
const refusals: Record<string, Attributes> = {
  FST_JWT_REVOCATION_TOKEN_MISSING: { outcome: 'refused', reason: 'missing' },
  FST_JWT_REVOCATION_INVALID_REQUEST: { outcome: 'refused', reason: 'malformed' },
  FST_JWT_REVOCATION_INVALID_TOKEN: { outcome: 'refused', reason: 'invalid' },
  FST_JWT_REVOCATION_TOKEN_EXPIRED: { outcome: 'refused', reason: 'expired' },
  FST_JWT_REVOCATION_TOKEN_LIFETIME: { outcome: 'refused', reason: 'lifetime' },
  FST_JWT_REVOCATION_TOKEN_REVOKED: { outcome: 'refused', reason: 'revoked' },
  FST_JWT_REVOCATION_INSUFFICIENT_SCOPE: { outcome: 'refused', reason: 'scope' },
  FST_JWT_REVOCATION_INSUFFICIENT_USER_AUTHENTICATION: { outcome: 'refused', reason: 'authentication' },
  FST_JWT_REVOCATION_INVALID_DPOP_PROOF: { outcome: 'refused', reason: 'proof' },
  FST_JWT_REVOCATION_USE_DPOP_NONCE: { outcome: 'refused', reason: 'nonce' },
}
const ACCEPTED: Attributes = { outcome: 'accepted' }
const UNAVAILABLE_STORE: Attributes = { outcome: 'unavailable', reason: 'store' }
const UNAVAILABLE_KEYS: Attributes = { outcome: 'unavailable', reason: 'keys' }
/** An error that is not the package's own (a bug, a throwing extractToken): refused as invalid. */
const UNEXPECTED: Attributes = { outcome: 'refused', reason: 'error' }
const HIT: Attributes = { result: 'hit' }
const MISS: Attributes = { result: 'miss' }
const STORE_OK: Attributes = { outcome: 'ok' }
const STORE_ERROR: Attributes = { outcome: 'error' }
const RESETS: Record<ResetReason, Attributes> = { gap: { reason: 'gap' }, reconnect: { reason: 'reconnect' }, unreadable: { reason: 'unreadable' } }

export class Metrics {
  private readonly decisions: Counter
  private readonly cacheLookups: Counter
  private readonly storeDuration: Histogram
  private readonly cacheResets: Counter
  /** 1 or 0 after the last store call; undefined (not reported) before the first. */
  private storeUp: number | undefined

  /** Instruments come from the meter provider registered now: register the SDK before the plugin. */
  constructor () {
    const meter = metrics.getMeter(METER)
    this.decisions = meter.createCounter('jwt_revocation.decisions', {
      description: 'Requests to protected routes, by outcome (accepted, refused, unavailable) and reason',
      valueType: ValueType.INT,
    })
    this.cacheLookups = meter.createCounter('jwt_revocation.cache.lookups', {
      description: 'Verified-token cache lookups, by result (hit, miss)',
      valueType: ValueType.INT,
    })
    this.storeDuration = meter.createHistogram('jwt_revocation.store.duration', {
      description: 'Duration of revocation store lookups on the request path, by outcome (ok, error)',
      unit: 's',
    })
    this.cacheResets = meter.createCounter('jwt_revocation.cache.resets', {
      description: 'Times every cached revocation status was dropped because the change feed may have missed changes, by reason (gap, reconnect, unreadable)',
      valueType: ValueType.INT,
    })
    meter.createObservableGauge('jwt_revocation.store.up', {
      description: '1 if the last revocation store lookup succeeded, 0 if it failed or timed out',
      valueType: ValueType.INT,
    }).addCallback((result) => { if (this.storeUp !== undefined) result.observe(this.storeUp) })
  }

  accepted (): void {
    this.decisions.add(1, ACCEPTED)
  }

  /** `keySource`: a 503 caused by the key source rather than the store. */
  refused (code: string | undefined, keySource: boolean): void {
    const attributes = code === 'FST_JWT_REVOCATION_UNAVAILABLE'
      ? (keySource ? UNAVAILABLE_KEYS : UNAVAILABLE_STORE)
      : refusals[code ?? ''] ?? UNEXPECTED
    this.decisions.add(1, attributes)
  }

  cacheLookup (hit: boolean): void {
    this.cacheLookups.add(1, hit ? HIT : MISS)
  }

  cacheReset (reason: ResetReason): void {
    this.cacheResets.add(1, RESETS[reason] ?? RESETS.reconnect)
  }

  /** A store answer read from memory at once, asked at `started` (performance.now()). */
  storeAnswered (started: number): void {
    this.storeDuration.record((performance.now() - started) / 1000, STORE_OK)
    this.storeUp = 1
  }

  /** Times a store call; returns it unchanged. */
  storeCall<T> (call: Promise<T>): Promise<T> {
    const started = performance.now()
    return call.then((value) => {
      this.storeAnswered(started)
      return value
    }, (err: unknown) => {
      this.storeDuration.record((performance.now() - started) / 1000, STORE_ERROR)
      this.storeUp = 0
      throw err
    })
  }
}
