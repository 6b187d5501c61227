// Runs the observe guest's endless `spin()` under `cpuTimeMs: 50` and prints what it cost, for
// the CPU-limit test that runs four of these at once on two cores.
import { readFileSync } from 'node:fs'

import { Sandbox } from 'wasm-memory-sandbox'

const wasm = readFileSync(new URL('../guests/build/observe.rust.wasm', import.meta.url))
const sandbox = new Sandbox(wasm, { cpuTimeMs: 50, imports: { env: { host_work: (i) => i } } })
// Start together: the parent releases every child at once through stdin.
process.stdin.once('data', () => {
  let code
  try {
    sandbox.call('spin')
  } catch (error) {
    code = error.code
  }
  const { cpuTimeMs, wallTimeMs } = sandbox.lastCall
  // No process.exit(): a write to a pipe is asynchronous, and exiting could cut it off.
  process.stdout.write(JSON.stringify({ code, cpuTimeMs, wallTimeMs }))
  process.stdin.destroy()
})
process.stdout.write('ready\n')
