import { isIP } from 'node:net'
import { OutboundRequestError } from '../errors.js'

// The one way the package calls out over HTTP (Auth0 today; status lists and
// introspection later): only to origins it was told about, never following a
// redirect elsewhere, never waiting forever, never reading an unbounded body.

export interface OutboundRequest {
  method?: 'GET' | 'POST' | 'PATCH' | 'DELETE'
  headers?: Record<string, string>
  /** Sent as JSON. */
  json?: unknown
  /** Sent as `application/x-www-form-urlencoded` (OAuth endpoints); not with `json`. */
  form?: Record<string, string>
  /** ms before the call is abandoned, connection and body included. */
  timeout: number
  /** Largest response body read, bytes. */
  maxBytes: number
  /** Origins (`https://host[:port]`) this call may reach; anything else is refused before any I/O. */
  allowedOrigins: readonly string[]
  /** Aborts the call early (e.g. the app is closing). */
  signal?: AbortSignal
}

export interface OutboundResponse {
  status: number
  headers: Headers
  /** Parsed JSON; undefined for an empty body. */
  body: unknown
}

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '[::1]'])

/** True for hosts that never leave the machine: `http:` is allowed only to these. */
export function isLoopbackHost (hostname: string): boolean {
  if (LOOPBACK_NAMES.has(hostname)) return true
  return isIP(hostname) === 4 && hostname.startsWith('127.')
}

/**
 * The origin of `url` if it may be called at all: `https:`, or `http:` on a loopback
 * host (tests, local stand-ins); no credentials in the URL. Throws otherwise.
 */
export function outboundOrigin (url: string | URL, what: string): string {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new OutboundRequestError(`${what}: not a URL`)
  }
  if (parsed.username !== '' || parsed.password !== '') throw new OutboundRequestError(`${what}: credentials in the URL are refused`)
  if (parsed.protocol === 'https:') return parsed.origin
  if (parsed.protocol === 'http:' && isLoopbackHost(parsed.hostname)) return parsed.origin
  throw new OutboundRequestError(`${what}: must be https (http only on a loopback host)`)
}

/** An answer read whole, within the bounds of the request. */
export interface OutboundText {
  status: number
  headers: Headers
  text: string
}

const describe = (url: URL, request: OutboundRequest) => `${request.method ?? 'GET'} ${url.origin}${url.pathname}`

/** Calls `url` and reads its answer as text, within the bounds of `request`. Never throws anything but OutboundRequestError. */
export async function fetchText (url: string | URL, request: OutboundRequest): Promise<OutboundText> {
  const target = new URL(url)
  const where = describe(target, request)
  const origin = outboundOrigin(target, where)
  if (!request.allowedOrigins.includes(origin)) throw new OutboundRequestError(`${where}: origin not allowed`)
  const aborted = () => request.signal?.aborted === true
  if (aborted()) throw new OutboundRequestError(`${where}: aborted`)

  const controller = new AbortController()
  let timedOut = false
  const timer = setTimeout(() => { timedOut = true; controller.abort() }, request.timeout)
  timer.unref?.()
  const onAbort = () => controller.abort()
  request.signal?.addEventListener('abort', onAbort, { once: true })
  try {
    const response = await fetch(target, {
      method: request.method ?? 'GET',
      headers: { accept: 'application/json', ...(request.json === undefined ? {} : { 'content-type': 'application/json' }), ...request.headers },
      ...(request.json === undefined ? {} : { body: JSON.stringify(request.json) }),
      // A URLSearchParams body sets its own content type.
      ...(request.form === undefined ? {} : { body: new URLSearchParams(request.form) }),
      // A redirect could lead off the allowed origins: treat it as an answer, not a hop.
      redirect: 'manual',
      signal: controller.signal,
    })
    return { status: response.status, headers: response.headers, text: await readBounded(response, request.maxBytes, where) }
  } catch (err) {
    if ((err as { code?: string }).code === 'FST_JWT_REVOCATION_OUTBOUND') throw err
    if (timedOut) throw new OutboundRequestError(`${where}: no answer within ${request.timeout} ms`)
    if (aborted()) throw new OutboundRequestError(`${where}: aborted`)
    throw new OutboundRequestError(`${where}: ${(err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name ?? 'network error'}`)
  } finally {
    clearTimeout(timer)
    request.signal?.removeEventListener('abort', onAbort)
  }
}

/** Calls `url` and parses its JSON answer, within the bounds of `request`. Never throws anything but OutboundRequestError. */
export async function fetchJson (url: string, request: OutboundRequest): Promise<OutboundResponse> {
  const { status, headers, text } = await fetchText(url, request)
  let body: unknown
  if (text.length > 0) {
    try {
      body = JSON.parse(text)
    } catch {
      // Non-JSON answers (an HTML error page from a proxy) are left to the caller's status check.
      if (status >= 200 && status < 300) throw new OutboundRequestError(`${describe(new URL(url), request)}: answered ${status} with a body that is not JSON`)
    }
  }
  return { status, headers, body }
}

async function readBounded (response: Response, maxBytes: number, where: string): Promise<string> {
  const declared = Number(response.headers.get('content-length'))
  if (Number.isFinite(declared) && declared > maxBytes) {
    await response.body?.cancel().catch(() => {})
    throw new OutboundRequestError(`${where}: answer larger than ${maxBytes} bytes`)
  }
  if (response.body === null) return ''
  const chunks: Uint8Array[] = []
  let size = 0
  const reader = response.body.getReader()
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > maxBytes) {
      await reader.cancel().catch(() => {})
      throw new OutboundRequestError(`${where}: answer larger than ${maxBytes} bytes`)
    }
    chunks.push(value)
  }
  return Buffer.concat(chunks).toString('utf8')
}
