// The README's TypeScript is what users paste: every ```ts block is type-checked under
// `--strict` against the built package's own types (imported by the package's name,
// resolved through its `exports`), in one tsc run. A block whose first line is a
// `// path/file.ts` comment is written to that path, so one block may import another.
import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { dirname, join, relative } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'

const run = promisify(execFile)
const root = join(import.meta.dirname, '..')

/** The ```ts blocks of a Markdown text, with the line each starts on. */
function typeScriptBlocks (markdown: string): Array<{ line: number, code: string }> {
  const blocks: Array<{ line: number, code: string }> = []
  const fence = /^```ts\n([\s\S]*?)^```$/gm
  for (const match of markdown.matchAll(fence)) {
    blocks.push({ line: markdown.slice(0, match.index).split('\n').length, code: match[1]! })
  }
  return blocks
}

t.test('every TypeScript snippet in README.md compiles under tsc --strict against the built types', async (t) => {
  const readme = await readFile(join(root, 'README.md'), 'utf8')
  const blocks = typeScriptBlocks(readme)
  t.ok(blocks.length >= 8, `${blocks.length} blocks found`)

  // Inside the package, so `import … from 'fastify-jwt-revocation'` resolves through its own exports to dist/.
  const dir = await mkdtemp(join(root, '.readme-check-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const files: string[] = []
  for (const [i, block] of blocks.entries()) {
    const named = /^\/\/ ([\w./-]+\.ts)\n/.exec(block.code)?.[1]
    const file = join(dir, named ?? `readme-line-${block.line}-${i}.ts`)
    await mkdir(dirname(file), { recursive: true })
    // `export {}` makes every block a module, so top-level await and local names never clash.
    await writeFile(file, `${block.code}\nexport {}\n`)
    files.push(relative(dir, file))
  }
  await writeFile(join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { strict: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', noEmit: true, skipLibCheck: true, types: ['node'] },
    files,
  }))
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
  const result = await run(process.execPath, [tsc, '-p', dir], { cwd: dir }).then(() => '', (err: { stdout?: string }) => err.stdout ?? String(err))
  // Name README lines, not temp files, in a failure.
  const located = result.replace(/readme-line-(\d+)-\d+\.ts\((\d+),(\d+)\)/g, (_m, start: string, line: string) => `README.md:${Number(start) + Number(line)}`)
  t.equal(located, '', 'no type errors')
})
