// WebAssembly namespace: exception handling. Tag, Exception and JSTag; wasm exceptions caught in
// JS, JS exceptions caught in wasm, identity across both, and limits that no handler can catch.
import { spawnSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

import test from 'ava'

import { createWebAssembly } from 'wasm-memory-sandbox'

import { wat } from './helpers/wat.mjs'

const guest = wat(`(module
  (import "env" "call" (func $call))
  (import "env" "tag" (tag $imported (param i32)))
  (import "env" "js" (tag $js (param externref)))
  (tag $pair (export "pair") (param i32 i64))
  (tag $own (export "own") (param f64))
  (func (export "throwPair") (param i32 i64) (throw $pair (local.get 0) (local.get 1)))
  (func (export "throwOwn") (throw $own (f64.const 2.5)))
  ;; Calls the import; the payload of an $imported exception it throws, else -1.
  (func (export "catchImported") (result i32)
    (block $caught (result i32)
      (try_table (catch $imported $caught) (call $call))
      (i32.const -1)))
  ;; Calls the import; 1 if anything at all was thrown (catch_all), else 0.
  (func (export "catchAll") (result i32)
    (block $caught
      (try_table (catch_all $caught) (call $call))
      (return (i32.const 0)))
    (i32.const 1))
  ;; Calls the import, catches whatever it throws with its exnref, and throws it again.
  (func (export "rethrow")
    (throw_ref
      (block $caught (result exnref)
        (try_table (catch_all_ref $caught) (call $call))
        (return))))
  ;; Calls the import; the JS value of a JS exception it throws (JSTag), else null.
  (func (export "catchJs") (result externref)
    (block $caught (result externref)
      (try_table (catch $js $caught) (call $call))
      (ref.null extern)))
  (func (export "spin") (loop $forever (br $forever)))
  ;; A runaway loop inside a catch_all: a limit is not an exception, nothing catches it.
  (func (export "spinCaught") (result i32)
    (block $caught
      (try_table (catch_all $caught) (loop $forever (br $forever)))
      (return (i32.const 0)))
    (i32.const 1)))`)

/** What `fn` throws (an Exception is not an Error, so not `t.throws`); fails if it returns. */
function caught(fn) {
  try {
    fn()
  } catch (thrown) {
    return thrown
  }
  throw new Error('expected a throw')
}

/** An instance of the guest whose `env.call` import runs `behave()`. */
function instantiate(WA, behave, tag = new WA.Tag({ parameters: ['i32'] })) {
  const { exports } = new WA.Instance(new WA.Module(guest), {
    env: { call: () => behave(), tag, js: WA.JSTag },
  })
  return { exports, tag }
}

test('Tag and Exception: payloads convert like arguments, getArg and is check the tag', (t) => {
  const WA = createWebAssembly()
  const tag = new WA.Tag({ parameters: ['i32', 'i64', 'f32', 'externref'] })
  const carried = { any: 'object' }
  const exception = new WA.Exception(tag, ['7', 2n ** 40n, 1.1, carried])
  t.is(Object.prototype.toString.call(tag), '[object WebAssembly.Tag]')
  t.is(Object.prototype.toString.call(exception), '[object WebAssembly.Exception]')
  t.false(exception instanceof Error, 'as in V8, an Exception is not an Error')
  t.is(exception.getArg(tag, 0), 7)
  t.is(exception.getArg(tag, 1), 2n ** 40n)
  t.is(exception.getArg(tag, 2), Math.fround(1.1))
  t.is(exception.getArg(tag, 3), carried, 'an externref payload is the same object')
  t.true(exception.is(tag))
  t.false(exception.is(new WA.Tag({ parameters: ['i32', 'i64', 'f32', 'externref'] })), 'same type, another tag')
  t.throws(() => exception.getArg(new WA.Tag({ parameters: [] }), 0), { instanceOf: TypeError })
  t.throws(() => exception.getArg(tag, 4), { instanceOf: RangeError })
  t.throws(() => exception.getArg(tag, -1), { instanceOf: TypeError })
  t.throws(() => new WA.Exception(tag, [1, 2n, 3]), { instanceOf: TypeError, message: /does not match/ })
  t.throws(() => new WA.Exception(tag, [1, 2, 3, null]), { instanceOf: TypeError }, 'an i64 needs a BigInt')
  t.throws(() => new WA.Tag({ parameters: ['i16'] }), { instanceOf: TypeError })
  t.throws(() => new WA.Exception(WA.JSTag, [{}]), { instanceOf: TypeError, message: /JSTag/ })
  t.throws(() => WA.Tag({ parameters: [] }), { instanceOf: TypeError }, 'a constructor, not a function')
  const traced = new WA.Exception(new WA.Tag({ parameters: [] }), [], { traceStack: true })
  t.regex(traced.stack, /webassembly-exceptions\.spec/)
  t.false('stack' in exception)
})

test('a wasm throw reaches JS as a WA.Exception with its payload, tagged by the exported tag', (t) => {
  const WA = createWebAssembly()
  const { exports } = instantiate(WA, () => {})
  const other = instantiate(WA, () => {}).exports
  t.true(exports.pair instanceof WA.Tag)
  t.not(exports.pair, other.pair, 'each instance defines its own tag')
  const thrown = caught(() => exports.throwPair(5, -3n))
  t.true(thrown instanceof WA.Exception)
  t.true(thrown.is(exports.pair))
  t.false(thrown.is(exports.own))
  t.false(thrown.is(other.pair))
  t.is(thrown.getArg(exports.pair, 0), 5)
  t.is(thrown.getArg(exports.pair, 1), -3n)
  const own = caught(() => exports.throwOwn())
  t.is(own.getArg(exports.own, 0), 2.5)
  t.not(
    own,
    caught(() => exports.throwOwn()),
    'each throw is a new exception',
  )
})

test('a JS import throws a WA.Exception: wasm catches it by its tag and reads the payload', (t) => {
  const WA = createWebAssembly()
  let toThrow
  const { exports, tag } = instantiate(WA, () => {
    throw toThrow
  })
  toThrow = new WA.Exception(tag, [42])
  t.is(exports.catchImported(), 42)
  toThrow = new WA.Exception(new WA.Tag({ parameters: ['i32'] }), [42])
  t.is(
    caught(() => exports.catchImported()),
    toThrow,
    'another tag: not caught, and out it comes as itself',
  )
  t.is(exports.catchAll(), 1, 'catch_all catches any exception')
})

test('identity: an exception JS threw, caught and rethrown by wasm, is the same object in JS', (t) => {
  const WA = createWebAssembly()
  let toThrow
  const { exports, tag } = instantiate(WA, () => {
    throw toThrow
  })
  toThrow = new WA.Exception(tag, [1])
  t.is(
    caught(() => exports.rethrow()),
    toThrow,
  )
  toThrow = new Error('from JS')
  t.is(
    caught(() => exports.rethrow()),
    toThrow,
    'a JS Error through catch_all_ref and throw_ref',
  )
  for (const value of [undefined, null, 7, 'text', Symbol('s')]) {
    toThrow = value
    t.is(
      t.throws(() => exports.rethrow(), { any: true }),
      value,
      `a thrown ${String(value)}`,
    )
  }
})

test('JS exceptions cross wasm: catch_all swallows them, JSTag gives the thrown value', (t) => {
  const WA = createWebAssembly()
  const error = new TypeError('thrown by JS')
  const { exports } = instantiate(WA, () => {
    throw error
  })
  t.is(exports.catchAll(), 1)
  t.is(exports.catchJs(), error, 'catch $JSTag receives the value as an externref')
})

test('uncaught JS exceptions pass through wasm unchanged (identity, as V8)', (t) => {
  const WA = createWebAssembly()
  const error = new RangeError('from the import')
  const { exports } = instantiate(WA, () => {
    throw error
  })
  t.is(
    caught(() => exports.catchImported()),
    error,
    'not caught by a tag of its own: out as itself',
  )
  t.is(caught(() => exports.throwPair(1, 1n)).getArg(exports.pair, 0), 1, 'and the namespace is usable')
})

test('exceptions of another namespace are foreign: they cross as plain JS values', (t) => {
  const A = createWebAssembly()
  const B = createWebAssembly()
  const foreign = new A.Exception(new A.Tag({ parameters: ['i32'] }), [9])
  const { exports, tag } = instantiate(B, () => {
    throw foreign
  })
  t.is(
    caught(() => exports.catchImported()),
    foreign,
    "not caught by B's tag of the same type",
  )
  t.is(exports.catchJs(), foreign, 'to B it is a JS value like any other')
  t.throws(() => foreign.is(tag), { instanceOf: TypeError }, "B's tag is not a tag of A")
  t.throws(() => new B.Exception(new A.Tag({ parameters: [] }), []), { instanceOf: TypeError })
})

test('limits are not exceptions: catch_all cannot catch a timeout', (t) => {
  const WA = createWebAssembly({ timeoutMs: 100 })
  const { exports } = instantiate(WA, () => {})
  const error = t.throws(() => exports.spinCaught(), { instanceOf: WA.RuntimeError })
  t.is(error.code, 'ERR_WASM_TIMEOUT')
  t.is(exports.catchAll(), 0, 'the namespace is usable after')
})

test('an exception JS dropped is released; wasm rethrowing it later gives a new, correct object', (t) => {
  const child = spawnSync(
    process.execPath,
    ['--expose-gc', join(dirname(fileURLToPath(import.meta.url)), 'helpers', 'exception-released.mjs')],
    { encoding: 'utf8', timeout: 60_000 },
  )
  t.is(child.status, 0, child.stderr)
  t.is(child.stdout.trim(), 'ok')
})

test('throwing stays cheap while JS holds many exceptions (identity lookup is not a scan)', (t) => {
  const WA = createWebAssembly()
  const { exports } = instantiate(WA, () => {})
  const held = []
  const timeBatch = () => {
    const started = performance.now()
    for (let i = 0; i < 10_000; i++) held.push(caught(() => exports.throwOwn()))
    return performance.now() - started
  }
  const first = timeBatch()
  for (let batch = 0; batch < 3; batch++) timeBatch()
  const last = timeBatch()
  t.log(`10,000 throws: ${first.toFixed(0)} ms with none held, ${last.toFixed(0)} ms with 40,000 held`)
  t.is(held.length, 50_000)
  t.true(held.every((exception) => exception instanceof WA.Exception))
  // A scan of the held exceptions per throw made the last batch about 9x slower than the first.
  t.true(last < first * 4, `the last batch took ${last} ms, the first ${first} ms`)
})
