// The example API against a DPoP client that is not this package: oauth4webapi makes the
// key pair, asks the example issuer for a DPoP-bound token and signs the proofs, over HTTP.
import { decodeJwt } from 'jose'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { startExampleServer } from '../../examples/demo.js'
import { DpopPartner, resend } from '../../examples/dpop-client.js'
import { buildExampleServer, ORDERS } from '../../examples/server.js'
import { RedisStore } from '../../src/stores/redis.js'
import { freePort } from '../helpers/redis-servers.js'
import { connectRedis, deleteKeys, uniqueName } from '../helpers/services.js'

t.test('a DPoP-bound token from a standard client: works, and is refused replayed, as Bearer, or from another key', async (t) => {
  const server = await startExampleServer()
  t.teardown(server.close)
  const partner = await new DpopPartner(server.url, 'partner', 'partner-secret').newKey()
  t.equal(await partner.obtainToken(ORDERS), 200)
  t.equal(partner.tokenType, 'dpop')
  t.match(decodeJwt(partner.accessToken), { cnf: { jkt: /^[A-Za-z0-9_-]{43}$/ }, aud: ORDERS })
  for (let i = 0; i < 3; i++) t.equal((await partner.call('/api/orders')).status, 200, `call ${i + 1}, each with a fresh proof`)
  const last = await partner.call('/api/orders')
  const replay = await resend(`${server.url}/api/orders`, last.sent)
  t.equal(replay.status, 401, 'the same request sent again')
  t.match(replay.challenge, /DPoP algs="ES256", error="invalid_dpop_proof", error_description="The DPoP proof has been used before"/)
  const asBearer = await resend(`${server.url}/api/orders`, new Headers({ authorization: `Bearer ${partner.accessToken}` }))
  t.equal(asBearer.status, 401)
  t.match(asBearer.challenge, /^Bearer realm="api", error="invalid_token", error_description="The token is bound to a key and this request does not prove it"/)
  const thief = await new DpopPartner(server.url, 'thief', 'none').newKey()
  const stolen = await thief.call('/api/orders', partner.accessToken)
  t.same([stolen.status, stolen.error], [401, 'invalid_token'], "another key's proof")
  const plain = await fetch(`${server.url}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ grant_type: 'client_credentials', client_id: 'partner', client_secret: 'partner-secret', audience: ORDERS }),
  })
  const bearerToken = await plain.json() as { token_type: string, access_token: string }
  t.equal(bearerToken.token_type, 'Bearer', 'without a DPoP header the issuer still mints Bearer tokens')
  t.equal(decodeJwt(bearerToken.access_token).cnf, undefined)
  const badProof = await fetch(`${server.url}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', dpop: 'not.a.proof' },
    body: JSON.stringify({ grant_type: 'client_credentials', client_id: 'partner', client_secret: 'partner-secret', audience: ORDERS }),
  })
  t.equal(badProof.status, 400)
  t.equal((await badProof.json() as { error: string }).error, 'invalid_dpop_proof')
})

t.test('two instances behind one URL, sharing a Redis store: a proof used on one is refused on the other', async (t) => {
  const client = await connectRedis(t)
  if (!client) return
  const prefix = `{${uniqueName('dpop-example')}}:`
  t.teardown(() => deleteKeys(client, prefix))
  const dataDir = await mkdtemp(join(tmpdir(), 'dpop-instances-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))
  const [portA, portB] = [await freePort(), await freePort()]
  const publicUrl = `http://127.0.0.1:${portA}`
  const a = await buildExampleServer({ publicUrl, dataDir, store: new RedisStore({ client, prefix }) })
  t.teardown(() => a.close())
  await a.listen({ port: portA, host: '127.0.0.1' })
  const b = await buildExampleServer({ publicUrl, dataDir, store: new RedisStore({ client, prefix }) })
  t.teardown(() => b.close())
  await b.listen({ port: portB, host: '127.0.0.1' })
  const instanceB = `http://127.0.0.1:${portB}`

  const partner = await new DpopPartner(publicUrl, 'partner', 'partner-secret').newKey()
  t.equal(await partner.obtainToken(ORDERS), 200)
  const onA = await partner.call('/api/orders')
  t.equal(onA.status, 200, 'instance A admits the partner')
  const replayOnB = await resend(`${instanceB}/api/orders`, onA.sent)
  t.equal(replayOnB.status, 401, 'the proof A accepted, replayed to B')
  t.match(replayOnB.challenge, /error="invalid_dpop_proof", error_description="The DPoP proof has been used before"/)
  t.equal((await partner.call('/api/orders', undefined, instanceB)).status, 200, 'B admits a fresh proof for the public URL')
})
