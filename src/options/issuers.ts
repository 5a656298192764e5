import type { KeyObject } from 'node:crypto'
import { InvalidOptionError, InvalidTokenError, invalidOption } from '../errors.js'
import type { JSONWebKeySet, JWK } from '../lib/jose-types.js'
import { createKeySource, type KeyPolicyLog, type KeySource, type RemoteJwksOptions, type ResolvedKey } from '../token/keys.js'
import { resolveIntrospectionOptions, type IntrospectionOptions, type ResolvedIntrospectionOptions } from '../sources/introspection/options.js'
import { optionKeys, refuseUnknownKeys } from './option-keys.js'
import { stringList } from './option-values.js'

/** One authorization server whose tokens the API accepts, verified with its own keys only. */
export interface IssuerOptions {
  /** The `iss` its tokens carry, exactly: it picks this entry before any key is fetched. */
  issuer: string
  jwksUri?: string | URL
  /** OIDC discovery (or an Auth0 domain URL) at this issuer: the document must name `issuer`. */
  issuerBaseURL?: string | URL
  jwks?: JSONWebKeySet
  publicKey?: string | Buffer | JWK | KeyObject
  /** Allow-list for this issuer's tokens; default as for the top-level key source. */
  algorithms?: string[]
  /** Narrows the plugin's `audience` for this issuer's tokens: each must be one of the plugin's. */
  audience?: string | string[]
  /** Expected `typ` of this issuer's tokens; default the plugin's `typ`. */
  typ?: string
  /**
   * This issuer's RFC 7662 endpoint: its tokens are introspected there and nowhere else.
   * `opaqueTokens: true` in one entry at most: an opaque token names no issuer.
   */
  introspection?: IntrospectionOptions
}

/** An entry as verification uses it. */
export interface IssuerEntry {
  issuer: string
  keySource: KeySource
  audiences: string[]
  typ: string | undefined
  /** Where this issuer's tokens are introspected; null when it offers no introspection. */
  introspection: ResolvedIntrospectionOptions | null
}

export const issuerOptionKeys = optionKeys<IssuerOptions>({
  issuer: true, jwksUri: true, issuerBaseURL: true, jwks: true, publicKey: true, algorithms: true, audience: true, typ: true, introspection: true,
})
const entrySources = ['jwksUri', 'issuerBaseURL', 'jwks', 'publicKey'] as const
/** Top-level options that say the same thing as an entry, so giving both would leave one of them unused. */
const replacedByIssuers = ['jwksUri', 'issuerBaseURL', 'jwks', 'publicKey', 'secret', 'issuer', 'algorithms'] as const

/** What an entry inherits from the plugin's options. */
export interface IssuerDefaults {
  audiences: string[]
  typ: string | undefined
  jwksOptions: RemoteJwksOptions | undefined
  retryAfterMs: number
  log: KeyPolicyLog | undefined
}

/**
 * Refuses a top-level key source or `issuer` beside `issuers`: which one verifies a token
 * would otherwise be a guess. `algorithms` goes in each entry for the same reason.
 */
export function refuseSingleIssuerOptions (options: Record<string, unknown>): void {
  for (const name of replacedByIssuers) {
    if (options[name] !== undefined && options[name] !== null) {
      throw invalidOption(name, name === 'issuer' || name === 'algorithms'
        ? `cannot be used with "issuers": give ${name} in each entry of issuers`
        : 'cannot be used with "issuers": give each issuer its key source in its entry')
    }
  }
}

/** Validates `issuers` once, at registration: each entry its own key source (and its own breaker and cache). */
export function resolveIssuers (value: unknown, defaults: IssuerDefaults): IssuerEntry[] {
  if (!Array.isArray(value) || value.length === 0) throw invalidOption('issuers', 'must be a non-empty array of { issuer, jwksUri | issuerBaseURL | jwks | publicKey, … }')
  const seen = new Map<string, number>()
  let opaqueAsked: number | undefined
  return value.map((entry: unknown, i) => {
    const path = `issuers[${i}]`
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw invalidOption(path, 'must be an object { issuer, jwksUri | issuerBaseURL | jwks | publicKey, … }')
    refuseUnknownKeys(entry, issuerOptionKeys, path)
    const options = entry as IssuerOptions
    if (typeof options.issuer !== 'string' || options.issuer.length === 0) throw invalidOption(`${path}.issuer`, 'is required: the exact iss of its tokens')
    const earlier = seen.get(options.issuer)
    if (earlier !== undefined) throw invalidOption(`${path}.issuer`, `repeats issuers[${earlier}].issuer: each issuer is listed once`)
    seen.set(options.issuer, i)
    const given = entrySources.filter((name) => options[name] !== undefined && options[name] !== null)
    if (given.length !== 1) {
      throw invalidOption(given.length === 0 ? path : `${path}.${given.join('/')}`, given.length === 0
        ? 'needs a key source: jwksUri, issuerBaseURL, jwks or publicKey'
        : 'are mutually exclusive: give each issuer exactly one key source')
    }
    if (options.issuerBaseURL !== undefined) checkDiscoveryBase(options.issuer, options.issuerBaseURL, path)
    const keySource = withinEntry(path, () => createKeySource({
      [given[0]!]: options[given[0]!], algorithms: options.algorithms, jwksOptions: defaults.jwksOptions,
    }, defaults.retryAfterMs, defaults.log))
    const introspection = resolveIntrospectionOptions(options.introspection, [options.issuer], options.issuerBaseURL, `${path}.introspection`)
    if (introspection?.opaqueTokens === true) {
      // An opaque token carries no iss to pick an entry by: one issuer is named for them.
      if (opaqueAsked !== undefined) throw invalidOption(`${path}.introspection.opaqueTokens`, `is already set in issuers[${opaqueAsked}]: an opaque token names no issuer, so only one issuer can be asked about them`)
      opaqueAsked = i
    }
    return {
      issuer: options.issuer,
      keySource: options.issuerBaseURL === undefined ? keySource : discoveredAs(options.issuer, keySource),
      audiences: entryAudiences(options.audience, defaults.audiences, path),
      typ: entryTyp(options.typ, defaults.typ, path),
      introspection,
    }
  })
}

/**
 * Messages from the key source name its options as they are at the top level; an
 * entry's are named with the entry's path, so the message points at what to fix.
 */
function withinEntry<T> (path: string, build: () => T): T {
  try {
    return build()
  } catch (err) {
    if (err instanceof InvalidOptionError) err.message = err.message.replace('option "', `option "${path}.`)
    throw err
  }
}

/** An entry narrows the accepted audiences: the plugin's `audience` stays the list revocations, grants and metadata are kept for. */
function entryAudiences (value: unknown, accepted: string[], path: string): string[] {
  const audiences = stringList(value, `${path}.audience`, false)
  if (audiences === undefined) return accepted
  const foreign = audiences.filter((aud) => !accepted.includes(aud))
  if (foreign.length > 0) throw invalidOption(`${path}.audience`, `names ${foreign.join(', ')}, not among the plugin's audience (${accepted.join(', ')}): an entry can only narrow it`)
  return audiences
}

function entryTyp (value: unknown, fallback: string | undefined, path: string): string | undefined {
  if (value === undefined) return fallback
  if (typeof value !== 'string' || value.length === 0) throw invalidOption(`${path}.typ`, 'must be a non-empty string')
  return value
}

const withoutTrailingSlashes = (url: string) => url.replace(/\/+$/, '')

/** Discovery only accepts a document whose issuer is the URL it was found under: an entry naming another issuer could never verify a token. */
function checkDiscoveryBase (issuer: string, base: string | URL, path: string): void {
  let href: string
  try {
    href = new URL(String(base)).href
  } catch {
    return // the key source names the bad URL
  }
  if (withoutTrailingSlashes(href) !== withoutTrailingSlashes(issuer)) {
    throw invalidOption(`${path}.issuerBaseURL`, `must be the issuer's own URL (${issuer}): discovery finds the issuer there`)
  }
}

/**
 * The discovery document names the issuer with or without a trailing slash; tokens are
 * accepted only when it is exactly the entry's `issuer`, which the token's `iss` matched.
 */
function discoveredAs (issuer: string, source: KeySource): KeySource {
  const confirmed = (resolved: ResolvedKey): ResolvedKey => {
    if (resolved.issuer !== undefined && resolved.issuer !== issuer) throw new InvalidTokenError('The token has an unexpected issuer')
    return resolved
  }
  return {
    ...source,
    resolve () {
      const resolved = source.resolve()
      return 'then' in resolved ? resolved.then(confirmed) : confirmed(resolved)
    },
  }
}
