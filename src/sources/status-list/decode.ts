import { base64url } from 'jose'
import { promisify } from 'node:util'
import { inflate } from 'node:zlib'

const inflateAsync = promisify(inflate)

/** A decoded Status List (IETF Token Status List §4.1): `bits` per token, packed from the least significant bit. */
export interface StatusList {
  bits: 1 | 2 | 4 | 8
  bytes: Uint8Array
}

const BIT_SIZES = new Set([1, 2, 4, 8])

/**
 * Decodes `{ bits, lst }`: base64url (jose), then zlib inflate with a hard bound on the
 * output, so a small compressed list cannot expand into gigabytes (a decompression bomb
 * fails at `maxBytes`, having allocated no more than that).
 */
export async function decodeStatusList (value: unknown, maxBytes: number): Promise<StatusList> {
  if (typeof value !== 'object' || value === null) throw new Error('status_list is not an object')
  const { bits, lst } = value as { bits?: unknown, lst?: unknown }
  if (typeof bits !== 'number' || !BIT_SIZES.has(bits)) throw new Error('status_list.bits is not 1, 2, 4 or 8')
  if (typeof lst !== 'string' || lst.length === 0) throw new Error('status_list.lst is not a string')
  const bytes = await inflateAsync(base64url.decode(lst), { maxOutputLength: maxBytes })
  return { bits: bits as StatusList['bits'], bytes }
}

/** The status at `idx`, or undefined when the list is shorter. */
export function statusAt (list: StatusList, idx: number): number | undefined {
  const bit = idx * list.bits
  const byte = Math.floor(bit / 8)
  if (byte >= list.bytes.length) return undefined
  return (list.bytes[byte]! >> (bit % 8)) & ((1 << list.bits) - 1)
}
