// Runs the benchmark's compute-heavy WASI command N times, in a Sandbox or in node:wasi, for
// counting under callgrind (README, "The compute command: where the gap is"):
//   valgrind --tool=callgrind --cache-sim=yes --branch-sim=yes node benchmark/count-compute.mjs ours 1
//   valgrind --tool=callgrind --cache-sim=yes --branch-sim=yes node --no-liftoff benchmark/count-compute.mjs v8 3
// The difference of a 3-run and a 1-run count, divided by two, is one run.
import { openSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { WASI } from 'node:wasi'

const { Module, Sandbox } = createRequire(import.meta.url)('wasm-memory-sandbox')

const [side, times = '1'] = process.argv.slice(2)
if (side !== 'ours' && side !== 'v8') throw new Error('usage: count-compute.mjs <ours|v8> [times]')
const bytes = readFileSync(fileURLToPath(new URL('../__test__/guests/build/compute.wasip1.wasm', import.meta.url)))
const devNull = openSync('/dev/null', 'w')
if (side === 'ours') {
  const module = new Module(bytes)
  for (let run = 0; run < Number(times); run++) new Sandbox(module, { wasi: { args: ['compute'] } }).run()
} else {
  const module = new WebAssembly.Module(bytes)
  for (let run = 0; run < Number(times); run++) {
    const wasi = new WASI({ version: 'preview1', args: ['compute'], stdout: devNull, returnOnExit: true })
    wasi.start(new WebAssembly.Instance(module, wasi.getImportObject()))
  }
}
