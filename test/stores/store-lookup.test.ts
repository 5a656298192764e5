// A MemoryStore or FileStore answers a cache miss from memory without calling its
// `lookup`. That shortcut must never skip a `lookup` someone put in front of the
// built-in one (a subclass, a Proxy, an APM agent's wrapper): such a store is asked.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { FileStore, MemoryStore, type RevocationQuery, type RevocationState } from '../../src/index.js'
import { lookupNow, StateBackedStore } from '../../src/stores/state-backed.js'
import { bearer, buildApp, makeKey, sign } from '../helpers/helpers.js'

const key = await makeKey('ES256')
const jwks = { keys: [key.publicJwk] }

type Tap = { teardown: (fn: () => unknown) => void }
type Lookup = (query: RevocationQuery) => Promise<RevocationState>
type BuiltIn = StateBackedStore
type StoreClass = new (...args: any[]) => BuiltIn

/** Each built-in store class, and how a test makes one (cleaned up by its teardown). */
const kinds: Record<string, { Store: StoreClass, options: (t: Tap) => Promise<object> }> = {
  MemoryStore: { Store: MemoryStore, options: async () => ({}) },
  FileStore: {
    Store: FileStore,
    options: async (t) => {
      const path = await mkdtemp(join(tmpdir(), 'store-lookup-'))
      t.teardown(() => rm(path, { recursive: true, force: true }))
      return { path }
    },
  },
}

/** The shapes a store whose `lookup` is not the built-in one comes in; `wrap` receives the built-in lookup. */
const shapes: Record<string, (Store: StoreClass, options: object, wrap: (inner: Lookup) => Lookup) => BuiltIn> = {
  'a subclass overriding lookup': (Store, options, wrap) => {
    // Typed as one concrete class so TypeScript lets it be extended; it is MemoryStore or FileStore.
    class Instrumented extends (Store as new (...args: any[]) => MemoryStore) {
      override lookup (query: RevocationQuery): Promise<RevocationState> {
        return wrap((q) => super.lookup(q))(query)
      }
    }
    return new Instrumented(options)
  },
  'an own-property wrapper (as an APM agent installs)': (Store, options, wrap) => {
    const store = new Store(options)
    store.lookup = wrap(store.lookup.bind(store))
    return store
  },
  'a Proxy whose get trap returns a wrapper': (Store, options, wrap) => {
    const store = new Store(options)
    const wrapped = wrap(store.lookup.bind(store))
    return new Proxy(store, { get: (target, prop, receiver) => prop === 'lookup' ? wrapped : Reflect.get(target, prop, receiver) })
  },
  'a Proxy that binds every method to its target and wraps lookup': (Store, options, wrap) => {
    const store = new Store(options)
    const wrapped = wrap(store.lookup.bind(store))
    return new Proxy(store, {
      get (target, prop) {
        if (prop === 'lookup') return wrapped
        const value = Reflect.get(target, prop, target) as unknown
        return typeof value === 'function' ? value.bind(target) : value
      },
    })
  },
}

const get = async (app: Awaited<ReturnType<typeof buildApp>>) => (await app.inject({ url: '/orders', headers: bearer(await sign(key, { scope: 'read:orders' })) })).statusCode

for (const [kind, { Store, options }] of Object.entries(kinds)) {
  t.test(kind, async (t) => {
    const make = async (t: Tap, shape: typeof shapes[string], wrap: (inner: Lookup) => Lookup) => {
      const store = shape(Store, await options(t), wrap)
      t.teardown(() => store.close())
      return store
    }
    for (const [shape, wrapWith] of Object.entries(shapes)) {
      t.test(`${shape}, rejecting: the miss is answered 503`, async (t) => {
        const store = await make(t, wrapWith, () => async () => { throw new Error('the remote check is down') })
        const app = await buildApp(t, { jwks, store })
        t.equal(await get(app), 503)
        t.equal(await get(app), 503, 'a second token too')
      })

      t.test(`${shape}, spying: asked on every miss`, async (t) => {
        let asked = 0
        const store = await make(t, wrapWith, (inner) => (query) => { asked++; return inner(query) })
        const app = await buildApp(t, { jwks, store })
        t.equal(await get(app), 200)
        t.equal(await get(app), 200)
        t.equal(asked, 2, 'one lookup per new token')
      })
    }

    t.test('the plain store answers a miss from memory', async (t) => {
      const store = await make(t, (Store, options) => new Store(options), (inner) => inner)
      const answered: Array<RevocationState | undefined> = []
      const fromMemory = store[lookupNow].bind(store)
      store[lookupNow] = (query, now) => { const state = fromMemory(query, now); answered.push(state); return state }
      const app = await buildApp(t, { jwks, store })
      t.equal(await get(app), 200)
      t.equal(await get(app), 200)
      t.equal(answered.length, 2, 'both misses went to the in-memory answer')
      t.ok(answered.every((state) => state !== undefined), 'and it answered them')
    })
  })
}
