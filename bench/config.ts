// Shared by the benchmark's orchestrator and its server processes.
export const ISSUER = 'https://issuer.bench/'
export const AUDIENCE = 'https://api.bench'
export const SECRET = 'a-benchmark-secret-of-at-least-32-bytes'

export type ServerKind =
  | { kind: 'bare' }
  | { kind: 'plugin', source: 'jwks' | 'secret', algorithms: string[], cacheMax: number | false, store: 'memory' | 'redis' }
  | { kind: 'fastify-jwt', cache: boolean }
  | { kind: 'fastify-jwt-jwks' }
