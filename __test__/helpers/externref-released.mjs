// Run with `node --expose-gc`: JS values passed into wasm as externrefs are not kept alive by the
// namespace once wasm no longer holds them (wasmtime collected their externrefs), while a value
// wasm keeps (in a table) stays, and comes back as itself.
import assert from 'node:assert/strict'

import { createWebAssembly } from 'wasm-memory-sandbox'

import { collect } from './gc.mjs'
import { wat } from './wat.mjs'

assert.equal(typeof globalThis.gc, 'function', 'run with --expose-gc')

const WA = createWebAssembly()
const { exports } = new WA.Instance(
  new WA.Module(
    wat(`(module
      (table $kept (export "kept") 1 externref)
      (func (export "id") (param externref) (result externref) (local.get 0))
      (func (export "keep") (param externref) (table.set $kept (i32.const 0) (local.get 0))))`),
  ),
)

function pass() {
  const first = { first: true }
  const kept = { kept: true }
  assert.equal(exports.id(first), first, 'an externref comes back as the same value')
  exports.keep(kept)
  // Many more crossings: wasmtime collects the dead externrefs as its GC heap fills, and the
  // namespace lets go of their values.
  for (let i = 0; i < 200_000; i++) exports.id({ i })
  return { first: new WeakRef(first), kept: new WeakRef(kept) }
}

const refs = pass()
// Crossings after the collection ask native code which slots were released.
for (let i = 0; i < 1_000; i++) exports.id({ i })
assert.ok(await collect(refs.first), 'a value wasm no longer holds was garbage-collected')
assert.ok(refs.kept.deref() !== undefined, 'the value the table holds is alive')
assert.deepEqual(exports.kept.get(0), { kept: true })
console.log('ok')
