// `import`: a list of token ids (from logs, an issuer's export) blacklisted in batches,
// read as a stream so a file of millions of lines never sits in memory. Each line is
// judged alone: a bad one is reported with its number and the rest go on.
import { createInterface } from 'node:readline'
import type { Readable } from 'node:stream'
import type { ChangeAuthor, RevokedToken } from '../stores/types.js'
import { EntriesRefusedError } from './failures.js'
import type { Target } from './target.js'

export interface ImportOptions {
  /** Audience of lines that name none. */
  aud: string | undefined
  /** Expiry (ms) of lines that give no `exp`; null: kept until removed. */
  expiresAt: number | null
  /** Who imports and why: recorded with each batch in the store's log. */
  author: ChangeAuthor
  /** Called now and then with the counts so far (a progress line on a terminal). */
  progress?: (report: ImportReport) => void
}

export interface ImportReport {
  /** Lines read, blank and comment lines included. */
  lines: number
  revoked: number
  /** Of `revoked`, entries with no expiry (no `exp` in the line, no `--exp`/`--expires-in`): kept until removed. */
  keptUntilRemoved: number
  refused: Array<{ line: number, reason: string }>
}

/** Longest jti or audience taken, as the admin routes. */
const MAX_ID = 256
// Whitespace or control characters: a header, a log line pasted whole, not a token id.
const NOT_AN_ID = /[\s\u0000-\u001f\u007f]/

function checkId (value: unknown, name: string): string {
  if (typeof value !== 'string' || value.length === 0) throw new Error(`no ${name}`)
  if (value.length > MAX_ID) throw new Error(`${name} longer than ${MAX_ID} characters`)
  if (NOT_AN_ID.test(value)) throw new Error(`${name} contains whitespace or control characters`)
  return value
}

/** One line as an entry; throws the reason it is refused. */
function parseLine (text: string, options: ImportOptions, now: number): RevokedToken {
  let jti: unknown = text
  let aud: unknown = options.aud
  let expiresAt = options.expiresAt
  if (text.startsWith('{')) {
    let record: unknown
    try {
      record = JSON.parse(text)
    } catch {
      throw new Error('not valid JSON')
    }
    if (typeof record !== 'object' || record === null || Array.isArray(record)) throw new Error('not a JSON object')
    const r = record as { aud?: unknown, jti?: unknown, exp?: unknown }
    jti = r.jti
    if (r.aud !== undefined) aud = r.aud
    if (r.exp !== undefined) {
      if (typeof r.exp !== 'number' || !Number.isFinite(r.exp) || r.exp <= 0) throw new Error('exp is not a time in seconds since the epoch')
      expiresAt = r.exp * 1000
    }
  }
  const entry = { jti: checkId(jti, 'jti'), aud: checkId(aud, 'aud (give --aud or "aud" in the line)'), expiresAt }
  if (expiresAt !== null && expiresAt <= now) throw new Error('exp has passed: the token can no longer be used')
  return entry
}

/**
 * Reads `input` line by line and blacklists what it names, `target.batchSize` entries per
 * write; the next batch is read while one is being written. A failing write stops the
 * import: the error says from which line to run it again (revoking twice is harmless).
 */
export async function importTokens (input: Readable, target: Target, options: ImportOptions): Promise<ImportReport> {
  const report: ImportReport = { lines: 0, revoked: 0, keptUntilRemoved: 0, refused: [] }
  let batch: Array<{ line: number, entry: RevokedToken }> = []
  let writing: Promise<void> = Promise.resolve()
  let lastProgress = 0

  const write = async (items: Array<{ line: number, entry: RevokedToken }>) => {
    try {
      await target.revokeTokens(items.map((i) => i.entry), options.author)
      report.revoked += items.length
      for (const item of items) if (item.entry.expiresAt === null) report.keptUntilRemoved++
    } catch (err) {
      if (!(err instanceof EntriesRefusedError)) {
        throw new ImportStopped(`${(err as Error).message}; ${report.revoked} tokens were revoked before line ${items[0]!.line}: run the import again from that line`, report)
      }
      // The server refused an entry of the batch (an audience it does not accept): find which, one by one.
      if (items.length === 1) report.refused.push({ line: items[0]!.line, reason: err.message })
      else for (const item of items) await write([item])
    }
  }

  const flush = async () => {
    if (batch.length === 0) return
    const items = batch
    batch = []
    await writing
    writing = write(items)
    // Surfaced at the next flush or at the end; never left unhandled meanwhile.
    writing.catch(() => {})
  }

  const lines = createInterface({ input, crlfDelay: Infinity })
  for await (const raw of lines) {
    const line = ++report.lines
    const text = raw.trim()
    if (text === '' || text.startsWith('#')) continue
    try {
      batch.push({ line, entry: parseLine(text, options, Date.now()) })
    } catch (err) {
      report.refused.push({ line, reason: (err as Error).message })
    }
    if (batch.length >= target.batchSize) await flush()
    if (options.progress !== undefined && Date.now() - lastProgress > 200) {
      lastProgress = Date.now()
      options.progress(report)
    }
  }
  await flush()
  await writing
  report.refused.sort((a, b) => a.line - b.line)
  options.progress?.(report)
  return report
}

/** An import cut short by a failing write; carries what was done before it. */
export class ImportStopped extends Error {
  constructor (message: string, readonly report: ImportReport) {
    super(message)
  }
}
