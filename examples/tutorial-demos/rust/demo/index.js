// The tutorial's page script for its Rust form: the seed's index.js with wasm-bindgen's `--target
// web` init in place of Go's loader. The page provides domConsoleLog (the tutorial site's logger)
// and `fetch`; the glue finds `WebAssembly` as a global.
import wasmInit from './pkg/webassembly_linear_memory.js'
import { domConsoleLog } from '/demo-util/domConsole.js'

const runWasm = async () => {
  // The glue fetches the module and instantiates it through the global WebAssembly.
  const rustWasm = await wasmInit({ module_or_path: './pkg/webassembly_linear_memory_bg.wasm' })

  // Part one: write in wasm, read in JS.
  domConsoleLog('Write in Wasm, Read in JS, Index 0:')
  rustWasm.store_value_in_wasm_memory_buffer_index_zero(24)
  const wasmMemory = new Uint8Array(rustWasm.memory.buffer)
  const bufferPointer = rustWasm.get_wasm_memory_buffer_pointer()
  domConsoleLog(wasmMemory[bufferPointer + 0]) // 24

  // Part two: write in JS, read in wasm.
  domConsoleLog('Write in JS, Read in Wasm, Index 1:')
  wasmMemory[bufferPointer + 1] = 15
  domConsoleLog(rustWasm.read_wasm_memory_buffer_and_return_index_one()) // 15
}
runWasm()
