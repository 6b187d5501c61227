// The "WebAssembly Linear Memory" tutorial, run in a wasmtime sandbox from Node.
// The buffer guest keeps a 2-byte buffer in its linear memory; `memory()` is a zero-copy
// Buffer over that memory, so JS and wasm read and write the very same bytes.
const { BufferSandbox } = require('wasm-memory-sandbox')

const sandbox = new BufferSandbox()

/**
 * Part one: Write in Wasm, Read in JS
 */
console.log('Write in Wasm, Read in JS, Index 0:')

// First, let's have wasm write to our buffer
sandbox.storeValueInWasmMemoryBufferIndexZero(24)

// Next, let's get a view of our wasm memory (no copy: the Buffer points into the sandbox)
const wasmMemory = sandbox.memory()

// Then, let's get the pointer to our buffer that is within wasmMemory
const bufferPointer = sandbox.getWasmMemoryBufferPointer()

// Then, let's read the written value at index zero of the buffer
console.log(wasmMemory[bufferPointer + 0]) // Should log "24"

/**
 * Part two: Write in JS, Read in Wasm
 */
console.log('Write in JS, Read in Wasm, Index 1:')

// First, let's write to index one of our buffer
wasmMemory[bufferPointer + 1] = 15

// Then, let's have wasm read index one of the buffer, and return the result
console.log(sandbox.readWasmMemoryBufferAndReturnIndexOne()) // Should log "15"

// Release the sandbox now rather than at garbage collection; `wasmMemory` is detached.
sandbox.dispose()
