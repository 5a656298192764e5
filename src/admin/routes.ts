import { Ajv } from 'ajv'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { GrantNotFoundError, invalidOption } from '../errors.js'
import { optionKeys, refuseUnknownKeys, registerOptionKeys } from '../options/option-keys.js'
import { MAX_TOKEN_PAGE, revokedTokenPages } from '../stores/token-pages.js'
import { grantMethods, type ChangeAuthor, type ClientGrant } from '../stores/types.js'
import { auth0ErrorHandler } from './auth0-errors.js'
import { checkpointPage, compareGrants, offsetPage } from './pagination.js'
import { LOG_SCOPE, revocationLogRoute } from './revocation-log.js'
import * as schemas from './schemas.js'

export interface AdminRoutesOptions {
  /**
   * Audience that admin tokens must carry (Auth0: `https://<tenant>/api/v2/`). It must
   * be one of the plugin's audiences; tokens for the API itself cannot call these routes.
   */
  audience: string
  /** Largest request body, bytes. Default 16384. */
  bodyLimit?: number
  /**
   * First-run step for `grants: true`, where these routes' own client needs a grant like
   * any other: when the store holds no grant for `audience` at startup, one is created for
   * this client with every admin scope. Never when one exists, so a deliberate change stays.
   */
  bootstrapClientId?: string
}

const adminOptionKeys = [...optionKeys<AdminRoutesOptions>({ audience: true, bodyLimit: true, bootstrapClientId: true }), ...registerOptionKeys]

const GRANT_SCOPES = ['create:client_grants', 'read:client_grants', 'update:client_grants', 'delete:client_grants'] as const
const ADMIN_SCOPES = ['blacklist:tokens', ...GRANT_SCOPES, LOG_SCOPE]

/**
 * Who made a change through these routes: the admin token's `sub` (its client when it has
 * none), never a name from the body, so an admin cannot write another's name in the log.
 */
function adminAuthor (request: FastifyRequest, reason: string | undefined): ChangeAuthor {
  return { actor: request.auth?.subject ?? request.auth?.clientId ?? undefined, reason, source: 'admin' }
}

const grantView = (g: ClientGrant) => ({ id: g.id, client_id: g.client_id, audience: g.audience, scope: g.scope })

interface GrantQuery {
  audience?: string
  client_id?: string
  page?: number
  per_page?: number
  include_totals?: boolean
  from?: string
  take?: number
  allow_any_organization?: boolean
  subject_type?: 'client' | 'user'
  default_for?: 'third_party_clients'
}

/**
 * Auth0's other filters, answered for the grants kept here: every one is a
 * machine-to-machine (`client`) grant, bound to no organization and default for none.
 */
function grantsMatching (grants: ClientGrant[], q: GrantQuery): ClientGrant[] {
  if (q.allow_any_organization === true || q.subject_type === 'user' || q.default_for !== undefined) return []
  return grants
}

async function adminRoutesPlugin (app: FastifyInstance, options: AdminRoutesOptions): Promise<void> {
  if (!app.hasDecorator('revocation')) {
    throw invalidOption('adminRoutes', 'needs fastify-jwt-revocation registered first, in the same or a parent context')
  }
  refuseUnknownKeys(options ?? {}, adminOptionKeys, 'adminRoutes')
  if (typeof options?.audience !== 'string' || options.audience.length === 0) {
    throw invalidOption('adminRoutes.audience', 'is required: the audience admin tokens are issued for')
  }
  const revocation = app.revocation
  const missing = grantMethods.filter((m) => typeof revocation.store[m] !== 'function')
  if (missing.length > 0) throw invalidOption('adminRoutes', `needs a store with client grants; this store lacks ${missing.join(', ')}()`)
  if (options.bootstrapClientId !== undefined) {
    if (typeof options.bootstrapClientId !== 'string' || options.bootstrapClientId.length === 0) {
      throw invalidOption('adminRoutes.bootstrapClientId', 'must be the client id of the admin client')
    }
    bootstrapAdminGrant(app, options.audience, options.bootstrapClientId)
  }
  const bodyLimit = options.bodyLimit ?? 16_384
  const auth = (scope: string) => ({ auth: { scopes: [scope], audience: options.audience } })

  // Bodies are validated strictly (no coercion, unknown properties refused), as
  // Auth0 does; query strings and params are text, so they are coerced.
  const strict = new Ajv({ coerceTypes: false, removeAdditional: false, useDefaults: true, strict: false })
  const coercing = new Ajv({ coerceTypes: true, removeAdditional: false, useDefaults: true, strict: false })
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? strict : coercing).compile(schema))
  app.setErrorHandler(auth0ErrorHandler(revocation.retryAfter))
  app.setNotFoundHandler((_request, reply) => {
    reply.code(404).send({ statusCode: 404, error: 'Not Found', message: 'Not Found', errorCode: 'not_found' })
  })

  app.post<{ Body: { aud?: string, jti: string, reason?: string } }>('/blacklists/tokens', { schema: schemas.postBlacklist, config: auth('blacklist:tokens'), bodyLimit }, async (request, reply) => {
    const aud = request.body.aud
    await revocation.revokeToken(aud === undefined ? { jti: request.body.jti } : { jti: request.body.jti, aud }, adminAuthor(request, request.body.reason))
    return reply.code(204).send()
  })

  app.get<{ Querystring: { aud?: string } }>('/blacklists/tokens', { schema: schemas.getBlacklist, config: auth('blacklist:tokens') }, async (request) => {
    // Auth0's answer is the whole list (its paging parameters are ignored), built here page
    // by page: only the (aud, jti) pairs are held, not every page's full entries at once.
    const filter = request.query.aud === undefined ? {} : { aud: request.query.aud }
    const listed: Array<{ aud: string, jti: string }> = []
    for await (const page of revokedTokenPages(revocation, filter, MAX_TOKEN_PAGE)) for (const e of page) listed.push({ aud: e.aud, jti: e.jti })
    return listed
  })

  // Beyond Auth0's API, for the command line and the console; same scopes as their nearest Auth0 route.
  app.post<{ Body: { tokens: Array<{ aud?: string, jti: string, exp?: number }>, reason?: string } }>('/blacklists/tokens/batch', {
    schema: schemas.postBlacklistBatch, config: auth('blacklist:tokens'), bodyLimit: Math.max(bodyLimit, 1 << 20),
  }, async (request) => {
    await revocation.revokeTokens(request.body.tokens, adminAuthor(request, request.body.reason))
    return { revoked: request.body.tokens.length }
  })

  app.post<{ Body: { client_id: string, audience?: string, issuer?: string, reason?: string } }>('/revocations/clients', { schema: schemas.postClientRevocation, config: auth(GRANT_SCOPES[3]), bodyLimit }, async (request, reply) => {
    const { client_id: clientId, audience, issuer } = request.body
    await revocation.revokeClient(clientId, { ...(audience === undefined ? {} : { audience }), ...(issuer === undefined ? {} : { issuer }) }, adminAuthor(request, request.body.reason))
    return reply.code(204).send()
  })

  app.post<{ Body: { subject: string, issuer?: string, reason?: string } }>('/revocations/subjects', { schema: schemas.postSubjectRevocation, config: auth('blacklist:tokens'), bodyLimit }, async (request, reply) => {
    const { subject, issuer } = request.body
    await revocation.revokeSubject(subject, issuer === undefined ? {} : { issuer }, adminAuthor(request, request.body.reason))
    return reply.code(204).send()
  })

  app.get<{ Querystring: GrantQuery }>('/client-grants', { schema: schemas.getGrants, config: auth(GRANT_SCOPES[1]) }, async (request, reply) => {
    const q = request.query
    const all = grantsMatching(await revocation.listGrants({
      ...(q.audience === undefined ? {} : { audience: q.audience }),
      ...(q.client_id === undefined ? {} : { client_id: q.client_id }),
    }), q).sort(compareGrants)
    if (q.from !== undefined || q.take !== undefined) {
      // Checkpoint pagination, as today's SDKs use; Auth0 ignores include_totals with it.
      const page = checkpointPage(all, q.from, q.take ?? 50)
      if (page === undefined) {
        return reply.code(400).send({ statusCode: 400, error: 'Bad Request', message: 'Invalid checkpoint: use the next of the previous page', errorCode: 'invalid_query_string' })
      }
      return { client_grants: page.items.map(grantView), ...(page.next === undefined ? {} : { next: page.next }) }
    }
    const perPage = q.per_page ?? 50
    const { start, items } = offsetPage(all, q.page ?? 0, perPage)
    const slice = items.map(grantView)
    return q.include_totals === true ? { start, limit: perPage, total: all.length, client_grants: slice } : slice
  })

  app.get<{ Params: { id: string } }>('/client-grants/:id', { schema: schemas.getGrant, config: auth(GRANT_SCOPES[1]) }, async (request) => {
    const grant = await revocation.getGrant(request.params.id)
    if (grant === null) throw new GrantNotFoundError()
    return grantView(grant)
  })

  app.post<{ Body: { client_id: string, audience: string, scope: string[], reason?: string } }>('/client-grants', { schema: schemas.postGrant, config: auth(GRANT_SCOPES[0]), bodyLimit }, async (request, reply) => {
    const { reason, ...input } = request.body
    const created = await revocation.createGrant(input, adminAuthor(request, reason))
    reply.code(201)
    return grantView(created)
  })

  app.patch<{ Params: { id: string }, Body: { scope: string[], reason?: string } }>('/client-grants/:id', { schema: schemas.patchGrant, config: auth(GRANT_SCOPES[2]), bodyLimit }, async (request) => {
    return grantView(await revocation.updateGrant(request.params.id, request.body.scope, adminAuthor(request, request.body.reason)))
  })

  app.delete<{ Params: { id: string }, Querystring: { reason?: string } }>('/client-grants/:id', { schema: schemas.deleteGrant, config: auth(GRANT_SCOPES[3]) }, async (request, reply) => {
    await revocation.deleteGrant(request.params.id, {}, adminAuthor(request, request.query.reason))
    return reply.code(204).send()
  })

  revocationLogRoute(app, options.audience)
}

/**
 * Creates the admin client's grant once the app is ready, when the store has none for the
 * admin audience. A store down at startup does not stop the app: tried again every
 * `retryAfter` seconds until it answers.
 */
function bootstrapAdminGrant (app: FastifyInstance, audience: string, clientId: string): void {
  const revocation = app.revocation
  let timer: NodeJS.Timeout | undefined
  let closed = false
  const attempt = async (): Promise<void> => {
    try {
      if ((await revocation.listGrants({ audience })).length > 0) return
      await revocation.createGrant({ client_id: clientId, audience, scope: ADMIN_SCOPES }, { actor: 'admin-routes', reason: 'first run: the admin client\'s grant (bootstrapClientId)', source: 'admin' })
      app.log.info({ clientId, audience }, 'fastify-jwt-revocation: created the admin client\'s grant (bootstrapClientId)')
    } catch (err) {
      // Another instance created it first: done.
      if ((err as { code?: string }).code === 'FST_JWT_REVOCATION_GRANT_CONFLICT') return
      app.log.warn({ err }, 'fastify-jwt-revocation: could not create the admin client\'s grant yet; retrying')
      if (!closed) {
        timer = setTimeout(() => { void attempt() }, revocation.retryAfter * 1000)
        timer.unref()
      }
    }
  }
  app.addHook('onReady', attempt)
  app.addHook('onClose', async () => {
    closed = true
    clearTimeout(timer)
  })
}

/**
 * Auth0 Management API v2-shaped admin routes over `app.revocation`:
 * `app.register(adminRoutes, { prefix: '/api/v2', audience: 'https://api.example/api/v2/' })`.
 */
export const adminRoutes = fp(adminRoutesPlugin, {
  fastify: '5.x',
  name: 'fastify-jwt-revocation-admin',
  dependencies: ['fastify-jwt-revocation'],
  encapsulate: true,
})
