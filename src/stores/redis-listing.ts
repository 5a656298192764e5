import type { Cluster, Redis } from 'ioredis'
import { audienceTag, bucketKey, bucketOf, decodeField, liveExpiry, READ_LIVE_FIELDS, tokenField } from './redis-tokens.js'
import { decodeTokenCursor, encodeTokenCursor } from './token-pages.js'
import type { RevokedToken, RevokedTokenPage } from './types.js'

// EVAL with its reply as bytes. Not `callBuffer('EVAL', …)`: with `enableAutoPipelining`
// (the command line's client) ioredis 5 queues a `callBuffer` without its command name,
// so Redis is sent the script as the command. `evalBuffer` exists on every ioredis
// client, though its types do not declare it.
type EvalBuffer = (script: string, keyCount: number, ...args: string[]) => Promise<unknown>
const evalBuffer = (client: Redis | Cluster, script: string, keyCount: number, ...args: string[]): Promise<unknown> =>
  (client as unknown as { evalBuffer: EvalBuffer }).evalBuffer(script, keyCount, ...args)

// RedisStore's listing of revoked tokens, in pages of bounded work. Buckets are by hash,
// not by audience, so a listing walks them all, in bucket order, and within a bucket in
// the byte order of its fields: a cursor names a bucket and the last field listed from it,
// which no write or expiry can move. Before the buckets come the tokens of the previous
// layout (the `tokens` index, until `migrate` empties it), by expiry.

/** What the listing reads of a RedisStore. */
export interface TokenListingSource {
  client: Redis | Cluster
  /** The prefix's bucket count (fixed at first use). */
  buckets: number
  bucketPrefix: string
  /** Hash of audience tag → audience. */
  audienceIndex: string
  /** Sorted set of `aud NUL jti` by expiry (ms, +inf for never): the previous layout. */
  legacyIndex: string
}

/**
 * Where a page starts: in the previous layout's index at a score (inclusive) after
 * `offset` entries of that score, or at a bucket after one of its fields (base64url).
 */
type Position = { legacy: [score: string, offset: number] | null } | { bucket: number, after?: string }

/** Buckets one page reads at most (so a rare audience never makes one page walk them all). */
const BUCKETS_PER_PAGE = 1024
/**
 * Buckets read at once: the first wave is small (a page may fill from one bucket), later
 * ones as many as the entries seen so far say the page still needs, at most WIDEST_WAVE.
 */
const FIRST_WAVE = 4
const WIDEST_WAVE = 128
/** Entries of the previous layout read per page at most. */
const LEGACY_PER_PAGE = 1000

const SEP = '\u0000'
const SCORE = /^(\+inf|\d{1,16})$/
const BASE64URL = /^[A-Za-z0-9_-]+$/
const STORE = 'RedisStore'

/**
 * `WITHSCORES` pairs in either shape ioredis gives them: a flat `[member, score, …]`
 * of strings (RESP2, and ioredis 6's default `replyMapping`), or `[[member, score], …]`
 * with numeric scores (ioredis 6 with `replyMapping: 'resp3'`).
 */
export function scoredMembers (reply: unknown[]): Array<[string, number]> {
  const pairs: Array<[string, number]> = []
  const nested = Array.isArray(reply[0])
  for (let i = 0; i < reply.length; i += nested ? 1 : 2) {
    const [member, score] = nested ? reply[i] as [string, unknown] : [reply[i] as string, reply[i + 1]]
    pairs.push([member, typeof score === 'number' ? score : Number(String(score).replace(/^\+?inf$/, 'Infinity'))])
  }
  return pairs
}

const scoreText = (score: number): string => (score === Infinity ? '+inf' : String(score))

function isPosition (value: unknown, buckets: number): value is Position {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false
  const v = value as Record<string, unknown>
  if ('legacy' in v) {
    const l = v.legacy
    return Object.keys(v).length === 1 && (l === null || (Array.isArray(l) && l.length === 2 && typeof l[0] === 'string' &&
      SCORE.test(l[0]) && Number.isSafeInteger(l[1]) && (l[1] as number) >= 0))
  }
  return Number.isSafeInteger(v.bucket) && (v.bucket as number) >= 0 && (v.bucket as number) < buckets &&
    (v.after === undefined || (typeof v.after === 'string' && BASE64URL.test(v.after))) &&
    Object.keys(v).every((k) => k === 'bucket' || k === 'after')
}

/** One page of the listing from `cursor` (undefined: the start), at most `limit` tokens. */
export async function revokedTokenPage (source: TokenListingSource, aud: string | undefined, cursor: string | undefined, limit: number): Promise<RevokedTokenPage> {
  const at: Position = cursor === undefined ? { legacy: null } : decodeTokenCursor(cursor, STORE, (v): v is Position => isPosition(v, source.buckets))
  if (!('legacy' in at)) return bucketPage(source, aud, at, limit)
  const legacy = await legacyPage(source, aud, at.legacy, limit)
  if (legacy.next !== null || legacy.tokens.length === limit) return { tokens: legacy.tokens, next: legacy.next ?? encodeTokenCursor({ bucket: 0 }) }
  // The previous layout is done: the rest of the page comes from the buckets.
  const rest = await bucketPage(source, aud, { bucket: 0 }, limit - legacy.tokens.length)
  return { tokens: [...legacy.tokens, ...rest.tokens], next: rest.next }
}

/**
 * Live tokens of the previous layout, by (expiry, member), skipping those with a live
 * copy in their bucket (a `migrate` in progress, or one stopped half way): the bucket
 * walk lists them. `next` null: the index is done.
 */
async function legacyPage (source: TokenListingSource, aud: string | undefined, at: [string, number] | null, limit: number): Promise<RevokedTokenPage> {
  const { client } = source
  const now = Date.now()
  // A score at or before now has expired, and with it every entry before it.
  const [min, offset] = at !== null && Number(at[0].replace('+inf', 'Infinity')) > now ? at : [`(${now}`, 0]
  const count = Math.min(limit, LEGACY_PER_PAGE)
  const pairs = scoredMembers(await client.zrangebyscore(source.legacyIndex, min, '+inf', 'WITHSCORES', 'LIMIT', offset, count) as unknown[])
  const candidates: RevokedToken[] = []
  for (const [member, score] of pairs) {
    const sep = member.indexOf(SEP)
    const token = { aud: member.slice(0, sep), jti: member.slice(sep + 1), expiresAt: Number.isFinite(score) ? score : null }
    if (aud === undefined || token.aud === aud) candidates.push(token)
  }
  const copies = await Promise.all(candidates.map((t) => client.hget(bucketKey(source.bucketPrefix, bucketOf(t.aud, t.jti, source.buckets)), tokenField(t.aud, t.jti))))
  const tokens = candidates.filter((_, i) => liveExpiry(copies[i], now) === undefined)
  if (pairs.length < count) return { tokens, next: null }
  const last = pairs.at(-1)![1]
  let run = 0
  while (run < pairs.length && pairs[pairs.length - 1 - run]![1] === last) run++
  const sameStart = !min.startsWith('(') && Number(min.replace('+inf', 'Infinity')) === last
  return { tokens, next: encodeTokenCursor({ legacy: [scoreText(last), run + (sameStart ? offset : 0)] }) }
}

/** Live tokens from the buckets, from `at` on: whole buckets in waves, at most BUCKETS_PER_PAGE of them. */
async function bucketPage (source: TokenListingSource, aud: string | undefined, at: { bucket: number, after?: string }, limit: number): Promise<RevokedTokenPage> {
  const { client, buckets } = source
  const tags = await client.hgetall(source.audienceIndex)
  let wanted = ''
  if (aud !== undefined) {
    wanted = audienceTag(aud)
    // No token of an audience whose tag is not recorded for it was ever written here.
    if (tags[wanted] !== aud) return { tokens: [], next: null }
  }
  const after = at.after === undefined ? undefined : Buffer.from(at.after, 'base64url')
  const now = Date.now()
  const tokens: RevokedToken[] = []
  let bucket = at.bucket
  let seen = 0
  for (let width = FIRST_WAVE, read = 0; bucket < buckets && read < BUCKETS_PER_PAGE;) {
    const wave = Array.from({ length: Math.min(width, buckets - bucket, BUCKETS_PER_PAGE - read) }, (_, i) => bucket + i)
    const replies = await Promise.all(wave.map((b) =>
      evalBuffer(client, READ_LIVE_FIELDS, 1, bucketKey(source.bucketPrefix, b), String(now), wanted) as Promise<Buffer[]>))
    for (const [i, flat] of replies.entries()) {
      const fields: Array<[Buffer, Buffer]> = []
      for (let j = 0; j < flat.length; j += 2) {
        if (wave[i] !== at.bucket || after === undefined || Buffer.compare(flat[j]!, after) > 0) fields.push([flat[j]!, flat[j + 1]!])
      }
      fields.sort((a, b) => Buffer.compare(a[0], b[0]))
      for (const [field, value] of fields) {
        const { tag, jti } = decodeField(field)
        const expiresAt = liveExpiry(value.toString(), now)
        const tokenAud = tags[tag]
        if (expiresAt === undefined || tokenAud === undefined) continue
        tokens.push({ aud: tokenAud, jti, expiresAt })
        if (tokens.length === limit) return { tokens, next: encodeTokenCursor({ bucket: wave[i], after: field.toString('base64url') }) }
      }
    }
    bucket += wave.length
    read += wave.length
    for (const flat of replies) seen += flat.length / 2
    // Enough buckets for the rest of the page at the entries per bucket seen (double the last wave when none yet).
    width = seen === 0 ? 2 * width : Math.ceil((limit - tokens.length) / (seen / read))
    width = Math.max(1, Math.min(width, WIDEST_WAVE))
  }
  return { tokens, next: bucket < buckets ? encodeTokenCursor({ bucket }) : null }
}
