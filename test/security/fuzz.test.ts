// Property-based fuzzing, bounded in runs so CI time is predictable.
import fc from 'fast-check'
import t from 'tap'
import { bearer, buildApp, makeKey, sign } from '../helpers/helpers.js'

const RUNS = Number(process.env.FUZZ_RUNS ?? 300)
// CI replays one fixed seed so a landing never depends on chance; local runs explore
// new cases each time. fast-check prints the seed of any failure: FUZZ_SEED replays it.
const SEED = Number(process.env.FUZZ_SEED ?? (process.env.CI ? 20261122 : Date.now() % 2_147_483_647))
t.comment(`fast-check seed ${SEED} (replay with FUZZ_SEED=${SEED})`)
const key = await makeKey('ES256')
const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

const bytesOf = (token: string) => token.split('.').map((s) => Buffer.from(s, 'base64url').toString('hex')).join('.')

function reencode (segment: string, spacing: string, reverse: boolean): string {
  const value = JSON.parse(Buffer.from(segment, 'base64url').toString()) as Record<string, unknown>
  const entries = Object.entries(value)
  if (reverse) entries.reverse()
  return Buffer.from(JSON.stringify(Object.fromEntries(entries), null, spacing)).toString('base64url')
}

t.test('mutations of a valid token are never accepted unless they decode to the same signed bytes', async (t) => {
  const app = await buildApp(t, { jwks: { keys: [key.publicJwk] } })
  const token = await sign(key)
  t.equal((await app.inject({ url: '/orders', headers: bearer(token) })).statusCode, 200)
  const original = bytesOf(token)
  const [h, p, s] = token.split('.') as [string, string, string]

  const mutation = fc.oneof(
    fc.record({ at: fc.nat(token.length - 1), ch: fc.constantFrom(...B64URL, '.', '=', '+', '/') })
      .map(({ at, ch }) => token.slice(0, at) + ch + token.slice(at + 1)),
    fc.constantFrom(`${p}.${h}.${s}`, `${h}.${s}.${p}`, `${s}.${p}.${h}`, `${h}.${h}.${s}`, `${p}.${p}.${s}`),
    fc.record({ spacing: fc.constantFrom('', ' ', '\t', '  '), reverse: fc.boolean(), which: fc.constantFrom(0, 1) })
      .map(({ spacing, reverse, which }) => which === 0 ? `${reencode(h, spacing, reverse)}.${p}.${s}` : `${h}.${reencode(p, spacing, reverse)}.${s}`),
    fc.nat(token.length - 1).map((n) => token.slice(0, n)),
    fc.string({ unit: fc.constantFrom(...B64URL), minLength: 1, maxLength: 8 }).map((extra) => token + extra),
  )

  await fc.assert(fc.asyncProperty(mutation, async (mutated) => {
    if (mutated === token) return
    const res = await app.inject({ url: '/orders', headers: bearer(mutated) })
    if (res.statusCode === 200) {
      // Base64url's last character carries unused bits: such variants decode to the same signed bytes.
      if (bytesOf(mutated) !== original) throw new Error(`accepted a different token: ${mutated}`)
    } else if (res.statusCode !== 401 && res.statusCode !== 400) {
      throw new Error(`unexpected ${res.statusCode} for ${mutated}`)
    }
  }), { numRuns: RUNS, seed: SEED })
  t.pass(`${RUNS} mutations checked`)
})

t.test('random bytes as the Authorization header never cause a 500 or an unhandled rejection', async (t) => {
  const app = await buildApp(t, { jwks: { keys: [key.publicJwk] } })
  let unhandled = 0
  const onUnhandled = () => { unhandled++ }
  process.on('unhandledRejection', onUnhandled)
  t.teardown(() => { process.off('unhandledRejection', onUnhandled) })
  // Any byte a header value may carry (no CR, LF or NUL, which HTTP itself forbids).
  const headerByte = fc.integer({ min: 1, max: 255 }).filter((b) => b !== 10 && b !== 13).map((b) => String.fromCharCode(b))
  const value = fc.oneof(
    fc.string({ unit: headerByte, maxLength: 300 }),
    fc.string({ unit: headerByte, maxLength: 300 }).map((v) => 'Bearer ' + v),
    fc.string({ unit: fc.constantFrom(...B64URL, '.'), maxLength: 600 }).map((v) => 'Bearer ' + v),
  )
  await fc.assert(fc.asyncProperty(value, async (authorization) => {
    const res = await app.inject({ url: '/orders', headers: { authorization } })
    if (res.statusCode !== 400 && res.statusCode !== 401) throw new Error(`${res.statusCode} for ${JSON.stringify(authorization)}`)
  }), { numRuns: RUNS, seed: SEED })
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(unhandled, 0, 'no unhandled rejection')
})
