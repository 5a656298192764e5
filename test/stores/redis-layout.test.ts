import { Redis } from 'ioredis'
import t from 'tap'
import { RedisStore } from '../../src/stores/redis.js'
import { audienceTag, bucketBase, bucketKey, bucketOf, expiryValue, tokenField } from '../../src/stores/redis-tokens.js'
import { freePort, startRedisServer, stop } from '../helpers/redis-servers.js'
import { connectRedis, deleteKeys, uniqueName } from '../helpers/services.js'

// The stored layout is data other versions read: the bucket and the field of an
// (aud, jti) must never change. These fixtures were written by an earlier version.

const fixtures = [
  { aud: 'https://api.example', jti: '0f8c3a52-6b1e-4d7a-9c2f-5e4b3a2d1c0b', buckets: 4096, bucket: 1281, tag: '6RzbRw', field: 'NlJ6YlJ3dQ+MOlJrHk16nC9eSzotHAs=' },
  { aud: 'https://api.example', jti: 'not-a-uuid-jti', buckets: 4096, bucket: 2003, tag: '6RzbRw', field: 'NlJ6YlJ3cm5vdC1hLXV1aWQtanRp' },
  { aud: 'aud-2', jti: 'a1b2c3d4-e5f6-4789-abcd-ef0123456789', buckets: 10000, bucket: 4714, tag: '-_9MFI', field: 'LV85TUZJdaGyw9Tl9keJq83vASNFZ4k=' },
  { aud: 'ünïcödé-aud', jti: 'jti with spaces ✓', buckets: 1 << 20, bucket: 823275, tag: 'hjK2bA', field: 'aGpLMmJBcmp0aSB3aXRoIHNwYWNlcyDinJM=' },
  { aud: '', jti: 'x', buckets: 7, bucket: 6, tag: '47DEQp', field: 'NDdERVFwcng=' },
]

t.test('the bucket, audience tag and field of known (aud, jti) pairs are those earlier versions wrote', async (t) => {
  for (const f of fixtures) {
    t.equal(bucketOf(f.aud, f.jti, f.buckets), f.bucket, `bucket of ${f.jti}`)
    t.equal(audienceTag(f.aud), f.tag, `tag of ${JSON.stringify(f.aud)}`)
    t.equal(tokenField(f.aud, f.jti).toString('base64'), f.field, `field of ${f.jti}`)
    t.equal(tokenField(f.aud, f.jti, f.tag).toString('base64'), f.field, `field of ${f.jti}, its tag given`)
  }
})

t.test('only a lowercase UUID is packed to 16 bytes; anything close to one is kept as written', async (t) => {
  const packed = tokenField('a', '0f8c3a52-6b1e-4d7a-9c2f-5e4b3a2d1c0b')
  t.equal(packed.length, 6 + 1 + 16)
  t.equal(packed.subarray(7).toString('hex'), '0f8c3a526b1e4d7a9c2f5e4b3a2d1c0b')
  for (const jti of [
    '0F8C3A52-6B1E-4D7A-9C2F-5E4B3A2D1C0B', // uppercase
    '0f8c3a52-6b1e-4d7a-9c2f-5e4b3a2d1c0g', // not hex
    '0f8c3a52x6b1e-4d7a-9c2f-5e4b3a2d1c0b', // no dash
    '0f8c3a52-6b1e-4d7a-9c2f-5e4b3a2d1c0\u0130', // a character that masks to a digit
    '0f8c3a5-26b1e-4d7a-9c2f-5e4b3a2d1c0b', // dashes elsewhere
    '0f8c3a52-6b1e-4d7a-9c2f-5e4b3a2d1c0', // short
  ]) {
    const field = tokenField('a', jti)
    t.equal(String.fromCharCode(field[6]!), 'r', `${JSON.stringify(jti)} kept as written`)
    t.equal(field.subarray(7).toString('utf8'), jti)
  }
})

t.test('RedisStore writes each fixture to its bucket key and field', async (t) => {
  const client = await connectRedis(t)
  if (!client) return
  for (const [i, f] of fixtures.entries()) {
    const prefix = `{${uniqueName(`layout-${i}`)}}:`
    t.teardown(() => deleteKeys(client, bucketBase(prefix)))
    t.teardown(() => deleteKeys(client, prefix))
    const store = new RedisStore({ client, prefix, tokenBuckets: f.buckets })
    const expiresAt = Date.now() + 60_000
    // Among other tokens, so the write groups several buckets per script call.
    await store.revokeTokens([...Array.from({ length: 50 }, (_, n) => ({ aud: f.aud, jti: `other-${n}`, expiresAt })), { aud: f.aud, jti: f.jti, expiresAt }])
    t.equal(await client.hget(bucketKey(bucketBase(prefix), f.bucket), Buffer.from(f.field, 'base64')), expiryValue(expiresAt), `${f.jti} in bucket ${f.bucket}`)
  }
})

t.test('writes go on after the server forgot the write script (NOSCRIPT)', async (t) => {
  const port = await freePort()
  const server = await startRedisServer(['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'])
  t.teardown(() => stop(server))
  const client = new Redis({ port, host: '127.0.0.1' })
  t.teardown(() => client.disconnect())
  const store = new RedisStore({ client, prefix: '{noscript}:', tokenBuckets: 16 })
  const expiresAt = Date.now() + 60_000
  await store.revokeTokens(Array.from({ length: 100 }, (_, n) => ({ aud: 'a', jti: `before-${n}`, expiresAt })))
  await client.script('FLUSH')
  await store.revokeTokens(Array.from({ length: 100 }, (_, n) => ({ aud: 'a', jti: `after-${n}`, expiresAt })))
  for (const jti of ['before-7', 'after-0', 'after-99']) t.ok((await store.lookup({ audiences: ['a'], jti, includeGrant: false })).tokenRevoked, `${jti} revoked`)
  t.equal((await store.listRevokedTokens({ aud: 'a' })).length, 200, 'every token written')
})

t.test('a write of many buckets per call stores every entry at its bucket and field, with its expiry', async (t) => {
  const client = await connectRedis(t)
  if (!client) return
  const prefix = `{${uniqueName('layout-mixed')}}:`
  t.teardown(() => deleteKeys(client, bucketBase(prefix)))
  t.teardown(() => deleteKeys(client, prefix))
  const store = new RedisStore({ client, prefix, tokenBuckets: 64 })
  const soon = Date.now() + 60_000
  const entries = [
    ...Array.from({ length: 1500 }, (_, n) => ({ aud: n % 2 ? 'https://a' : 'https://b', jti: n % 3 ? `jti-${n}` : `0f8c3a52-6b1e-4d7a-9c2f-${String(n).padStart(12, '0')}`, expiresAt: soon + n })),
    { aud: 'https://a', jti: 'x'.repeat(300), expiresAt: null },
    { aud: 'ünï', jti: 'lone \ud800 surrogate ✓', expiresAt: soon },
    { aud: 'https://b', jti: 'far', expiresAt: Number.MAX_VALUE },
  ]
  await store.revokeTokens(entries)
  const stored = await Promise.all(entries.map(({ aud, jti }) => client.hget(bucketKey(bucketBase(prefix), bucketOf(aud, jti, 64)), tokenField(aud, jti))))
  t.same(stored, entries.map((e) => expiryValue(e.expiresAt)), 'each entry at its bucket and field, its expiry its value')
  const total = (await Promise.all(Array.from({ length: 64 }, (_, b) => client.hlen(bucketKey(bucketBase(prefix), b))))).reduce((a, b) => a + b, 0)
  t.equal(total, entries.length, 'nothing else written')
})

t.test('a batch is logged with each audience once, and reads back whole, in order, and by jti', async (t) => {
  const client = await connectRedis(t)
  if (!client) return
  const prefix = `{${uniqueName('log-batch')}}:`
  t.teardown(() => deleteKeys(client, bucketBase(prefix)))
  t.teardown(() => deleteKeys(client, prefix))
  const store = new RedisStore({ client, prefix, tokenBuckets: 16 })
  const expiresAt = Date.now() + 60_000
  const aud = 'https://api.example.com/orders'
  const tokens = Array.from({ length: 1000 }, (_, n) => ({ aud: n % 10 === 9 ? 'other' : aud, jti: `0f8c3a52-6b1e-4d7a-9c2f-${String(n).padStart(12, '0')}`, expiresAt }))
  await store.revokeTokens(tokens, { actor: 'ops@example.com', reason: 'contract ended', source: 'cli' })
  const logged = await client.xrange(`${prefix}log`, '-', '+')
  t.equal(logged.length, 1, 'one entry for the batch')
  const text = logged[0]![1][1]
  t.equal(text!.split(aud).length - 1, 1, 'the audience is written once')
  t.ok(text!.length < 1000 * 40, `${(text!.length / 1000).toFixed(1)} bytes per jti, not one object per token`)
  const { entries } = await store.history({})
  t.equal(entries.length, 1)
  const entry = entries[0]!
  t.same(entry.type === 'tokens' && entry.tokens, [...tokens.filter((k) => k.aud === aud), ...tokens.filter((k) => k.aud === 'other')].map(({ aud, jti }) => ({ aud, jti })),
    'every token, in written order within its audience')
  t.match(entry, { expiresAt, actor: 'ops@example.com', reason: 'contract ended', source: 'cli' })
  t.equal((await store.history({ jti: tokens[500]!.jti })).entries.length, 1, 'found by one of its jtis')
  t.equal((await store.history({ aud: 'other' })).entries.length, 1, 'found by its other audience')
  t.equal((await store.history({ jti: 'never-revoked' })).entries.length, 0)
})

t.test('a batch entry an earlier version wrote, one object per token, still reads', async (t) => {
  const client = await connectRedis(t)
  if (!client) return
  const prefix = `{${uniqueName('log-earlier')}}:`
  t.teardown(() => deleteKeys(client, prefix))
  const store = new RedisStore({ client, prefix, tokenBuckets: 16 })
  await store.revokeToken({ aud: 'a', jti: 'first', expiresAt: null })
  await client.xadd(`${prefix}log`, '*', 'e', '{"type":"tokens","tokens":[{"aud":"a","jti":"j1"},{"aud":"b","jti":"j2"}],"expiresAt":null,"actor":"ops","source":"cli"}')
  const { entries } = await store.history({})
  t.match(entries[0], { type: 'tokens', tokens: [{ aud: 'a', jti: 'j1' }, { aud: 'b', jti: 'j2' }], expiresAt: null, actor: 'ops', reason: null, source: 'cli' })
  t.same(Object.keys(entries[0]!).sort(), ['actor', 'at', 'expiresAt', 'id', 'reason', 'source', 'tokens', 'type'], 'nothing of the stored form shows')
  t.equal((await store.history({ jti: 'j2' })).entries.length, 1)
})
