// Neither responses nor logs ever carry a raw token or a secret.
import FakeTimers from '@sinonjs/fake-timers'
import Fastify from 'fastify'
import { Writable } from 'node:stream'
import t from 'tap'
import jwtRevocation, { MemoryStore } from '../../src/index.js'
import { AUDIENCE, bearer, ISSUER, secretBytes, SECRET, sign } from '../helpers/helpers.js'

t.test('error bodies and every log line are free of tokens and secrets', async (t) => {
  const clock = FakeTimers.install({ toFake: ['Date'], now: Date.now() })
  t.teardown(() => clock.uninstall())
  const lines: string[] = []
  const stream = new Writable({ write (chunk, _enc, cb) { lines.push(chunk.toString()); cb() } })
  const app = Fastify({ logger: { level: 'trace', stream } })
  t.teardown(() => app.close())
  let failing = false
  const store = new MemoryStore()
  const lookup = store.lookup.bind(store)
  store.lookup = async (q) => {
    if (failing) throw new Error(`connection refused while asking about ${q.jti}`)
    return lookup(q)
  }
  await app.register(jwtRevocation, { secret: SECRET, audience: AUDIENCE, issuer: ISSUER, store, maxTokenLifetime: '1h', cache: { max: 100, ttl: 0 } })
  app.get('/orders', { config: { auth: { scopes: ['admin'] } } }, async () => 'ok')

  const tokens = {
    valid: await sign(secretBytes, { jti: 'valid-jti', scope: 'admin' }),
    forged: await sign(new TextEncoder().encode('an-attacker-secret-of-32-bytes-at-least')),
    noScope: await sign(secretBytes),
    tooLong: await sign(secretBytes, {}, { expiresIn: 86400 }),
    revoked: await sign(secretBytes, { jti: 'revoked-jti', scope: 'admin' }),
    expiring: await sign(secretBytes, { scope: 'admin' }, { expiresIn: 5 }),
  }
  await app.revocation.revokeToken({ jti: 'revoked-jti' })
  const bodies: string[] = []
  for (const token of Object.values(tokens)) bodies.push((await app.inject({ url: '/orders', headers: bearer(token) })).body)
  clock.tick(10_000)
  bodies.push((await app.inject({ url: '/orders', headers: bearer(tokens.expiring) })).body)
  bodies.push((await app.inject({ url: `/orders?access_token=${tokens.valid}` })).body)
  failing = true
  bodies.push((await app.inject({ url: '/orders', headers: bearer(tokens.valid) })).body)

  t.ok(lines.length > 10, `${lines.length} log lines captured at trace level`)
  t.ok(lines.some((l) => l.includes('revocation store failed')), 'the outage was logged')
  for (const [name, token] of Object.entries(tokens)) {
    const signature = token.split('.')[2]!
    t.notOk(bodies.some((b) => b.includes(signature)), `no body carries the ${name} token`)
    t.notOk(lines.some((l) => l.includes(signature) && !l.includes('"url":"/orders?access_token=')), `no log line of the plugin carries the ${name} token`)
  }
  t.notOk(bodies.some((b) => b.includes(SECRET)) || lines.some((l) => l.includes(SECRET)), 'the secret appears nowhere')
  t.notOk(bodies.some((b) => b.includes('connection refused')), 'the store error stays in the logs')
})
