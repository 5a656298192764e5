import { closestName } from './did-you-mean.js'
import { invalidOption } from '../errors.js'

/**
 * Every key of an options interface, listed once. Typing the list as a record over
 * `keyof T` makes the compiler refuse an option added to the interface but not here
 * (or listed here but not declared), so the known keys cannot drift from the type.
 */
export function optionKeys<T> (keys: { readonly [K in keyof Required<T>]: true }): readonly string[] {
  return Object.keys(keys)
}

/**
 * Keys Fastify itself reads from the options of a registered plugin
 * (`RegisterOptions`: the route prefix and the plugin's logging), so they reach
 * every plugin's options and are not the plugin's to refuse.
 */
export const registerOptionKeys = optionKeys<{ prefix: string, logLevel: string, logSerializers: unknown }>({
  prefix: true, logLevel: true, logSerializers: true,
})

/**
 * Refuses a key of `options` that is not in `known`, naming it and the closest known
 * one: a misspelled option (`maxTokenLifeTime`) would otherwise be silently ignored
 * and its protection silently off. `path` prefixes the names in the message
 * (`'cache'` → `cache.maxx`); `owner` says whose object it is when the path alone
 * does not (`'route /admin'` → `config.auth.scopez of route /admin`).
 */
export function refuseUnknownKeys (options: object, known: readonly string[], path?: string, owner?: string): void {
  const qualified = (key: string) => path === undefined ? key : `${path}.${key}`
  for (const key of Object.keys(options)) {
    if (known.includes(key)) continue
    const meant = closestName(key, known)
    throw invalidOption(owner === undefined ? qualified(key) : `${qualified(key)} of ${owner}`, meant === undefined
      ? `is not known (known: ${known.join(', ')})`
      : `is not known; did you mean ${qualified(meant)}?`)
  }
}
