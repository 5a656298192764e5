// The command line: parse (Node's util.parseArgs, strict), open the target, run one
// command, print a table or JSON, and exit with a documented code.
import { once } from 'node:events'
import { createReadStream } from 'node:fs'
import { hostname, userInfo } from 'node:os'
import type { Readable, Writable } from 'node:stream'
import { parseArgs } from 'node:util'
import { closestName } from '../options/did-you-mean.js'
import { parseDuration } from '../options/duration.js'
import { MAX_REASON_LENGTH } from '../revocation/audit.js'
import type { ChangeAuthor } from '../stores/types.js'
import { AdminTarget } from './admin-target.js'
import { commandHelp, commandNames, commands, PROGRAM, programHelp, targetOptions, type CommandSpec } from './commands.js'
import { EXIT, TargetRefusedError, UsageError } from './failures.js'
import { HISTORY_HEADER, historyRows, MAX_HISTORY, readHistory } from './history.js'
import { importTokens, ImportStopped, type ImportReport } from './import.js'
import { openStoreTarget } from './store-target.js'
import type { GrantView, RevokedView, Target } from './target.js'

export interface Io {
  stdin: Readable
  stdout: Writable & { isTTY?: boolean }
  stderr: Writable & { isTTY?: boolean }
  env: NodeJS.ProcessEnv
}

type Values = Record<string, string | boolean | undefined>

interface Parsed { spec: CommandSpec, values: Values, positionals: string[] }

function parse (argv: string[]): Parsed | 'help' {
  const name = argv[0]
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    if (name === 'help' && argv[1] !== undefined) return parse([argv[1], '--help'])
    return 'help'
  }
  const spec = commands.find((c) => c.name === name)
  if (spec === undefined) {
    const meant = closestName(name, commandNames)
    throw new UsageError(`unknown command ${JSON.stringify(name)}${meant ? ` (did you mean ${meant}?)` : ''}`)
  }
  const options = { ...targetOptions, ...spec.options }
  try {
    const { values, positionals } = parseArgs({ args: argv.slice(1), options, allowPositionals: true, strict: true })
    return { spec, values: values as Values, positionals }
  } catch (err) {
    const message = (err as Error).message
    const unknown = /Unknown option '(--?[^']+)'/.exec(message)?.[1]
    if (unknown !== undefined) {
      const meant = closestName(unknown.replace(/^-+/, ''), Object.keys(options))
      throw new UsageError(`unknown option ${unknown}${meant ? ` (did you mean --${meant}?)` : ''}`, spec.name)
    }
    throw new UsageError(message.split('\n')[0]!.replace(/\. To specify.*$/, ''), spec.name)
  }
}

function required (values: Values, name: string, command: string): string {
  const value = values[name]
  if (typeof value !== 'string' || value === '') throw new UsageError(`missing --${name}`, command)
  return value
}

function positional (parsed: Parsed, index: number, what: string): string {
  const value = parsed.positionals[index]
  if (value === undefined || value === '') throw new UsageError(`missing ${what}`, parsed.spec.name)
  return value
}

/** `--issuer`: undefined for every issuer; an empty one is a mistake, not "every issuer". */
function issuerOf (values: Values, command: string): string | undefined {
  const issuer = values.issuer as string | undefined
  if (issuer === '') throw new UsageError('--issuer must not be empty', command)
  return issuer
}

const fromIssuer = (issuer: string | undefined) => (issuer === undefined ? '' : ` from ${issuer}`)

function noMorePositionals (parsed: Parsed, count: number): void {
  if (parsed.positionals.length > count) throw new UsageError(`unexpected argument ${JSON.stringify(parsed.positionals[count])}`, parsed.spec.name)
}

/** `--exp` (seconds since the epoch) or `--expires-in` (a duration) as ms; null when neither. */
function expiryOf (values: Values, command: string): number | null {
  const exp = values.exp as string | undefined
  const within = values['expires-in'] as string | undefined
  if (exp !== undefined && within !== undefined) throw new UsageError('give --exp or --expires-in, not both', command)
  if (exp !== undefined) {
    if (!/^\d+$/.test(exp) || Number(exp) === 0) throw new UsageError(`--exp must be seconds since the epoch (got ${JSON.stringify(exp)})`, command)
    return Number(exp) * 1000
  }
  if (within !== undefined) {
    try {
      return Date.now() + parseDuration(within, '--expires-in', { unit: 'seconds', min: 1, example: '30d' }) * 1000
    } catch {
      throw new UsageError(`--expires-in must be a duration such as 30d or 12h (got ${JSON.stringify(within)})`, command)
    }
  }
  return null
}

/** The operator at this terminal, as the log records a command line's change by default. */
function localActor (env: NodeJS.ProcessEnv): string {
  let user: string | undefined
  try {
    user = userInfo().username
  } catch {
    // No passwd entry (a container's arbitrary uid): what the shell says, if anything.
    user = env.USER ?? env.LOGNAME
  }
  return `${user || 'unknown'}@${hostname()}`
}

function authorText (values: Values, name: 'reason' | 'actor', command: string): string | undefined {
  const value = values[name] as string | undefined
  if (value === undefined) return undefined
  if (value === '' || value.length > MAX_REASON_LENGTH || value.includes('\u0000')) {
    throw new UsageError(`--${name} must be 1 to ${MAX_REASON_LENGTH} characters`, command)
  }
  return value
}

/**
 * Who makes this change and why, for the store's log. Through --admin the server records
 * the admin token's sub: an --actor there would be dropped, so it is refused instead.
 */
function authorOf (values: Values, command: string): (target: Target) => ChangeAuthor {
  const reason = authorText(values, 'reason', command)
  const actor = authorText(values, 'actor', command)
  return (target) => {
    if (!target.takesActor && actor !== undefined) {
      throw new UsageError('--actor goes with --store: through --admin the server records the admin token\'s sub as the actor', command)
    }
    return { actor: target.takesActor ? actor ?? localActor(process.env) : undefined, reason, source: 'cli' }
  }
}

/** A read-only command or action: --reason and --actor would be silently ignored, so they are refused. */
function noAuthor (values: Values, command: string): void {
  for (const name of ['reason', 'actor']) {
    if (values[name] !== undefined) throw new UsageError(`--${name} goes with a change (create, update, delete), not a listing`, command)
  }
}

/** `--since`/`--until`: a duration back from now (1h, 7d) or an ISO 8601 date-time; ms. */
function instantOf (values: Values, name: 'since' | 'until', command: string): number | undefined {
  const value = values[name] as string | undefined
  if (value === undefined) return undefined
  if (/^\d{4}-\d{2}-\d{2}/.test(value)) {
    const ms = Date.parse(value)
    if (Number.isFinite(ms)) return ms
  } else {
    try {
      return Date.now() - parseDuration(value, `--${name}`, { unit: 'seconds', min: 1, example: '1h' }) * 1000
    } catch {}
  }
  throw new UsageError(`--${name} must be a duration back from now such as 1h or 7d, or an ISO date-time (got ${JSON.stringify(value)})`, command)
}

function limitOf (values: Values, command: string): number {
  const value = values.limit as string | undefined
  if (value === undefined) return 50
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > MAX_HISTORY) throw new UsageError(`--limit must be a whole number from 1 to ${MAX_HISTORY}`, command)
  return Number(value)
}

const scopesOf = (value: string | boolean | undefined) => typeof value === 'string' ? [...new Set(value.split(/[\s,]+/).filter(Boolean))] : []

async function openTarget (values: Values, command: string, env: NodeJS.ProcessEnv): Promise<Target> {
  const store = values.store as string | undefined
  const admin = values.admin as string | undefined
  if (store !== undefined && admin !== undefined) throw new UsageError('give --store or --admin, not both', command)
  if (store !== undefined) {
    if (values.token !== undefined) throw new UsageError('--token goes with --admin, not --store', command)
    return openStoreTarget(store, values.prefix as string | undefined)
  }
  if (admin !== undefined) {
    if (values.prefix !== undefined) throw new UsageError('--prefix goes with --store, not --admin', command)
    const token = (values.token as string | undefined) ?? env.FASTIFY_JWT_REVOCATION_TOKEN
    if (token === undefined || token === '') throw new UsageError('missing --token (or FASTIFY_JWT_REVOCATION_TOKEN) for --admin', command)
    return new AdminTarget(admin, token)
  }
  throw new UsageError('missing the target: --store file:<dir> | redis://… | postgres://…, or --admin <url> --token <t>', command)
}

// ---- output ------------------------------------------------------------------------------

function table (rows: string[][], header: string[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: string[]) => cells.map((c, i) => i === cells.length - 1 ? c : c.padEnd(widths[i]!)).join('  ').trimEnd()
  return [line(header), ...rows.map(line)].join('\n') + '\n'
}

const optional = <K extends string, V> (key: K, value: V | undefined) => (value === undefined ? {} : { [key]: value }) as { [P in K]?: V }

const when = (ms: number | null | undefined) => ms === undefined ? '-' : ms === null ? 'never' : new Date(ms).toISOString()

function grantsTable (grants: GrantView[]): string {
  return table(grants.map((g) => [g.id, g.client_id, g.audience, g.scope.join(' ')]), ['ID', 'CLIENT', 'AUDIENCE', 'SCOPE'])
}

function tokensTable (tokens: RevokedView[], header: boolean): string {
  const text = table(tokens.map((e) => [e.aud, e.jti, when(e.expiresAt)]), ['AUDIENCE', 'JTI', 'EXPIRES'])
  return header ? text : text.slice(text.indexOf('\n') + 1)
}

function importSummary (report: ImportReport): string {
  const shown = report.refused.slice(0, 20)
  return [
    `revoked ${report.revoked.toLocaleString('en')} tokens from ${report.lines.toLocaleString('en')} lines; refused ${report.refused.length.toLocaleString('en')} lines`,
    ...shown.map((r) => `  line ${r.line}: ${r.reason}`),
    ...(report.refused.length > shown.length ? [`  … and ${report.refused.length - shown.length} more (--json lists them all)`] : []),
    // An entry without an expiry is never compacted away: say so, since the blacklist's bound depends on expiries.
    ...(report.keptUntilRemoved > 0 ? [`warning: ${report.keptUntilRemoved.toLocaleString('en')} tokens had no exp and no --exp/--expires-in was given: they are kept until removed by hand`] : []),
    '',
  ].join('\n')
}

// ---- commands ----------------------------------------------------------------------------

interface Outcome { json: unknown, text: string, code?: number }

/**
 * An outcome too large to hold: written page by page as it is read, as one JSON array
 * (`--json`) or as a table whose header comes first and whose columns align within a page.
 */
interface StreamedOutcome<T> { pages: AsyncIterable<T[]>, table: (rows: T[], header: boolean) => string }

/** The command's arguments checked, before any target is opened; the returned step runs it. */
type Step = (target: Target) => Promise<Outcome | StreamedOutcome<RevokedView>>

/** Writes a streamed outcome, waiting for stdout to drain between pages; resolves once the last is written. */
async function writePages<T> (outcome: StreamedOutcome<T>, json: boolean, out: Io['stdout']): Promise<void> {
  const write = async (text: string) => { if (!out.write(text)) await once(out, 'drain') }
  let first = true
  for await (const page of outcome.pages) {
    if (page.length === 0) continue
    if (json) {
      // The bytes JSON.stringify(all, null, 2) would write, one page at a time.
      let text = ''
      for (const item of page) {
        text += (first ? '[\n' : ',\n') + JSON.stringify(item, null, 2).replace(/^/gm, '  ')
        first = false
      }
      await write(text)
    } else {
      await write(outcome.table(page, first))
      first = false
    }
  }
  if (json) await write(first ? '[]\n' : '\n]\n')
  else if (first) await write(outcome.table([], true))
}

function prepare (parsed: Parsed, io: Io): Step {
  const { spec, values } = parsed
  const name = spec.name
  switch (name) {
    case 'revoke-token': {
      noMorePositionals(parsed, 0)
      const entry = { aud: required(values, 'aud', name), jti: required(values, 'jti', name), expiresAt: expiryOf(values, name) }
      const author = authorOf(values, name)
      return async (target) => {
        await target.revokeTokens([entry], author(target))
        return { json: { revoked: entry }, text: `revoked token ${entry.jti} for ${entry.aud} (entry kept until ${when(entry.expiresAt)})\n` }
      }
    }
    case 'revoke-client': {
      const clientId = positional(parsed, 0, '<clientId>')
      noMorePositionals(parsed, 1)
      const audience = values.audience as string | undefined
      const issuer = issuerOf(values, name)
      const author = authorOf(values, name)
      return async (target) => {
        await target.revokeClient(clientId, audience, issuer, author(target))
        return {
          json: { revokedClient: { clientId, audience: audience ?? '*', ...(issuer === undefined ? {} : { issuer }) } },
          text: `revoked client ${clientId}: its tokens for ${audience ?? 'every audience'}${fromIssuer(issuer)} issued up to now are refused\n`,
        }
      }
    }
    case 'revoke-subject': {
      const subject = positional(parsed, 0, '<sub>')
      noMorePositionals(parsed, 1)
      const issuer = issuerOf(values, name)
      const author = authorOf(values, name)
      return async (target) => {
        await target.revokeSubject(subject, issuer, author(target))
        return {
          json: issuer === undefined ? { revokedSubject: subject } : { revokedSubject: subject, issuer },
          text: `revoked subject ${subject}: its tokens${fromIssuer(issuer)} issued up to now are refused\n`,
        }
      }
    }
    case 'list-revoked': {
      noMorePositionals(parsed, 0)
      return async (target) => {
        return { pages: target.listRevoked(values.aud as string | undefined), table: tokensTable }
      }
    }
    case 'grants': return grants(parsed)
    case 'import': {
      const file = positional(parsed, 0, '<file|-> (a file of token ids, or - for stdin)')
      noMorePositionals(parsed, 1)
      const expiresAt = expiryOf(values, name)
      const author = authorOf(values, name)
      const progress = io.stderr.isTTY === true
        ? (r: ImportReport) => io.stderr.write(`\r${r.lines.toLocaleString('en')} lines read, ${r.revoked.toLocaleString('en')} revoked, ${r.refused.length.toLocaleString('en')} refused`)
        : undefined
      return async (target) => {
        const input = file === '-' ? io.stdin : createReadStream(file)
        const report = await importTokens(input, target, { aud: values.aud as string | undefined, expiresAt, author: author(target), ...(progress ? { progress } : {}) })
        if (progress) io.stderr.write('\n')
        return { json: report, text: importSummary(report), code: report.refused.length > 0 ? EXIT.partial : EXIT.ok }
      }
    }
    case 'history': {
      noMorePositionals(parsed, 0)
      const filter = {
        ...optional('since', instantOf(values, 'since', name)),
        ...optional('until', instantOf(values, 'until', name)),
        ...optional('clientId', values.client as string | undefined),
        ...optional('aud', values.aud as string | undefined),
        ...optional('subject', values.subject as string | undefined),
        ...optional('jti', values.jti as string | undefined),
      }
      const limit = limitOf(values, name)
      return async (target) => {
        const entries = await readHistory(target, filter, limit)
        return { json: entries, text: entries.length === 0 ? 'no entries\n' : table(historyRows(entries), HISTORY_HEADER) }
      }
    }
    case 'purge': {
      noMorePositionals(parsed, 0)
      return async (target) => {
        const purged = await target.purge()
        return { json: { purged }, text: `purged ${purged} expired entries\n` }
      }
    }
    case 'migrate': {
      noMorePositionals(parsed, 0)
      return async (target) => {
        const moved = await target.migrate()
        return { json: { moved }, text: `moved ${moved} tokens into the current layout\n` }
      }
    }
    case 'status': {
      noMorePositionals(parsed, 0)
      return async (target) => {
        const status = await target.status()
        return { json: status, text: Object.entries(status).map(([k, v]) => `${k}: ${v ?? '-'}`).join('\n') + '\n' }
      }
    }
  }
  throw new UsageError(`unknown command ${name}`)
}

function grants (parsed: Parsed): Step {
  const { values } = parsed
  const command = 'grants'
  const action = positional(parsed, 0, 'the action: list, create, update or delete')
  switch (action) {
    case 'list': {
      noMorePositionals(parsed, 1)
      noAuthor(values, command)
      const filter = {
        ...(values.client === undefined ? {} : { client_id: values.client as string }),
        ...(values.audience === undefined ? {} : { audience: values.audience as string }),
      }
      return async (target) => {
        const list = await target.listGrants(filter)
        return { json: list, text: grantsTable(list) }
      }
    }
    case 'create': {
      noMorePositionals(parsed, 1)
      const input = { client_id: required(values, 'client', command), audience: required(values, 'audience', command), scope: scopesOf(values.scope) }
      const author = authorOf(values, command)
      return async (target) => {
        const grant = await target.createGrant(input, author(target))
        return { json: grant, text: grantsTable([grant]) }
      }
    }
    case 'update': {
      const id = positional(parsed, 1, '<grantId>')
      noMorePositionals(parsed, 2)
      if (values.scope === undefined) throw new UsageError('missing --scope (the scopes the grant keeps; "" for none)', command)
      const scope = scopesOf(values.scope)
      const author = authorOf(values, command)
      return async (target) => {
        const grant = await target.updateGrant(id, scope, author(target))
        if (grant === null) throw new NotFound(`no grant ${id}`)
        return { json: grant, text: grantsTable([grant]) }
      }
    }
    case 'delete': {
      const id = positional(parsed, 1, '<grantId>')
      noMorePositionals(parsed, 2)
      const author = authorOf(values, command)
      return async (target) => {
        const grant = await target.deleteGrant(id, author(target))
        if (grant === null) throw new NotFound(`no grant ${id}`)
        return { json: { deleted: grant }, text: `deleted grant ${grant.id} (${grant.client_id} for ${grant.audience}); the client's tokens for that audience issued up to now are refused\n` }
      }
    }
  }
  const meant = closestName(action, ['list', 'create', 'update', 'delete'])
  throw new UsageError(`unknown grants action ${JSON.stringify(action)}${meant ? ` (did you mean ${meant}?)` : ''}`, command)
}

class NotFound extends Error {}

/** Runs one command line; resolves to the exit code. Never throws. */
export async function main (argv: string[], io: Io): Promise<number> {
  let parsed: Parsed | 'help'
  try {
    parsed = parse(argv)
  } catch (err) {
    return usage(io, err as UsageError)
  }
  if (parsed === 'help') {
    io.stdout.write(programHelp())
    return argv.length === 0 ? EXIT.usage : EXIT.ok
  }
  if (parsed.values.help === true) {
    io.stdout.write(commandHelp(parsed.spec))
    return EXIT.ok
  }
  const json = parsed.values.json === true
  let target: Target | undefined
  try {
    const step = prepare(parsed, io)
    target = await openTarget(parsed.values, parsed.spec.name, io.env)
    const outcome = await step(target)
    if ('pages' in outcome) {
      await writePages(outcome, json, io.stdout)
      return EXIT.ok
    }
    io.stdout.write(json ? JSON.stringify(outcome.json, null, 2) + '\n' : outcome.text)
    return outcome.code ?? EXIT.ok
  } catch (err) {
    if (err instanceof UsageError) return usage(io, err)
    if (err instanceof ImportStopped && json) io.stdout.write(JSON.stringify(err.report, null, 2) + '\n')
    io.stderr.write(`${PROGRAM}: ${(err as Error)?.message ?? String(err)}\n`)
    return err instanceof TargetRefusedError ? EXIT.refused : EXIT.failed
  } finally {
    await target?.close().catch(() => {})
  }
}

function usage (io: Io, err: UsageError): number {
  const spec = commands.find((c) => c.name === err.command)
  const line = spec === undefined
    ? `usage: ${PROGRAM} <command> [options] (commands: ${commandNames.join(', ')}; --help for more)`
    : `usage: ${PROGRAM} ${spec.name}${spec.args.length > 0 ? ' ' + spec.args.join(' ') : ''} [options] --store <store> | --admin <url> --token <t>  (${PROGRAM} ${spec.name} --help)`
  io.stderr.write(`${PROGRAM}: ${err.message}\n${line}\n`)
  return EXIT.usage
}
