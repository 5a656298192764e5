import type { ClientGrant } from '../stores/types.js'

// The two ways Auth0's Management API pages a list, over one stable order
// (creation time, then id), so both walk the same sequence.

/** Auth0's checkpoint answer: `next` is absent on the last page. */
export interface CheckpointPage<T> { items: T[], next?: string }

/** Offset paging (`page`, `per_page`): `start` is the index of the first item returned. */
export function offsetPage<T> (sorted: T[], page: number, perPage: number): { start: number, items: T[] } {
  const start = page * perPage
  return { start, items: sorted.slice(start, start + perPage) }
}

/**
 * Checkpoint paging (`from`, `take`). The cursor names the position after the last item
 * returned — not an item — so deleting that item between two calls skips nothing.
 * It is opaque to clients; a malformed one is `undefined` (the caller answers 400).
 */
export function checkpointPage (sorted: ClientGrant[], from: string | undefined, take: number): CheckpointPage<ClientGrant> | undefined {
  let begin = 0
  if (from !== undefined) {
    const after = decodeCursor(from)
    if (after === undefined) return undefined
    begin = sorted.findIndex((g) => compareGrants(g, after) > 0)
    if (begin === -1) begin = sorted.length
  }
  const items = sorted.slice(begin, begin + take)
  const last = items.at(-1)
  return begin + take < sorted.length && last !== undefined ? { items, next: encodeCursor(last) } : { items }
}

export function compareGrants (a: Pick<ClientGrant, 'created_at' | 'id'>, b: Pick<ClientGrant, 'created_at' | 'id'>): number {
  return a.created_at - b.created_at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
}

function encodeCursor (g: ClientGrant): string {
  return Buffer.from(JSON.stringify([g.created_at, g.id])).toString('base64url')
}

function decodeCursor (cursor: string): Pick<ClientGrant, 'created_at' | 'id'> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
    if (Array.isArray(value) && value.length === 2 && Number.isFinite(value[0]) && typeof value[1] === 'string') {
      return { created_at: value[0] as number, id: value[1] }
    }
  } catch {}
  return undefined
}
