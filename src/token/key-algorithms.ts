import type { KeyObject } from 'node:crypto'
import type { JWK } from '../lib/jose-types.js'
import { allowsVerification } from './key-policy.js'

// Which JWS algorithms a key can verify: what makes an allow-listed algorithm that no key
// serves visible, rather than a configuration that starts and then refuses every token.

const RSA = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512']
const BY_CURVE: Readonly<Record<string, readonly string[]>> = {
  'P-256': ['ES256'], 'P-384': ['ES384'], 'P-521': ['ES512'], Ed25519: ['EdDSA', 'Ed25519'],
}
const NODE_CURVES: Readonly<Record<string, string>> = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' }

/** The algorithms an imported public key can verify; empty for a key type JWS does not sign with. */
export function algorithmsForKey (key: KeyObject): readonly string[] {
  switch (key.asymmetricKeyType) {
    case 'rsa': return RSA
    case 'rsa-pss': return RSA.filter((alg) => alg.startsWith('PS'))
    case 'ed25519': return BY_CURVE.Ed25519!
    case 'ec': return BY_CURVE[NODE_CURVES[key.asymmetricKeyDetails?.namedCurve ?? ''] ?? ''] ?? []
    default: return []
  }
}

/** The algorithms a JWK can verify, as jose selects set members: by `kty`/`crv`, its `alg` if any, and its `use`/`key_ops`. */
export function algorithmsForJwk (jwk: JWK): readonly string[] {
  if (!allowsVerification(jwk)) return []
  const family = jwk.kty === 'RSA' ? RSA : (jwk.kty === 'EC' || jwk.kty === 'OKP') ? BY_CURVE[jwk.crv ?? ''] ?? [] : []
  return jwk.alg === undefined ? family : family.filter((alg) => alg === jwk.alg)
}

/** The members of `algorithms` that no key of `keys` can verify. */
export function algorithmsWithoutKey (algorithms: readonly string[], keys: readonly JWK[]): string[] {
  const served = new Set(keys.flatMap((jwk) => algorithmsForJwk(jwk)))
  return algorithms.filter((alg) => !served.has(alg))
}

/** The verification keys of a set, for a message: `EC P-256, RSA (alg RS384)`; "no verification key" when none. */
export function describeKeys (keys: readonly JWK[]): string {
  const kinds = new Set(keys.filter((jwk) => algorithmsForJwk(jwk).length > 0).map((jwk) => {
    const kind = jwk.kty === 'RSA' ? 'RSA' : `${jwk.kty} ${jwk.crv}`
    return typeof jwk.alg === 'string' ? `${kind} (alg ${jwk.alg})` : kind
  }))
  return kinds.size === 0 ? 'no verification key' : [...kinds].join(', ')
}
