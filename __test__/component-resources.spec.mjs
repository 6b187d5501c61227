// Resources a component exports (demo:types `counter`, examples/components/wit/types.wit) as JS
// classes: construct, call, static functions, drop with [Symbol.dispose](), use after drop,
// ownership passed to the guest, many handles, a handle of another instance, and handles JS
// drops without disposing (garbage-collected, in a child process with --expose-gc).
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

import test from 'ava'

import { Component } from 'wasm-memory-sandbox'

import { guestPath } from './helpers/guests.mjs'
import { mirrorImports } from './helpers/mirror.mjs'

const component = new Component(readFileSync(guestPath('build/types.rust.component.wasm')))

function instantiate(options = {}) {
  const instance = component.instantiate({
    ...options,
    imports: {
      'demo:types/logger': { log() {}, logPoint() {} },
      'demo:types/host': { Kv: class {}, fetchNumber: () => 0 },
      'demo:types/mirror': mirrorImports(),
      hostName: () => 'resources',
    },
  })
  return { instance, api: instance.exports.api, Counter: instance.exports.api.Counter }
}

const disposed = {
  instanceOf: TypeError,
  code: 'ERR_INVALID_ARG_VALUE',
  message: /disposed \(or whose ownership passed to the guest\)/,
}

test('an exported resource is a class: constructor, methods on the prototype, static functions', (t) => {
  const { Counter } = instantiate()
  t.is(typeof Counter, 'function')
  t.is(Counter.name, 'Counter')
  t.deepEqual(Object.getOwnPropertyNames(Counter.prototype).sort(), ['constructor', 'get', 'increment'])
  t.is(typeof Counter.merge, 'function')
  t.is(typeof Counter.prototype[Symbol.dispose], 'function')

  const counter = new Counter(5)
  t.true(counter instanceof Counter)
  t.deepEqual(Object.keys(counter), [])
  t.is(counter.get(), 5)
  counter.increment(3)
  t.is(counter.get(), 8)
  // The guest adds with wrapping_add.
  counter.increment(2 ** 32 - 8)
  t.is(counter.get(), 0)
  // Arguments are checked as for functions, naming the constructor or method and the parameter.
  t.throws(() => new Counter('5'), {
    instanceOf: TypeError,
    code: 'ERR_INVALID_ARG_TYPE',
    message: /\[constructor\]counter.*"start"/,
  })
  t.throws(() => counter.increment(-1), {
    instanceOf: RangeError,
    code: 'ERR_OUT_OF_RANGE',
    message: /\[method\]counter\.increment.*"by"/,
  })
  // Calling the class without `new` is the class's own TypeError.
  t.throws(() => Counter(1), { instanceOf: TypeError })
  t.is(counter.get(), 0)
})

test('a static function takes borrows and returns a new owned object; the borrowed ones stay valid', (t) => {
  const { Counter } = instantiate()
  const a = new Counter(2)
  const b = new Counter(40)
  const merged = Counter.merge(a, b)
  t.true(merged instanceof Counter)
  t.not(merged, a)
  t.is(merged.get(), 42)
  t.is(a.get(), 2)
  t.is(b.get(), 40)
  // The same object for both borrows.
  t.is(Counter.merge(a, a).get(), 4)
  merged.increment(1)
  t.is(merged.get(), 43)
  t.is(a.get(), 2)
})

test('[Symbol.dispose]() drops the handle; any later use is a TypeError, dispose again a no-op', (t) => {
  const { Counter, api } = instantiate()
  const counter = new Counter(7)
  counter[Symbol.dispose]()
  t.throws(() => counter.get(), { ...disposed, message: /\[method\]counter\.get.*"self"/ })
  t.throws(() => counter.increment(1), { ...disposed, message: /\[method\]counter\.increment.*"self"/ })
  const other = new Counter(1)
  t.throws(() => Counter.merge(other, counter), { ...disposed, message: /\[static\]counter\.merge.*"b"/ })
  t.throws(() => api.stash(counter), { ...disposed, message: /stash.*"c"/ })
  t.notThrows(() => counter[Symbol.dispose]())
  // `using` disposes at the end of the block (where the syntax exists; the same call otherwise).
  {
    const scoped = new Counter(3)
    try {
      t.is(scoped.get(), 3)
    } finally {
      scoped[Symbol.dispose]()
    }
    t.throws(() => scoped.get(), disposed)
  }
  // The instance is unaffected.
  t.is(other.get(), 1)
  t.is(api.echoU8(5), 5)
})

test('passing an owned handle to the guest moves it: the JS object is spent, the guest holds it', (t) => {
  const { Counter, api } = instantiate()
  t.is(api.stashedTotal(), 0)
  const counter = new Counter(10)
  counter.increment(5)
  api.stash(counter)
  t.throws(() => counter.get(), disposed)
  t.throws(() => api.stash(counter), disposed)
  // Disposing the spent object does nothing (the guest's handle is not dropped).
  t.notThrows(() => counter[Symbol.dispose]())
  api.stash(new Counter(3))
  t.is(api.stashedTotal(), 18)
  // A borrow is not a move: merge leaves its arguments usable.
  const kept = new Counter(1)
  Counter.merge(kept, kept)[Symbol.dispose]()
  api.stash(kept)
  t.is(api.stashedTotal(), 19)
})

test('many handles: 10,000 counters created, used and disposed, then 10,000 alive at once', (t) => {
  const { Counter, api, instance } = instantiate()
  let sum = 0
  for (let index = 0; index < 10_000; index++) {
    const counter = new Counter(index)
    counter.increment(1)
    sum += counter.get()
    counter[Symbol.dispose]()
  }
  t.is(sum, (10_000 * 10_001) / 2)
  const alive = Array.from({ length: 10_000 }, (_, index) => new Counter(index))
  const pagesAlive = instance.exports.limits.grow(0)
  t.is(
    alive.reduce((total, counter) => total + counter.get(), 0),
    (10_000 * 9_999) / 2,
  )
  for (const counter of alive) counter[Symbol.dispose]()
  for (const counter of alive.slice(0, 10)) t.throws(() => counter.get(), disposed)
  // The guest freed them: another 10,000 fit in the same memory.
  const again = Array.from({ length: 10_000 }, (_, index) => new Counter(index))
  t.is(instance.exports.limits.grow(0), pagesAlive)
  for (const counter of again) counter[Symbol.dispose]()
  t.is(api.echoString('after'), 'after')
})

test('a resource of another instance of the same component is a TypeError, and both instances go on', (t) => {
  const first = instantiate()
  const second = instantiate()
  t.not(first.Counter, second.Counter)
  const mine = new first.Counter(1)
  const theirs = new second.Counter(2)
  t.false(theirs instanceof first.Counter)
  const foreign = { instanceOf: TypeError, code: 'ERR_INVALID_ARG_VALUE', message: /another component instance/ }
  t.throws(() => first.Counter.merge(mine, theirs), {
    ...foreign,
    message: /\[static\]counter\.merge.*"b".*another component instance/,
  })
  t.throws(() => first.api.stash(theirs), { ...foreign, message: /stash.*"c"/ })
  t.throws(() => first.Counter.prototype.get.call(theirs), { ...foreign, message: /"self"/ })
  // The rejected move left the handle where it was.
  t.is(theirs.get(), 2)
  t.is(mine.get(), 1)
  t.is(first.api.stashedTotal(), 0)
  t.is(second.Counter.merge(theirs, theirs).get(), 4)
})

test('a value that is not a resource object is a coded TypeError naming the parameter', (t) => {
  const { Counter, api } = instantiate()
  const counter = new Counter(1)
  for (const value of [{}, null, undefined, 5, 'counter', Object.create(Counter.prototype), { handle: 1 }]) {
    const error = t.throws(() => Counter.merge(counter, value), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
    t.regex(error?.message ?? '', /\[static\]counter\.merge: the argument "b" must be a Counter resource object/)
  }
  t.throws(() => api.stash({}), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE', message: /"c"/ })
  t.throws(() => Counter.prototype.get.call({}), {
    instanceOf: TypeError,
    code: 'ERR_INVALID_ARG_TYPE',
    message: /"self"/,
  })
  t.is(counter.get(), 1)
})

test('after the instance is disposed its resource objects throw ERR_SANDBOX_DISPOSED, and disposing them is harmless', (t) => {
  const { Counter, instance } = instantiate()
  const counter = new Counter(1)
  instance.dispose()
  t.throws(() => counter.get(), { code: 'ERR_SANDBOX_DISPOSED' })
  t.throws(() => new Counter(1), { code: 'ERR_SANDBOX_DISPOSED' })
  t.notThrows(() => counter[Symbol.dispose]())
})

test('resource objects JS drops without disposing are garbage-collected and their guest handles dropped', (t) => {
  // A child process: a clean heap, and --expose-gc without affecting the other tests. 12 rounds
  // of 25,000 counters: 300,000 in all, three times wasmtime's 100,000 handles per store, so
  // the calls only go on if the collected handles were dropped in the guest.
  const script = fileURLToPath(new URL('helpers/component-handles-collected.mjs', import.meta.url))
  const run = spawnSync(process.execPath, ['--expose-gc', script, '12', '25000'], {
    encoding: 'utf8',
    timeout: 90_000,
  })
  t.is(run.status, 0, run.stderr)
  const report = JSON.parse(run.stdout.trim().split('\n').pop())
  t.true(report.weakCollected, 'an unreferenced Counter is collected')
  t.is(report.kept, 13)
  t.is(report.merged, 26)
  t.is(report.echo, 'still working')
  let expectedSum = 0
  for (let index = 0; index < 25_000; index++) expectedSum += index & 0xff
  t.is(report.sum, expectedSum * 12)
  // The guest's memory (in pages, limits.grow(0)) stops growing after the first round: the
  // guest freed the collected counters and reuses their memory.
  const [, afterFirst, ...rest] = report.pages
  t.true(
    rest.every((pages) => pages === afterFirst),
    `pages per round: ${report.pages}`,
  )
  t.true(report.rssMiB < 512, `rss ${report.rssMiB} MiB`)
})

test('200,000 counters left to the GC without disposing, in one loop, do not exhaust the instance', (t) => {
  // jco's glue has no limit on live handles; wasmtime's store allows 100,000 by default and V8
  // sees no memory pressure from the small resource objects, so nothing collects them in time
  // unless the addon makes room (a higher handle limit, or telling V8 what each handle costs).
  const { Counter, api } = instantiate()
  let sum = 0
  for (let index = 0; index < 200_000; index++) sum += new Counter(1).get()
  t.is(sum, 200_000)
  t.is(api.echoU8(1), 1)
})
