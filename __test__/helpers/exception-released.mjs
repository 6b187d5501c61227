// Run with `node --expose-gc`: a WebAssembly.Exception JS dropped is collected and released
// natively, while wasm still holds the exception (an exnref global); wasm throwing it again later
// gives JS a new object with the right payload, even after its registry slot was reused.
import assert from 'node:assert/strict'

import { createWebAssembly } from 'wasm-memory-sandbox'

import { collect } from './gc.mjs'
import { wat } from './wat.mjs'

assert.equal(typeof globalThis.gc, 'function', 'run with --expose-gc')

const WA = createWebAssembly()
const tag = new WA.Tag({ parameters: ['i32'] })
let toThrow
const { exports } = new WA.Instance(
  new WA.Module(
    wat(`(module
      (import "env" "call" (func $call))
      (global $kept (mut exnref) (ref.null exn))
      (func (export "keep")
        (global.set $kept
          (block $caught (result exnref)
            (try_table (catch_all_ref $caught) (call $call))
            (return))))
      (func (export "throwKept") (throw_ref (global.get $kept))))`),
  ),
  {
    env: {
      call: () => {
        throw toThrow
      },
    },
  },
)

function keepOne() {
  toThrow = new WA.Exception(tag, [77])
  exports.keep()
  const ref = new WeakRef(toThrow)
  toThrow = undefined
  return ref
}

const dropped = keepOne()
assert.ok(await collect(dropped), 'the dropped exception was garbage-collected')
// Its slot is free now: new exceptions take it.
const fresh = Array.from({ length: 8 }, (_, i) => new WA.Exception(tag, [i]))
let again
try {
  exports.throwKept()
} catch (error) {
  again = error
}
assert.ok(again instanceof WA.Exception, 'wasm rethrew the kept exception')
assert.equal(again.getArg(tag, 0), 77)
assert.ok(!fresh.includes(again), 'not one of the new exceptions')
fresh.forEach((exception, i) => assert.equal(exception.getArg(tag, 0), i))
console.log('ok')
