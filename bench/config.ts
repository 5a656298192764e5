// Shared by the benchmark's orchestrator, its load generator and its server processes.
export const ISSUER = 'https://issuer.bench/'
export const AUDIENCE = 'https://api.bench'
/** The jti every server refuses: each row does the same revocation lookup. */
export const REVOKED_JTI = 'some-revoked-jti'

export type Alg = 'ES256' | 'RS256' | 'EdDSA'
export type Store = 'memory' | 'file' | 'redis'

export type ServerKind =
  | { kind: 'bare', hook?: boolean }
  | { kind: 'plugin', alg: Alg, cacheMax: number, store: Store, otel?: boolean, introspect?: boolean }
  | { kind: 'jose', alg: Alg }
  | { kind: 'fastify-jwt', alg: Alg }
  | { kind: 'fastify-jwt-jwks', alg: Alg }

/** Handed to every server process in BENCH_KEYS: the public keys, as a JWKS and as PEMs. */
export interface BenchKeys {
  jwks: { keys: Array<Record<string, unknown>> }
  pem: Record<Alg, string>
  jwksUri: string
}
