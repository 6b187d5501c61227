// A component instance under Sandbox's limits: timeoutMs, fuel, maxMemoryBytes (for every memory
// of every core instance inside the component, and at instantiation), traps; after a trap, a
// timeout or running out of fuel the component model forbids entering the instance again, which
// is a coded error, never a crash. And list<u8> of 64 MiB in both directions.
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

import test from 'ava'

import { Component } from 'wasm-memory-sandbox'

import { guestPath } from './helpers/guests.mjs'
import { mirrorImports } from './helpers/mirror.mjs'

const component = new Component(readFileSync(guestPath('build/types.rust.component.wasm')))
const textComponent = (name) =>
  Component.fromFile(fileURLToPath(new URL(`../examples/components/text/${name}`, import.meta.url)))

function instantiate(options = {}, mirror = {}) {
  const instance = component.instantiate({
    ...options,
    imports: {
      'demo:types/logger': { log() {}, logPoint() {} },
      'demo:types/host': { Kv: class {}, fetchNumber: () => 0 },
      'demo:types/mirror': { ...mirrorImports(), ...mirror },
      hostName: () => 'limits',
    },
  })
  return { instance, api: instance.exports.api, limits: instance.exports.limits }
}

const poisoned = { code: 'ERR_WASM_INSTANCE_POISONED', message: /cannot be entered again/ }

/** Every kind of entry into the instance is refused once it is poisoned. */
function assertPoisoned(t, { api, limits, instance }) {
  t.throws(() => api.echoU8(1), poisoned)
  t.throws(() => api.echoString('x'), poisoned)
  t.throws(() => limits.grow(0), poisoned)
  t.throws(() => instance.exports.hello('x'), poisoned)
  t.throws(() => new api.Counter(1), poisoned)
  t.false(instance.disposed)
  instance.dispose()
}

test('timeoutMs stops a guest that loops forever with ERR_WASM_TIMEOUT; the instance is then poisoned', (t) => {
  const side = instantiate({ timeoutMs: 50 })
  const started = performance.now()
  const error = t.throws(() => side.limits.spin(), { code: 'ERR_WASM_TIMEOUT' })
  const elapsed = performance.now() - started
  t.regex(error.message, /timeoutMs: 50/)
  t.true(elapsed >= 40, `stopped after ${elapsed} ms`)
  t.true(elapsed < 2_000, `stopped after ${elapsed} ms`)
  assertPoisoned(t, side)
  // A fresh instance of the same component works, and a call within the time is fine.
  const fresh = instantiate({ timeoutMs: 1_000 })
  t.is(fresh.limits.burn(1000n), instantiate().limits.burn(1000n))
  t.is(fresh.api.echoU8(3), 3)
})

test('fuel: burn(1e9) runs out with ERR_WASM_OUT_OF_FUEL, then the instance is poisoned; a small burn fits', (t) => {
  const side = instantiate({ fuel: 1_000_000 })
  t.throws(() => side.limits.burn(1e9), { code: 'ERR_WASM_OUT_OF_FUEL' })
  assertPoisoned(t, side)
  const enough = instantiate({ fuel: 10_000_000 })
  const expected = instantiate().limits.burn(1000n)
  t.is(typeof expected, 'bigint')
  t.is(enough.limits.burn(1000), expected)
  t.is(enough.api.echoU8(1), 1)
})

test('a trap is ERR_WASM_TRAP, and every later call ERR_WASM_INSTANCE_POISONED (never a crash)', (t) => {
  const side = instantiate()
  const error = t.throws(() => side.limits.trap(), { code: 'ERR_WASM_TRAP' })
  t.regex(error.message, /unreachable/)
  for (let attempt = 0; attempt < 3; attempt++) t.throws(() => side.limits.trap(), poisoned)
  assertPoisoned(t, side)
  t.throws(() => side.api.echoU8(1), { code: 'ERR_SANDBOX_DISPOSED' })
})

test('memory.grow past maxMemoryBytes returns -1 and the instance goes on', (t) => {
  const side = instantiate({ maxMemoryBytes: 4 * 2 ** 20 })
  const pages = side.limits.grow(0)
  t.true(pages > 0 && pages <= 64, `${pages} pages`)
  t.is(side.limits.grow(65), -1)
  t.is(side.limits.grow(1_000_000), -1)
  t.is(side.limits.grow(0), pages)
  t.is(side.api.echoString('still here'), 'still here')
  // Up to the cap exactly, and not a page more. (The guest's allocator did not get those pages:
  // only calls that allocate nothing are safe now.)
  const now = side.limits.grow(0)
  t.is(side.limits.grow(64 - now), now)
  t.is(side.limits.grow(0), 64)
  t.is(side.limits.grow(1), -1)
  t.is(side.api.echoU32(7), 7)
  // Without a cap the same growth succeeds.
  t.is(instantiate().limits.grow(65), pages)
})

test('a component whose memory starts above maxMemoryBytes fails to instantiate with ERR_WASM_MEMORY_LIMIT', (t) => {
  const big = textComponent('big-memory.wat')
  t.throws(() => big.instantiate({ maxMemoryBytes: 64 * 2 ** 20 }), { code: 'ERR_WASM_MEMORY_LIMIT' })
  t.is(big.instantiate({ maxMemoryBytes: 256 * 2 ** 20 }).exports.size(), 2000)
  t.is(big.instantiate().exports.size(), 2000)
})

test('maxMemoryBytes holds for each memory of a component made of two core modules', (t) => {
  const two = textComponent('two-memories.wat')
  const { exports } = two.instantiate({ maxMemoryBytes: 2 ** 20 })
  t.deepEqual(Object.keys(exports).sort(), ['growA', 'growB', 'sizeA', 'sizeB'])
  // 1 MiB is 16 pages: each memory may grow from 1 to 16 pages, no further.
  t.is(exports.growA(16), -1)
  t.is(exports.growA(15), 1)
  t.is(exports.growA(1), -1)
  t.is(exports.sizeA(), 16)
  t.is(exports.sizeB(), 1)
  t.is(exports.growB(16), -1)
  t.is(exports.growB(15), 1)
  t.is(exports.growB(1), -1)
  t.is(exports.sizeB(), 16)
  const uncapped = two.instantiate().exports
  t.is(uncapped.growA(100), 1)
  t.is(uncapped.growB(100), 1)
})

test('list<u8> of 64 MiB as a result and as an argument, within a generous maxMemoryBytes', (t) => {
  const size = 64 * 2 ** 20
  const side = instantiate({ maxMemoryBytes: 256 * 2 ** 20 })
  const bytes = side.limits.bytes(size)
  t.true(bytes instanceof Uint8Array)
  t.is(bytes.length, size)
  for (const index of [0, 1, 255, 256, 12345, size - 1]) t.is(bytes[index], (index * 31 + 7) % 256, `byte ${index}`)
  // The sum of (i * 31 + 7) mod 256 over 64 MiB: every 256 bytes cover each value once.
  const expected = BigInt(size / 256) * BigInt((255 * 256) / 2)
  t.is(side.limits.sumBytes(bytes), expected)
  const filled = new Uint8Array(size).fill(3)
  t.is(side.limits.sumBytes(filled), BigInt(size) * 3n)
  t.is(side.api.echoU8(1), 1)
})

test('a 64 MiB list<u8> argument under a 16 MiB maxMemoryBytes cannot be placed: a coded error, not a crash', (t) => {
  const side = instantiate({ maxMemoryBytes: 16 * 2 ** 20 })
  const error = t.throws(() => side.limits.sumBytes(new Uint8Array(64 * 2 ** 20)))
  t.regex(error?.code ?? '', /^ERR_WASM_/)
  t.is(instantiate({ maxMemoryBytes: 16 * 2 ** 20 }).limits.sumBytes(new Uint8Array(2 ** 20).fill(1)), 2n ** 20n)
})

test('a list<u32> of 5 Mi elements (20 MiB) round-trips: lists other than list<u8> are not capped below maxMemoryBytes', (t) => {
  // wasmtime charges "hostcall fuel" (128 MiB by default) per lifted value; lifted one Val per
  // element, a list of more than about 4 Mi elements would use it up and trap.
  const side = instantiate({ maxMemoryBytes: 256 * 2 ** 20 })
  const input = new Uint32Array(5 * 2 ** 20).map((_, index) => index * 7)
  const output = side.api.echoListU32(input)
  t.true(output instanceof Uint32Array)
  t.is(output.length, input.length)
  t.is(output[input.length - 1], (input.length - 1) * 7)
})

/** The peak resident memory of this process since `resetPeakResident()`, in bytes (Linux). */
function peakResident() {
  const line = readFileSync('/proc/self/status', 'utf8').match(/^VmHWM:\s+(\d+) kB/m)
  return Number(line[1]) * 1024
}

function resetPeakResident() {
  writeFileSync('/proc/self/clear_refs', '5')
}

/** (i * 31 + 7) mod 256 summed over `size` bytes (a multiple of 256). */
const patternSum = (size) => BigInt(size / 256) * BigInt((255 * 256) / 2)

test.serial(
  'list<u8> inside a record inside a result, 64 MiB each way: one copy, the host peak memory bounded',
  (t) => {
    const size = 64 * 2 ** 20
    const side = instantiate({ maxMemoryBytes: 512 * 2 ** 20 })
    globalThis.gc?.()
    resetPeakResident()
    const before = peakResident()
    const blob = side.limits.makeBlob('big', size)
    t.is(blob.name, 'big')
    t.true(blob.data instanceof Uint8Array)
    t.is(blob.data.length, size)
    for (const index of [0, 1, 255, 256, 12345, size - 1])
      t.is(blob.data[index], (index * 31 + 7) % 256, `byte ${index}`)
    t.true(blob.samples instanceof Float64Array)
    t.deepEqual([...blob.samples], [size, size / 2])
    // The same 64 MiB as an argument, twice: in the record and in a list of records.
    const [name, bytes, samples] = side.limits.sumBlobs(blob, [blob])
    t.is(name, 'big')
    t.is(bytes, 2n * patternSum(size))
    t.is(samples, 3 * size)
    const grown = peakResident() - before
    // The guest's memory holds the list three times (192 MiB) and JS once (64 MiB). One dynamic
    // value per byte (wasmtime's Val, 40 bytes each) would have been 2.5 GiB per list.
    t.true(grown < 640 * 2 ** 20, `peak resident memory grew by ${(grown / 2 ** 20).toFixed(0)} MiB`)
    t.log(`peak resident memory grew by ${(grown / 2 ** 20).toFixed(0)} MiB for 64 MiB out and 2 x 64 MiB in`)
  },
)

test('a result<record> with err at the top throws, and nested numeric lists keep their typed arrays', (t) => {
  const side = instantiate()
  const error = t.throws(() => side.limits.makeBlob('empty', 0))
  t.is(error.payload, 'empty: no bytes')
  const small = side.limits.makeBlob('small', 512)
  t.deepEqual([...small.samples], [512, 256])
  // Plain arrays of numbers are taken for numeric lists, inside records too.
  t.deepEqual(side.limits.sumBlobs({ name: 'a', data: [1, 2, 3], samples: [0.5] }, [small]), [
    'a',
    6n + patternSum(512),
    0.5 + 512 + 256,
  ])
  // What does not fit is named with its path, before the guest runs.
  t.throws(() => side.limits.sumBlobs({ name: 'a', data: [1, 256], samples: [] }, []), {
    instanceOf: RangeError,
    message: /data\[1\].*u8/,
  })
  t.throws(() => side.limits.sumBlobs({ name: 'a', data: new Uint16Array(2), samples: [] }, []), {
    instanceOf: TypeError,
    message: /Uint8Array/,
  })
  t.is(side.api.echoU8(7), 7)
})

test('a JS import gets and returns 16 MiB of list<u8> (from inside a record), each a typed array', (t) => {
  const size = 16 * 2 ** 20
  const received = []
  const side = instantiate(
    { maxMemoryBytes: 256 * 2 ** 20 },
    {
      mirrorListU8(value) {
        received.push(value)
        return value.map((byte) => byte ^ 0xff)
      },
    },
  )
  const data = new Uint8Array(size).map((_, index) => index % 251)
  const blob = side.limits.throughBlob({ name: 'through', data, samples: new Float64Array([1.5]) })
  t.is(received.length, 1)
  t.true(received[0] instanceof Uint8Array)
  t.is(received[0].length, size)
  t.is(received[0][size - 1], (size - 1) % 251)
  t.is(blob.name, 'through')
  t.is(blob.data.length, size)
  t.is(blob.data[size - 1], ((size - 1) % 251) ^ 0xff)
  t.deepEqual([...blob.samples], [1.5])
})

test('callAsync: a record holding 16 MiB of bytes crosses to a pool thread and back', async (t) => {
  const size = 16 * 2 ** 20
  const side = instantiate({ maxMemoryBytes: 256 * 2 ** 20 })
  const blob = await side.instance.callAsync(side.limits.makeBlob, 'async', size)
  t.is(blob.data.length, size)
  t.is(blob.data[size - 1], ((size - 1) * 31 + 7) % 256)
  const data = blob.data
  const pending = side.instance.callAsync(side.limits.sumBlobs, blob, [])
  data.fill(0) // the call took its own copy when it started
  t.deepEqual(await pending, ['async', patternSum(size), size * 1.5])
})
