import test from 'ava'

import { Module, Sandbox } from 'wasm-memory-sandbox'

import { guestText } from './helpers/guests.mjs'

const traps = new Module(guestText('traps.wat'))

for (const [exportName, args, kind, message] of [
  ['unreachable', [], 'unreachable', /unreachable/],
  ['oob_load', [], 'memory_out_of_bounds', /out of bounds memory access/],
  ['oob_store', [], 'memory_out_of_bounds', /out of bounds memory access/],
  ['div_by_zero', [0], 'integer_divide_by_zero', /integer divide by zero/],
  ['invalid_conversion', [], 'bad_conversion_to_integer', /invalid conversion to integer/],
  ['indirect_mismatch', [], 'bad_signature', /indirect call type mismatch/],
]) {
  test(`${exportName} traps as ERR_WASM_TRAP with kind ${kind}, a backtrace, and the sandbox stays usable`, (t) => {
    const sandbox = new Sandbox(traps)
    const error = t.throws(() => sandbox.call(exportName, ...args))
    t.true(error instanceof Error)
    t.is(error.code, 'ERR_WASM_TRAP')
    t.is(error.kind, kind)
    t.regex(error.message, message)
    t.is(typeof error.wasmBacktrace, 'string')
    t.regex(error.wasmBacktrace, new RegExp(exportName === 'unreachable' ? '!' : '0x[0-9a-f]+'))
    t.is(sandbox.call('ok'), 42)
  })
}

test('the wasm backtrace names the functions from the name section', (t) => {
  const sandbox = new Sandbox(`(module
    (func $inner (export "inner") unreachable)
    (func $outer (export "outer") call $inner))`)
  const error = t.throws(() => sandbox.call('outer'))
  t.regex(error.wasmBacktrace, /inner/)
  t.regex(error.wasmBacktrace, /outer/)
  t.true(error.wasmBacktrace.indexOf('inner') < error.wasmBacktrace.indexOf('outer'))
})

test('a start function that traps fails instantiation with ERR_WASM_TRAP', (t) => {
  const error = t.throws(() => new Sandbox('(module (func $start unreachable) (start $start))'))
  t.is(error.code, 'ERR_WASM_TRAP')
  t.is(error.kind, 'unreachable')
})

test('error messages do not depend on RUST_BACKTRACE', async (t) => {
  const { spawnSync } = await import('node:child_process')
  const script = `const { Sandbox } = require('wasm-memory-sandbox');
    try { new Sandbox('(module (func (export "f") unreachable))').call('f') } catch (e) { console.log(JSON.stringify([e.code, e.kind, e.message, e.wasmBacktrace])) }`
  const outputs = ['0', '1', 'full'].map(
    (value) =>
      spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, RUST_BACKTRACE: value } })
        .stdout,
  )
  t.is(outputs[0], outputs[1])
  t.is(outputs[1], outputs[2])
  t.regex(outputs[0], /ERR_WASM_TRAP/)
})

test('a WebAssembly exception nothing catches fails the call with ERR_WASM_EXCEPTION; caught, it is a value', async (t) => {
  const sandbox = new Sandbox(`(module
    (tag $failure (param i32))
    (func $fail (export "fail") (throw $failure (i32.const 7)))
    (func (export "recover") (result i32)
      (block $caught (result i32)
        (try_table (catch $failure $caught) (call $fail))
        (i32.const -1))))`)
  const error = t.throws(() => sandbox.call('fail'), { code: 'ERR_WASM_EXCEPTION' })
  t.regex(error.message, /threw a WebAssembly exception that no handler caught/)
  await t.throwsAsync(sandbox.callAsync('fail'), { code: 'ERR_WASM_EXCEPTION' })
  t.is(sandbox.call('recover'), 7, 'a handler in the guest catches it, and the sandbox stays usable')
  t.throws(() => new Sandbox('(module (tag $t) (func $start (throw $t)) (start $start))'), {
    code: 'ERR_WASM_EXCEPTION',
  })
})
