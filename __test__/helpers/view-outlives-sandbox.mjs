// Run with `node --expose-gc`: proves a view outlives its garbage-collected sandbox and never
// shows another sandbox's bytes. Prints one JSON line with what it saw; exits non-zero on failure.
import assert from 'node:assert/strict'
import { setImmediate as nextTurn } from 'node:timers/promises'

import { BufferSandbox } from 'wasm-memory-sandbox'

import { collect } from './gc.mjs'

assert.equal(typeof globalThis.gc, 'function', 'run with --expose-gc')

function makeViews() {
  const sandbox = new BufferSandbox()
  sandbox.storeValueInWasmMemoryBufferIndexZero(24)
  const memory = sandbox.memory()
  const pointer = sandbox.getWasmMemoryBufferPointer()
  memory[pointer + 1] = 15
  memory.fill(0x5a, 1024, 2048)
  return { memory, buffer: sandbox.buffer(), pointer, sandboxRef: new WeakRef(sandbox) }
}

const { memory, buffer, pointer, sandboxRef } = makeViews()
const collected = await collect(sandboxRef)
assert.ok(collected, 'the sandbox object was garbage-collected')

// Other sandboxes come and go: if the collected sandbox's memory had been freed and reused,
// their bytes would show through the old views.
for (let index = 0; index < 200; index++) {
  const other = new BufferSandbox()
  other.memory().fill(0xee)
  other.storeValueInWasmMemoryBufferIndexZero(99)
  if (index % 2 === 0) other.dispose()
}
await collect(new WeakRef({}))

assert.equal(memory.length, 65536)
assert.equal(memory[pointer], 24)
assert.equal(memory[pointer + 1], 15)
assert.equal(buffer[0], 24)
assert.equal(buffer[1], 15)
assert.ok(memory.subarray(1024, 2048).every((byte) => byte === 0x5a))
assert.ok(!memory.includes(0xee), 'no byte of another sandbox shows')
memory[pointer] = 7
assert.equal(buffer[0], 7, 'the views still share one live memory')

// Once the views go too, the memory is freed by their finalizers (no crash, no leak of a slot).
const viewRef = new WeakRef(memory)
console.log(JSON.stringify({ collected, first: buffer[0], second: buffer[1], length: memory.length }))
process.exitCode = 0
void viewRef
