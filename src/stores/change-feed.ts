import type { ChangeListener, RevocationChange } from './types.js'

/**
 * The `issuer` member of a rule or of its change: present only when the rule is scoped
 * to an issuer ('' counts as none), so an unscoped one reads as it did before scopes.
 */
export const issuerMember = (issuer: string | undefined): { issuer?: string } => (issuer ? { issuer } : {})

/** A change as it travels between processes; `ChangeFeed.emitMessage` reads it back. */
export function encodeChange (change: RevocationChange): string {
  return JSON.stringify(change)
}

/**
 * The listener side of a store's change feed: listeners, a transport (a pub/sub
 * connection, a LISTEN client) started on the first subscription and stopped when the
 * last listener leaves, and message decoding. A start that fails is tried afresh by the
 * next subscription.
 */
export class ChangeFeed {
  private readonly listeners = new Set<ChangeListener>()
  private started: Promise<void> | undefined

  constructor (
    private readonly start: () => Promise<void> = async () => {},
    private readonly stop: () => Promise<void> = async () => {},
  ) {}

  async subscribe (listener: ChangeListener): Promise<() => Promise<void>> {
    this.listeners.add(listener)
    if (this.started === undefined) {
      const starting: Promise<void> = this.start().catch((err: unknown) => {
        if (this.started === starting) this.started = undefined
        throw err
      })
      this.started = starting
    }
    await this.started
    return async () => {
      this.listeners.delete(listener)
      if (this.listeners.size > 0 || this.started === undefined) return
      const started = this.started
      this.started = undefined
      await started.catch(() => {})
      await this.stop()
    }
  }

  emit (change: RevocationChange): void {
    for (const listener of this.listeners) listener(change)
  }

  /** A message that cannot be read may have said anything: every cache must flush. */
  emitMessage (text: string | undefined): void {
    let change: RevocationChange
    try {
      change = JSON.parse(text ?? '') as RevocationChange
    } catch {
      change = { type: 'reset', reason: 'unreadable' }
    }
    this.emit(change)
  }

  /** Stops notifying; resolves once a transport that was starting has settled. */
  async close (): Promise<void> {
    this.listeners.clear()
    await this.started?.catch(() => {})
  }
}
