import { invalidOption } from '../errors.js'

const MS_PER: Record<string, number> = {
  ms: 1, msec: 1, msecs: 1, millisecond: 1, milliseconds: 1,
  s: 1000, sec: 1000, secs: 1000, second: 1000, seconds: 1000,
  m: 60_000, min: 60_000, mins: 60_000, minute: 60_000, minutes: 60_000,
  h: 3_600_000, hr: 3_600_000, hrs: 3_600_000, hour: 3_600_000, hours: 3_600_000,
  d: 86_400_000, day: 86_400_000, days: 86_400_000,
  w: 604_800_000, week: 604_800_000, weeks: 604_800_000,
}

const durationPattern = /^(\d+(?:\.\d+)?)\s*([a-z]+)?$/i

/** The longest delay `setTimeout` honours (2^31 - 1 ms); a longer one fires at once. */
export const MAX_TIMER_MS = 2_147_483_647

/**
 * A duration: a number in the unit the option documents (seconds for token lifetimes and
 * leeways, milliseconds for timeouts and cache lifetimes), or a string with its unit:
 * `'500ms'`, `'10s'`, `'15m'`, `'24h'`, `'30d'`, `'1w'`, `'90 seconds'`.
 */
export type Duration = number | string

/** How one option reads a {@link Duration}. */
export interface DurationRule {
  /** What a plain number (or a string without a unit) counts, and what the result is in. */
  unit: 'seconds' | 'milliseconds'
  /** Smallest value allowed, in `unit`. Default 0. */
  min?: number
  /** Largest value allowed, in `unit`, however it is written. */
  max?: number
  /**
   * For seconds: the largest plain number taken at its word. Above it the number is surely
   * milliseconds, so it is refused with the string to write instead; a string, whose unit
   * is explicit, may go beyond it up to `max`.
   */
  plausibleNumber?: number
  /** A string form shown in messages, e.g. `'24h'`. */
  example: string
}

/**
 * Plain numbers above these bounds are refused as surely milliseconds (the string form goes beyond them).
 * Leeway and the pause after a failure are seconds to a few minutes (Kerberos allows five
 * minutes of clock skew); more, as a number, is 1000 ms read as 1000 s, and would accept
 * expired tokens or stop asking a recovered store for a quarter of an hour.
 */
export const PLAUSIBLE_SHORT_SECONDS = 300
/**
 * 30 days: the longest access-token lifetime the common issuers allow (Auth0 2,592,000 s;
 * Okta and Entra ID a day), while one hour in ms, 3,600,000, is 41 days read as seconds
 * and one day in ms, 86,400,000, is 1,000 days.
 */
export const PLAUSIBLE_LIFETIME_SECONDS = 30 * 86_400

/** Clock leeway (`clockTolerance`): seconds, 0 or more. */
export const leewayRule: DurationRule = { unit: 'seconds', plausibleNumber: PLAUSIBLE_SHORT_SECONDS, example: '30s' }
/** How long a token (or a SET) may live or be old: seconds, more than zero. */
export const lifetimeRule: DurationRule = { unit: 'seconds', min: 1, plausibleNumber: PLAUSIBLE_LIFETIME_SECONDS, example: '24h' }

/** Parses a {@link Duration} into a whole number of `rule.unit`; throws an option error naming `option` and the unit. */
export function parseDuration (value: unknown, option: string, rule: DurationRule): number {
  const { unit, min = 0, max = Number.MAX_SAFE_INTEGER } = rule
  const read = readDuration(value, unit === 'seconds' ? 1000 : 1)
  if (read !== undefined && !Number.isInteger(read.amount) && !read.plain) {
    throw invalidOption(option, `must be a whole number of ${unit} (got ${JSON.stringify(value)})`)
  }
  if (read === undefined || !Number.isSafeInteger(read.amount) || read.amount < min || read.amount > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `from ${min} to ${max}`
    throw invalidOption(option, `must be a duration: ${unit} as an integer ${range}, or a string such as '${rule.example}' (got ${JSON.stringify(value)})`)
  }
  const { amount, plain } = read
  if (plain && rule.plausibleNumber !== undefined && amount > rule.plausibleNumber) {
    const meant = formatDuration(amount * 1000)
    throw invalidOption(option, `is ${amount} seconds (${meant}), more than a number of seconds here plausibly means (at most ${rule.plausibleNumber}): ` +
      `if that is milliseconds, write '${formatDuration(amount)}'; if you do mean ${meant}, write it as the string '${meant}'`)
  }
  return amount
}

/** The amount in units of `perUnit` ms, and whether it was written without a unit; undefined when it is no duration. */
function readDuration (value: unknown, perUnit: number): { amount: number, plain: boolean } | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? { amount: value, plain: true } : undefined
  if (typeof value !== 'string') return undefined
  const match = durationPattern.exec(value.trim())
  if (match === null) return undefined
  const ms = match[2] === undefined ? perUnit : MS_PER[match[2].toLowerCase()]
  if (ms === undefined) return undefined
  const exact = Number(match[1]) * ms / perUnit
  // '1.1s' is 1100.0000000000002 ms in binary floating point: take what was meant.
  const rounded = Math.round(exact)
  return { amount: Math.abs(exact - rounded) < 1e-6 ? rounded : exact, plain: match[2] === undefined }
}

const FORMAT_UNITS: Array<[string, number]> = [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000], ['ms', 1]]

/** A duration in ms as the shortest exact string, e.g. 86400000 → `'1d'`, 90000 → `'90s'`. */
export function formatDuration (ms: number): string {
  for (const [name, size] of FORMAT_UNITS) {
    if (ms >= size && ms % size === 0) return `${ms / size}${name}`
  }
  return `${ms}ms`
}
