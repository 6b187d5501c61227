import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

import test from 'ava'

import { Sandbox } from 'wasm-memory-sandbox'

const growable =
  '(module (memory (export "memory") 1 100) (func (export "peek") (param i32) (result i32) (i32.load8_u (local.get 0))) (func (export "poke") (param i32 i32) (i32.store8 (local.get 0) (local.get 1))))'

test('memory() is a zero-copy view both ways and is cached while the memory keeps its size', (t) => {
  const sandbox = new Sandbox(growable)
  const view = sandbox.memory()
  t.is(view.length, 65536)
  t.is(sandbox.memory(), view)
  sandbox.call('poke', 10, 99)
  t.is(view[10], 99)
  view[11] = 42
  t.is(sandbox.call('peek', 11), 42)
})

test('after grow() old views keep their bytes and length; memory() then covers the new size', (t) => {
  const sandbox = new Sandbox(growable)
  const before = sandbox.memory()
  before[100] = 5
  t.is(sandbox.grow(2), 1)
  const after = sandbox.memory()
  t.not(after, before)
  t.is(before.length, 65536)
  t.is(after.length, 3 * 65536)
  t.is(after[100], 5)
  before[100] = 6
  t.is(after[100], 6)
  after[3 * 65536 - 1] = 1
  t.is(sandbox.call('peek', 3 * 65536 - 1), 1)
})

test('memory(name) views a named memory; an unknown name throws ERR_WASM_NO_MEMORY', (t) => {
  const sandbox = new Sandbox('(module (memory (export "heap") 2))')
  t.is(sandbox.memory('heap').length, 2 * 65536)
  t.is(sandbox.memory().length, 2 * 65536, 'the only memory is the default one')
  t.throws(() => sandbox.memory('nope'), { code: 'ERR_WASM_NO_MEMORY' })
  t.throws(() => sandbox.memory(5), { instanceOf: TypeError })
})

test('a guest without memory throws ERR_WASM_NO_MEMORY for memory(), read, write and grow', (t) => {
  const sandbox = new Sandbox('(module (func (export "f")))')
  for (const action of [
    () => sandbox.memory(),
    () => sandbox.read(0, 1),
    () => sandbox.write(0, Buffer.alloc(1)),
    () => sandbox.grow(1),
    () => sandbox.memorySize,
  ]) {
    t.throws(action, { code: 'ERR_WASM_NO_MEMORY' })
  }
})

test('read and write copy bytes with bounds checks', (t) => {
  const sandbox = new Sandbox(growable)
  sandbox.write(65530, Buffer.from([1, 2, 3, 4, 5, 6]))
  t.deepEqual([...sandbox.read(65530, 6)], [1, 2, 3, 4, 5, 6])
  const copy = sandbox.read(65530, 2)
  copy[0] = 200
  t.is(sandbox.call('peek', 65530), 1, 'read returns a copy')
  t.deepEqual([...sandbox.read(65536, 0)], [])
  sandbox.write(0, new Uint8Array(0))
})

for (const [label, action, errorClass] of [
  ['read past the end', (s) => s.read(65530, 7), RangeError],
  ['read at an offset past the end', (s) => s.read(65537, 0), RangeError],
  ['read with a negative offset', (s) => s.read(-1, 1), RangeError],
  ['read with a fractional length', (s) => s.read(0, 1.5), RangeError],
  ['read with a NaN offset', (s) => s.read(NaN, 1), RangeError],
  ['read with a huge length', (s) => s.read(0, 2 ** 53), RangeError],
  ['read with offset + length overflowing', (s) => s.read(2 ** 32, 2 ** 32), RangeError],
  ['read with a string offset', (s) => s.read('0', 1), TypeError],
  ['write past the end', (s) => s.write(65535, Buffer.from([1, 2])), RangeError],
  ['write a string', (s) => s.write(0, 'abc'), TypeError],
  ['write an array of numbers', (s) => s.write(0, [1, 2]), TypeError],
  ['write with a missing offset', (s) => s.write(undefined, Buffer.from([1])), TypeError],
  ['grow by a negative count', (s) => s.grow(-1), RangeError],
  ['grow past the memory maximum', (s) => s.grow(100), Error],
]) {
  test(`${label} throws a ${errorClass.name}, writes nothing, and the sandbox stays usable`, (t) => {
    const sandbox = new Sandbox(growable)
    sandbox.write(65530, Buffer.from([9, 9, 9, 9, 9, 9]))
    t.throws(() => action(sandbox), { instanceOf: errorClass })
    t.deepEqual([...sandbox.read(65530, 6)], [9, 9, 9, 9, 9, 9])
    t.is(sandbox.memorySize, 65536)
    t.is(sandbox.call('peek', 65535), 9)
  })
}

test('write accepts a view of the same memory, even overlapping', (t) => {
  const sandbox = new Sandbox(growable)
  const view = sandbox.memory()
  view.set([1, 2, 3, 4], 0)
  sandbox.write(2, view.subarray(0, 4))
  t.deepEqual([...view.subarray(0, 6)], [1, 2, 1, 2, 3, 4])
})

test('dispose() detaches views and every later call throws ERR_SANDBOX_DISPOSED', (t) => {
  const sandbox = new Sandbox(growable)
  const view = sandbox.memory()
  sandbox.grow(1)
  const grown = sandbox.memory()
  sandbox.dispose()
  t.is(view.length, 0)
  t.is(grown.length, 0)
  for (const action of [
    () => sandbox.call('peek', 0),
    () => sandbox.memory(),
    () => sandbox.read(0, 1),
    () => sandbox.write(0, Buffer.alloc(1)),
    () => sandbox.grow(1),
    () => sandbox.memorySize,
  ]) {
    t.throws(action, { code: 'ERR_SANDBOX_DISPOSED' })
  }
  t.notThrows(() => sandbox.dispose())
  t.notThrows(() => sandbox[Symbol.dispose]())
})

test('Sandbox views outlive a garbage-collected sandbox', (t) => {
  const child = fileURLToPath(new URL('helpers/sandbox-view-outlives-sandbox.mjs', import.meta.url))
  const run = spawnSync(process.execPath, ['--expose-gc', child], { encoding: 'utf8', timeout: 60_000 })
  t.is(run.status, 0, run.stderr)
  t.is(run.stdout.trim(), 'ok')
})
