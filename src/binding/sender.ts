import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify'
import type { JWTPayload } from '../lib/jose-types.js'
import { InvalidDpopProofError, InvalidTokenError, UseDpopNonceError } from '../errors.js'
import { extractDpopToken, headerCount, usesDpopScheme } from '../request/extract.js'
import { NonceWindows } from './dpop/nonce.js'
import type { ResolvedDpopOptions, ResolvedMtlsOptions } from './dpop/options.js'
import { accessTokenHashOf, ProofVerifier, type DpopProof } from './dpop/proof.js'
import { tokenDigest } from '../request/token-cache.js'
import { ReplayCache } from './dpop/replay.js'
import { requestUri } from './dpop/url.js'
import type { StoreGuard } from '../revocation/store-guard.js'
import type { RevocationStore } from '../stores/types.js'
import { clientCertificateThumbprint } from './mtls.js'

/** The key a token is bound to (RFC 7800 `cnf`): a DPoP key's thumbprint, a certificate's, or both. */
export interface Binding {
  /** RFC 9449 §6.1 `cnf.jkt`. */
  jkt: string | undefined
  /** RFC 8705 §3.1 `cnf["x5t#S256"]`. */
  x5t: string | undefined
}

/** What `request.auth.binding` says was proven on this request. */
export type ProvenBinding = 'dpop' | 'mtls' | null

const NOT_PROVEN = 'The token is bound to a key and this request does not prove it'

/**
 * The token's binding, or null for a plain bearer token; a `cnf` of the wrong shape is
 * refused. Other confirmation methods (`jwk`, `kid`…) bind to nothing this package can
 * check, and are left to the application.
 */
export function bindingOf (payload: JWTPayload): Binding | null {
  const cnf = payload.cnf
  if (cnf === undefined) return null
  if (typeof cnf !== 'object' || cnf === null || Array.isArray(cnf)) throw new InvalidTokenError('The token has an invalid claim')
  const { jkt, 'x5t#S256': x5t } = cnf as Record<string, unknown>
  if (jkt === undefined && x5t === undefined) return null
  if ((jkt !== undefined && typeof jkt !== 'string') || (x5t !== undefined && typeof x5t !== 'string')) throw new InvalidTokenError('The token has an invalid claim')
  return { jkt, x5t }
}

export interface SenderBindingOptions {
  dpop: ResolvedDpopOptions | null
  mtls: ResolvedMtlsOptions | null
  publicUrl: string | null
  clockTolerance: number
  maxTokenSize: number
  store: RevocationStore
  onStoreError: 'deny' | 'allow'
}

/**
 * Proof of possession on the request path, between verification and revocation:
 * DPoP proofs (RFC 9449) and client certificates (RFC 8705). A token bound to a key is
 * accepted only when this request proves that key, whatever the options say.
 */
export class SenderBinding {
  /** The `algs` of the DPoP challenge; null when DPoP is off (no DPoP challenge). */
  readonly dpopAlgs: string | null
  private readonly proofs: ProofVerifier | null
  private readonly replay: ReplayCache | null
  private readonly nonces: NonceWindows | null
  /** Seconds a proof stays acceptable after its `iat`. */
  private readonly iatWindow: number

  constructor (private readonly options: SenderBindingOptions, guard: StoreGuard, log: FastifyBaseLogger) {
    const { dpop } = options
    this.iatWindow = (dpop?.proofMaxAge ?? 0) + options.clockTolerance
    this.dpopAlgs = dpop === null ? null : dpop.algorithms.join(' ')
    this.proofs = dpop === null ? null : new ProofVerifier({ algorithms: dpop.algorithms, iatWindow: this.iatWindow })
    this.replay = dpop === null ? null : new ReplayCache(options.store, guard, options.onStoreError, log)
    this.nonces = dpop?.nonceSecret == null ? null : new NonceWindows(dpop.nonceSecret, dpop.proofMaxAge * 1000)
  }

  /** Whether this request uses the DPoP scheme and DPoP is on; otherwise the scheme is unknown here. */
  takesDpop (request: FastifyRequest): boolean {
    return this.proofs !== null && usesDpopScheme(request.headers.authorization)
  }

  /**
   * The DPoP access token of this request, its SHA-256 digest (`tokenDigest`: the cache's
   * key, and the proof's `ath` encoded) and its proof, once the proof has passed the checks
   * of RFC 9449 §4.3 that need no token (`claimProof` does the `jti`). Every answer
   * carries the current nonce.
   */
  async proveDpop (request: FastifyRequest, reply: FastifyReply): Promise<{ token: string, digest: string, proof: DpopProof }> {
    if (this.nonces !== null) reply.header('dpop-nonce', this.nonces.issue())
    const token = extractDpopToken(request, this.options.maxTokenSize)
    const header = request.headers.dpop
    if (typeof header !== 'string' || headerCount(request.raw.rawHeaders, 'dpop') !== 1) {
      throw new InvalidDpopProofError('Send exactly one DPoP proof header')
    }
    const nowSeconds = Math.floor(Date.now() / 1000)
    const digest = tokenDigest(token)
    const proof = await this.proofs!.verify(header, request.method, requestUri(request, this.options.publicUrl), accessTokenHashOf(digest), nowSeconds)
    if (this.nonces !== null && !this.nonces.accepts(proof.nonce)) throw new UseDpopNonceError()
    return { token, digest, proof }
  }

  /**
   * Records the proof's `jti` (with its key) as used, refusing it when it was used before.
   * Called once the token is verified and bound to the proof's key: proofs with no valid
   * token behind them never reach the store, nor crowd out the claims that matter.
   */
  claimProof (proof: DpopProof): void | Promise<void> {
    // Kept until the proof's `iat` leaves the window: past that, the proof is refused anyway.
    return this.replay!.claim(`${proof.jkt}:${proof.jti}`, (proof.iat + this.iatWindow + 1) * 1000)
  }

  /** A DPoP request: the token must be bound to the proof's key (and to the certificate too, if it says so). */
  checkDpop (binding: Binding | null, proof: DpopProof, request: FastifyRequest): void {
    if (binding === null || binding.jkt !== proof.jkt) throw new InvalidTokenError('The token is not bound to the key of the DPoP proof')
    if (binding.x5t !== undefined) this.checkCertificate(binding.x5t, request)
  }

  /** A Bearer request with a bound token: only a certificate binding can be proven without the DPoP scheme. */
  checkBearer (binding: Binding, request: FastifyRequest): void {
    // RFC 9449 §7.2: a DPoP-bound token is never accepted as a plain Bearer token (no downgrade).
    if (binding.jkt !== undefined || binding.x5t === undefined) throw new InvalidTokenError(NOT_PROVEN)
    this.checkCertificate(binding.x5t, request)
  }

  private checkCertificate (x5t: string, request: FastifyRequest): void {
    const thumbprint = this.options.mtls === null ? null : clientCertificateThumbprint(request, this.options.mtls)
    if (thumbprint === null) throw new InvalidTokenError(NOT_PROVEN)
    if (thumbprint !== x5t) throw new InvalidTokenError('The token is bound to another client certificate')
  }
}
