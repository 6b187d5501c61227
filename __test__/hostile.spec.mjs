// Hostile guests and callers: each case is named after what it guards.
import { readFileSync } from 'node:fs'
import { Worker } from 'node:worker_threads'

import test from 'ava'

import { BufferSandbox, Module, Sandbox, zeroCopyViews } from 'wasm-memory-sandbox'

import { guestPath, guestText } from './helpers/guests.mjs'
import { nodeLine, transferOfExternalBufferThrows } from './helpers/node-line.mjs'

const recursion = guestText('deep_recursion.wat')

/** Runs `code` (CommonJS) in a worker and resolves with its message, error or exit code. */
async function inWorker(code, options = {}) {
  const worker = new Worker(code, { eval: true, ...options })
  try {
    return await new Promise((resolve) => {
      worker.once('message', (message) => resolve({ message }))
      worker.once('error', (error) => resolve({ error: error.message }))
      worker.once('exit', (exitCode) => resolve({ exitCode }))
    })
  } finally {
    await worker.terminate() // whatever happened, no worker outlives its test
  }
}

for (const stackSizeMb of [4, 1, 0.5]) {
  test(`deep recursion in a worker with stackSizeMb ${stackSizeMb} is a stack_overflow trap, never a native overflow`, async (t) => {
    const outcome = await inWorker(
      `const { Sandbox } = require('wasm-memory-sandbox')
       const sandbox = new Sandbox(${JSON.stringify(recursion)})
       let error
       try { sandbox.call('recurse', 0) } catch (caught) { error = caught }
       require('node:worker_threads').parentPort.postMessage({ code: error.code, kind: error.kind, after: sandbox.call('depth_ok', 10) })`,
      { resourceLimits: { stackSizeMb } },
    )
    t.deepEqual(outcome, { message: { code: 'ERR_WASM_TRAP', kind: 'stack_overflow', after: 10 } })
  })
}

test('a call from deep JS recursion with little stack left runs or is refused, never overflows', (t) => {
  const sandbox = new Sandbox(recursion)
  let outcome
  function descend(depth) {
    try {
      return descend(depth + 1)
    } catch {
      // Out of JS stack: try a wasm call right here, where little is left.
      try {
        outcome = sandbox.call('depth_ok', 1) === 1 ? 'ran' : 'wrong result'
      } catch (error) {
        if (error.code === 'ERR_WASM_TRAP' && error.kind === 'stack_overflow') outcome = 'refused'
        else if (error instanceof RangeError) outcome = 'no JS stack left for the call itself'
        else outcome = error.message
      }
      return depth
    }
  }
  descend(0)
  t.true(['ran', 'refused', 'no JS stack left for the call itself'].includes(outcome), String(outcome))
  t.is(sandbox.call('depth_ok', 100), 100)
})

test('Node’s own WebAssembly still reports its traps after sandboxes ran and trapped: signal handlers chain', (t) => {
  const trapping = new Sandbox(guestText('traps.wat'))
  t.throws(() => trapping.call('oob_load'), { code: 'ERR_WASM_TRAP' })
  new BufferSandbox().storeValueInWasmMemoryBufferIndexZero(1)
  const bytes = readFileSync(guestPath('build/text.rust.wasm'))
  const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes))
  t.throws(() => instance.exports.to_upper(0xfffffff0, 64), { instanceOf: WebAssembly.RuntimeError })
  t.throws(() => trapping.call('unreachable'), { code: 'ERR_WASM_TRAP', message: /unreachable/ })
})

test('the addon runs in several workers at once, each with its own sandboxes and limits', async (t) => {
  const code = `const { BufferSandbox, Sandbox } = require('wasm-memory-sandbox')
    let sum = 0
    for (let index = 0; index < 2000; index++) {
      const sandbox = new BufferSandbox()
      sandbox.storeValueInWasmMemoryBufferIndexZero(index & 0xff)
      sum += sandbox.memory()[sandbox.getWasmMemoryBufferPointer()]
      sandbox.dispose()
    }
    const timed = new Sandbox(${JSON.stringify(guestText('infinite_loop.wat'))}, { timeoutMs: 30 })
    let code
    try { timed.call('spin') } catch (error) { code = error.code }
    require('node:worker_threads').parentPort.postMessage({ sum, code, add: timed.call('add', 2, 3) })`
  const outcomes = await Promise.all([1, 2, 3].map(() => inWorker(code)))
  const expectedSum = Array.from({ length: 2000 }, (_, index) => index & 0xff).reduce((a, b) => a + b, 0)
  for (const outcome of outcomes)
    t.deepEqual(outcome, { message: { sum: expectedSum, code: 'ERR_WASM_TIMEOUT', add: 5 } })
})

test('a trap in a re-entrant call made by an import reaches the import, and the outer call goes on', (t) => {
  let sandbox
  const seen = []
  sandbox = new Sandbox(
    `(module
      (import "env" "probe" (func $probe (result i32)))
      (func (export "boom") unreachable)
      (func (export "outer") (result i32) (i32.add (call $probe) (i32.const 1))))`,
    {
      imports: {
        env: {
          probe() {
            try {
              sandbox.call('boom')
            } catch (error) {
              seen.push(error.kind)
            }
            return 41
          },
        },
      },
    },
  )
  t.is(sandbox.call('outer'), 42)
  t.deepEqual(seen, ['unreachable'])
})

for (const [label, source] of [
  ['a truncated module', new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x05])],
  ['random bytes', Uint8Array.from({ length: 4096 }, (_, index) => (index * 2654435761) >>> 24)],
  ['a declared memory past wasm32', '(module (memory 70000))'],
  ['a declared table past limits', '(module (table 20000000000 funcref))'],
]) {
  test(`${label} gives a coded error within seconds, never a crash`, (t) => {
    const started = Date.now()
    const error = t.throws(() => new Sandbox(source))
    t.true(
      ['ERR_WASM_COMPILE', 'ERR_WASM_LINK', 'ERR_SANDBOX_LIMIT'].includes(error.code),
      `${error.code}: ${error.message}`,
    )
    t.true(Date.now() - started < 5000)
  })
}

test('a valid module asking for a 4 GiB memory up front is capped by maxMemoryBytes', (t) => {
  const error = t.throws(() => new Sandbox('(module (memory 65536))', { maxMemoryBytes: 1 << 20 }))
  t.is(error.code, 'ERR_WASM_MEMORY_LIMIT')
})

test('a module with thousands of functions compiles and runs', (t) => {
  const functions = Array.from(
    { length: 5000 },
    (_, index) => `(func (export "f${index}") (result i32) i32.const ${index})`,
  )
  const module = new Module(`(module ${functions.join('\n')})`)
  t.is(module.exports.length, 5000)
  const sandbox = module.instantiate()
  t.is(sandbox.call('f4999'), 4999)
})

test('a worker terminated in the middle of an untimed infinite guest call stops promptly', async (t) => {
  const worker = new Worker(
    `const { Sandbox } = require('wasm-memory-sandbox')
     const sandbox = new Sandbox(${JSON.stringify(guestText('infinite_loop.wat'))})
     require('node:worker_threads').parentPort.postMessage('spinning')
     sandbox.call('spin')`,
    { eval: true },
  )
  try {
    await new Promise((resolve) => worker.once('message', resolve))
    await new Promise((resolve) => setTimeout(resolve, 50))
    const started = Date.now()
    const exitCode = await worker.terminate()
    t.is(exitCode, 1)
    t.true(Date.now() - started < 2000, `terminate() took ${Date.now() - started} ms`)
  } finally {
    await worker.terminate()
  }
})

test('a worker with sandboxes exits cleanly while its guests are idle', async (t) => {
  const outcome = await inWorker(
    `const { Sandbox, BufferSandbox } = require('wasm-memory-sandbox')
     const kept = [new Sandbox(${JSON.stringify(guestText('infinite_loop.wat'))}), new BufferSandbox()]
     require('node:worker_threads').parentPort.postMessage(kept[0].call('add', 1, 2))`,
  )
  t.deepEqual(outcome, { message: 3 })
})

test('a sandbox cannot reach another thread: structuredClone and postMessage give inert plain objects', async (t) => {
  const { MessageChannel, receiveMessageOnPort } = await import('node:worker_threads')
  const buffer = new BufferSandbox()
  const sandbox = new Sandbox(guestText('traps.wat'))
  for (const original of [buffer, sandbox]) {
    const clone = structuredClone(original)
    t.deepEqual(Object.keys(clone), [])
    t.is(typeof clone.memory, 'undefined')
    t.throws(() => BufferSandbox.prototype.memory.call(clone), { instanceOf: TypeError, code: 'ERR_INVALID_THIS' })
    t.throws(() => Sandbox.prototype.call.call(clone, 'ok'), { instanceOf: TypeError, code: 'ERR_INVALID_THIS' })
  }
  const { port1, port2 } = new MessageChannel()
  port1.postMessage(buffer)
  t.deepEqual(receiveMessageOnPort(port2).message, {})
  port1.close()
  t.is(sandbox.call('ok'), 42)
})

test('view.buffer.slice() is a copy that never reaches guest memory', (t) => {
  const sandbox = new BufferSandbox()
  const view = sandbox.memory()
  const slice = new Uint8Array(view.buffer.slice(0, 8))
  slice[0] = 9
  t.is(view[0], 0)
  sandbox.dispose()
  t.is(slice[0], 9)
})

for (const [label, action] of [
  ['read at 2**53', (sandbox) => sandbox.read(2 ** 53, 1)],
  ['read of 2**64 as a bigint length', (sandbox) => sandbox.read(0, 2n ** 64n)],
  ['write at -Infinity', (sandbox) => sandbox.write(-Infinity, Buffer.from([1]))],
  ['grow by Infinity', (sandbox) => sandbox.grow(Infinity)],
  ['grow by 2**64 as a bigint', (sandbox) => sandbox.grow(2n ** 64n)],
  ['an i32 argument of 2**64 as a bigint', (sandbox) => sandbox.call('div_by_zero', 2n ** 64n)],
  ['an i32 argument of -Infinity', (sandbox) => sandbox.call('div_by_zero', -Infinity)],
  ['memory() with a number for a name', (sandbox) => sandbox.memory(0)],
]) {
  test(`${label} throws a TypeError or RangeError and the sandbox stays usable`, (t) => {
    const sandbox = new Sandbox(guestText('traps.wat'))
    const error = t.throws(() => action(sandbox))
    t.true(error instanceof TypeError || error instanceof RangeError, `${error.name}: ${error.message}`)
    t.true(['ERR_INVALID_ARG_TYPE', 'ERR_OUT_OF_RANGE'].includes(error.code), error.code)
    t.is(sandbox.call('ok'), 42)
  })
}

test('a memory bomb under maxMemoryBytes keeps the process RSS bounded', (t) => {
  const before = process.memoryUsage.rss()
  for (let index = 0; index < 20; index++) {
    const sandbox = new Sandbox(guestText('memory_bomb.wat'), { maxMemoryBytes: 64 * 65536 })
    t.is(sandbox.call('bomb'), 64)
    sandbox.memory().fill(1) // touch every page it got
    sandbox.dispose()
  }
  const grownMiB = (process.memoryUsage.rss() - before) / 2 ** 20
  t.true(grownMiB < 64, `RSS grew by ${grownMiB.toFixed(1)} MiB`)
})

test('a 100 MiB module compiles and instantiates within seconds', (t) => {
  const size = 100 * 1024 * 1024
  const leb = (value) => {
    const out = []
    do {
      let byte = value & 0x7f
      value >>>= 7
      if (value) byte |= 0x80
      out.push(byte)
    } while (value)
    return out
  }
  const pages = Math.ceil(size / 65536) + 1
  const memory = [0x05, ...leb(1 + 1 + leb(pages).length), 0x01, 0x00, ...leb(pages)]
  const exportSection = [0x07, 0x0a, 0x01, 0x06, ...Buffer.from('memory'), 0x02, 0x00]
  const segment = [0x01, 0x00, 0x41, 0x00, 0x0b, ...leb(size)]
  const bytes = Buffer.concat([
    Buffer.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]),
    Buffer.from(memory),
    Buffer.from(exportSection),
    Buffer.from([0x0b, ...leb(segment.length + size)]),
    Buffer.from(segment),
    Buffer.alloc(size, 7),
  ])
  const started = Date.now()
  const sandbox = new Sandbox(bytes)
  t.is(sandbox.memory()[size - 1], 7)
  t.is(sandbox.memory()[size], 0)
  sandbox.dispose()
  t.true(Date.now() - started < 20_000, `${Date.now() - started} ms`)
})

test('zeroCopyViews() says views are real in Node (a runtime without external buffers would say false)', (t) => {
  t.is(zeroCopyViews(), true)
  const sandbox = new BufferSandbox()
  const view = sandbox.memory()
  sandbox.storeValueInWasmMemoryBufferIndexZero(99)
  t.is(view[sandbox.getWasmMemoryBufferPointer()], 99, 'and the view is indeed zero-copy')
})

test(`a view posted to a worker with its buffer in the transfer list ${transferOfExternalBufferThrows ? 'throws DataCloneError' : 'arrives as a copy'} on Node ${nodeLine}; the worker never reaches guest memory`, async (t) => {
  const sandbox = new BufferSandbox()
  const view = sandbox.memory()
  const pointer = sandbox.getWasmMemoryBufferPointer()
  sandbox.storeValueInWasmMemoryBufferIndexZero(24)
  const worker = new Worker(
    `const { parentPort } = require('node:worker_threads')
     parentPort.on('message', ({ view, pointer }) => {
       const seen = view[pointer]
       view[pointer] = 77
       parentPort.postMessage({ seen, length: view.length })
     })`,
    { eval: true },
  )
  try {
    const reply = () => new Promise((resolve) => worker.once('message', resolve))
    if (transferOfExternalBufferThrows) {
      t.throws(() => worker.postMessage({ view, pointer }, [view.buffer]), { name: 'DataCloneError' })
    } else {
      worker.postMessage({ view, pointer }, [view.buffer])
      t.deepEqual(await reply(), { seen: 24, length: 65536 })
    }
    // Without a transfer list every line sends a copy.
    worker.postMessage({ view, pointer })
    t.deepEqual(await reply(), { seen: 24, length: 65536 })
    t.is(view.length, 65536, 'the view stays attached')
    t.is(sandbox.readWasmMemoryBufferAndReturnIndexOne(), 0)
    t.is(view[pointer], 24, "the worker's writes landed in its copies only")
  } finally {
    await worker.terminate()
  }
})

test('a guest that grows its own memory while JS holds views: old views keep their bytes, new ones see the new size', (t) => {
  const sandbox = new Sandbox(guestText('plugin.wat'), { imports: { env: { log() {}, random: () => 0 } } })
  const before = sandbox.memory()
  before[100] = 5
  t.is(sandbox.call('grow', 3), 1)
  t.is(before.length, 65536)
  t.is(before[100], 5)
  const after = sandbox.memory()
  t.is(after.length, 4 * 65536)
  after[100] = 6
  t.is(before[100], 6, 'both views are the same memory')
  after[4 * 65536 - 1] = 1
  t.is(sandbox.read(4 * 65536 - 1, 1)[0], 1)
})

test('a 4 GiB memory (the wasm32 maximum) gets a 4 GiB view, the largest Buffer Node 20 allows', (t) => {
  const sandbox = new Sandbox('(module (memory (export "memory") 65536))')
  const view = sandbox.memory()
  t.is(view.length, 2 ** 32)
  view[2 ** 32 - 1] = 7
  t.is(sandbox.read(2 ** 32 - 1, 1)[0], 7)
  sandbox.dispose()
  t.is(view.length, 0)
})
