import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { JSONWebKeySet } from '../../lib/jose-types.js'
import { LRUCache } from 'lru-cache'
import { createHash, timingSafeEqual } from 'node:crypto'
import { leewayRule, lifetimeRule, parseDuration, type Duration } from '../../options/duration.js'
import { invalidOption } from '../../errors.js'
import { optionKeys, refuseUnknownKeys, registerOptionKeys } from '../../options/option-keys.js'
import { positiveInteger, stringList } from '../../options/option-values.js'
import { createKeySource, jwksOptionKeys, type RemoteJwksOptions } from '../../token/keys.js'
import { feedScope, requireIssuerScopes } from '../../revocation/issuer-scope.js'
import { revokingEvents, subjectsOf, type ResolveSubject, type SubjectPolicy } from './events.js'
import { SetRefusal } from './refusal.js'
import { verifySecurityEventToken, type SetPolicy } from './verify-set.js'

export interface SsfReceiverOptions {
  /** Route of the push endpoint. Default `'/ssf/events'`. */
  path?: string
  /** The transmitter's `iss` (exact string comparison). */
  issuer: string
  /** This receiver's identifier(s) as the transmitter puts them in `aud`. */
  audience: string | string[]
  /** The transmitter's JWKS (its `jwks_uri`), or a local key set: exactly one. */
  jwksUri?: string | URL
  jwks?: JSONWebKeySet
  jwksOptions?: RemoteJwksOptions
  /** Allow-list of SET signature algorithms. Default: every asymmetric JWS algorithm. */
  algorithms?: string[]
  /**
   * The exact `Authorization` header value the transmitter must send (the SSF stream's
   * `authorization_header`, e.g. `'Bearer <secret>'`). Default: none required.
   */
  authorizationHeader?: string
  /**
   * `iss` values of `iss_sub` subject identifiers that name this API's token subjects.
   * Default: the plugin's `issuer`, else this receiver's `issuer`.
   */
  tokenIssuer?: string | string[]
  /** Maps a subject identifier of another format to token subjects (`sub`); unresolved ones are logged and ignored. */
  resolveSubject?: ResolveSubject
  /** Oldest SET accepted, also how long a `jti` is remembered against replay: seconds or a duration string. Default `'1d'`. */
  maxAge?: Duration
  /** Leeway for `iat`/`exp`, seconds or a duration. Default 0. */
  clockTolerance?: Duration
  /** Largest accepted body, bytes. Default 65536. */
  bodyLimit?: number
  /** Most `jti`s remembered against replay. Default 100000. */
  maxRemembered?: number
}

const CONTENT_TYPE = 'application/secevent+jwt'

const receiverOptionKeys = [...optionKeys<SsfReceiverOptions>({
  path: true, issuer: true, audience: true, jwksUri: true, jwks: true, jwksOptions: true, algorithms: true,
  authorizationHeader: true, tokenIssuer: true, resolveSubject: true, maxAge: true, clockTolerance: true,
  bodyLimit: true, maxRemembered: true,
}), ...registerOptionKeys]

const digest = (value: string) => createHash('sha256').update(value).digest()

/** Constant-time comparison of the presented `Authorization` header with the configured one. */
function authorizationMatches (presented: string | undefined, expected: Buffer): boolean {
  return typeof presented === 'string' && timingSafeEqual(digest(presented), expected)
}

/**
 * An OpenID Shared Signals push receiver (RFC 8935) on `app.revocation`: a verified SET
 * whose event revokes a subject calls `revokeSubject` at the event's time (a CAEP
 * `session-revoked` naming one session: `revokeSession`); every other
 * valid SET is acknowledged and ignored. Register after the plugin.
 */
export async function ssfReceiver (app: FastifyInstance, options: SsfReceiverOptions): Promise<void> {
  if (!app.hasDecorator('revocation')) {
    throw invalidOption('ssfReceiver', 'needs fastify-jwt-revocation registered first, in the same or a parent context')
  }
  if (typeof options !== 'object' || options === null) throw invalidOption('ssfReceiver', 'options must be an object')
  refuseUnknownKeys(options, receiverOptionKeys, 'ssfReceiver')
  // The key source checks these too, but its message would name the plugin's own jwksOptions.
  if (typeof options.jwksOptions === 'object' && options.jwksOptions !== null) refuseUnknownKeys(options.jwksOptions, jwksOptionKeys, 'ssfReceiver.jwksOptions')
  if (typeof options.issuer !== 'string' || options.issuer.length === 0) throw invalidOption('ssfReceiver.issuer', "is required: the transmitter's iss")
  if ((options.jwksUri === undefined) === (options.jwks === undefined)) throw invalidOption('ssfReceiver.jwksUri', 'or jwks: give exactly one')
  const path = options.path ?? '/ssf/events'
  if (typeof path !== 'string' || !path.startsWith('/')) throw invalidOption('ssfReceiver.path', "must start with '/'")
  if (options.resolveSubject !== undefined && typeof options.resolveSubject !== 'function') throw invalidOption('ssfReceiver.resolveSubject', 'must be a function (subId) => string | string[] | null')
  const expectedAuthorization = options.authorizationHeader === undefined ? undefined : options.authorizationHeader
  if (expectedAuthorization !== undefined && (typeof expectedAuthorization !== 'string' || expectedAuthorization.length < 16)) {
    throw invalidOption('ssfReceiver.authorizationHeader', 'must be a string of at least 16 characters (e.g. "Bearer <secret>")')
  }
  const maxAge = parseDuration(options.maxAge ?? '1d', 'ssfReceiver.maxAge', lifetimeRule)

  const revocation = app.revocation
  // With several issuers, an event naming one issuer's subject or session leaves another issuer's of the same id alone.
  requireIssuerScopes(revocation, 'ssfReceiver')
  const policy: SetPolicy = {
    // Only a transmitter's public keys: a SET's signature proves who sent it.
    keySource: createKeySource({ jwksUri: options.jwksUri, jwks: options.jwks, algorithms: options.algorithms, jwksOptions: options.jwksOptions }, 5000, app.log),
    issuer: options.issuer,
    audiences: stringList(options.audience, 'ssfReceiver.audience'),
    clockTolerance: options.clockTolerance === undefined ? 0 : parseDuration(options.clockTolerance, 'ssfReceiver.clockTolerance', leewayRule),
    maxAge,
  }
  const subjects: SubjectPolicy = {
    tokenIssuers: new Set(options.tokenIssuer === undefined
      ? revocation.tokenIssuers ?? [options.issuer]
      : stringList(options.tokenIssuer, 'ssfReceiver.tokenIssuer')),
    resolveSubject: options.resolveSubject,
  }
  const bodyLimit = positiveInteger(options.bodyLimit, 'ssfReceiver.bodyLimit', 65_536)
  const authorization = expectedAuthorization === undefined ? undefined : digest(expectedAuthorization)
  // A SET is applied once: a replay within maxAge (older ones are refused) finds its
  // jti here. The entry holds the first delivery's outcome, so a concurrent duplicate
  // waits for it rather than applying the SET a second time.
  const seen = new LRUCache<string, Promise<void>>({ max: positiveInteger(options.maxRemembered, 'ssfReceiver.maxRemembered', 100_000), ttl: (maxAge + policy.clockTolerance) * 1000 })

  async function apply (set: Awaited<ReturnType<typeof verifySecurityEventToken>>, request: FastifyRequest): Promise<void> {
    for (const event of revokingEvents(set, Date.now())) {
      // The log names the transmitter (the SET's verified iss) and the event that moved it.
      const author = { actor: `ssf:${policy.issuer}`, reason: event.type, source: 'ssf' } as const
      // One session logged out: that session's tokens, not the user's others. A store
      // without sessions cannot say which tokens those are, so the user is cut off instead.
      if (event.sessionId !== undefined && revocation.sessionsSupported) {
        await revocation.revokeSession(event.sessionId, { ...(event.at === undefined ? {} : { revokedAt: event.at }), ...feedScope(revocation, event.sessionIssuer) }, author)
        request.log.info({ event: event.type }, 'ssfReceiver: session revoked')
        continue
      }
      const subs = event.subId === undefined ? [] : await subjectsOf(event.subId, subjects)
      if (subs.length === 0) {
        request.log.warn({ event: event.type, format: event.subId?.format ?? null }, 'ssfReceiver: no token subject for this event; ignored')
        continue
      }
      for (const { sub, iss } of subs) await revocation.revokeSubject(sub, { ...(event.at === undefined ? {} : { at: event.at }), ...feedScope(revocation, iss) }, author)
      request.log.info({ event: event.type, subjects: subs.length }, 'ssfReceiver: subject revoked')
    }
  }

  app.register(async (scope) => {
    scope.removeAllContentTypeParsers()
    scope.addContentTypeParser(CONTENT_TYPE, { parseAs: 'string', bodyLimit }, (_request, body, done) => done(null, body))
    // Anything else (JSON, forms, no type) is refused before it is read.
    scope.addContentTypeParser('*', (_request, _payload, done) => done(new SetRefusal('invalid_request', `The SET must be sent as ${CONTENT_TYPE}`, 415)))
    scope.setErrorHandler((err: FastifyError | SetRefusal, request: FastifyRequest, reply: FastifyReply) => {
      if (err instanceof SetRefusal) return reply.code(err.statusCode).send({ err: err.err, description: err.message })
      if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return reply.code(413).send({ err: 'invalid_request', description: 'The SET is larger than this receiver accepts' })
      if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' || err.code === 'FST_ERR_CTP_EMPTY_TYPE') return reply.code(415).send({ err: 'invalid_request', description: `The SET must be sent as ${CONTENT_TYPE}` })
      if (err.statusCode === 503) {
        // Keys or store unreachable: the transmitter retries later (RFC 8935 §2.3).
        request.log.warn({ err }, 'ssfReceiver: cannot process the SET now')
        return reply.code(503).header('retry-after', '5').send({ err: 'temporarily_unavailable', description: 'The receiver cannot process SETs right now' })
      }
      if ((err.statusCode ?? 500) < 500) return reply.code(400).send({ err: 'invalid_request', description: 'The request is malformed' })
      request.log.error({ err }, 'ssfReceiver: failed to process a SET')
      return reply.code(500).send({ err: 'internal_error', description: 'The receiver failed to process the SET' })
    })

    // config.auth false: the push is authenticated by the SET's signature (and the
    // optional Authorization header), never by an access token.
    scope.post(path, { config: { auth: false } }, async (request, reply) => {
      if (authorization !== undefined && !authorizationMatches(request.headers.authorization, authorization)) {
        throw new SetRefusal('authentication_failed', 'The transmitter did not present the expected authorization')
      }
      const body = typeof request.body === 'string' ? request.body.trim() : ''
      const set = await verifySecurityEventToken(body, policy, Math.floor(Date.now() / 1000))
      const key = set.iss + '\u0000' + set.jti
      let outcome = seen.get(key)
      if (outcome === undefined) {
        outcome = apply(set, request)
        seen.set(key, outcome)
        // A failed delivery is forgotten, so the transmitter's retry is applied.
        outcome.catch(() => seen.delete(key))
      } else {
        request.log.info('ssfReceiver: SET already received (same jti); not applied again')
      }
      await outcome
      return reply.code(202).send()
    })
  })
}
