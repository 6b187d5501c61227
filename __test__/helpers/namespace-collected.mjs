// Run with `node --expose-gc`: a namespace whose memory's buffer JS has taken, and whose import
// closes over the namespace, is garbage-collected with its buffer (no native reference cycle).
import assert from 'node:assert/strict'

import { createWebAssembly } from 'wasm-memory-sandbox'

import { collect } from './gc.mjs'

assert.equal(typeof globalThis.gc, 'function', 'run with --expose-gc')

// (module (import "env" "log" (func (param i32))) (memory (export "memory") 1)
//   (func (export "run") (call 0 (i32.const 7))))
const bytes = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 8, 2, 96, 1, 127, 0, 96, 0, 0, 2, 11, 1, 3, 101, 110, 118, 3, 108, 111, 103, 0, 0, 3,
  2, 1, 1, 5, 3, 1, 0, 1, 7, 16, 2, 6, 109, 101, 109, 111, 114, 121, 2, 0, 3, 114, 117, 110, 0, 1, 10, 8, 1, 6, 0, 65,
  7, 16, 0, 11,
])

function use() {
  const WA = createWebAssembly({ timeoutMs: 1000 })
  let logged
  const { exports } = new WA.Instance(new WA.Module(bytes), {
    env: { log: (value) => (logged = [value, WA.Memory.name]) },
  })
  const buffer = exports.memory.buffer
  new Uint8Array(buffer)[0] = 1
  exports.run()
  assert.deepEqual(logged, [7, 'Memory'])
  return { namespace: new WeakRef(WA), buffer: new WeakRef(buffer) }
}

const { namespace, buffer } = use()
assert.ok(await collect(namespace), 'the namespace was garbage-collected')
assert.ok(await collect(buffer), 'the memory buffer was garbage-collected')
console.log('ok')
