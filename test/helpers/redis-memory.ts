// What RedisStore's compact token layout costs a server, read the same way by the test
// (test/stores/redis-compact.test.ts) and the benchmark (bench/redis-scale.ts).
import type { Redis } from 'ioredis'

/** A node's INFO used_memory, in bytes. */
export const usedMemory = async (node: Redis): Promise<number> => Number(/used_memory:(\d+)/.exec(await node.info('memory'))![1])

/**
 * Memory of `nodes` together once the writes' transient buffers are gone (a client's query
 * buffer holds a batch until Redis's cron frees it): read every 500 ms until it stops falling.
 */
export async function settledMemory (nodes: Redis[], reads = 10): Promise<number> {
  const total = async () => (await Promise.all(nodes.map(usedMemory))).reduce((a, b) => a + b, 0)
  let last = await total()
  for (let i = 0; i < reads; i++) {
    await new Promise((resolve) => setTimeout(resolve, 500))
    const now = await total()
    if (now >= last) return now
    last = now
  }
  return last
}

/** Token entries on `node`: the fields of the bucket hashes whose keys start with `base`. */
export async function entriesOn (node: Redis, base: string): Promise<number> {
  let cursor = '0'
  let entries = 0
  do {
    const [next, keys] = await node.scan(cursor, 'MATCH', `${base}*`, 'COUNT', 1000)
    if (keys.length > 0) {
      const pipeline = node.pipeline()
      for (const key of keys) pipeline.hlen(key)
      for (const [, n] of (await pipeline.exec())!) entries += n as number
    }
    cursor = next
  } while (cursor !== '0')
  return entries
}
