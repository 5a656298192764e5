import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { FileStore, MemoryStore } from '../../src/index.js'
import { runStoreSuite } from '../../src/testing/store-suite.js'

t.test('MemoryStore passes the conformance suite', async (t) => {
  runStoreSuite(t, () => new MemoryStore(), { trimmedStore: (log) => new MemoryStore(log) })
})

t.test('FileStore passes the conformance suite', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'jwt-revocation-'))
  t.teardown(() => rm(root, { recursive: true, force: true }))
  let n = 0
  runStoreSuite(t, () => new FileStore({ path: join(root, String(n++)) }), { trimmedStore: (log) => new FileStore({ path: join(root, String(n++)), ...log }) })
})
