// jose publishes ES modules only. The CommonJS build's declarations name its types, and a
// CommonJS consumer compiled with `module: "node16"` (where require() cannot load ES
// modules) accepts that only when the import says it resolves as `import`. Every
// module takes jose's types from here, so that is said once.
export type {
  CryptoKey,
  JSONWebKeySet,
  JWK,
  JWTHeaderParameters,
  JWTPayload,
  JWTVerifyGetKey,
  JWTVerifyOptions,
} from 'jose' with { 'resolution-mode': 'import' }
