// Many API instances on one Redis store: one of them polls Auth0 per interval (the
// store's lease), the others learn the changes through the store and its change feed.
import FakeTimers from '@sinonjs/fake-timers'
import Fastify, { type FastifyInstance } from 'fastify'
import t from 'tap'
import { auth0Sync } from '../../src/auth0/index.js'
import jwtRevocation from '../../src/index.js'
import { RedisStore } from '../../src/stores/redis.js'
import { Auth0StandIn, settle, until } from '../helpers/auth0-stand-in.js'
import { AUDIENCE, bearer, ISSUER, makeKey, sign } from '../helpers/helpers.js'
import { connectRedis, deleteKeys, uniqueName } from '../helpers/services.js'

const key = await makeKey('ES256')
const client = await connectRedis(t)

if (client) {
  t.test('two instances on Redis: one poller per interval, both refuse what the tenant revoked', async (t) => {
    const prefix = `{${uniqueName('auth0-sync')}}:`
    t.teardown(() => deleteKeys(client, prefix))
    const tenant = await new Auth0StandIn().start()
    t.teardown(() => tenant.stop())
    // Fake timers drive the intervals; Redis, its pub/sub and HTTP stay real.
    const clock = FakeTimers.install({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: Date.now() })
    t.teardown(() => clock.uninstall())

    async function instance (): Promise<FastifyInstance> {
      const app = Fastify()
      t.teardown(() => app.close())
      await app.register(jwtRevocation, {
        jwks: { keys: [key.publicJwk] }, issuer: ISSUER, audience: AUDIENCE, grants: true, maxTokenLifetime: '1d',
        cache: { max: 1000, ttl: 60_000 }, store: new RedisStore({ client: client!, prefix }),
      })
      await app.register(auth0Sync, { domain: tenant.url, clientId: tenant.clientId, clientSecret: tenant.clientSecret, interval: '5s' })
      app.get('/orders', async () => 'ok')
      await app.ready()
      return app
    }
    const instances = [await instance(), await instance()]
    const polls = () => tenant.count('GET /api/v2/blacklists/tokens')
    const syncsDone = () => instances.reduce((n, app) => n + (app.auth0Sync.status().lastSuccessAt === null ? 0 : 1), 0)
    const status = (app: FastifyInstance, token: string) => app.inject({ url: '/orders', headers: bearer(token) }).then((r) => r.statusCode)

    const partner = tenant.addGrant('partner', AUDIENCE, ['read:orders'])
    tenant.blacklist.push({ aud: AUDIENCE, jti: 'stolen' })
    await clock.tickAsync(0)
    t.ok(await until(() => syncsDone() === 1), 'the first interval: one instance synced')
    await settle()
    t.equal(polls(), 1, 'Auth0 was asked once, not once per instance')

    const good = await sign(key, { azp: 'partner' })
    const stolen = await sign(key, { azp: 'partner', jti: 'stolen' })
    for (const app of instances) {
      t.equal(await status(app, good), 200, 'both admit the mirrored grant')
      t.equal(await status(app, stolen), 401, 'both refuse the token blacklisted at the tenant')
    }

    // The partner's grant is deleted at the tenant; both caches hold `good` as admitted.
    tenant.deleteGrant(partner.id)
    for (let interval = 2; interval <= 4; interval++) {
      await clock.tickAsync(5_501)
      const ticked = Date.now()
      t.ok(await until(() => polls() === interval), `interval ${interval}: polled`)
      // The next interval's timer is set once this sync is done (a store's listing may
      // take many round trips): ticking before that would skip it.
      await until(() => instances.some((app) => (app.auth0Sync.status().lastSuccessAt ?? 0) >= ticked))
      await settle()
      t.equal(polls(), interval, `interval ${interval}: still one poll`)
    }
    for (const app of instances) {
      t.ok(await until(async () => await status(app, good) === 401), 'both refuse the partner (the feed dropped the cached answer)')
    }
    t.equal(syncsDone(), 1, 'the same instance kept the lease')
  })
}
