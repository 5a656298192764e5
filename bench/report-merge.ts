// docs/benchmarks.md holds what a run prints and what was written by hand beside it (readings of
// a run, the scale and fleet sections). A new run replaces what it measured and keeps the rest:
// the sections it does not write, and the earlier run's target lines it did not measure again,
// marked as such, so a run of some rows never drops figures of the others.

const TARGETS = 'Against the targets'
const METHOD = 'Method'
const EARLIER = ' *(an earlier run)*'

interface Section { title: string, body: string[] }

function sections (text: string): { head: string[], sections: Section[] } {
  const head: string[] = []
  const found: Section[] = []
  for (const line of text.split('\n')) {
    if (line.startsWith('## ')) found.push({ title: line.slice(3).trim(), body: [] })
    else if (found.length === 0) head.push(line)
    else found.at(-1)!.body.push(line)
  }
  return { head, sections: found }
}

/** A bullet list's items, each with its continuation lines. */
function bullets (body: string[]): string[][] {
  const items: string[][] = []
  for (const line of body) {
    if (line.startsWith('- ')) items.push([line])
    else if (line.startsWith('  ') && items.length > 0) items.at(-1)!.push(line)
  }
  return items
}

/** What a target line measures, without its figures: two runs of one measure share it. */
const measureOf = (item: string[]): string => item[0]!.replace(/\*\*.*$/, '').replace(/[\d.,]+/g, '#').replace(/\s+/g, ' ').trim()

/** A row of the rows' table: `| id | … |` (not its header or rule). */
const rowId = (line: string): string | undefined => /^\| ([a-z0-9-]+) \|/.exec(line)?.[1]

/** The method's table with the earlier run's rows this run did not measure, after its own, marked. */
function withEarlierRows (body: string[], earlier: string[]): string[] {
  const ids = new Set(body.map(rowId).filter((id) => id !== undefined))
  const kept = earlier.filter((line) => { const id = rowId(line); return id !== undefined && !ids.has(id) })
    .map((line) => line.includes(EARLIER) ? line : line.replace(/^(\| [a-z0-9-]+ \| [^|]*?) \|/, `$1${EARLIER} |`))
  if (kept.length === 0) return body
  const last = body.map((line) => rowId(line) !== undefined).lastIndexOf(true)
  return last === -1 ? body : [...body.slice(0, last + 1), ...kept, ...body.slice(last + 1)]
}

/** `fresh` (what this run rendered) merged into `previous` (the file as it stood). */
export function mergeReport (fresh: string, previous: string | null): string {
  if (previous === null) return fresh
  const now = sections(fresh)
  const before = sections(previous)
  const out: string[] = [...now.head]
  for (const section of now.sections) {
    if (section.title === METHOD) {
      out.push(`## ${section.title}`, ...withEarlierRows(section.body, before.sections.find((s) => s.title === METHOD)?.body ?? []))
      continue
    }
    out.push(`## ${section.title}`, ...section.body)
    if (section.title !== TARGETS) continue
    const measured = new Set(bullets(section.body).map(measureOf))
    const kept = bullets(before.sections.find((s) => s.title === TARGETS)?.body ?? [])
      .filter((item) => !measured.has(measureOf(item)))
      .map((item) => item[0]!.endsWith(EARLIER) || item.at(-1)!.endsWith(EARLIER) ? item : [...item.slice(0, -1), item.at(-1)! + EARLIER])
    if (kept.length > 0) {
      while (out.at(-1) === '') out.pop()
      out.push(...kept.flat(), '')
    }
  }
  // A section of the old file this run does not write (by hand, or a measure not run now) stays.
  const written = new Set(now.sections.map((s) => s.title))
  for (const section of before.sections) {
    if (written.has(section.title)) continue
    out.push(`## ${section.title}`, ...section.body)
  }
  return out.join('\n').replace(/\n{3,}/g, '\n\n').replace(/\n*$/, '\n')
}
