// Entry point `fastify-jwt-revocation/auth0`. Built on the core; the core never imports it.
export { auth0Sync } from './plugin.js'
export type { Auth0SyncOptions } from './options.js'
export type { Auth0SyncApi, Auth0SyncStatus } from './sync.js'
