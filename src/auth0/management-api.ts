import { OutboundRequestError } from '../errors.js'
import { fetchJson, type OutboundResponse } from '../lib/fetch.js'

// The two Management API v2 reads the sync needs, and the client-credentials token
// they take. Everything Auth0 answers is checked against its documented shape: an
// answer that is not exactly a blacklist or a complete grant list is an error, never
// an empty list (an empty grant list would delete every mirrored grant).

export interface Auth0BlacklistEntry { aud: string, jti: string }
export interface Auth0Grant { id: string, client_id: string, audience: string, scope: string[], subject_type?: string }

/** Auth0 said 429: nothing may be asked before `retryAt` (ms). */
export class RateLimited extends Error {
  constructor (readonly retryAt: number) {
    super(`Auth0 rate limit reached; waiting until ${new Date(retryAt).toISOString()}`)
  }
}

export interface ManagementApiOptions {
  base: string
  clientId: string
  clientSecret: string
  timeout: number
  signal: AbortSignal
}

const PAGE = 100
const MAX_PAGES = 10_000
const LIST_BYTES = 8 * 1024 * 1024
const TOKEN_BYTES = 64 * 1024
const MAX_WAIT_MS = 3_600_000
const ID = /^[^\u0000]{1,256}$/

export class ManagementApi {
  private token: { value: string, renewAt: number } | null = null
  private readonly origins: string[]

  constructor (private readonly options: ManagementApiOptions) {
    this.origins = [options.base]
  }

  async blacklist (aud: string): Promise<Auth0BlacklistEntry[]> {
    const body = await this.get('/api/v2/blacklists/tokens', { aud })
    if (!Array.isArray(body)) throw malformed('blacklist', 'not an array')
    return body.map((entry: unknown) => {
      const e = entry as Partial<Auth0BlacklistEntry> | null
      if (typeof e !== 'object' || e === null || typeof e.jti !== 'string' || !ID.test(e.jti)) throw malformed('blacklist', 'an entry without a valid jti')
      if (e.aud !== aud) throw malformed('blacklist', 'an entry for another audience')
      return { aud, jti: e.jti }
    })
  }

  /** Every grant for `audience`, through every checkpoint page; throws unless the whole list was read. */
  async clientGrants (audience: string): Promise<Auth0Grant[]> {
    const grants: Auth0Grant[] = []
    const seen = new Set<string>()
    let from: string | undefined
    for (let page = 0; page < MAX_PAGES; page++) {
      const body = await this.get('/api/v2/client-grants', { audience, take: String(PAGE), ...(from === undefined ? {} : { from }) }) as { client_grants?: unknown, next?: unknown } | null
      if (typeof body !== 'object' || body === null || !Array.isArray(body.client_grants)) throw malformed('client grants', 'not a checkpoint page { client_grants, next }')
      for (const grant of body.client_grants) grants.push(checkGrant(grant, audience))
      if (body.next === undefined || body.next === null || body.next === '') return grants
      if (typeof body.next !== 'string' || seen.has(body.next)) throw malformed('client grants', 'a next checkpoint that is invalid or repeats')
      seen.add(body.next)
      from = body.next
    }
    throw malformed('client grants', `more than ${MAX_PAGES} pages`)
  }

  private async get (path: string, query: Record<string, string>, renewed = false): Promise<unknown> {
    const token = await this.accessToken()
    const url = `${this.options.base}${path}?${new URLSearchParams(query).toString()}`
    const response = await fetchJson(url, { headers: { authorization: `Bearer ${token}` }, ...this.bounds(LIST_BYTES) })
    if (response.status === 401 && !renewed) {
      // The token was revoked or rotated early at Auth0: get a new one, once.
      this.token = null
      return this.get(path, query, true)
    }
    checkStatus(response, `GET ${path}`)
    return response.body
  }

  private async accessToken (): Promise<string> {
    const now = Date.now()
    if (this.token !== null && now < this.token.renewAt) return this.token.value
    const response = await fetchJson(`${this.options.base}/oauth/token`, {
      method: 'POST',
      json: {
        grant_type: 'client_credentials',
        client_id: this.options.clientId,
        client_secret: this.options.clientSecret,
        audience: `${this.options.base}/api/v2/`,
      },
      ...this.bounds(TOKEN_BYTES),
    })
    checkStatus(response, 'POST /oauth/token')
    const body = response.body as { access_token?: unknown, expires_in?: unknown } | undefined
    if (typeof body?.access_token !== 'string' || body.access_token.length === 0 || typeof body.expires_in !== 'number' || !(body.expires_in > 0)) {
      throw malformed('token', 'no access_token and expires_in')
    }
    const lifetime = body.expires_in * 1000
    // Renewed shortly before it expires: a tenth of its life, at most five minutes early.
    this.token = { value: body.access_token, renewAt: now + lifetime - Math.min(lifetime / 10, 300_000) }
    return this.token.value
  }

  private bounds (maxBytes: number) {
    return { timeout: this.options.timeout, maxBytes, allowedOrigins: this.origins, signal: this.options.signal }
  }
}

function checkGrant (value: unknown, audience: string): Auth0Grant {
  const g = value as Partial<Auth0Grant> | null
  if (typeof g !== 'object' || g === null || typeof g.id !== 'string' || !ID.test(g.id) || typeof g.client_id !== 'string' || !ID.test(g.client_id)) {
    throw malformed('client grants', 'a grant without a valid id and client_id')
  }
  if (g.audience !== audience) throw malformed('client grants', 'a grant for another audience')
  if (!Array.isArray(g.scope) || g.scope.some((s) => typeof s !== 'string')) throw malformed('client grants', 'a grant whose scope is not a list of strings')
  return { id: g.id, client_id: g.client_id, audience, scope: [...new Set(g.scope)], ...(typeof g.subject_type === 'string' ? { subject_type: g.subject_type } : {}) }
}

function checkStatus (response: OutboundResponse, what: string): void {
  if (response.status === 429) throw new RateLimited(retryAt(response.headers))
  if (response.status < 200 || response.status > 299) {
    // Auth0's error code (a short token such as "access_denied") helps the operator; its free text stays out of logs.
    const code = (response.body as { errorCode?: unknown, error?: unknown } | undefined)
    const tag = [code?.errorCode, code?.error].find((c) => typeof c === 'string' && /^[A-Za-z0-9_ .-]{1,64}$/.test(c))
    throw new OutboundRequestError(`Auth0 ${what} answered ${response.status}${tag === undefined ? '' : ` (${tag as string})`}`)
  }
}

/** When a 429 lifts: `x-ratelimit-reset` (UTC epoch seconds), else `retry-after` (seconds), within an hour. */
function retryAt (headers: Headers): number {
  const now = Date.now()
  const reset = Number(headers.get('x-ratelimit-reset'))
  const after = Number(headers.get('retry-after'))
  let at = Number.isFinite(reset) && reset > 0 ? reset * 1000 : Number.isFinite(after) && after >= 0 ? now + after * 1000 : now + 10_000
  at = Math.max(at, now + 1000)
  return Math.min(at, now + MAX_WAIT_MS)
}

function malformed (what: string, problem: string): Error {
  return new OutboundRequestError(`Auth0 ${what} answer is malformed: ${problem}`)
}
