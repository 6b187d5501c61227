// Run with `node --expose-gc`: a sandbox whose import closes over the sandbox itself (the usual
// `log(ptr, len) => sandbox.read(ptr, len)`) is garbage-collected, imports and all.
import assert from 'node:assert/strict'

import { Sandbox } from 'wasm-memory-sandbox'

import { collect } from './gc.mjs'

function makeSandbox() {
  let sandbox
  const logged = []
  sandbox = new Sandbox(
    '(module (import "env" "log" (func $log (param i32 i32))) (memory (export "memory") 1) (data (i32.const 0) "hi") (func (export "run") (call $log (i32.const 0) (i32.const 2))))',
    { imports: { env: { log: (pointer, length) => logged.push(sandbox.read(pointer, length).toString()) } } },
  )
  sandbox.call('run')
  assert.deepEqual(logged, ['hi'])
  return { sandboxRef: new WeakRef(sandbox), importRef: new WeakRef(logged) }
}

const { sandboxRef, importRef } = makeSandbox()
assert.ok(await collect(sandboxRef), 'the sandbox was collected')
assert.ok(await collect(importRef), "the import's closure was collected")
console.log('ok')
