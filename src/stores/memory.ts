import { optionKeys, refuseUnknownKeys } from '../options/option-keys.js'
import { StateBackedStore } from './state-backed.js'
import type { StoreOperation } from './state.js'

export interface MemoryStoreOptions {
  /**
   * Most live entries kept. Expired ones are purged to make room; past that, a new
   * revocation is refused with an error rather than silently evicting an old one.
   * Default 1,000,000.
   */
  maxEntries?: number
}

const memoryOptionKeys = optionKeys<MemoryStoreOptions>({ maxEntries: true })

/** Revocations in this process's memory: for tests and single-process apps that accept losing them on restart. */
export class MemoryStore extends StateBackedStore {
  constructor (options: MemoryStoreOptions = {}) {
    refuseUnknownKeys(options, memoryOptionKeys, 'MemoryStore')
    const max = options.maxEntries ?? 1_000_000
    if (!Number.isInteger(max) || max < 1) throw new TypeError('MemoryStore: maxEntries must be a positive integer')
    super(max)
  }

  protected async commit (_operations: StoreOperation[]): Promise<void> {}
}
