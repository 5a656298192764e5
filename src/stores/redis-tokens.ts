import { hash } from 'node:crypto'
import type { Cluster, Redis } from 'ioredis'
import type { RevokedToken } from './types.js'

// How RedisStore keeps revoked tokens: compact, and spread over many hash slots.
//
// Each (aud, jti) is ONE field of a bucket hash, not a key of its own: a key costs
// ~100 B of Redis bookkeeping, a field of a small hash (listpack encoding) only its bytes
// plus two or three. The bucket is a hash of (aud, jti) modulo a bucket count fixed per
// prefix (kept in the control data at first use: changing it would move every entry),
// and each bucket key carries its own hash tag, so a Cluster spreads buckets (and the
// entries in them) over its primaries instead of putting them all in the prefix's slot.
//
//   key    <prefix without braces>t:{<bucket>}     e.g. jwt-revocation:t:{1234}
//   field  <audience tag, 6 chars> 'u' <UUID as its 16 bytes>          (a lowercase UUID jti)
//          <audience tag, 6 chars> 'r' <jti as given>                  (any other jti)
//   value  expiry, ms since the epoch (an integer listpack stores in 9 bytes); 0: never
//
// The audience tag is 36 bits of SHA-256(aud); the control data maps each tag back to
// its audience (for listings), and a write whose audience's tag is already another
// audience's is refused, so two audiences never share a tag. The jti is kept whole
// (a UUID losslessly packed), so a lookup never answers "revoked" for a jti that was not.
//
// Redis 7.0 has no per-field expiry: a field outlives its expiry until `purgeExpired`
// sweeps the buckets, and every read treats an expired field as absent. Where the server
// has HPEXPIREAT (7.4), each field written also gets an expiry of its own, so Redis
// reclaims it by itself; reads still decide by the stored value and this process's clock,
// so that expiry only reclaims what a read already treats as absent.

/** Buckets of a new prefix unless `tokenBuckets` says otherwise: ~100 entries each at 400,000 tokens. */
export const DEFAULT_TOKEN_BUCKETS = 4096
/** The most buckets a prefix may have (more would cost memory in mostly empty keys). */
export const MAX_TOKEN_BUCKETS = 1 << 20

const AUDIENCE_TAG_LENGTH = 6

/** A lowercase hex digit's value, or -1 (uppercase is not a UUID this layout packs). */
const NIBBLE = new Int8Array(128).fill(-1)
for (let i = 0; i < 16; i++) NIBBLE['0123456789abcdef'.charCodeAt(i)] = i

/**
 * Writes `jti` as its 16 bytes at `at` when it is a lowercase UUID (8-4-4-4-12 hex
 * digits), checking and packing in one pass by character (a regular expression or a hex
 * decode of a copy without dashes costs more than the rest of a field); false when it is
 * not one, and then what was written is to be overwritten.
 */
function writeUuid (into: Buffer, at: number, jti: string): boolean {
  if (jti.length !== 36) return false
  let i = 0
  while (i < 36) {
    if (i === 8 || i === 13 || i === 18 || i === 23) {
      if (jti.charCodeAt(i) !== 0x2d /* - */) return false
      i++
      continue
    }
    const high = NIBBLE[jti.charCodeAt(i) & 0x7f]!
    const low = NIBBLE[jti.charCodeAt(i + 1) & 0x7f]!
    // A character past 0x7f would alias an ASCII digit under the mask: refused.
    if ((high | low) < 0 || (jti.charCodeAt(i) | jti.charCodeAt(i + 1)) > 0x7f) return false
    into[at++] = high << 4 | low
    i += 2
  }
  return true
}

/** The audience's tag: 36 bits of its SHA-256, as 6 base64url characters. */
export const audienceTag = (aud: string): string => hash('sha256', aud, 'base64url').slice(0, AUDIENCE_TAG_LENGTH)

/**
 * The hash field of (aud, jti): bytes, as a UUID is kept as its 16 bytes. A caller
 * writing many entries passes each audience's tag, computed once.
 */
export function tokenField (aud: string, jti: string, tag = audienceTag(aud)): Buffer {
  const field = Buffer.allocUnsafe(fieldBound(jti))
  return field.subarray(0, writeTokenField(field, 0, tag, jti))
}

/** At least the bytes of a field of `jti` (a UTF-16 unit is at most 3 bytes of UTF-8). */
const fieldBound = (jti: string) => AUDIENCE_TAG_LENGTH + 1 + 3 * jti.length

/** Writes the field of (the audience of `tag`, jti) into `into` at `at`; returns the offset after it. */
function writeTokenField (into: Buffer, at: number, tag: string, jti: string): number {
  at += into.write(tag, at, 'latin1')
  if (writeUuid(into, at + 1, jti)) {
    into[at] = 0x75 /* u */
    return at + 17
  }
  into[at] = 0x72 /* r */
  return at + 1 + into.write(jti, at + 1, 'utf8')
}

/** The jti of a field written by {@link tokenField}, and its audience tag. */
export function decodeField (field: Buffer): { tag: string, jti: string } {
  const tag = field.subarray(0, AUDIENCE_TAG_LENGTH).toString()
  const body = field.subarray(AUDIENCE_TAG_LENGTH + 1)
  if (field[AUDIENCE_TAG_LENGTH] !== 0x75 /* u */) return { tag, jti: body.toString() }
  const hex = body.toString('hex')
  return { tag, jti: `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}` }
}

/** Which of `buckets` holds (aud, jti). */
export function bucketOf (aud: string, jti: string, buckets: number): number {
  // One-shot hash of the same UTF-8 bytes as aud, NUL, jti hashed in three updates.
  return hash('sha256', `${aud}\u0000${jti}`, 'buffer').readUInt32BE(0) % buckets
}

/**
 * The prefix the bucket keys start with: the store's prefix without its hash tag's
 * braces (a key's FIRST `{…}` decides its slot, so a bucket's own tag must come first).
 */
export const bucketBase = (prefix: string): string => `${prefix.replace(/[{}]/g, '')}t:`

export const bucketKey = (base: string, bucket: number): string => `${base}{${bucket}}`

/** A field's stored value: its expiry in ms, '0' for never. */
export const expiryValue = (expiresAt: number | null): string => (expiresAt === null ? '0' : String(Math.ceil(expiresAt)))

/** The expiry a stored value says (null: never), or undefined when it has passed by `now`. */
export function liveExpiry (value: string | null | undefined, now: number): number | null | undefined {
  if (value === null || value === undefined) return undefined
  const at = Number(value)
  if (at === 0) return null
  return at > now ? at : undefined
}

/**
 * How long after its expiry (by this process's clock, as the stored value says) Redis 7.4
 * drops a field by itself: a margin for a Redis clock ahead of the application's, so
 * Redis never drops a field a read would still answer "revoked" for.
 */
export const FIELD_EXPIRY_MARGIN = 3_600_000

// Writes fields into buckets (KEYS; in a Cluster all of one slot, so one call runs on one
// node), keeping the later expiry of a field written twice (0, never, is the latest).
// ARGV[1] packs the entries (packBucketWrites): one argument, not two per field, which
// the client would encode one by one. For each key in turn: its entry count (4 bytes,
// big-endian), then per entry the field's length (4 bytes), the field, the value's
// length (1 byte) and the value.
export const WRITE_BUCKETS = writeBuckets(false)

/**
 * WRITE_BUCKETS that also sets each written field's own expiry (HPEXPIREAT, its value plus
 * FIELD_EXPIRY_MARGIN; HPERSIST for never: HSET keeps a field's earlier expiry). Called
 * with `pcall`: a node without the commands (a Cluster upgraded node by node) writes as
 * WRITE_BUCKETS does.
 */
export const WRITE_BUCKETS_WITH_FIELD_EXPIRY = writeBuckets(true)

function writeBuckets (fieldExpiry: boolean): string {
  const expire = !fieldExpiry
    ? ''
    : `
      if value == '0' then redis.pcall('HPERSIST', key, 'FIELDS', 1, field)
      else redis.pcall('HPEXPIREAT', key, string.format('%.0f', tonumber(value) + ${FIELD_EXPIRY_MARGIN}), 'FIELDS', 1, field) end`
  return `
local packed, at, n = ARGV[1], 1, 0
local function length ()
  local a, b, c, d = string.byte(packed, at, at + 3)
  at = at + 4
  return ((a * 256 + b) * 256 + c) * 256 + d
end
for k = 1, #KEYS do
  local key = KEYS[k]
  for _ = 1, length() do
    local size = length()
    local field = string.sub(packed, at, at + size - 1)
    size = string.byte(packed, at + size)
    at = at + #field + 1
    local value = string.sub(packed, at, at + size - 1)
    at = at + size
    local current = redis.call('HGET', key, field)
    if not current or (current ~= '0' and (value == '0' or tonumber(value) > tonumber(current))) then
      redis.call('HSET', key, field, value)${expire}
      n = n + 1
    end
  end
end
return n`
}

/**
 * ARGV[1] of WRITE_BUCKETS: the entries of each bucket in turn, as `buckets` lists them
 * (indexes into `entries`); `tags[i]` is the audience tag of `entries[i]`.
 */
export function packBucketWrites (entries: readonly RevokedToken[], tags: readonly string[], buckets: ReadonlyArray<readonly number[]>): Buffer {
  // An expiry is written in at most 23 characters ('0', digits, or exponent notation).
  let bound = 0
  for (const bucket of buckets) {
    bound += 4
    for (const i of bucket) bound += 4 + fieldBound(entries[i]!.jti) + 1 + 23
  }
  const packed = Buffer.allocUnsafe(bound)
  let at = 0
  let lastExpiry: number | null | undefined
  let value = ''
  for (const bucket of buckets) {
    at = packed.writeUInt32BE(bucket.length, at)
    for (const i of bucket) {
      const entry = entries[i]!
      const end = writeTokenField(packed, at + 4, tags[i]!, entry.jti)
      packed.writeUInt32BE(end - at - 4, at)
      if (entry.expiresAt !== lastExpiry) value = expiryValue(lastExpiry = entry.expiresAt)
      packed[end] = value.length
      at = end + 1 + packed.write(value, end + 1, 'latin1')
    }
  }
  return packed.subarray(0, at)
}

/** Whether the server has per-field expiry (Redis 7.4+): asked once, `COMMAND INFO HPEXPIREAT`; any failure is "no". */
export async function hasFieldExpiry (client: Pick<Redis | Cluster, 'call'>): Promise<boolean> {
  try {
    const [info] = await client.call('COMMAND', 'INFO', 'HPEXPIREAT') as unknown[]
    return Array.isArray(info)
  } catch {
    return false
  }
}

// A bucket's live fields (expiry 0, or after ARGV[1] ms) and their values, flat, as bytes
// (fields are binary: no reply mapping may turn them into text or a map); only those of
// the audience tag ARGV[2] unless it is ''. Tags are compared for equality only: Lua
// orders strings by the server's locale, so the caller sorts the fields itself.
export const READ_LIVE_FIELDS = `
local flat = redis.call('HGETALL', KEYS[1])
local now, tag, out = tonumber(ARGV[1]), ARGV[2], {}
for i = 1, #flat, 2 do
  local at = tonumber(flat[i + 1])
  if (at == 0 or at > now) and (tag == '' or string.sub(flat[i], 1, ${AUDIENCE_TAG_LENGTH}) == tag) then
    out[#out + 1] = flat[i]
    out[#out + 1] = flat[i + 1]
  end
end
return out`

// Drops a bucket's fields whose expiry (ARGV[1], ms) has passed; returns how many.
export const SWEEP_BUCKET = `
local flat = redis.call('HGETALL', KEYS[1])
local gone = {}
for i = 1, #flat, 2 do
  local at = tonumber(flat[i + 1])
  if at ~= 0 and at <= tonumber(ARGV[1]) then gone[#gone + 1] = flat[i] end
end
for i = 1, #gone, 1000 do redis.call('HDEL', KEYS[1], unpack(gone, i, math.min(i + 999, #gone))) end
return #gone`

// The bucket count of a prefix: the one stored, or ARGV[1] stored now (first use).
export const BUCKET_COUNT = `
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])`

/**
 * Runs `task` over `items` with at most `width` in flight, starting the next as soon as
 * one ends (a bucket walk must not flood the client's queue, nor wait on its slowest
 * call before sending more). Results in the order of `items`; the first failure rejects,
 * and no task starts after it.
 */
export async function inFlight<T, R> (items: T[], width: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length)
  let next = 0
  let failed = false
  const worker = async () => {
    try {
      while (next < items.length && !failed) {
        const i = next++
        out[i] = await task(items[i]!)
      }
    } catch (err) {
      failed = true // the other workers start nothing more
      throw err
    }
  }
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker))
  return out
}
