// OpenID Connect Back-Channel Logout 1.0 against real HTTP: the OP signs Logout Tokens with
// jose and serves its JWKS from a local server; the API listens and is posted forms by fetch.
import Fastify, { type FastifyInstance } from 'fastify'
import { CompactSign, SignJWT, type JWTPayload } from 'jose'
import { KeyObject, randomUUID, sign as cryptoSign } from 'node:crypto'
import t from 'tap'
import jwtRevocation, { MemoryStore, type RevocationStore } from '../../src/index.js'
import { RedisStore } from '../../src/stores/redis.js'
import { backchannelLogout, BACKCHANNEL_LOGOUT_EVENT, type BackchannelLogoutOptions } from '../../src/sources/logout/index.js'
import { AUDIENCE, bearer, ISSUER, json, jwksServer, makeKey, sign, type TestKey } from '../helpers/helpers.js'
import { connectRedis, uniqueName } from '../helpers/services.js'

const OP = 'https://op.test/'
const CLIENT = 'api-client-id'

const tokenKey = await makeKey('ES256')
const opKey = await makeKey('ES256')
const strangerKey = await makeKey('ES256')

interface Op { jwksUri: string }

/** The OpenID Provider's key set, over HTTP. */
async function openIdProvider (tt: { teardown: (fn: () => unknown) => void }): Promise<Op> {
  const server = await jwksServer(tt, (path, res) => {
    if (path === '/jwks') return json(res, { keys: [opKey.publicJwk] })
    json(res, {}, 404)
  })
  return { jwksUri: `${server.url}/jwks` }
}

/** The claims an OP writes in a Logout Token (§2.4); `claims` override them (undefined drops one). */
function logoutClaims (claims: JWTPayload = {}): JWTPayload {
  const now = Math.floor(Date.now() / 1000)
  const payload: JWTPayload = {
    iss: OP, aud: CLIENT, iat: now, exp: now + 120, jti: randomUUID(), sub: 'user-1',
    events: { [BACKCHANNEL_LOGOUT_EVENT]: {} }, ...claims,
  }
  for (const k of Object.keys(payload)) if (payload[k] === undefined) delete payload[k]
  return payload
}

async function signLogout (claims: JWTPayload = {}, header: Record<string, unknown> = {}, key: TestKey = opKey): Promise<string> {
  return new SignJWT(logoutClaims(claims)).setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'logout+jwt', ...header }).sign(key.privateKey)
}

/** Signs the exact JSON text given, as a non-jose issuer might write it. */
async function signText (payloadText: string, header: Record<string, unknown> = { alg: opKey.alg, kid: opKey.kid, typ: 'logout+jwt' }): Promise<string> {
  return new CompactSign(new TextEncoder().encode(payloadText)).setProtectedHeader(header as { alg: string }).sign(opKey.privateKey)
}

/** Signs header and payload texts exactly as written (jose would re-serialize the header). */
function signRaw (headerText: string, payloadText: string): string {
  const input = `${Buffer.from(headerText).toString('base64url')}.${Buffer.from(payloadText).toString('base64url')}`
  const signature = cryptoSign('sha256', Buffer.from(input), { key: KeyObject.from(opKey.privateKey), dsaEncoding: 'ieee-p1363' })
  return `${input}.${signature.toString('base64url')}`
}

interface Api { app: FastifyInstance, url: string, revoked: string[] }

/** An API instance listening on a port, with the plugin and the back-channel endpoint. */
async function api (tt: { teardown: (fn: () => unknown) => void }, op: Op, store: RevocationStore = new MemoryStore(), options: Partial<BackchannelLogoutOptions> = {}): Promise<Api> {
  const app = Fastify()
  tt.teardown(() => app.close())
  await app.register(jwtRevocation, { jwks: { keys: [tokenKey.publicJwk] }, issuer: ISSUER, audience: AUDIENCE, store, cache: { max: 1000, ttl: 60_000 } })
  const revoked: string[] = []
  const revokeSession = app.revocation.revokeSession.bind(app.revocation)
  app.revocation.revokeSession = async (sid, opts, author) => {
    revoked.push(`sid:${sid}`)
    return revokeSession(sid, opts, author)
  }
  const revokeSubject = app.revocation.revokeSubject.bind(app.revocation)
  app.revocation.revokeSubject = async (sub, opts, author) => {
    revoked.push(`sub:${sub}`)
    return revokeSubject(sub, opts, author)
  }
  await app.register(backchannelLogout, { path: '/backchannel-logout', issuer: OP, jwksUri: op.jwksUri, audience: CLIENT, ...options })
  app.get('/orders', async (req) => ({ sub: req.auth!.subject }))
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, url, revoked }
}

/** POSTs a form, as an OP does (§2.5). */
async function postForm (base: string, body: string, contentType = 'application/x-www-form-urlencoded'): Promise<Response> {
  return fetch(`${base}/backchannel-logout`, { method: 'POST', headers: { 'content-type': contentType }, body })
}
const logout = (base: string, token: string) => postForm(base, new URLSearchParams({ logout_token: token }).toString())

async function status (base: string, token: string): Promise<number> {
  return (await fetch(`${base}/orders`, { headers: bearer(token) })).status
}

t.test('a Logout Token naming a session revokes that session only; 200, no-store', async (t) => {
  const op = await openIdProvider(t)
  const { app, url, revoked } = await api(t, op)
  const sessionOne = await sign(tokenKey, { sub: 'user-1', sid: 'session-1' })
  const sessionTwo = await sign(tokenKey, { sub: 'user-1', sid: 'session-2' })
  t.equal(await status(url, sessionOne), 200)
  const res = await logout(url, await signLogout({ sid: 'session-1' }))
  t.equal(res.status, 200)
  t.equal(res.headers.get('cache-control'), 'no-store')
  t.equal(await res.text(), '')
  t.same(revoked, ['sid:session-1'], 'the session, not the subject, is revoked when sid is present')
  t.match((await app.revocation.history()).entries, [{ type: 'session', sessionId: 'session-1', actor: `logout:${OP}`, source: 'logout' }], 'the log names the OP')
  t.equal(await status(url, sessionOne), 401, 'the logged-out session is refused')
  t.equal(await status(url, sessionTwo), 200, "the user's other session is still accepted")
})

t.test('a Logout Token with sub only revokes the subject', async (t) => {
  const op = await openIdProvider(t)
  const { app, url, revoked } = await api(t, op)
  const mine = await sign(tokenKey, { sub: 'user-9', sid: 'session-9' })
  const theirs = await sign(tokenKey, { sub: 'user-10' })
  const res = await logout(url, await signLogout({ sub: 'user-9', sid: undefined }))
  t.equal(res.status, 200)
  t.same(revoked, ['sub:user-9'])
  t.match((await app.revocation.history()).entries, [{ type: 'subject', subject: 'user-9', actor: `logout:${OP}`, reason: 'OpenID Connect back-channel logout', source: 'logout' }])
  t.equal(await status(url, mine), 401, 'every token of the subject is refused')
  t.equal(await status(url, theirs), 200, 'another subject is untouched')
})

t.test('the revocation is dated at the Logout Token iat: a later login stays valid', async (t) => {
  const op = await openIdProvider(t)
  const { url } = await api(t, op)
  const now = Math.floor(Date.now() / 1000)
  const before = await sign(tokenKey, { sub: 'user-2', iat: now - 30 })
  const after = await sign(tokenKey, { sub: 'user-2', iat: now + 5 })
  t.equal((await logout(url, await signLogout({ sub: 'user-2', iat: now - 10 }))).status, 200)
  t.equal(await status(url, before), 401, 'issued before the logout: refused')
  t.equal(await status(url, after), 200, 'issued after the logout: accepted')
})

t.test('§2.6 refusals: 400 invalid_request, no-store, nothing echoed, nothing revoked', async (t) => {
  const op = await openIdProvider(t)
  const { url, revoked } = await api(t, op, new MemoryStore(), { algorithms: ['ES256'] })
  const now = Math.floor(Date.now() / 1000)
  const rsaKey = await makeKey('RS256', opKey.kid)
  const valid = await signLogout({ sid: 'victim-session', sub: 'victim' })
  const [h, p, s] = valid.split('.') as [string, string, string]
  const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), sub: 'someone-else' })).toString('base64url')
  const claimsText = JSON.stringify(logoutClaims({ sub: 'victim' }))
  const unsigned = (header: object) => `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${p}.`
  const tokens: Array<[string, () => Promise<string>]> = [
    ['a bad signature (tampered payload)', async () => `${h}.${forged}.${s}`],
    ['a key the OP does not publish', () => signLogout({ sub: 'victim' }, {}, strangerKey)],
    ['an algorithm outside the allow-list', () => signLogout({ sub: 'victim' }, {}, rsaKey)],
    ['alg none', async () => unsigned({ alg: 'none', typ: 'logout+jwt' })],
    ['another issuer', () => signLogout({ iss: 'https://evil.test/' })],
    ['another audience', () => signLogout({ aud: 'another-client' })],
    ['no iat', () => signLogout({ iat: undefined })],
    ['iat too old', () => signLogout({ iat: now - 3600, exp: now + 60 })],
    ['iat in the future', () => signLogout({ iat: now + 3600, exp: now + 7200 })],
    ['expired', () => signLogout({ iat: now - 60, exp: now - 10 })],
    ['no exp', () => signLogout({ exp: undefined })],
    ['no jti', () => signLogout({ jti: undefined })],
    ['an empty jti', () => signLogout({ jti: '' })],
    ['no events', () => signLogout({ events: undefined })],
    ['events without the logout event', () => signLogout({ events: { 'https://schemas.openid.net/secevent/caep/event-type/session-revoked': {} } })],
    ['the logout event not an object', () => signLogout({ events: { [BACKCHANNEL_LOGOUT_EVENT]: 'yes' } })],
    ['the logout event an array', () => signLogout({ events: { [BACKCHANNEL_LOGOUT_EVENT]: [] } })],
    ['neither sub nor sid', () => signLogout({ sub: undefined, sid: undefined })],
    ['an empty sid', () => signLogout({ sub: undefined, sid: '' })],
    ['a nonce (an ID Token)', () => signLogout({ nonce: 'n-0S6_WzA2Mj' })],
    ['typ JWT', () => signLogout({}, { typ: 'JWT' })],
    ['typ at+jwt (an access token)', () => signLogout({}, { typ: 'at+jwt' })],
    ['a duplicate member in the payload', () => signText(claimsText.replace('{', '{"sub":"someone-else",'))],
    ['a duplicate member in the header', async () => signRaw(`{"alg":"ES256","kid":"${opKey.kid}","typ":"JWT","typ":"logout+jwt"}`, claimsText)],
    ['a non-canonical base64url segment', async () => `${h}.${p}.${s.slice(0, -1)}${s.endsWith('A') ? 'B' : 'A'}`],
    ['not a JWT', async () => 'not-a-jwt'],
  ]
  for (const [name, make] of tokens) {
    const token = await make()
    const res = await logout(url, token)
    const text = await res.text()
    t.equal(res.status, 400, `${name}: 400`)
    t.equal(res.headers.get('cache-control'), 'no-store', `${name}: no-store`)
    const body = JSON.parse(text) as { error: string, error_description: string }
    t.equal(body.error, 'invalid_request', `${name}: invalid_request`)
    t.type(body.error_description, 'string')
    t.notOk(text.includes(token.split('.')[1] ?? token), `${name}: the token is not echoed`)
  }
  t.same(revoked, [], 'no refused Logout Token revoked anything')
  t.equal(await status(url, await sign(tokenKey, { sub: 'victim', sid: 'victim-session' })), 200, 'the victim is still logged in')
})

t.test('§2.5 requests: a form with exactly one logout_token, else 400 and nothing revoked', async (t) => {
  const op = await openIdProvider(t)
  const { url, revoked } = await api(t, op)
  const token = await signLogout({ sid: 'form-session' })
  const requests: Array<[string, string, string]> = [
    ['a JSON body', JSON.stringify({ logout_token: token }), 'application/json'],
    ['the token as the raw body', token, 'application/jwt'],
    ['a text body', `logout_token=${token}`, 'text/plain'],
    ['no logout_token', 'token=' + token, 'application/x-www-form-urlencoded'],
    ['an empty form', '', 'application/x-www-form-urlencoded'],
    ['two logout_token parameters', `logout_token=${token}&logout_token=${token}`, 'application/x-www-form-urlencoded'],
  ]
  for (const [name, body, type] of requests) {
    const res = await postForm(url, body, type)
    t.equal(res.status, 400, `${name}: 400`)
    t.equal(res.headers.get('cache-control'), 'no-store')
    t.equal((await res.json() as { error: string }).error, 'invalid_request', `${name}: invalid_request`)
  }
  t.same(revoked, [], 'nothing revoked')
  const withCharset = await postForm(url, `logout_token=${token}&state=ignored`, 'application/x-www-form-urlencoded; charset=UTF-8')
  t.equal(withCharset.status, 200, 'a charset parameter and other form fields are fine')
})

t.test('across instances on one RedisStore: a jti is used once, and the session is refused everywhere', async (t) => {
  const client = await connectRedis(t)
  if (client === undefined) return
  const prefix = `${uniqueName('logout')}:`
  const op = await openIdProvider(t)
  const a = await api(t, op, new RedisStore({ client, prefix }))
  const b = await api(t, op, new RedisStore({ client, prefix }))
  const sessionOne = await sign(tokenKey, { sub: 'user-r', sid: 'r-session-1' })
  const sessionTwo = await sign(tokenKey, { sub: 'user-r', sid: 'r-session-2' })
  for (const { url } of [a, b]) t.equal(await status(url, sessionOne), 200, 'cached as valid on each instance first')

  const token = await signLogout({ sub: 'user-r', sid: 'r-session-1' })
  t.equal((await logout(a.url, token)).status, 200, 'delivered to A')
  const replay = await logout(b.url, token)
  t.equal(replay.status, 400, 'the same Logout Token at B is a replay')
  t.match(await replay.json(), { error: 'invalid_request' })
  t.equal((await logout(a.url, token)).status, 400, 'and at A again')

  for (const [name, { url }] of [['A', a], ['B', b]] as const) {
    let refused = false
    for (let i = 0; i < 200 && !refused; i++) {
      refused = await status(url, sessionOne) === 401
      if (!refused) await new Promise((resolve) => setTimeout(resolve, 10))
    }
    t.ok(refused, `${name}: the logged-out session is refused`)
    t.equal(await status(url, sessionTwo), 200, `${name}: another session of the same user is accepted`)
  }
})

t.test('registration: the core plugin first, strict options', async (t) => {
  const op = await openIdProvider(t)
  const alone = Fastify()
  t.teardown(() => alone.close())
  alone.register(backchannelLogout, { issuer: OP, jwksUri: op.jwksUri, audience: CLIENT })
  await t.rejects(async () => { await alone.ready() }, /needs fastify-jwt-revocation registered first/)

  const attempts: Array<[Record<string, unknown>, RegExp]> = [
    [{ issuer: OP, jwksUri: op.jwksUri, audience: CLIENT, maxAgee: '1m' }, /backchannelLogout\.maxAgee" is not known; did you mean backchannelLogout\.maxAge\?/],
    [{ jwksUri: op.jwksUri, audience: CLIENT }, /backchannelLogout\.issuer/],
    [{ issuer: OP, audience: CLIENT }, /jwksUri/],
    [{ issuer: OP, jwksUri: op.jwksUri, jwks: { keys: [] }, audience: CLIENT }, /jwksUri/],
    [{ issuer: OP, jwksUri: op.jwksUri }, /backchannelLogout\.audience/],
    [{ issuer: OP, jwksUri: op.jwksUri, audience: CLIENT, maxAge: 'forever' }, /backchannelLogout\.maxAge/],
    [{ issuer: OP, jwksUri: op.jwksUri, audience: CLIENT, path: 'logout' }, /backchannelLogout\.path/],
    [{ issuer: OP, jwksUri: op.jwksUri, audience: CLIENT, jwksOptions: { timeout: 5 } }, /backchannelLogout\.jwksOptions\.timeout" is not known/],
  ]
  const sessionless = new MemoryStore() as RevocationStore
  sessionless.revokeSession = undefined
  const withoutSessions = Fastify()
  t.teardown(() => withoutSessions.close())
  await withoutSessions.register(jwtRevocation, { jwks: { keys: [tokenKey.publicJwk] }, issuer: ISSUER, audience: AUDIENCE, store: sessionless })
  withoutSessions.register(backchannelLogout, { issuer: OP, jwksUri: op.jwksUri, audience: CLIENT })
  await t.rejects(async () => { await withoutSessions.ready() }, /needs a store that keeps session revocations/, 'a store without revokeSession is refused at registration')

  for (const [options, message] of attempts) {
    const app = Fastify()
    t.teardown(() => app.close())
    await app.register(jwtRevocation, { jwks: { keys: [tokenKey.publicJwk] }, issuer: ISSUER, audience: AUDIENCE })
    app.register(backchannelLogout, options as unknown as BackchannelLogoutOptions)
    await t.rejects(async () => { await app.ready() }, message, JSON.stringify(options))
  }
})

t.test('issuerBaseURL: the issuer and keys come from OpenID discovery', async (t) => {
  let base = ''
  const server = await jwksServer(t, (path, res) => {
    if (path === '/.well-known/openid-configuration') return json(res, { issuer: `${base}/`, jwks_uri: `${base}/jwks` })
    if (path === '/jwks') return json(res, { keys: [opKey.publicJwk] })
    json(res, {}, 404)
  })
  base = server.url
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(jwtRevocation, { jwks: { keys: [tokenKey.publicJwk] }, issuer: ISSUER, audience: AUDIENCE })
  await app.register(backchannelLogout, { issuerBaseURL: server.url, audience: CLIENT })
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  t.equal((await logout(url, await signLogout({ sub: 'user-d', iss: `${base}/` }))).status, 200)
  t.equal((await logout(url, await signLogout({ sub: 'user-d', iss: OP }))).status, 400, 'the discovered issuer is enforced')
})

t.test('with several issuers, a Logout Token revokes the session or subject at its own issuer only', async (t) => {
  const op = await openIdProvider(t)
  const otherKey = await makeKey('ES256')
  const OTHER = 'https://other-op.test/'
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(jwtRevocation, {
    audience: AUDIENCE,
    issuers: [{ issuer: OP, jwks: { keys: [tokenKey.publicJwk] } }, { issuer: OTHER, jwks: { keys: [otherKey.publicJwk] } }],
    store: new MemoryStore(),
  })
  await app.register(backchannelLogout, { path: '/backchannel-logout', issuer: OP, jwksUri: op.jwksUri, audience: CLIENT })
  app.get('/orders', async () => 'ok')
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  const ours = { session: await sign(tokenKey, { iss: OP, sub: 'user-1', sid: 'sid-1' }), user: await sign(tokenKey, { iss: OP, sub: 'user-2' }) }
  const theirs = { session: await sign(otherKey, { iss: OTHER, sub: 'user-1', sid: 'sid-1' }), user: await sign(otherKey, { iss: OTHER, sub: 'user-2' }) }
  t.equal((await logout(url, await signLogout({ sid: 'sid-1' }))).status, 200)
  t.equal((await logout(url, await signLogout({ sub: 'user-2' }))).status, 200)
  t.same([await status(url, ours.session), await status(url, ours.user)], [401, 401], "the OP's own user is logged out")
  t.same([await status(url, theirs.session), await status(url, theirs.user)], [200, 200], "the other issuer's session and user of the same ids are not")

  const plain = new MemoryStore()
  const noScopes: RevocationStore = {
    lookup: (q) => plain.lookup(q), revokeToken: (e) => plain.revokeToken(e), listRevokedTokens: (f) => plain.listRevokedTokens(f),
    revokeClient: (e) => plain.revokeClient(e), revokeSubject: (e) => plain.revokeSubject(e), revokeSession: (e) => plain.revokeSession(e),
  }
  const refused = Fastify()
  t.teardown(() => refused.close())
  await refused.register(jwtRevocation, { audience: AUDIENCE, issuers: [{ issuer: OP, jwks: { keys: [tokenKey.publicJwk] } }, { issuer: OTHER, jwks: { keys: [otherKey.publicJwk] } }], store: noScopes })
  refused.register(backchannelLogout, { issuer: OP, jwksUri: op.jwksUri, audience: CLIENT })
  await t.rejects(async () => { await refused.ready() }, { message: /with several issuers, needs a store that keeps rules scoped to an issuer/ })
})
