// Shared by the benchmark's orchestrator, its load generator and its server processes.
export const ISSUER = 'https://issuer.bench/'
export const AUDIENCE = 'https://api.bench'
/** The jti every server refuses: each row does the same revocation lookup. */
export const REVOKED_JTI = 'some-revoked-jti'

/** DPoP rows: the URL proofs name (the server's `publicUrl`, so the port does not matter). */
export const DPOP_PUBLIC_URL = 'http://api.bench'

export type Alg = 'ES256' | 'RS256' | 'EdDSA'
export type Store = 'memory' | 'file' | 'redis'

export type ServerKind =
  | { kind: 'bare', hook?: boolean }
  | { kind: 'plugin', alg: Alg, cacheMax: number, store: Store, otel?: boolean, introspect?: boolean, dpop?: boolean }
  | { kind: 'jose', alg: Alg }
  | { kind: 'fastify-jwt', alg: Alg }
  | { kind: 'fastify-jwt-redis', alg: Alg, cacheMax: number }
  | { kind: 'fastify-jwt-jwks', alg: Alg }

/** DPoP proofs the load generator signs before it starts: for each token set, how many (each is sent once). */
export interface DpopLoad {
  privateJwk: Record<string, unknown>
  publicJwk: Record<string, unknown>
  proofs: Record<string, number>
}

/** Handed to every server process in BENCH_KEYS: the public keys, as a JWKS and as PEMs. */
export interface BenchKeys {
  jwks: { keys: Array<Record<string, unknown>> }
  pem: Record<Alg, string>
  jwksUri: string
}
