// A fresh process for the fork density row of `npm run bench` (benchmark/snapshots.mjs): makes a
// snapshot of 64 MiB of written memory, then 1,000 forks of it that each write one page, and
// prints `{ grewBytes }`, the growth of the resident set (VmRSS) over the forks, as JSON. Its own
// process, so that nothing else the benchmark allocated or frees is counted.
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const { Sandbox } = require('wasm-memory-sandbox')

const PAGE = 4096
const residentBytes = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) * 1024

const parent = new Sandbox('(module (memory (export "memory") 1 1024))')
parent.grow(1023)
const view = parent.memory()
for (let offset = 0; offset < view.length; offset += PAGE) view[offset] = 1 + ((offset / PAGE) & 0x7f)
const snapshot = parent.snapshot()
parent.dispose()
// One fork first, so that what every fork shares (code, the engine's first allocations) is
// resident before the measurement starts.
snapshot.instantiate().dispose()
const before = residentBytes()
const forks = []
for (let index = 0; index < 1000; index++) {
  const fork = snapshot.instantiate()
  fork.memory()[index * PAGE + 1] = 1
  forks.push(fork)
}
const grewBytes = residentBytes() - before
if (forks[999].memory()[999 * PAGE + 1] !== 1 || forks[0].memory()[999 * PAGE + 1] !== 0)
  throw new Error('forks mixed up')
console.log(JSON.stringify({ grewBytes }))
