import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { bearerErrorOf } from '../errors.js'

const reasons: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  429: 'Too Many Requests',
  503: 'Service Unavailable',
}

const errorCodes: Record<string, string> = {
  FST_JWT_REVOCATION_TOKEN_MISSING: 'missing_token',
  FST_JWT_REVOCATION_GRANT_CONFLICT: 'conflict',
  FST_JWT_REVOCATION_GRANT_NOT_FOUND: 'inexistent_client_grant',
  FST_JWT_REVOCATION_INVALID_ARGUMENT: 'invalid_body',
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'invalid_body',
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalid_body',
}

/**
 * Auth0's Management API error body `{ statusCode, error, message, errorCode }`. 5xx
 * never carry internals; a store outage is a 503 with `Retry-After`, never a 500.
 */
export function auth0ErrorHandler (retryAfter: number): (err: FastifyError, request: FastifyRequest, reply: FastifyReply) => void {
  return function handleAdminError (err, request, reply) {
    let status = err.statusCode ?? 500
    if (status < 400 || status > 599) status = 500
    let errorCode: string
    let message = err.message
    if (err.validation) {
      errorCode = err.validationContext === 'querystring' ? 'invalid_query_string' : err.validationContext === 'params' ? 'invalid_uri' : 'invalid_body'
      status = 400
    } else if (status === 503) {
      errorCode = 'service_unavailable'
      if (err.code !== 'FST_JWT_REVOCATION_UNAVAILABLE') {
        request.log.warn({ err }, 'admin route: revocation store unavailable')
        message = 'The revocation store is unavailable; retry later'
      }
      reply.header('retry-after', String(retryAfter))
    } else if (status >= 500) {
      request.log.error({ err }, 'admin route failed')
      errorCode = 'internal_error'
      message = 'Internal Server Error'
    } else {
      errorCode = errorCodes[err.code] ?? bearerErrorOf(err.code) ?? 'bad_request'
    }
    reply.code(status).send({ statusCode: status, error: reasons[status] ?? 'Internal Server Error', message, errorCode })
  }
}
