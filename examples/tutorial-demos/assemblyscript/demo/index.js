// The tutorial's page script for its AssemblyScript form: the site's loader instantiates the
// module through the global WebAssembly; JS reads what wasm wrote at start and writes what wasm
// reads. The page provides wasmBrowserInstantiate and domConsoleLog (the tutorial site's helpers).
import { wasmBrowserInstantiate } from '/demo-util/instantiateWasm.js'
import { domConsoleLog } from '/demo-util/domConsole.js'

const runWasm = async () => {
  const wasmModule = await wasmBrowserInstantiate('./index.wasm')
  const exports = wasmModule.instance.exports

  // A view of the module's memory.
  const wasmByteMemoryArray = new Uint8Array(exports.memory.buffer)

  // Written by wasm when it started: 24.
  domConsoleLog('Read from JS index Zero: ' + wasmByteMemoryArray[0])

  // Written by JS, read by wasm: 15.
  wasmByteMemoryArray[1] = 15
  domConsoleLog('Read from Wasm index one: ' + exports.readWasmMemoryAndReturnIndexOne())
}
runWasm()
