// The nearest known name to a misspelled one, for error messages. A typo in a
// security option must fail loudly, and the message should say what was meant.

// Shorter prefixes (`-x`, `ma`) say too little to name what was meant.
const MIN_ABBREVIATION = 3

function editDistance (a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    previous = current
  }
  return previous[b.length]!
}

/**
 * The known name closest to `name`: a case-insensitive match first, else the one
 * fewest edits away when that is at most a third of the longer name's length (at
 * least 2), else the one name it abbreviates (`aud` for `audience`), else undefined:
 * an unrelated name is not "meant" as anything.
 */
export function closestName (name: string, known: readonly string[]): string | undefined {
  const lower = name.toLowerCase()
  const sameLetters = known.find((k) => k.toLowerCase() === lower)
  if (sameLetters !== undefined) return sameLetters
  let best: string | undefined
  let bestDistance = Infinity
  for (const candidate of known) {
    const distance = editDistance(lower, candidate.toLowerCase())
    const allowed = Math.max(2, Math.floor(Math.max(name.length, candidate.length) / 3))
    if (distance <= allowed && distance < bestDistance) {
      best = candidate
      bestDistance = distance
    }
  }
  if (best !== undefined || lower.length < MIN_ABBREVIATION) return best
  const abbreviated = known.filter((k) => k.toLowerCase().startsWith(lower))
  return abbreviated.length === 1 ? abbreviated[0] : undefined
}
