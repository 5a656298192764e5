import { jwtRevocation } from './plugin.js'

export { jwtRevocation }
export default jwtRevocation
export type { AuthContext, JwtRevocationOptions, RouteAuthConfig } from './plugin.js'
export type { CacheOptions } from './options/options.js'
export type { IssuerOptions } from './options/issuers.js'
export type { DpopOptions, DpopNonceOptions, MtlsOptions } from './binding/dpop/options.js'
export type { ProvenBinding } from './binding/sender.js'
export type { HealthCheck, HealthContributor, HealthReport } from './ops/health.js'
export type { StatusListOptions } from './sources/status-list/options.js'
export type { IntrospectionOptions } from './sources/introspection/options.js'
export type { ResourceMetadataFields, ResourceMetadataOptions } from './ops/resource-metadata.js'
export type { RemoteJwksOptions } from './token/keys.js'
export type { Duration } from './options/duration.js'
export type { AcrOption, MaxAgeOption } from './options/step-up.js'
export { Revocation, type RevokeTokenInput, type RevokeSessionOptions, type RevokeClientOptions, type RevokeSubjectOptions, type IssuerScope, type CreateGrantInput } from './revocation/revocation.js'
export type { FeedStatus } from './revocation/feed-status.js'
export type { HistoryPage, WriteAuthor } from './revocation/audit.js'
export { MemoryStore, type MemoryStoreOptions } from './stores/memory.js'
export { FileStore, type FileStoreOptions } from './stores/file.js'
export type * from './stores/types.js'
export { adminRoutes, type AdminRoutesOptions } from './admin/routes.js'
export {
  GrantConflictError,
  GrantNotFoundError,
  InsufficientScopeError,
  InsufficientUserAuthenticationError,
  InvalidArgumentError,
  InvalidDpopProofError,
  InvalidOptionError,
  InvalidRequestError,
  InvalidTokenError,
  OutboundRequestError,
  RouteMisconfiguredError,
  ServiceUnavailableError,
  StoreError,
  TokenExpiredError,
  TokenLifetimeError,
  TokenMissingError,
  TokenRevokedError,
  UseDpopNonceError,
  type BearerErrorCode,
  type RevocationReason,
  type RevocationRefusal,
  type JwtRevocationError,
  type JwtRevocationErrorClass,
} from './errors.js'
