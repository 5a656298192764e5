// The reading side of PostgresStore's log. Ids come from one sequence, but a transaction
// that took id 10 may commit after one that took id 11: a reader that saw 11 cannot yet
// tell whether 10 will ever appear. So the cursor keeps, beside the highest id read
// (`top`), the ranges of ids below it not seen yet (`holes`), re-read on each call, and
// settles a hole only when no transaction can still fill it:
// - every write of the store takes its transaction id before its log id (see the SQL in
//   postgres.ts), so a transaction still holding an id below `top` was already running
//   when the snapshot that saw `top` was taken: its transaction id is below that
//   snapshot's xmax;
// - once a later snapshot's xmin reaches that xmax, every such transaction has ended, and
//   what it committed is visible to that read. Holes it did not fill never will be.
// The cursor records that checkpoint (`top` then, and the xmax). Nothing depends on time.

/** Ids at or below it count as read when an instance starts following (see startCursor). */
export const START_WINDOW = 10_000
/** Most holes a cursor keeps; past it the oldest are given up, and the read says gap. */
const MAX_HOLES = 1000

export interface LogCursor {
  /** Highest id read. */
  top: bigint
  /** Inclusive ranges of ids below `top` not read yet, ascending. */
  holes: Array<[bigint, bigint]>
  /** Once a snapshot's xmin reaches `xmax`, ids up to `top` are settled. */
  checkpoint: { top: bigint, xmax: bigint } | null
}

const DIGITS = /^\d{1,19}$/

/**
 * A cursor with no holes is the id of the last entry read (so an entry's id is a cursor
 * too, as the store contract has it); one with holes adds them and its checkpoint:
 * `top.lo-hi,lo-hi.top-xmax`.
 */
export function encodeCursor (c: LogCursor): string {
  if (c.holes.length === 0 && c.checkpoint === null) return String(c.top)
  const holes = c.holes.map(([lo, hi]) => `${lo}-${hi}`).join(',')
  const checkpoint = c.checkpoint === null ? '' : `${c.checkpoint.top}-${c.checkpoint.xmax}`
  return `${c.top}.${holes}.${checkpoint}`
}

/** The cursor a string encodes; a TypeError for anything else (a cursor is only ever one of ours). */
export function decodeCursor (text: string): LogCursor {
  const refuse = () => new TypeError('PostgresStore: not a cursor of this log')
  const parts = text.split('.')
  if (parts.length === 1 && DIGITS.test(text)) return { top: BigInt(text), holes: [], checkpoint: null }
  if (parts.length !== 3 || !DIGITS.test(parts[0]!)) throw refuse()
  const pair = (s: string): [bigint, bigint] => {
    const [a, b, more] = s.split('-')
    if (more !== undefined || !DIGITS.test(a ?? '') || !DIGITS.test(b ?? '')) throw refuse()
    return [BigInt(a!), BigInt(b!)]
  }
  const holes = parts[1] === '' ? [] : parts[1]!.split(',').map(pair)
  if (holes.length > MAX_HOLES) throw refuse()
  const checkpoint = parts[2] === '' ? null : pair(parts[2]!)
  return { top: BigInt(parts[0]!), holes, checkpoint: checkpoint && { top: checkpoint[0], xmax: checkpoint[1] } }
}

/** Everything at or below this id is read or settled. */
export const settledThrough = (c: LogCursor): bigint => (c.holes.length > 0 ? c.holes[0]![0] - 1n : c.top)

/** Drops hole ids at or below `id`. */
function settle (holes: Array<[bigint, bigint]>, id: bigint): Array<[bigint, bigint]> {
  return holes.filter(([, hi]) => hi > id).map(([lo, hi]) => [lo > id ? lo : id + 1n, hi])
}

/** Removes one id read from the holes. */
function fill (holes: Array<[bigint, bigint]>, id: bigint): Array<[bigint, bigint]> {
  const out: Array<[bigint, bigint]> = []
  for (const [lo, hi] of holes) {
    if (id < lo || id > hi) out.push([lo, hi])
    else {
      if (lo < id) out.push([lo, id - 1n])
      if (id < hi) out.push([id + 1n, hi])
    }
  }
  return out
}

/** What one read saw: the ids it returned (ascending), whether LIMIT cut it, its snapshot, and the trim mark. */
export interface LogRead {
  ids: bigint[]
  truncated: boolean
  xmin: bigint
  xmax: bigint
  trimmedThrough: bigint
}

/** The cursor after a read, and whether entries after the old one were trimmed unread. */
export function advance (cursor: LogCursor, read: LogRead): { cursor: LogCursor, gap: boolean } {
  let { top, holes, checkpoint } = cursor
  let gap = read.trimmedThrough > settledThrough(cursor)
  for (const id of read.ids) {
    if (id > top) {
      if (id > top + 1n) holes.push([top + 1n, id - 1n])
      top = id
    } else {
      holes = fill(holes, id)
    }
  }
  if (checkpoint !== null && read.xmin >= checkpoint.xmax) {
    // A cut read has not looked past its last id: holes above it may hold visible rows.
    const through = read.truncated && read.ids.length > 0 ? read.ids.at(-1)! : checkpoint.top
    holes = settle(holes, through < checkpoint.top ? through : checkpoint.top)
    checkpoint = null
  }
  if (gap) {
    holes = settle(holes, read.trimmedThrough)
    if (top < read.trimmedThrough) top = read.trimmedThrough
  }
  if (holes.length > MAX_HOLES) {
    holes = holes.slice(-MAX_HOLES)
    gap = true
  }
  if (checkpoint === null && holes.length > 0) checkpoint = { top, xmax: read.xmax }
  return { cursor: { top, holes, checkpoint }, gap }
}
