// Rebuilds a Wycheproof JWS defect around a valid claim set, as fixtures/wycheproof/README.md
// describes: Wycheproof's payloads are "foo" or prose, never claims, so a published vector only
// shows that a defect is refused for the wrong reason too. Here the same defect is carried over
// to a token whose claims are right, made with the vector's own private key, so that only the
// signature, the key or the encoding differs from a token the plugin must accept.
//
// This is test code reproducing malformed signatures; the raw RSA and MGF1 below exist to
// *break* signatures the way the vectors do, never to verify anything.
import {
  constants, createHash, createHmac, createPrivateKey, createPublicKey, generateKeyPairSync, privateDecrypt,
  publicEncrypt, sign, timingSafeEqual, verify, type JsonWebKey, type KeyObject,
} from 'node:crypto'

export type Jwk = JsonWebKey & { kid?: string, alg?: string, use?: string, key_ops?: string[] }

const b64u = (bytes: Uint8Array | string) => Buffer.from(bytes).toString('base64url')
const unb64u = (text: string) => Buffer.from(text, 'base64url')
const toInt = (bytes: Uint8Array) => bytes.length === 0 ? 0n : BigInt('0x' + Buffer.from(bytes).toString('hex'))
function toBytes (value: bigint, length: number): Buffer | undefined {
  const hex = value.toString(16).padStart(length * 2, '0')
  return hex.length > length * 2 ? undefined : Buffer.from(hex, 'hex')
}

const HASH: Record<string, string> = { 256: 'sha256', 384: 'sha384', 512: 'sha512' }
const hashOf = (alg: string) => HASH[alg.slice(2)] ?? 'sha256'

/** The signing key of a group: an HMAC secret or an asymmetric private key. */
export class GroupKey {
  readonly secret?: Buffer
  readonly privateKey?: KeyObject
  readonly publicKey?: KeyObject

  constructor (jwk: Jwk) {
    if (jwk.kty === 'oct') {
      this.secret = unb64u(jwk.k ?? '')
    } else {
      this.privateKey = createPrivateKey({ key: jwk, format: 'jwk' })
      this.publicKey = createPublicKey(this.privateKey)
    }
  }

  get modulus (): bigint | undefined {
    const n = this.publicKey?.export({ format: 'jwk' }).n
    return n === undefined ? undefined : toInt(unb64u(n))
  }

  /** A fresh JWS signature of `input` under `alg`, base64url. */
  sign (alg: string, input: string): string {
    return b64u(signWith(this, alg, Buffer.from(input)))
  }

  /** Whether `signature` (base64url) is a correct `alg` signature of `input` by this key. */
  verifies (alg: string, input: string, signature: string): boolean {
    try {
      const sig = unb64u(signature)
      if (b64u(sig) !== signature) return false
      if (this.secret !== undefined) {
        if (!alg.startsWith('HS')) return false
        const mac = createHmac(hashOf(alg), this.secret).update(input).digest()
        return mac.length === sig.length && timingSafeEqual(mac, sig)
      }
      return verify(hashOf(alg), Buffer.from(input), keyOptions(this.publicKey!, alg), sig)
    } catch {
      return false
    }
  }
}

function keyOptions<K extends KeyObject> (key: K, alg: string) {
  if (alg.startsWith('PS')) return { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: Number(alg.slice(2)) / 8 }
  if (alg.startsWith('ES')) return { key, dsaEncoding: 'ieee-p1363' as const }
  return { key }
}

function signWith (key: GroupKey, alg: string, input: Buffer): Buffer {
  if (key.secret !== undefined) return createHmac(hashOf(alg), key.secret).update(input).digest()
  if (!/^(RS|PS|ES)(256|384|512)$/.test(alg)) throw new Error(`cannot sign ${alg}`)
  return sign(hashOf(alg), input, keyOptions(key.privateKey!, alg))
}

/** The token a resource server must accept: the vector's header, valid claims, a correct signature. */
export interface Fresh { header: string, payload: string, signature: string, alg: string }

/** A token with the vector's header, our claims and a correct signature: for vectors whose defect is the key. */
export function signedToken (header: string, payload: string, key: GroupKey): string {
  const alg = headerAlg(header) ?? 'none'
  return `${header}.${payload}.${key.sign(alg, `${header}.${payload}`)}`
}

export function claimsPayload (iss: string, aud: string): string {
  const now = Math.floor(Date.now() / 1000)
  const claims = { iss, aud, sub: 'wycheproof@clients', scope: 'read:orders', iat: now, exp: now + 600, jti: crypto.randomUUID() as string }
  // A JSON length of 3k + 1 leaves unused bits in the last base64url character (for #374, #375).
  while (JSON.stringify(claims).length % 3 !== 1) claims.jti += 'x'
  return b64u(JSON.stringify(claims))
}

function headerAlg (segment: string): string | undefined {
  try {
    const alg = JSON.parse(unb64u(segment).toString('utf8')).alg
    return typeof alg === 'string' ? alg : undefined
  } catch {
    return undefined
  }
}

/** The differing middle of `to` against `from`: `to = from[0, prefix) + middle + from[from.length - suffix, end)`. */
function edit (from: string, to: string): { prefix: number, suffix: number, middle: string } {
  let prefix = 0
  while (prefix < from.length && prefix < to.length && from[prefix] === to[prefix]) prefix++
  let suffix = 0
  while (suffix < from.length - prefix && suffix < to.length - prefix && from[from.length - 1 - suffix] === to[to.length - 1 - suffix]) suffix++
  return { prefix, suffix, middle: to.slice(prefix, to.length - suffix) }
}

function applyEdit (target: string, e: { prefix: number, suffix: number, middle: string }, fromLength: number): string {
  // An edit nearer the start keeps its distance from the start, one nearer the end from the end.
  const replaced = fromLength - e.prefix - e.suffix
  if (e.prefix <= e.suffix) return target.slice(0, e.prefix) + e.middle + target.slice(e.prefix + replaced)
  return target.slice(0, target.length - e.suffix - replaced) + e.middle + target.slice(target.length - e.suffix)
}

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
const nextBase64urlChar = (c: string) => BASE64URL[(BASE64URL.indexOf(c) + 1) % 64]!

const isSmallEdit = (from: string, to: string) => {
  const e = edit(from, to)
  return e.middle.length <= 4 && from.length - e.prefix - e.suffix <= 4
}

export interface Rebuilt {
  token?: string
  /** How the defect was carried over, for the report; absent token: why it could not be. */
  how: string
}

/**
 * Carries the defect of `vector` (a published token of `group`, `reference` being a valid one of
 * the same group, or none) to a token with claims `payload`.
 */
export function rebuild (vector: string, reference: string | undefined, key: GroupKey, payload: string, comment: string): Rebuilt {
  const parts = vector.split('.')
  const ref = (reference ?? vector).split('.')
  const header = ref[0]!
  const alg = headerAlg(header) ?? 'none'
  let signature: string | undefined
  // Signing costs an RSA private operation: only when the defect needs the right signature.
  const fresh: Fresh = { header, payload, alg, get signature () { return (signature ??= key.sign(alg, `${header}.${payload}`)) } }
  const good = () => `${fresh.header}.${fresh.payload}.${fresh.signature}`

  if (vector.startsWith('{')) {
    // JWS JSON serialization (#17, its closing "]}" missing as published): the same text, our values.
    return { token: vector.replace(ref[1]!, fresh.payload).replace(ref[0]!, fresh.header).replace(ref[2]!, fresh.signature), how: 'json serialization' }
  }
  if (comment === 'ModifiedUnusedBitsInPayload' || comment === 'MacOfIncorrectlyEncodedMessage') {
    const last = fresh.payload.at(-1)!
    const flipped = fresh.payload.slice(0, -1) + b64u(Buffer.from([Buffer.from(last + 'A', 'base64url')[0]! | 0x0f])).charAt(1)
    const signature = comment === 'MacOfIncorrectlyEncodedMessage' ? key.sign(alg, `${header}.${flipped}`) : fresh.signature
    return flipped === fresh.payload ? { how: 'no unused bits to flip' } : { token: `${header}.${flipped}.${signature}`, how: 'unused bits' }
  }
  if (comment === 'invalidBase64Padding') return { token: `${good()}=`, how: 'padding on the MAC' }
  if (comment === 'invalidBase64PaddingInPayload') {
    const padded = fresh.payload + '='.repeat((4 - (fresh.payload.length % 4)) % 4)
    return { token: `${header}.${padded}.${key.sign(alg, `${header}.${padded}`)}`, how: 'padding on the payload' }
  }

  // Segment by segment: a segment equal to one of the reference's becomes ours; one edited from
  // the aligned reference segment gets the same edit.
  const role = (i: number) => [fresh.header, fresh.payload][i] ?? fresh.signature
  const out = parts.map((segment, i) => {
    if (segment === ref[i]) return role(i)
    if (segment === '') return ''
    const same = ref.indexOf(segment)
    if (same !== -1) return role(same)
    // Our header is the reference's, so an edited header is the vector's own; a component past
    // the third is extra, kept as published.
    if (i === 0 || i > 2) return segment
    if (i === 2) return undefined // the signature: below
    // A payload far from the reference's is just another message of the group, not a defect.
    return isSmallEdit(ref[1]!, segment) ? applyEdit(fresh.payload, edit(ref[1]!, segment), ref[1]!.length) : fresh.payload
  })
  if (parts.length < 3 || out[2] !== undefined) return { token: out.join('.'), how: 'structure' }

  const input = `${out[0]}.${out[1]}`
  const published = parts[2]!
  const vectorInput = `${parts[0]}.${parts[1]}`
  // A correct signature of the vector's own (edited) input by the group's key: the defect is
  // elsewhere (header, payload, encoding), so sign our edited input the same way.
  const claimed = headerAlg(parts[0]!)
  if (key.verifies(claimed ?? alg, vectorInput, published)) return { token: `${input}.${key.sign(claimed ?? alg, input)}`, how: `re-signed ${claimed}` }

  const vectorHeader = safeJson(parts[0]!)
  if (vectorHeader?.jwk !== undefined) return { token: embeddedJwk(vectorHeader, out[1]!), how: 'embedded attacker jwk' }
  if (claimed?.startsWith('HS') && key.publicKey !== undefined) {
    // Key confusion: a MAC keyed with the public key's bytes (DER here; which bytes does not
    // matter to a verifier that never lets a public key act as a MAC key).
    const der = key.publicKey.export({ format: 'der', type: 'spki' })
    return { token: `${input}.${b64u(createHmac(hashOf(claimed), der).update(input).digest())}`, how: 'public key as MAC key' }
  }
  if (isSmallEdit(ref[2]!, published)) {
    const e = edit(ref[2]!, published)
    let edited = applyEdit(fresh.signature, e, ref[2]!.length)
    // Our signature may already hold the vector's characters at that place (1 in 64 per
    // character, as fresh claims make a fresh signature): then the edit would change nothing
    // and the token stay valid. Move each replacement character one step along the alphabet.
    if (edited === fresh.signature) edited = applyEdit(fresh.signature, { ...e, middle: [...e.middle].map(nextBase64urlChar).join('') }, ref[2]!.length)
    return { token: `${input}.${edited}`, how: 'signature text edit' }
  }
  // Signed under another algorithm of the key's family (a wrong primitive): sign ours alike.
  // Asked first for PSS keys only: there a failed PSS search costs more than the verifications.
  const wrongPrimitive = () => familyOf(alg).find((a) => key.verifies(a, vectorInput, published))
  const used = alg.startsWith('PS') ? wrongPrimitive() : undefined
  if (used !== undefined) return { token: `${input}.${key.sign(used, input)}`, how: `re-signed ${used}` }
  const sig = unb64u(published)
  let carried: Buffer | undefined
  if (alg.startsWith('ES')) carried = ecdsaRelation(sig, unb64u(ref[2]!), unb64u(fresh.signature), alg)
  else if (alg.startsWith('RS') || alg.startsWith('PS')) carried = rsaCarry(sig, key, alg, vectorInput, input)
  if (carried === undefined) {
    const other = alg.startsWith('PS') ? undefined : wrongPrimitive()
    if (other !== undefined) return { token: `${input}.${key.sign(other, input)}`, how: `re-signed ${other}` }
    return { how: 'signature defect not carried' }
  }
  const token = `${input}.${b64u(carried)}`
  // Carrying must keep the defect: a rebuilt signature that verifies lost it.
  if (key.verifies(claimed ?? alg, input, b64u(carried))) return { how: 'defect lost in carrying' }
  return { token, how: `${alg.slice(0, 2)} signature defect` }
}

function familyOf (alg: string): string[] {
  const prefix = alg.slice(0, 2)
  if (prefix === 'RS' || prefix === 'PS') return ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512']
  return [`${prefix}256`, `${prefix}384`, `${prefix}512`]
}

function safeJson (segment: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(unb64u(segment).toString('utf8'))
  } catch {
    return undefined
  }
}

/** The attack of #32: a key of the attacker's, announced in the header, signs the token. */
function embeddedJwk (header: Record<string, unknown>, payload: string): string {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const h = b64u(JSON.stringify({ ...header, jwk: { ...(header.jwk as object), ...publicKey.export({ format: 'jwk' }) } }))
  return `${h}.${payload}.${b64u(sign('sha256', Buffer.from(`${h}.${payload}`), { key: privateKey, dsaEncoding: 'ieee-p1363' }))}`
}

const P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551n
const CURVE_N: Record<string, bigint> = { ES256: P256_N }

/**
 * ECDSA: each half of the published signature is expressed through the reference signature's
 * r or s (or the high-s twin n - s), plus 0, n or 2^256, times 256^z (appended zeros), in a
 * field of its own width; or is a constant (0, 1, n - 1, n). The same expression is then
 * evaluated on our fresh signature.
 */
function ecdsaRelation (sig: Buffer, reference: Buffer, fresh: Buffer, alg: string): Buffer | undefined {
  const n = CURVE_N[alg]
  if (n === undefined || sig.length % 2 !== 0) return undefined
  const size = reference.length / 2
  const [r0, s0] = [toInt(reference.subarray(0, size)), toInt(reference.subarray(size))]
  const [r1, s1] = [toInt(fresh.subarray(0, size)), toInt(fresh.subarray(size))]
  const half = sig.length / 2
  const constantsOf = [0n, 1n, n - 1n, n]
  const terms: Array<[bigint, bigint]> = [[r0, r1], [s0, s1], [n - s0, n - s1], [n - r0, n - r1]]
  const out: Buffer[] = []
  for (const part of [sig.subarray(0, half), sig.subarray(half)]) {
    const value = toInt(part)
    if (constantsOf.includes(value)) {
      out.push(part)
      continue
    }
    let found: Buffer | undefined
    search: for (const [old, ours] of terms) {
      for (const offset of [0n, n, 1n << BigInt(size * 8)]) {
        for (let z = 0n; z <= 2n; z++) {
          if ((old + offset) * (256n ** z) === value) {
            found = toBytes((ours + offset) * (256n ** z), half)
            break search
          }
        }
      }
    }
    if (found === undefined) return undefined
    out.push(found)
  }
  return Buffer.concat(out)
}

/** s^e mod n and m^d mod n, raw (no padding), by OpenSSL. */
const rawPublic = (key: GroupKey, s: Buffer) => publicEncrypt({ key: key.publicKey!, padding: constants.RSA_NO_PADDING }, s)
const rawPrivate = (key: GroupKey, m: Buffer) => privateDecrypt({ key: key.privateKey!, padding: constants.RSA_NO_PADDING }, m)

/**
 * RSA: constants stay; s + n, leading or trailing zeros and truncation are re-applied to the
 * rebuilt signature; a signature of the modulus' size has its encoded message recovered and
 * re-encoded for our input (PKCS #1 v1.5: the hash replaced where it appears; PSS: re-masked).
 */
function rsaCarry (sig: Buffer, key: GroupKey, alg: string, vectorInput: string, input: string): Buffer | undefined {
  const n = key.modulus!
  const k = Math.ceil(n.toString(16).length / 2)
  const value = toInt(sig)
  if ([0n, 1n, n - 1n, n].includes(value)) return sig
  if (value > n && value - n < n) {
    const inner = rsaCarry(toBytes(value - n, k)!, key, alg, vectorInput, input)
    return inner === undefined ? undefined : toBytes(toInt(inner) + n, sig.length)
  }
  if (sig.length > k) {
    const extra = sig.length - k
    if (sig.subarray(0, extra).every((b) => b === 0)) {
      const inner = rsaCarry(sig.subarray(extra), key, alg, vectorInput, input)
      return inner && Buffer.concat([Buffer.alloc(extra), inner])
    }
    if (sig.subarray(k).every((b) => b === 0)) {
      const inner = rsaCarry(sig.subarray(0, k), key, alg, vectorInput, input)
      return inner && Buffer.concat([inner, Buffer.alloc(extra)])
    }
    return undefined
  }
  if (sig.length < k) return signWith(key, alg, Buffer.from(input)).subarray(0, sig.length)
  const em = rawPublic(key, sig)
  const carried = alg.startsWith('PS') ? pssCarry(em, alg, vectorInput, input) : pkcs1Carry(em, alg, vectorInput, input)
  return carried && rawPrivate(key, carried)
}

/** PKCS #1 v1.5: our hash in place of the vector's, a byte or two the vector changed changed alike. */
function pkcs1Carry (em: Buffer, alg: string, vectorInput: string, input: string): Buffer {
  const oldHash = createHash(hashOf(alg)).update(vectorInput).digest()
  const newHash = createHash(hashOf(alg)).update(input).digest()
  let best = -1
  let bestMatches = 0
  for (let i = 0; i < em.length; i++) {
    let matches = 0
    for (let j = 0; j < oldHash.length && i + j < em.length; j++) if (em[i + j] === oldHash[j]) matches++
    if (matches > bestMatches) [best, bestMatches] = [i, matches]
  }
  const out = Buffer.from(em)
  if (bestMatches < oldHash.length / 2) return out
  const window = Math.min(oldHash.length, em.length - best)
  const mismatches = Array.from({ length: window }, (_, j) => em[best + j] !== oldHash[j]).filter(Boolean).length
  for (let j = 0; j < window; j++) {
    if (em[best + j] === oldHash[j]) out[best + j] = newHash[j]!
    else if (mismatches <= 2) out[best + j] = newHash[j]! ^ em[best + j]! ^ oldHash[j]!
  }
  return out
}

function mgf1 (hash: string, seed: Buffer, length: number): Buffer {
  const chunks: Buffer[] = []
  for (let counter = 0; chunks.length * seed.length < length; counter++) {
    const c = Buffer.alloc(4)
    c.writeUInt32BE(counter)
    chunks.push(createHash(hash).update(seed).update(c).digest())
  }
  return Buffer.concat(chunks).subarray(0, length)
}

/**
 * PSS: DB is unmasked; the salt, the separator, PS and the trailer are kept as the vector has
 * them, and so is a one-byte change to mHash or to the eight zero bytes, found by search. H is
 * recomputed for our input and DB masked again with it.
 */
function pssCarry (em: Buffer, alg: string, vectorInput: string, input: string): Buffer | undefined {
  const hash = hashOf(alg)
  const hLen = Number(alg.slice(2)) / 8
  const h = em.subarray(em.length - hLen - 1, em.length - 1)
  const trailer = em.subarray(em.length - 1)
  const maskedDb = em.subarray(0, em.length - hLen - 1)
  const mask = mgf1(hash, h, maskedDb.length)
  const db = Buffer.from(maskedDb.map((b, i) => b ^ mask[i]!))
  db[0] = db[0]! & 0x7f
  const separator = db.indexOf(1)
  const salts = new Set<number>([separator === -1 ? 0 : db.length - separator - 1, 0, hLen, ...Array.from({ length: 65 }, (_, i) => i)])
  const oldPrefix = Buffer.concat([Buffer.alloc(8), createHash(hash).update(vectorInput).digest()])
  const newPrefix = Buffer.concat([Buffer.alloc(8), createHash(hash).update(input).digest()])
  const digest = (prefix: Buffer, salt: Buffer) => createHash(hash).update(prefix).update(salt).digest()
  let change: { at: number, xor: number } | undefined
  let saltLength: number | undefined
  let hDelta: Buffer | undefined
  for (const length of salts) {
    if (length > db.length) continue
    const salt = db.subarray(db.length - length)
    if (digest(oldPrefix, salt).equals(h)) {
      saltLength = length
      change = { at: 0, xor: 0 }
      break
    }
  }
  const standardSalt = [...salts][0]!
  if (saltLength === undefined) {
    // H itself changed after hashing (a byte or two differ from the right H): carry the difference.
    const right = digest(oldPrefix, db.subarray(db.length - standardSalt))
    const delta = Buffer.from(right.map((b, i) => b ^ h[i]!))
    if (delta.filter((b) => b !== 0).length <= 2) {
      saltLength = standardSalt
      change = { at: 0, xor: 0 }
      hDelta = delta
    }
  }
  if (saltLength === undefined) {
    // A byte of the eight zeros or of mHash changed: the ends of each field first.
    const salt = db.subarray(db.length - standardSalt)
    const ends = [8, 8 + hLen - 1, 0, 7]
    const order = [...ends, ...Array.from({ length: oldPrefix.length }, (_, i) => i).filter((i) => !ends.includes(i))]
    const message = Buffer.concat([oldPrefix, salt])
    search: for (const at of order) {
      const original = message[at]!
      for (let xor = 1; xor < 256; xor++) {
        message[at] = original ^ xor
        if (createHash(hash).update(message).digest().equals(h)) {
          change = { at, xor }
          saltLength = standardSalt
          break search
        }
      }
      message[at] = original
    }
  }
  if (saltLength === undefined || change === undefined) return undefined
  const message = Buffer.concat([newPrefix, db.subarray(db.length - saltLength)])
  message[change.at] = message[change.at]! ^ change.xor
  const newH = createHash(hash).update(message).digest()
  if (hDelta !== undefined) for (let i = 0; i < newH.length; i++) newH[i] = newH[i]! ^ hDelta[i]!
  const newMask = mgf1(hash, newH, db.length)
  const remasked = Buffer.from(db.map((b, i) => b ^ newMask[i]!))
  remasked[0] = (remasked[0]! & 0x7f) | (maskedDb[0]! & 0x80)
  return Buffer.concat([remasked, newH, trailer])
}
