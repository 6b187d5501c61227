// The snapshot rows of `npm run bench` (imported by bench.mjs): forking a sandbox whose memory
// holds 64 MiB against one holding 64 KiB and against what a V8 user must do (a new
// `WebAssembly.Instance` plus copying the bytes in); `reset()` after one page written against a
// bare call plus writing that page; the resident memory of 1,000 forks; a pre-initialized module
// against instantiating and running its `init`.
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

import { formatTime, measureInterleaved, measureRounds } from './harness.mjs'

const require = createRequire(import.meta.url)
const { Module, Sandbox } = require('wasm-memory-sandbox')
const root = fileURLToPath(new URL('..', import.meta.url))

const PAGE = 4096
const MIB = 1 << 20

// One module for every row: a memory that grows to 64 MiB, and an export to call.
const text = `(module (memory (export "memory") 1 1024)
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "touch") (param i32) (i32.store8 (local.get 0) (i32.const 1))))`

/** The module as binary, for V8 (which takes no text): binaryen, as the specs use. */
async function binary() {
  const { default: binaryen } = await import('binaryen')
  const parsed = binaryen.parseText(text)
  try {
    return parsed.emitBinary()
  } finally {
    parsed.dispose()
  }
}

/** A sandbox with `bytes` of memory, every page written (so none is a hole of zeros). */
function written(module, bytes) {
  const sandbox = new Sandbox(module)
  const pages = bytes / 65536
  if (pages > 1) sandbox.call('grow', pages - 1)
  const view = sandbox.memory()
  for (let offset = 0; offset < view.length; offset += PAGE) view[offset] = 1 + ((offset / PAGE) & 0x7f)
  return sandbox
}

export async function snapshotRows({ row, rows, batch, quick }) {
  let sink = 0
  const module = new Module(text)
  const big = written(module, 64 * MIB)
  const small = written(module, 64 * 1024)
  const bigSnapshot = big.snapshot()
  const smallSnapshot = small.snapshot()
  const bigBytes = Buffer.from(big.memory())
  big.dispose()
  small.dispose()

  // 1. Forks: the cost follows the module, not the memory's size.
  const { forkBig, forkSmall } = measureInterleaved(
    {
      forkBig: () => bigSnapshot.instantiate().dispose(),
      forkSmall: () => smallSnapshot.instantiate().dispose(),
    },
    { batch: batch(500), samples: 5, warmup: 1, rounds: quick ? 3 : 7 },
  )
  const v8Module = new WebAssembly.Module(await binary())
  const { v8Copy } = measureRounds(
    {
      v8Copy: () => {
        const instance = new WebAssembly.Instance(v8Module)
        instance.exports.memory.grow(1023)
        new Uint8Array(instance.exports.memory.buffer).set(bigBytes)
        sink ^= instance.exports.memory.buffer.byteLength
      },
    },
    { batch: batch(20), rounds: quick ? 3 : 5 },
  )
  row({
    operation: 'fork of a 64 MiB snapshot (snapshot.instantiate() + dispose())',
    ours: forkBig,
    baseline: forkSmall,
    against: 'fork of a 64 KiB snapshot',
    kind: 'slower',
    target: 2,
  })
  row({
    operation: 'fork of a 64 MiB snapshot',
    ours: forkBig,
    baseline: v8Copy,
    against: 'V8: new WebAssembly.Instance + copying the 64 MiB in',
    kind: 'faster',
    target: 100,
  })

  // 2. reset() after one page written, against a bare call plus writing that page, each in a fork
  // of its own (the bare calls' pages stay written, as they would without reset()).
  const sandbox = bigSnapshot.instantiate()
  const bare = bigSnapshot.instantiate()
  const view = sandbox.memory()
  const bareView = bare.memory()
  const page = Buffer.alloc(PAGE, 7)
  let next = 0
  const { writeReset, writeCall } = measureInterleaved(
    {
      writeReset: () => {
        page.copy(view, (next = (next + 1) & 0x3fff) * PAGE)
        sandbox.reset()
      },
      writeCall: () => {
        page.copy(bareView, (next = (next + 1) & 0x3fff) * PAGE)
        bare.call('touch', next)
      },
    },
    { batch: batch(2_000), samples: 5, warmup: 1, rounds: quick ? 3 : 7 },
  )
  row({
    operation: 'one page written + reset(), 64 MiB memory',
    ours: writeReset,
    baseline: writeCall,
    against: "one page written + a bare sandbox.call('touch', x)",
    kind: 'slower',
    target: 2,
  })
  sandbox.dispose()
  bare.dispose()

  // 3. 1,000 forks that each write one page: resident memory, in a process of its own.
  const child = spawnSync(process.execPath, [fileURLToPath(new URL('forks-child.mjs', import.meta.url))], {
    encoding: 'utf8',
  })
  if (child.status !== 0) throw new Error(`forks-child.mjs failed: ${child.stderr}`)
  const { grewBytes: grew } = JSON.parse(child.stdout.trim().split('\n').pop())
  const forksMet = grew <= 16 * MIB
  rows.push({
    operation: '1,000 forks of a 64 MiB snapshot, one page written in each',
    density: true,
    met: forksMet,
    text: `+${(grew / MIB).toFixed(1)} MiB resident`,
    against: 'one copy of the memory is 64 MiB (1,000 copies: 62.5 GiB)',
    targetText: '<= 16 MiB',
  })
  console.error(`${forksMet ? 'met ' : 'MISS'} ${rows.at(-1).operation}: ${rows.at(-1).text}`)
  bigSnapshot.dispose()
  smallSnapshot.dispose()

  // 4. A pre-initialized module whose init takes about 100 ms, against instantiating and running
  // init. The work loop's length is calibrated here so that init takes 100 ms on this machine.
  const guest = readFileSync(`${root}__test__/guests/build/preinit.rust.wasm`)
  const preinitModule = new Module(guest)
  let iterations = 1_000_000
  const initImports = () => ({ env: { seed: () => 12345, work_iterations: () => iterations } })
  const timeInit = () => {
    const sandbox = new Sandbox(preinitModule, { imports: initImports() })
    const started = process.hrtime.bigint()
    sandbox.call('init')
    const elapsed = Number(process.hrtime.bigint() - started) / 1e6
    sandbox.dispose()
    return elapsed
  }
  // Twice: the first run also compiles and warms up.
  for (let pass = 0; pass < 2; pass++) iterations = Math.max(1, Math.round((iterations * 100) / timeInit()))
  const initMs = timeInit()
  const preinitialized = await Module.preinitialize(guest, { init: 'init', imports: initImports() })
  const { plainInit, fromPreinit } = measureRounds(
    {
      plainInit: () => {
        const sandbox = new Sandbox(preinitModule, { imports: initImports() })
        sandbox.call('init')
        sink ^= sandbox.call('initialized')
        sandbox.dispose()
      },
      fromPreinit: () => {
        const sandbox = new Sandbox(preinitialized, { imports: initImports() })
        sink ^= sandbox.call('initialized')
        sandbox.dispose()
      },
    },
    { batch: quick ? 1 : 3, rounds: quick ? 3 : 5, warmup: 1 },
  )
  row({
    operation: `instantiating a pre-initialized module (its init takes ${initMs.toFixed(0)} ms)`,
    ours: fromPreinit,
    baseline: plainInit,
    against: 'instantiating the module and running init',
    kind: 'faster',
    target: 100,
  })
  console.error(
    `snapshots: fork 64 MiB ${formatTime(forkBig)}, 64 KiB ${formatTime(forkSmall)}, V8 copy ${formatTime(v8Copy)}`,
  )
  return sink
}
