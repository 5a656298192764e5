import { invalidOption } from '../errors.js'

/** One string or several, as options take them: a non-empty list of non-empty strings, without repeats. */
export function stringList (value: unknown, name: string, required?: true): string[]
export function stringList (value: unknown, name: string, required: boolean): string[] | undefined
export function stringList (value: unknown, name: string, required = true): string[] | undefined {
  if (value === undefined || value === null) {
    if (required) throw invalidOption(name, 'is required (a string or an array of strings)')
    return undefined
  }
  const list = Array.isArray(value) ? value : [value]
  if (list.length === 0 || list.some((v) => typeof v !== 'string' || v.length === 0)) {
    throw invalidOption(name, 'must be a non-empty string or a non-empty array of non-empty strings')
  }
  return [...new Set(list as string[])]
}

/** An integer ≥ 1, or `fallback` when not given. */
export function positiveInteger (value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback
  if (!Number.isInteger(value) || (value as number) < 1) throw invalidOption(name, 'must be an integer ≥ 1')
  return value as number
}
