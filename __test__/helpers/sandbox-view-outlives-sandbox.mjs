// Run with `node --expose-gc`: a Sandbox view keeps working after its sandbox is collected, and
// never shows another sandbox's bytes.
import assert from 'node:assert/strict'
import { setImmediate as nextTurn } from 'node:timers/promises'

import { Sandbox } from 'wasm-memory-sandbox'

import { collect } from './gc.mjs'

const text =
  '(module (memory (export "memory") 1) (func (export "peek") (param i32) (result i32) (i32.load8_u (local.get 0))))'

function makeView() {
  const sandbox = new Sandbox(text)
  const view = sandbox.memory()
  view.fill(0x33, 0, 4096)
  return { view, ref: new WeakRef(sandbox) }
}

const { view, ref } = makeView()
assert.ok(await collect(ref), 'the sandbox was collected')
for (let index = 0; index < 100; index++) {
  const other = new Sandbox(text)
  other.memory().fill(0xee)
  if (index % 2) other.dispose()
}
globalThis.gc()
await nextTurn()
assert.equal(view.length, 65536)
assert.ok(view.subarray(0, 4096).every((byte) => byte === 0x33))
assert.ok(!view.includes(0xee))
console.log('ok')
