// WebAssembly namespace: the limits (time, fuel, memory) and the isolation of namespaces.
import test from 'ava'

import { createWebAssembly } from 'wasm-memory-sandbox'

import { wat } from './helpers/wat.mjs'

const spin = wat(`(module
  (func (export "spin") (loop $l (br $l)))
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1))))`)

test('a runaway export called from JS stops at timeoutMs with a RuntimeError coded ERR_WASM_TIMEOUT', (t) => {
  const WA = createWebAssembly({ timeoutMs: 50 })
  const { exports } = new WA.Instance(new WA.Module(spin))
  const started = Date.now()
  const error = t.throws(() => exports.spin(), { instanceOf: WA.RuntimeError })
  const elapsed = Date.now() - started
  t.is(error.code, 'ERR_WASM_TIMEOUT')
  t.is(error.kind, 'interrupt')
  t.true(elapsed >= 45 && elapsed < 5000, `stopped after ${elapsed} ms`)
  t.is(exports.add(2, 3), 5, 'the namespace stays usable')
})

test('a start function that never ends stops at timeoutMs, and instantiate rejects', async (t) => {
  const WA = createWebAssembly({ timeoutMs: 30 })
  const bytes = wat(`(module (func $start (loop $l (br $l))) (start $start))`)
  const error = await t.throwsAsync(WA.instantiate(bytes), { instanceOf: WA.RuntimeError })
  t.is(error.code, 'ERR_WASM_TIMEOUT')
})

test('fuel runs out with a RuntimeError coded ERR_WASM_OUT_OF_FUEL', (t) => {
  const WA = createWebAssembly({ fuel: 100_000 })
  const { exports } = new WA.Instance(new WA.Module(spin))
  const error = t.throws(() => exports.spin(), { instanceOf: WA.RuntimeError })
  t.is(error.code, 'ERR_WASM_OUT_OF_FUEL')
})

test('a module whose memory is above maxMemoryBytes fails to instantiate with a RangeError', (t) => {
  const WA = createWebAssembly({ maxMemoryBytes: 65536 })
  const module = new WA.Module(wat(`(module (memory 2))`))
  t.throws(() => new WA.Instance(module), { instanceOf: RangeError })
  t.notThrows(() => new WA.Instance(new WA.Module(wat(`(module (memory 1))`))))
})

test('two namespaces are isolated: their objects do not mix', (t) => {
  const A = createWebAssembly()
  const B = createWebAssembly()
  t.not(A.Memory, B.Memory)
  const module = new A.Module(spin)
  t.throws(() => new B.Instance(module), { instanceOf: TypeError })
  const memory = new A.Memory({ initial: 1 })
  const importer = new B.Module(wat(`(module (import "env" "memory" (memory 1)))`))
  t.throws(() => new B.Instance(importer, { env: { memory } }), { instanceOf: B.LinkError })
  const { exports } = new A.Instance(module)
  const table = new B.Table({ element: 'anyfunc', initial: 1 })
  t.throws(() => table.set(0, exports.add), { instanceOf: TypeError })
  const useFunction = new B.Module(wat(`(module (import "env" "f" (func (param i32 i32) (result i32))))`))
  // A function of another namespace is just a JS function here: it is wrapped as a host function.
  t.notThrows(() => new B.Instance(useFunction, { env: { f: exports.add } }))
})

test('one namespace’s timeout does not interrupt another namespace', (t) => {
  const timed = createWebAssembly({ timeoutMs: 20 })
  const untimed = createWebAssembly()
  t.throws(() => new timed.Instance(new timed.Module(spin)).exports.spin(), { code: 'ERR_WASM_TIMEOUT' })
  const loop = wat(`(module (func (export "count") (param i32) (result i32) (local $i i32)
    (block $done (loop $l (br_if $done (i32.ge_u (local.get $i) (local.get 0)))
      (local.set $i (i32.add (local.get $i) (i32.const 1))) (br $l))) (local.get $i)))`)
  t.is(new untimed.Instance(new untimed.Module(loop)).exports.count(50_000_000), 50_000_000)
})

test('createWebAssembly validates its options like Sandbox', (t) => {
  t.throws(() => createWebAssembly({ timeout: 1 }), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => createWebAssembly({ timeoutMs: '1' }), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => createWebAssembly({ timeoutMs: 0 }), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => createWebAssembly({ maxMemoryBytes: 1.5 }), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => createWebAssembly(null), { instanceOf: TypeError })
})
