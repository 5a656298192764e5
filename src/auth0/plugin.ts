import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { invalidOption } from '../errors.js'
import { feedScope, requireIssuerScopes } from '../revocation/issuer-scope.js'
import { grantMethods } from '../stores/types.js'
import { resolveAuth0SyncOptions, type Auth0SyncOptions } from './options.js'
import { Auth0Syncer, type Auth0SyncApi } from './sync.js'

declare module 'fastify' {
  interface FastifyInstance {
    auth0Sync: Auth0SyncApi
  }
}

async function auth0SyncPlugin (app: FastifyInstance, opts: Auth0SyncOptions): Promise<void> {
  if (!app.hasDecorator('revocation')) {
    throw invalidOption('auth0Sync', 'needs fastify-jwt-revocation registered first, in the same or a parent context')
  }
  if (app.hasDecorator('auth0Sync')) throw invalidOption('auth0Sync', 'is already registered in this context')
  const options = resolveAuth0SyncOptions(opts)
  const revocation = app.revocation
  const audiences = options.audiences ?? revocation.audiences
  const foreign = audiences.filter((a) => !revocation.audiences.includes(a))
  if (foreign.length > 0) throw invalidOption('auth0Sync.audience', `names audiences the plugin does not accept: ${foreign.join(', ')}`)
  const missing = grantMethods.filter((m) => typeof revocation.store[m] !== 'function')
  if (missing.length > 0) throw invalidOption('auth0Sync', `mirrors client grants, so it needs a store with grants; this store lacks ${missing.join(', ')}()`)
  // With several issuers, the tenant's deleted grant cuts off its own client only, not another issuer's client of the same id.
  requireIssuerScopes(revocation, 'auth0Sync', [options.issuer])
  if (typeof revocation.store.lease !== 'function') {
    app.log.info('fastify-jwt-revocation: the store has no lease(); every instance sharing it polls Auth0 (fine for one instance)')
  }

  const syncer = new Auth0Syncer(options, audiences, revocation, feedScope(revocation, options.issuer), app.log)
  app.decorate('auth0Sync', { syncNow: () => syncer.syncNow(), status: () => syncer.status() } satisfies Auth0SyncApi)
  // Auth0 failing never fails a request (what was synced stays), so it degrades, not downs, the report.
  revocation.addHealthCheck('auth0Sync', () => {
    const { lastSuccessAt, lastErrorAt } = syncer.status()
    const failing = lastErrorAt !== null && (lastSuccessAt === null || lastErrorAt > lastSuccessAt)
    return { status: failing ? 'down' : lastSuccessAt === null ? 'unknown' : 'up', lastSuccessAt, lastErrorAt }
  })
  // Boot never waits on Auth0: the first sync starts once the app is ready.
  app.addHook('onReady', async () => { syncer.start() })
  app.addHook('onClose', async () => { await syncer.stop() })
}

/**
 * Makes revocations made at an Auth0 tenant (blacklisted tokens, deleted or narrowed
 * client grants) effective at this API within one interval:
 * `app.register(auth0Sync, { domain, clientId, clientSecret, interval: '30s' })`.
 */
export const auth0Sync = fp(auth0SyncPlugin, {
  fastify: '5.x',
  name: 'fastify-jwt-revocation-auth0',
  dependencies: ['fastify-jwt-revocation'],
})
