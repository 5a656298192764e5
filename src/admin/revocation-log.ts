// GET /revocation-log: the audit trail (who revoked what, when and why), newest first,
// paged like Auth0's logs. Beyond Auth0's API; Auth0's scope name for its own logs.
import type { FastifyInstance, FastifyReply } from 'fastify'
import type { HistoryFilter } from '../stores/types.js'
import * as schemas from './schemas.js'

export const LOG_SCOPE = 'read:logs'

interface LogQuery {
  from?: string
  take: number
  since?: string
  until?: string
  aud?: string
  client_id?: string
  subject?: string
  jti?: string
}

/** ms since the epoch, or an ISO 8601 date-time; undefined when it is neither. */
export function parseInstant (value: string): number | undefined {
  if (/^\d{1,15}$/.test(value)) return Number(value)
  // A date first: Date.parse also takes forms like "1 June" that differ between engines.
  if (!/^\d{4}-\d{2}-\d{2}/.test(value)) return undefined
  const ms = Date.parse(value)
  return Number.isFinite(ms) ? ms : undefined
}

function badQuery (reply: FastifyReply, message: string): FastifyReply {
  return reply.code(400).send({ statusCode: 400, error: 'Bad Request', message, errorCode: 'invalid_query_string' })
}

export function revocationLogRoute (app: FastifyInstance, audience: string): void {
  const revocation = app.revocation
  app.get<{ Querystring: LogQuery }>('/revocation-log', {
    schema: schemas.getRevocationLog,
    config: { auth: { scopes: [LOG_SCOPE], audience } },
  }, async (request, reply) => {
    if (typeof revocation.store.history !== 'function') {
      // Not a passing outage (503): this store has no log to read, now or later.
      return reply.code(501).send({ statusCode: 501, error: 'Not Implemented', message: 'This revocation store keeps no revocation log', errorCode: 'not_implemented' })
    }
    const q = request.query
    const filter: HistoryFilter = { limit: q.take }
    for (const name of ['since', 'until'] as const) {
      const text = q[name]
      if (text === undefined) continue
      const ms = parseInstant(text)
      if (ms === undefined) return badQuery(reply, `${name} must be milliseconds since the epoch or an ISO 8601 date-time`)
      filter[name] = ms
    }
    if (q.from !== undefined) filter.from = q.from
    if (q.aud !== undefined) filter.aud = q.aud
    if (q.client_id !== undefined) filter.clientId = q.client_id
    if (q.subject !== undefined) filter.subject = q.subject
    if (q.jti !== undefined) filter.jti = q.jti
    const page = await revocation.history(filter)
    return { entries: page.entries, ...(page.next === null ? {} : { next: page.next }) }
  })
}
