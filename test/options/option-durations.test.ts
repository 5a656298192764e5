// Every duration option takes its number (in the unit it documents) or a string with a unit,
// every refusal names that unit, and a seconds number so large it must be milliseconds is refused.
import { Redis } from 'ioredis'
import pg from 'pg'
import t from 'tap'
import { resolveAuth0SyncOptions } from '../../src/auth0/options.js'
import { formatDuration, parseDuration } from '../../src/options/duration.js'
import { resolveOptions, type JwtRevocationOptions } from '../../src/options/options.js'
import { PostgresStore } from '../../src/stores/postgres.js'
import { RedisStore } from '../../src/stores/redis.js'
import { AUDIENCE, makeKey, readyError } from '../helpers/helpers.js'

const key = await makeKey('ES256')
const base = { jwks: { keys: [key.publicJwk] }, audience: AUDIENCE, issuer: 'https://issuer.test/' }
const resolve = (options: Partial<JwtRevocationOptions>) => resolveOptions({ ...base, ...options } as JwtRevocationOptions)
const introspection = { endpoint: 'https://issuer.test/introspect', clientId: 'c', clientSecret: 's' }
const auth0 = { domain: 'tenant.auth0.com', clientId: 'c', clientSecret: 's' }

t.test('the parser reads numbers in the option\'s unit and strings in theirs', async (t) => {
  const seconds = { unit: 'seconds', example: '24h' } as const
  const ms = { unit: 'milliseconds', example: '10s' } as const
  t.equal(parseDuration(90, 'x', seconds), 90)
  t.equal(parseDuration('15m', 'x', seconds), 900)
  t.equal(parseDuration('2 hours', 'x', seconds), 7200)
  t.equal(parseDuration('30', 'x', seconds), 30, 'a string without a unit is in the option\'s unit')
  t.equal(parseDuration('1.5m', 'x', seconds), 90)
  t.equal(parseDuration('10s', 'x', ms), 10_000)
  t.equal(parseDuration('500ms', 'x', ms), 500)
  t.equal(parseDuration('1.1s', 'x', ms), 1100, 'no floating-point residue')
  t.equal(parseDuration(250, 'x', ms), 250)
  t.throws(() => parseDuration('1y', 'x', seconds), /option "x" must be a duration: seconds as an integer ≥ 0, or a string such as '24h' \(got "1y"\)/)
  t.throws(() => parseDuration(1.5, 'x', seconds), /seconds as an integer/)
  t.throws(() => parseDuration('500ms', 'x', seconds), /option "x" must be a whole number of seconds \(got "500ms"\)/, 'never silently 0')
  t.throws(() => parseDuration(5, 'x', { ...ms, min: 100, max: 120_000 }), /milliseconds as an integer from 100 to 120000/)
  t.equal(formatDuration(86_400_000), '1d')
  t.equal(formatDuration(90_000), '90s')
  t.equal(formatDuration(1500), '1500ms')
})

t.test('plugin options: a string with a unit, resolved to the unit the option works in', async (t) => {
  t.equal(resolve({ clockTolerance: '30s' }).clockTolerance, 30)
  t.equal(resolve({ maxTokenLifetime: '24h' }).maxTokenLifetime, 86_400)
  t.equal(resolve({ maxTokenAge: '30d' }).maxTokenAge, 30 * 86_400)
  t.same(resolve({ cache: { ttl: '10s' } }).cache, { max: 10_000, ttl: 10_000 })
  t.same(resolve({ cache: { ttl: 250 } }).cache, { max: 10_000, ttl: 250 }, 'numbers keep their unit (ms)')
  t.equal(resolve({ storeTimeout: '2s' }).storeTimeout, 2000)
  t.equal(resolve({ retryAfter: '1m' }).retryAfter, 60)
  t.equal(resolve({ introspection: { ...introspection, cache: '1m' } }).introspection!.cache, 60_000)
  t.equal(resolve({ dpop: { proofMaxAge: '2m' } }).dpop!.proofMaxAge, 120)
  t.equal(resolve({ statusList: { timeout: '3s' } }).statusList!.timeout, 3000)
  t.doesNotThrow(() => resolve({ jwksUri: 'https://issuer.test/jwks', jwks: undefined, jwksOptions: { timeoutDuration: '5s', cooldownDuration: '30s', cacheMaxAge: '10m' } }))
  t.equal(resolveAuth0SyncOptions({ ...auth0, timeout: '10s' }).timeout, 10_000)
  t.equal(resolveAuth0SyncOptions({ ...auth0, interval: '1m' }).interval, 60_000)
})

const refusals: Array<[string, Partial<JwtRevocationOptions>, RegExp]> = [
  ['cache.ttl', { cache: { ttl: '10 fortnights' } }, /option "cache.ttl" must be a duration: milliseconds as an integer ≥ 0, or a string such as '10s'/],
  ['storeTimeout', { storeTimeout: 0 }, /option "storeTimeout" must be a duration: milliseconds as an integer from 1 to 2147483647/],
  ['retryAfter', { retryAfter: 1.5 }, /option "retryAfter" must be a duration: seconds as an integer ≥ 1, or a string such as '5s'/],
  ['clockTolerance', { clockTolerance: -1 }, /option "clockTolerance" must be a duration: seconds as an integer ≥ 0, or a string such as '30s'/],
  ['maxTokenLifetime', { maxTokenLifetime: '1 fortnight' }, /option "maxTokenLifetime" must be a duration: seconds as an integer ≥ 1, or a string such as '24h'/],
  ['maxTokenAge', { maxTokenAge: 0 }, /option "maxTokenAge" must be a duration: seconds as an integer ≥ 1/],
  ['jwksOptions', { jwksUri: 'https://x.test/jwks', jwks: undefined, jwksOptions: { cacheMaxAge: 'often' } }, /option "jwksOptions.cacheMaxAge" must be a duration: milliseconds/],
  ['statusList.timeout', { statusList: { timeout: 'soon' } }, /option "statusList.timeout" must be a duration: milliseconds/],
  ['statusList.maxAge', { statusList: { maxAge: '500ms' } }, /option "statusList.maxAge" must be a whole number of seconds/],
  ['introspection.cache', { introspection: { ...introspection, cache: 'soon' } }, /option "introspection.cache" must be a duration: seconds/],
  ['dpop.proofMaxAge', { dpop: { proofMaxAge: 0 } }, /option "dpop.proofMaxAge" must be a duration: seconds as an integer ≥ 1/],
]
for (const [name, options, message] of refusals) {
  t.test(`ready() fails on a bad ${name}, naming its unit`, async (t) => {
    const err = await readyError({ ...base, ...options })
    t.match(err.message, message)
    t.equal((err as { code?: string }).code, 'FST_JWT_REVOCATION_INVALID_OPTION')
  })
}

t.test('a seconds number so large it is surely milliseconds is refused, with the strings to write', async (t) => {
  const err = await readyError({ ...base, maxTokenLifetime: 86_400_000 })
  t.match(err.message, /option "maxTokenLifetime" is 86400000 seconds \(1000d\), more than a number of seconds here plausibly means \(at most 2592000\): if that is milliseconds, write '1d'; if you do mean 1000d, write it as the string '1000d'/)
  t.match((await readyError({ ...base, maxTokenAge: 3_600_000 })).message, /"maxTokenAge" is 3600000 seconds .*write '1h'/)
  t.match((await readyError({ ...base, clockTolerance: 5000 })).message, /"clockTolerance" is 5000 seconds .*write '5s'/, 'leeway of 83 minutes from 5000 ms')
  t.match((await readyError({ ...base, retryAfter: 5000 })).message, /"retryAfter" is 5000 seconds/)
  t.match((await readyError({ ...base, introspection: { ...introspection, cache: 30_000 } })).message, /"introspection.cache" is 30000 seconds .*write '30s'/)
  t.match((await readyError({ ...base, dpop: { proofMaxAge: 60_000 } })).message, /"dpop.proofMaxAge" is 60000 seconds .*write '1m'/)
  t.match((await readyError({ ...base, issuer: 'https://issuer.test/', statusList: { maxAge: 300_000 } })).message, /"statusList.maxAge" is 300000 seconds .*write '5m'/)
  t.throws(() => resolveAuth0SyncOptions({ ...auth0, interval: 30_000 }), /"auth0Sync.interval" is 30000 seconds .*write '30s'/)
  t.equal(resolve({ maxTokenLifetime: 2_592_000 }).maxTokenLifetime, 2_592_000, 'thirty days as a number is taken')
  t.equal(resolve({ maxTokenLifetime: '1000d' }).maxTokenLifetime, 86_400_000, 'the string form goes beyond the bound')
})

t.test('auth0Sync durations name their unit; the interval cannot overflow a timer', async (t) => {
  t.throws(() => resolveAuth0SyncOptions({ ...auth0, timeout: 50 }), /option "auth0Sync.timeout" must be a duration: milliseconds as an integer from 100 to 120000, or a string such as '10s'/)
  t.throws(() => resolveAuth0SyncOptions({ ...auth0, interval: '30d' }), /option "auth0Sync.interval" must be a duration: seconds as an integer from 0 to 86400/)
})

t.test('RedisStore.waitForReplicas.timeout takes a string, and WAIT uses it', { skip: process.env.REDIS_URL === undefined && 'REDIS_URL not set' }, async (t) => {
  const client = new Redis(process.env.REDIS_URL!)
  t.teardown(() => client.quit())
  t.throws(() => new RedisStore({ client, waitForReplicas: { replicas: 1, timeout: 0 } }), /option "RedisStore.waitForReplicas.timeout" must be a duration: milliseconds as an integer ≥ 1, or a string such as '500ms'/)
  // A lone Redis has no replica: the write waits out the timeout and says how long that was.
  const store = new RedisStore({ client, prefix: `{durations-${process.pid}}:`, waitForReplicas: { replicas: 1, timeout: '200ms' } })
  await t.rejects(store.revokeToken({ jti: 'j', aud: AUDIENCE, expiresAt: Date.now() + 60_000 }), /within 200 ms/)
})

t.test('PostgresStore.reconnectDelay takes a string and names its unit', async (t) => {
  const pool = new pg.Pool({ connectionString: process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test' })
  t.teardown(() => pool.end())
  t.doesNotThrow(() => new PostgresStore({ pool, reconnectDelay: '2s' }))
  t.throws(() => new PostgresStore({ pool, reconnectDelay: 0 }), /option "PostgresStore.reconnectDelay" must be a duration: milliseconds as an integer from 1 to 2147483647, or a string such as '1s'/)
})
