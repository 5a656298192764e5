/**
 * A Back-Channel Logout request this receiver will not act on (OpenID Connect
 * Back-Channel Logout 1.0 §2.8): answered 400 `{ error: 'invalid_request',
 * error_description }`. The description is one of this module's fixed sentences,
 * never text taken from the request or the Logout Token.
 */
export class LogoutRefusal extends Error {
  readonly error = 'invalid_request'
  readonly statusCode = 400
}
