// The seed's partner story, scripted against a freshly started example server:
//   npm run demo
// Every step prints what it did and what came back; any surprise exits non-zero.
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { DpopPartner, resend } from './dpop-client.js'
import { buildExampleServer, MANAGEMENT, ORDERS, REPORTS, STATUS_LIST_TTL, type ExampleOptions } from './server.js'

interface Step { title: string, status: number, expected: number, detail?: string }

export class DemoFailure extends Error {}

/** Runs the story against `baseUrl`; resolves with the steps, rejects with DemoFailure at the first surprise. */
export async function runDemo (baseUrl: string, print: (line: string) => void = () => {}): Promise<Step[]> {
  const steps: Step[] = []
  const expect = (title: string, status: number, expected: number, detail?: string) => {
    const step: Step = { title, status, expected, ...(detail === undefined ? {} : { detail }) }
    steps.push(step)
    print(`${status === expected ? '✔' : '✘'} ${title}: ${status}${status === expected ? '' : ` (expected ${expected})`}${detail ? ` — ${detail}` : ''}`)
    if (status !== expected) throw new DemoFailure(`step "${title}" answered ${status}, expected ${expected}`)
  }
  const token = async (clientId: string, secret: string, audience: string) => {
    const res = await fetch(`${baseUrl}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ grant_type: 'client_credentials', client_id: clientId, client_secret: secret, audience }),
    })
    const body = await res.json() as { access_token?: string, expires_in?: number, error?: string }
    return { status: res.status, body }
  }
  const call = async (path: string, bearer: string, init: RequestInit = {}) => {
    const res = await fetch(`${baseUrl}${path}`, { ...init, headers: { authorization: `Bearer ${bearer}`, ...(init.body ? { 'content-type': 'application/json' } : {}) } })
    const text = await res.text()
    let message = ''
    try { message = (JSON.parse(text) as { message?: string }).message ?? '' } catch {}
    return { status: res.status, message, text }
  }
  const claimsOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as { jti: string, status: { status_list: { idx: number } } }
  const jtiOf = (jwt: string) => claimsOf(jwt).jti

  print('The partner story (Auth0, "Blacklists and Client Grants"), against ' + baseUrl)
  const month = await token('partner', 'partner-secret', ORDERS)
  expect('The partner obtains an access token', month.status, 200, `expires_in ${month.body.expires_in} s = ${(month.body.expires_in ?? 0) / 86400} days`)
  const partnerToken = month.body.access_token!
  expect('The partner calls GET /api/orders', (await call('/api/orders', partnerToken)).status, 200)

  const admin = await token('admin', 'admin-secret', MANAGEMENT)
  expect('The owner obtains a Management API token', admin.status, 200)
  const adminToken = admin.body.access_token!

  print('\nStrategy 1: blacklist the token by its jti')
  const jti = jtiOf(partnerToken)
  const black = await call('/api/v2/blacklists/tokens', adminToken, { method: 'POST', body: JSON.stringify({ aud: ORDERS, jti }) })
  expect(`POST /api/v2/blacklists/tokens { aud, jti: "${jti}" }`, black.status, 204)
  const afterBlack = await call('/api/orders', partnerToken)
  expect('The partner calls again with the blacklisted token', afterBlack.status, 401, afterBlack.message)

  const fresh = await token('partner', 'partner-secret', ORDERS)
  expect('But the partner simply gets a fresh token', fresh.status, 200)
  const freshToken = fresh.body.access_token!
  expect('…and is back in (a blacklist stops one token only)', (await call('/api/orders', freshToken)).status, 200)

  print('\nSender-constrained tokens (DPoP): a stolen token is useless without its key')
  const partner = await new DpopPartner(baseUrl, 'partner', 'partner-secret').newKey()
  const bound = await partner.obtainToken(ORDERS)
  const jkt = (JSON.parse(Buffer.from(partner.accessToken.split('.')[1]!, 'base64url').toString()) as { cnf?: { jkt?: string } }).cnf?.jkt
  expect('The partner, with a key pair of its own, obtains a DPoP-bound token', bound, 200, `token_type ${partner.tokenType}, cnf.jkt ${jkt}`)
  const held = await partner.call('/api/orders')
  expect('The partner calls GET /api/orders with a fresh DPoP proof', held.status, 200)
  const thief = await new DpopPartner(baseUrl, 'thief', 'none').newKey()
  const stolen = await thief.call('/api/orders', partner.accessToken)
  expect('A thief sends the stolen token with a proof from its own key', stolen.status, 401, `${stolen.error}: ${stolen.description}`)
  const asBearer = await resend(`${baseUrl}/api/orders`, new Headers({ authorization: `Bearer ${partner.accessToken}` }))
  expect('…or as a plain Bearer token', asBearer.status, 401, 'no downgrade')
  const replayed = await resend(`${baseUrl}/api/orders`, held.sent)
  expect("…or replays the partner's own request, proof and all", replayed.status, 401, 'each proof is accepted once')

  print('\nStrategy 2: delete the client grant')
  const grants = await call(`/api/v2/client-grants?client_id=partner&audience=${encodeURIComponent(ORDERS)}`, adminToken)
  expect('GET /api/v2/client-grants?client_id=partner', grants.status, 200)
  const grantId = (JSON.parse(grants.text) as Array<{ id: string }>)[0]!.id
  expect(`DELETE /api/v2/client-grants/${grantId}`, (await call(`/api/v2/client-grants/${grantId}`, adminToken, { method: 'DELETE' })).status, 204)
  const afterDelete = await call('/api/orders', freshToken)
  expect('The fresh token, valid for 30 more days, is refused at once', afterDelete.status, 401, afterDelete.message)
  const refusedToken = await token('partner', 'partner-secret', ORDERS)
  expect('The issuer refuses the partner a new token', refusedToken.status, 403, refusedToken.body.error)

  print('\nShort lifetimes, enforced by the API: maxTokenLifetime 30d')
  const long = await token('partner', 'partner-secret', REPORTS)
  expect('The issuer mints a 90-day token for the Reports API', long.status, 200, `expires_in ${(long.body.expires_in ?? 0) / 86400} days`)
  const tooLong = await call('/api/reports', long.body.access_token!)
  expect('The API refuses it: longer than its policy', tooLong.status, 401, tooLong.message)

  print('\nIssuers that revoke through standards: a Token Status List and Shared Signals')
  // Deleting the grant refused every token of the partner issued up to that second.
  await sleep(1000 - (Date.now() % 1000) + 10)
  const regrant = await call('/api/v2/client-grants', adminToken, { method: 'POST', body: JSON.stringify({ client_id: 'partner', audience: ORDERS, scope: ['read:orders'] }) })
  expect('The owner grants the partner access again', regrant.status, 201)
  const listed = await token('partner', 'partner-secret', ORDERS)
  const idx = listed.body.access_token === undefined ? -1 : claimsOf(listed.body.access_token).status.status_list.idx
  expect("The partner's new token points into the issuer's status list", listed.status, 200, `status.status_list.idx ${idx}`)
  const listedToken = listed.body.access_token!
  expect('The partner calls GET /api/orders', (await call('/api/orders', listedToken)).status, 200)
  const mark = await call('/statuslists/1/revoke', adminToken, { method: 'POST', body: JSON.stringify({ idx }) })
  expect(`The issuer marks index ${idx} revoked in its status list`, mark.status, 204)
  const markedAt = Date.now()
  let marked = await call('/api/orders', listedToken)
  while (marked.status === 200 && Date.now() - markedAt < (STATUS_LIST_TTL + 5) * 1000) {
    await sleep(200)
    marked = await call('/api/orders', listedToken)
  }
  expect(`The API refuses it within the list's ttl (${STATUS_LIST_TTL} s)`, marked.status, 401, `${marked.message}, after ${((Date.now() - markedAt) / 1000).toFixed(1)} s`)

  const next = await token('partner', 'partner-secret', ORDERS)
  const nextToken = next.body.access_token!
  expect('The partner gets another token and calls the API', (await call('/api/orders', nextToken)).status, 200)
  const pushed = await call('/admin/revoke-subject', adminToken, { method: 'POST', body: JSON.stringify({ sub: 'partner@clients' }) })
  const receiverStatus = pushed.status === 200 ? (JSON.parse(pushed.text) as { pushed: number }).pushed : pushed.status
  expect('The issuer revokes the subject and pushes a CAEP session-revoked SET to /ssf/events', receiverStatus, 202, 'the receiver accepted it')
  const cut = await call('/api/orders', nextToken)
  expect('The partner is cut off on the next request', cut.status, 401, cut.message)

  print('\nEvery step behaved as described.')
  return steps
}

export async function freePort (): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as import('node:net').AddressInfo
      server.close(() => resolvePort(port))
    })
  })
}

/** Starts an example server on a free port with a throw-away data directory. */
export async function startExampleServer (options: Pick<ExampleOptions, 'auth0'> = {}) {
  const dataDir = await mkdtemp(join(tmpdir(), 'jwt-revocation-demo-'))
  const port = await freePort()
  const publicUrl = `http://127.0.0.1:${port}`
  const app = await buildExampleServer({ publicUrl, dataDir, ...options })
  await app.listen({ port, host: '127.0.0.1' })
  return {
    app,
    url: publicUrl,
    dataDir,
    close: async () => {
      await app.close()
      await rm(dataDir, { recursive: true, force: true })
    },
  }
}

async function main (): Promise<void> {
  const server = await startExampleServer()
  try {
    await runDemo(server.url, (line) => process.stdout.write(line + '\n'))
  } finally {
    await server.close()
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().catch((err) => {
    process.stderr.write(`\ndemo failed: ${err instanceof DemoFailure ? err.message : err}\n`)
    process.exit(1)
  })
}
