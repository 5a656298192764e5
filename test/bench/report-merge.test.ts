// docs/benchmarks.md is rewritten by `npm run bench`: a run of some measures must keep the others' figures and the
// sections written by hand.
import t from 'tap'
import { mergeReport } from '../../bench/report-merge.js'

const previous = [
  '# Benchmarks', '', 'Measured on the old machine.', '',
  '## Method', '', '| row | server (one core) | CPU µs per request | req/s |', '|---|---|---:|---:|',
  '| bare | bare Fastify | 46.0 (39.0–56.1) | 19047 |', '| miss-es256 | plugin, ES256 | 285.7 (250.1–320.2) | 3504 |', '',
  '## Against the targets', '',
  '- Cache hit adds **10.8 µs** per request over bare Fastify (56.8 vs 46.0): target ≤ 3 µs **missed**.',
  '- ES256 miss: 285.7 µs vs bare jose 229.9 µs — **0.80** of bare jose\'s throughput per core.',
  '- With the revocation log: Redis p50 **1.69 ms**,', '  PostgreSQL p50 **5.32 ms**.', '',
  '## Reading this run (written by hand from the run above)', '', 'A reading.', '',
].join('\n')

const fresh = [
  '# Benchmarks', '', 'Measured on the new machine.', '',
  '## Method', '', '| row | server (one core) | CPU µs per request | req/s |', '|---|---|---:|---:|',
  '| bare | bare Fastify | 40.0 (38.0–41.0) | 20000 |', '',
  '## Against the targets', '',
  '- Cache hit adds **2.5 µs** per request over bare Fastify (42.5 vs 40.0): target ≤ 3 µs **met**.', '',
].join('\n')

t.test('a run replaces what it measured and keeps the rest, marked as an earlier run', async (t) => {
  const merged = mergeReport(fresh, previous)
  t.match(merged, 'Measured on the new machine.')
  t.match(merged, '| bare | bare Fastify | 40.0 (38.0–41.0) | 20000 |')
  t.notMatch(merged, '46.0 (39.0–56.1)', 'a re-measured row is replaced')
  t.match(merged, '| miss-es256 | plugin, ES256 *(an earlier run)* | 285.7 (250.1–320.2) | 3504 |')
  t.match(merged, '**2.5 µs**')
  t.notMatch(merged, '**10.8 µs**', 'a re-measured target line is replaced')
  t.match(merged, "- ES256 miss: 285.7 µs vs bare jose 229.9 µs — **0.80** of bare jose's throughput per core. *(an earlier run)*")
  t.match(merged, '- With the revocation log: Redis p50 **1.69 ms**,\n  PostgreSQL p50 **5.32 ms**. *(an earlier run)*', 'a bullet keeps its continuation lines')
  t.match(merged, '## Reading this run (written by hand from the run above)\n\nA reading.', 'a section written by hand stays')
  t.equal(mergeReport(merged, merged), merged, 'merging a report into itself changes nothing')
})

t.test('with no file before, the run is the report', async (t) => {
  t.equal(mergeReport(fresh, null), fresh)
})
