// WebAssembly namespace: exported functions, exports objects, values and imports.
import test from 'ava'

import { createWebAssembly } from 'wasm-memory-sandbox'

import { wat } from './helpers/wat.mjs'

const math = wat(`(module
  (func $pad (param i32) (result i32) (local.get 0))
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (func (export "wide") (param i64) (result i64) (i64.mul (local.get 0) (i64.const 2)))
  (func (export "half") (param f64) (result f64) (f64.div (local.get 0) (f64.const 2)))
  (func (export "pair") (param i32) (result i32 i64) (local.get 0) (i64.extend_i32_s (local.get 0)))
  (func (export "none")))`)

test('exported functions are real functions: name is the function index, length the arity', (t) => {
  const WA = createWebAssembly()
  const { exports } = new WA.Instance(new WA.Module(math))
  t.is(typeof exports.add, 'function')
  t.is(exports.add.name, '1')
  t.is(exports.add.length, 2)
  t.is(exports.wide.name, '2')
  t.is(exports.none.length, 0)
  t.is(Object.getPrototypeOf(exports.add), Function.prototype)
  t.is(exports.add.call(null, 2, 3), 5)
  t.is(exports.add.apply(null, [4, 5]), 9)
  t.is(exports.add(), 0, 'missing arguments are undefined, converted to 0')
  t.is(exports.add('7', { valueOf: () => 1 }), 8, 'ToInt32 of each argument')
  t.is(exports.add(2 ** 31, 0), -(2 ** 31))
  t.throws(() => new exports.add(), { instanceOf: TypeError }, 'not a constructor')
})

test('exports objects are frozen, with a null prototype, and the same object each time', (t) => {
  const WA = createWebAssembly()
  const instance = new WA.Instance(new WA.Module(math))
  const { exports } = instance
  t.is(instance.exports, exports)
  t.is(Object.getPrototypeOf(exports), null)
  t.true(Object.isFrozen(exports))
  t.deepEqual(Object.keys(exports), ['add', 'wide', 'half', 'pair', 'none'])
  t.throws(() => {
    'use strict'
    exports.add = null
  })
  t.is(exports.add, exports.add, 'the same function object each time')
})

test('i64 is BigInt both ways; several results are an array', (t) => {
  const WA = createWebAssembly()
  const { exports } = new WA.Instance(new WA.Module(math))
  t.is(exports.wide(21n), 42n)
  t.is(exports.wide(2n ** 63n), 0n, 'ToBigInt64 wraps')
  t.throws(() => exports.wide(1), { instanceOf: TypeError }, 'a number is not a BigInt')
  t.is(exports.half(5), 2.5)
  t.deepEqual(exports.pair(-3), [-3, -3n])
})

test('an exported function passed back as an import is recognised without rewrapping', (t) => {
  const WA = createWebAssembly()
  const a = new WA.Instance(new WA.Module(math)).exports
  const reexport = wat(`(module (import "m" "add" (func $add (param i32 i32) (result i32)))
    (export "add" (func $add))
    (func (export "twice") (param i32) (result i32) (call $add (local.get 0) (local.get 0))))`)
  const b = new WA.Instance(new WA.Module(reexport), { m: { add: a.add } }).exports
  t.is(b.add, a.add, 'the same function object comes back')
  t.is(b.twice(21), 42)
})

test('functions stored in a table and in a funcref global come back as the same objects', (t) => {
  const WA = createWebAssembly()
  const { exports } = new WA.Instance(new WA.Module(math))
  const table = new WA.Table({ element: 'anyfunc', initial: 2 })
  t.is(table.get(0), null)
  table.set(0, exports.add)
  t.is(table.get(0), exports.add)
  t.throws(() => table.set(1, () => 1), { instanceOf: TypeError }, 'plain JS functions are not funcrefs')
  const user = new WA.Instance(
    new WA.Module(
      wat(`(module (import "env" "table" (table 2 funcref)) (type $t (func (param i32 i32) (result i32)))
        (func (export "callAt") (param i32 i32 i32) (result i32)
          (call_indirect (type $t) (local.get 1) (local.get 2) (local.get 0))))`),
    ),
    { env: { table } },
  ).exports
  t.is(user.callAt(0, 20, 22), 42)
  const error = t.throws(() => user.callAt(1, 0, 0), { instanceOf: WA.RuntimeError })
  t.is(error.code, 'ERR_WASM_TRAP')
  const global = new WA.Global({ value: 'anyfunc', mutable: true }, exports.add)
  t.is(global.value, exports.add)
  global.value = null
  t.is(global.value, null)
})

test('externref values round-trip through wasm unchanged', (t) => {
  const WA = createWebAssembly()
  const { exports } = new WA.Instance(
    new WA.Module(wat(`(module (func (export "id") (param externref) (result externref) (local.get 0)))`)),
  )
  const object = { a: 1 }
  t.is(exports.id(object), object)
  t.is(exports.id(undefined), undefined)
  t.is(exports.id(null), null)
  t.is(exports.id('text'), 'text')
})

test('the import object is read in the module import order, once per import', (t) => {
  const WA = createWebAssembly()
  const module = new WA.Module(
    wat(`(module (import "b" "f" (func)) (import "a" "g" (global i32)) (import "b" "h" (func)))`),
  )
  const reads = []
  const spy = (name, object) =>
    new Proxy(object, {
      get(target, key) {
        reads.push(`${name}.${String(key)}`)
        return target[key]
      },
    })
  const imports = spy('imports', { a: spy('a', { g: 1 }), b: spy('b', { f() {}, h() {} }) })
  new WA.Instance(module, imports)
  const order = WA.Module.imports(module)
  // binaryen emits function imports first: the module's order is b.f, b.h, a.g, not the text's.
  t.deepEqual(
    order.map(({ module: moduleName, name }) => `${moduleName}.${name}`),
    ['b.f', 'b.h', 'a.g'],
  )
  t.deepEqual(
    reads,
    order.flatMap(({ module: moduleName, name }) => [`imports.${moduleName}`, `${moduleName}.${name}`]),
  )
  t.deepEqual(order[2], { module: 'a', name: 'g', kind: 'global' })
})

test('JS imports get JS values and their exceptions reach the caller unchanged', (t) => {
  const WA = createWebAssembly()
  const module = new WA.Module(
    wat(`(module (import "env" "f" (func $f (param i32 i64 f64) (result i32)))
      (func (export "run") (param i32) (result i32) (call $f (local.get 0) (i64.const -5) (f64.const 0.5))))`),
  )
  const calls = []
  const thrown = new Error('from JS')
  let fail = false
  const { exports } = new WA.Instance(module, {
    env: {
      f(...args) {
        calls.push(args)
        if (fail) throw thrown
        return '12'
      },
    },
  })
  t.is(exports.run(3), 12, 'the result goes through ToInt32')
  t.deepEqual(calls, [[3, -5n, 0.5]])
  fail = true
  t.is(
    t.throws(() => exports.run(1)),
    thrown,
  )
})

test('link errors, compile errors and traps are the namespace’s own error classes', async (t) => {
  const WA = createWebAssembly()
  t.throws(() => new WA.Module(new Uint8Array([0, 97, 115, 109, 2, 0, 0, 0])), { instanceOf: WA.CompileError })
  const needsFunction = new WA.Module(wat(`(module (import "env" "f" (func)))`))
  t.throws(() => new WA.Instance(needsFunction, { env: { f: 1 } }), { instanceOf: WA.LinkError })
  t.throws(() => new WA.Instance(needsFunction, {}), { instanceOf: TypeError })
  const trap = new WA.Instance(new WA.Module(wat(`(module (func (export "boom") unreachable))`))).exports
  const error = t.throws(() => trap.boom(), { instanceOf: WA.RuntimeError })
  t.is(error.code, 'ERR_WASM_TRAP')
  t.is(error.kind, 'unreachable')
  t.true(error instanceof Error)
  t.false(error instanceof createWebAssembly().RuntimeError, 'each namespace has its own classes')
  await t.throwsAsync(WA.compile(new Uint8Array([1, 2, 3])), { instanceOf: WA.CompileError })
  await t.throwsAsync(WA.instantiate(needsFunction, { env: { f: 1 } }), { instanceOf: WA.LinkError })
})

test('compile and instantiate reject rather than throw', async (t) => {
  const WA = createWebAssembly()
  let promise
  t.notThrows(() => (promise = WA.compile('not bytes')))
  await t.throwsAsync(promise, { instanceOf: TypeError })
  t.notThrows(() => (promise = WA.instantiate(42)))
  await t.throwsAsync(promise, { instanceOf: TypeError })
  const { module, instance } = await WA.instantiate(math)
  t.true(module instanceof WA.Module)
  t.true(instance instanceof WA.Instance)
  t.true((await WA.instantiate(module)) instanceof WA.Instance)
  t.true((await WA.compile(math)) instanceof WA.Module)
  t.true(WA.validate(math))
  t.false(WA.validate(new Uint8Array([0, 97, 115, 109])))
})

test('globals: values, mutability, sharing between JS and instances', (t) => {
  const WA = createWebAssembly()
  const counter = new WA.Global({ value: 'i32', mutable: true }, 41)
  const { exports } = new WA.Instance(
    new WA.Module(
      wat(`(module (import "env" "g" (global $g (mut i32)))
        (global (export "wide") i64 (i64.const 7))
        (func (export "bump") (global.set $g (i32.add (global.get $g) (i32.const 1)))))`),
    ),
    { env: { g: counter } },
  )
  exports.bump()
  t.is(counter.value, 42)
  t.is(exports.wide.value, 7n)
  t.is(exports.wide.valueOf(), 7n)
  t.throws(() => (exports.wide.value = 1n), { instanceOf: TypeError })
})

test('tables with i64 addresses (table64) take and give BigInt, and wasm imports them as such', (t) => {
  const WA = createWebAssembly()
  const table = new WA.Table({ element: 'anyfunc', address: 'i64', initial: 2n })
  t.is(table.length, 2n)
  t.is(table.get(1n), null)
  t.throws(() => table.get(1), { instanceOf: TypeError }, 'a Number is not a BigInt')
  t.throws(() => table.get(2n), { instanceOf: RangeError })
  t.is(table.grow(1n), 2n)
  const module = new WA.Module(
    wat(`(module (import "env" "t" (table $t i64 1 funcref)) (func (export "size") (result i64) (table.size $t)))`),
  )
  t.is(new WA.Instance(module, { env: { t: table } }).exports.size(), 3n)
  const narrow = new WA.Table({ element: 'anyfunc', initial: 1 })
  t.throws(() => new WA.Instance(module, { env: { t: narrow } }), { instanceOf: WA.LinkError })
})
