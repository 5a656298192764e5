import { invalidOption } from '../errors.js'

/** A string or a non-empty array of strings, as a list; an empty string anywhere is refused. */
export function stringList (value: unknown, name: string): string[] {
  const list = Array.isArray(value) ? value : [value]
  if (list.length === 0 || list.some((v) => typeof v !== 'string' || v.length === 0)) throw invalidOption(name, 'must be a non-empty string or array of non-empty strings')
  return list as string[]
}

/** An integer ≥ 1, or `fallback` when not given. */
export function positiveInteger (value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback
  if (!Number.isInteger(value) || (value as number) < 1) throw invalidOption(name, 'must be an integer ≥ 1')
  return value as number
}
