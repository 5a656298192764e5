// Every command, its options and its help text: one table that the parser, `--help`
// and the usage messages all read.
import type { ParseArgsConfig } from 'node:util'

type Options = NonNullable<ParseArgsConfig['options']>

export interface CommandSpec {
  name: string
  /** Positional arguments, as shown in the usage line. */
  args: string[]
  summary: string
  options: Options
  /** Lines of help under the usage line. */
  help: string[]
}

export const PROGRAM = 'fastify-jwt-revocation'

/** Options every command takes: where the revocations are, and how to print. */
export const targetOptions: Options = {
  store: { type: 'string' },
  prefix: { type: 'string' },
  admin: { type: 'string' },
  token: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
}

const targetHelp = [
  'Target (one of):',
  '  --store file:<dir>          the FileStore in <dir> (refused while a server holds it: use --admin)',
  '  --store redis://[:pw@]host[:port][/db]   Redis, through your installed ioredis (also rediss://)',
  '  --store postgres://user@host/db          PostgreSQL, through your installed pg',
  '  --prefix <p>                Redis key prefix / PostgreSQL table prefix, when not the default',
  '  --admin <url> --token <t>   a running server\'s admin routes (e.g. http://127.0.0.1:3000/api/v2);',
  '                              the token may come from FASTIFY_JWT_REVOCATION_TOKEN instead',
  'Output:',
  '  --json                      machine-readable output on stdout',
]

const expiryHelp = [
  '  --exp <seconds>             the token\'s exp (seconds since the epoch): the entry is dropped after it',
  '  --expires-in <duration>     or: keep the entry this long (e.g. 30d, the longest token lifetime)',
]

const issuerHelp = '  --issuer <iss>              only its tokens from this issuer (default: every issuer)'
/** Who made a change and why: recorded in the store's revocation log with every write. */
const authorOptions: Options = { reason: { type: 'string' }, actor: { type: 'string' } }

const authorHelp = [
  '  --reason <text>             why (at most 500 characters), recorded in the revocation log',
  '  --actor <name>              who, recorded in the log (default: user@host; with --admin the',
  '                              server records the admin token\'s sub instead, so --actor is refused)',
]

export const commands: CommandSpec[] = [
  {
    name: 'revoke-token',
    args: [],
    summary: 'blacklist one token by its jti and audience',
    options: { aud: { type: 'string' }, jti: { type: 'string' }, exp: { type: 'string' }, 'expires-in': { type: 'string' }, ...authorOptions },
    help: ['  --aud <audience>            the token\'s aud (required)', '  --jti <jti>                 the token\'s jti (required)', ...expiryHelp, ...authorHelp],
  },
  {
    name: 'revoke-client',
    args: ['<clientId>'],
    summary: 'refuse every token of a client issued up to now',
    options: { audience: { type: 'string' }, issuer: { type: 'string' }, ...authorOptions },
    help: ['  --audience <audience>       only its tokens for this audience (default: every audience)', issuerHelp, ...authorHelp],
  },
  {
    name: 'revoke-subject',
    args: ['<sub>'],
    summary: 'refuse every token of a subject issued up to now ("log out everywhere")',
    options: { issuer: { type: 'string' }, ...authorOptions },
    help: [issuerHelp, ...authorHelp],
  },
  {
    name: 'list-revoked',
    args: [],
    summary: 'list the blacklisted tokens',
    options: { aud: { type: 'string' } },
    help: ['  --aud <audience>            only tokens of this audience'],
  },
  {
    name: 'grants',
    args: ['list|create|update|delete'],
    summary: 'list, create, narrow or delete client grants',
    options: { client: { type: 'string' }, audience: { type: 'string' }, scope: { type: 'string' }, ...authorOptions },
    help: [
      '  grants list [--client <id>] [--audience <aud>]',
      '  grants create --client <id> --audience <aud> [--scope "read:x write:x"]',
      '  grants update <grantId> --scope "read:x"     (replaces the scopes; effective on the next request)',
      '  grants delete <grantId>                      (also refuses the client\'s tokens for that audience)',
      'create, update and delete take:',
      ...authorHelp,
    ],
  },
  {
    name: 'import',
    args: ['<file|->'],
    summary: 'blacklist many tokens from a file or stdin, in batches',
    options: { aud: { type: 'string' }, exp: { type: 'string' }, 'expires-in': { type: 'string' }, ...authorOptions },
    help: [
      '  One jti per line, or JSON lines {"aud": …, "jti": …, "exp": …}; blank lines and # comments are skipped.',
      '  --aud <audience>            audience of lines that name none',
      ...expiryHelp.map((l) => l + ' (for lines without one)'),
      ...authorHelp.map((l) => l.replace('recorded in the revocation log', 'recorded with each batch')),
      '  Refused lines are reported with their line numbers (exit code 4).',
    ],
  },
  {
    name: 'history',
    args: [],
    summary: 'who revoked what, when and why: the revocation log, newest first',
    options: {
      since: { type: 'string' },
      until: { type: 'string' },
      client: { type: 'string' },
      aud: { type: 'string' },
      subject: { type: 'string' },
      jti: { type: 'string' },
      limit: { type: 'string' },
    },
    help: [
      '  --since <when>              entries from then on: a duration back from now (1h, 7d) or an ISO date-time',
      '  --until <when>              entries before then (same forms)',
      '  --client <id>               only entries of this client',
      '  --aud <audience>            only entries for this audience',
      '  --subject <sub>             only entries revoking this subject',
      '  --jti <jti>                 only entries blacklisting this jti',
      '  --limit <n>                 at most this many entries (1-500, default 50)',
    ],
  },
  {
    name: 'purge',
    args: [],
    summary: 'drop entries whose tokens have expired (store targets)',
    options: {},
    help: [],
  },
  {
    name: 'migrate',
    args: [],
    summary: 'move tokens revoked in an earlier layout into the current one, online (Redis store targets)',
    options: {},
    help: [],
  },
  {
    name: 'status',
    args: [],
    summary: 'what the target holds: blacklisted tokens and grants',
    options: {},
    help: [],
  },
]

export const commandNames = commands.map((c) => c.name)

export function commandHelp (spec: CommandSpec): string {
  return [
    `Usage: ${PROGRAM} ${spec.name}${spec.args.length > 0 ? ' ' + spec.args.join(' ') : ''} [options] <target>`,
    '',
    spec.summary[0]!.toUpperCase() + spec.summary.slice(1) + '.',
    ...(spec.help.length > 0 ? ['', ...spec.help] : []),
    '',
    ...targetHelp,
    '',
  ].join('\n')
}

export function programHelp (): string {
  const width = Math.max(...commandNames.map((n) => n.length))
  return [
    `Usage: ${PROGRAM} <command> [options] <target>`,
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    ...targetHelp,
    '',
    'Exit codes: 0 done · 1 the store or server failed · 2 usage error · 3 target refused · 4 import with refused lines',
    `Help on one command: ${PROGRAM} <command> --help`,
    '',
  ].join('\n')
}
