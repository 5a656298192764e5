import fc from 'fast-check'
import t from 'tap'
import { parsedAsWritten } from '../../src/lib/json-as-written.js'

/** True when the text is refused: duplicate members, or names the parse did not read as written. */
const refused = (text: string, parsed: unknown = JSON.parse(text)) => !parsedAsWritten(Buffer.from(text, 'utf8'), parsed)
const SEED = Number(process.env.FUZZ_SEED ?? (process.env.CI ? 20261122 : Date.now() % 2_147_483_647))
t.comment(`fast-check seed ${SEED} (replay with FUZZ_SEED=${SEED})`)

t.test('duplicate members are found at any depth, however the key is spelled', async (t) => {
  t.ok(refused('{"a":1,"a":1}'), 'same key, same value')
  t.ok(refused('{"aud":"x","\\u0061ud":"y"}'), 'an escaped spelling of the same key')
  t.ok(refused('{"x":{"b":"1","b":"2"}}'), 'in a nested object')
  t.ok(refused('{"x":[{"b":1},{"c":"d","c":"d"}]}'), 'in an object inside an array')
  t.ok(refused('{"a":{"k":"v","k":"v"},"a":3}'), 'inside a member that is itself overwritten')
  t.ok(refused('{"__proto__":1,"__proto__":2}'), '__proto__ twice')
  t.ok(refused('{"é":"\\"","\\u00e9":"x"}'), 'a non-ASCII key and its escape')
  t.ok(refused('{"x":[{"\\/":1,"/":2}]}'), 'an escaped duplicate inside an array')
  t.ok(refused('{"\\u0031":1,"1":2}'), 'an array-index name and its escape')
})

t.test('texts without duplicates pass, whatever their strings hold', async (t) => {
  t.notOk(refused('{"a":"\\"quoted\\" and \\\\","b":["a","a"],"c":{"a":"a"}}'), 'escaped quotes and backslashes, equal values, the same key in two objects')
  t.notOk(refused('{ "a" : "x" , "b" : [ ] , "é" : "日本" }'), 'whitespace and multi-byte characters')
  t.notOk(refused('{"__proto__":{"a":1}}'), '__proto__ once')
  t.notOk(refused('{}'))
  t.notOk(refused(`{"a":${'['.repeat(20_000)}{"b":1}${']'.repeat(20_000)}}`), 'nested 20,000 deep')
  t.ok(refused(`{"a":${'['.repeat(20_000)}{"b":1,"b":2}${']'.repeat(20_000)}}`), 'a duplicate nested 20,000 deep')
})

t.test('escaped member names read as written are accepted', async (t) => {
  // PHP's json_encode escapes every slash by default.
  t.notOk(refused('{"iss":"https:\\/\\/issuer.example","https:\\/\\/example.com\\/roles":["admin"],"sub":"u"}'), 'namespaced claims written by PHP')
  t.notOk(refused('{"a\\"b":1,"c\\\\":{"\\u00e9":[{"\\n":null}]},"d":[]}'), 'escapes at every depth')
  t.notOk(refused('{"b":1,"\\u0031":{},"0":[],"x\\/":true}'), 'array-index names, which JSON.parse lists first')
  t.notOk(refused(' {"\\u0061" : [ 1 , { } , "\\\\" ] , "b":-1.5e3 } '), 'whitespace around every token')
  t.notOk(refused(`{"d\\/":${'['.repeat(20_000)}{"\\/":1}${']'.repeat(20_000)}}`), 'nested 20,000 deep')
  t.ok(refused(`{"d\\/":${'['.repeat(20_000)}{"\\/":1,"/":2}${']'.repeat(20_000)}}`), 'a duplicate nested 20,000 deep')
})

t.test('an escaped name the parse read as another name is refused, whichever runtime parsed it', async (t) => {
  // What V8's JSON.parse in Node 24 and 26 makes of these texts once the process has parsed
  // a "cn\\" (or "\\") name before (nodejs/node#63785); built by hand to hold on any runtime.
  const text = '{"iss":"i","cn\\u0066":{"jkt":"k"}}'
  t.notOk(refused(text, { iss: 'i', cnf: { jkt: 'k' } }), 'the parse as written')
  t.ok(refused(text, { iss: 'i', 'cn\\': { jkt: 'k' } }), '"cn\\u0066" read as cn\\')
  t.ok(refused('{"cnf":1,"cn\\u0066":2}', { cnf: 1, 'cn\\': 2 }), 'a duplicate hidden by the misread (the counts agree)')
  t.ok(refused('{"\\"":1,"\\n":2}', { '\\': 1, '\n': 2 }), '"\\"" read as \\')
  t.ok(refused('{"a\\u0062":1,"b\\u0061":2}', { ba: 1, ab: 2 }), 'two names read as each other')
  t.ok(refused('{"x":[{"\\u0061":1}]}', { x: [{ '\\': 1 }] }), 'deep inside an array')
  t.ok(refused('{"a":1}', { a: 1, b: 2 }), 'a member the text does not write')
  t.ok(refused('{"a\\/":[1,2]}', { 'a/': [1] }), 'an array the text writes longer')
  t.ok(refused('{"a\\/":{"b":1}}', { 'a/': [] }), 'an object read as an array')
})

t.test('after V8 is primed with a "cn\\\\" name, "cn\\u0066" is accepted only when read as cnf', async (t) => {
  // V8's misread follows object shapes: a first member no other test writes keeps this
  // shape apart from every object parsed before.
  JSON.parse('{"nodejs-63785":0,"cn\\\\":1}')
  const text = '{"nodejs-63785":0,"cn\\u0066":{"jkt":"k"}}'
  const parsed = JSON.parse(text) as Record<string, unknown>
  const misread = !Object.hasOwn(parsed, 'cnf')
  t.comment(`this runtime (Node ${process.version}) ${misread ? 'misreads' : 'reads'} "cn\\u0066" ${misread ? `as ${JSON.stringify(Object.keys(parsed)[1])}` : 'right'}`)
  t.equal(refused(text, parsed), misread, misread ? 'the misread is refused' : 'the right reading is accepted')
})

t.test('agrees with the members written, on generated texts', async () => {
  // Keys never include "nested", the member the second shape adds. Backslashes and quotes
  // share raw prefixes with other names, where V8's misreads happen.
  const key = fc.constantFrom('a', 'b', 'aud', 'é', '"', '\\', 'a\\', 'a"', '__proto__', 'x y', '/')
  const leaf = fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.constant(null))
  // Objects written as text, so keys may repeat and may be spelled with escapes; `value` is
  // the object those members make, built without JSON.parse.
  const objectText = fc.array(fc.tuple(key, fc.boolean(), leaf), { maxLength: 6 }).map((members) => {
    const keys = members.map(([k]) => k)
    const value: Record<string, unknown> = {}
    const parts = members.map(([k, escape, v]) => {
      Object.defineProperty(value, k, { value: v, enumerable: true, writable: true, configurable: true })
      const keyText = escape ? `"${[...k].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')}"` : JSON.stringify(k)
      return `${keyText}:${JSON.stringify(v)}`
    })
    return { text: `{${parts.join(',')}}`, value, duplicate: new Set(keys).size !== keys.length }
  })
  const nested = fc.tuple(objectText, objectText, fc.boolean()).map(([outer, inner, inArray]) => ({
    text: `{"nested":${inArray ? `[${inner.text}]` : inner.text}${outer.text === '{}' ? '' : ','}${outer.text.slice(1)}`,
    value: { nested: inArray ? [inner.value] : inner.value, ...outer.value },
    duplicate: outer.duplicate || inner.duplicate,
  }))
  await fc.assert(fc.property(fc.oneof(objectText, nested), ({ text, value, duplicate }) => {
    const parsed: unknown = JSON.parse(text)
    // Without duplicates, the runtime read the text right when the parse is the members' object.
    const asWritten = !duplicate && JSON.stringify(parsed) === JSON.stringify(value)
    return refused(text, parsed) === !asWritten
  }), { seed: SEED, numRuns: 2000 })
})
