// `history`: the revocation log read through a target, newest first, as a table or JSON.
import type { HistoryFilter, LogEntry } from '../stores/types.js'
import type { Target } from './target.js'

/** Largest `--limit`: what one store `history` call answers. */
export const MAX_HISTORY = 500

/** Up to `limit` entries newest first, following `next` across the target's pages. */
export async function readHistory (target: Target, filter: Omit<HistoryFilter, 'from' | 'limit'>, limit: number): Promise<LogEntry[]> {
  const out: LogEntry[] = []
  let from: string | undefined
  while (out.length < limit) {
    const page = await target.history({ ...filter, limit: limit - out.length, ...(from === undefined ? {} : { from }) })
    out.push(...page.entries)
    if (page.next === null || page.entries.length === 0) break
    from = page.next
  }
  return out.slice(0, limit)
}

const audienceOf = (audience: string) => audience === '*' ? 'every audience' : audience
const issuerOf = (issuer: string | undefined) => issuer === undefined ? '' : ` (issuer ${issuer})`

/** What the change did, in a few words. */
export function describeChange (e: LogEntry): string {
  switch (e.type) {
    case 'token': return `token ${e.jti} for ${e.aud}`
    case 'tokens': return `${e.tokens.length} tokens${e.tokens[0] === undefined ? '' : ` (${e.tokens[0].jti} for ${e.tokens[0].aud}${e.tokens.length > 1 ? ', …' : ''})`}`
    case 'client': return `client ${e.clientId} for ${audienceOf(e.audience)}${issuerOf(e.issuer)}`
    case 'subject': return `subject ${e.subject}${issuerOf(e.issuer)}`
    case 'session': return `session ${e.sessionId}${issuerOf(e.issuer)}`
    case 'grant': return `grant ${e.action} ${e.clientId} for ${e.audience}${e.scope === undefined ? '' : ` [${e.scope.join(' ')}]`}`
  }
}

// Reasons and actors are free text from whoever wrote them: on a terminal, control
// characters (escape sequences) must not reach it, and a newline must not forge a row.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g
const printable = (text: string) => text.replace(CONTROL, ' ')

/** The rows of the text table; the reason last, as it is the longest. */
export function historyRows (entries: LogEntry[]): string[][] {
  return entries.map((e) => [new Date(e.at).toISOString(), e.type, describeChange(e), e.actor ?? '-', e.source, e.reason ?? '-'].map(printable))
}

export const HISTORY_HEADER = ['TIME', 'TYPE', 'WHAT', 'ACTOR', 'SOURCE', 'REASON']
