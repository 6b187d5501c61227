// Hostile guests and callers: each case is named after what it guards.
import { readFileSync } from 'node:fs'
import { Worker } from 'node:worker_threads'

import test from 'ava'

import { BufferSandbox, Module, Sandbox } from 'wasm-memory-sandbox'

import { guestPath, guestText } from './helpers/guests.mjs'

const recursion = guestText('deep_recursion.wat')

/** Runs `code` (CommonJS) in a worker and resolves with its message, error or exit code. */
function inWorker(code, options = {}) {
  return new Promise((resolve) => {
    const worker = new Worker(code, { eval: true, ...options })
    worker.once('message', (message) => resolve({ message }))
    worker.once('error', (error) => resolve({ error: error.message }))
    worker.once('exit', (exitCode) => resolve({ exitCode }))
  })
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
  await new Promise((resolve) => worker.once('message', resolve))
  await new Promise((resolve) => setTimeout(resolve, 50))
  const started = Date.now()
  const exitCode = await worker.terminate()
  t.is(exitCode, 1)
  t.true(Date.now() - started < 2000, `terminate() took ${Date.now() - started} ms`)
})

test('a worker with sandboxes exits cleanly while its guests are idle', async (t) => {
  const outcome = await inWorker(
    `const { Sandbox, BufferSandbox } = require('wasm-memory-sandbox')
     const kept = [new Sandbox(${JSON.stringify(guestText('infinite_loop.wat'))}), new BufferSandbox()]
     require('node:worker_threads').parentPort.postMessage(kept[0].call('add', 1, 2))`,
  )
  t.deepEqual(outcome, { message: 3 })
})
