// `--admin <url> --token <t>`: the commands through a running server's admin routes —
// the way to reach a FileStore that server holds, or any store without its credentials.
import { MAX_BATCH } from '../admin/schemas.js'
import { fetchJson, outboundOrigin, type OutboundResponse } from '../lib/fetch.js'
import type { ChangeAuthor, GrantFilter, HistoryFilter, RevokedToken } from '../stores/types.js'
import { EntriesRefusedError, TargetRefusedError, UsageError } from './failures.js'
import type { GrantView, HistoryPage, RevokedView, Target } from './target.js'

const TIMEOUT = 30_000
/** Largest page GET /revocation-log answers. */
const MAX_TAKE = 100
const MAX_BYTES = 64 << 20

interface Auth0Error { message?: string, errorCode?: string }

export class AdminTarget implements Target {
  readonly batchSize = MAX_BATCH
  // The routes record their token's sub as the actor: a name sent along would be ignored.
  readonly takesActor = false
  readonly describe: string
  private readonly base: string
  private readonly origin: string

  constructor (url: string, private readonly token: string) {
    let origin: string
    try {
      // https, or http on this machine only: the admin token must not cross a network in clear.
      origin = outboundOrigin(url, '--admin')
    } catch (err) {
      throw new UsageError(`${(err as Error).message} (got ${JSON.stringify(url)})`)
    }
    this.origin = origin
    this.base = url.replace(/\/+$/, '')
    this.describe = `admin routes at ${this.base}`
  }

  private async call (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, json?: unknown): Promise<OutboundResponse> {
    const response = await fetchJson(this.base + path, {
      method,
      headers: { authorization: `Bearer ${this.token}` },
      ...(json === undefined ? {} : { json }),
      timeout: TIMEOUT,
      maxBytes: MAX_BYTES,
      allowedOrigins: [this.origin],
    })
    if (response.status < 400 || response.status === 404) return response
    const body = (response.body ?? {}) as Auth0Error
    const why = `${method} ${path.split('?')[0]} answered ${response.status}${body.message ? `: ${body.message}` : ''}`
    if (response.status === 401 || response.status === 403) throw new TargetRefusedError(`${why} (check --token and its scopes)`)
    if (response.status === 400) throw new EntriesRefusedError(body.message ?? why)
    throw new Error(why)
  }

  private notFound (response: OutboundResponse, what: string): void {
    if (response.status === 404 && (response.body as Auth0Error | undefined)?.errorCode !== 'inexistent_client_grant') {
      throw new Error(`${what}: 404 — is ${this.base} the URL of the admin routes (e.g. …/api/v2)?`)
    }
  }

  async revokeTokens (entries: RevokedToken[], author: ChangeAuthor): Promise<void> {
    const tokens = entries.map((e) => ({ aud: e.aud, jti: e.jti, ...(e.expiresAt === null ? {} : { exp: Math.ceil(e.expiresAt / 1000) }) }))
    this.notFound(await this.call('POST', '/blacklists/tokens/batch', { tokens, ...reasonOf(author) }), 'blacklisting')
  }

  async revokeClient (clientId: string, audience: string | undefined, issuer: string | undefined, author: ChangeAuthor): Promise<void> {
    const body = { client_id: clientId, ...(audience === undefined ? {} : { audience }), ...(issuer === undefined ? {} : { issuer }), ...reasonOf(author) }
    this.notFound(await this.call('POST', '/revocations/clients', body), 'revoking the client')
  }

  async revokeSubject (subject: string, issuer: string | undefined, author: ChangeAuthor): Promise<void> {
    this.notFound(await this.call('POST', '/revocations/subjects', { subject, ...(issuer === undefined ? {} : { issuer }), ...reasonOf(author) }), 'revoking the subject')
  }

  /** One page: Auth0's route answers the whole list. */
  async * listRevoked (aud: string | undefined): AsyncIterable<RevokedView[]> {
    const response = await this.call('GET', '/blacklists/tokens' + (aud === undefined ? '' : `?aud=${encodeURIComponent(aud)}`))
    this.notFound(response, 'listing')
    yield response.body as RevokedView[]
  }

  async listGrants (filter: GrantFilter): Promise<GrantView[]> {
    const out: GrantView[] = []
    const query = new URLSearchParams({ per_page: '100', include_totals: 'true' })
    if (filter.client_id !== undefined) query.set('client_id', filter.client_id)
    if (filter.audience !== undefined) query.set('audience', filter.audience)
    for (let page = 0; ; page++) {
      query.set('page', String(page))
      const response = await this.call('GET', `/client-grants?${query}`)
      this.notFound(response, 'listing grants')
      const body = response.body as { total: number, client_grants: GrantView[] }
      out.push(...body.client_grants)
      if (body.client_grants.length === 0 || out.length >= body.total) return out
    }
  }

  async createGrant (input: { client_id: string, audience: string, scope: string[] }, author: ChangeAuthor): Promise<GrantView> {
    const response = await this.call('POST', '/client-grants', { ...input, ...reasonOf(author) })
    this.notFound(response, 'creating the grant')
    return response.body as GrantView
  }

  async updateGrant (id: string, scope: string[], author: ChangeAuthor): Promise<GrantView | null> {
    const response = await this.call('PATCH', `/client-grants/${encodeURIComponent(id)}`, { scope, ...reasonOf(author) })
    this.notFound(response, 'updating the grant')
    return response.status === 404 ? null : response.body as GrantView
  }

  async deleteGrant (id: string, author: ChangeAuthor): Promise<GrantView | null> {
    const path = `/client-grants/${encodeURIComponent(id)}`
    const found = await this.call('GET', path)
    this.notFound(found, 'reading the grant')
    if (found.status === 404) return null
    // DELETE has no body at Auth0: the route takes the reason from the query string.
    const query = author.reason === undefined ? '' : `?${new URLSearchParams({ reason: author.reason })}`
    const response = await this.call('DELETE', path + query)
    return response.status === 404 ? null : found.body as GrantView
  }

  async history (filter: HistoryFilter): Promise<HistoryPage> {
    const query = new URLSearchParams({ take: String(Math.min(filter.limit ?? 50, MAX_TAKE)) })
    const params: Array<[string, string | number | undefined]> = [
      ['from', filter.from], ['since', filter.since], ['until', filter.until], ['aud', filter.aud],
      ['client_id', filter.clientId], ['subject', filter.subject], ['jti', filter.jti],
    ]
    for (const [name, value] of params) if (value !== undefined) query.set(name, String(value))
    const response = await this.call('GET', `/revocation-log?${query}`)
    this.notFound(response, 'reading the revocation log')
    const body = response.body as { entries: HistoryPage['entries'], next?: string }
    return { entries: body.entries, next: body.next ?? null }
  }

  async migrate (): Promise<number> {
    throw new UsageError('migrate works on a store (--store)', 'migrate')
  }

  async purge (): Promise<number> {
    throw new UsageError('purge works on a store (--store): a server drops its own expired entries', 'purge')
  }

  async status (): Promise<Record<string, unknown>> {
    let revokedTokens = 0
    for await (const page of this.listRevoked(undefined)) revokedTokens += page.length
    const response = await this.call('GET', '/client-grants?per_page=1&include_totals=true')
    return { target: this.describe, revokedTokens, grants: (response.body as { total?: number }).total ?? null }
  }

  async close (): Promise<void> {}
}

const reasonOf = (author: ChangeAuthor) => author.reason === undefined ? {} : { reason: author.reason }
