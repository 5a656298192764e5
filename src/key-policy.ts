import { KeyObject } from 'node:crypto'

// The one rule every key source applies before a key may verify anything. It runs when a
// key is imported (at registration, or once per key a remote set yields), never per request.
// Each check answers with the reason a key is refused, or undefined when it may be used.

/** NIST SP 800-131A and RFC 7518 §3.3: RSA keys below 2048 bits are factorable by now. */
export const MIN_RSA_MODULUS_BITS = 2048

/** RFC 7518 §3.2: an HMAC key must be at least as long as the hash output. */
const HMAC_HASH_BYTES: Readonly<Record<string, number>> = { HS256: 32, HS384: 48, HS512: 64 }

/** Bytes an HMAC secret needs to serve every one of `algorithms`. */
export function minimumSecretBytes (algorithms: readonly string[]): number {
  return Math.max(32, ...algorithms.map((alg) => HMAC_HASH_BYTES[alg] ?? 0))
}

export function secretKeyProblem (sizeBytes: number, algorithms: readonly string[]): string | undefined {
  const needed = minimumSecretBytes(algorithms)
  if (sizeBytes >= needed) return undefined
  const longest = algorithms.filter((alg) => HMAC_HASH_BYTES[alg] === needed)[0] ?? 'HS256'
  return `must be at least ${needed} bytes long for ${longest} (it is ${sizeBytes}); RFC 7518 §3.2 asks a key as long as the hash`
}

/** An asymmetric public key: RSA strong enough and with an exponent that makes it a signature at all. */
export function publicKeyProblem (key: KeyObject): string | undefined {
  const type = key.asymmetricKeyType
  if (type !== 'rsa' && type !== 'rsa-pss') return undefined
  const { modulusLength, publicExponent } = key.asymmetricKeyDetails ?? {}
  if (modulusLength === undefined || modulusLength < MIN_RSA_MODULUS_BITS) {
    return `is an RSA key of ${modulusLength ?? 'unknown'} bits; at least ${MIN_RSA_MODULUS_BITS} are required`
  }
  // With e = 1 a "signature" is the padded hash itself: anyone can make one (RFC 8017 §3.1: 3 ≤ e, odd).
  if (publicExponent === undefined || publicExponent < 3n || publicExponent % 2n === 0n) {
    return `has RSA public exponent ${publicExponent ?? 'unknown'}; it must be odd and at least 3`
  }
  return undefined
}

/** The members of a JWK that say what it may be used for (RFC 7517 §4.2–4.4). */
export interface KeyMetadata {
  use?: unknown
  key_ops?: unknown
  alg?: unknown
}

/** True when the JWK's `use` and `key_ops` allow verifying signatures (absent members allow it). */
export function allowsVerification (jwk: KeyMetadata): boolean {
  return usageProblem(jwk) === undefined
}

function usageProblem (jwk: KeyMetadata): string | undefined {
  if (jwk.use !== undefined && jwk.use !== 'sig') return `has "use": ${JSON.stringify(jwk.use)}; a verification key needs "sig"`
  if (jwk.key_ops !== undefined && (!Array.isArray(jwk.key_ops) || !jwk.key_ops.includes('verify'))) {
    return 'has "key_ops" without "verify"'
  }
  return undefined
}

/**
 * A JWK given as the one verification key: its `use` and `key_ops` must allow verifying, and
 * its `alg`, when present, must be one the key can verify (it then is the only one allowed).
 */
export function jwkMetadataProblem (jwk: KeyMetadata, keyAlgorithms: readonly string[]): string | undefined {
  const usage = usageProblem(jwk)
  if (usage !== undefined) return usage
  if (jwk.alg !== undefined && (typeof jwk.alg !== 'string' || !keyAlgorithms.includes(jwk.alg))) {
    return `has "alg": ${JSON.stringify(jwk.alg)}, which this key cannot verify (it can: ${keyAlgorithms.join(', ')})`
  }
  return undefined
}
