import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { JSONWebKeySet } from '../../lib/jose-types.js'
import { leewayRule, lifetimeRule, parseDuration, type Duration } from '../../options/duration.js'
import { invalidOption } from '../../errors.js'
import { optionKeys, refuseUnknownKeys, registerOptionKeys } from '../../options/option-keys.js'
import { positiveInteger, stringList } from '../../options/option-values.js'
import { createKeySource, jwksOptionKeys, type RemoteJwksOptions } from '../../token/keys.js'
import { feedScope, requireIssuerScopes } from '../../revocation/issuer-scope.js'
import { LogoutJtiOnce } from './jti-once.js'
import { LogoutRefusal } from './refusal.js'
import { verifyLogoutToken, type LogoutToken, type LogoutTokenPolicy } from './verify-logout-token.js'

export interface BackchannelLogoutOptions {
  /** Route of the back-channel logout endpoint (the client's `backchannel_logout_uri`). Default `'/backchannel-logout'`. */
  path?: string
  /** The OpenID Provider's `iss` (exact string comparison). Required unless `issuerBaseURL` names it through discovery. */
  issuer?: string
  /** This client's identifier(s) as the OP puts them in the Logout Token's `aud` (its `client_id`). */
  audience: string | string[]
  /** The OP's keys: its `jwks_uri`, its issuer URL (OpenID discovery), or a local key set: exactly one. */
  jwksUri?: string | URL
  issuerBaseURL?: string | URL
  jwks?: JSONWebKeySet
  jwksOptions?: RemoteJwksOptions
  /** Allow-list of Logout Token signature algorithms. Default: every asymmetric JWS algorithm. */
  algorithms?: string[]
  /** Oldest Logout Token accepted (by `iat`), also how long its `jti` is remembered: seconds or a duration. Default `'2m'`. */
  maxAge?: Duration
  /** Leeway for `iat`/`exp`, seconds or a duration. Default 0. */
  clockTolerance?: Duration
  /** Largest accepted body, bytes. Default 16384. */
  bodyLimit?: number
}

const FORM = 'application/x-www-form-urlencoded'

const logoutOptionKeys = [...optionKeys<BackchannelLogoutOptions>({
  path: true, issuer: true, audience: true, jwksUri: true, issuerBaseURL: true, jwks: true, jwksOptions: true,
  algorithms: true, maxAge: true, clockTolerance: true, bodyLimit: true,
}), ...registerOptionKeys]

/** The one `logout_token` of a form body (§2.5); none, or two, is a malformed request. */
function logoutTokenOf (body: unknown): string {
  const values = body instanceof URLSearchParams ? body.getAll('logout_token') : []
  if (values.length !== 1) throw new LogoutRefusal('The request must carry exactly one logout_token parameter')
  return values[0]!
}

/**
 * An OpenID Connect Back-Channel Logout 1.0 endpoint on `app.revocation`: a Logout Token
 * that passes §2.6 revokes the session it names (`sid`), or else every token of its
 * subject (`sub`), dated at its `iat`. Register after the plugin.
 */
export async function backchannelLogout (app: FastifyInstance, options: BackchannelLogoutOptions): Promise<void> {
  if (!app.hasDecorator('revocation')) {
    throw invalidOption('backchannelLogout', 'needs fastify-jwt-revocation registered first, in the same or a parent context')
  }
  if (typeof options !== 'object' || options === null) throw invalidOption('backchannelLogout', 'options must be an object')
  refuseUnknownKeys(options, logoutOptionKeys, 'backchannelLogout')
  // The key source checks these too, but its message would name the plugin's own jwksOptions.
  if (typeof options.jwksOptions === 'object' && options.jwksOptions !== null) refuseUnknownKeys(options.jwksOptions, jwksOptionKeys, 'backchannelLogout.jwksOptions')
  const sources = [options.jwksUri, options.issuerBaseURL, options.jwks].filter((s) => s !== undefined)
  if (sources.length !== 1) throw invalidOption('backchannelLogout.jwksUri', 'or issuerBaseURL or jwks: give exactly one')
  if (options.issuer !== undefined || options.issuerBaseURL === undefined) {
    if (typeof options.issuer !== 'string' || options.issuer.length === 0) throw invalidOption('backchannelLogout.issuer', "is required: the OpenID Provider's iss")
  }
  const path = options.path ?? '/backchannel-logout'
  if (typeof path !== 'string' || !path.startsWith('/')) throw invalidOption('backchannelLogout.path', "must start with '/'")

  const revocation = app.revocation
  // A Logout Token naming a session must revoke that session, never be dropped at run time.
  if (!revocation.sessionsSupported) {
    throw invalidOption('backchannelLogout', 'needs a store that keeps session revocations (revokeSession); every built-in store does')
  }
  // With several issuers, one OP's logout must not log out another issuer's user of the same sub or sid.
  requireIssuerScopes(revocation, 'backchannelLogout')
  const scopeOf = (iss: string) => feedScope(revocation, iss)
  const policy: LogoutTokenPolicy = {
    // Only the OP's public keys: the Logout Token's signature proves who sent it.
    keySource: createKeySource({
      jwksUri: options.jwksUri, issuerBaseURL: options.issuerBaseURL, jwks: options.jwks, algorithms: options.algorithms, jwksOptions: options.jwksOptions,
    }, 5000, app.log),
    issuer: options.issuer,
    audiences: stringList(options.audience, 'backchannelLogout.audience'),
    clockTolerance: options.clockTolerance === undefined ? 0 : parseDuration(options.clockTolerance, 'backchannelLogout.clockTolerance', leewayRule),
    maxAge: parseDuration(options.maxAge ?? '2m', 'backchannelLogout.maxAge', lifetimeRule),
  }
  const bodyLimit = positiveInteger(options.bodyLimit, 'backchannelLogout.bodyLimit', 16_384)
  const jtiOnce = new LogoutJtiOnce(revocation.store, app.log)

  /**
   * Revokes first, then claims the `jti`. The revocation is dated at the token's `iat`, so
   * applying the same token twice changes nothing: a replay can only be refused, while an
   * OP's retry after a failed write (503) still logs the user out.
   */
  async function apply (token: LogoutToken, request: FastifyRequest): Promise<void> {
    // Never in the future: an iat ahead of this clock (within the tolerated skew) is dated now.
    const at = Math.min(token.iat * 1000, Date.now())
    const author = { actor: `logout:${token.iss}`, reason: 'OpenID Connect back-channel logout', source: 'logout' } as const
    if (token.sid !== undefined) {
      await revocation.revokeSession(token.sid, { revokedAt: at, ...scopeOf(token.iss) }, author)
    } else {
      await revocation.revokeSubject(token.sub!, { at, ...scopeOf(token.iss) }, author)
    }
    const remembered = Math.min(token.exp, token.iat + policy.maxAge) + policy.clockTolerance + 1
    await jtiOnce.claim(token.iss, token.jti, remembered * 1000)
    request.log.info({ by: token.sid !== undefined ? 'sid' : 'sub' }, 'backchannelLogout: logged out')
  }

  app.register(async (scope) => {
    scope.removeAllContentTypeParsers()
    scope.addContentTypeParser(FORM, { parseAs: 'string', bodyLimit }, (_request, body, done) => done(null, new URLSearchParams(body as string)))
    // Anything else (JSON, no type) is refused before it is read.
    scope.addContentTypeParser('*', (_request, _payload, done) => done(new LogoutRefusal(`The request must be sent as ${FORM}`)))
    // §2.8: neither answer may be cached.
    scope.addHook('onSend', async (_request, reply) => {
      reply.header('cache-control', 'no-store')
    })
    scope.setErrorHandler((err: FastifyError | LogoutRefusal, request: FastifyRequest, reply: FastifyReply) => {
      const refuse = (description: string) => reply.code(400).send({ error: 'invalid_request', error_description: description })
      if (err instanceof LogoutRefusal) {
        request.log.info({ reason: err.message }, 'backchannelLogout: Logout Token refused')
        return refuse(err.message)
      }
      if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return refuse('The request is larger than this endpoint accepts')
      if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' || err.code === 'FST_ERR_CTP_EMPTY_TYPE') return refuse(`The request must be sent as ${FORM}`)
      if (err.statusCode === 503) {
        // Keys or store unreachable: nothing was decided; the OP may retry later.
        request.log.warn({ err }, 'backchannelLogout: cannot process the Logout Token now')
        return reply.code(503).header('retry-after', String(revocation.retryAfter)).send({ error: 'temporarily_unavailable', error_description: 'Logout cannot be processed right now' })
      }
      if ((err.statusCode ?? 500) < 500) return refuse('The request is malformed')
      request.log.error({ err }, 'backchannelLogout: failed to process a Logout Token')
      return reply.code(500).send({ error: 'server_error', error_description: 'Logout failed' })
    })

    // config.auth false: the request is authenticated by the Logout Token's signature,
    // never by an access token.
    scope.post(path, { config: { auth: false } }, async (request, reply) => {
      const token = await verifyLogoutToken(logoutTokenOf(request.body), policy, Math.floor(Date.now() / 1000))
      await apply(token, request)
      return reply.code(200).send()
    })
  })
}
