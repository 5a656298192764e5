import Fastify, { type FastifyInstance } from 'fastify'
import { PassThrough } from 'node:stream'
import t from 'tap'
import { auth0Sync } from '../../src/auth0/index.js'
import { main } from '../../src/cli/main.js'
import jwtRevocation, { adminRoutes, FileStore, MemoryStore, type JwtRevocationOptions } from '../../src/index.js'
import { closestName } from '../../src/options/did-you-mean.js'
import { PostgresStore } from '../../src/stores/postgres.js'
import { RedisStore } from '../../src/stores/redis.js'
import { ssfReceiver } from '../../src/sources/ssf/index.js'
import { AUDIENCE, makeKey, sign } from '../helpers/helpers.js'

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
  t.equal(closestName('aud', known), 'audience', 'the one name it abbreviates')
  t.equal(closestName('maxTok', known), undefined, 'an abbreviation of several names names none')
  t.equal(closestName('au', known), undefined, 'two letters abbreviate nothing')
})

t.test('the feeds refuse unknown keys too: statusList and ssfReceiver', async (t) => {
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

// ---- config.auth of a route ------------------------------------------------------------
// `{ scopez: ['admin'] }` would otherwise be an object without scopes: the route would
// admit any valid token. The route's object is checked like the plugin's options.

const secret = async () => 'secret data'
const SCOPEZ = { config: { auth: { scopez: ['admin'] } } } as object

t.test('config.auth: an unknown key on a route of the registering context fails as the route is added', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(jwtRevocation, { jwks, audience: AUDIENCE })
  let err: Error | undefined
  try {
    app.get('/admin', SCOPEZ, secret)
  } catch (e) {
    err = e as Error
  }
  t.equal((err as { code?: string } | undefined)?.code, INVALID)
  t.match(err?.message, 'option "config.auth.scopez of route /admin" is not known; did you mean config.auth.scopes?')
  t.throws(() => app.get('/admin', { config: { auth: { Scopes: ['admin'] } } } as object, secret), /"config.auth.Scopes of route \/admin" is not known; did you mean config.auth.scopes\?/)
})

t.test('config.auth: an unknown key on a route of a child plugin fails ready(), naming the route and the key meant', async (t) => {
  const inChild = await readyError((app) => {
    plugin({})(app)
    app.register(async (child: FastifyInstance) => { child.get('/admin', SCOPEZ, secret) }, { prefix: '/api' })
  })
  t.equal((inChild as { code?: string } | undefined)?.code, INVALID)
  t.match(inChild?.message, 'option "config.auth.scopez of route /api/admin" is not known; did you mean config.auth.scopes?')

  const inGrandchild = await readyError((app) => {
    plugin({})(app)
    app.register(async (child: FastifyInstance) => {
      await child.register(async (grandchild: FastifyInstance) => { grandchild.post('/revoke', SCOPEZ, secret) })
    }, { prefix: '/api' })
  })
  t.match(inGrandchild?.message, 'option "config.auth.scopez of route /api/revoke" is not known; did you mean config.auth.scopes?')

  const unrelated = await readyError((app) => {
    plugin({})(app)
    app.register(async (child: FastifyInstance) => { child.get('/admin', { config: { auth: { roles: ['admin'] } } } as object, secret) })
  })
  t.match(unrelated?.message, 'option "config.auth.roles of route /admin" is not known (known: scopes, audience, introspect, dpop, acr, maxAge)')
})

t.test('config.auth: an array is refused, not read as an object without scopes', async (t) => {
  const err = await readyError((app) => {
    plugin({})(app)
    app.register(async (child: FastifyInstance) => { child.get('/admin', { config: { auth: ['admin'] } } as object, secret) })
  })
  t.match(err?.message, 'option "config.auth of route /admin" must be false, true or { scopes, audience, introspect, dpop, acr, maxAge }')
})

t.test('config.auth: every known key is accepted together', async (t) => {
  const err = await readyError((app) => {
    plugin({ introspection: { endpoint: 'https://issuer.test/introspect', clientId: 'c', clientSecret: 's' }, issuer: 'https://issuer.test/' })(app)
    app.register(async (child: FastifyInstance) => { child.get('/admin', { config: { auth: { scopes: ['admin'], audience: AUDIENCE, introspect: true, dpop: 'required' } } }, secret) })
  })
  t.equal(err, undefined)
})

t.test('config.auth: a route with an unknown key declared before the plugin is refused at request time, never opened', async (t) => {
  const lines: string[] = []
  const app = Fastify({ logger: { level: 'error', stream: { write: (line: string) => { lines.push(line) } } } })
  t.teardown(() => app.close())
  app.get('/admin', SCOPEZ, secret)
  await app.register(jwtRevocation, { jwks, audience: AUDIENCE })
  await app.ready()
  const res = await app.inject({ url: '/admin', headers: { authorization: `Bearer ${await sign(key)}` } })
  t.equal(res.statusCode, 500, 'a valid token without the scope is not admitted')
  t.equal(res.json().code, 'FST_JWT_REVOCATION_ROUTE_MISCONFIGURED')
  t.ok(lines.some((l) => l.includes('config.auth.scopez of route /admin') && l.includes('did you mean config.auth.scopes?')), 'logged, naming the route and the key meant')
})

// ---- every other object a user writes ----------------------------------------------------
// One place that shows each surface refuses a misspelled key, nested objects included.

t.test('every option object of every entry point refuses an unknown key, naming the one meant', async (t) => {
  const MGMT = 'https://mgmt.test/'
  const registered = (options: Record<string, unknown>) => plugin({ audience: [AUDIENCE, MGMT], store: new MemoryStore(), issuer: 'https://issuer.test/', ...options })
  const beside = (extra: (app: ReturnType<typeof Fastify>) => void) => (app: ReturnType<typeof Fastify>) => {
    registered({})(app)
    extra(app)
  }
  const introspection = { endpoint: 'https://issuer.test/introspect', clientId: 'c', clientSecret: 's' }
  const cases: Array<[string, (app: ReturnType<typeof Fastify>) => void, string]> = [
    ['plugin', registered({ onStoreErorr: 'deny' }), '"onStoreErorr" is not known; did you mean onStoreError?'],
    ['cache', registered({ cache: { maxx: 5 } }), '"cache.maxx" is not known; did you mean cache.max?'],
    ['jwksOptions', registered({ jwks: undefined, jwksUri: 'https://issuer.test/jwks', jwksOptions: { cooldownDurration: 1 } }), '"jwksOptions.cooldownDurration" is not known; did you mean jwksOptions.cooldownDuration?'],
    ['statusList', registered({ statusList: { timout: 100 } }), '"statusList.timout" is not known; did you mean statusList.timeout?'],
    ['introspection', registered({ introspection: { ...introspection, clientSecet: 's' } }), '"introspection.clientSecet" is not known; did you mean introspection.clientSecret?'],
    ['dpop', registered({ dpop: { proofMaxAg: '1m' } }), '"dpop.proofMaxAg" is not known; did you mean dpop.proofMaxAge?'],
    ['dpop.nonce', registered({ dpop: { nonce: { secrte: 'x'.repeat(32) } } }), '"dpop.nonce.secrte" is not known; did you mean dpop.nonce.secret?'],
    ['mtls', registered({ mtls: { Header: 'x-client-cert' } }), '"mtls.Header" is not known; did you mean mtls.header?'],
    ['resourceMetadata', registered({ resourceMetadata: { scope_supported: ['a'] } }), '"resourceMetadata.scope_supported" is not known; did you mean resourceMetadata.scopes_supported?'],
    ['adminRoutes', beside((app) => app.register(adminRoutes, { audience: MGMT, bootstrapClientID: 'admin' } as never)), '"adminRoutes.bootstrapClientID" is not known; did you mean adminRoutes.bootstrapClientId?'],
    ['auth0Sync', beside((app) => app.register(auth0Sync, { domain: 'tenant.auth0.com', clientId: 'id', clientSecret: 's', timeot: 100 } as never)), '"auth0Sync.timeot" is not known; did you mean auth0Sync.timeout?'],
    ['ssfReceiver', beside((app) => app.register(ssfReceiver, { issuer: 'https://idp.test/', audience: 'https://api.test/ssf', jwks, maxRemebered: 5 } as never)), '"ssfReceiver.maxRemebered" is not known; did you mean ssfReceiver.maxRemembered?'],
    ['ssfReceiver.jwksOptions', beside((app) => app.register(ssfReceiver, { issuer: 'https://idp.test/', audience: 'https://api.test/ssf', jwksUri: 'https://idp.test/jwks', jwksOptions: { cacheMaxage: 1 } } as never)), '"ssfReceiver.jwksOptions.cacheMaxage" is not known; did you mean ssfReceiver.jwksOptions.cacheMaxAge?'],
  ]
  for (const [surface, register, message] of cases) {
    const err = await readyError(register)
    t.equal((err as { code?: string } | undefined)?.code, INVALID, `${surface}: ready() fails with ${INVALID}`)
    t.match(err?.message, message, surface)
  }
})

t.test('the command line refuses an unknown flag, naming the one meant, before opening anything', async (t) => {
  const run = async (argv: string[]) => {
    let stderr = ''
    const err = new PassThrough()
    err.on('data', (c: Buffer) => { stderr += c })
    const code = await main(argv, { stdin: new PassThrough(), stdout: new PassThrough(), stderr: err, env: {} })
    return { code, stderr }
  }
  const cases: Array<[string[], string]> = [
    [['revoke-token', '--aud', 'a', '--jti', 'j', '--expires', '1d', '--store', 'file:/nowhere'], 'unknown option --expires (did you mean --expires-in?)'],
    [['revoke-client', 'c', '--aud', 'a', '--store', 'file:/nowhere'], 'unknown option --aud (did you mean --audience?)'],
    [['status', '--stroe', 'file:/nowhere'], 'unknown option --stroe (did you mean --store?)'],
    [['status', '--prefx=p:', '--store', 'file:/nowhere'], 'unknown option --prefx (did you mean --prefix?)'],
    [['grants', 'list', '--clinet', 'x', '--store', 'file:/nowhere'], 'unknown option --clinet (did you mean --client?)'],
    [['purge', '-x', '--store', 'file:/nowhere'], 'unknown option -x'],
  ]
  for (const [argv, message] of cases) {
    const { code, stderr } = await run(argv)
    t.equal(code, 2, `${argv.join(' ')}: a usage error`)
    t.match(stderr, message, argv.join(' '))
    t.notMatch(stderr, /no FileStore/, 'refused before the target is opened')
  }
})

t.test("the plugins registered beside it accept the keys Fastify reads from a plugin's options", async (t) => {
  const fastifyKeys = { prefix: '/v1', logLevel: 'warn', logSerializers: { req: () => 'r' } }
  const err = await readyError((app) => {
    plugin({ audience: [AUDIENCE, 'https://mgmt.test/'], store: new MemoryStore() })(app)
    app.register(adminRoutes, { ...fastifyKeys, audience: 'https://mgmt.test/' })
    app.register(ssfReceiver, { ...fastifyKeys, issuer: 'https://idp.test/', audience: 'https://api.test/ssf', jwks })
    // A closed loopback port: the sync that starts once ready fails quietly until close.
    app.register(auth0Sync, { ...fastifyKeys, domain: 'http://127.0.0.1:9', clientId: 'id', clientSecret: 's' })
  })
  t.equal(err, undefined)
})
