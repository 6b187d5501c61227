// A fresh process for the pre-initialization cache test: pre-initializes the Rust preinit guest
// (argv[2]) with imports that count their calls, instantiates the result and prints
// `{ seedCalls, checksum, stats }` as JSON. The cache directory comes from the environment.
import { readFileSync } from 'node:fs'

import { Module, Sandbox, codeCacheStats } from 'wasm-memory-sandbox'

let seedCalls = 0
const imports = {
  env: {
    seed: () => {
      seedCalls++
      return 12345
    },
    work_iterations: () => 1000,
  },
}
const module = await Module.preinitialize(readFileSync(process.argv[2]), { init: 'init', imports })
const sandbox = new Sandbox(module, { imports })
console.log(JSON.stringify({ seedCalls, checksum: sandbox.call('checksum'), stats: codeCacheStats() }))
