// `npm run bench`: this package against the Node-API floors and against V8 running the same
// guest bytes, side by side in one process. Prints a table and, with --write, puts it (and an SVG
// chart of the ratios) into README.md and benchmark/ratios.svg.
//
// --runs N (default 3 with --write): the whole benchmark runs N times, each in a fresh process
// (the first N - 1 as children, which only record their rows); the table gives the last run's
// figures with the range of every ratio over the N runs.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import v8Flags from 'node:v8'
import vm from 'node:vm'
import { WASI } from 'node:wasi'
import { Worker } from 'node:worker_threads'
import * as prettier from 'prettier'

import { componentRows } from './components.mjs'
import { httpRows } from './http.mjs'
import { observeRows } from './observe.mjs'
import { snapshotRows } from './snapshots.mjs'
import { formatTime, measure, measureBatches, measureInterleaved, measureRounds } from './harness.mjs'

const require = createRequire(import.meta.url)
const binding = require('wasm-memory-sandbox')
const { BufferSandbox, Module, Sandbox, bufferGuestWasm } = binding
const root = fileURLToPath(new URL('..', import.meta.url))
const quick = process.argv.includes('--quick')
const writing = process.argv.includes('--write')
const runsIndex = process.argv.indexOf('--runs')
const runs = runsIndex > 0 ? Number(process.argv[runsIndex + 1]) : writing ? 3 : 1
/** Where a child run leaves its rows for the run that writes the table (set by that run). */
const recordPath = process.env.WASM_MEMORY_SANDBOX_BENCH_RECORD
const earlierRuns = []
if (!recordPath && runs > 1) {
  const recordDirectory = mkdtempSync(join(os.tmpdir(), 'wasm-memory-sandbox-bench-'))
  try {
    for (let run = 1; run < runs; run++) {
      console.error(`== run ${run} of ${runs} (a child process)`)
      const file = join(recordDirectory, `run-${run}.json`)
      const child = spawnSync(process.execPath, [fileURLToPath(import.meta.url), ...(quick ? ['--quick'] : [])], {
        stdio: ['ignore', 'ignore', 'inherit'],
        env: { ...process.env, WASM_MEMORY_SANDBOX_BENCH_RECORD: file },
      })
      if (child.status !== 0) throw new Error(`benchmark run ${run} failed (exit ${child.status})`)
      earlierRuns.push(JSON.parse(readFileSync(file, 'utf8')))
    }
  } finally {
    rmSync(recordDirectory, { recursive: true, force: true })
  }
  console.error(`== run ${runs} of ${runs}`)
}
/** Load average per core above which the table is not written: its figures would be the load's. */
const MAX_LOAD_PER_CORE = 1.5
const cores = os.cpus().length
const loadAtStart = os.loadavg()[0]
console.error(`load average at start: ${loadAtStart.toFixed(2)} (${cores} cores)`)
const scale = quick ? 0.2 : 1
const batch = (count) => Math.max(10, Math.round(count * scale))

const guestBytes = bufferGuestWasm()
const v8Module = new WebAssembly.Module(guestBytes)
const v8Instance = new WebAssembly.Instance(v8Module)
const identityText = '(module (func (export "id") (param i32) (result i32) local.get 0))'
/** The identity module as binary, for V8 (hand-assembled: V8 takes no text). */
function identityBinary() {
  return new Uint8Array([
    0, 97, 115, 109, 1, 0, 0, 0, 1, 6, 1, 96, 1, 127, 1, 127, 3, 2, 1, 0, 7, 6, 1, 2, 105, 100, 0, 0, 10, 6, 1, 4, 0,
    32, 0, 11,
  ])
}
// Results are consumed with `^=`: int32 arithmetic that keeps `sink` a small integer. A growing
// `+=` total passes 2**31 within the first batches, and from then on every iteration allocates a
// heap number for it, which would be timed as part of the operation.
let sink = 0
// Timing of the nanosecond-scale rows: ratios of two calls, each side measured in every round.
const callTiming = { batch: batch(100_000), samples: 9, warmup: 2, rounds: quick ? 3 : 7 }

const rows = []
function row({ operation, ours, baseline, against, kind, target }) {
  // kind 'slower': ours / baseline must stay at or under target; 'faster': baseline / ours at or over.
  const ratio = kind === 'slower' ? ours / baseline : baseline / ours
  const met = kind === 'slower' ? ratio <= target : ratio >= target
  rows.push({ operation, ours, baseline, against, kind, target, ratio, met })
  const shown = kind === 'slower' ? `${ratio.toFixed(2)}x the time` : `${ratio.toFixed(2)}x faster`
  console.error(`${met ? 'met ' : 'MISS'} ${operation}: ${formatTime(ours)} vs ${formatTime(baseline)} (${shown})`)
}

// 1. Calls against the empty napi-rs function, measured in interleaved rounds.
const buffer = new BufferSandbox()
const identity = new Sandbox(identityText)
const v8Identity = new WebAssembly.Instance(new WebAssembly.Module(identityBinary())).exports
const { napiFloor, rawFloor, store, read, call, v8Store, v8Read, v8IdCall } = measureInterleaved(
  {
    napiFloor: () => binding.__napiFloor(),
    rawFloor: () => binding.__rawFloor(),
    store: (index) => buffer.storeValueInWasmMemoryBufferIndexZero(index & 0xff),
    read: () => (sink ^= buffer.readWasmMemoryBufferAndReturnIndexOne()),
    call: (index) => (sink ^= identity.call('id', index)),
    v8Store: (index) => v8Instance.exports.storeValueInWasmMemoryBufferIndexZero(index & 0xff),
    v8Read: () => (sink ^= v8Instance.exports.readWasmMemoryBufferAndReturnIndexOne()),
    v8IdCall: (index) => (sink ^= v8Identity.id(index)),
  },
  callTiming,
)
row({
  operation: 'storeValueInWasmMemoryBufferIndexZero(x)',
  ours: store,
  baseline: napiFloor,
  against: 'empty napi-rs function',
  kind: 'slower',
  target: 2,
})
row({
  operation: 'readWasmMemoryBufferAndReturnIndexOne()',
  ours: read,
  baseline: napiFloor,
  against: 'empty napi-rs function',
  kind: 'slower',
  target: 2,
})
row({
  operation: "sandbox.call('id', x), an (i32) -> i32 export",
  ours: call,
  baseline: napiFloor,
  against: 'empty napi-rs function',
  kind: 'slower',
  target: 2,
})
// The same calls against V8 calling the same export from JS (no boundary to cross): issue 21's
// targets, at most 12x (about 3.5x the raw Node-API floor).
for (const [operation, ours, baseline] of [
  ['storeValueInWasmMemoryBufferIndexZero(x)', store, v8Store],
  ['readWasmMemoryBufferAndReturnIndexOne()', read, v8Read],
  ["sandbox.call('id', x)", call, v8IdCall],
]) {
  row({ operation, ours, baseline, against: 'V8 calling the same export', kind: 'slower', target: 12 })
}

// 2. memory() again, against a fresh Uint8Array over V8's memory.buffer.
const { memoryAgain, v8View } = measureInterleaved(
  {
    memoryAgain: () => (sink ^= buffer.memory().length),
    v8View: () => (sink ^= new Uint8Array(v8Instance.exports.memory.buffer).length),
  },
  callTiming,
)
row({
  operation: 'memory() again, no growth',
  ours: memoryAgain,
  baseline: v8View,
  against: 'new Uint8Array(memory.buffer) in V8',
  kind: 'slower',
  target: 2,
})

// 3. Instantiation.
const { instantiate, v8Instantiate } = measureInterleaved(
  {
    instantiate: () => new BufferSandbox().dispose(),
    v8Instantiate: () => (sink ^= new WebAssembly.Instance(v8Module).exports.memory.buffer.byteLength),
  },
  { batch: batch(2_000), samples: 5, warmup: 1, rounds: quick ? 3 : 7 },
)
row({
  operation: 'new BufferSandbox() + dispose()',
  ours: instantiate,
  baseline: v8Instantiate,
  against: 'new WebAssembly.Instance(module) in V8',
  kind: 'faster',
  target: 10,
})

// 4. 64 MiB in and out through a view.
const bytes = 64 * 1024 * 1024
const source = Buffer.alloc(bytes, 0x5a)
const destination = Buffer.alloc(bytes)
const big = new Sandbox('(module (memory (export "memory") 1025))')
const bigView = big.memory()
const v8Big = new WebAssembly.Memory({ initial: 1025 })
const v8BigView = new Uint8Array(v8Big.buffer)
const { copyOurs, copyV8 } = measureInterleaved(
  {
    copyOurs: () => {
      bigView.set(source)
      destination.set(bigView.subarray(0, bytes))
    },
    copyV8: () => {
      v8BigView.set(source)
      destination.set(v8BigView.subarray(0, bytes))
    },
  },
  { batch: 2, samples: 3, warmup: 1, rounds: quick ? 3 : 11 },
)
row({
  operation: 'copy 64 MiB in and out through a view',
  ours: copyOurs,
  baseline: copyV8,
  against: "the same through V8's memory.buffer",
  kind: 'faster',
  target: 0.95,
})
big.dispose()

// 5. The cost of a time limit.
const timed = new Sandbox(identityText, { timeoutMs: 1000 })
const { timedCall, untimedCall } = measureInterleaved(
  {
    timedCall: (index) => (sink ^= timed.call('id', index)),
    untimedCall: (index) => (sink ^= identity.call('id', index)),
  },
  callTiming,
)
row({
  operation: "sandbox.call('id', x) with timeoutMs",
  ours: timedCall,
  baseline: untimedCall,
  against: 'the same call with no limit',
  kind: 'slower',
  target: 1.2,
})

// 6. A time-limited call, against V8 wasm in a worker (the only way Node can stop a running guest).
const shared = new Int32Array(new SharedArrayBuffer(12))
const worker = new Worker(
  `const { workerData: { bytes, shared } } = require('node:worker_threads')
   const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes))
   for (;;) {
     Atomics.wait(shared, 0, 0)
     shared[2] = instance.exports.storeValueInWasmMemoryBufferIndexZero(shared[1] & 0xff) ?? shared[1]
     Atomics.store(shared, 0, 0)
     Atomics.notify(shared, 0)
   }`,
  { eval: true, workerData: { bytes: guestBytes, shared } },
)
const workerRoundTrip = (value) => {
  shared[1] = value
  Atomics.store(shared, 0, 1)
  Atomics.notify(shared, 0)
  // A real caller would pass its time limit here and terminate the worker on timeout.
  Atomics.wait(shared, 0, 1, 1000)
}
workerRoundTrip(0)
const workerCall = measure((index) => workerRoundTrip(index), { batch: batch(20_000), samples: 15 })
row({
  operation: 'a call with a time limit',
  ours: timedCall,
  baseline: workerCall,
  against: 'V8 wasm in a worker_thread, one synchronous round trip',
  kind: 'faster',
  target: 20,
})
await worker.terminate()

// 7. WASI commands against node:wasi, both from a compiled module: the tutorial's buffer guest as
// a WASI command (Rust, wasm32-wasip1, prints two lines), instantiated and run; then a
// compute-heavy one (a sieve and a hash, ~150 ms). Our output is captured in memory (the
// default); node:wasi's goes to /dev/null. Garbage is collected between batches, outside the
// timing, for both sides alike.
v8Flags.setFlagsFromString('--expose-gc')
const collectGarbage = vm.runInNewContext('gc')
const builtGuest = (name) => fileURLToPath(new URL(`../__test__/guests/build/${name}`, import.meta.url))
const devNull = openSync(os.devNull, 'w')
function wasiPair(name, args) {
  const path = builtGuest(name)
  const ours = Module.fromFile(path)
  const v8Module = new WebAssembly.Module(readFileSync(path))
  return {
    ours: () => (sink ^= new Sandbox(ours, { wasi: { args } }).run().stdout.length),
    node: () => {
      const wasi = new WASI({ version: 'preview1', args, stdout: devNull, returnOnExit: true })
      sink ^= wasi.start(new WebAssembly.Instance(v8Module, wasi.getImportObject()))
    },
  }
}
const command = wasiPair('buffer-command.wasip1.wasm', ['buffer-command'])
const small = measureRounds(command, { batch: batch(40), rounds: quick ? 5 : 15, between: collectGarbage })
row({
  operation: 'new Sandbox(wasm, { wasi }) + run(), a small WASI command',
  ours: small.ours,
  baseline: small.node,
  against: 'node:wasi: new WASI() + new WebAssembly.Instance() + start()',
  kind: 'faster',
  target: 2,
})
const compute = wasiPair('compute.wasip1.wasm', ['compute'])
const heavy = measureRounds(compute, { batch: 1, rounds: quick ? 3 : 7, between: collectGarbage })
row({
  operation: 'a compute-heavy WASI command (sieve + hash)',
  ours: heavy.ours,
  baseline: heavy.node,
  against: 'the same in node:wasi',
  kind: 'slower',
  target: 1.05,
})

// 7b. Async calls: the round trip of callAsync on a trivial export, against V8 wasm in a worker
// with one postMessage round trip (what Node offers to keep a guest off the event loop).
/** Times `await call(index)` in batches: what one async round trip costs. */
const measureRoundTrips = (call) =>
  measureBatches(
    async (count) => {
      const started = process.hrtime.bigint()
      for (let index = 0; index < count; index++) sink ^= await call(index)
      return Number(process.hrtime.bigint() - started)
    },
    { batch: batch(20_000), samples: 9 },
  )
const asyncIdentity = new Sandbox(identityText)
const asyncCall = await measureRoundTrips((index) => asyncIdentity.callAsync('id', index))
// The same export in a sandbox with a JS import (one the export never calls): its async calls
// cannot start on the JS thread (an import may need JS), so they take the pool's round trip.
const pooledIdentity = new Sandbox(
  '(module (import "env" "f" (func)) (func (export "id") (param i32) (result i32) local.get 0))',
  { imports: { env: { f() {} } } },
)
const pooledAsyncCall = await measureRoundTrips((index) => pooledIdentity.callAsync('id', index))
const messenger = new Worker(
  `const { parentPort, workerData } = require('node:worker_threads')
   const instance = new WebAssembly.Instance(new WebAssembly.Module(workerData))
   parentPort.on('message', (value) => parentPort.postMessage(instance.exports.id(value)))`,
  { eval: true, workerData: identityBinary() },
)
const messageRoundTrip = (value) =>
  new Promise((resolve) => {
    messenger.once('message', resolve)
    messenger.postMessage(value)
  })
await messageRoundTrip(0)
const messageCall = await measureRoundTrips(messageRoundTrip)
await messenger.terminate()
row({
  operation: "await sandbox.callAsync('id', x)",
  ours: asyncCall,
  baseline: messageCall,
  against: 'V8 wasm in a worker_thread, one postMessage round trip',
  kind: 'faster',
  target: 6,
})
row({
  operation: "await sandbox.callAsync('id', x) on the pool (a sandbox with a JS import)",
  ours: pooledAsyncCall,
  baseline: messageCall,
  against: 'V8 wasm in a worker_thread, one postMessage round trip',
  kind: 'faster',
  target: 6,
})
row({
  operation: "await sandbox.callAsync('id', x), against a budget",
  ours: asyncCall,
  baseline: 1500,
  against: 'a budget of 1.5 us per round trip',
  kind: 'slower',
  target: 1,
})

// 7b'. An idle process holding limited sandboxes: no thread may spin or tick while nothing runs.
const idle = spawnSync(process.execPath, [fileURLToPath(new URL('idle-child.mjs', import.meta.url))], {
  encoding: 'utf8',
})
const idleLine = `Idle: a process holding 1,000 sandboxes with \`timeoutMs\` (each called once, ten also through \`callAsync\`) used ${Number(idle.stdout).toFixed(1)} ms of CPU over 3 s of idling (\`benchmark/idle-child.mjs\`).`
console.error(idleLine)

// 7c. Throughput of two sandboxes calling at once against one, on the addon's pool.
const spinText = `(module (func (export "spin") (param i32) (result i32) (local i32)
  (loop $l (local.set 1 (i32.add (local.get 1) (i32.const 1))) (br_if $l (i32.lt_u (local.get 1) (local.get 0))))
  (local.get 1)))`
const spinners = [new Sandbox(spinText), new Sandbox(spinText)]
const spinIterations = 20_000_000
const spinRounds = quick ? 3 : 10
const timeCalls = async (sandboxes) => {
  const started = process.hrtime.bigint()
  await Promise.all(
    sandboxes.map(async (sandbox) => {
      for (let round = 0; round < spinRounds; round++) sink ^= await sandbox.callAsync('spin', spinIterations)
    }),
  )
  return Number(process.hrtime.bigint() - started)
}
await timeCalls(spinners)
const oneSandbox = [
  await timeCalls([spinners[0]]),
  await timeCalls([spinners[0]]),
  await timeCalls([spinners[0]]),
].sort()[1]
const twoSandboxes = [await timeCalls(spinners), await timeCalls(spinners), await timeCalls(spinners)].sort()[1]
// As times per call: two sandboxes do twice the calls.
row({
  operation: `2 sandboxes calling at once (callAsync, ${os.cpus().length} cores)`,
  ours: twoSandboxes / (2 * spinRounds),
  baseline: oneSandbox / spinRounds,
  against: 'the same calls on 1 sandbox',
  kind: 'faster',
  target: 1.7,
})

// 7d. The WebAssembly namespace (createWebAssembly): an exported function and memory.buffer,
// against what Sandbox.call and memory() cost, with V8's own WebAssembly beside them.
const WA = binding.createWebAssembly()
const identityBytes = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 6, 1, 96, 1, 127, 1, 127, 3, 2, 1, 0, 5, 3, 1, 0, 1, 7, 15, 2, 2, 105, 100, 0, 0, 6,
  109, 101, 109, 111, 114, 121, 2, 0, 10, 6, 1, 4, 0, 32, 0, 11,
])
const waExports = new WA.Instance(new WA.Module(identityBytes)).exports
const v8Exports = new WebAssembly.Instance(new WebAssembly.Module(identityBytes)).exports
const memorySandbox = new Sandbox(identityBytes)
const { waCall, sandboxCall, v8Call } = measureInterleaved(
  {
    waCall: (index) => (sink ^= waExports.id(index)),
    sandboxCall: (index) => (sink ^= memorySandbox.call('id', index)),
    v8Call: (index) => (sink ^= v8Exports.id(index)),
  },
  callTiming,
)
row({
  operation: 'WA: exports.id(x), an (i32) -> i32 export',
  ours: waCall,
  baseline: sandboxCall,
  against: "sandbox.call('id', x)",
  kind: 'slower',
  target: 2,
})
const { waBuffer, bufferMemory, v8Buffer } = measureInterleaved(
  {
    waBuffer: () => (sink ^= waExports.memory.buffer.byteLength),
    bufferMemory: () => (sink ^= buffer.memory().length),
    v8Buffer: () => (sink ^= v8Exports.memory.buffer.byteLength),
  },
  callTiming,
)
row({
  operation: 'WA: memory.buffer again, no growth',
  ours: waBuffer,
  baseline: bufferMemory,
  against: 'BufferSandbox memory() again',
  kind: 'slower',
  target: 2,
})
const v8Line = `V8's own WebAssembly in the same run: exports.id(x) ${formatTime(v8Call)}, memory.buffer ${formatTime(v8Buffer)}.`
console.error(v8Line)

// 8. Density, each in a fresh process.
function density(kind, count) {
  const run = spawnSync(
    process.execPath,
    ['--expose-gc', fileURLToPath(new URL('density.mjs', import.meta.url)), kind, String(count)],
    {
      encoding: 'utf8',
      maxBuffer: 1 << 20,
    },
  )
  return JSON.parse(run.stdout.trim().split('\n').pop())
}
// Issue 21's target: a million, each written once, within a page the write dirtied plus 2 KiB.
const densityCount = quick ? 100_000 : 1_000_000
const ours = density('buffer', densityCount)
const v8 = density('v8', densityCount)
const densityMet = ours.created === densityCount && ours.perSandboxBytes <= 6 * 1024
rows.push({
  operation: `${densityCount.toLocaleString('en')} live BufferSandbox`,
  density: true,
  met: densityMet,
  text: `${ours.created.toLocaleString('en')} alive, ${(ours.perSandboxBytes / 1024).toFixed(1)} KiB RSS each${ours.error ? ` (stopped: ${ours.error})` : ''}`,
  against: `V8 instances with a memory each: ${v8.created.toLocaleString('en')} of ${densityCount.toLocaleString('en')}${v8.error ? `, then ${v8.error}` : ''} (${(v8.perSandboxBytes / 1024).toFixed(1)} KiB RSS each)`,
  targetText: `${densityCount.toLocaleString('en')} alive, <= 6 KiB each`,
})
console.error(`${densityMet ? 'met ' : 'MISS'} density: ${rows.at(-1).text}; ${rows.at(-1).against}`)

// Components, against jco's transpiled glue on V8 for the same component.
sink ^= await componentRows({ row, batch, quick })
// Snapshots: forks, reset(), pre-initialization.
sink ^= await snapshotRows({ row, rows, batch, quick })
const httpLine = await httpRows({ row, quick })
const observed = await observeRows({ row, batch, quick })
sink ^= observed.sink
const observeLine = observed.line

// 8. Cold start: compiling real modules, each compile in a fresh process, against V8 compiling the
// same bytes in a fresh process of its own. Cold: an empty code cache (the compile, and writing
// its cache file). Warm: a fresh process, the cache filled by the cold run. Winch: cold, with the
// baseline compiler.
const coldModules = [
  { name: "esbuild-wasm's esbuild.wasm (Go)", path: require.resolve('esbuild-wasm/esbuild.wasm'), target: true },
  { name: "sql.js's sql-wasm.wasm (Emscripten)", path: require.resolve('sql.js/dist/sql-wasm.wasm') },
  { name: 'SHA-256 (AssemblyScript)', path: `${root}__test__/guests/build/sha256.as.wasm` },
]
const compileChild = fileURLToPath(new URL('compile-child.mjs', import.meta.url))
function compileInFreshProcess(path, compiler, cacheDirectory) {
  const env = { ...process.env, WASM_MEMORY_SANDBOX_CACHE_DIR: cacheDirectory ?? '' }
  if (!cacheDirectory) env.WASM_MEMORY_SANDBOX_CACHE = '0'
  const run = spawnSync(process.execPath, [compileChild, path, compiler], { encoding: 'utf8', env, maxBuffer: 1 << 20 })
  if (run.status !== 0) throw new Error(`compile-child ${path} ${compiler} failed: ${run.stderr}`)
  return JSON.parse(run.stdout.trim().split('\n').pop())
}
const medianOf = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]
const coldRows = []
for (const entry of coldModules) {
  const repeats = quick ? 1 : 3
  const v8Ms = medianOf(Array.from({ length: repeats }, () => compileInFreshProcess(entry.path, 'v8').compileMs))
  const cacheDirectory = mkdtempSync(join(os.tmpdir(), 'wasm-memory-sandbox-bench-cache-'))
  try {
    const cold = compileInFreshProcess(entry.path, 'cranelift', cacheDirectory)
    const warmRuns = Array.from({ length: repeats }, () =>
      compileInFreshProcess(entry.path, 'cranelift', cacheDirectory),
    )
    if (warmRuns.some((run) => run.stats.hits !== 2))
      throw new Error(`the warm runs missed the cache: ${JSON.stringify(warmRuns)}`)
    const warmMs = medianOf(warmRuns.map((run) => run.compileMs))
    const winchMs = medianOf(
      Array.from({ length: quick ? 1 : 2 }, () => compileInFreshProcess(entry.path, 'winch').compileMs),
    )
    // The namespace's compile: its engine's own cache entry (a cold run fills it), then warm runs.
    compileInFreshProcess(entry.path, 'namespace', cacheDirectory)
    const namespaceRuns = Array.from({ length: repeats }, () =>
      compileInFreshProcess(entry.path, 'namespace', cacheDirectory),
    )
    if (namespaceRuns.some((run) => run.stats.misses !== 0))
      throw new Error(`the namespace's warm runs missed the cache: ${JSON.stringify(namespaceRuns)}`)
    const namespaceWarmMs = medianOf(namespaceRuns.map((run) => run.compileMs))
    const instantiateMs = medianOf(warmRuns.map((run) => run.instantiateMs ?? NaN))
    if (warmRuns[0].instantiateError)
      console.error(`instantiating ${entry.name} failed: ${warmRuns[0].instantiateError}`)
    coldRows.push({
      ...entry,
      bytes: statSync(entry.path).size,
      v8Ms,
      coldMs: cold.compileMs,
      warmMs,
      namespaceWarmMs,
      winchMs,
      instantiateMs,
    })
    console.error(
      `cold start ${entry.name}: V8 ${v8Ms.toFixed(0)} ms, cold ${cold.compileMs.toFixed(0)} ms, warm cache ${warmMs.toFixed(1)} ms, WA.compile warm ${namespaceWarmMs.toFixed(1)} ms, Winch ${winchMs.toFixed(0)} ms, instantiate ${instantiateMs.toFixed(2)} ms`,
    )
    if (entry.target) {
      row({
        operation: `${entry.name.split(' ')[1]} from a warm disk cache, fresh process`,
        ours: warmMs * 1e6,
        baseline: v8Ms * 1e6,
        against: 'new WebAssembly.Module(bytes) in V8, fresh process',
        kind: 'slower',
        target: 2,
      })
      row({
        operation: `${entry.name.split(' ')[1]} by WA.compile from a warm disk cache, fresh process`,
        ours: namespaceWarmMs * 1e6,
        baseline: v8Ms * 1e6,
        against: 'new WebAssembly.Module(bytes) in V8, fresh process',
        kind: 'slower',
        target: 2,
      })
    }
  } finally {
    rmSync(cacheDirectory, { recursive: true, force: true })
  }
}

// 9. Run time of the code each compiler makes: SHA-256 of 1 MiB, in this process.
const shaBytes = readFileSync(`${root}__test__/guests/build/sha256.as.wasm`)
const shaInput = Buffer.alloc(1 << 20)
for (let index = 0; index < shaInput.length; index++) shaInput[index] = (index * 7 + 3) & 0xff
const expectedDigest = (await import('node:crypto')).createHash('sha256').update(shaInput).digest('hex')
function shaRunner(instance) {
  const pointer = instance.alloc(shaInput.length)
  instance.memory().set(shaInput, pointer)
  return () => {
    const out = instance.sha256(pointer, shaInput.length)
    return Buffer.from(instance.memory().subarray(out, out + 32)).toString('hex')
  }
}
const shaImports = {
  env: {
    abort: () => {
      throw new Error('the SHA-256 guest aborted')
    },
  },
}
const shaInstance = (compiler) => {
  const sandbox = new Sandbox(new binding.Module(shaBytes, { compiler }), { imports: shaImports })
  return shaRunner({
    alloc: (length) => sandbox.call('alloc', length),
    sha256: (pointer, length) => sandbox.call('sha256', pointer, length),
    memory: () => sandbox.memory(),
  })
}
const v8Sha = new WebAssembly.Instance(new WebAssembly.Module(shaBytes), shaImports).exports
const shaRuns = {
  cranelift: shaInstance('cranelift'),
  winch: shaInstance('winch'),
  v8: shaRunner({ alloc: v8Sha.alloc, sha256: v8Sha.sha256, memory: () => new Uint8Array(v8Sha.memory.buffer) }),
}
for (const [name, run] of Object.entries(shaRuns)) {
  if (run() !== expectedDigest) throw new Error(`SHA-256 by ${name} is wrong`)
}
const shaTimes = await (async () => {
  const perRound = { cranelift: [], winch: [], v8: [] }
  for (let round = 0; round < (quick ? 3 : 7); round++) {
    for (const [name, run] of Object.entries(shaRuns)) {
      const started = process.hrtime.bigint()
      sink ^= run().length
      perRound[name].push(Number(process.hrtime.bigint() - started) / 1e6)
    }
  }
  return Object.fromEntries(Object.entries(perRound).map(([name, times]) => [name, medianOf(times)]))
})()
console.error(
  `SHA-256 of 1 MiB: Cranelift ${shaTimes.cranelift.toFixed(2)} ms, Winch ${shaTimes.winch.toFixed(2)} ms, V8 ${shaTimes.v8.toFixed(2)} ms`,
)
row({
  operation: 'SHA-256 of 1 MiB (AssemblyScript), Cranelift',
  ours: shaTimes.cranelift * 1e6,
  baseline: shaTimes.v8 * 1e6,
  against: 'the same module in V8',
  kind: 'slower',
  target: 1.05,
})
const coldTable = renderColdTable(coldRows)
const runTimeLine = `Run time of the compiled code, SHA-256 of 1 MiB (median of ${quick ? 3 : 7}, same process): Cranelift ${shaTimes.cranelift.toFixed(2)} ms, Winch ${shaTimes.winch.toFixed(2)} ms (${(shaTimes.winch / shaTimes.cranelift).toFixed(2)}x Cranelift), V8 ${shaTimes.v8.toFixed(2)} ms.`
console.log(coldTable)
console.log(runTimeLine)

// The range of each ratio over every run (rows are matched by operation and what they compare with).
for (const entry of rows) {
  // A density row's comparison names how far V8 got, which differs between runs.
  const key = (other) => (other.density ? other.operation : `${other.operation}|${other.against}`)
  const seen = earlierRuns.map((run) => run.rows.find((other) => key(other) === key(entry))).filter(Boolean)
  if (entry.density) {
    entry.perRun = [...seen.map((other) => other.text), entry.text]
    continue
  }
  const ratios = [...seen.map((other) => other.ratio), entry.ratio]
  entry.range = ratios.length > 1 ? [Math.min(...ratios), Math.max(...ratios)] : null
  entry.allMet = [...seen.map((other) => other.met), entry.met].every(Boolean)
}
const floorsLine = `Floors in the same run: an empty napi-rs function ${formatTime(napiFloor)}, an empty raw Node-API function ${formatTime(rawFloor)}.`
const table = renderTable(rows)
console.log(table)
console.log(floorsLine)
console.log(v8Line)
console.log(httpLine)
console.log(observeLine)
console.log(idleLine)

const loadAtEnd = os.loadavg()[0]
console.error(`load average at end: ${loadAtEnd.toFixed(2)} (${cores} cores)`)
if (recordPath) {
  writeFileSync(recordPath, JSON.stringify({ loadAtStart, loadAtEnd, rows }))
}
const allRuns = [...earlierRuns, { loadAtStart, loadAtEnd, rows }]
const loadLine =
  allRuns.length > 1
    ? `Load average (1 minute) at the start and end of each of the ${allRuns.length} runs: ${allRuns.map((run) => `${run.loadAtStart.toFixed(2)} -> ${run.loadAtEnd.toFixed(2)}`).join(', ')}, on ${cores} cores.`
    : `Load average (1 minute) at start ${loadAtStart.toFixed(2)}, at end ${loadAtEnd.toFixed(2)}, on ${cores} cores.`
const overloaded = allRuns.some((run) => Math.max(run.loadAtStart, run.loadAtEnd) > MAX_LOAD_PER_CORE * cores)
if (writing && overloaded) {
  console.error(
    `not writing README.md: the load average passed ${MAX_LOAD_PER_CORE} per core, so the figures measure the load; run again on an idle machine`,
  )
  process.exitCode = 1
} else if (writing) {
  const machine = `${os.cpus().length} x ${os.cpus()[0]?.model.trim()}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${process.platform} ${os.release()}`
  const section = [
    `Measured on ${machine}, Node ${process.version}, with \`npm run bench\` (medians; the two sides of a ratio from the same run). ${allRuns.length > 1 ? `The figures are the last of ${allRuns.length} runs, each in a fresh process; in brackets, the lowest and highest ratio over all ${allRuns.length}; "last run" marks a target met in the last run but not in every run. ` : ''}${loadLine}`,
    '',
    table,
    '',
    floorsLine,
    v8Line,
    httpLine,
    observeLine,
    idleLine,
    '',
    '![ratios against their targets](benchmark/ratios.svg)',
    '',
    "Cold start, each compile in a fresh process (V8: `new WebAssembly.Module(bytes)`; ours: `new Module(bytes)`; cold: empty code cache; warm: the cache filled by the cold run; `WA.compile`: `await createWebAssembly().compile(bytes)` with its own engine's cache entry filled; Winch: cold, `{ compiler: 'winch' }`):",
    '',
    coldTable,
    '',
    runTimeLine,
  ].join('\n')
  const readmePath = `${root}README.md`
  const readme = readFileSync(readmePath, 'utf8')
  const start = '<!-- bench:start -->'
  const end = '<!-- bench:end -->'
  const updated = readme.replace(new RegExp(`${start}[\\s\\S]*${end}`), `${start}\n${section}\n${end}`)
  // Formatted as the lint formats it, so a written README passes `prettier --check` (and CI).
  const prettierOptions = await prettier.resolveConfig(readmePath)
  writeFileSync(readmePath, await prettier.format(updated, { ...prettierOptions, filepath: readmePath }))
  writeFileSync(`${root}benchmark/ratios.svg`, renderChart(rows.filter((entry) => !entry.density)))
  console.error('wrote README.md and benchmark/ratios.svg')
}
if (sink === 0.5) console.log(sink) // never true: keeps every result observably used

function renderTable(entries) {
  const lines = [
    '| operation | this package | compared with | that | ratio | target | met |',
    '| --- | --: | --- | --: | --: | --: | :-: |',
  ]
  for (const entry of entries) {
    if (entry.density) {
      lines.push(
        `| ${entry.operation} | ${entry.text}${entry.perRun?.length > 1 && entry.perRun.every((text) => /[\d.]+ [KM]iB/.test(text)) ? ` (runs: ${entry.perRun.map((text) => text.match(/[\d.]+ [KM]iB/)[0]).join(', ')})` : ''} | ${entry.against} | | | ${entry.targetText} | ${entry.met ? 'yes' : 'no'} |`,
      )
      continue
    }
    const range = entry.range ? ` (${entry.range[0].toFixed(2)}-${entry.range[1].toFixed(2)})` : ''
    const ratio =
      entry.kind === 'slower'
        ? `${entry.ratio.toFixed(2)}x the time${range}`
        : `${entry.ratio.toFixed(2)}x faster${range}`
    const target = entry.kind === 'slower' ? `<= ${entry.target}x` : `>= ${entry.target}x`
    const met = entry.range ? (entry.allMet ? 'yes' : entry.met ? 'last run' : 'no') : entry.met ? 'yes' : 'no'
    lines.push(
      `| ${entry.operation} | ${formatTime(entry.ours)} | ${entry.against} | ${formatTime(entry.baseline)} | ${ratio} | ${target} | ${met} |`,
    )
  }
  return lines.join('\n')
}

function renderColdTable(entries) {
  const ms = (value) => (value >= 100 ? `${value.toFixed(0)} ms` : `${value.toFixed(1)} ms`)
  const ratio = (value, baseline) => `${(value / baseline).toFixed(value / baseline >= 10 ? 0 : 1)}x`
  const lines = [
    '| module | size | V8 | cold (Cranelift) | warm cache, fresh process | `WA.compile`, warm cache | Winch, cold | cold / V8 | warm / V8 | Winch / V8 | instantiate |',
    '| --- | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: |',
  ]
  for (const entry of entries) {
    const size = entry.bytes >= 1e6 ? `${(entry.bytes / 1e6).toFixed(1)} MB` : `${(entry.bytes / 1e3).toFixed(1)} kB`
    lines.push(
      `| ${entry.name} | ${size} | ${ms(entry.v8Ms)} | ${ms(entry.coldMs)} | ${ms(entry.warmMs)} | ${ms(entry.namespaceWarmMs)} | ${ms(entry.winchMs)} | ${ratio(entry.coldMs, entry.v8Ms)} | ${ratio(entry.warmMs, entry.v8Ms)} | ${ratio(entry.winchMs, entry.v8Ms)} | ${Number.isNaN(entry.instantiateMs) ? 'n/a' : ms(entry.instantiateMs)} |`,
    )
  }
  return lines.join('\n')
}

/** A horizontal bar per operation: how far it is from its target (1.0 = exactly on target, longer is better). */
function renderChart(entries) {
  const width = 900
  const barHeight = 22
  const gap = 10
  const left = 330
  const scaleMax = 4
  const height = 40 + entries.length * (barHeight + gap)
  const escape = (text) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
  const bars = entries.map((entry, index) => {
    // Headroom: target / ratio for "slower" rows, ratio / target for "faster" rows.
    const headroom = entry.kind === 'slower' ? entry.target / entry.ratio : entry.ratio / entry.target
    const shown = Math.min(headroom, scaleMax)
    const y = 30 + index * (barHeight + gap)
    const barWidth = ((width - left - 150) * shown) / scaleMax
    return [
      `<text x="${left - 8}" y="${y + 15}" text-anchor="end" font-size="12">${escape(entry.operation)}</text>`,
      `<rect x="${left}" y="${y}" width="${barWidth.toFixed(1)}" height="${barHeight}" fill="${entry.met ? '#2e8b57' : '#c0392b'}"/>`,
      `<text x="${left + barWidth + 6}" y="${y + 15}" font-size="12">${headroom.toFixed(2)}x${headroom > scaleMax ? ' (clipped)' : ''}</text>`,
    ].join('')
  })
  const targetX = left + (width - left - 150) / scaleMax
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif">
<text x="10" y="18" font-size="13">Headroom against each target (1x = exactly on target; green met, red missed)</text>
${bars.join('\n')}
<line x1="${targetX}" y1="24" x2="${targetX}" y2="${height - 4}" stroke="#333" stroke-dasharray="4 3"/>
</svg>
`
}
