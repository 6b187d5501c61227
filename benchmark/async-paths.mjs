// The round trip of `await sandbox.callAsync('id', x)` on each of its paths, in interleaved rounds
// of one process: a sandbox with no imports (its calls start on the JS thread), the same export
// in a sandbox with a JS import (its calls take the pool's round trip), and V8 wasm in a worker
// with one postMessage round trip. Prints the fastest and the median round of each.
//
//   node benchmark/async-paths.mjs [rounds=9] [calls per round=30000]
import { createRequire } from 'node:module'
import { Worker } from 'node:worker_threads'

const { Sandbox } = createRequire(import.meta.url)('wasm-memory-sandbox')

const rounds = Number(process.argv[2] ?? 9)
const calls = Number(process.argv[3] ?? 30_000)
const identity = '(func (export "id") (param i32) (result i32) local.get 0)'
const startsHere = new Sandbox(`(module ${identity})`)
const pooled = new Sandbox(`(module (import "env" "f" (func)) ${identity})`, { imports: { env: { f() {} } } })
// The identity module as binary, for V8 (which takes no text).
const binary = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 6, 1, 96, 1, 127, 1, 127, 3, 2, 1, 0, 7, 6, 1, 2, 105, 100, 0, 0, 10, 6, 1, 4, 0, 32,
  0, 11,
])
const worker = new Worker(
  `const { parentPort, workerData } = require('node:worker_threads')
   const instance = new WebAssembly.Instance(new WebAssembly.Module(workerData))
   parentPort.on('message', (value) => parentPort.postMessage(instance.exports.id(value)))`,
  { eval: true, workerData: binary },
)
const viaWorker = (value) =>
  new Promise((resolve) => {
    worker.once('message', resolve)
    worker.postMessage(value)
  })

let sink = 0
const paths = {
  'callAsync, no imports (starts on the JS thread)': (value) => startsHere.callAsync('id', value),
  'callAsync, a JS import (on the pool)': (value) => pooled.callAsync('id', value),
  'V8 wasm in a worker, one postMessage round trip': viaWorker,
}
const times = Object.fromEntries(Object.keys(paths).map((name) => [name, []]))
for (const call of Object.values(paths)) for (let index = 0; index < 1000; index++) sink ^= await call(index)
for (let round = 0; round < rounds; round++) {
  for (const [name, call] of Object.entries(paths)) {
    const started = process.hrtime.bigint()
    for (let index = 0; index < calls; index++) sink ^= await call(index)
    times[name].push(Number(process.hrtime.bigint() - started) / calls / 1000)
  }
}
await worker.terminate()
for (const [name, list] of Object.entries(times)) {
  list.sort((a, b) => a - b)
  console.log(`${name}: fastest ${list[0].toFixed(2)} us, median ${list[list.length >> 1].toFixed(2)} us`)
}
if (sink === 0.5) console.log(sink)
