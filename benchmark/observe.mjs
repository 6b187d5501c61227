// `npm run bench` for seeing inside a guest: what the profiler at 1 kHz costs SHA-256 over 64 MiB
// (a row; target: at most 10% slower), and what `metrics: true` adds to a hot call (a figure: the
// option is asked for, and has no target).
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

import { measureInterleaved } from './harness.mjs'

const require = createRequire(import.meta.url)
const { Module, Sandbox } = require('wasm-memory-sandbox')
const root = fileURLToPath(new URL('..', import.meta.url))

const identityText = '(module (func (export "id") (param i32) (result i32) local.get 0))'

/** Median of `values`. */
function median(values) {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]
}

/**
 * Adds the rows; returns a line of figures for README (the per-call cost of timing, the profile's
 * sample count).
 */
export async function observeRows({ row, batch, quick }) {
  let sink = 0
  // A hot call of a timed sandbox (two reads of the thread's CPU clock, two of the wall clock)
  // against the same call of an untimed one.
  const plain = new Sandbox(identityText)
  const timed = new Sandbox(identityText, { metrics: true })
  const { plainCall, timedCall } = measureInterleaved(
    {
      plainCall: (index) => (sink ^= plain.call('id', index)),
      timedCall: (index) => (sink ^= timed.call('id', index)),
    },
    { batch: batch(20_000), samples: 9, warmup: 2, rounds: quick ? 3 : 5 },
  )
  // SHA-256 of 64 MiB, profiled at 1 kHz and not, in alternating rounds.
  const shaModule = new Module(readFileSync(`${root}__test__/guests/build/sha256.as.wasm`))
  const imports = {
    env: {
      abort: () => {
        throw new Error('the SHA-256 guest aborted')
      },
    },
  }
  const input = Buffer.alloc(64 * 1024 * 1024)
  for (let index = 0; index < input.length; index++) input[index] = (index * 7 + 3) & 0xff
  const prepare = () => {
    const sandbox = new Sandbox(shaModule, { imports })
    const pointer = sandbox.call('alloc', input.length)
    sandbox.memory().set(input, pointer)
    return { sandbox, pointer }
  }
  const unprofiled = prepare()
  const profiled = prepare()
  const times = { unprofiled: [], profiled: [] }
  let samples = 0
  for (let round = 0; round < (quick ? 2 : 5); round++) {
    for (const [name, { sandbox, pointer }] of Object.entries({ unprofiled, profiled })) {
      if (name === 'profiled') sandbox.startProfiling({ intervalUs: 1000 })
      const started = process.hrtime.bigint()
      sink ^= sandbox.call('sha256', pointer, input.length)
      times[name].push(Number(process.hrtime.bigint() - started))
      if (name === 'profiled') samples = sandbox.stopProfiling().samples.length
    }
  }
  row({
    operation: 'SHA-256 of 64 MiB, profiled at 1 kHz',
    ours: median(times.profiled),
    baseline: median(times.unprofiled),
    against: 'the same run, not profiled',
    kind: 'slower',
    target: 1.1,
  })
  unprofiled.sandbox.dispose()
  profiled.sandbox.dispose()
  return {
    sink,
    line: `Seeing inside a guest: timing a hot call (metrics: true) adds ${(timedCall - plainCall).toFixed(0)} ns to it (two reads each of the thread's CPU clock and the wall clock); the profiled SHA-256 of 64 MiB took ${samples} samples.`,
  }
}
