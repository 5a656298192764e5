import { calculateJwkThumbprint, importJWK, jwtVerify } from 'jose'
import type { CryptoKey, JWK, JWTHeaderParameters, JWTPayload } from '../../lib/jose-types.js'
import { LRUCache } from 'lru-cache'
import { isCanonicalJws } from '../../lib/canonical-segments.js'
import { InvalidDpopProofError } from '../../errors.js'
import { encodedParsedAsWritten, parsedAsWritten } from '../../lib/json-as-written.js'
import { sameHttpUri } from './url.js'

/** What a valid proof establishes: who holds the key, and the proof's identity for the replay cache. */
export interface DpopProof {
  /** RFC 7638 thumbprint of the proof's public key: compared with the token's `cnf.jkt`. */
  jkt: string
  jti: string
  /** Seconds. */
  iat: number
  nonce: unknown
}

export interface ProofRules {
  algorithms: string[]
  /** Seconds either way from now (proofMaxAge + clockTolerance). */
  iatWindow: number
}

/** A proof is small, and a bound on it bounds the work. */
const MAX_PROOF_SIZE = 8192
/**
 * A `jti` becomes part of a store key: printable ASCII only (no NUL, which PostgreSQL text
 * refuses, so a client could otherwise turn its proofs into store failures), at most 256.
 */
const JTI = /^[\x20-\x7e]{1,256}$/
/** RFC 9449 §4.2: a public key only. Members that would carry a private or symmetric key. */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k']

interface ProofKey { key: CryptoKey, jkt: string }

const refuse = (description: string): never => { throw new InvalidDpopProofError(description) }

/**
 * base64url(SHA-256(token)), the proof's `ath` (RFC 9449 §4.2), from the token's digest as
 * `tokenDigest` gives it (a binary string): the digest that keys the cache serves both.
 */
export function accessTokenHashOf (digest: string): string {
  return Buffer.from(digest, 'latin1').toString('base64url')
}

/**
 * Verifies DPoP proofs (RFC 9449 §4.3) with jose. A client signs every proof with the
 * same key and header, so the imported key and its thumbprint are kept by the header's
 * text: the signature is still verified on every request, the import is not repeated.
 */
export class ProofVerifier {
  private readonly keys = new LRUCache<string, ProofKey>({ max: 1000 })

  constructor (private readonly rules: ProofRules) {}

  /**
   * The proof of `header` (the request's one `DPoP` header) for `method` `uri` carrying the
   * token whose `ath` is `tokenHash` (`accessTokenHashOf`), or a thrown InvalidDpopProofError.
   * `uri` is the request's (see `requestUri`), or null when the request has no URL a proof could name.
   */
  async verify (header: string, method: string, uri: string | null, tokenHash: string, nowSeconds: number): Promise<DpopProof> {
    if (header.length > MAX_PROOF_SIZE || !isCanonicalJws(header)) refuse('The DPoP proof is malformed')
    const first = header.indexOf('.')
    const encodedHeader = header.slice(0, first)
    const proofKey = this.keys.get(encodedHeader) ?? await this.importKey(encodedHeader)
    let payload: JWTPayload
    let protectedHeader: JWTHeaderParameters
    try {
      ({ payload, protectedHeader } = await jwtVerify(header, proofKey.key, {
        typ: 'dpop+jwt',
        algorithms: this.rules.algorithms,
        requiredClaims: ['jti', 'htm', 'htu', 'iat'],
      }))
    } catch (err) {
      return refuse(describe(err))
    }
    // jose parsed the header again: what it read (typ, alg, crit) must be what the text says, as our own parse was.
    if (!encodedParsedAsWritten(encodedHeader, protectedHeader) ||
      !encodedParsedAsWritten(header.slice(first + 1, header.indexOf('.', first + 1)), payload)) {
      refuse('The DPoP proof has duplicate or unreadable member names')
    }
    const { jti, htm, htu, iat, ath } = payload as { jti?: unknown, htm?: unknown, htu?: unknown, iat?: unknown, ath?: unknown }
    if (typeof jti !== 'string' || !JTI.test(jti)) refuse('The DPoP proof has an invalid jti')
    if (htm !== method) refuse('The DPoP proof is for another method')
    if (uri === null || typeof htu !== 'string' || !sameHttpUri(htu, uri)) refuse('The DPoP proof is for another URL')
    if (typeof iat !== 'number' || Math.abs(nowSeconds - iat) > this.rules.iatWindow) refuse('The DPoP proof is outside its time window')
    if (ath !== tokenHash) refuse('The DPoP proof is not for this access token')
    return { jkt: proofKey.jkt, jti: jti as string, iat: iat as number, nonce: payload.nonce }
  }

  private async importKey (encodedHeader: string): Promise<ProofKey> {
    let protectedHeader: { typ?: unknown, alg?: unknown, jwk?: unknown }
    let text: Buffer
    try {
      text = Buffer.from(encodedHeader, 'base64url')
      protectedHeader = JSON.parse(text.toString('utf8')) as typeof protectedHeader
    } catch {
      return refuse('The DPoP proof is malformed')
    }
    if (typeof protectedHeader !== 'object' || protectedHeader === null || !parsedAsWritten(text, protectedHeader)) refuse('The DPoP proof is malformed')
    const { alg, jwk } = protectedHeader
    if (typeof alg !== 'string' || !this.rules.algorithms.includes(alg)) refuse('The DPoP proof is signed with an algorithm that is not allowed')
    if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) refuse('The DPoP proof lacks its public key')
    if (PRIVATE_MEMBERS.some((member) => (jwk as Record<string, unknown>)[member] !== undefined)) refuse('The DPoP proof key must be a public key')
    let key: CryptoKey
    let jkt: string
    try {
      const imported = await importJWK(jwk as JWK, alg as string)
      if (imported instanceof Uint8Array || imported.type !== 'public') return refuse('The DPoP proof key must be a public key')
      key = imported
      jkt = await calculateJwkThumbprint(jwk as JWK, 'sha256')
    } catch (err) {
      if ((err as { code?: string }).code === 'FST_JWT_REVOCATION_INVALID_DPOP_PROOF') throw err
      return refuse('The DPoP proof key is invalid')
    }
    const proofKey = { key, jkt }
    this.keys.set(encodedHeader, proofKey)
    return proofKey
  }
}

function describe (err: unknown): string {
  const e = err as { code?: string, claim?: string, reason?: string }
  switch (e?.code) {
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED': return 'The DPoP proof signature is invalid'
    case 'ERR_JOSE_ALG_NOT_ALLOWED': return 'The DPoP proof is signed with an algorithm that is not allowed'
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (e.claim === 'typ') return 'The DPoP proof has an unexpected type'
      if (e.reason === 'missing') return 'The DPoP proof lacks a required claim'
      return 'The DPoP proof has an invalid claim'
    case 'ERR_JWT_EXPIRED': return 'The DPoP proof is outside its time window'
    default: return 'The DPoP proof is malformed'
  }
}
