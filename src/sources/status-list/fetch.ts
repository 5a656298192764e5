import { OutboundRequestError } from '../../errors.js'
import { fetchText } from '../../lib/fetch.js'

const MEDIA_TYPE = 'application/statuslist+jwt'

/**
 * GETs a Status List Token through the package's one outbound helper: allowed origins
 * only, no redirects (a redirect could leave them), bounded in time and in size. Errors
 * carry no response content.
 */
export async function fetchStatusListToken (url: URL, bounds: { timeout: number, maxBytes: number, allowedOrigins: readonly string[] }): Promise<string> {
  const { status, headers, text } = await fetchText(url, { ...bounds, headers: { accept: MEDIA_TYPE } })
  if (status !== 200) throw new OutboundRequestError(`status list answered HTTP ${status}`)
  const type = headers.get('content-type')?.split(';')[0]!.trim().toLowerCase()
  if (type !== MEDIA_TYPE) throw new OutboundRequestError(`status list is not ${MEDIA_TYPE}`)
  return text.trim()
}
