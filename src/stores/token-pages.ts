import type { RevocationStore, RevokedToken, RevokedTokenPage, TokenPageRequest } from './types.js'

// What every store's paged listing of revoked tokens shares: the page size and the
// cursor's envelope. A cursor is base64url JSON, opaque to callers; each store decides
// what it holds (a key to continue after, a bucket and a field, …).

/** Tokens per page unless the caller says otherwise. */
export const DEFAULT_TOKEN_PAGE = 1000
/** The most tokens one page holds. */
export const MAX_TOKEN_PAGE = 10_000

/** The page size asked for, within 1 … MAX_TOKEN_PAGE; refuses anything but a positive integer. */
export function tokenPageLimit (page: TokenPageRequest | undefined, store: string): number {
  const limit = page?.limit ?? DEFAULT_TOKEN_PAGE
  if (!Number.isInteger(limit) || limit < 1) throw new TypeError(`${store}: a page's limit must be a positive integer`)
  return Math.min(limit, MAX_TOKEN_PAGE)
}

export const encodeTokenCursor = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')

/** The value a cursor holds, or a TypeError naming the store when it is not one `valid` accepts. */
export function decodeTokenCursor<T> (cursor: string, store: string, valid: (value: unknown) => value is T): T {
  let value: unknown
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
  } catch {}
  if (typeof cursor !== 'string' || !valid(value)) throw new TypeError(`${store}: not a cursor of this store's token listing`)
  return value
}

/** A cursor that continues after the key (aud, jti): the stores that keep tokens in that order. */
export const isTokenKey = (value: unknown): value is [string, string] =>
  Array.isArray(value) && value.length === 2 && typeof value[0] === 'string' && typeof value[1] === 'string'

/**
 * Every page of a store's listing, in order; a store without `listRevokedTokensPage`
 * gives its whole `listRevokedTokens` as one page.
 */
export async function * revokedTokenPages (
  store: Pick<RevocationStore, 'listRevokedTokens' | 'listRevokedTokensPage'>, filter: { aud?: string | undefined }, limit?: number,
): AsyncGenerator<RevokedToken[]> {
  if (typeof store.listRevokedTokensPage !== 'function') {
    yield await store.listRevokedTokens(filter)
    return
  }
  let cursor: string | undefined
  do {
    const page: RevokedTokenPage = await store.listRevokedTokensPage(filter, { ...(cursor === undefined ? {} : { cursor }), ...(limit === undefined ? {} : { limit }) })
    if (page.tokens.length > 0) yield page.tokens
    cursor = page.next ?? undefined
  } while (cursor !== undefined)
}
