/**
 * RFC 8935 §2.4 error codes (IANA "Security Event Token Error Codes"). A refusal is
 * answered 400 with `{ err, description }`; the description is one of this module's
 * fixed sentences, never text taken from the SET.
 */
export type SetErrorCode =
  | 'invalid_request'
  | 'invalid_key'
  | 'invalid_issuer'
  | 'invalid_audience'
  | 'authentication_failed'
  | 'access_denied'

export class SetRefusal extends Error {
  readonly err: SetErrorCode
  readonly statusCode: number

  constructor (err: SetErrorCode, description: string, statusCode = 400) {
    super(description)
    this.err = err
    this.statusCode = statusCode
  }
}
