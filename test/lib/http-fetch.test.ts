import FakeTimers from '@sinonjs/fake-timers'
import t from 'tap'
import { fetchJson, outboundOrigin } from '../../src/lib/fetch.js'
import { json, jwksServer } from '../helpers/helpers.js'

const bounds = (origin: string) => ({ timeout: 5000, maxBytes: 1000, allowedOrigins: [origin] })

t.test('only allowed origins, https or loopback http, no credentials in the URL', async (t) => {
  const { url, hits } = await jwksServer(t, (_path, res) => json(res, { ok: true }))
  t.same((await fetchJson(`${url}/a`, bounds(url))).body, { ok: true })
  await t.rejects(fetchJson(`${url}/a`, bounds('https://elsewhere.test')), { code: 'FST_JWT_REVOCATION_OUTBOUND', message: /origin not allowed/ })
  t.throws(() => outboundOrigin('http://example.com/', 'x'), /must be https/)
  t.throws(() => outboundOrigin('https://user:pw@example.com/', 'x'), /credentials/)
  t.equal(outboundOrigin('http://127.0.0.1:8080/x', 'x'), 'http://127.0.0.1:8080')
  t.equal(hits.get('/a'), 1, 'a refused origin is never contacted')
})

t.test('answers larger than maxBytes are refused, declared or streamed', async (t) => {
  const { url } = await jwksServer(t, (path, res) => {
    if (path === '/declared') return json(res, { pad: 'x'.repeat(2000) })
    res.writeHead(200, { 'content-type': 'application/json' })
    res.write('{"pad":"')
    for (let i = 0; i < 10; i++) res.write('y'.repeat(500))
    res.end('"}')
  })
  await t.rejects(fetchJson(`${url}/declared`, bounds(url)), /larger than 1000 bytes/)
  await t.rejects(fetchJson(`${url}/streamed`, bounds(url)), /larger than 1000 bytes/)
})

t.test('redirects are not followed; a 200 that is not JSON is an error', async (t) => {
  const { url, hits } = await jwksServer(t, (path, res) => {
    if (path === '/moved') { res.writeHead(302, { location: '/target' }); return res.end() }
    res.writeHead(200, { 'content-type': 'text/html' })
    res.end('<html></html>')
  })
  t.equal((await fetchJson(`${url}/moved`, bounds(url))).status, 302)
  t.equal(hits.get('/target'), undefined)
  await t.rejects(fetchJson(`${url}/html`, bounds(url)), /not JSON/)
})

t.test('a server that never answers is abandoned after the timeout', async (t) => {
  const clock = FakeTimers.install({ toFake: ['setTimeout', 'clearTimeout'] })
  t.teardown(() => clock.uninstall())
  const { url, hits } = await jwksServer(t, () => { /* never answers */ })
  const refused = t.rejects(fetchJson(`${url}/slow`, { ...bounds(url), timeout: 3000 }), /no answer within 3000 ms/)
  for (let i = 0; i < 10_000 && hits.get('/slow') === undefined; i++) await new Promise((resolve) => setImmediate(resolve))
  await clock.tickAsync(3000)
  await refused
})
