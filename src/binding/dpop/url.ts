import type { FastifyRequest } from 'fastify'

const UNRESERVED = /[A-Za-z0-9\-._~]/

/**
 * An http(s) URI in the form RFC 3986 §6.2.2–6.2.3 makes comparable: scheme and host
 * lower-cased, default port dropped, dot segments removed (all by WHATWG URL), percent
 * escapes of unreserved characters decoded and the others upper-cased; query and
 * fragment dropped (RFC 9449 §4.3 compares without them). Null for anything else.
 */
export function normalizeHttpUri (value: string): string | null {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return null
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return null
  const path = url.pathname.replace(/%[0-9A-Fa-f]{2}/g, (escape) => {
    const char = String.fromCharCode(parseInt(escape.slice(1), 16))
    return UNRESERVED.test(char) ? char : escape.toUpperCase()
  })
  return url.origin + path
}

/**
 * The URL the client called, as it signed it (not yet normalised): `publicUrl` (external
 * origin and any prefix a proxy strips) followed by the request's path, or the scheme and
 * host Fastify sees (`X-Forwarded-Proto`/`-Host` only from a peer `trustProxy` trusts).
 */
export function requestUri (request: FastifyRequest, publicUrl: string | null): string | null {
  const raw = request.url
  const query = raw.indexOf('?')
  const path = query === -1 ? raw : raw.slice(0, query)
  // An absolute-form or asterisk request target is not a path on this origin.
  if (path.charCodeAt(0) !== 47 /* / */) return null
  return (publicUrl ?? `${request.protocol}://${request.host}`) + path
}

/**
 * Whether a proof's `htu` names `uri` (as `requestUri` gives it). Equal texts normalise
 * alike, so the usual case (the client signed exactly the URL it called) parses nothing.
 */
export function sameHttpUri (htu: string, uri: string): boolean {
  if (htu === uri) return true
  const normalized = normalizeHttpUri(htu)
  return normalized !== null && normalized === normalizeHttpUri(uri)
}
