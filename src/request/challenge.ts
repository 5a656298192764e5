import { bearerErrorOf } from '../errors.js'

/** Which scheme a request presented its token with: the error attribute goes on that challenge. */
export type AuthScheme = 'Bearer' | 'DPoP'

/**
 * The `WWW-Authenticate` value for an error of this package: RFC 6750 §3 `Bearer` first,
 * then, when DPoP is on (`dpopAlgs` not null), RFC 9449 §7.1 `DPoP` with the accepted
 * proof algorithms. The error attribute is on the scheme the request used.
 * `resourceMetadata` is the RFC 9728 §5.1 URL of the route's protected resource metadata,
 * when served; it goes on the first challenge, which every client reads.
 */
export function challenge (
  realm: string, code: string, description: string, scopes?: readonly string[],
  dpopAlgs: string | null = null, scheme: AuthScheme = 'Bearer', resourceMetadata?: string,
): string {
  const error = errorAttributes(code, description, scopes)
  let value = `Bearer realm="${realm}"`
  // A URL parsed by WHATWG URL: its quotes and controls are percent-encoded.
  if (resourceMetadata !== undefined) value += `, resource_metadata="${resourceMetadata}"`
  if (scheme === 'Bearer') value += error
  if (dpopAlgs !== null) {
    value += `, DPoP algs="${dpopAlgs}"`
    if (scheme === 'DPoP') value += error
  }
  return value
}

function errorAttributes (code: string, description: string, scopes?: readonly string[]): string {
  const error = bearerErrorOf(code)
  if (error === undefined) return ''
  // Descriptions are this package's own fixed sentences: never token content.
  let value = `, error="${error}", error_description="${description}"`
  if (error === 'insufficient_scope' && scopes !== undefined && scopes.length > 0) value += `, scope="${scopes.join(' ')}"`
  return value
}
