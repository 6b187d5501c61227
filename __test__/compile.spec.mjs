// Module.compile (a background thread, the event loop keeps running) and the Winch compiler.
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'

import test from 'ava'

import { Module, Sandbox } from 'wasm-memory-sandbox'

import { guestText } from './helpers/guests.mjs'
import { longestStall } from './helpers/stall.mjs'

const require = createRequire(import.meta.url)
// A real 0.69 MB Emscripten module (sql.js): about a second to compile with Cranelift here.
const sqlWasm = readFileSync(require.resolve('sql.js/dist/sql-wasm.wasm'))

test.serial('Module.compile compiles a large module while the event loop keeps running', async (t) => {
  // Fresh bytes for each compile (a changed custom section), so neither the in-process nor the
  // disk cache has them.
  const variant = (tag) => Buffer.concat([sqlWasm, Buffer.from([0, 5, 4, 0x74, 0x61, 0x67, tag])])
  const asynchronous = await longestStall(() => Module.compile(variant(1)))
  t.true(asynchronous.value instanceof Module)
  t.true(asynchronous.value.exports.length > 50)
  // The same work on the main thread, for contrast: the loop stalls for the whole compile.
  const synchronous = await longestStall(async () => {
    await new Promise((resolve) => setTimeout(resolve, 20))
    return new Module(variant(2))
  })
  t.log(
    `async: ${asynchronous.elapsed.toFixed(0)} ms, longest stall ${asynchronous.longest.toFixed(0)} ms; ` +
      `sync: ${synchronous.elapsed.toFixed(0)} ms, longest stall ${synchronous.longest.toFixed(0)} ms`,
  )
  t.true(synchronous.longest > 200, 'the synchronous compile is long enough to see a stall')
  t.true(
    asynchronous.longest < synchronous.longest / 4,
    `async stall ${asynchronous.longest} ms vs sync ${synchronous.longest} ms`,
  )
  t.true(asynchronous.longest < 500, `the loop never stalled for long (${asynchronous.longest} ms)`)
})

test('Module.compile resolves to a working Module and accepts text, bytes and ArrayBuffers', async (t) => {
  const text = '(module (func (export "double") (param i32) (result i32) (i32.mul (local.get 0) (i32.const 2))))'
  const fromText = await Module.compile(text)
  t.is(new Sandbox(fromText).call('double', 21), 42)
  const bytes = Buffer.from('0061736d01000000010401600000030201000707010372756e00000a040102000b', 'hex')
  const fromBytes = await Module.compile(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length))
  t.deepEqual(fromBytes.exports, [{ name: 'run', kind: 'function', params: [], results: [] }])
  t.is(fromBytes.compiler, 'cranelift')
})

test('Module.compile copies the bytes first: changing them after the call does not matter', async (t) => {
  const bytes = Buffer.from('0061736d01000000010401600000030201000707010372756e00000a040102000b', 'hex')
  const pending = Module.compile(bytes)
  bytes.fill(0)
  t.is((await pending).exports[0].name, 'run')
})

test('Module.compile rejects malformed modules with ERR_WASM_COMPILE', async (t) => {
  const error = await t.throwsAsync(Module.compile(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8])))
  t.is(error.code, 'ERR_WASM_COMPILE')
  t.regex(error.message, /^the WebAssembly module failed to compile: /)
})

test('Module.compile rejects bad arguments with coded TypeErrors and RangeErrors', async (t) => {
  await t.throwsAsync(Module.compile(42), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
  await t.throwsAsync(Module.compile('(module)', 'winch'), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
  await t.throwsAsync(Module.compile('(module)', { compiler: 'v8' }), {
    instanceOf: RangeError,
    code: 'ERR_OUT_OF_RANGE',
  })
  await t.throwsAsync(Module.compile('(module)', { compiler: 1 }), {
    instanceOf: TypeError,
    code: 'ERR_INVALID_ARG_TYPE',
  })
  await t.throwsAsync(Module.compile('(module)', { optimize: true }), {
    instanceOf: TypeError,
    code: 'ERR_INVALID_ARG_TYPE',
    message: /Unknown option "optimize"/,
  })
})

test('new Module and Module.fromFile take the compiler option too', (t) => {
  t.throws(() => new Module('(module)', { compiler: 'llvm' }), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
  t.is(new Module('(module)', { compiler: 'winch' }).compiler, 'winch')
  t.is(new Module('(module)', {}).compiler, 'cranelift')
  t.is(new Module('(module)').compiler, 'cranelift')
})

test('Winch code computes what Cranelift code computes, on a real module', async (t) => {
  const plugin = guestText('plugin.wat')
  const imports = { env: { log: () => {}, random: () => 0.5 } }
  const winch = new Sandbox(new Module(plugin, { compiler: 'winch' }), { imports })
  const cranelift = new Sandbox(new Module(plugin), { imports })
  t.is(winch.call('add_i64', 1n << 40n, 5n), cranelift.call('add_i64', 1n << 40n, 5n))
  t.deepEqual(winch.call('pair', 9), cranelift.call('pair', 9))
  const sql = await Module.compile(sqlWasm, { compiler: 'winch' })
  t.is(sql.compiler, 'winch')
  t.deepEqual(sql.exports, new Module(sqlWasm).exports)
})

test('Winch code honours fuel budgets and time limits', (t) => {
  const loop = new Module(guestText('infinite_loop.wat'), { compiler: 'winch' })
  const fueled = new Sandbox(loop, { fuel: 100_000 })
  t.throws(() => fueled.call('spin'), { code: 'ERR_WASM_OUT_OF_FUEL' })
  const timed = new Sandbox(loop, { timeoutMs: 50 })
  const started = performance.now()
  t.throws(() => timed.call('spin'), { code: 'ERR_WASM_TIMEOUT' })
  t.true(performance.now() - started < 2000)
  t.is(timed.call('add', 2, 3), 5)
})
