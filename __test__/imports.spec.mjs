import test from 'ava'

import { Module, Sandbox } from 'wasm-memory-sandbox'

import { guestText } from './helpers/guests.mjs'

const plugin = new Module(guestText('plugin.wat'))

test('a log(ptr, len) import reads its string out of guest memory, by read() and by the view', (t) => {
  const lines = []
  const sandbox = new Sandbox(plugin, {
    imports: {
      env: {
        log(pointer, length) {
          lines.push(sandbox.read(pointer, length).toString('utf8'))
          lines.push(sandbox.memory().toString('utf8', pointer, pointer + length))
        },
        random: () => 0.25,
      },
    },
  })
  t.is(sandbox.call('run'), 21)
  t.deepEqual(lines, ['hello from the plugin', 'hello from the plugin'])
})

test('inside an import the sandbox is fully usable: write, grow and a re-entrant call', (t) => {
  let sandbox
  const seen = {}
  sandbox = new Sandbox(plugin, {
    imports: {
      env: {
        log(pointer) {
          sandbox.write(pointer, Buffer.from('HELLO'))
          seen.reentrant = sandbox.call('negate', 9)
          seen.previousPages = sandbox.grow(1)
          seen.size = sandbox.memorySize
        },
        random: () => 1,
      },
    },
  })
  sandbox.call('run')
  t.deepEqual(seen, { reentrant: -9, previousPages: 1, size: 131072 })
  t.is(sandbox.read(1024, 5).toString(), 'HELLO')
})

test('an exception thrown by an import ends the call; the caller gets ERR_WASM_IMPORT with the original as cause', (t) => {
  const original = new Error('the plugin host is unhappy')
  const sandbox = new Sandbox(plugin, {
    imports: {
      env: {
        log() {
          throw original
        },
        random: () => 0,
      },
    },
  })
  const error = t.throws(() => sandbox.call('run'))
  t.is(error.code, 'ERR_WASM_IMPORT')
  t.is(error.cause, original)
  t.regex(error.message, /env\.log/)
  t.regex(error.message, /the plugin host is unhappy/)
  t.is(sandbox.call('negate', 1), -1, 'usable after')
})

test('a non-Error thrown by an import is the cause as it was thrown', (t) => {
  const sandbox = new Sandbox(plugin, {
    imports: {
      env: {
        log() {
          throw 'plain string'
        },
        random: () => 0,
      },
    },
  })
  const error = t.throws(() => sandbox.call('run'))
  t.is(error.cause, 'plain string')
})

test('an import returning the wrong type fails the call with ERR_WASM_IMPORT naming the expected type', (t) => {
  const sandbox = new Sandbox(plugin, { imports: { env: { log() {}, random: () => 'not a number' } } })
  const error = t.throws(() => sandbox.call('scaled_random', 2))
  t.is(error.code, 'ERR_WASM_IMPORT')
  t.regex(error.message, /env\.random/)
  t.regex(error.message, /must be of type number \(f64\)/)
})

for (const [label, imports, pattern] of [
  ['no imports option', undefined, /"env\.log" \(env\.log\(i32, i32\) -> \(\)\) is missing/],
  ['a missing namespace', {}, /"env\.log".* is missing: imports\["env"\] is undefined/],
  ['a missing function', { env: { random: () => 0 } }, /"env\.log".* must be a function; got undefined/],
  [
    'a number instead of a function',
    { env: { log: 5, random: () => 0 } },
    /"env\.log".* must be a function; got type number \(5\)/,
  ],
]) {
  test(`instantiating with ${label} fails with ERR_WASM_LINK naming the import`, (t) => {
    const error = t.throws(() => new Sandbox(plugin, imports === undefined ? undefined : { imports }))
    t.is(error.code, 'ERR_WASM_LINK')
    t.regex(error.message, pattern)
  })
}

test('a non-function import (a memory) fails with ERR_WASM_LINK', (t) => {
  const error = t.throws(() => new Sandbox('(module (import "env" "memory" (memory 1)))', { imports: { env: {} } }))
  t.is(error.code, 'ERR_WASM_LINK')
  t.regex(error.message, /"env\.memory" is a memory; only function imports can be supplied/)
})

test('one name imported twice with one type is one function (esbuild.wasm does this); two types fail clearly', (t) => {
  const twice = `(module
    (import "env" "next" (func $first (result i32)))
    (import "env" "next" (func $second (result i32)))
    (func (export "both") (result i32) (i32.add (call $first) (call $second))))`
  let calls = 0
  const sandbox = new Sandbox(twice, { imports: { env: { next: () => ++calls } } })
  t.is(sandbox.call('both'), 3, 'both imports reach the one JS function, in order')
  t.is(calls, 2)
  const clash = `(module
    (import "env" "f" (func (param i32)))
    (import "env" "f" (func (param i64))))`
  const error = t.throws(() => new Sandbox(clash, { imports: { env: { f() {} } } }), { code: 'ERR_WASM_LINK' })
  t.regex(error.message, /"env\.f" is imported twice with different types/)
})

test('an import that disposes its own sandbox: the call finishes, later calls throw ERR_SANDBOX_DISPOSED', (t) => {
  let sandbox
  let view
  sandbox = new Sandbox(plugin, {
    imports: {
      env: {
        log() {
          view = sandbox.memory()
          sandbox.dispose()
        },
        random: () => 0,
      },
    },
  })
  t.is(sandbox.call('run'), 21)
  t.true(sandbox.disposed)
  t.is(view.length, 0)
  t.throws(() => sandbox.call('negate', 1), { code: 'ERR_SANDBOX_DISPOSED' })
})

test('i64 arguments reach imports as bigint and several results come back from an array', (t) => {
  const sandbox = new Sandbox(
    `(module
      (import "host" "split" (func $split (param i64) (result i32 i32)))
      (func (export "go") (param i64) (result i32 i32) (call $split (local.get 0))))`,
    { imports: { host: { split: (value) => [Number(value >> 32n), Number(value & 0xffffffffn)] } } },
  )
  t.deepEqual(sandbox.call('go', (5n << 32n) | 7n), [5, 7])
})
