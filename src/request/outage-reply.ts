import type { FastifyError, FastifyReply } from 'fastify'

/**
 * Answers a request refused because a dependency is down (503), without Fastify's
 * default error handler, which logs every 5xx at error level: an outage is logged once
 * by its breaker (and once when it ends), not once per request it refuses. The body is
 * the one that handler would send. Returns false, leaving the error to the app's error
 * handler, when the route's context has a handler of its own (e.g. the admin routes'
 * Auth0-shaped answers): that handler decides what to log.
 */
export function sendOutageAnswer (reply: FastifyReply, err: Pick<FastifyError, 'code' | 'message'>): boolean {
  // A handler the app set is bound to its instance by Fastify; only Fastify's own is this one.
  if (reply.request.server.errorHandler.name !== 'defaultErrorHandler') return false
  reply.code(503).send({ statusCode: 503, code: err.code, error: 'Service Unavailable', message: err.message })
  return true
}
