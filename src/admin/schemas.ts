// JSON schemas of the admin routes: Auth0 Management API v2 shapes, with descriptions
// so @fastify/swagger renders them. Length limits keep store keys and logs bounded.
import { MAX_REASON_LENGTH } from '../revocation/audit.js'

const id = { type: 'string', minLength: 1, maxLength: 256, pattern: '^[^\\u0000]*$' } as const
const scopeList = {
  type: 'array',
  maxItems: 200,
  uniqueItems: true,
  items: { type: 'string', minLength: 1, maxLength: 280, pattern: '^[\\x21\\x23-\\x5b\\x5d-\\x7e]+$' },
  description: 'Scopes the client may be issued for this audience',
} as const

const grant = {
  type: 'object',
  properties: {
    id: { type: 'string', description: 'ID of the client grant' },
    client_id: { type: 'string', description: 'ID of the client' },
    audience: { type: 'string', description: 'Audience (API identifier) of the grant' },
    scope: { type: 'array', items: { type: 'string' }, description: 'Scopes granted' },
  },
} as const

const errorBody = {
  type: 'object',
  properties: {
    statusCode: { type: 'integer' },
    error: { type: 'string' },
    message: { type: 'string' },
    errorCode: { type: 'string' },
  },
} as const

/** Why a change was made: recorded in the revocation log beside the admin token's `sub`. */
const reason = { type: 'string', minLength: 1, maxLength: MAX_REASON_LENGTH, pattern: '^[^\\u0000]*$', description: 'Why (at most 500 characters): recorded in the revocation log with the admin token\'s sub as the actor' } as const

const errors = { 400: errorBody, 401: errorBody, 403: errorBody, 404: errorBody, 409: errorBody, 503: errorBody } as const

export const postBlacklist = {
  tags: ['Blacklists'],
  summary: 'Blacklist a token',
  description: 'Refuses the token with this jti for this audience from the next request on.',
  body: {
    type: 'object',
    required: ['jti'],
    additionalProperties: false,
    properties: {
      aud: { ...id, description: 'Audience of the token (defaults to the API\'s first audience)' },
      jti: { ...id, description: 'jti of the token to blacklist' },
      reason,
    },
  },
  // Auth0 answers 204 No Content (as recorded against a live tenant), not 201.
  response: { 204: { type: 'null', description: 'Token blacklisted' }, ...errors },
} as const

export const getBlacklist = {
  tags: ['Blacklists'],
  summary: 'Get blacklisted tokens',
  querystring: {
    type: 'object',
    additionalProperties: false,
    properties: {
      aud: { ...id, description: 'Only tokens of this audience' },
      // SDKs send Auth0's usual paging parameters here too; Auth0 ignores them and answers the whole list.
      page: { type: 'integer', minimum: 0, maximum: 100000, description: 'Accepted and ignored, as Auth0 does' },
      per_page: { type: 'integer', minimum: 1, maximum: 100, description: 'Accepted and ignored, as Auth0 does' },
      include_totals: { type: 'boolean', description: 'Accepted and ignored, as Auth0 does' },
    },
  },
  response: {
    200: {
      type: 'array',
      items: { type: 'object', properties: { aud: { type: 'string' }, jti: { type: 'string' } } },
    },
    ...errors,
  },
} as const

export const getGrants = {
  tags: ['Client Grants'],
  summary: 'Get client grants',
  querystring: {
    type: 'object',
    additionalProperties: false,
    properties: {
      audience: { ...id, description: 'Only grants for this audience' },
      client_id: { ...id, description: 'Only grants of this client' },
      page: { type: 'integer', minimum: 0, maximum: 100000, description: 'Page index of the results to return. First page is 0.' },
      per_page: { type: 'integer', minimum: 1, maximum: 100, description: 'Number of results per page. Defaults to 50.' },
      include_totals: { type: 'boolean', description: 'Return results inside an object that contains the total result count (true) or as a direct array (false, default). Ignored with checkpoint pagination.' },
      from: { ...id, maxLength: 512, description: 'Checkpoint pagination: the `next` of the previous page.' },
      take: { type: 'integer', minimum: 1, maximum: 100, description: 'Checkpoint pagination: number of results per page (default 50). With `from` or `take`, the answer is `{ client_grants, next }`, `next` absent on the last page.' },
      allow_any_organization: { type: 'boolean', description: 'Only grants that allow any organization (none here: grants are not organization-bound).' },
      subject_type: { type: 'string', enum: ['client', 'user'], description: 'Only grants for this kind of access (here every grant is `client`: machine-to-machine).' },
      default_for: { type: 'string', enum: ['third_party_clients'], description: 'Only default grants (none here).' },
    },
  },
  response: {
    200: {
      anyOf: [
        { type: 'array', items: grant },
        {
          type: 'object',
          // One object schema for both paged shapes: offset (start, limit, total) and checkpoint (next).
          properties: { start: { type: 'integer' }, limit: { type: 'integer' }, total: { type: 'integer' }, client_grants: { type: 'array', items: grant }, next: { type: 'string' } },
        },
      ],
    },
    ...errors,
  },
} as const

export const postGrant = {
  tags: ['Client Grants'],
  summary: 'Create client grant',
  body: {
    type: 'object',
    required: ['client_id', 'audience', 'scope'],
    additionalProperties: false,
    properties: {
      client_id: { ...id, description: 'ID of the client' },
      audience: { ...id, description: 'Audience (API identifier) of the grant' },
      scope: scopeList,
      reason,
    },
  },
  response: { 201: grant, ...errors },
} as const

const grantParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { ...id, description: 'ID of the client grant' } },
} as const

export const getGrant = {
  tags: ['Client Grants'],
  summary: 'Get client grant',
  params: grantParams,
  response: { 200: grant, ...errors },
} as const

export const patchGrant = {
  tags: ['Client Grants'],
  summary: 'Update client grant',
  description: 'Replaces the scopes; tokens of the client lose removed scopes on their next request.',
  params: grantParams,
  body: {
    type: 'object',
    required: ['scope'],
    additionalProperties: false,
    properties: { scope: scopeList, reason },
  },
  response: { 200: grant, ...errors },
} as const

export const deleteGrant = {
  tags: ['Client Grants'],
  summary: 'Delete client grant',
  description: 'Deletes the grant and refuses the client\'s tokens for that audience issued up to now.',
  params: grantParams,
  // Auth0's DELETE has no body (and some clients and proxies drop one): the reason travels in the query string.
  querystring: {
    type: 'object',
    additionalProperties: false,
    properties: { reason },
  },
  response: { 204: { type: 'null', description: 'Client grant deleted' }, ...errors },
} as const

// ---- beyond Auth0: what the command line and the console need --------------------------

/** Largest batch the batch route takes; the command line sends its imports in batches this size. */
export const MAX_BATCH = 1000

export const postBlacklistBatch = {
  tags: ['Blacklists'],
  summary: 'Blacklist many tokens (not in Auth0)',
  description: 'Blacklists every listed token with one store write. One bad entry refuses the whole batch (400).',
  body: {
    type: 'object',
    required: ['tokens'],
    additionalProperties: false,
    properties: {
      tokens: {
        type: 'array',
        minItems: 1,
        maxItems: MAX_BATCH,
        items: {
          type: 'object',
          required: ['jti'],
          additionalProperties: false,
          properties: {
            aud: { ...id, description: 'Audience of the token (defaults to the API\'s first audience)' },
            jti: { ...id, description: 'jti of the token to blacklist' },
            exp: { type: 'integer', minimum: 0, description: 'The token\'s exp (seconds): the entry is dropped after it' },
          },
        },
      },
      reason: { ...reason, description: 'Why (at most 500 characters): recorded once for the whole batch' },
    },
  },
  response: { 200: { type: 'object', properties: { revoked: { type: 'integer' } } }, ...errors },
} as const

export const postClientRevocation = {
  tags: ['Revocations'],
  summary: 'Revoke a client (not in Auth0)',
  description: 'Refuses every token of the client (for `audience`, or every audience; from `issuer`, or every issuer) issued up to now. Needs delete:client_grants.',
  body: {
    type: 'object',
    required: ['client_id'],
    additionalProperties: false,
    properties: {
      client_id: { ...id, description: 'ID of the client' },
      audience: { ...id, description: 'Only its tokens for this audience' },
      issuer: { ...id, description: 'Only its tokens from this issuer (one the API accepts): a client id is only unique within its issuer' },
      reason,
    },
  },
  response: { 204: { type: 'null', description: 'Client revoked' }, ...errors },
} as const

export const postSubjectRevocation = {
  tags: ['Revocations'],
  summary: 'Revoke a subject (not in Auth0)',
  description: '"Log out everywhere": refuses every token of the subject (from `issuer`, or every issuer) issued up to now. Needs blacklist:tokens.',
  body: {
    type: 'object',
    required: ['subject'],
    additionalProperties: false,
    properties: {
      subject: { ...id, description: 'The tokens\' sub' },
      issuer: { ...id, description: 'Only its tokens from this issuer (one the API accepts): a subject is only unique within its issuer' },
      reason,
    },
  },
  response: { 204: { type: 'null', description: 'Subject revoked' }, ...errors },
} as const

const instant = { type: 'string', minLength: 1, maxLength: 40, description: 'A time: milliseconds since the epoch, or an ISO 8601 date-time such as 2025-06-01T12:00:00Z' } as const

const nullableString = { type: ['string', 'null'] } as const

/** One revocation log entry as `app.revocation.history` gives it: the change's own fields, then who, why and where from. */
const logEntry = {
  type: 'object',
  properties: {
    id: { type: 'string', description: 'Orders the log; pass the page\'s `next` as `from`, not an id' },
    at: { type: 'integer', description: 'When the store recorded it, ms since the epoch' },
    type: { type: 'string', enum: ['token', 'tokens', 'client', 'subject', 'session', 'grant'] },
    aud: { type: 'string' },
    jti: { type: 'string' },
    expiresAt: { type: ['integer', 'null'] },
    tokens: { type: 'array', items: { type: 'object', properties: { aud: { type: 'string' }, jti: { type: 'string' } } } },
    clientId: { type: 'string' },
    audience: { type: 'string' },
    issuer: { type: 'string' },
    revokedAt: { type: 'integer' },
    subject: { type: 'string' },
    sessionId: { type: 'string' },
    action: { type: 'string', enum: ['create', 'update', 'delete'] },
    grantId: { type: 'string', description: 'The grant a grant entry is about' },
    scope: { type: 'array', items: { type: 'string' } },
    actor: { ...nullableString, description: 'Who: the admin token\'s sub, the command line\'s --actor or user@host, auth0-sync, ssf:<iss>, …' },
    reason: { ...nullableString, description: 'Why, as given with the change' },
    source: { type: 'string', enum: ['api', 'admin', 'cli', 'auth0', 'ssf', 'logout', 'introspection', 'status-list'] },
  },
} as const

export const getRevocationLog = {
  tags: ['Logs'],
  summary: 'Get the revocation log (not in Auth0)',
  description: 'Who revoked what, when and why: the store\'s log, newest first, filtered, paged like Auth0\'s logs (`from`, `take`). Needs read:logs.',
  querystring: {
    type: 'object',
    additionalProperties: false,
    properties: {
      from: { ...id, maxLength: 512, description: 'The `next` of the previous page' },
      take: { type: 'integer', minimum: 1, maximum: 100, default: 50, description: 'Entries per page (default 50)' },
      since: { ...instant, description: 'Only entries recorded at or after this time (ms since the epoch, or ISO 8601)' },
      until: { ...instant, description: 'Only entries recorded before this time (ms since the epoch, or ISO 8601)' },
      aud: { ...id, description: 'Only entries for this audience: blacklisted tokens, client revocations and grants' },
      client_id: { ...id, description: 'Only entries of this client' },
      subject: { ...id, description: 'Only entries revoking this subject' },
      jti: { ...id, description: 'Only entries blacklisting this jti' },
    },
  },
  response: {
    200: {
      type: 'object',
      properties: {
        entries: { type: 'array', items: logEntry },
        next: { type: 'string', description: 'Pass as `from` for the next (older) page; absent on the last page' },
      },
    },
    ...errors,
    501: errorBody,
  },
} as const
