import Fastify from 'fastify'
import t from 'tap'
import jwtRevocation, { adminRoutes, FileStore, MemoryStore, type JwtRevocationOptions } from '../src/index.js'
import { closestName } from '../src/did-you-mean.js'
import { PostgresStore } from '../src/stores/postgres.js'
import { RedisStore } from '../src/stores/redis.js'
import { AUDIENCE, makeKey } from './helpers.js'

// A misspelled option is a security hole when it is silently ignored
// (`maxTokenLifeTime: '1d'` leaves the lifetime cap off), so every options object
// refuses keys it does not know, naming the closest known one.

const key = await makeKey('ES256')
const jwks = { keys: [key.publicJwk] }
const INVALID = 'FST_JWT_REVOCATION_INVALID_OPTION'

async function readyError (register: (app: ReturnType<typeof Fastify>) => void): Promise<Error | undefined> {
  const app = Fastify()
  register(app)
  try {
    await app.ready()
    return undefined
  } catch (err) {
    return err as Error
  } finally {
    await app.close()
  }
}

const plugin = (options: Record<string, unknown>) => (app: ReturnType<typeof Fastify>) => {
  app.register(jwtRevocation, { jwks, audience: AUDIENCE, ...options } as JwtRevocationOptions)
}

const pluginCases: Array<[Record<string, unknown>, string]> = [
  [{ maxTokenLifeTime: '1d' }, 'option "maxTokenLifeTime" is not known; did you mean maxTokenLifetime?'],
  [{ onStoreErorr: 'allow' }, 'option "onStoreErorr" is not known; did you mean onStoreError?'],
  [{ Audience: 'x' }, 'option "Audience" is not known; did you mean audience?'],
  [{ jwks_uri: 'https://x.test/jwks' }, 'option "jwks_uri" is not known; did you mean jwksUri?'],
  [{ cache: { max: 10, tll: 5 } }, 'option "cache.tll" is not known; did you mean cache.ttl?'],
  [{ jwksOptions: { timeout: 100 } }, 'option "jwksOptions.timeout" is not known'],
  [{ jwksOptions: { cacheMaxage: 100 } }, 'option "jwksOptions.cacheMaxage" is not known; did you mean jwksOptions.cacheMaxAge?'],
]

for (const [options, message] of pluginCases) {
  t.test(`ready() fails on ${Object.keys(options)[0]}: ${JSON.stringify(options)}`, async (t) => {
    const err = await readyError(plugin(options))
    t.ok(err, 'ready() fails')
    t.equal((err as { code?: string }).code, INVALID)
    t.match(err!.message, message)
  })
}

t.test('an unknown key with undefined value is refused too', async (t) => {
  const err = await readyError(plugin({ maxTokenLifeTime: undefined }))
  t.match(err?.message, /"maxTokenLifeTime" is not known/)
})

t.test('a key close to nothing lists the known options instead of guessing', async (t) => {
  const err = await readyError(plugin({ cache: { completelyUnrelated: 1 } }))
  t.match(err?.message, 'option "cache.completelyUnrelated" is not known (known: max, ttl)')
})

t.test("the keys Fastify reads from a plugin's options are accepted", async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(jwtRevocation, { jwks, audience: AUDIENCE, prefix: '/v1', logLevel: 'warn', logSerializers: { req: () => 'r' } } as JwtRevocationOptions)
  await app.ready()
  t.ok(app.revocation, 'registered')
})

t.test('every documented option is accepted together', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(jwtRevocation, {
    jwks,
    algorithms: ['ES256'],
    issuer: 'https://issuer.test/',
    audience: AUDIENCE,
    typ: 'at+jwt',
    clockTolerance: 5,
    requiredClaims: ['sub'],
    maxTokenLifetime: '1d',
    maxTokenAge: '1d',
    store: new MemoryStore(),
    cache: { max: 10, ttl: 10 },
    grants: false,
    onStoreError: 'deny',
    global: true,
    realm: 'api',
    extractToken: () => undefined,
    maxTokenSize: 4096,
    storeTimeout: 1000,
    retryAfter: 5,
  })
  await app.ready()
  t.pass()
})

t.test('jwksOptions accepts its three keys', async (t) => {
  const err = await readyError(plugin({ jwks: undefined, jwksUri: 'https://x.test/jwks', jwksOptions: { timeoutDuration: 1, cooldownDuration: 1, cacheMaxAge: 1 } }))
  t.equal(err, undefined)
})

t.test('adminRoutes refuses an unknown key, tolerates prefix', async (t) => {
  const base = (app: ReturnType<typeof Fastify>) => app.register(jwtRevocation, { jwks, audience: [AUDIENCE, 'https://mgmt.test/'] })
  const err = await readyError((app) => {
    base(app)
    app.register(adminRoutes, { prefix: '/api/v2', audience: 'https://mgmt.test/', bodylimit: 10 } as never)
  })
  t.equal((err as { code?: string } | undefined)?.code, INVALID)
  t.match(err?.message, 'option "adminRoutes.bodylimit" is not known; did you mean adminRoutes.bodyLimit?')
  const ok = await readyError((app) => {
    base(app)
    app.register(adminRoutes, { prefix: '/api/v2', logLevel: 'warn', audience: 'https://mgmt.test/', bodyLimit: 1024 })
  })
  t.equal(ok, undefined)
})

t.test('store constructors refuse unknown keys', async (t) => {
  const redisLike = { pipeline () {} } as never
  const pgLike = { query () {}, connect () {} } as never
  const cases: Array<[string, () => unknown, string]> = [
    ['MemoryStore', () => new MemoryStore({ maxEntry: 5 } as never), 'option "MemoryStore.maxEntry" is not known; did you mean MemoryStore.maxEntries?'],
    ['FileStore', () => new FileStore({ path: '/nonexistent', compactafter: 5 } as never), 'option "FileStore.compactafter" is not known; did you mean FileStore.compactAfter?'],
    ['RedisStore', () => new RedisStore({ client: redisLike, prefx: 'a:' } as never), 'option "RedisStore.prefx" is not known; did you mean RedisStore.prefix?'],
    ['RedisStore.waitForReplicas', () => new RedisStore({ client: redisLike, waitForReplicas: { replica: 1, timeout: 100 } } as never), 'option "RedisStore.waitForReplicas.replica" is not known; did you mean RedisStore.waitForReplicas.replicas?'],
    ['RedisStore.waitForReplicas.timeout', () => new RedisStore({ client: redisLike, waitForReplicas: { replicas: 1, timeout: 0 } }), 'option "RedisStore.waitForReplicas.timeout" must be a duration: milliseconds as an integer ≥ 1, or a string such as \'500ms\' (got 0)'],
    ['PostgresStore', () => new PostgresStore({ pool: pgLike, table_prefix: 'x_' } as never), 'option "PostgresStore.table_prefix" is not known; did you mean PostgresStore.tablePrefix?'],
  ]
  for (const [name, build, message] of cases) {
    let err: unknown
    try {
      build()
    } catch (e) {
      err = e
    }
    t.equal((err as { code?: string } | undefined)?.code, INVALID, `${name} throws ${INVALID}`)
    t.match((err as Error | undefined)?.message, message, name)
  }
  // and their known keys still work
  t.ok(new MemoryStore({ maxEntries: 5 }))
  t.ok(new FileStore({ path: '/nonexistent', maxEntries: 5, compactAfter: 5 }))
  t.ok(new RedisStore({ client: redisLike, prefix: 'p:', subscriber: redisLike, waitForReplicas: { replicas: 1, timeout: 100 } }))
  t.ok(new PostgresStore({ pool: pgLike, tablePrefix: 'x_', migrate: false, reconnectDelay: 10 }))
})

t.test('closestName', async (t) => {
  const known = ['maxTokenLifetime', 'maxTokenAge', 'maxTokenSize', 'audience', 'ttl']
  t.equal(closestName('maxTokenLifeTime', known), 'maxTokenLifetime', 'case only')
  t.equal(closestName('maxtokenage', known), 'maxTokenAge', 'case only, all lower')
  t.equal(closestName('maxTokenLifetme', known), 'maxTokenLifetime', 'one deletion')
  t.equal(closestName('audeince', known), 'audience', 'a transposition')
  t.equal(closestName('tll', known), 'ttl', 'short names allow two edits')
  t.equal(closestName('xyz', known), undefined, 'three edits on a three-letter name is not a typo')
  t.equal(closestName('onStoreError', known), undefined, 'nothing close')
})

t.test('the feeds refuse unknown keys too: statusList and ssfReceiver', async (t) => {
  const { ssfReceiver } = await import('../src/ssf/index.js')
  const listErr = await readyError(plugin({ issuer: 'https://issuer.test/', statusList: { maxAg: '1m' } }))
  t.equal((listErr as { code?: string })?.code, INVALID)
  t.match(listErr?.message, 'option "statusList.maxAg" is not known; did you mean statusList.maxAge?')
  const receiverErr = await readyError((app) => {
    plugin({})(app)
    app.register(ssfReceiver, { issuer: 'https://idp.test/', audience: 'https://api.test/ssf', jwks, resolveSubjct: () => null } as never)
  })
  t.equal((receiverErr as { code?: string })?.code, INVALID)
  t.match(receiverErr?.message, 'option "ssfReceiver.resolveSubjct" is not known; did you mean ssfReceiver.resolveSubject?')
})
