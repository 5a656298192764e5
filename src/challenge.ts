import { bearerErrorOf } from './errors.js'

/**
 * RFC 6750 §3 `WWW-Authenticate` value for an error of this package; `resourceMetadata`
 * is the RFC 9728 §5.1 URL of the route's protected resource metadata, when served.
 */
export function bearerChallenge (realm: string, code: string, description: string, scopes?: readonly string[], resourceMetadata?: string): string {
  let value = `Bearer realm="${realm}"`
  // A URL parsed by WHATWG URL: its quotes and controls are percent-encoded.
  if (resourceMetadata !== undefined) value += `, resource_metadata="${resourceMetadata}"`
  const error = bearerErrorOf(code)
  if (error === undefined) return value
  // Descriptions are this package's own fixed sentences: never token content.
  value += `, error="${error}", error_description="${description}"`
  if (error === 'insufficient_scope' && scopes !== undefined && scopes.length > 0) value += `, scope="${scopes.join(' ')}"`
  return value
}
