// A partner that holds its tokens with DPoP (RFC 9449), written with oauth4webapi, a
// standard OAuth client library: it makes its own key pair and proofs, asks the issuer for
// a DPoP-bound token, and signs a fresh proof for every call to the API.
import * as oauth from 'oauth4webapi'

export interface ApiAnswer {
  status: number
  /** The error the API named in its `WWW-Authenticate` challenge, if any. */
  error: string | undefined
  description: string | undefined
  /** The headers this call was sent with (its `DPoP` proof included), to show what a thief could copy. */
  sent: Headers
}

/** What an oauth4webapi call answered, whether or not it threw for a challenge. */
async function answerOf (call: () => Promise<Response>, sent: () => Headers): Promise<ApiAnswer> {
  try {
    const response = await call()
    await response.arrayBuffer()
    return { status: response.status, error: undefined, description: undefined, sent: sent() }
  } catch (err) {
    if (!(err instanceof oauth.WWWAuthenticateChallengeError)) throw err
    const challenge = err.cause.find((c) => c.parameters.error !== undefined)
    return { status: err.status, error: challenge?.parameters.error, description: challenge?.parameters.error_description, sent: sent() }
  }
}

export class DpopPartner {
  private readonly as: oauth.AuthorizationServer
  private readonly client: oauth.Client
  private dpop!: oauth.DPoPHandle
  private lastSent = new Headers()
  /** The access token from the last `obtainToken()`. */
  accessToken = ''
  tokenType = ''

  /** `baseUrl`: where the issuer and the API are (the example serves both). */
  constructor (private readonly baseUrl: string, clientId: string, private readonly secret: string) {
    this.as = { issuer: `${baseUrl}/`, token_endpoint: `${baseUrl}/oauth/token` }
    this.client = { client_id: clientId }
  }

  /** A new key pair; the tokens obtained from now on are bound to it. */
  async newKey (): Promise<this> {
    this.dpop = oauth.DPoP(this.client, await oauth.generateKeyPair('ES256'))
    return this
  }

  /** Asks the issuer for a token bound to this key; resolves with the token endpoint's HTTP status. */
  async obtainToken (audience: string): Promise<number> {
    const response = await oauth.clientCredentialsGrantRequest(this.as, this.client, oauth.ClientSecretPost(this.secret), { audience }, {
      DPoP: this.dpop,
      // The example runs on plain http on this machine; a real issuer is https.
      [oauth.allowInsecureRequests]: true,
    })
    const status = response.status
    const tokens = await oauth.processClientCredentialsResponse(this.as, this.client, response)
    this.accessToken = tokens.access_token
    this.tokenType = tokens.token_type
    return status
  }

  /**
   * Calls the API at its public URL with `token` (default: its own) and a fresh proof signed
   * with its own key. `deliverTo` sends the request to another origin, as a load balancer
   * in front of several instances would.
   */
  call (path: string, token = this.accessToken, deliverTo?: string): Promise<ApiAnswer> {
    return answerOf(() => oauth.protectedResourceRequest(token, 'GET', new URL(path, this.baseUrl), undefined, undefined, {
      DPoP: this.dpop,
      [oauth.allowInsecureRequests]: true,
      [oauth.customFetch]: (url, init) => {
        this.lastSent = new Headers(init.headers)
        return fetch(deliverTo === undefined ? url : new URL(new URL(url).pathname, deliverTo), init as RequestInit)
      },
    }), () => this.lastSent)
  }
}

/** Sends exactly the headers of an earlier call again (a replayed proof), or the token as Bearer. */
export async function resend (url: string, headers: Headers): Promise<{ status: number, challenge: string }> {
  const response = await fetch(url, { headers })
  await response.arrayBuffer()
  return { status: response.status, challenge: response.headers.get('www-authenticate') ?? '' }
}
