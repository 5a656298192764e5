// When the next sync runs. Kept apart, small and pure so the package-wide breaker can
// replace it: the interval, jittered so that instances started together drift apart,
// and stretched while Auth0 keeps failing so an outage is not met with more calls.

const JITTER = 0.1
const MAX_BACKOFF_MS = 300_000

/** ms until the next sync after `failures` consecutive failed ones. */
export function nextSyncDelay (interval: number, failures: number, random: () => number = Math.random): number {
  const stretched = failures === 0 ? interval : Math.min(interval * 2 ** failures, Math.max(interval, MAX_BACKOFF_MS))
  return Math.round(stretched * (1 - JITTER + 2 * JITTER * random()))
}

/** Resolves after `ms`, or at once when `signal` aborts; the timer never holds the process open. */
export function pause (ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve()
    const done = () => {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    timer.unref?.()
    signal.addEventListener('abort', done, { once: true })
  })
}
