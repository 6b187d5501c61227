import test from 'ava'

import { Module, Sandbox } from 'wasm-memory-sandbox'

import { guestText } from './helpers/guests.mjs'

const loop = new Module(guestText('infinite_loop.wat'))
const bomb = new Module(guestText('memory_bomb.wat'))
const recursion = new Module(guestText('deep_recursion.wat'))
const plugin = new Module(guestText('plugin.wat'))

test('timeoutMs stops an infinite loop with ERR_WASM_TIMEOUT, and the next call succeeds', (t) => {
  const sandbox = new Sandbox(loop, { timeoutMs: 50 })
  const started = Date.now()
  const error = t.throws(() => sandbox.call('spin'))
  const elapsed = Date.now() - started
  t.is(error.code, 'ERR_WASM_TIMEOUT')
  t.is(error.kind, 'interrupt')
  t.regex(error.message, /timeoutMs: 50/)
  t.true(elapsed >= 45 && elapsed < 5000, `stopped after ${elapsed} ms`)
  t.is(sandbox.call('add', 2, 3), 5)
  t.throws(() => sandbox.call('spin'), { code: 'ERR_WASM_TIMEOUT' })
})

test('a timeout applies to each call, not to the sandbox’s lifetime', async (t) => {
  const sandbox = new Sandbox(loop, { timeoutMs: 30 })
  await new Promise((resolve) => setTimeout(resolve, 60))
  t.is(sandbox.call('add', 1, 1), 2)
})

test('a sandbox without timeoutMs is not interrupted by another sandbox’s timeout', (t) => {
  const timed = new Sandbox(loop, { timeoutMs: 20 })
  const untimed = new Sandbox(recursion)
  t.throws(() => timed.call('spin'), { code: 'ERR_WASM_TIMEOUT' })
  t.is(untimed.call('depth_ok', 1000), 1000)
})

test('fuel stops an infinite loop with ERR_WASM_OUT_OF_FUEL; refilling makes the sandbox usable again', (t) => {
  const sandbox = new Sandbox(loop, { fuel: 10_000 })
  t.is(sandbox.fuel, 10_000)
  const error = t.throws(() => sandbox.call('spin'))
  t.is(error.code, 'ERR_WASM_OUT_OF_FUEL')
  t.is(error.kind, 'out_of_fuel')
  t.is(sandbox.fuel, 0)
  sandbox.fuel = 1000
  t.is(sandbox.call('add', 20, 22), 42)
  t.true(sandbox.fuel < 1000 && sandbox.fuel > 900, `fuel left ${sandbox.fuel}`)
})

test('fuel on a sandbox created without a budget throws ERR_WASM_FUEL_NOT_ENABLED', (t) => {
  const sandbox = new Sandbox(loop)
  t.throws(() => sandbox.fuel, { code: 'ERR_WASM_FUEL_NOT_ENABLED' })
  t.throws(
    () => {
      sandbox.fuel = 5
    },
    { code: 'ERR_WASM_FUEL_NOT_ENABLED' },
  )
})

test('setting fuel validates the value', (t) => {
  const sandbox = new Sandbox(loop, { fuel: 10 })
  t.throws(
    () => {
      sandbox.fuel = -1
    },
    { instanceOf: RangeError },
  )
  t.throws(
    () => {
      sandbox.fuel = '5'
    },
    { instanceOf: TypeError },
  )
  t.is(sandbox.fuel, 10)
})

test('maxMemoryBytes caps a memory bomb: guest memory.grow returns -1 at the cap', (t) => {
  const sandbox = new Sandbox(bomb, { maxMemoryBytes: 16 * 65536 })
  t.is(sandbox.call('bomb'), 16)
  t.is(sandbox.memorySize, 16 * 65536)
  t.is(sandbox.call('pages'), 16)
})

test('a host grow() past maxMemoryBytes throws ERR_WASM_MEMORY_LIMIT, then a smaller grow succeeds', (t) => {
  const sandbox = new Sandbox(bomb, { maxMemoryBytes: 4 * 65536 })
  const error = t.throws(() => sandbox.grow(4))
  t.is(error.code, 'ERR_WASM_MEMORY_LIMIT')
  t.regex(error.message, /maxMemoryBytes is 262144/)
  t.is(sandbox.grow(3), 1)
  t.is(sandbox.memorySize, 4 * 65536)
})

test('a module whose initial memory exceeds maxMemoryBytes fails to instantiate with ERR_WASM_MEMORY_LIMIT', (t) => {
  const error = t.throws(() => new Sandbox('(module (memory 10))', { maxMemoryBytes: 65536 }))
  t.is(error.code, 'ERR_WASM_MEMORY_LIMIT')
})

test('deep recursion is a stack_overflow trap, never a crash, and the sandbox is usable after', (t) => {
  const sandbox = new Sandbox(recursion)
  const error = t.throws(() => sandbox.call('recurse', 0))
  t.is(error.code, 'ERR_WASM_TRAP')
  t.is(error.kind, 'stack_overflow')
  t.is(sandbox.call('depth_ok', 100), 100)
})

test('a limit hit inside a plugin with imports leaves it usable', (t) => {
  const sandbox = new Sandbox(plugin, {
    imports: { env: { log() {}, random: () => 0.5 } },
    maxMemoryBytes: 2 * 65536,
    timeoutMs: 1000,
  })
  t.is(sandbox.call('grow', 1), 1)
  t.is(sandbox.call('grow', 1), -1, 'the guest sees memory.grow fail past the cap')
  t.is(sandbox.call('run'), 21)
})
