import type { FastifyRequest } from 'fastify'
import { X509Certificate, createHash } from 'node:crypto'
import type { TLSSocket } from 'node:tls'
import type { ResolvedMtlsOptions } from './dpop/options.js'

/** RFC 8705 §3.1: base64url SHA-256 of the certificate's DER. */
const thumbprintOf = (der: Buffer): string => createHash('sha256').update(der).digest('base64url')

/** One TLS connection has one peer certificate: hashed once per connection, not per request. */
const socketThumbprints = new WeakMap<object, string | null>()

function fromSocket (request: FastifyRequest): string | null {
  const socket = request.raw.socket as TLSSocket
  if (typeof socket.getPeerCertificate !== 'function') return null
  let thumbprint = socketThumbprints.get(socket)
  if (thumbprint === undefined) {
    // The chain is the TLS layer's business (requestCert, ca, rejectUnauthorized): a
    // self-signed certificate (RFC 8705 §2.2) is bound by its thumbprint alone.
    const der = socket.getPeerCertificate()?.raw
    thumbprint = der === undefined || der.length === 0 ? null : thumbprintOf(der)
    socketThumbprints.set(socket, thumbprint)
  }
  return thumbprint
}

/**
 * Whether the immediate peer is a proxy Fastify trusts. Fastify's `request.ips` is
 * proxy-addr's walk with Fastify's own trust function: it goes past the socket's address
 * only when `trustProxy` trusts that peer, so more than one address means a trusted proxy
 * forwarded this request. Without `trustProxy` there is no `ips`, and nothing is trusted;
 * a proxy that forwards no `X-Forwarded-For` is not recognised (fail closed).
 */
function fromTrustedProxy (request: FastifyRequest): boolean {
  const ips = request.ips
  return Array.isArray(ips) && ips.length > 1
}

function fromHeader (request: FastifyRequest, header: string): string | null {
  if (!fromTrustedProxy(request)) return null
  const value = request.headers[header]
  if (typeof value !== 'string' || value.length === 0 || value.length > 16_384) return null
  try {
    return thumbprintOf(new X509Certificate(decodeURIComponent(value)).raw)
  } catch {
    return null
  }
}

/** SHA-256 thumbprint of the client certificate of this request, or null when it has none we can trust. */
export function clientCertificateThumbprint (request: FastifyRequest, mtls: ResolvedMtlsOptions): string | null {
  return mtls.header === null ? fromSocket(request) : fromHeader(request, mtls.header)
}
