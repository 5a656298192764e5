import FakeTimers from '@sinonjs/fake-timers'
import Fastify, { type FastifyInstance } from 'fastify'
import { SignJWT, type JWTPayload } from 'jose'
import { randomUUID } from 'node:crypto'
import t from 'tap'
import jwtRevocation, { MemoryStore, type RevocationStore } from '../../src/index.js'
import { ssfReceiver, type SsfReceiverOptions } from '../../src/sources/ssf/index.js'
import { setExamples, subjectIdentifierExamples } from '../fixtures/ssf-examples.js'
import { AUDIENCE, bearer, ISSUER, makeKey, refusalsOf, sign, type TestKey } from '../helpers/helpers.js'

const CAEP = 'https://schemas.openid.net/secevent/caep/event-type/'
const TRANSMITTER = 'https://idp.test/'
const RECEIVER = 'https://api.test/ssf'
const PUSH = 'Bearer a-push-secret-the-transmitter-sends'

const tokenKey = await makeKey('ES256')
const transmitterKey = await makeKey('ES256')
const strangerKey = await makeKey('ES256')

/** Signs a SET as a transmitter does (typ secevent+jwt, no exp). */
async function signSet (key: TestKey, claims: JWTPayload, header: Record<string, unknown> = {}): Promise<string> {
  const payload: JWTPayload = { iss: TRANSMITTER, aud: RECEIVER, iat: Math.floor(Date.now() / 1000), jti: randomUUID(), ...claims }
  for (const k of Object.keys(payload)) if (payload[k] === undefined) delete payload[k]
  return new SignJWT(payload).setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'secevent+jwt', ...header }).sign(key.privateKey)
}

const sessionRevoked = (sub: string, extra: Record<string, unknown> = {}) => ({
  sub_id: { format: 'iss_sub', iss: ISSUER, sub },
  events: { [CAEP + 'session-revoked']: { ...extra } },
})

interface Harness {
  app: FastifyInstance
  revoked: Array<{ sub: string, at: number | undefined }>
  sessions: Array<{ sid: string, at: number | undefined }>
}

async function receiverApp (tt: { teardown: (fn: () => unknown) => void }, options: Partial<SsfReceiverOptions> = {}, store?: RevocationStore): Promise<Harness> {
  const app = Fastify()
  tt.teardown(() => app.close())
  await app.register(jwtRevocation, { jwks: { keys: [tokenKey.publicJwk] }, issuer: ISSUER, audience: AUDIENCE, ...(store === undefined ? {} : { store }) })
  refusalsOf(app)
  const revoked: Harness['revoked'] = []
  const original = app.revocation.revokeSubject.bind(app.revocation)
  app.revocation.revokeSubject = async (sub, opts = {}, author) => {
    revoked.push({ sub, at: opts.at })
    return original(sub, opts, author)
  }
  const sessions: Harness['sessions'] = []
  const revokeSession = app.revocation.revokeSession.bind(app.revocation)
  app.revocation.revokeSession = async (sid, opts = {}, author) => {
    sessions.push({ sid, at: opts.revokedAt })
    return revokeSession(sid, opts, author)
  }
  await app.register(ssfReceiver, { issuer: TRANSMITTER, audience: RECEIVER, jwks: { keys: [transmitterKey.publicJwk] }, ...options } as SsfReceiverOptions)
  app.get('/orders', async (req) => ({ sub: req.auth!.subject }))
  await app.ready()
  return { app, revoked, sessions }
}

const push = (app: FastifyInstance, body: string, headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url: '/ssf/events', payload: body, headers: { 'content-type': 'application/secevent+jwt', accept: 'application/json', ...headers } })

t.test('a pushed session-revoked SET cuts the subject off on the next request (RFC 8935 §2)', async (t) => {
  const { app, revoked } = await receiverApp(t)
  const token = await sign(tokenKey, { sub: 'user-1' })
  t.equal((await app.inject({ url: '/orders', headers: bearer(token) })).statusCode, 200)
  const res = await push(app, await signSet(transmitterKey, sessionRevoked('user-1')))
  t.equal(res.statusCode, 202, '202 Accepted')
  t.equal(res.body, '', 'no body on success')
  const after = await app.inject({ url: '/orders', headers: bearer(token) })
  t.equal(after.statusCode, 401)
  t.equal(after.json().code, 'FST_JWT_REVOCATION_TOKEN_REVOKED')
  t.same(revoked.map((r) => r.sub), ['user-1'])
  const { entries } = await app.revocation.history()
  t.match(entries, [{ type: 'subject', subject: 'user-1', actor: `ssf:${TRANSMITTER}`, reason: CAEP + 'session-revoked', source: 'ssf' }], 'the log names the transmitter and the event')
})

t.test('the revocation is dated at event_timestamp: a token issued after the event stays valid', async (t) => {
  const clock = FakeTimers.install({ toFake: ['Date'], now: Date.now() })
  t.teardown(() => clock.uninstall())
  const { app, revoked } = await receiverApp(t)
  const eventAt = Math.floor(Date.now() / 1000) - 120
  const before = await sign(tokenKey, { sub: 'user-2', iat: eventAt - 60 })
  const after = await sign(tokenKey, { sub: 'user-2', iat: eventAt + 60 })
  t.equal((await push(app, await signSet(transmitterKey, sessionRevoked('user-2', { event_timestamp: eventAt })))).statusCode, 202)
  t.same(revoked, [{ sub: 'user-2', at: eventAt * 1000 }])
  t.equal((await app.inject({ url: '/orders', headers: bearer(before) })).statusCode, 401, 'issued before the event: refused')
  t.equal((await app.inject({ url: '/orders', headers: bearer(after) })).statusCode, 200, 'issued after the event: valid')

  // A timestamp in the future is not trusted: the revocation is dated now.
  await push(app, await signSet(transmitterKey, sessionRevoked('user-3', { event_timestamp: eventAt + 3600 })))
  t.same(revoked[1], { sub: 'user-3', at: undefined })
})

t.test('conformance: the example SETs of CAEP 1.0, RISC 1.0 and RFC 8935', async (t) => {
  for (const example of setExamples) {
    await t.test(example.source, async (t) => {
      const clock = FakeTimers.install({ toFake: ['Date'], now: ((example.claims.iat as number) + 30) * 1000 })
      t.teardown(() => clock.uninstall())
      const { app, revoked, sessions } = await receiverApp(t, {
        issuer: example.claims.iss as string,
        audience: example.claims.aud as string | string[],
        tokenIssuer: example.claims.iss as string,
      })
      const res = await push(app, await signSet(transmitterKey, example.claims))
      t.equal(res.statusCode, 202, res.body)
      t.same(revoked.map((r) => r.sub), example.revokes)
      t.same(sessions.map((s) => s.sid), example.revokesSessions ?? [])
      if (example.at !== undefined) {
        t.same(revoked.map((r) => r.at), example.revokes.map(() => example.at))
        t.same(sessions.map((s) => s.at), (example.revokesSessions ?? []).map(() => example.at))
      }
    })
  }
})

t.test('refusals: 400 with RFC 8935 §2.4 codes, and nothing changes', async (t) => {
  const { app, revoked } = await receiverApp(t, { algorithms: ['ES256'] })
  const now = Math.floor(Date.now() / 1000)
  const good = sessionRevoked('victim')
  const rsaKey = await makeKey('RS256', transmitterKey.kid)
  const valid = await signSet(transmitterKey, good)
  const [h, p] = valid.split('.')
  const forgedPayload = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p!, 'base64url').toString()), sub_id: { format: 'iss_sub', iss: ISSUER, sub: 'someone-else' } })).toString('base64url')
  const cases: Array<[string, () => Promise<string>, string]> = [
    ['not a JWT', async () => 'not-a-jwt', 'invalid_request'],
    ['an unsigned JWT', async () => `${Buffer.from('{"alg":"none","typ":"secevent+jwt"}').toString('base64url')}.${p}.`, 'invalid_request'],
    ['an access token posted as a SET (typ at+jwt)', () => sign(transmitterKey, { iss: TRANSMITTER, aud: RECEIVER, events: good.events }, { header: { typ: 'at+jwt' } }), 'invalid_request'],
    ['no typ', () => sign(transmitterKey, { iss: TRANSMITTER, aud: RECEIVER, events: good.events }, { expiresIn: null }), 'invalid_request'],
    ['no events', () => signSet(transmitterKey, { events: undefined }), 'invalid_request'],
    ['empty events', () => signSet(transmitterKey, { events: {} }), 'invalid_request'],
    ['no jti', () => signSet(transmitterKey, { ...good, jti: undefined }), 'invalid_request'],
    ['no iat', () => signSet(transmitterKey, { ...good, iat: undefined }), 'invalid_request'],
    ['iat in the future', () => signSet(transmitterKey, { ...good, iat: now + 3600 }), 'invalid_request'],
    ['older than maxAge', () => signSet(transmitterKey, { ...good, iat: now - 2 * 86400 }), 'invalid_request'],
    ['expired', () => signSet(transmitterKey, { ...good, exp: now - 10 }), 'invalid_request'],
    ['signed by an unknown key', () => signSet(strangerKey, good), 'invalid_key'],
    ['an algorithm outside the allow-list', () => signSet(rsaKey, good), 'invalid_key'],
    ['a tampered payload', async () => `${h}.${forgedPayload}.${valid.split('.')[2]}`, 'invalid_key'],
    ['another issuer', () => signSet(transmitterKey, { ...good, iss: 'https://evil.test/' }), 'invalid_issuer'],
    ['another audience', () => signSet(transmitterKey, { ...good, aud: 'https://other-receiver.test/' }), 'invalid_audience'],
  ]
  for (const [name, make, code] of cases) {
    const res = await push(app, await make())
    t.equal(res.statusCode, 400, `${name}: 400`)
    t.match(res.headers['content-type'], /^application\/json/)
    t.equal(res.json().err, code, `${name}: ${code}`)
    t.type(res.json().description, 'string')
  }
  t.same(revoked, [], 'no refused SET revoked anything')
})

t.test('content type and body size are checked before the SET is read', async (t) => {
  const { app, revoked } = await receiverApp(t, { bodyLimit: 2048 })
  const set = await signSet(transmitterKey, sessionRevoked('victim'))
  const json = await app.inject({ method: 'POST', url: '/ssf/events', payload: { set } })
  t.equal(json.statusCode, 415)
  t.equal(json.json().err, 'invalid_request')
  const text = await push(app, set, { 'content-type': 'text/plain' })
  t.equal(text.statusCode, 415)
  const big = await push(app, set + '.'.repeat(4096))
  t.equal(big.statusCode, 413)
  t.same(big.json(), { err: 'invalid_request', description: 'The SET is larger than this receiver accepts' })
  t.same(revoked, [])
})

t.test('a replayed jti has no second effect, also when delivered concurrently', async (t) => {
  const { app, revoked } = await receiverApp(t)
  const set = await signSet(transmitterKey, sessionRevoked('user-4'))
  const [a, b] = await Promise.all([push(app, set), push(app, set)])
  t.same([a.statusCode, b.statusCode], [202, 202])
  t.equal((await push(app, set)).statusCode, 202, 'a later replay is acknowledged')
  t.equal(revoked.length, 1, 'applied once')
})

t.test('push authorization: the transmitter must present the configured header', async (t) => {
  const { app, revoked } = await receiverApp(t, { authorizationHeader: PUSH })
  const set = () => signSet(transmitterKey, sessionRevoked('user-5'))
  for (const [name, headers] of [['missing', {}], ['wrong', { authorization: 'Bearer wrong' }], ['other scheme', { authorization: 'Basic ' + PUSH }]] as const) {
    const res = await push(app, await set(), headers)
    t.equal(res.statusCode, 400, name)
    t.equal(res.json().err, 'authentication_failed', name)
  }
  t.same(revoked, [])
  t.equal((await push(app, await set(), { authorization: PUSH })).statusCode, 202)
  t.equal(revoked.length, 1)
})

const complexSessionRevoked = (sub: string, sid: string) => ({
  sub_id: { format: 'complex', session: { format: 'opaque', id: sid }, user: { format: 'iss_sub', iss: ISSUER, sub } },
  events: { [CAEP + 'session-revoked']: {} },
})

t.test('a session-revoked SET naming a session revokes that session, not the user', async (t) => {
  const { app, revoked, sessions } = await receiverApp(t)
  const status = async (token: string) => (await app.inject({ url: '/orders', headers: bearer(token) })).statusCode
  const iat = Math.floor(Date.now() / 1000) - 5
  const laptop = await sign(tokenKey, { sub: 'user-9', sid: 'sid-laptop', iat })
  const phone = await sign(tokenKey, { sub: 'user-9', sid: 'sid-phone', iat })
  const noSession = await sign(tokenKey, { sub: 'user-9', iat })
  for (const token of [laptop, phone, noSession]) t.equal(await status(token), 200)
  t.equal((await push(app, await signSet(transmitterKey, complexSessionRevoked('user-9', 'sid-laptop')))).statusCode, 202)
  t.same(sessions.map((s) => s.sid), ['sid-laptop'])
  t.match((await app.revocation.history()).entries, [{ type: 'session', sessionId: 'sid-laptop', actor: `ssf:${TRANSMITTER}`, source: 'ssf' }])
  t.same(revoked, [], 'the user is not cut off')
  t.equal(await status(laptop), 401, 'the named session is refused')
  t.equal(refusalsOf(app).at(-1)?.reason, 'session')
  t.equal(await status(phone), 200, 'the user\'s other session stays valid')
  t.equal(await status(noSession), 200, 'a token without sid stays valid')

  // Without a session (a simple subject, or a session of a format that is no sid), the subject is revoked as before.
  await push(app, await signSet(transmitterKey, { ...complexSessionRevoked('user-10', 'x'), sub_id: { format: 'complex', session: { format: 'email', email: 'a@b.test' }, user: { format: 'iss_sub', iss: ISSUER, sub: 'user-10' } } }))
  await push(app, await signSet(transmitterKey, sessionRevoked('user-11')))
  t.same(revoked.map((r) => r.sub), ['user-10', 'user-11'])
  t.same(sessions.map((s) => s.sid), ['sid-laptop'])
  // A session named in another event type is no reason to spare the user.
  await push(app, await signSet(transmitterKey, { ...complexSessionRevoked('user-12', 'sid-x'), events: { [CAEP + 'credential-change']: {} } }))
  t.same(revoked.map((r) => r.sub), ['user-10', 'user-11', 'user-12'])
})

t.test('a session-revoked SET on a store without sessions cuts the user off instead', async (t) => {
  const inner = new MemoryStore()
  const store: RevocationStore = {
    lookup: (query) => inner.lookup(query),
    revokeToken: (entry) => inner.revokeToken(entry),
    listRevokedTokens: (filter) => inner.listRevokedTokens(filter),
    revokeClient: (entry) => inner.revokeClient(entry),
    revokeSubject: (entry) => inner.revokeSubject(entry),
  }
  const { app, revoked, sessions } = await receiverApp(t, {}, store)
  const phone = await sign(tokenKey, { sub: 'user-9', sid: 'sid-phone', iat: Math.floor(Date.now() / 1000) - 5 })
  t.equal((await push(app, await signSet(transmitterKey, complexSessionRevoked('user-9', 'sid-laptop')))).statusCode, 202)
  t.same(sessions, [])
  t.same(revoked.map((r) => r.sub), ['user-9'], 'wider, never narrower: the user is revoked')
  t.equal((await app.inject({ url: '/orders', headers: bearer(phone) })).statusCode, 401)
})

t.test('subject identifiers (RFC 9493): iss_sub of the token issuer, opaque, others through resolveSubject', async (t) => {
  const resolved: unknown[] = []
  const { app, revoked } = await receiverApp(t, {
    resolveSubject: async (subId) => {
      resolved.push(subId)
      return subId.format === 'email' ? 'user-from-email' : null
    },
  })
  const events = { [CAEP + 'session-revoked']: {} }
  await push(app, await signSet(transmitterKey, { sub_id: { format: 'iss_sub', iss: 'https://not-our-token-issuer.test/', sub: 'x' }, events }))
  await push(app, await signSet(transmitterKey, { sub_id: subjectIdentifierExamples.opaque, events }))
  await push(app, await signSet(transmitterKey, { sub_id: subjectIdentifierExamples.email, events }))
  await push(app, await signSet(transmitterKey, { sub_id: subjectIdentifierExamples.phone, events }))
  await push(app, await signSet(transmitterKey, { events }))
  t.same(revoked.map((r) => r.sub), ['11112222333344445555', 'user-from-email'])
  t.same(resolved.map((s) => (s as { format: string }).format), ['iss_sub', 'email', 'phone_number'], 'an iss_sub of another issuer and other formats go to resolveSubject')
})

t.test('a SET is never accepted as an access token (RFC 8417 §4.1)', async (t) => {
  const { app } = await receiverApp(t)
  const asSet = await sign(tokenKey, { sub: 'user-6', events: sessionRevoked('user-6').events }, { header: { typ: 'secevent+jwt' } })
  t.equal((await app.inject({ url: '/orders', headers: bearer(asSet) })).statusCode, 401, 'typ secevent+jwt')
  const withEvents = await sign(tokenKey, { sub: 'user-6', events: {} })
  t.equal((await app.inject({ url: '/orders', headers: bearer(withEvents) })).statusCode, 401, 'an events claim')
  const statusList = await sign(tokenKey, { sub: 'user-6' }, { header: { typ: 'application/statuslist+jwt' } })
  t.equal((await app.inject({ url: '/orders', headers: bearer(statusList) })).statusCode, 401, 'a status list token')
})

t.test('a store failure answers 503 and the retried SET is applied', async (t) => {
  const { app, revoked } = await receiverApp(t)
  const store = app.revocation.store
  const original = store.revokeSubject.bind(store)
  let fail = true
  store.revokeSubject = async (e) => {
    if (fail) throw Object.assign(new Error('down'), { statusCode: 503 })
    return original(e)
  }
  const set = await signSet(transmitterKey, sessionRevoked('user-7'))
  const first = await push(app, set)
  t.equal(first.statusCode, 503)
  t.equal(first.headers['retry-after'], '5')
  t.notMatch(first.body, /down/, 'no internal detail')
  fail = false
  t.equal((await push(app, set)).statusCode, 202)
  t.same(revoked.map((r) => r.sub), ['user-7', 'user-7'], 'the retry is applied')
  t.not((await store.lookup({ audiences: [AUDIENCE], subject: 'user-7', includeGrant: false })).subjectRevokedAt, null)
})

t.test('registration checks', async (t) => {
  const bare = Fastify()
  t.teardown(() => bare.close())
  bare.register(ssfReceiver, { issuer: TRANSMITTER, audience: RECEIVER, jwks: { keys: [transmitterKey.publicJwk] } })
  await t.rejects(async () => { await bare.ready() }, /needs fastify-jwt-revocation/)
  for (const [options, pattern] of [
    [{ audience: RECEIVER, jwks: { keys: [transmitterKey.publicJwk] } }, /issuer/],
    [{ issuer: TRANSMITTER, audience: RECEIVER }, /jwksUri/],
    [{ issuer: TRANSMITTER, audience: RECEIVER, jwks: { keys: [transmitterKey.publicJwk] }, authorizationHeader: 'short' }, /authorizationHeader/],
    [{ issuer: TRANSMITTER, audience: RECEIVER, jwks: { keys: [transmitterKey.publicJwk] }, algorithms: ['HS256'] }, /algorithms/],
  ] as const) {
    const app = Fastify()
    t.teardown(() => app.close())
    await app.register(jwtRevocation, { jwks: { keys: [tokenKey.publicJwk] }, issuer: ISSUER, audience: AUDIENCE })
    app.register(ssfReceiver, options as unknown as SsfReceiverOptions)
    await t.rejects(async () => { await app.ready() }, pattern)
  }
})

t.test('with several issuers, an event naming one issuer\'s subject or session leaves the other issuer\'s of the same id alone', async (t) => {
  const OTHER = 'https://other-issuer.test/'
  const otherKey = await makeKey('ES256')
  const severalIssuers = (store?: RevocationStore) => ({
    audience: AUDIENCE,
    issuers: [{ issuer: ISSUER, jwks: { keys: [tokenKey.publicJwk] } }, { issuer: OTHER, jwks: { keys: [otherKey.publicJwk] } }],
    ...(store === undefined ? {} : { store }),
  })
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(jwtRevocation, severalIssuers())
  await app.register(ssfReceiver, { issuer: TRANSMITTER, audience: RECEIVER, jwks: { keys: [transmitterKey.publicJwk] } })
  app.get('/orders', async (req) => ({ sub: req.auth!.subject }))
  await app.ready()
  const status = async (token: string) => (await app.inject({ url: '/orders', headers: bearer(token) })).statusCode
  const iat = Math.floor(Date.now() / 1000) - 5
  const ours = (claims: JWTPayload) => sign(tokenKey, { iat, ...claims })
  const theirs = (claims: JWTPayload) => sign(otherKey, { iss: OTHER, iat, ...claims })

  const changed = [await ours({ sub: 'user-1' }), await theirs({ sub: 'user-1' })]
  const session = [await ours({ sub: 'user-2', sid: 'sid-2' }), await theirs({ sub: 'user-2', sid: 'sid-2' })]
  const opaque = [await ours({ sub: 'user-3' }), await theirs({ sub: 'user-3' })]
  for (const token of [...changed, ...session, ...opaque]) t.equal(await status(token), 200)

  const credentialChange = { [CAEP + 'credential-change']: {} }
  t.equal((await push(app, await signSet(transmitterKey, { sub_id: { format: 'iss_sub', iss: ISSUER, sub: 'user-1' }, events: credentialChange }))).statusCode, 202)
  t.same([await status(changed[0]!), await status(changed[1]!)], [401, 200], 'an iss_sub subject: that issuer\'s user only')
  t.equal((await push(app, await signSet(transmitterKey, complexSessionRevoked('user-2', 'sid-2')))).statusCode, 202)
  t.same([await status(session[0]!), await status(session[1]!)], [401, 200], 'a session of a complex subject\'s iss_sub user: that issuer\'s session only')
  // An opaque subject names no issuer: every issuer's, as with one issuer.
  t.equal((await push(app, await signSet(transmitterKey, { sub_id: { format: 'opaque', id: 'user-3' }, events: credentialChange }))).statusCode, 202)
  t.same([await status(opaque[0]!), await status(opaque[1]!)], [401, 401], 'an opaque subject: every issuer\'s')

  // A store that keeps no rules scoped to an issuer.
  const noScopes = Object.assign(new MemoryStore(), { issuerScopes: false })
  const refused = Fastify()
  t.teardown(() => refused.close())
  await refused.register(jwtRevocation, severalIssuers(noScopes))
  refused.register(ssfReceiver, { issuer: TRANSMITTER, audience: RECEIVER, jwks: { keys: [transmitterKey.publicJwk] } })
  await t.rejects(async () => { await refused.ready() }, { message: /ssfReceiver.*with several issuers, needs a store that keeps rules scoped to an issuer/ })
})
