import { metrics } from '@opentelemetry/api'
import {
  AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader,
  type DataPoint, type Histogram,
} from '@opentelemetry/sdk-metrics'
import t from 'tap'
import { MemoryStore } from '../../src/index.js'
import { AUDIENCE, bearer, buildApp, makeKey, sign } from '../helpers/helpers.js'

// An app that registers the OpenTelemetry SDK sees every decision by outcome and
// reason, the cache hit ratio, store latency and whether the store answers. The SDK
// is registered before the plugin, as the README says it must be.

const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 })
const provider = new MeterProvider({ readers: [reader] })
metrics.setGlobalMeterProvider(provider)
t.teardown(async () => {
  await provider.shutdown()
  metrics.disable()
})

const key = await makeKey('ES256')
const jwks = { keys: [key.publicJwk] }

/** name → data points of the plugin's meter, as the SDK exports them now. */
async function collect (): Promise<Map<string, Array<DataPoint<number | Histogram>>>> {
  exporter.reset()
  await reader.forceFlush()
  const out = new Map<string, Array<DataPoint<number | Histogram>>>()
  for (const scope of exporter.getMetrics().at(-1)?.scopeMetrics ?? []) {
    if (scope.scope.name !== 'fastify-jwt-revocation') continue
    for (const metric of scope.metrics) out.set(metric.descriptor.name, [...(out.get(metric.descriptor.name) ?? []), ...metric.dataPoints as Array<DataPoint<number | Histogram>>])
  }
  return out
}

const count = (points: Array<DataPoint<number | Histogram>> | undefined, attributes: Record<string, string>) =>
  points?.filter((p) => Object.entries(attributes).every(([k, v]) => p.attributes[k] === v) && Object.keys(p.attributes).length === Object.keys(attributes).length)
    .reduce((sum, p) => sum + (p.value as number), 0) ?? 0

t.test('decisions by outcome and reason, cache lookups, store duration and store up', async (t) => {
  const store = new MemoryStore()
  const app = await buildApp(t, { jwks, store, cache: { max: 100, ttl: 60_000 } })
  const get = (headers: Record<string, string> = {}, method: 'GET' | 'POST' = 'GET') => app.inject({ method, url: '/orders', headers })

  const good = await sign(key)
  t.equal((await get(bearer(good))).statusCode, 200)
  t.equal((await get(bearer(good))).statusCode, 200, 'the second time from the cache')
  t.equal((await get()).statusCode, 401)
  t.equal((await get(bearer('not-a-jwt'))).statusCode, 401)
  t.equal((await get(bearer(await sign(key, { exp: Math.floor(Date.now() / 1000) - 60 })))).statusCode, 401)
  t.equal((await get(bearer(good), 'POST')).statusCode, 403)
  await app.revocation.revokeToken({ jti: 'gone', aud: AUDIENCE })
  t.equal((await get(bearer(await sign(key, { jti: 'gone' })))).statusCode, 401)
  t.equal((await get(bearer(await sign(await makeKey('ES256'))))).statusCode, 401, 'signed by an unknown key')
  t.equal((await app.inject({ url: '/orders?access_token=x' })).statusCode, 400, 'a token in the query string')

  let m = await collect()
  const decisions = m.get('jwt_revocation.decisions')
  t.equal(count(decisions, { outcome: 'accepted' }), 2, 'accepted')
  t.equal(count(decisions, { outcome: 'refused', reason: 'missing' }), 1, 'no token')
  t.equal(count(decisions, { outcome: 'refused', reason: 'invalid' }), 2, 'a malformed token and a bad signature')
  t.equal(count(decisions, { outcome: 'refused', reason: 'malformed' }), 1, 'a malformed request')
  t.equal(count(decisions, { outcome: 'refused', reason: 'expired' }), 1)
  t.equal(count(decisions, { outcome: 'refused', reason: 'scope' }), 1)
  t.equal(count(decisions, { outcome: 'refused', reason: 'revoked' }), 1)
  const lookups = m.get('jwt_revocation.cache.lookups')
  t.equal(count(lookups, { result: 'hit' }), 2, 'the repeated good token (GET, then POST)')
  t.ok(count(lookups, { result: 'miss' }) >= 4, 'each new token misses')
  const durations = m.get('jwt_revocation.store.duration')!
  t.equal(durations.length, 1, 'only successful store calls so far')
  t.same(durations[0]!.attributes, { outcome: 'ok' })
  t.equal((durations[0]!.value as Histogram).count, 2, 'the good token once and the revoked one once; cache hits ask nothing')
  t.same(m.get('jwt_revocation.store.up')?.map((p) => p.value), [1])

  // The store stops answering: 503, counted as unavailable, and the store is down.
  store.lookup = async () => { throw new Error('connection refused') }
  const res = await get(bearer(await sign(key)))
  t.equal(res.statusCode, 503)
  m = await collect()
  t.equal(count(m.get('jwt_revocation.decisions'), { outcome: 'unavailable', reason: 'store' }), 1)
  t.equal(count(m.get('jwt_revocation.store.duration')?.map((p) => ({ ...p, value: (p.value as Histogram).count })), { outcome: 'error' }), 1)
  t.same(m.get('jwt_revocation.store.up')?.map((p) => p.value), [0])
})

t.test('an unreachable key source counts as unavailable for the keys', async (t) => {
  const app = await buildApp(t, { jwksUri: 'http://127.0.0.1:9/jwks.json', jwksOptions: { timeoutDuration: 200 } })
  t.equal((await app.inject({ url: '/orders', headers: bearer(await sign(key)) })).statusCode, 503)
  t.equal(count((await collect()).get('jwt_revocation.decisions'), { outcome: 'unavailable', reason: 'keys' }), 1)
})

t.test('a refused DPoP proof counts as reason proof, not as an unexpected error', async (t) => {
  const app = await buildApp(t, { jwks })
  const token = await sign(key, { cnf: { jkt: 'x'.repeat(43) } })
  t.equal((await app.inject({ url: '/orders', headers: { authorization: `DPoP ${token}` } })).statusCode, 401, 'no DPoP header')
  const decisions = (await collect()).get('jwt_revocation.decisions')
  t.equal(count(decisions, { outcome: 'refused', reason: 'proof' }), 1)
  t.equal(count(decisions, { outcome: 'refused', reason: 'error' }), 0)
})

t.test('a step-up refusal counts as reason authentication', async (t) => {
  const app = await buildApp(t, { jwks, acr: ['mfa'] })
  t.equal((await app.inject({ url: '/orders', headers: bearer(await sign(key, { acr: 'pwd' })) })).statusCode, 401)
  const decisions = (await collect()).get('jwt_revocation.decisions')
  t.equal(count(decisions, { outcome: 'refused', reason: 'authentication' }), 1)
  t.equal(count(decisions, { outcome: 'refused', reason: 'error' }), 0)
})
