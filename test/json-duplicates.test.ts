import fc from 'fast-check'
import t from 'tap'
import { hasDuplicateKeys } from '../src/json-duplicates.js'

const check = (text: string) => hasDuplicateKeys(Buffer.from(text, 'utf8'), JSON.parse(text))
const SEED = Number(process.env.FUZZ_SEED ?? (process.env.CI ? 20261122 : Date.now() % 2_147_483_647))
t.comment(`fast-check seed ${SEED} (replay with FUZZ_SEED=${SEED})`)

t.test('duplicate members are found at any depth, however the key is spelled', async (t) => {
  t.ok(check('{"a":1,"a":1}'), 'same key, same value')
  t.ok(check('{"aud":"x","\\u0061ud":"y"}'), 'an escaped spelling of the same key')
  t.ok(check('{"x":{"b":"1","b":"2"}}'), 'in a nested object')
  t.ok(check('{"x":[{"b":1},{"c":"d","c":"d"}]}'), 'in an object inside an array')
  t.ok(check('{"a":{"k":"v","k":"v"},"a":3}'), 'inside a member that is itself overwritten')
  t.ok(check('{"__proto__":1,"__proto__":2}'), '__proto__ twice')
  t.ok(check('{"é":"\\"","\\u00e9":"x"}'), 'a non-ASCII key and its escape')
})

t.test('texts without duplicates pass, whatever their strings hold', async (t) => {
  t.notOk(check('{"a":"\\"quoted\\" and \\\\","b":["a","a"],"c":{"a":"a"}}'), 'escaped quotes and backslashes, equal values, the same key in two objects')
  t.notOk(check('{ "a" : "x" , "b" : [ ] , "é" : "日本" }'), 'whitespace and multi-byte characters')
  t.notOk(check('{"__proto__":{"a":1}}'), '__proto__ once')
  t.notOk(check('{}'))
})

t.test('agrees with the members written, on generated texts', async () => {
  // Keys never include "nested", the member the second shape adds.
  const key = fc.constantFrom('a', 'b', 'aud', 'é', '"', '\\', '__proto__', 'x y')
  const leaf = fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.constant(null))
  // Objects written as text, so keys may repeat and may be spelled with escapes.
  const objectText = fc.array(fc.tuple(key, fc.boolean(), leaf), { maxLength: 6 }).map((members) => {
    const keys = members.map(([k]) => k)
    const parts = members.map(([k, escape, v]) => {
      const keyText = escape ? `"${[...k].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')}"` : JSON.stringify(k)
      return `${keyText}:${JSON.stringify(v)}`
    })
    return { text: `{${parts.join(',')}}`, duplicate: new Set(keys).size !== keys.length }
  })
  const nested = fc.tuple(objectText, objectText, fc.boolean()).map(([outer, inner, inArray]) => ({
    text: `{"nested":${inArray ? `[${inner.text}]` : inner.text}${outer.text === '{}' ? '' : ','}${outer.text.slice(1)}`,
    duplicate: outer.duplicate || inner.duplicate,
  }))
  await fc.assert(fc.property(fc.oneof(objectText, nested), ({ text, duplicate }) => check(text) === duplicate), { seed: SEED, numRuns: 2000 })
})
