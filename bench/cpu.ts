// CPU time of another process, from /proc/<pid>/stat: utime + stime (fields 14 and 15,
// every thread of the process: JS, GC, libuv), in clock ticks of `getconf CLK_TCK`.
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'

let ticksPerSecond: number | undefined

/** True where /proc/<pid>/stat can be read (Linux). */
export const procAvailable = existsSync(`/proc/${process.pid}/stat`)

/** The process's CPU time so far, in µs; NaN where /proc is missing. */
export function cpuMicros (pid: number): number {
  if (!procAvailable) return NaN
  ticksPerSecond ??= Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // The command name (field 2) may hold spaces or parentheses: count from the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 1e6 / ticksPerSecond
}
