import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import fp from 'fastify-plugin'
import type { JWTHeaderParameters, JWTPayload } from './lib/jose-types.js'
import { Authenticator } from './request/authenticator.js'
import { SenderBinding, type ProvenBinding } from './binding/sender.js'
import { challenge, type AuthScheme } from './request/challenge.js'
import { InsufficientScopeError, InvalidOptionError, InvalidTokenError, RouteMisconfiguredError } from './errors.js'
import { checkTokenCharacters, checkTokenShape, extractBearerToken } from './request/extract.js'
import { Metrics } from './ops/metrics.js'
import { sendOutageAnswer } from './request/outage-reply.js'
import { resolveOptions, type JwtRevocationOptions } from './options/options.js'
import { HealthReporter } from './ops/health.js'
import { Revocation } from './revocation/revocation.js'
import { tokenIntrospection } from './sources/introspection/issuer-introspectors.js'
import { serveResourceMetadata } from './ops/resource-metadata.js'
import { stepUpShortfall } from './request/step-up.js'
import { routePolicy, type RouteAuthConfig, type RouteContext, type RoutePolicy } from './request/route-policy.js'
import { StoreConnection } from './revocation/store-connection.js'
import { FeedMonitor } from './revocation/feed-status.js'
import { StoreGuard } from './revocation/store-guard.js'
import { TokenCache, type TokenRecord } from './request/token-cache.js'

/**
 * `request.auth` on a protected route. `header`, `payload` and `scopes` are shared by
 * every request carrying the same token (they come from the verified-token cache):
 * read them, never modify them (`header` and `scopes` are frozen).
 */
export interface AuthContext {
  /** The raw token, for forwarding to another API; never log it. */
  token: string
  header: JWTHeaderParameters
  payload: JWTPayload
  /**
   * The issuer that vouched for the token: its verified `iss` (with `issuers`, the entry
   * whose keys verified it; without, whatever `iss` the token carries, null if none).
   */
  issuer: string | null
  clientId: string | null
  subject: string | null
  /** The token's scopes (`scope` and `permissions`), narrowed to the client grant's when `grants: true`. */
  scopes: string[]
  /** How this request proved the key the token is bound to: a DPoP proof, a client certificate, or nothing (a plain bearer token). */
  binding: ProvenBinding
  /** The token's `cnf` claim (RFC 7800), or null. */
  confirmation: Record<string, unknown> | null
  /** The token's `acr` claim: how the user authenticated (RFC 9470); null when absent or not a string. */
  acr: string | null
  /** The token's `auth_time` claim: when the user authenticated, in seconds since the epoch; null when absent or not a number. */
  authTime: number | null
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The verified token on a protected route; null on an open one. */
    auth: AuthContext | null
  }
  interface FastifyInstance {
    revocation: Revocation
  }
  interface FastifyContextConfig {
    auth?: RouteAuthConfig
  }
}

interface HttpError extends Error { code?: string, statusCode?: number }

async function jwtRevocationPlugin (fastify: FastifyInstance, opts: JwtRevocationOptions): Promise<void> {
  if (fastify.hasDecorator('revocation')) {
    throw new InvalidOptionError('fastify-jwt-revocation is already registered in this context; register each instance in its own encapsulated context')
  }
  const options = resolveOptions(opts, fastify.log)
  const cache = options.cache === false ? null : new TokenCache(options.cache.max)
  const metrics = new Metrics()
  const guard = new StoreGuard(options, fastify.log)
  const feed = new FeedMonitor((reason) => metrics.cacheReset(reason))
  const health = new HealthReporter({
    store: options.store, guard, audience: options.audiences[0]!, keySource: options.keySource, issuers: options.issuers, feedStatus: () => feed.status(),
  })
  const revocation = new Revocation(options, cache, guard, fastify.log, metrics, health, feed)
  const senders = new SenderBinding(options, guard, fastify.log)
  const authenticator = new Authenticator(options, cache, revocation, metrics, senders)
  const introspector = tokenIntrospection(options, cache, revocation, fastify.log)
  const dpopDefault = options.dpop === null ? 'off' : options.dpop.required ? 'required' : 'on'
  const retryAfter = String(options.retryAfter)

  const connection = new StoreConnection(options.store, guard, {
    timeout: options.storeTimeout, retryAfter: options.retryAfter, log: fastify.log, feed, onChange: (change) => revocation.invalidate(change),
  })
  await connection.open()
  // preClose runs before every onClose hook: the feed lets go of the user's pool
  // client before a `pool.end()` of theirs waits for it, whatever order they were added in.
  fastify.addHook('preClose', () => connection.stopFeed())
  fastify.addHook('onClose', () => connection.close())

  fastify.decorate('revocation', revocation)
  if (!fastify.hasRequestDecorator('auth')) fastify.decorateRequest('auth', null)

  function fail (reply: FastifyReply, err: HttpError, policy: RoutePolicy, done: HookHandlerDoneFunction, scheme: AuthScheme = 'Bearer'): void {
    const code = err.code ?? ''
    metrics.refused(err.code, err.cause !== undefined)
    if (!code.startsWith('FST_JWT_REVOCATION_')) {
      // A bug or a throwing custom extractToken: log it, answer without its details.
      reply.log.error({ err }, 'fastify-jwt-revocation: unexpected error while authenticating')
      const refused = new InvalidTokenError('The token could not be verified')
      reply.header('www-authenticate', challenge(options.realm, refused.code, refused.message, policy.challenge, senders.dpopAlgs, scheme))
      return done(refused)
    }
    if (err.statusCode === 503) {
      reply.header('retry-after', retryAfter)
      if (err.cause !== undefined) reply.log.warn({ err: err.cause }, 'fastify-jwt-revocation: key source unreachable')
      if (sendOutageAnswer(reply, { code, message: err.message })) return
    } else {
      reply.header('www-authenticate', challenge(options.realm, code, err.message, policy.challenge, senders.dpopAlgs, scheme))
    }
    done(err)
  }

  function admit (request: FastifyRequest, reply: FastifyReply, token: string, record: TokenRecord, policy: RoutePolicy, done: HookHandlerDoneFunction, binding: ProvenBinding): void {
    if (policy.dpopRequired && binding !== 'dpop') {
      // Only a request with the Bearer scheme gets here: a DPoP request's binding is 'dpop'.
      return fail(reply, new InvalidTokenError('This route requires a DPoP-bound token'), policy, done)
    }
    if (policy.audience !== undefined && !record.audiences.includes(policy.audience)) {
      return fail(reply, new InvalidTokenError('The token has an unexpected audience'), policy, done)
    }
    // Before the scopes: a 401 step-up challenge names the route's scopes too, so a
    // token short of both is answered with everything the client must ask for.
    if (policy.stepUp !== null) {
      const shortfall = stepUpShortfall(policy.stepUp, record, options.clockTolerance)
      if (shortfall !== undefined) return fail(reply, shortfall, policy, done)
    }
    for (const scope of policy.scopes) {
      if (!record.scopes.includes(scope)) return fail(reply, new InsufficientScopeError(), policy, done)
    }
    request.auth = {
      token,
      header: record.header,
      payload: record.payload,
      issuer: typeof record.payload.iss === 'string' ? record.payload.iss : null,
      clientId: record.clientId,
      subject: record.subject,
      scopes: record.scopes,
      binding,
      confirmation: record.confirmation,
      acr: record.acr,
      authTime: record.authTime,
    }
    metrics.accepted()
    done()
  }

  const routeContext: RouteContext = {
    metadataUrl: options.resourceMetadata?.urlFor, introspection: introspector !== null, dpop: dpopDefault, acr: options.acr, maxAge: options.maxAge,
  }
  // The route's policy, computed once per route from `config.auth` and kept with
  // the route's own config object, so the hit path pays one WeakMap lookup.
  const policies = new WeakMap<object, RoutePolicy | null | Error>()
  const noConfig = {}
  function policyOf (request: FastifyRequest): RoutePolicy | null | Error {
    const config = request.routeOptions.config ?? noConfig
    let policy = policies.get(config)
    if (policy === undefined) {
      try {
        policy = routePolicy((config as { auth?: unknown }).auth, options.global, options.audiences, request.routeOptions.url ?? '(not found handler)', routeContext)
      } catch (err) {
        // Only a route declared before the plugin ran can get here (later ones
        // are refused when added): refuse its requests rather than open it.
        policy = err as Error
        request.log.error({ err }, 'fastify-jwt-revocation: route refused: its config.auth is invalid')
      }
      policies.set(config, policy)
    }
    return policy
  }

  /** A request with the DPoP scheme: proof, token and binding, then the issuer where the route asks it. */
  function authenticateDpop (request: FastifyRequest, reply: FastifyReply, policy: RoutePolicy): Promise<{ token: string, record: TokenRecord }> {
    const authenticated = authenticator.authenticateDpop(request, reply)
    if (introspector === null) return authenticated
    return authenticated.then(async ({ token, record }) => ({ token, record: await introspector.confirm(token, record, policy) }))
  }

  // One hook at the plugin's level (fastify-plugin lifts it to the registering
  // context) covers every route of that context and its children, whenever the
  // route was declared: before the plugin, without `await`, in `after()`, or in
  // a child plugin. Protection never depends on registration order.
  fastify.addHook('onRequest', function authenticateRequest (request, reply, done) {
    const policy = policyOf(request)
    if (policy === null) return done()
    if (policy instanceof Error) return done(new RouteMisconfiguredError())
    const fromHeader = options.extractToken === undefined
    if (fromHeader && senders.takesDpop(request)) {
      // The DPoP scheme, told apart before any Bearer extraction: no error is made to find it.
      authenticateDpop(request, reply, policy).then(
        ({ token, record }) => admit(request, reply, token, record, policy, done, 'dpop'),
        (err: HttpError) => fail(reply, err, policy, done, 'DPoP'))
      return
    }
    let result: TokenRecord | Promise<TokenRecord>
    let token: string
    try {
      token = fromHeader
        ? extractBearerToken(request, options.maxTokenSize)
        : checkTokenShape(options.extractToken!(request), options.maxTokenSize)
      // A hit is the very token verified before: its characters passed then.
      const key = authenticator.cacheKey(token)
      const cached = authenticator.cached(key)
      if (cached === undefined) {
        const compactShape = checkTokenCharacters(token, fromHeader)
        result = introspector?.isOpaque(compactShape) === true ? introspector.admitOpaque(token, key) : authenticator.verifyAndCheck(token, key, request, compactShape)
      } else {
        result = authenticator.recheck(cached, request)
      }
      if (introspector !== null) result = introspector.confirm(token, result, policy)
    } catch (err) {
      return fail(reply, err as HttpError, policy, done)
    }
    // A hit with a fresh revocation status is answered here, without a promise.
    if (result instanceof Promise) {
      result.then(
        (record) => admit(request, reply, token, record, policy, done, record.binding === null ? null : 'mtls'),
        (err: HttpError) => fail(reply, err, policy, done))
    } else {
      admit(request, reply, token, result, policy, done, result.binding === null ? null : 'mtls')
    }
  })

  // Routes added from here on have their config.auth checked as they are
  // added, so a mistake fails boot naming the route.
  fastify.addHook('onRoute', (route) => {
    routePolicy(route.config?.auth, options.global, options.audiences, route.url, routeContext)
  })
  if (options.resourceMetadata !== null) {
    serveResourceMetadata(fastify, { metadata: options.resourceMetadata, issuers: options.issuers?.map((entry) => entry.issuer) ?? options.issuer, keySource: options.keySource, global: options.global, audiences: options.audiences, dpop: options.dpop, mtls: options.mtls })
  }
}

export type { JwtRevocationOptions, RouteAuthConfig }

/** The plugin, wrapped with fastify-plugin so its decorators and hooks reach the routes of the app that registers it. */
export const jwtRevocation = fp(jwtRevocationPlugin, { fastify: '5.x', name: 'fastify-jwt-revocation' })
