// A hot `call('id', x)` of this build against another build of the package, both loaded in this
// process, in interleaved rounds: how README measured what counting calls (stats()) costs a hot
// call. `node benchmark/against-build.mjs <directory of the other build's package>` (for example a
// `git worktree` of an older commit, built with `node scripts/build.mjs`).
import { createRequire } from 'node:module'
import { resolve } from 'node:path'

import { formatTime, measureInterleaved } from './harness.mjs'

const other = process.argv[2]
if (!other) {
  console.error('usage: node benchmark/against-build.mjs <directory of the other build>')
  process.exit(2)
}
const require = createRequire(import.meta.url)
const before = require(resolve(other))
const after = require('wasm-memory-sandbox')
const identityText = '(module (func (export "id") (param i32) (result i32) local.get 0))'
const sandboxes = {
  before: new before.Sandbox(identityText),
  after: new after.Sandbox(identityText),
  beforeTimed: new before.Sandbox(identityText, { timeoutMs: 1000 }),
  afterTimed: new after.Sandbox(identityText, { timeoutMs: 1000 }),
}
let sink = 0
const times = measureInterleaved(
  Object.fromEntries(
    Object.entries(sandboxes).map(([name, sandbox]) => [name, (index) => (sink ^= sandbox.call('id', index))]),
  ),
  { batch: 100_000, samples: 9, warmup: 2, rounds: 7 },
)
for (const [name, time] of Object.entries(times)) console.log(`${name}: ${formatTime(time)}`)
console.log(`this build / the other: ${(times.after / times.before).toFixed(3)}x the time`)
console.log(`with timeoutMs: ${(times.afterTimed / times.beforeTimed).toFixed(3)}x the time`)
if (sink === 0.5) console.log(sink) // never true: keeps every result observably used
