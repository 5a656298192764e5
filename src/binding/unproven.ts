import type { JWTPayload } from 'jose'
import { InvalidTokenError } from '../errors.js'

// A sender-constrained token (RFC 9449 §6: `cnf.jkt`; RFC 8705 §3: `cnf["x5t#S256"]`) is
// only as good as the proof that its sender holds the key. Until this package checks that
// proof, accepting such a token as a plain Bearer token would let whoever stole it use it:
// exactly the replay the binding exists to stop. So it is refused (RFC 9449 §7.2 asks a
// resource server not to accept a DPoP-bound token without its proof).
const BINDINGS = ['jkt', 'x5t#S256'] as const

/** Throws for a token bound to a key that this request has not proven (every bound token, for now). */
export function refuseUnprovenBinding (payload: JWTPayload): void {
  const cnf = payload.cnf
  if (cnf === undefined) return
  if (typeof cnf !== 'object' || cnf === null || Array.isArray(cnf)) throw new InvalidTokenError('The token has an invalid claim')
  for (const member of BINDINGS) {
    if ((cnf as Record<string, unknown>)[member] !== undefined) {
      throw new InvalidTokenError('The token is bound to a key and this request does not prove it')
    }
  }
}
