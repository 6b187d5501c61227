// Async calls of a component instance: callAsync() and runAsync() run the guest on the addon's
// pool while the event loop goes on; JS imports run on the JS thread and may return Promises
// (with jco's rules for a `result` import); limits, busy, queueing and dispose() as for Sandbox.
import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'

import test from 'ava'

import { Component, ComponentError } from 'wasm-memory-sandbox'

import { guestPath } from './helpers/guests.mjs'
import { mirrorImports } from './helpers/mirror.mjs'

const component = new Component(readFileSync(guestPath('build/types.rust.component.wasm')))
const command = new Component(readFileSync(guestPath('build/command.rust.component.wasm')))

class Kv {
  static disposed = 0
  #map = new Map()
  get(key) {
    return this.#map.get(key)
  }
  set(key, value) {
    this.#map.set(key, value)
  }
  [Symbol.dispose]() {
    Kv.disposed += 1
  }
}

function instantiate({ logger = {}, host = {}, ...options } = {}) {
  const logged = []
  const instance = component.instantiate({
    ...options,
    imports: {
      'demo:types/logger': { log: (message) => logged.push(message), logPoint() {}, ...logger },
      'demo:types/host': { Kv, fetchNumber: () => 1, ...host },
      'demo:types/mirror': mirrorImports(),
      hostName: () => 'async',
    },
  })
  return { instance, api: instance.exports.api, limits: instance.exports.limits, logged }
}

test('callAsync gives what the synchronous call gives, by function or by path', async (t) => {
  const { instance, api } = instantiate()
  t.is(await instance.callAsync(api.echoU8, 200), api.echoU8(200))
  t.is(await instance.callAsync('api.echoString', 'héllo'), 'héllo')
  t.is(await instance.callAsync('hello', 'pool'), instance.exports.hello('pool'))
  t.deepEqual(await instance.callAsync(api.echoPoint, { x: 1, y: -2 }), { x: 1, y: -2 })
  t.deepEqual(await instance.callAsync(api.echoListU8, new Uint8Array([1, 2, 3])), new Uint8Array([1, 2, 3]))
  t.is(await instance.callAsync(api.checkedDiv, 7, 2), 3)
  const error = await t.throwsAsync(instance.callAsync(api.checkedDiv, 1, 0), { instanceOf: ComponentError })
  t.is(error.payload, 'division by zero')
})

test('callAsync refuses what is not an export of the instance, and bad arguments, as rejections', async (t) => {
  const { instance, api } = instantiate()
  const other = instantiate()
  await t.throwsAsync(instance.callAsync(other.api.echoU8, 1), { code: 'ERR_INVALID_ARG_VALUE' })
  await t.throwsAsync(instance.callAsync('api.nothing'), { code: 'ERR_INVALID_ARG_VALUE' })
  await t.throwsAsync(instance.callAsync(api.echoU8, 256), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
  t.is(await instance.callAsync(api.echoU8, 1), 1)
})

test('imports may return Promises during an async call; the event loop runs while they wait', async (t) => {
  // A timer set to fire before the import's own 30 ms wait must fire during the call.
  let fired = false
  const timer = setTimeout(() => (fired = true), 1)
  try {
    const { instance, api, logged } = instantiate({
      logger: {
        async log(message) {
          await sleep(30)
          logged.push(message)
        },
      },
      host: {
        async fetchNumber(key) {
          await sleep(5)
          if (key === 'missing') throw new ComponentError('no such key')
          return key.length
        },
      },
    })
    await instance.callAsync(api.callLogger, 'later')
    t.deepEqual(logged, ['later'])
    t.true(fired, 'a timer fired while the import waited')
    t.is(await instance.callAsync(api.hostNumber, 'four'), 4)
    t.is(await instance.callAsync(api.hostNumberOr, 'missing', 9), 9)
    const error = await t.throwsAsync(instance.callAsync(api.hostNumber, 'missing'), { instanceOf: ComponentError })
    t.is(error.payload, 'no such key')
  } finally {
    clearTimeout(timer)
  }
})

test('a rejected import fails the call with ERR_WASM_IMPORT and the reason as cause', async (t) => {
  const reason = new Error('the database is down')
  const { instance, api } = instantiate({ logger: { log: () => Promise.reject(reason) } })
  const error = await t.throwsAsync(instance.callAsync(api.callLogger, 'x'), { code: 'ERR_WASM_IMPORT' })
  t.is(error.cause, reason)
})

test('a synchronous call whose import returns a Promise says to use callAsync', (t) => {
  const { api } = instantiate({ logger: { log: async () => {} } })
  t.throws(() => api.callLogger('x'), { code: 'ERR_WASM_IMPORT', message: /callAsync/ })
})

test('host resources the guest drops during an async call are disposed on the JS thread', async (t) => {
  const { instance, api } = instantiate()
  const before = Kv.disposed
  t.is(await instance.callAsync(api.kvRoundtrip, 'key', 'value'), 'value')
  t.is(Kv.disposed, before + 1)
})

test('while an async call runs the instance is busy; a second async call waits its turn', async (t) => {
  const { instance, api } = instantiate({
    logger: {
      async log() {
        await sleep(20)
      },
    },
  })
  const first = instance.callAsync(api.callLogger, 'one')
  t.throws(() => api.echoU8(1), { code: 'ERR_SANDBOX_BUSY' })
  const second = instance.callAsync(api.echoU8, 5)
  await first
  t.is(await second, 5)
  t.is(api.echoU8(6), 6)
})

test('timeoutMs stops an async call (time waiting for imports included), then the instance is poisoned', async (t) => {
  const { instance, limits, api } = instantiate({ timeoutMs: 50 })
  const started = performance.now()
  await t.throwsAsync(instance.callAsync(limits.spin), { code: 'ERR_WASM_TIMEOUT' })
  t.true(performance.now() - started < 2000)
  t.throws(() => api.echoU8(1), { code: 'ERR_WASM_INSTANCE_POISONED' })

  const waiting = instantiate({ timeoutMs: 50, logger: { log: () => new Promise(() => {}) } })
  await t.throwsAsync(waiting.instance.callAsync(waiting.api.callLogger, 'never'), { code: 'ERR_WASM_TIMEOUT' })
})

test('dispose() during an async call waiting on an import rejects it with ERR_SANDBOX_DISPOSED', async (t) => {
  const { instance, api } = instantiate({ logger: { log: () => new Promise(() => {}) } })
  const pending = instance.callAsync(api.callLogger, 'never answered')
  const queued = instance.callAsync(api.echoU8, 1)
  await sleep(20)
  instance.dispose()
  await t.throwsAsync(pending, { code: 'ERR_SANDBOX_DISPOSED' })
  await t.throwsAsync(queued, { code: 'ERR_SANDBOX_DISPOSED' })
  await t.throwsAsync(instance.callAsync(api.echoU8, 1), { code: 'ERR_SANDBOX_DISPOSED' })
})

test('runAsync runs a WASI 0.2 command off the event loop, with the result run() gives', async (t) => {
  const result = await command.instantiate({ wasi: { args: ['command'], env: { EXIT_CODE: '0' } } }).runAsync()
  t.is(result.exitCode, 0)
  t.regex(result.stdout.toString(), /hello from the command/)
  const failing = await command.instantiate({ wasi: { args: ['command'], env: { EXIT_CODE: '3' } } }).runAsync()
  t.is(failing.exitCode, 1)
  // Not a command, or without WASI: a coded rejection.
  await t.throwsAsync(instantiate().instance.runAsync(), { code: 'ERR_WASI_NOT_ENABLED' })
})

test('interrupt() stops a spinning async call with ERR_WASM_INTERRUPTED, then the instance cannot be entered', async (t) => {
  const { instance } = instantiate()
  t.false(instance.interrupt(), 'nothing runs yet')
  const running = instance.callAsync('limits.spin')
  await sleep(30)
  t.true(instance.interrupt())
  await t.throwsAsync(running, { code: 'ERR_WASM_INTERRUPTED' })
  t.throws(() => instance.exports.api.echoU8(1), { code: 'ERR_WASM_INSTANCE_POISONED' })
})

test('interrupt() answers an import waiting for a Promise at once', async (t) => {
  const instance = component.instantiate({
    imports: {
      'demo:types/logger': { log() {}, logPoint() {} },
      'demo:types/host': { Kv, fetchNumber: () => 1 },
      'demo:types/mirror': mirrorImports(),
      hostName: () => new Promise(() => {}),
    },
  })
  const running = instance.callAsync('helloHost')
  await sleep(30)
  t.true(instance.interrupt())
  await t.throwsAsync(running, { code: 'ERR_WASM_INTERRUPTED' })
})
