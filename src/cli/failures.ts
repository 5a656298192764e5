// What the command line exits with, and the errors that choose it. Documented in the
// docs/reference/cli.md; scripts rely on them, so they never change meaning.

export const EXIT = {
  ok: 0,
  /** The store or the server failed or could not be reached. */
  failed: 1,
  /** Unknown command or option, a missing or bad argument. */
  usage: 2,
  /** The target cannot be used as given: a FileStore held by a server, a client library not installed, credentials refused. */
  refused: 3,
  /** `import` finished, but some lines were refused. */
  partial: 4,
} as const

/** A mistake in the command line: the message names what is missing, with the command's usage. */
export class UsageError extends Error {
  constructor (message: string, readonly command?: string) {
    super(message)
  }
}

/** The target refuses to be used this way; the message says what to do instead. */
export class TargetRefusedError extends Error {}

/** The target refused what was sent (a 400: an audience the server does not accept), not the connection. */
export class EntriesRefusedError extends Error {}
