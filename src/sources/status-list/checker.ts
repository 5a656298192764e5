import type { FastifyBaseLogger } from 'fastify'
import { jwtVerify } from 'jose'
import type { JWTPayload } from '../../lib/jose-types.js'
import { LRUCache } from 'lru-cache'
import { InvalidTokenError, ServiceUnavailableError } from '../../errors.js'
import { parsedAsWritten } from '../../lib/json-as-written.js'
import type { KeySource } from '../../token/keys.js'
import type { IssuerEntry } from '../../options/issuers.js'
import { decodeStatusList, statusAt, type StatusList } from './decode.js'
import { fetchStatusListToken } from './fetch.js'
import type { ResolvedStatusListOptions } from './options.js'

/** Largest Status List Token body read (compressed lists: 1 MiB holds millions of entries). */
const MAX_TOKEN_BYTES = 1 << 20
/** Largest inflated list: 16 MiB is 134 million 1-bit statuses. */
const MAX_LIST_BYTES = 16 << 20
/** Memory for all cached lists together. */
const MAX_CACHED_BYTES = 64 << 20
/** A list is refreshed in the background once this share of its freshness has passed. */
const REFRESH_AT = 0.75

interface CachedList {
  list: StatusList
  iss: string | undefined
  /** ms after which the list must not be used. */
  staleAt: number
  /** ms after which a use starts a background refresh. */
  refreshAt: number
}

export interface StatusListCheckerOptions {
  statusList: ResolvedStatusListOptions
  /** The one key source; null with `issuers`. */
  keySource: KeySource | null
  /** With `issuers`: each token's list is verified with its own issuer's keys. */
  issuers: readonly Pick<IssuerEntry, 'issuer' | 'keySource'>[] | null
  clockTolerance: number
  retryAfter: number
}

/** What the lists a token points at are held to: whose keys verify them, and where they may be. */
interface ListIssuer {
  /** The issuer whose lists these are; undefined for the one key source without `issuers`. */
  issuer: string | undefined
  keySource: KeySource
  /** Token Status List §5.1: a Status List Token is signed with an asymmetric algorithm. */
  algorithms: string[]
  allowedOrigins: ReadonlySet<string>
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

// The cause is logged once per failed fetch (in load), not with every refused request.
const unavailable = () => new ServiceUnavailableError('Token status is unavailable')

/**
 * IETF Token Status List for access tokens: a token with `status.status_list { idx, uri }`
 * is valid only while its entry in the Status List Token at `uri` is 0x00. Lists are
 * fetched from allowed origins only, one fetch per `uri` at a time, kept per `ttl`/`exp`
 * (capped by `maxAge`) and refreshed in the background before they go stale.
 */
export class StatusListChecker {
  /** Keyed by issuer and uri: a list verified with one issuer's keys never answers for another's token. */
  private readonly lists = new LRUCache<string, CachedList>({ max: 1000, maxSize: MAX_CACHED_BYTES, sizeCalculation: (c) => c.list.bytes.length + 1 })
  private readonly loading = new Map<string, Promise<CachedList>>()
  private readonly failedUntil = new LRUCache<string, number>({ max: 1000 })
  /** Without `issuers`: the one issuer every token's list is held to. */
  private readonly single: ListIssuer | null
  /** With `issuers`: by name, the issuer a verified token's `iss` names. */
  private readonly byIssuer: ReadonlyMap<string, ListIssuer>

  constructor (private readonly options: StatusListCheckerOptions, private readonly log: FastifyBaseLogger) {
    const { allowedOrigins, originsByIssuer } = options.statusList
    const listIssuer = (issuer: string | undefined, keySource: KeySource): ListIssuer => ({
      issuer,
      keySource,
      algorithms: keySource.algorithms.filter((a) => !a.startsWith('HS')),
      allowedOrigins: (issuer === undefined ? undefined : originsByIssuer?.get(issuer)) ?? allowedOrigins,
    })
    this.single = options.issuers === null ? listIssuer(undefined, options.keySource!) : null
    this.byIssuer = new Map((options.issuers ?? []).map((entry) => [entry.issuer, listIssuer(entry.issuer, entry.keySource)]))
  }

  /**
   * The token's status (0 valid), or undefined when it carries no status list reference.
   * Throws 401 for a bad reference, 503 when the list cannot be had.
   */
  statusOf (payload: JWTPayload): Promise<number> | undefined {
    if (payload.status === undefined) return undefined
    if (!isObject(payload.status)) return Promise.reject(new InvalidTokenError('The token has an invalid status claim'))
    const ref = payload.status.status_list
    // Other status mechanisms may sit beside status_list; only this one is known here.
    if (ref === undefined) return undefined
    if (!isObject(ref) || !Number.isSafeInteger(ref.idx) || (ref.idx as number) < 0 || typeof ref.uri !== 'string') {
      return Promise.reject(new InvalidTokenError('The token has an invalid status claim'))
    }
    let url: URL
    try {
      url = new URL(ref.uri)
    } catch {
      return Promise.reject(new InvalidTokenError('The token has an invalid status claim'))
    }
    const iss = typeof payload.iss === 'string' ? payload.iss : undefined
    // Only a verified token gets here: with `issuers`, its `iss` is the entry whose keys verified it.
    const issuer = this.single ?? (iss === undefined ? undefined : this.byIssuer.get(iss))
    if (issuer === undefined) return Promise.reject(new InvalidTokenError('The token has an unexpected issuer'))
    // No request to a place a token names unless the operator allowed it (no SSRF).
    if (!issuer.allowedOrigins.has(url.origin) || url.username !== '' || url.password !== '') {
      return Promise.reject(new InvalidTokenError('The token status list is not at an allowed origin'))
    }
    const idx = ref.idx as number
    return this.listFor(issuer, ref.uri, url).then((cached) => {
      // §5.1: the list's iss equals the token's when the token has one.
      if (iss !== undefined && cached.iss !== iss) throw new InvalidTokenError('The token status list is from another issuer')
      const status = statusAt(cached.list, idx)
      if (status === undefined) throw new InvalidTokenError('The token status index is outside its status list')
      return status
    })
  }

  private listFor (issuer: ListIssuer, uri: string, url: URL): Promise<CachedList> {
    const now = Date.now()
    const key = issuer.issuer === undefined ? uri : JSON.stringify([issuer.issuer, uri])
    const cached = this.lists.get(key)
    if (cached !== undefined && now < cached.staleAt) {
      if (now >= cached.refreshAt && !this.loading.has(key)) this.load(issuer, key, uri, url).catch(() => {})
      return Promise.resolve(cached)
    }
    return this.load(issuer, key, uri, url)
  }

  /** One fetch in flight per issuer and uri; a failure pauses fetches of that list for `retryAfter`. */
  private load (issuer: ListIssuer, key: string, uri: string, url: URL): Promise<CachedList> {
    const inFlight = this.loading.get(key)
    if (inFlight !== undefined) return inFlight
    if (Date.now() < (this.failedUntil.get(key) ?? 0)) return Promise.reject(unavailable())
    const promise = this.fetchAndVerify(issuer, uri, url).then((cached) => {
      this.lists.set(key, cached)
      this.failedUntil.delete(key)
      return cached
    }, (err) => {
      this.failedUntil.set(key, Date.now() + this.options.retryAfter * 1000)
      if ((err as { statusCode?: number }).statusCode === 503) throw err
      this.log.warn({ err, uri, issuer: issuer.issuer }, 'fastify-jwt-revocation: status list could not be fetched or verified')
      throw unavailable()
    }).finally(() => this.loading.delete(key))
    this.loading.set(key, promise)
    return promise
  }

  /** The list at `uri`, verified with `issuer`'s keys alone. */
  private async fetchAndVerify (issuer: ListIssuer, uri: string, url: URL): Promise<CachedList> {
    const fetchedAt = Date.now()
    const jwt = await fetchStatusListToken(url, { timeout: this.options.statusList.timeout, maxBytes: MAX_TOKEN_BYTES, allowedOrigins: [...issuer.allowedOrigins] })
    const { key } = await issuer.keySource.resolve()
    const { payload, protectedHeader } = await jwtVerify(jwt, key, {
      algorithms: issuer.algorithms,
      typ: 'statuslist+jwt',
      subject: uri,
      clockTolerance: this.options.clockTolerance,
      requiredClaims: ['sub', 'iat', 'status_list'],
    })
    const [header, claims] = jwt.split('.') as [string, string]
    if (!parsedAsWritten(Buffer.from(header, 'base64url'), protectedHeader) || !parsedAsWritten(Buffer.from(claims, 'base64url'), payload)) {
      throw new Error('status list token has duplicate or unreadable member names')
    }
    const { ttl, exp } = payload
    if (ttl !== undefined && (typeof ttl !== 'number' || !(ttl > 0))) throw new Error('status list ttl is not a positive number')
    const list = await decodeStatusList(payload.status_list, MAX_LIST_BYTES)
    let freshFor = Math.min(typeof ttl === 'number' ? ttl : Infinity, this.options.statusList.maxAge) * 1000
    if (typeof exp === 'number') freshFor = Math.min(freshFor, exp * 1000 - fetchedAt)
    // A list accepted within clockTolerance of its exp is used for a second, not refetched per request.
    freshFor = Math.max(freshFor, 1000)
    return {
      list,
      iss: typeof payload.iss === 'string' ? payload.iss : undefined,
      staleAt: fetchedAt + freshFor,
      refreshAt: fetchedAt + freshFor * REFRESH_AT,
    }
  }
}
