const MEDIA_TYPE = 'application/statuslist+jwt'

/**
 * GETs a Status List Token: one allowed URL, no redirects (a redirect could leave the
 * allowed origins), bounded in time and in size (the body is read up to `maxBytes`,
 * after any content decoding). Errors carry no response content.
 */
export async function fetchStatusListToken (url: URL, timeout: number, maxBytes: number): Promise<string> {
  const response = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(timeout), headers: { accept: MEDIA_TYPE } })
  try {
    if (response.status !== 200) throw new Error(`status list answered HTTP ${response.status}`)
    const type = response.headers.get('content-type')?.split(';')[0]!.trim().toLowerCase()
    if (type !== MEDIA_TYPE) throw new Error(`status list is not ${MEDIA_TYPE}`)
    if (Number(response.headers.get('content-length') ?? 0) > maxBytes) throw new Error('status list is too large')
    const chunks: Uint8Array[] = []
    let size = 0
    for await (const chunk of response.body ?? []) {
      size += chunk.length
      if (size > maxBytes) throw new Error('status list is too large')
      chunks.push(chunk)
    }
    return Buffer.concat(chunks).toString('utf8').trim()
  } finally {
    // Release the connection whatever was read.
    if (response.body && !response.bodyUsed) await response.body.cancel().catch(() => {})
  }
}
