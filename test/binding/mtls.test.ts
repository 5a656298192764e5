// Certificate-bound tokens (RFC 8705): over real mutual TLS on loopback with
// certificates made here, and through a TLS-terminating proxy's header, which only a
// peer that trustProxy trusts may send.
import Fastify, { type FastifyInstance } from 'fastify'
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT } from 'jose'
import { createHash, randomUUID, X509Certificate } from 'node:crypto'
import { request as httpsRequest } from 'node:https'
import type { AddressInfo } from 'node:net'
import { generate } from 'selfsigned'
import t, { type Test } from 'tap'
import jwtRevocation from '../../src/index.js'
import { AUDIENCE, bearer, DPOP_CHALLENGE, ISSUER, makeKey, sign } from '../helpers/helpers.js'

const issuerKey = await makeKey('ES256')
const jwks = { keys: [issuerKey.publicJwk] }

const certificate = (commonName: string) => generate([{ name: 'commonName', value: commonName }], { keyType: 'ec', algorithm: 'sha256' })
const [server, alice, mallory] = await Promise.all([certificate('localhost'), certificate('alice'), certificate('mallory')])
/** RFC 8705 §3.1, computed here from the PEM rather than by the code under test. */
const x5t = (pem: string) => createHash('sha256').update(new X509Certificate(pem).raw).digest('base64url')

function routes (app: FastifyInstance): void {
  app.get('/orders', async (req) => ({ binding: req.auth!.binding, confirmation: req.auth!.confirmation }))
}

async function mtlsServer (t: Test): Promise<string> {
  const app = Fastify({ https: { key: server.private, cert: server.cert, requestCert: true, rejectUnauthorized: false } })
  t.teardown(() => app.close())
  await app.register(jwtRevocation, { jwks, audience: AUDIENCE, issuer: ISSUER, mtls: true })
  routes(app)
  await app.listen({ port: 0, host: '127.0.0.1' })
  return `https://127.0.0.1:${(app.server.address() as AddressInfo).port}`
}

/** One request on a connection of its own, presenting `client`'s certificate (or none). */
function call (url: string, token: string, client?: { cert: string, private: string }, headers: Record<string, string> = bearer(token)): Promise<{ status: number, body: string, challenge: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(`${url}/orders`, {
      headers,
      agent: false,
      // The server's certificate is self-signed and not what is under test here.
      rejectUnauthorized: false,
      ...(client === undefined ? {} : { cert: client.cert, key: client.private }),
    }, (res) => {
      let body = ''
      res.on('data', (chunk) => { body += chunk })
      res.on('end', () => resolve({ status: res.statusCode!, body, challenge: res.headers['www-authenticate'] }))
    })
    req.on('error', reject)
    req.end()
  })
}

t.test('over mutual TLS: the token works with its certificate, not with another or none', async (t) => {
  const url = await mtlsServer(t)
  const token = await sign(issuerKey, { cnf: { 'x5t#S256': x5t(alice.cert) } })
  const ok = await call(url, token, alice)
  t.equal(ok.status, 200, ok.body)
  t.same(JSON.parse(ok.body), { binding: 'mtls', confirmation: { 'x5t#S256': x5t(alice.cert) } })
  t.equal((await call(url, token, alice)).status, 200, 'again, now from the verified-token cache')
  const other = await call(url, token, mallory)
  t.equal(other.status, 401)
  t.equal(other.challenge, 'Bearer realm="api", error="invalid_token", error_description="The token is bound to another client certificate"' + DPOP_CHALLENGE)
  const none = await call(url, token)
  t.equal(none.status, 401)
  t.match(none.challenge, /this request does not prove it/)
  const unbound = await call(url, await sign(issuerKey), mallory)
  t.equal(unbound.status, 200, 'an unbound token needs no certificate')
  t.same(JSON.parse(unbound.body), { binding: null, confirmation: null })
})

t.test('a token bound to a DPoP key and a certificate needs both', async (t) => {
  const url = await mtlsServer(t)
  const { privateKey, publicKey } = await generateKeyPair('ES256')
  const jwk = await exportJWK(publicKey)
  const token = await sign(issuerKey, { cnf: { jkt: await calculateJwkThumbprint(jwk), 'x5t#S256': x5t(alice.cert) } })
  const dpop = async () => ({
    authorization: `DPoP ${token}`,
    dpop: await new SignJWT({ htm: 'GET', htu: `${url}/orders`, jti: randomUUID(), ath: createHash('sha256').update(token).digest('base64url') })
      .setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk }).setIssuedAt().sign(privateKey),
  })
  const both = await call(url, token, alice, await dpop())
  t.equal(both.status, 200, both.body)
  t.equal(JSON.parse(both.body).binding, 'dpop')
  t.equal((await call(url, token, mallory, await dpop())).status, 401, 'the proof without the certificate')
  t.equal((await call(url, token, alice)).status, 401, 'the certificate without the proof')
})

t.test('mtls off: a certificate-bound token is refused even with the right certificate', async (t) => {
  const app = Fastify({ https: { key: server.private, cert: server.cert, requestCert: true, rejectUnauthorized: false } })
  t.teardown(() => app.close())
  await app.register(jwtRevocation, { jwks, audience: AUDIENCE, issuer: ISSUER })
  routes(app)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const token = await sign(issuerKey, { cnf: { 'x5t#S256': x5t(alice.cert) } })
  t.equal((await call(`https://127.0.0.1:${(app.server.address() as AddressInfo).port}`, token, alice)).status, 401)
})

t.test('behind a proxy: the forwarded certificate counts only when trustProxy trusts the peer', async (t) => {
  const token = await sign(issuerKey, { cnf: { 'x5t#S256': x5t(alice.cert) } })
  const forwarded = (pem: string) => ({ ...bearer(token), 'x-client-cert': encodeURIComponent(pem), 'x-forwarded-for': '203.0.113.9' })
  const app = Fastify({ trustProxy: ['127.0.0.1'] })
  t.teardown(() => app.close())
  await app.register(jwtRevocation, { jwks, audience: AUDIENCE, issuer: ISSUER, mtls: { header: 'X-Client-Cert' } })
  routes(app)
  const proxied = await app.inject({ url: '/orders', remoteAddress: '127.0.0.1', headers: forwarded(alice.cert) })
  t.equal(proxied.statusCode, 200, proxied.body)
  t.equal(proxied.json().binding, 'mtls')
  t.equal((await app.inject({ url: '/orders', remoteAddress: '127.0.0.1', headers: forwarded(mallory.cert) })).statusCode, 401, 'another certificate')
  t.equal((await app.inject({ url: '/orders', remoteAddress: '198.51.100.7', headers: forwarded(alice.cert) })).statusCode, 401, 'a client connecting directly cannot send it')
  const { 'x-forwarded-for': _, ...noForwardedFor } = forwarded(alice.cert)
  t.equal((await app.inject({ url: '/orders', remoteAddress: '127.0.0.1', headers: noForwardedFor })).statusCode, 401, 'a peer that forwards for nobody is not taken as a proxy')
  t.equal((await app.inject({ url: '/orders', remoteAddress: '127.0.0.1', headers: { ...forwarded(alice.cert), 'x-client-cert': 'not%20a%20certificate' } })).statusCode, 401, 'garbage')

  const untrusting = Fastify()
  t.teardown(() => untrusting.close())
  await untrusting.register(jwtRevocation, { jwks, audience: AUDIENCE, issuer: ISSUER, mtls: { header: 'x-client-cert' } })
  routes(untrusting)
  t.equal((await untrusting.inject({ url: '/orders', remoteAddress: '127.0.0.1', headers: forwarded(alice.cert) })).statusCode, 401, 'without trustProxy nobody may send it')
})
