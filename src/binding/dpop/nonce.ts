import { createHmac, timingSafeEqual } from 'node:crypto'

/**
 * Stateless server nonces (RFC 9449 §8): the HMAC of the current time window under a
 * secret. Any instance holding the secret recognises them without a shared store; a
 * nonce stays good for its window and the next, so one minted just before a window
 * rolls is not refused a moment later. Each window's value is computed once.
 */
export class NonceWindows {
  private window = -1
  private current: Buffer = Buffer.alloc(0)
  private previous: Buffer = Buffer.alloc(0)
  private currentText = ''

  constructor (private readonly secret: Buffer, private readonly windowMs: number) {}

  /** The nonce to hand out now. */
  issue (now = Date.now()): string {
    this.roll(now)
    return this.currentText
  }

  /** Whether `nonce` was issued in this window or the previous one. */
  accepts (nonce: unknown, now = Date.now()): boolean {
    if (typeof nonce !== 'string') return false
    this.roll(now)
    const given = Buffer.from(nonce, 'utf8')
    return (given.length === this.current.length && timingSafeEqual(given, this.current)) ||
      (given.length === this.previous.length && timingSafeEqual(given, this.previous))
  }

  private roll (now: number): void {
    const window = Math.floor(now / this.windowMs)
    if (window === this.window) return
    this.previous = window === this.window + 1 ? this.current : this.mint(window - 1)
    this.current = this.mint(window)
    this.currentText = this.current.toString('utf8')
    this.window = window
  }

  private mint (window: number): Buffer {
    return Buffer.from(createHmac('sha256', this.secret).update(`dpop-nonce:${window}`).digest('base64url'), 'utf8')
  }
}
