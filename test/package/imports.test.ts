// The house's import rules, checked on the source rather than trusted: every import points
// down (CONTRIBUTING.md, "Which way the imports run"), and no module imports itself back
// through others. A rule broken here is a design change to argue in review, not a quick fix.
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, posix, relative } from 'node:path'
import t from 'tap'

const src = join(import.meta.dirname, '..', '..', 'src')

function sourceFiles (dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? sourceFiles(path) : name.endsWith('.ts') ? [relative(src, path).split('\\').join('/')] : []
  })
}

interface Import { target: string, typeOnly: boolean }

/** The package-relative imports of a module (`import`, `export … from`, `import()`), resolved to source paths. */
function importsOf (file: string): Import[] {
  const text = readFileSync(join(src, file), 'utf8')
  const found: Import[] = []
  const pattern = /^\s*(import|export)\s+(type\s+)?[^'"]*?from\s+['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/gm
  for (const m of text.matchAll(pattern)) {
    const spec = m[3] ?? m[4]!
    const target = posix.normalize(posix.join(posix.dirname(file), spec)).replace(/\.js$/, '.ts')
    found.push({ target, typeOnly: m[2] !== undefined })
  }
  return found
}

const files = sourceFiles(src)
const graph = new Map(files.map((f) => [f, importsOf(f)]))
const folderOf = (file: string) => file.includes('/') ? file.slice(0, file.indexOf('/')) : file

t.test('every relative import names a module that exists', async (t) => {
  const missing = [...graph].flatMap(([file, imports]) => imports.filter((i) => !graph.has(i.target)).map((i) => `${file} → ${i.target}`))
  t.same(missing, [])
})

// What each part may import. `*.ts` names root modules; a folder name covers everything in it.
const rules: Array<{ part: string, may: string[], why: string }> = [
  { part: 'errors.ts', may: [], why: 'errors import nothing of the package' },
  { part: 'lib', may: ['lib', 'errors.ts'], why: 'framework-free helpers' },
  { part: 'options', may: ['options', 'errors.ts', 'lib', 'stores', 'token', 'binding', 'sources', 'ops'], why: 'options may name the default store and validate each capability\'s own options, never import the request path' },
  { part: 'stores', may: ['stores', 'errors.ts', 'lib', 'options'], why: 'stores know nothing of requests, the token cache or Fastify' },
  { part: 'token', may: ['token', 'errors.ts', 'lib', 'options'], why: 'verification never consults revocation or a store' },
]
// The core: what a request runs through. It never imports an entry point of its own.
const core = ['plugin.ts', 'errors.ts', 'options', 'request', 'token', 'revocation', 'stores', 'binding', 'ops', 'lib']
const entryPoints = ['admin', 'auth0', 'cli', 'testing', 'sources/ssf', 'sources/logout']

const within = (file: string, part: string) => part.endsWith('.ts') ? file === part : file === part || file.startsWith(part + '/')

t.test('imports point down', async (t) => {
  for (const rule of rules) {
    const broken = [...graph].filter(([file]) => within(file, rule.part)).flatMap(([file, imports]) =>
      imports.filter((i) => !i.typeOnly && !rule.may.some((part) => within(i.target, part))).map((i) => `${file} → ${i.target}`))
    t.same(broken, [], `${rule.part}: ${rule.why}`)
  }
  const intoEntryPoints = [...graph].filter(([file]) => core.some((part) => within(file, part))).flatMap(([file, imports]) =>
    imports.filter((i) => entryPoints.some((part) => within(i.target, part))).map((i) => `${file} → ${i.target}`))
  t.same(intoEntryPoints, [], 'the core never imports an entry point (admin routes, Auth0, the command line, SSF, logout, testing)')
})

t.test('no import cycles', async (t) => {
  // Tarjan's strongly connected components over value imports (a type-only import emits nothing).
  let index = 0
  const indices = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const cycles: string[][] = []
  const visit = (v: string): void => {
    indices.set(v, index); low.set(v, index); index++
    stack.push(v); onStack.add(v)
    for (const { target: w, typeOnly } of graph.get(v) ?? []) {
      if (typeOnly || !graph.has(w)) continue
      if (!indices.has(w)) { visit(w); low.set(v, Math.min(low.get(v)!, low.get(w)!)) } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, indices.get(w)!))
    }
    if (low.get(v) === indices.get(v)) {
      const component: string[] = []
      let w: string
      do { w = stack.pop()!; onStack.delete(w); component.push(w) } while (w !== v)
      if (component.length > 1) cycles.push(component.sort())
    }
  }
  for (const file of graph.keys()) if (!indices.has(file)) visit(file)
  t.same(cycles, [], 'each listed group imports itself back')
})

t.test('src/ keeps a small root: the barrel, the Fastify adapter and the error table', async (t) => {
  const root = files.filter((f) => !f.includes('/'))
  t.ok(root.length <= 5, `${root.length} files at the root of src/: ${root.join(', ')}`)
  t.same([...new Set(files.map(folderOf))].filter((f) => !f.endsWith('.ts')).sort(),
    ['admin', 'auth0', 'binding', 'cli', 'lib', 'ops', 'options', 'request', 'revocation', 'sources', 'stores', 'testing', 'token'])
})

