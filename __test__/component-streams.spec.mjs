// stream<u8> and future<T> in a component's own functions (examples/components/rust-p3/src/streams.rs),
// as jco's WASI 0.3 mapping types them: a stream JS gets is a ReadableStream of Uint8Array chunks,
// a future a Promise; JS gives a stream as a ReadableStream, an (async) iterable of chunks or a
// Uint8Array, and a future as a Promise or a value. Both directions through exports and JS imports,
// values written after the call returned, backpressure, cancellation, limits and bad input.
import { Readable } from 'node:stream'

import test from 'ava'

import { Component } from 'wasm-memory-sandbox'

import { guestPath } from './helpers/guests.mjs'

const component = Component.fromFile(guestPath('build/p3-streams.rust.component.wasm'))

const quietImports = { source: () => [], sink: () => {}, later: () => '' }
const instantiate = (options = {}) =>
  component.instantiate({ wasi: {}, timeoutMs: 20_000, ...options, imports: { ...quietImports, ...options.imports } })

/** Reads a stream to its end: its bytes' count and sum, and its chunks' types. */
async function drain(stream) {
  let count = 0
  let sum = 0
  const kinds = new Set()
  for await (const chunk of stream) {
    kinds.add(chunk.constructor.name)
    count += chunk.byteLength
    for (const byte of chunk) sum += byte
  }
  return { count, sum, kinds: [...kinds] }
}

const residentMiB = () => process.memoryUsage().rss / 2 ** 20

test('a stream<u8> the guest returns is a ReadableStream of Uint8Array chunks, its value given before the guest has written it all', async (t) => {
  const { produce } = instantiate().exports
  const count = 3 * 1024 * 1024 + 5 // past what may be on its way to JS unread (1 MiB)
  const stream = await produce(count, 7)
  t.true(stream instanceof ReadableStream)
  t.deepEqual(await drain(stream), { count, sum: count * 7, kinds: ['Buffer'] })
})

test('a stream<u8> JS gives may be a Uint8Array, an iterable, an async generator, a Node Readable or a ReadableStream', async (t) => {
  const { total } = instantiate().exports
  t.deepEqual(await total(new Uint8Array([1, 2, 3, 4])), [4n, 10n])
  t.deepEqual(await total([new Uint8Array([5]), Buffer.from([6, 7]), 'AB']), [5n, 5n + 6n + 7n + 65n + 66n])
  const big = new Uint8Array(1 << 20).fill(3)
  const generated = (async function* () {
    for (let index = 0; index < 5; index += 1) yield big
  })()
  t.deepEqual(await total(generated), [5n << 20n, 15n << 20n])
  t.deepEqual(await total(Readable.from([Buffer.alloc(70_000, 1), Buffer.alloc(10, 2)])), [70_010n, 70_020n])
  const web = new ReadableStream({
    start(controller) {
      controller.enqueue(new Uint8Array([9, 9]))
      controller.close()
    },
  })
  t.deepEqual(await total(web), [2n, 18n])
  t.deepEqual(await total([]), [0n, 0n])
})

test('streams both ways at once: the guest reads a JS stream and writes a stream back as it goes', async (t) => {
  const { echo } = instantiate().exports
  const input = new Uint8Array(4 * 1024 * 1024)
  for (let index = 0; index < input.length; index += 1) input[index] = index % 251
  const echoed = await echo(
    (function* () {
      for (let at = 0; at < input.length; at += 100_000) yield input.subarray(at, at + 100_000)
    })(),
  )
  const chunks = []
  for await (const chunk of echoed) chunks.push(chunk)
  const output = Buffer.concat(chunks)
  t.is(output.length, input.length)
  t.true(output.every((byte, index) => byte === (input[index] + 1) % 256))
})

test('a future<T> JS gives may be a Promise or a value; a future the guest returns is a Promise its call settles with', async (t) => {
  const { answer } = instantiate().exports
  t.is(await answer(new Promise((resolve) => setTimeout(() => resolve('why'), 20))), 'answer: why')
  t.is(await answer('how'), 'answer: how')
})

test('a record holding a stream and a future: each crosses inside it', async (t) => {
  const { pair } = instantiate().exports
  const value = await pair(200_000)
  t.is(value.label, '200000 bytes')
  t.true(value.bytes instanceof ReadableStream)
  t.true(value.size instanceof Promise)
  t.is(await value.size, 200_000)
  t.deepEqual(await drain(value.bytes), { count: 200_000, sum: 200_000 * 112, kinds: ['Buffer'] })
})

test('JS imports: one returns a stream (an iterable), one gets a stream to read after returning, one returns a Promise for a future', async (t) => {
  let sunk
  let laterCalls = 0
  const instance = instantiate({
    imports: {
      source: (count) =>
        (function* () {
          for (let sent = 0; sent < count; sent += 1000) yield new Uint8Array(Math.min(1000, count - sent)).fill(2)
        })(),
      sink: (stream) => {
        sunk = stream
      },
      later: (value) => {
        laterCalls += 1
        return new Promise((resolve) => setTimeout(() => resolve(`later ${value}`), 10))
      },
    },
  })
  const { drainSource, fillSink, askLater } = instance.exports
  t.is(await drainSource(2_000_001), 4_000_002n)
  const filled = fillSink(3_000_000, 3)
  await filled // the call's value (none) comes as soon as the guest returned...
  t.true(sunk instanceof ReadableStream)
  t.deepEqual(await drain(sunk), { count: 3_000_000, sum: 9_000_000, kinds: ['Buffer'] }) // ...and its stream flows
  t.is(await askLater(5), '«later 5»')
  t.is(laterCalls, 1)
})

// Serial: the process's memory is measured, and timeouts are short (no other test competes).
test.serial(
  'backpressure: a guest writing forever to a stream nobody reads waits, and the host stays bounded',
  async (t) => {
    const instance = instantiate()
    const before = residentMiB()
    const endless = await instance.exports.endless()
    await new Promise((resolve) => setTimeout(resolve, 1000))
    const grown = residentMiB() - before
    t.true(grown < 16, `the process grew ${grown.toFixed(1)} MiB while the stream was not read`)
    const reader = endless.getReader()
    let read = 0
    while (read < 64 * 1024 * 1024) read += (await reader.read()).value.byteLength
    await reader.cancel() // the guest's next write sees the reader gone, and its call ends
    t.deepEqual(await instance.exports.total(new Uint8Array([9])), [1n, 9n], 'the instance serves the next call')
  },
)

test.serial(
  'timeoutMs covers the streams of a call: a future never written and a stream never read fail with ERR_WASM_TIMEOUT',
  async (t) => {
    await t.throwsAsync(instantiate({ timeoutMs: 300 }).exports.never(), { code: 'ERR_WASM_TIMEOUT' })
    const endless = await instantiate({ timeoutMs: 300 }).exports.endless()
    await new Promise((resolve) => setTimeout(resolve, 500))
    const error = await drain(endless).catch((failure) => failure)
    t.is(error.code, 'ERR_WASM_TIMEOUT')
  },
)

test('interrupt() and dispose() end a call whose stream is flowing; the stream errors', async (t) => {
  const interrupted = instantiate({ timeoutMs: undefined })
  const first = await interrupted.exports.endless()
  setTimeout(() => interrupted.interrupt(), 50)
  t.is((await drain(first).catch((failure) => failure)).code, 'ERR_WASM_INTERRUPTED')
  const disposed = instantiate({ timeoutMs: undefined })
  const second = await disposed.exports.endless()
  setTimeout(() => disposed.dispose(), 50)
  t.true((await drain(second).catch((failure) => failure)) instanceof Error)
})

test('bad input: a value that is not a byte source is a TypeError; a rejected or ill-typed future fails the call as an import would', async (t) => {
  const instance = instantiate()
  const { total, answer } = instance.exports
  for (const bad of [42, 'text', null, { length: 1 }]) {
    await t.throwsAsync(total(bad), {
      instanceOf: TypeError,
      code: 'ERR_INVALID_ARG_TYPE',
      message: /stream<u8> source/,
    })
  }
  t.deepEqual(await total(new Uint8Array([1])), [1n, 1n], 'the instance stays usable')
  await t.throwsAsync(answer(Promise.reject(new Error('nope'))), { code: 'ERR_WASM_IMPORT', message: /rejected: nope/ })
  await t.throwsAsync(instantiate().exports.answer(42), {
    code: 'ERR_WASM_IMPORT',
    message: /the value given for a future must be of type string/,
  })
})

test('a JS stream source that fails, or yields something that is not bytes, ends the stream where it stopped', async (t) => {
  const { total } = instantiate().exports
  const failing = (async function* () {
    yield new Uint8Array([1, 1])
    throw new Error('source failed')
  })()
  t.deepEqual(await total(failing), [2n, 2n])
  t.deepEqual(await total([new Uint8Array([4]), 17, new Uint8Array([5])]), [1n, 4n])
})
