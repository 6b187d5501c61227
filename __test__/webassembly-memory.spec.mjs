// WebAssembly namespace: Memory. buffer is the guest's memory itself, the same object until the
// memory grows, and detached by any growth (from JS, from wasm, through another instance).
import test from 'ava'

import { createWebAssembly } from 'wasm-memory-sandbox'

import { wat } from './helpers/wat.mjs'

const grower = wat(`(module
  (import "env" "memory" (memory 1))
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "size") (result i32) (memory.size))
  (func (export "store") (param i32 i32) (i32.store8 (local.get 0) (local.get 1)))
  (func (export "load") (param i32) (result i32) (i32.load8_u (local.get 0))))`)

const owner = wat(`(module
  (memory (export "memory") 1 10)
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "store") (param i32 i32) (i32.store8 (local.get 0) (local.get 1)))
  (func (export "load") (param i32) (result i32) (i32.load8_u (local.get 0))))`)

test('memory.buffer is zero-copy: wasm writes are seen through it, JS writes are read by wasm', (t) => {
  const WA = createWebAssembly()
  const { exports } = new WA.Instance(new WA.Module(owner))
  const bytes = new Uint8Array(exports.memory.buffer)
  exports.store(100, 24)
  t.is(bytes[100], 24)
  bytes[101] = 15
  t.is(exports.load(101), 15)
  t.true(exports.memory.buffer instanceof ArrayBuffer)
  t.is(Object.getPrototypeOf(exports.memory.buffer), ArrayBuffer.prototype)
})

test('memory.buffer is the same object until the memory grows', (t) => {
  const WA = createWebAssembly()
  const memory = new WA.Memory({ initial: 1, maximum: 4 })
  const first = memory.buffer
  t.is(memory.buffer, first)
  t.is(first.byteLength, 65536)
  t.is(memory.grow(1), 1)
  t.is(first.byteLength, 0, 'the old buffer is detached')
  const second = memory.buffer
  t.not(second, first)
  t.is(second.byteLength, 2 * 65536)
  t.is(memory.buffer, second)
})

test('memory.grow(0) detaches the buffer too, as the JS API requires', (t) => {
  const WA = createWebAssembly()
  const memory = new WA.Memory({ initial: 1 })
  const first = memory.buffer
  t.is(memory.grow(0), 1)
  t.is(first.byteLength, 0)
  t.is(memory.buffer.byteLength, 65536)
})

test('growth from wasm detaches the buffer JS holds, before the call returns to JS', (t) => {
  const WA = createWebAssembly()
  const { exports } = new WA.Instance(new WA.Module(owner))
  const before = exports.memory.buffer
  const view = new Uint8Array(before)
  view[5] = 7
  t.is(exports.grow(2), 1)
  t.is(before.byteLength, 0)
  t.is(view.length, 0)
  const after = new Uint8Array(exports.memory.buffer)
  t.is(after.length, 3 * 65536)
  t.is(after[5], 7, 'the memory grew in place: same bytes')
})

test('growth through another instance sharing the memory detaches the buffer', (t) => {
  const WA = createWebAssembly()
  const memory = new WA.Memory({ initial: 1, maximum: 8 })
  const a = new WA.Instance(new WA.Module(grower), { env: { memory } }).exports
  const b = new WA.Instance(new WA.Module(grower), { env: { memory } }).exports
  const held = memory.buffer
  a.store(10, 99)
  t.is(b.load(10), 99, 'both instances see one memory')
  t.is(new Uint8Array(held)[10], 99)
  t.is(b.grow(1), 1)
  t.is(held.byteLength, 0)
  t.is(a.size(), 2)
  t.is(memory.buffer.byteLength, 2 * 65536)
})

test('a JS import sees the buffer detached by growth earlier in the same call', (t) => {
  const WA = createWebAssembly()
  const memory = new WA.Memory({ initial: 1, maximum: 8 })
  const held = memory.buffer
  let seen
  const module = new WA.Module(
    wat(`(module (import "env" "memory" (memory 1)) (import "env" "check" (func $check))
      (func (export "run") (drop (memory.grow (i32.const 1))) (call $check)))`),
  )
  const { exports } = new WA.Instance(module, {
    env: { memory, check: () => (seen = [held.byteLength, memory.buffer.byteLength]) },
  })
  exports.run()
  t.deepEqual(seen, [0, 2 * 65536])
})

test('an exported memory is the same Memory object each time, and the one given as import', (t) => {
  const WA = createWebAssembly()
  const memory = new WA.Memory({ initial: 1 })
  const module = new WA.Module(wat(`(module (import "env" "memory" (memory 1)) (export "memory" (memory 0)))`))
  const instance = new WA.Instance(module, { env: { memory } })
  t.is(instance.exports.memory, memory)
  const { exports } = new WA.Instance(new WA.Module(owner))
  t.is(exports.memory, exports.memory)
  t.true(exports.memory instanceof WA.Memory)
})

test('memory.grow past maxMemoryBytes throws RangeError from JS and returns -1 in wasm', (t) => {
  const WA = createWebAssembly({ maxMemoryBytes: 2 * 65536 })
  const { exports } = new WA.Instance(new WA.Module(owner))
  t.is(exports.grow(1), 1)
  t.is(exports.grow(1), -1, 'wasm memory.grow past the limit gives -1')
  t.throws(() => exports.memory.grow(1), { instanceOf: RangeError })
  const memory = new WA.Memory({ initial: 1 })
  t.throws(() => memory.grow(2), { instanceOf: RangeError })
  t.is(memory.grow(1), 1)
  t.throws(() => new WA.Memory({ initial: 3 }), { instanceOf: RangeError })
})

test('Memory descriptors are validated as the JS API says', (t) => {
  const WA = createWebAssembly()
  t.throws(() => new WA.Memory(), { instanceOf: TypeError })
  t.throws(() => new WA.Memory({}), { instanceOf: TypeError })
  t.throws(() => new WA.Memory({ initial: -1 }), { instanceOf: TypeError })
  t.throws(() => new WA.Memory({ initial: 2, maximum: 1 }), { instanceOf: RangeError })
  t.throws(() => new WA.Memory({ initial: 65537 }), { instanceOf: RangeError })
  t.throws(() => WA.Memory({ initial: 1 }), { instanceOf: TypeError })
  t.is(new WA.Memory({ initial: '2' }).buffer.byteLength, 2 * 65536)
})

test('64-bit memories (memory64): BigInt sizes from JS, i64 addresses in wasm, the same zero-copy buffer and limits', (t) => {
  const WA = createWebAssembly({ maxMemoryBytes: 4 * 65536 })
  const memory = new WA.Memory({ address: 'i64', initial: 1n, maximum: 8n })
  t.is(memory.buffer.byteLength, 65536)
  const { exports } = new WA.Instance(
    new WA.Module(
      wat(`(module
        (import "env" "memory" (memory i64 1))
        (func (export "store") (param i64 i32) (i32.store8 (local.get 0) (local.get 1)))
        (func (export "load") (param i64) (result i32) (i32.load8_u (local.get 0)))
        (func (export "grow") (param i64) (result i64) (memory.grow (local.get 0))))`),
    ),
    { env: { memory } },
  )
  const buffer = memory.buffer
  exports.store(65535n, 24)
  t.is(new Uint8Array(buffer)[65535], 24, 'wasm writes at an i64 address are seen through the buffer')
  new Uint8Array(buffer)[7] = 15
  t.is(exports.load(7n), 15)
  t.is(memory.grow(1n), 1n, 'grow takes and returns a BigInt')
  t.is(buffer.byteLength, 0, 'and detaches the old buffer')
  t.is(exports.grow(1n), 2n)
  t.is(exports.grow(1n), 3n)
  t.is(exports.grow(1n), -1n, 'past maxMemoryBytes, memory.grow gives -1 in wasm')
  t.throws(() => memory.grow(1n), { instanceOf: RangeError })
  t.throws(() => memory.grow(1), { instanceOf: TypeError }, 'an i64 memory takes a BigInt')
  t.throws(() => new WA.Memory({ address: 'i64', initial: -1n }), { instanceOf: TypeError })
  t.throws(() => new WA.Memory({ address: 'i64', initial: 2n, maximum: 1n }), { instanceOf: RangeError })
  t.throws(() => new WA.Memory({ address: 'i128', initial: 1 }), { instanceOf: TypeError })
  const exported = new WA.Instance(new WA.Module(wat('(module (memory (export "m") i64 1))'))).exports.m
  t.is(exported.grow(1n), 1n, 'a 64-bit memory exported by wasm grows by BigInt too')
  t.throws(
    () => new WA.Instance(new WA.Module(wat('(module (import "env" "m" (memory 1)))')), { env: { m: memory } }),
    {
      instanceOf: WA.LinkError,
    },
    'an i64 memory is not an i32 memory import',
  )
})
