// An Auth0 tenant stand-in, written from Auth0's documented shapes (and recordings of
// real tenants): the client-credentials token endpoint, GET /api/v2/blacklists/tokens
// (an array; Auth0 ignores paging parameters there) and GET /api/v2/client-grants with
// checkpoint pagination ({ client_grants, next }, take ≤ 100). It can rate-limit (429
// with x-ratelimit-* headers), be down (503) or answer garbage, and hold an answer back
// to make a race with a sync in flight deterministic. Local node:http only.
import { randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface StandInGrant { id: string, client_id: string, audience: string, scope: string[], subject_type?: string }

export type Fault =
  | { kind: 'down' }
  | { kind: 'garbage', body: string }
  | { kind: 'rate-limited', resetAt: number }

export class Auth0StandIn {
  readonly clientId = 'sync-client'
  readonly clientSecret = 'sync-secret-' + randomBytes(8).toString('hex')
  readonly blacklist: Array<{ aud: string, jti: string }> = []
  grants: StandInGrant[] = []
  /** Requests by path, e.g. `POST /oauth/token`, `GET /api/v2/client-grants`. */
  readonly hits = new Map<string, number>()
  /** Seconds an access token lives. */
  tokenLifetime = 86_400
  /** Applies to every request until cleared (`fault = null`). */
  fault: Fault | null = null
  /** Faults for the next requests to one path, in order; null answers that request normally. */
  readonly faultsFor = new Map<string, Array<Fault | null>>()
  private readonly held = new Map<string, HeldAnswer[]>()
  private readonly accessTokens = new Map<string, number>()
  private readonly server = createServer((req, res) => { this.handle(req, res).catch(() => { res.statusCode = 500; res.end() }) })
  url = ''

  async start (): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve))
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`
    return this
  }

  async stop (): Promise<void> {
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }

  count (key: string): number {
    return this.hits.get(key) ?? 0
  }

  /** Every access token issued so far stops working (as when the application's secret is rotated). */
  revokeAccessTokens (): void {
    this.accessTokens.clear()
  }

  addGrant (client_id: string, audience: string, scope: string[]): StandInGrant {
    const grant = { id: 'cgr_' + randomBytes(8).toString('hex'), client_id, audience, scope }
    this.grants.push(grant)
    return grant
  }

  deleteGrant (id: string): void {
    this.grants = this.grants.filter((g) => g.id !== id)
  }

  /**
   * Holds back the answer to the next request to `key` (e.g. `GET /api/v2/client-grants`):
   * the answer is what the tenant held when the request arrived, sent on `release()`.
   * `arrived` resolves once that request is in, so a test can act while the read is in flight.
   */
  hold (key: string): HeldAnswer {
    const answer = new HeldAnswer()
    this.held.set(key, [...(this.held.get(key) ?? []), answer])
    return answer
  }

  private async handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url)
    const key = `${req.method} ${url.pathname}`
    this.hits.set(key, this.count(key) + 1)
    const held = this.held.get(key)?.shift()
    if (held !== undefined) held.holdBack(res)
    const queued = this.faultsFor.get(key)?.shift()
    const fault = queued === undefined ? this.fault : queued
    if (fault !== null && this.answerFault(fault, res)) return

    if (key === 'POST /oauth/token') return this.token(req, res)
    const auth = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')
    const expires = auth === null ? undefined : this.accessTokens.get(auth[1]!)
    if (expires === undefined || expires <= Date.now()) return error(res, 401, 'Unauthorized', 'Invalid token')

    if (key === 'GET /api/v2/blacklists/tokens') {
      const aud = url.searchParams.get('aud')
      return json(res, 200, this.blacklist.filter((e) => aud === null || e.aud === aud))
    }
    if (key === 'GET /api/v2/client-grants') {
      const audience = url.searchParams.get('audience')
      const all = this.grants.filter((g) => audience === null || g.audience === audience)
      const take = url.searchParams.get('take')
      const from = url.searchParams.get('from')
      if (take === null && from === null) return json(res, 200, all.slice(0, 50))
      const n = take === null ? 50 : Number(take)
      if (!Number.isInteger(n) || n < 1 || n > 100) return error(res, 400, 'Bad Request', 'Query validation error: take', 'invalid_query_string')
      const start = from === null ? 0 : all.findIndex((g) => g.id === from)
      if (start === -1) return error(res, 400, 'Bad Request', 'Invalid from', 'invalid_query_string')
      const page = all.slice(start, start + n)
      const next = all[start + n]
      return json(res, 200, next === undefined ? { client_grants: page } : { client_grants: page, next: next.id })
    }
    return error(res, 404, 'Not Found', 'Not Found')
  }

  private async token (req: IncomingMessage, res: ServerResponse): Promise<void> {
    let raw = ''
    for await (const chunk of req) raw += chunk
    const body = (req.headers['content-type'] ?? '').includes('json') ? JSON.parse(raw) : Object.fromEntries(new URLSearchParams(raw))
    if (body.grant_type !== 'client_credentials') return json(res, 403, { error: 'unsupported_grant_type', error_description: 'Grant type not allowed' })
    if (body.client_id !== this.clientId || body.client_secret !== this.clientSecret) return json(res, 401, { error: 'access_denied', error_description: 'Unauthorized' })
    if (body.audience !== `${this.url}/api/v2/`) return json(res, 403, { error: 'access_denied', error_description: 'Service not enabled within domain' })
    const accessToken = randomBytes(24).toString('base64url')
    this.accessTokens.set(accessToken, Date.now() + this.tokenLifetime * 1000)
    return json(res, 200, { access_token: accessToken, scope: 'read:client_grants blacklist:tokens', expires_in: this.tokenLifetime, token_type: 'Bearer' })
  }

  private answerFault (fault: Fault, res: ServerResponse): boolean {
    if (fault.kind === 'down') {
      error(res, 503, 'Service Unavailable', 'Service Unavailable')
      return true
    }
    if (fault.kind === 'garbage') {
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' })
      res.end(fault.body)
      return true
    }
    if (Date.now() >= fault.resetAt) return false
    res.writeHead(429, {
      'content-type': 'application/json; charset=utf-8',
      'x-ratelimit-limit': '2',
      'x-ratelimit-remaining': '0',
      'x-ratelimit-reset': String(Math.ceil(fault.resetAt / 1000)),
    })
    res.end(JSON.stringify({ statusCode: 429, error: 'Too Many Requests', message: 'Global limit has been reached', errorCode: 'too_many_requests' }))
    return true
  }
}

/** An answer the stand-in holds back until the test releases it (see `Auth0StandIn.hold`). */
export class HeldAnswer {
  /** Resolves once the request is in: the read is then in flight. */
  readonly arrived: Promise<void>
  private arrive!: () => void
  private readonly released: Promise<void>
  private resolveRelease!: () => void

  constructor () {
    this.arrived = new Promise((resolve) => { this.arrive = resolve })
    this.released = new Promise((resolve) => { this.resolveRelease = resolve })
  }

  release (): void {
    this.resolveRelease()
  }

  /** The answer is written now (from the tenant as it is now) and reaches the wire once released. */
  holdBack (res: ServerResponse): void {
    const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse
    res.end = ((...args: unknown[]) => {
      this.released.then(() => end(...args), () => {})
      return res
    }) as typeof res.end
    this.arrive()
  }
}

function json (res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' })
  res.end(JSON.stringify(body))
}

function error (res: ServerResponse, status: number, error: string, message: string, errorCode?: string): void {
  json(res, status, { statusCode: status, error, message, ...(errorCode === undefined ? {} : { errorCode }) })
}

/**
 * Lets real I/O progress while fake timers stand still, until `done()`. Bounded by at least
 * `turns` event-loop turns and, for a loaded machine where real I/O takes longer than those
 * turns, by 10 s of real time (`performance.now()`, which the tests' fake timers leave alone):
 * a stuck condition still fails the test.
 */
export async function until (done: () => boolean | Promise<boolean>, turns = 50_000): Promise<boolean> {
  const deadline = performance.now() + 10_000
  for (let i = 0; i < turns || (turns > 2_000 && performance.now() < deadline); i++) {
    if (await done()) return true
    await new Promise((resolve) => setImmediate(resolve))
  }
  return done()
}

/** Gives a request that should not happen the chance to reach the tenant, for a negative check. */
export const settle = (): Promise<boolean> => until(() => false, 2_000)
