import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import test from 'ava'

import { Module, Sandbox } from 'wasm-memory-sandbox'

import { guestPath, guestText } from './helpers/guests.mjs'

test('Module compiles WebAssembly text and describes exports with their signatures', (t) => {
  const module = new Module(guestText('plugin.wat'))
  const exports = Object.fromEntries(module.exports.map((entry) => [entry.name, entry]))
  t.deepEqual(exports.memory, { name: 'memory', kind: 'memory' })
  t.deepEqual(exports.add_i64, { name: 'add_i64', kind: 'function', params: ['i64', 'i64'], results: ['i64'] })
  t.deepEqual(exports.pair, { name: 'pair', kind: 'function', params: ['i32'], results: ['i32', 'i32'] })
  t.deepEqual(exports.mul_f32.params, ['f32', 'f32'])
})

test('Module describes imports with module, name, kind and signature', (t) => {
  const module = new Module(guestText('plugin.wat'))
  t.deepEqual(module.imports, [
    { module: 'env', name: 'log', kind: 'function', params: ['i32', 'i32'], results: [] },
    { module: 'env', name: 'random', kind: 'function', params: [], results: ['f64'] },
  ])
})

test('Module.fromFile reads .wat text and .wasm binaries', (t) => {
  const fromText = Module.fromFile(guestPath('traps.wat'))
  t.true(fromText.exports.some((entry) => entry.name === 'ok'))
  const directory = mkdtempSync(join(tmpdir(), 'wasm-memory-sandbox-'))
  t.teardown(() => rmSync(directory, { recursive: true, force: true }))
  const wasmPath = join(directory, 'infinite_loop.wasm')
  // A binary made from the text by the package itself would be circular; use a known minimal module.
  const minimal = Buffer.from('0061736d01000000010401600000030201000707010372756e00000a040102000b', 'hex')
  writeFileSync(wasmPath, minimal)
  const fromBinary = Module.fromFile(wasmPath)
  t.deepEqual(fromBinary.exports, [{ name: 'run', kind: 'function', params: [], results: [] }])
  t.is(new Sandbox(fromBinary).call('run'), undefined)
  t.deepEqual([...readFileSync(wasmPath)], [...minimal])
})

test('Module.fromFile on a missing file throws ERR_WASM_READ_FILE naming the path', (t) => {
  const error = t.throws(() => Module.fromFile('/no/such/guest.wasm'))
  t.is(error.code, 'ERR_WASM_READ_FILE')
  t.regex(error.message, /\/no\/such\/guest\.wasm/)
})

for (const [label, source, reason] of [
  ['truncated bytes', new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00]), /unexpected end/],
  ['random bytes', new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]), /magic|expected/i],
  ['malformed text', '(module (func (export "f") (result i32) i64.const 1))', /type mismatch/],
  ['text that does not parse', '(module (fnuc))', /unexpected|expected/],
  ['an empty buffer', new Uint8Array(0), /.+/],
]) {
  test(`Module of ${label} throws ERR_WASM_COMPILE with wasmtime's reason`, (t) => {
    const error = t.throws(() => new Module(source))
    t.is(error.code, 'ERR_WASM_COMPILE')
    t.regex(error.message, /^the WebAssembly module failed to compile: /)
    t.regex(error.message, reason)
  })
}

for (const [label, value] of [
  ['a number', 5],
  ['undefined', undefined],
  ['an Int32Array', new Int32Array(4)],
  ['a plain object', {}],
]) {
  test(`new Module(${label}) throws a TypeError`, (t) => {
    t.throws(() => new Module(value), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
  })
}

test('Module accepts an ArrayBuffer and a Buffer as well as a Uint8Array', (t) => {
  const bytes = Buffer.from('0061736d01000000010401600000030201000707010372756e00000a040102000b', 'hex')
  for (const source of [
    bytes,
    new Uint8Array(bytes),
    bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length),
  ]) {
    t.is(new Module(source).exports[0].name, 'run')
  }
})

test('module.instantiate() and new Sandbox(module) give independent sandboxes of one module', (t) => {
  const module = new Module('(module (memory (export "memory") 1) (func (export "f") (result i32) i32.const 7))')
  const first = module.instantiate()
  const second = new Sandbox(module)
  first.memory()[0] = 1
  t.is(second.memory()[0], 0)
  t.is(first.call('f'), 7)
  t.is(second.call('f'), 7)
})

test('compiling the same bytes twice reuses the compiled code (the second compile is much faster)', (t) => {
  // A module with enough functions that compiling it takes measurable time.
  const functions = Array.from(
    { length: 3000 },
    (_, index) => `(func (export "f${index}") (param i32) (result i32) (i32.mul (local.get 0) (i32.const ${index})))`,
  )
  const text = `(module ${functions.join('\n')})`
  const started = process.hrtime.bigint()
  new Module(text)
  const cold = Number(process.hrtime.bigint() - started)
  const again = process.hrtime.bigint()
  const reused = new Module(text)
  const warm = Number(process.hrtime.bigint() - again)
  t.is(reused.exports.length, 3000)
  t.true(warm * 3 < cold, `cold ${cold / 1e6} ms, warm ${warm / 1e6} ms`)
})
