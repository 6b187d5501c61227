// `npm run soak [-- seconds]`: creates, uses and drops sandboxes for a fixed time (default 60 s)
// with a mix of traps, timeouts, fuel exhaustion, growth, imports and views, and prints the RSS
// at the start and every few seconds. Exits non-zero if the RSS keeps climbing in the second half.
import { createRequire } from 'node:module'
import { setImmediate as nextTurn } from 'node:timers/promises'

const require = createRequire(import.meta.url)
const { BufferSandbox, Module, Sandbox } = require('wasm-memory-sandbox')

const seconds = Number(process.argv[2] ?? 60)
const reportEverySeconds = Math.max(1, Math.min(5, seconds / 12))
const mib = (bytes) => (bytes / 2 ** 20).toFixed(1)

const guest = new Module(`(module
  (import "env" "log" (func $log (param i32 i32)))
  (memory (export "memory") 1 64)
  (data (i32.const 0) "soak")
  (func (export "spin") (loop br 0))
  (func (export "boom") unreachable)
  (func $deep (export "deep") (param i32) (result i32) (call $deep (local.get 0)))
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "hello") (call $log (i32.const 0) (i32.const 4))))`)

let rounds = 0
let logged = 0
function round(index) {
  const buffer = new BufferSandbox()
  buffer.storeValueInWasmMemoryBufferIndexZero(index & 0xff)
  const view = buffer.memory()
  view[buffer.getWasmMemoryBufferPointer() + 1] = 7
  if (buffer.readWasmMemoryBufferAndReturnIndexOne() !== 7) throw new Error('buffer guest disagrees')
  if (index % 3 !== 0) buffer.dispose() // the rest are left to the garbage collector

  let sandbox
  sandbox = new Sandbox(guest, {
    imports: { env: { log: (pointer, length) => (logged += sandbox.read(pointer, length).length) } },
    timeoutMs: 5,
    maxMemoryBytes: 16 * 65536,
    ...(index % 2 ? { fuel: 50_000 } : {}),
  })
  sandbox.call('hello')
  const views = [sandbox.memory()]
  sandbox.call('grow', 2)
  views.push(sandbox.memory())
  for (const name of ['boom', 'deep', index % 10 === 0 ? 'spin' : 'boom']) {
    try {
      sandbox.call(name, ...(name === 'deep' ? [0] : []))
    } catch (error) {
      if (!error.code?.startsWith('ERR_WASM_')) throw error
    }
  }
  if (index % 2) sandbox.dispose()
  rounds++
}

const started = Date.now()
const samples = []
const report = () => {
  const rss = process.memoryUsage.rss()
  samples.push({ at: (Date.now() - started) / 1000, rss })
  console.log(`t=${((Date.now() - started) / 1000).toFixed(0).padStart(3)} s  rss=${mib(rss)} MiB  rounds=${rounds}`)
}
report()
let nextReport = started + reportEverySeconds * 1000
for (let index = 0; Date.now() - started < seconds * 1000; index++) {
  round(index)
  if (index % 50 === 0) await nextTurn() // let finalizers run, as a real event loop does
  if (Date.now() >= nextReport) {
    report()
    nextReport += reportEverySeconds * 1000
  }
}
report()

const secondHalf = samples.filter((sample) => sample.at >= seconds / 2)
const first = secondHalf[0]?.rss ?? samples[0].rss
const last = samples.at(-1).rss
const climbed = (last - first) / first
console.log(
  `${rounds} rounds, ${logged} bytes logged by imports; second-half RSS ${mib(first)} -> ${mib(last)} MiB (${(climbed * 100).toFixed(1)}%)`,
)
if (climbed > 0.1) {
  console.error('RSS kept climbing in the second half')
  process.exit(1)
}
