// Async calls: guests on the addon's pool threads, the event loop left free, imports that
// return Promises, busy rules, limits, interrupt and dispose, workers and process exit.
import { spawnSync } from 'node:child_process'
import { performance, monitorEventLoopDelay } from 'node:perf_hooks'
import { Worker } from 'node:worker_threads'

import test from 'ava'

import { Module, Sandbox, asyncThreads, setAsyncThreads } from 'wasm-memory-sandbox'

import { guestText } from './helpers/guests.mjs'
import { scaled } from './helpers/time-scale.mjs'

const guest = new Module(guestText('async.wat'))
const exitThenCall = new Module(guestText('wasi/exit_then_call.wat'))
const noImports = { env: { get: (x) => x, note() {} } }
const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Iterations of `spin` that take about `ms` milliseconds here (measured once, synchronously). */
const spinFor = (() => {
  const probe = new Sandbox(guest, { imports: noImports })
  const iterations = 50_000_000
  const started = performance.now()
  probe.call('spin', iterations)
  const perMs = iterations / (performance.now() - started)
  return (ms) => Math.min(2 ** 31 - 1, Math.round(perMs * ms))
})()

test('callAsync gives what call() gives: numbers, bigints, several results, nothing', async (t) => {
  const sandbox = new Sandbox(guest, { imports: noImports })
  t.is(await sandbox.callAsync('add', 2, 3), sandbox.call('add', 2, 3))
  t.is(await sandbox.callAsync('wide', 5n), 15n)
  t.deepEqual(await sandbox.callAsync('pair', 4), [4, 8])
  t.is(await sandbox.callAsync('notify', 1), undefined)
})

test('bad arguments reject (never throw) with the codes call() throws', async (t) => {
  const sandbox = new Sandbox(guest, { imports: noImports })
  const wrongType = sandbox.callAsync('add', 'x', 1)
  t.true(wrongType instanceof Promise)
  await t.throwsAsync(wrongType, { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE', message: /argument 0/ })
  await t.throwsAsync(sandbox.callAsync('add', 1), { code: 'ERR_INVALID_ARG_TYPE', message: /takes 2 argument/ })
  await t.throwsAsync(sandbox.callAsync('nope'), { code: 'ERR_INVALID_ARG_TYPE', message: /no function named "nope"/ })
  await t.throwsAsync(sandbox.callAsync(42), { code: 'ERR_INVALID_ARG_TYPE' })
  await t.throwsAsync(sandbox.callAsync('add', 2 ** 40, 1), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
  t.is(await sandbox.callAsync('add', 1, 1), 2, 'and the sandbox is usable')
})

/** One long guest call, with the event loop's delay and a 5 ms timer's ticks measured meanwhile. */
async function measureLoopDuringCall(sandbox, iterations) {
  const histogram = monitorEventLoopDelay({ resolution: 1 })
  let ticks = 0
  const ticker = setInterval(() => ticks++, 5)
  histogram.enable()
  const started = performance.now()
  const result = await sandbox.callAsync('spin', iterations)
  const elapsed = performance.now() - started
  histogram.disable()
  clearInterval(ticker)
  return { result, elapsed, ticks, maxMs: histogram.max / 1e6, p99Ms: histogram.percentile(99) / 1e6 }
}

test.serial(
  'the event loop stays free during a long guest call (delay measured with monitorEventLoopDelay)',
  async (t) => {
    const sandbox = new Sandbox(guest, { imports: noImports })
    const iterations = spinFor(400)
    // A call that held the loop would stall it for the whole ~400 ms on every attempt. The other
    // test files' processes share the two cores, so one attempt in a few can lose the CPU for a
    // while: up to three attempts, and the best one must keep every stall under 10 ms.
    let best
    for (let attempt = 1; attempt <= 3; attempt++) {
      const run = await measureLoopDuringCall(sandbox, iterations)
      t.is(run.result, iterations)
      t.log(
        `attempt ${attempt}: guest ran ${run.elapsed.toFixed(0)} ms; event loop delay max ${run.maxMs.toFixed(1)} ms, p99 ${run.p99Ms.toFixed(1)} ms; ${run.ticks} timer ticks`,
      )
      // The iterations were calibrated while other test processes loaded: the call may run in half
      // the planned time once they are done. 100 ms is still ten times the stall bound.
      t.true(run.elapsed > 100, `the guest call took ${run.elapsed} ms`)
      if (!best || run.maxMs < best.maxMs) best = run
      if (best.maxMs < 10) break
    }
    t.true(best.maxMs < 10, `event loop delay max ${best.maxMs} ms at best`)
    t.true(best.ticks >= best.elapsed / 5 / 2, `only ${best.ticks} timer ticks in ${best.elapsed} ms`)
  },
)

test.serial('two sandboxes run two calls at once on two cores: their runs overlap in time', async (t) => {
  if (asyncThreads() < 2) return t.pass('a pool of one thread: calls take turns')
  const marks = []
  const sandboxes = [0, 1].map(
    (index) =>
      new Sandbox(guest, {
        imports: { env: { get: (x) => x, note: (what) => marks.push([index, what, performance.now()]) } },
      }),
  )
  const iterations = spinFor(300)
  let started = performance.now()
  await sandboxes[0].callAsync('markedSpin', iterations)
  const one = performance.now() - started
  marks.length = 0
  started = performance.now()
  await Promise.all(sandboxes.map((sandbox) => sandbox.callAsync('markedSpin', iterations)))
  const two = performance.now() - started
  // Both guests started before either finished: they ran at the same time, on two threads.
  const firstEnd = Math.min(...marks.filter(([, what]) => what === 1).map(([, , at]) => at))
  const starts = marks.filter(([, what]) => what === 0).map(([, , at]) => at)
  t.is(starts.length, 2)
  t.true(
    starts.every((at) => at < firstEnd),
    JSON.stringify(marks),
  )
  // The speed-up itself is measured by `npm run bench`, not asserted here: other test files
  // share these two cores now, so a time ratio says more about them than about the pool.
  t.log(
    `1 call ${one.toFixed(0)} ms, 2 calls at once ${two.toFixed(0)} ms: ${((2 * one) / two).toFixed(2)}x the throughput`,
  )
})

test('an import may return a Promise: the guest waits for its value', async (t) => {
  let sandbox
  sandbox = new Sandbox(guest, {
    imports: {
      env: {
        get: async (x) => {
          await delay(20)
          sandbox.memory()[100] = 42 // after the await the sandbox is usable, as inside any import
          return x * 2
        },
        note() {},
      },
    },
  })
  const started = performance.now()
  t.is(await sandbox.callAsync('twoImports', 10), 20 + 22)
  t.true(performance.now() - started >= 38)
  t.is(sandbox.read(100, 1)[0], 42)
})

test('a rejected import Promise fails the call with ERR_WASM_IMPORT and the reason as cause', async (t) => {
  const reason = new Error('database down')
  const sandbox = new Sandbox(guest, { imports: { env: { get: () => Promise.reject(reason), note() {} } } })
  const error = await t.throwsAsync(sandbox.callAsync('viaImport', 1), { code: 'ERR_WASM_IMPORT' })
  t.is(error.cause, reason)
  t.regex(error.message, /database down/)
  const thrower = new Sandbox(guest, {
    imports: {
      env: {
        get: () => {
          throw reason
        },
        note() {},
      },
    },
  })
  t.is((await t.throwsAsync(thrower.callAsync('viaImport', 1), { code: 'ERR_WASM_IMPORT' })).cause, reason)
  t.is(await sandbox.callAsync('add', 1, 2), 3, 'usable after')
})

test('a Promise returned by an import in a synchronous call() is an error', (t) => {
  const sandbox = new Sandbox(guest, { imports: { env: { get: async (x) => x, note: async () => {} } } })
  t.throws(() => sandbox.call('viaImport', 1), { code: 'ERR_WASM_IMPORT', message: /returned a Promise/ })
  t.throws(() => sandbox.call('notify', 1), { code: 'ERR_WASM_IMPORT', message: /callAsync/ })
})

test('imports of an async call may call back into the sandbox, before and after awaiting', async (t) => {
  let sandbox
  const seen = []
  sandbox = new Sandbox(guest, {
    imports: {
      env: {
        get: async (x) => {
          seen.push(sandbox.call('add', x, 100)) // re-entrant, synchronously
          sandbox.write(200, Buffer.from([9]))
          await delay(5)
          seen.push(sandbox.call('add', x, 1000)) // after the await
          seen.push(sandbox.read(200, 1)[0])
          sandbox.grow(1)
          return x + 1
        },
        note: (x) => seen.push(`note ${x}`),
      },
    },
  })
  t.is(await sandbox.callAsync('viaImport', 1), 3)
  t.deepEqual(seen, [101, 1001, 9])
  t.is(sandbox.memorySize, 2 * 65536)
})

test('a re-entrant call from an async import may itself call imports (run at once, as in call())', async (t) => {
  let sandbox
  let depth = 0
  sandbox = new Sandbox(guest, {
    imports: {
      env: {
        get: async (x) => {
          depth++
          if (depth === 1) {
            const inner = sandbox.call('viaImport', x) // reaches `get` again, synchronously
            await delay(1)
            return inner * 10
          }
          return x // the inner, synchronous use must not return a Promise
        },
        note() {},
      },
    },
  })
  // The inner call hits `get` with depth 2, which is an async function: a Promise in a
  // synchronous (re-entrant) call is an error, reported to the outer import as a throw.
  await t.throwsAsync(sandbox.callAsync('viaImport', 5), { code: 'ERR_WASM_IMPORT' })
  depth = 0
  const plain = new Sandbox(guest, {
    imports: {
      env: {
        get: (x) => (depth++ === 0 ? Promise.resolve(plain.call('viaImport', x) * 10) : x),
        note() {},
      },
    },
  })
  t.is(await plain.callAsync('viaImport', 5), (5 + 1) * 10 + 1)
})

test('while an async call runs the sandbox is busy, its views stay valid, and further async calls queue', async (t) => {
  const sandbox = new Sandbox(guest, { imports: noImports })
  const view = sandbox.memory()
  const running = sandbox.callAsync('forever')
  try {
    for (const [what, attempt] of [
      ['call', () => sandbox.call('add', 1, 2)],
      ['read', () => sandbox.read(0, 1)],
      ['write', () => sandbox.write(0, Buffer.from([1]))],
      ['grow', () => sandbox.grow(1)],
      ['memory', () => sandbox.memory()],
      ['memorySize', () => sandbox.memorySize],
    ]) {
      t.throws(attempt, { code: 'ERR_SANDBOX_BUSY' }, what)
    }
    // The guest writes 1, 2, 3... at byte 0: the view taken before sees it, like a SharedArrayBuffer.
    const seen = new Set()
    // 5 s natively; under emulation (test:arm64) the pool thread may start the guest much later.
    const until = Date.now() + scaled(5000)
    while (seen.size < 3 && Date.now() < until) {
      seen.add(view[0])
      await delay(1)
    }
    t.true(seen.size >= 3, `the view saw ${[...seen]}`)
    const order = []
    const queued = [sandbox.callAsync('add', 1, 1), sandbox.callAsync('add', 2, 2)].map((promise, index) =>
      promise.then((value) => order.push([index, value])),
    )
    await delay(10)
    t.deepEqual(order, [], 'queued calls wait for the running one')
    t.true(sandbox.interrupt())
    await t.throwsAsync(running, { code: 'ERR_WASM_INTERRUPTED' })
    await Promise.all(queued)
    t.deepEqual(order, [
      [0, 2],
      [1, 4],
    ])
    t.is(sandbox.call('add', 3, 4), 7, 'the sandbox is usable again')
    t.is(sandbox.memory(), view, 'and its view is the same')
  } finally {
    sandbox.dispose() // a failed assertion must not leave a guest running (it keeps the process alive)
    await running.catch(() => {})
  }
})

test('timeoutMs applies to async calls, time spent waiting for an import included', async (t) => {
  const spinning = new Sandbox(guest, { imports: noImports, timeoutMs: 50 })
  let started = performance.now()
  await t.throwsAsync(spinning.callAsync('forever'), { code: 'ERR_WASM_TIMEOUT' })
  const spun = performance.now() - started
  const waiting = new Sandbox(guest, {
    imports: { env: { get: () => new Promise(() => {}), note() {} } },
    timeoutMs: 50,
  })
  started = performance.now()
  await t.throwsAsync(waiting.callAsync('viaImport', 1), { code: 'ERR_WASM_TIMEOUT' })
  const waited = performance.now() - started
  t.log(`an endless loop stopped after ${spun.toFixed(0)} ms, a never-settling import after ${waited.toFixed(0)} ms`)
  // The upper bound is 1 s natively, scaled under emulation (test:arm64: 4.5-7.6 s seen on Node 24 and 26).
  for (const elapsed of [spun, waited]) t.true(elapsed >= 45 && elapsed < scaled(1000), `${elapsed} ms`)
  t.is(await waiting.callAsync('add', 1, 2), 3, 'usable after')
})

test('fuel applies to async calls', async (t) => {
  const sandbox = new Sandbox(guest, { imports: noImports, fuel: 100_000 })
  await t.throwsAsync(sandbox.callAsync('forever'), { code: 'ERR_WASM_OUT_OF_FUEL' })
  sandbox.fuel = 1_000
  t.is(await sandbox.callAsync('add', 1, 2), 3)
})

test('interrupt() stops an async call waiting for an import, and a sync call from inside an import', async (t) => {
  let sandbox
  sandbox = new Sandbox(guest, {
    imports: { env: { get: () => new Promise(() => {}), note: () => sandbox.interrupt() } },
  })
  const pending = sandbox.callAsync('viaImport', 1)
  await delay(10)
  t.true(sandbox.interrupt())
  await t.throwsAsync(pending, { code: 'ERR_WASM_INTERRUPTED' })
  t.throws(() => sandbox.call('notify', 1), { code: 'ERR_WASM_INTERRUPTED' })
  t.false(sandbox.interrupt(), 'nothing is running now')
  t.is(sandbox.call('add', 1, 2), 3)
})

test('dispose() during an async call interrupts it: its Promise and the queued ones reject', async (t) => {
  const sandbox = new Sandbox(guest, { imports: noImports })
  const view = sandbox.memory()
  const running = sandbox.callAsync('forever')
  const queued = sandbox.callAsync('add', 1, 2)
  await delay(10)
  sandbox.dispose()
  t.is(view.length, 0, 'views are detached at once')
  await t.throwsAsync(running, { code: 'ERR_SANDBOX_DISPOSED' })
  await t.throwsAsync(queued, { code: 'ERR_SANDBOX_DISPOSED' })
  await t.throwsAsync(sandbox.callAsync('add', 1, 2), { code: 'ERR_SANDBOX_DISPOSED' })
})

// A guest with no imports (and no WASI, no timing) starts its async calls on the JS thread, on a
// fiber: a short call settles with no thread hand-off; a longer one yields at its first epoch tick
// and a pool thread runs the rest; after such a call the next ones start on the pool directly.
const pure = new Module(`(module
  (memory (export "memory") 1)
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (func (export "count") (result i32)
    (i32.store (i32.const 0) (i32.add (i32.load (i32.const 0)) (i32.const 1)))
    (i32.load (i32.const 0)))
  (func (export "trap") (result i32) unreachable)
  (func (export "spin") (param i32) (result i32) (local i32)
    (loop $l
      (local.set 1 (i32.add (local.get 1) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get 1) (local.get 0))))
    (local.get 1))
  (func (export "forever") (loop $l (br $l))))`)

test('a guest with no imports: async calls in a row, queued, trapping and after a long one all settle right', async (t) => {
  const sandbox = new Sandbox(pure)
  // Settled before callAsync returns, still a Promise, and the guest's value, not one it holds.
  const settledAtOnce = sandbox.callAsync('add', 20, 22)
  t.true(settledAtOnce instanceof Promise)
  t.is(await settledAtOnce, 42)
  t.is(await Sandbox.prototype.callAsync.call(sandbox, 'add', 1, 2), 3)
  await t.throwsAsync(sandbox.callAsync('add', 1), { code: 'ERR_INVALID_ARG_TYPE', message: /takes 2 argument/ })
  await t.throwsAsync(sandbox.callAsync('memory'), { code: 'ERR_INVALID_ARG_TYPE', message: /no function named/ })
  await t.throwsAsync(sandbox.callAsync('add', 1n, 2), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
  for (let expected = 1; expected <= 2000; expected++) {
    const value = await sandbox.callAsync('count')
    if (value !== expected) return t.is(value, expected)
  }
  t.is(new Uint32Array(sandbox.memory().buffer, sandbox.memory().byteOffset, 1)[0], 2000)
  const queued = await Promise.all(Array.from({ length: 50 }, (_, index) => sandbox.callAsync('add', index, 1)))
  t.deepEqual(
    queued,
    Array.from({ length: 50 }, (_, index) => index + 1),
  )
  await t.throwsAsync(sandbox.callAsync('trap'), { code: 'ERR_WASM_TRAP' })
  t.is(await sandbox.callAsync('spin', spinFor(30)), spinFor(30), 'a call longer than an epoch tick')
  t.is(await sandbox.callAsync('add', 2, 3), 5, 'then a short one, on the pool')
  t.is(await sandbox.callAsync('add', 3, 4), 7, 'and back on the JS thread')
  t.is(sandbox.call('count'), 2001, 'sync calls see the same store')
  sandbox.dispose()
  await t.throwsAsync(sandbox.callAsync('add', 1, 2), { code: 'ERR_SANDBOX_DISPOSED' })
})

test.serial(
  'a guest with no imports never holds the event loop: a long call leaves the JS thread at its first epoch tick',
  async (t) => {
    const sandbox = new Sandbox(pure)
    const iterations = spinFor(300)
    // As in the test above: the best of three attempts must keep every stall under 10 ms (scaled
    // under emulation, where the epoch tick that moves the call off the JS thread may come late).
    // Each attempt makes two long calls: the first starts on the JS thread, the second on the pool.
    const bound = scaled(10)
    let best
    for (let attempt = 1; attempt <= 3; attempt++) {
      await sandbox.callAsync('add', 1, 1) // a short call: the next long one starts on the JS thread
      const first = await measureLoopDuringCall(sandbox, iterations)
      const second = await measureLoopDuringCall(sandbox, iterations)
      t.is(first.result, iterations)
      t.is(second.result, iterations)
      const run = { maxMs: Math.max(first.maxMs, second.maxMs), elapsed: first.elapsed + second.elapsed }
      t.log(
        `attempt ${attempt}: the guest ran ${run.elapsed.toFixed(0)} ms; event loop delay max ${run.maxMs.toFixed(1)} ms`,
      )
      t.true(run.elapsed > 100, `the guest calls took ${run.elapsed} ms`)
      if (!best || run.maxMs < best.maxMs) best = run
      if (best.maxMs < bound) break
    }
    t.true(best.maxMs < bound, `event loop delay max ${best.maxMs} ms at best`)
  },
)

const numeric = new Module(`(module
  (func (export "none") (result i32) (i32.const 7))
  (func (export "neg") (param f64) (result f64) (f64.neg (local.get 0)))
  (func (export "half") (param f32) (result f32) (f32.div (local.get 0) (f32.const 2)))
  (func (export "mix") (param i32 f64 f32) (result f64)
    (f64.add (f64.add (f64.convert_i32_s (local.get 0)) (local.get 1)) (f64.promote_f32 (local.get 2))))
  (func (export "sum4") (param i32 i32 i32 i32) (result i32)
    (i32.add (i32.add (local.get 0) (local.get 1)) (i32.add (local.get 2) (local.get 3))))
  (func (export "sum5") (param i32 i32 i32 i32 i32) (result i32)
    (i32.add (i32.add (i32.add (local.get 0) (local.get 1)) (i32.add (local.get 2) (local.get 3))) (local.get 4)))
  (func (export "nothing") (param i32)))`)

test('callAsync of number-only exports, 0 to 5 arguments: what call() gives, and what call() throws for', async (t) => {
  const sandbox = new Sandbox(numeric)
  const cases = [
    ['none'],
    ['neg', 2.5],
    ['neg', -0],
    ['half', 3],
    ['half', 1e40], // an f32 rounds to Infinity, as in call()
    ['mix', -3, 0.25, 1.5],
    ['sum4', 1, 2, 3, 2 ** 31 - 1],
    ['sum5', 1, 2, 3, 4, 5],
    ['sum4', 2 ** 32 - 1, -(2 ** 31), 0, -0],
    ['nothing', 1],
  ]
  for (const [name, ...args] of cases) {
    t.deepEqual(await sandbox.callAsync(name, ...args), sandbox.call(name, ...args), `${name}(${args})`)
  }
  for (const [name, ...args] of [
    ['neg', 'x'],
    ['neg'],
    ['neg', 1, 2],
    ['sum4', 1, 2, 3, 2 ** 40],
    ['sum4', 1, 2, 3, NaN],
    ['sum4', 1.5, 2, 3, 4],
    ['sum5', 1, 2, 3, 4, {}],
    ['mix', 1n, 1, 1],
  ]) {
    let thrown
    try {
      sandbox.call(name, ...args)
    } catch (error) {
      thrown = error
    }
    t.truthy(thrown, `call() throws for ${name}(${args})`)
    const rejected = await t.throwsAsync(sandbox.callAsync(name, ...args))
    t.is(rejected.code, thrown.code, `${name}(${args})`)
    t.is(rejected.constructor, thrown.constructor)
    t.is(rejected.message, thrown.message)
  }
  t.is(await sandbox.callAsync('sum4', 1, 1, 1, 1), 4, 'usable after')
})

// Serial: a quick call that follows a timed-out one starts on the pool, and the endless calls of
// the concurrent tests in this file can hold the pool's threads past its timeoutMs (seen under
// emulation, where a 'forever' call ran 4.6 s before its own limit stopped it).
test.serial(
  'a guest with no imports: after many quick calls, a long one still has its deadline and can be interrupted',
  async (t) => {
    // A quick call's line to the JS thread is kept for the next call: it must carry that call's
    // deadline and interrupt(), not the previous call's state.
    const timeoutMs = scaled(100)
    const timed = new Sandbox(pure, { timeoutMs })
    for (let round = 0; round < 3; round++) {
      for (let index = 0; index < 500; index++) {
        const value = await timed.callAsync('add', index, round)
        if (value !== index + round) return t.is(value, index + round)
      }
      const started = performance.now()
      await t.throwsAsync(timed.callAsync('forever'), { code: 'ERR_WASM_TIMEOUT' })
      const elapsed = performance.now() - started
      t.true(elapsed >= timeoutMs - 5 && elapsed < scaled(2000), `round ${round}: stopped after ${elapsed} ms`)
    }
    const sandbox = new Sandbox(pure)
    for (let round = 0; round < 3; round++) {
      for (let index = 0; index < 500; index++) await sandbox.callAsync('add', index, 1)
      const running = sandbox.callAsync('forever')
      await delay(10)
      t.true(sandbox.interrupt())
      await t.throwsAsync(running, { code: 'ERR_WASM_INTERRUPTED' })
      t.false(sandbox.interrupt(), 'nothing running now')
      t.is(await sandbox.callAsync('add', round, 1), round + 1)
    }
  },
)

test('a guest with no imports: timeoutMs, interrupt() and dispose() stop its async calls', async (t) => {
  const timed = new Sandbox(pure, { timeoutMs: 50 })
  const started = performance.now()
  await t.throwsAsync(timed.callAsync('forever'), { code: 'ERR_WASM_TIMEOUT' })
  const elapsed = performance.now() - started
  t.true(elapsed >= 45 && elapsed < scaled(1000), `stopped after ${elapsed} ms`)
  // Synchronously: an async call's 50 ms would count its wait for a pool thread, which a loaded
  // machine can make that long (seen once in CI, on Node 22).
  t.is(timed.call('add', 1, 2), 3, 'usable after')

  const interrupted = new Sandbox(pure)
  const running = interrupted.callAsync('forever')
  await delay(20)
  t.true(interrupted.interrupt())
  await t.throwsAsync(running, { code: 'ERR_WASM_INTERRUPTED' })
  t.is(await interrupted.callAsync('add', 2, 2), 4)

  const disposed = new Sandbox(pure)
  const view = disposed.memory()
  const endless = disposed.callAsync('forever')
  const queued = disposed.callAsync('add', 1, 2)
  await delay(20)
  disposed.dispose()
  t.is(view.length, 0)
  await t.throwsAsync(endless, { code: 'ERR_SANDBOX_DISPOSED' })
  await t.throwsAsync(queued, { code: 'ERR_SANDBOX_DISPOSED' })
})

test('runAsync runs a WASI command off the JS thread; its exports stay callable after', async (t) => {
  const sandbox = new Sandbox(exitThenCall, { wasi: {} })
  const result = await sandbox.runAsync()
  t.is(result.exitCode, 7)
  t.is(result.stdout.toString(), 'before exit\n')
  t.is(await sandbox.callAsync('runs'), 1)
  await t.throwsAsync(sandbox.runAsync(), { code: 'ERR_WASI_ALREADY_STARTED' })
  await t.throwsAsync(new Sandbox(guest, { imports: noImports }).runAsync(), { code: 'ERR_WASI_NOT_ENABLED' })
})

test('asyncThreads() is the pool size; setAsyncThreads validates', (t) => {
  const before = asyncThreads()
  t.true(before >= 1)
  t.throws(() => setAsyncThreads(0), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => setAsyncThreads('2'), { instanceOf: TypeError })
  setAsyncThreads(3)
  t.is(asyncThreads(), 3)
  setAsyncThreads(before)
  t.is(asyncThreads(), before)
})

test('async calls work in a worker, and terminating it mid-call neither hangs nor crashes', async (t) => {
  const source = JSON.stringify(guestText('async.wat'))
  const worker = new Worker(
    `const { Sandbox } = require('wasm-memory-sandbox')
     const { parentPort } = require('node:worker_threads')
     const sandbox = new Sandbox(${source}, { imports: { env: { get: async (x) => x * 3, note() {} } } })
     sandbox.callAsync('viaImport', 2).then((value) => {
       parentPort.postMessage(value)
       sandbox.callAsync('forever') // still running when the worker is terminated
       parentPort.postMessage('spinning')
     })`,
    { eval: true },
  )
  try {
    const messages = []
    await new Promise((resolve) => worker.on('message', (message) => messages.push(message) === 2 && resolve()))
    t.deepEqual(messages, [7, 'spinning'])
    await delay(20)
    const started = performance.now()
    t.is(await worker.terminate(), 1)
    t.true(performance.now() - started < 2000)
  } finally {
    await worker.terminate()
  }
  // The pool threads are free again: a new call runs.
  t.is(await new Sandbox(guest, { imports: noImports }).callAsync('add', 1, 1), 2)
})

test('a process that exits with async calls running neither hangs nor crashes', (t) => {
  const source = JSON.stringify(guestText('async.wat'))
  const script = `const { Sandbox } = require('wasm-memory-sandbox')
    const imports = { env: { get: () => new Promise(() => {}), note() {} } }
    const spinning = new Sandbox(${source}, { imports })
    const waiting = new Sandbox(${source}, { imports })
    spinning.callAsync('forever')
    waiting.callAsync('viaImport', 1)
    setTimeout(() => { console.log('exiting'); process.exit(3) }, 50)`
  const started = performance.now()
  const result = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20_000 })
  t.is(result.signal, null, result.stderr)
  t.is(result.status, 3, result.stderr)
  t.is(result.stdout, 'exiting\n')
  t.true(performance.now() - started < 10_000)
})
