import { optionKeys, refuseUnknownKeys } from '../options/option-keys.js'
import type { LogOptions } from './revocation-log.js'
import { inMemoryLimits, StateBackedStore } from './state-backed.js'

export interface MemoryStoreOptions extends LogOptions {
  /**
   * Most live entries kept. Expired ones are purged to make room; past that, a new
   * revocation is refused with an error rather than silently evicting an old one.
   * Default 1,000,000; at most 16,777,216 (2^24, what a V8 Map holds): more belong in
   * RedisStore or PostgresStore.
   */
  maxEntries?: number
}

const memoryOptionKeys = optionKeys<MemoryStoreOptions>({ maxEntries: true, logRetention: true, logMaxEntries: true })

/** Revocations in this process's memory: for tests and single-process apps that accept losing them on restart. */
export class MemoryStore extends StateBackedStore {
  constructor (options: MemoryStoreOptions = {}) {
    refuseUnknownKeys(options, memoryOptionKeys, 'MemoryStore')
    const { maxEntries, log } = inMemoryLimits(options, 'MemoryStore')
    super(maxEntries, log)
  }

  protected async commit (): Promise<void> {}
}
