// The manual is what users paste and follow, so it is tested like code:
// - every ```ts block of README.md and docs/**/*.md is type-checked under `--strict` against
//   the built package's own types (imported by the package's name, resolved through its
//   `exports`), in one tsc run. A block whose first line is a `// path/file.ts` comment is
//   written to that path, under a folder of its own Markdown file, so blocks of one page may
//   import each other and pages never collide;
// - the quick start, the same block in README.md and the getting-started guide, runs as
//   written and prints what it says;
// - every relative link resolves to a file, and every #anchor to a heading's GitHub slug.
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { dirname, join, relative } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'

const run = promisify(execFile)
const root = join(import.meta.dirname, '..', '..')

interface Block { line: number, code: string }

/** README.md and every Markdown file under docs/, as paths relative to the root. */
async function markdownFiles (): Promise<string[]> {
  const docs = await readdir(join(root, 'docs'), { recursive: true })
  return ['README.md', ...docs.filter((f) => f.endsWith('.md')).sort().map((f) => join('docs', f))]
}

/** The ```ts blocks of a Markdown text, with the line each starts on. */
function typeScriptBlocks (markdown: string): Block[] {
  const blocks: Block[] = []
  const fence = /^```ts\n([\s\S]*?)^```$/gm
  for (const match of markdown.matchAll(fence)) {
    blocks.push({ line: markdown.slice(0, match.index).split('\n').length, code: match[1]! })
  }
  return blocks
}

/** The name a `// path/file.ts` first line gives a block, if any. */
const blockName = (block: Block) => /^\/\/ ([\w./-]+\.ts)\n/.exec(block.code)?.[1]

/** The text outside fenced code blocks, line by line (fenced lines blanked, so numbers hold). */
function prose (markdown: string): string[] {
  let fenced = false
  return markdown.split('\n').map((line) => {
    if (/^\s*```/.test(line)) { fenced = !fenced; return '' }
    return fenced ? '' : line
  })
}

/** GitHub's heading ids: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function headingSlugs (markdown: string): Set<string> {
  const seen = new Map<string, number>()
  const slugs = new Set<string>()
  for (const line of prose(markdown)) {
    const heading = /^#{1,6} (.+?)\s*#*\s*$/.exec(line)?.[1]
    if (heading === undefined) continue
    const text = heading.replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    const base = text.toLowerCase().replace(/[^\p{L}\p{N}\p{M} _-]/gu, '').replace(/ /g, '-')
    const n = seen.get(base) ?? 0
    seen.set(base, n + 1)
    slugs.add(n === 0 ? base : `${base}-${n}`)
  }
  return slugs
}

t.test('every TypeScript block in README.md and docs/ compiles under tsc --strict against the built types', async (t) => {
  const pages = await markdownFiles()
  // Inside the package, so `import … from 'fastify-jwt-revocation'` resolves through its own exports to dist/.
  const dir = await mkdtemp(join(root, '.docs-check-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const files: string[] = []
  const origin = new Map<string, { page: string, line: number }>()
  for (const page of pages) {
    const blocks = typeScriptBlocks(await readFile(join(root, page), 'utf8'))
    const folder = page.replace(/\.md$/, '').replace(/[/\\]/g, '--')
    for (const block of blocks) {
      const file = join(folder, blockName(block) ?? `line-${block.line}.ts`)
      await mkdir(dirname(join(dir, file)), { recursive: true })
      // `export {}` makes every block a module, so top-level await and local names never clash.
      await writeFile(join(dir, file), `${block.code}\nexport {}\n`)
      files.push(file)
      origin.set(file, { page, line: block.line })
    }
  }
  t.ok(files.length >= 20, `${files.length} blocks found in ${pages.length} pages`)
  await writeFile(join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { strict: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', noEmit: true, skipLibCheck: true, types: ['node'] },
    files,
  }))
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
  const result = await run(process.execPath, [tsc, '-p', dir], { cwd: dir }).then(() => '', (err: { stdout?: string }) => err.stdout ?? String(err))
  // Name Markdown lines, not temp files, in a failure.
  const located = result.replace(/^(\S+\.ts)\((\d+),(\d+)\)/gm, (whole, file: string, line: string) => {
    const from = origin.get(file)
    return from === undefined ? whole : `${from.page}:${from.line + Number(line)}`
  })
  t.equal(located, '', 'no type errors')
})

t.test('the quick start runs as written: 200, then 401 after each strategy', async (t) => {
  const quickStarts: string[] = []
  for (const page of ['README.md', join('docs', 'guides', 'getting-started.md')]) {
    const block = typeScriptBlocks(await readFile(join(root, page), 'utf8')).find((b) => blockName(b) === 'quick-start.ts')
    t.ok(block, `${page} has the quick start`)
    if (block !== undefined) quickStarts.push(block.code)
  }
  t.equal(quickStarts[1], quickStarts[0], 'the README and the guide show the same quick start')
  const dir = await mkdtemp(join(root, '.docs-check-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'quick-start.ts')
  await writeFile(file, quickStarts[0]!)
  const { stdout } = await run(process.execPath, ['--import', 'tsx', file], { cwd: root, timeout: 60_000 })
  t.equal(stdout, '200\n401\n200\n401\n', 'each status as its comment says')
})

t.test('every relative link and #anchor in README.md and docs/ resolves', async (t) => {
  const broken: string[] = []
  const slugs = new Map<string, Set<string>>()
  const slugsOf = async (file: string) => {
    let known = slugs.get(file)
    if (known === undefined) slugs.set(file, known = headingSlugs(await readFile(file, 'utf8')))
    return known
  }
  let links = 0
  for (const page of await markdownFiles()) {
    const lines = prose(await readFile(join(root, page), 'utf8'))
    for (const [i, line] of lines.entries()) {
      for (const [, url] of line.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z][a-z+.-]*:/i.test(url!)) continue
        links++
        const [path, anchor] = url!.split('#') as [string, string | undefined]
        const target = path === '' ? join(root, page) : join(root, dirname(page), decodeURIComponent(path))
        const where = `${page}:${i + 1} ${url}`
        if (!existsSync(target)) broken.push(`${where}: no such file ${relative(root, target)}`)
        else if (anchor !== undefined && !(target.endsWith('.md') && (await slugsOf(target)).has(anchor))) {
          broken.push(`${where}: no heading with that anchor`)
        }
      }
    }
  }
  t.ok(links > 50, `${links} relative links checked`)
  t.same(broken, [], 'no broken link')
})
