import { invalidOption } from './errors.js'

const units: Record<string, number> = {
  s: 1, sec: 1, secs: 1, second: 1, seconds: 1,
  m: 60, min: 60, mins: 60, minute: 60, minutes: 60,
  h: 3600, hr: 3600, hrs: 3600, hour: 3600, hours: 3600,
  d: 86400, day: 86400, days: 86400,
  w: 604800, week: 604800, weeks: 604800,
}

const durationPattern = /^(\d+(?:\.\d+)?)\s*([a-z]+)?$/i

/** A duration in seconds: a non-negative number of seconds, or a string such as `'15m'`, `'1d'`, `'90 s'`. */
export type Duration = number | string

/** Parses a {@link Duration} into whole seconds; throws an option error naming `option`. */
export function parseDuration (value: Duration, option: string): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) throw invalidOption(option, 'must be a non-negative number of seconds')
    return Math.floor(value)
  }
  if (typeof value === 'string') {
    const match = durationPattern.exec(value.trim())
    if (match) {
      const unit = match[2] === undefined ? 1 : units[match[2].toLowerCase()]
      if (unit !== undefined) return Math.floor(Number(match[1]) * unit)
    }
  }
  throw invalidOption(option, `must be seconds or a duration such as '15m', '1h', '1d' (got ${JSON.stringify(value)})`)
}
