import { optionKeys, refuseUnknownKeys } from '../options/option-keys.js'
import { logLimits, type LogOptions } from './revocation-log.js'
import { StateBackedStore } from './state-backed.js'

export interface MemoryStoreOptions extends LogOptions {
  /**
   * Most live entries kept. Expired ones are purged to make room; past that, a new
   * revocation is refused with an error rather than silently evicting an old one.
   * Default 1,000,000.
   */
  maxEntries?: number
}

const memoryOptionKeys = optionKeys<MemoryStoreOptions>({ maxEntries: true, logRetention: true, logMaxEntries: true })

/** Revocations in this process's memory: for tests and single-process apps that accept losing them on restart. */
export class MemoryStore extends StateBackedStore {
  constructor (options: MemoryStoreOptions = {}) {
    refuseUnknownKeys(options, memoryOptionKeys, 'MemoryStore')
    const max = options.maxEntries ?? 1_000_000
    if (!Number.isInteger(max) || max < 1) throw new TypeError('MemoryStore: maxEntries must be a positive integer')
    super(max, logLimits(options, 'MemoryStore'))
  }

  protected async commit (): Promise<void> {}
}
