import type { ResolvedDpopOptions, ResolvedMtlsOptions } from '../binding/dpop/options.js'
import type { FastifyInstance } from 'fastify'
import { invalidOption, ServiceUnavailableError } from '../errors.js'
import { isLoopbackHost } from '../lib/fetch.js'
import type { KeySource } from '../token/keys.js'
import { optionKeys, refuseUnknownKeys } from '../options/option-keys.js'
import { routePolicy } from '../request/route-policy.js'

// RFC 9728 protected resource metadata: how a client that only knows this API's URL
// finds the authorization server that issues its tokens (MCP clients require it). The
// document is derived from the options the plugin already has, so it cannot disagree
// with what the plugin accepts.

/** RFC 9728 §2 fields; those given replace or add to the derived ones. */
export interface ResourceMetadataFields {
  /** The resource identifier; default: each audience that is an absolute https URL (http only on loopback). */
  resource?: string
  /** Default: the `issuer` option (every entry's with `issuers`), else the issuer discovery finds at `issuerBaseURL`. */
  authorization_servers?: string[]
  jwks_uri?: string
  /** Default: every scope a route of this resource requires (`config.auth.scopes`). */
  scopes_supported?: string[]
  /** Default `['header']`. */
  bearer_methods_supported?: string[]
  resource_signing_alg_values_supported?: string[]
  resource_name?: string
  resource_documentation?: string
  resource_policy_uri?: string
  resource_tos_uri?: string
  tls_client_certificate_bound_access_tokens?: boolean
  authorization_details_types_supported?: string[]
  dpop_signing_alg_values_supported?: string[]
  dpop_bound_access_tokens_required?: boolean
}

export type ResourceMetadataOptions = boolean | ResourceMetadataFields

const fieldKeys = optionKeys<ResourceMetadataFields>({
  resource: true, authorization_servers: true, jwks_uri: true, scopes_supported: true, bearer_methods_supported: true,
  resource_signing_alg_values_supported: true, resource_name: true, resource_documentation: true, resource_policy_uri: true,
  resource_tos_uri: true, tls_client_certificate_bound_access_tokens: true, authorization_details_types_supported: true,
  dpop_signing_alg_values_supported: true, dpop_bound_access_tokens_required: true,
})
const booleanFields = new Set(['tls_client_certificate_bound_access_tokens', 'dpop_bound_access_tokens_required'])
const listFields = new Set(['authorization_servers', 'scopes_supported', 'bearer_methods_supported', 'resource_signing_alg_values_supported', 'authorization_details_types_supported', 'dpop_signing_alg_values_supported'])

/** RFC 9728 §3.1: the well-known suffix inserted between the host and the resource's path. */
export const WELL_KNOWN = '/.well-known/oauth-protected-resource'
/** Seconds clients and proxies may keep the document: it changes only with a redeploy. */
export const METADATA_MAX_AGE = 3600

interface Resource {
  identifier: string
  /** Path of the metadata route on this server. */
  path: string
  /** Absolute URL of the document: what a 401 challenge names. */
  url: string
  host: string
}

export interface ResolvedResourceMetadata {
  resources: Resource[]
  fields: ResourceMetadataFields
  /** The document URL for a route of `audience` (§3.1: the route's audience when it has one, else the first). */
  urlFor: (audience: string | undefined) => string
}

function resourceOf (identifier: string): Resource | undefined {
  let url: URL
  try {
    url = new URL(identifier)
  } catch {
    return undefined
  }
  // §2: an https URL without fragment; plain http only for a server on this machine.
  if (url.hash !== '' || url.username !== '' || url.password !== '') return undefined
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.hostname))) return undefined
  // The path as it is, a trailing slash included: clients build the URL the same way.
  const path = WELL_KNOWN + (url.pathname === '/' ? '' : url.pathname)
  return { identifier, path, url: url.origin + path + url.search, host: url.host }
}

function checkFields (fields: Record<string, unknown>): void {
  for (const [name, value] of Object.entries(fields)) {
    const option = `resourceMetadata.${name}`
    if (booleanFields.has(name)) {
      if (typeof value !== 'boolean') throw invalidOption(option, 'must be a boolean')
    } else if (listFields.has(name)) {
      if (!Array.isArray(value) || value.some((v) => typeof v !== 'string' || v === '')) throw invalidOption(option, 'must be an array of non-empty strings')
    } else if (typeof value !== 'string' || value === '') {
      throw invalidOption(option, 'must be a non-empty string')
    }
  }
}

/** Validates `resourceMetadata` once, at registration; null when it is off. */
export function resolveResourceMetadata (value: unknown, audiences: readonly string[], issuers: readonly string[] | undefined, keySource: KeySource | null): ResolvedResourceMetadata | null {
  if (value === undefined || value === false) return null
  if (value !== true && (typeof value !== 'object' || value === null || Array.isArray(value))) throw invalidOption('resourceMetadata', 'must be true or an object of RFC 9728 fields')
  const fields = (value === true ? {} : { ...value }) as ResourceMetadataFields
  refuseUnknownKeys(fields, fieldKeys, 'resourceMetadata')
  checkFields(fields as Record<string, unknown>)
  let resources: Resource[]
  if (fields.resource !== undefined) {
    // §3.3: the identifier is what clients ask tokens for, so it must be an audience here.
    const resource = audiences.includes(fields.resource) ? resourceOf(fields.resource) : undefined
    if (resource === undefined) throw invalidOption('resourceMetadata.resource', 'must be one of the audiences, an https URL (http only on loopback)')
    resources = [resource]
  } else {
    resources = audiences.map(resourceOf).filter((r): r is Resource => r !== undefined)
    if (resources.length === 0) throw invalidOption('resourceMetadata', 'needs an audience that is an https URL (http only on loopback): it is the resource identifier')
  }
  if (fields.authorization_servers === undefined && issuers === undefined && keySource?.option !== 'issuerBaseURL') {
    throw invalidOption('resourceMetadata.authorization_servers', 'is required when neither issuer nor issuerBaseURL names the authorization server')
  }
  const byAudience = new Map(resources.map((r) => [r.identifier, r.url]))
  const first = resources[0]!.url
  return { resources, fields, urlFor: (audience) => (audience === undefined ? undefined : byAudience.get(audience)) ?? first }
}

/** What the options say about sender-constrained tokens (RFC 9728 §2, RFC 9449 §5.1, RFC 8705 §3.4). */
function bindingFields (dpop: ResolvedDpopOptions | null, mtls: ResolvedMtlsOptions | null): Partial<ResourceMetadataFields> {
  return {
    ...(dpop === null ? {} : { dpop_signing_alg_values_supported: dpop.algorithms, dpop_bound_access_tokens_required: dpop.required }),
    ...(mtls === null ? {} : { tls_client_certificate_bound_access_tokens: true }),
  }
}

export interface MetadataSource {
  metadata: ResolvedResourceMetadata
  /** The `issuer` option, or every entry's issuer with `issuers`. */
  issuers: readonly string[] | undefined
  /** Asked for the issuer discovery finds when `issuers` is undefined; null with `issuers`. */
  keySource: KeySource | null
  global: boolean
  audiences: readonly string[]
  dpop: ResolvedDpopOptions | null
  mtls: ResolvedMtlsOptions | null
}

/** Serves one document per resource, without a token, from the registering context. */
export function serveResourceMetadata (fastify: FastifyInstance, source: MetadataSource): void {
  const { metadata, keySource } = source
  // Scopes per audience ('' for routes of any audience), gathered as routes are added.
  const scopes = new Map<string, Set<string>>()
  fastify.addHook('onRoute', (route) => {
    let policy
    try {
      // Only the scopes matter here: the plugin's own check judges the rest, introspect included.
      policy = routePolicy(route.config?.auth, source.global, source.audiences, route.url, { introspection: true })
    } catch {
      return // the plugin's own check refuses this route
    }
    if (policy === null) return
    const key = policy.audience ?? ''
    let set = scopes.get(key)
    if (set === undefined) scopes.set(key, set = new Set())
    for (const scope of policy.scopes) set.add(scope)
  })

  async function authorizationServers (): Promise<string[]> {
    if (source.issuers !== undefined) return [...source.issuers]
    const resolved = await keySource?.resolve()
    if (resolved?.issuer === undefined) throw new ServiceUnavailableError('The authorization server is not known yet')
    return [resolved.issuer]
  }

  // Built on the first request, once every route (and so every scope) is known.
  const documents = new Map<Resource, string>()
  async function documentOf (resource: Resource): Promise<string> {
    let text = documents.get(resource)
    if (text !== undefined) return text
    const scopesSupported = [...new Set([...(scopes.get('') ?? []), ...(scopes.get(resource.identifier) ?? [])])].sort()
    const document = {
      resource: resource.identifier,
      ...(metadata.fields.authorization_servers === undefined ? { authorization_servers: await authorizationServers() } : {}),
      bearer_methods_supported: ['header'],
      ...(scopesSupported.length > 0 ? { scopes_supported: scopesSupported } : {}),
      ...bindingFields(source.dpop, source.mtls),
      ...metadata.fields,
    }
    text = JSON.stringify(document)
    documents.set(resource, text)
    return text
  }

  // Two resources on different hosts may share a path: the request's host picks.
  const byPath = new Map<string, Resource[]>()
  for (const resource of metadata.resources) byPath.set(resource.path, [...(byPath.get(resource.path) ?? []), resource])
  for (const [path, resources] of byPath) {
    fastify.get(path, { config: { auth: false } }, async (request, reply) => {
      const resource = resources.find((r) => r.host === request.host) ?? resources[0]!
      const text = await documentOf(resource)
      return reply.type('application/json').header('cache-control', `public, max-age=${METADATA_MAX_AGE}`).send(text)
    })
  }
}
