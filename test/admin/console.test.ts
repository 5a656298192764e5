// The example's admin console in a real browser (Debian's chromium, headless, driven by
// playwright-core): an operator signs in, deletes the partner's grant, and the partner's
// next API call is refused; the History panel says who did what and why. One browser
// launch for the whole file.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { chromium, type Browser } from 'playwright-core'
import { decodeJwt } from 'jose'
import t from 'tap'
import { startExampleServer } from '../../examples/demo.js'
import { ORDERS } from '../../examples/server.js'
import { serviceMissing } from '../helpers/services.js'

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

t.test('an operator deletes the partner\'s grant in the console; the partner\'s next call is 401', async (t) => {
  if (!existsSync(CHROMIUM)) return serviceMissing(t, `Chromium not found at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`)
  const server = await startExampleServer()
  t.teardown(server.close)
  const { app, url } = server
  // A client id an attacker chose, shown to the operator: it must appear as text, never run.
  const hostile = '<img src=x onerror="window.pwned=1">'
  await app.revocation.createGrant({ client_id: hostile, audience: ORDERS, scope: ['read:orders'] })

  const tokenFor = async (clientId: string, secret: string, audience: string) => {
    const res = await app.inject({ method: 'POST', url: '/oauth/token', payload: { grant_type: 'client_credentials', client_id: clientId, client_secret: secret, audience } })
    return (res.json() as { access_token: string }).access_token
  }
  const call = async (token: string) => (await fetch(`${url}/api/orders`, { headers: { authorization: `Bearer ${token}` } })).status
  const partner = await tokenFor('partner', 'partner-secret', ORDERS)
  const other = await tokenFor('partner', 'partner-secret', ORDERS)
  t.equal(await call(partner), 200, 'the partner is served before')

  const page0 = await fetch(`${url}/admin`)
  t.match(page0.headers.get('content-security-policy'), /default-src 'none'; script-src 'self'/, 'a CSP without inline script')
  t.equal(page0.headers.get('x-frame-options'), 'DENY')

  let browser: Browser
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu'], timeout: 30_000 })
  } catch (err) {
    return serviceMissing(t, `Chromium at ${CHROMIUM} does not start: ${(err as Error).message.split('\n')[0]}`)
  }
  t.teardown(() => browser.close())
  const page = await browser.newPage({ viewport: { width: 1100, height: 760 } })
  page.setDefaultTimeout(10_000)
  const problems: string[] = []
  page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()) })
  page.on('pageerror', (e) => problems.push(e.message))
  page.on('response', (r) => { if (r.status() >= 400) problems.push(`${r.status()} ${r.url()}`) })
  const requested: string[] = []
  page.on('request', (r) => requested.push(r.url()))
  page.on('dialog', (d) => { void d.accept() })

  await page.goto(`${url}/admin`)
  await page.getByLabel('Client ID').fill('admin')
  await page.getByLabel('Client secret').fill('admin-secret')
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.getByText('Signed in as admin').waitFor()
  t.equal(await page.getByLabel('Client secret').isVisible(), false, 'the sign-in form is put away')

  const row = page.locator('#grants tr', { hasText: 'partner' }).filter({ hasText: ORDERS })
  await row.waitFor()
  t.equal(await page.locator('#grants tr', { hasText: hostile }).count(), 1, 'a hostile client id is shown as text')
  t.equal(await page.evaluate(() => (window as unknown as { pwned?: number }).pwned), undefined, 'and never runs')
  const [hostileGrant] = await app.revocation.listGrants({ client_id: hostile })
  await app.revocation.deleteGrant(hostileGrant!.id)

  // Narrow the scopes, then give them back: each visible on the next call.
  await row.getByRole('textbox').fill('')
  await row.getByRole('button', { name: 'Save scopes' }).click()
  await page.getByText(/are now: none/).waitFor()
  t.equal(await call(partner), 403, 'narrowed: the next call lacks read:orders')
  await row.getByRole('textbox').fill('read:orders')
  await row.getByRole('button', { name: 'Save scopes' }).click()
  await page.getByText(/are now: read:orders/).waitFor()
  t.equal(await call(partner), 200, 'restored')

  const jti = JSON.parse(Buffer.from(other.split('.')[1]!, 'base64url').toString()).jti as string
  await page.locator('#blacklist-audience').selectOption(ORDERS)
  await page.getByLabel('jti').fill(jti)
  await page.getByRole('textbox', { name: 'Reason' }).fill('leaked in support ticket #4521')
  await page.getByRole('button', { name: 'Blacklist token' }).click()
  await page.locator('#tokens tr', { hasText: jti }).waitFor()
  const blacklisted = page.locator('#history tr', { hasText: jti })
  await blacklisted.waitFor()
  t.same(await blacklisted.locator('td').allTextContents().then((cells) => cells.slice(1)), ['token', `${jti} for ${ORDERS}`, 'admin@clients', 'leaked in support ticket #4521'],
    'the History panel shows the blacklisting with its actor (the admin token\'s sub) and reason')
  t.equal(await call(other), 401, 'the blacklisted token is refused')
  t.equal(await call(partner), 200, 'the partner\'s other token is not')
  // The README's picture: CONSOLE_SCREENSHOT=examples/console/screenshot.png npx tap test/console.test.ts
  if (process.env.CONSOLE_SCREENSHOT) await page.screenshot({ path: join(import.meta.dirname, '..', '..', process.env.CONSOLE_SCREENSHOT), fullPage: true })

  // The story: delete the partner's grant.
  await row.getByRole('button', { name: 'Delete grant' }).click()
  await page.getByText(`Deleted the grant of partner for ${ORDERS}`).waitFor()
  t.equal(await row.count(), 0, 'the grant is gone from the list')
  t.equal(await call(partner), 401, 'the partner\'s next call is refused')
  t.same(await app.revocation.listGrants({ client_id: 'partner', audience: ORDERS }), [], 'deleted in the store')

  // Revoke a client: a fresh grant and token (issued after the deletion's second), then cut off.
  await app.revocation.createGrant({ client_id: 'partner', audience: ORDERS, scope: ['read:orders'] })
  await new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000) + 20))
  const fresh = await tokenFor('partner', 'partner-secret', ORDERS)
  t.equal(await call(fresh), 200)
  await page.locator('#revoke-client-id').fill('partner')
  await page.getByRole('textbox', { name: 'Reason' }).fill('contract ended <b>2026-06-30</b>')
  await page.getByRole('button', { name: 'Revoke client' }).click()
  await page.getByText('Revoked partner for every audience').waitFor()
  t.equal(await call(fresh), 401, 'a revoked client is refused')

  // The History panel: newest first, the revocation on top, a reason shown as text.
  const top = page.locator('#history tr').first()
  await top.filter({ hasText: 'contract ended' }).waitFor()
  t.same((await top.locator('td').allTextContents()).slice(1), ['client', 'partner for every audience', 'admin@clients', 'contract ended <b>2026-06-30</b>'])
  const [latest] = (await app.revocation.history({ limit: 1 })).entries
  t.match(latest, { type: 'client', clientId: 'partner', actor: 'admin@clients', reason: 'contract ended <b>2026-06-30</b>', source: 'admin' }, 'as the store recorded it')

  // A client revoked at one issuer only (a client id is only unique within its issuer).
  const issuer = decodeJwt(fresh).iss!
  await page.locator('#revoke-client-id').fill('reporting-bot')
  await page.locator('#revoke-issuer').fill(issuer)
  await page.getByRole('button', { name: 'Revoke client' }).click()
  await page.getByText(`Revoked reporting-bot for every audience from ${issuer}`).waitFor()
  const [scoped] = (await app.revocation.history({ clientId: 'reporting-bot', limit: 1 })).entries
  t.match(scoped, { type: 'client', clientId: 'reporting-bot', issuer }, 'the rule is scoped to that issuer')
  t.equal(await page.locator('#revoke-issuer').inputValue(), '', 'the issuer field clears, so the next revocation is not scoped by mistake')
  const times = await page.locator('#history tr td.time').evaluateAll((cells) => cells.map((c) => Date.parse((c as HTMLElement).title)))
  t.ok(times.length > 3 && times.every((at, i) => i === 0 || at <= times[i - 1]!), 'newest first')
  // The panel's picture: CONSOLE_HISTORY_SCREENSHOT=examples/console/history.png npx tap test/admin/console.test.ts
  if (process.env.CONSOLE_HISTORY_SCREENSHOT) {
    await page.locator('section', { has: page.getByRole('heading', { name: 'History' }) }).screenshot({ path: join(import.meta.dirname, '..', '..', process.env.CONSOLE_HISTORY_SCREENSHOT) })
  }

  t.same(problems, [], 'no script error and no CSP violation')
  t.ok(requested.every((r) => !r.includes('token=') && !r.includes('secret')), 'no token or secret in any URL')
  t.notOk(requested.some((r) => !r.startsWith(url)), 'the page calls its own origin only')
  const stored = await page.evaluate(() => JSON.stringify({ local: { ...localStorage }, session: { ...sessionStorage }, cookie: document.cookie }))
  t.equal(stored, JSON.stringify({ local: {}, session: {}, cookie: '' }), 'nothing kept in browser storage')
})
