// Every WIT type of the demo:types component (examples/components/wit/types.wit) crossing the
// boundary, in arguments and results, in exports and imports: what the addon gives, value for
// value, against what `jco transpile` gives on V8 for the same component and the same inputs
// (helpers/jco.mjs). Then the inputs where the addon is deliberately stricter than jco (which
// wraps or coerces): a coded TypeError/RangeError naming the function and the parameter, thrown
// before the guest runs, the instance staying usable.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

import test from 'ava'

import { Component, ComponentError } from 'wasm-memory-sandbox'

import { guestPath } from './helpers/guests.mjs'
import { jcoInstantiate } from './helpers/jco.mjs'
import { mirrorImports } from './helpers/mirror.mjs'

const typesBytes = readFileSync(guestPath('build/types.rust.component.wasm'))
const component = new Component(typesBytes)

/** The host side of the world, the same object shape for the addon and for jco; records what the guest sends. */
function host() {
  const seen = { logged: [], kvCreated: 0, kvDisposed: 0 }
  class Kv {
    #entries = new Map()
    constructor() {
      seen.kvCreated++
    }
    get(key) {
      return this.#entries.get(key)
    }
    set(key, value) {
      this.#entries.set(key, value)
    }
    [Symbol.dispose]() {
      seen.kvDisposed++
    }
  }
  const imports = {
    'demo:types/logger@0.1.0': {
      log: (message) => seen.logged.push(message),
      logPoint: (point) => seen.logged.push(point),
    },
    'demo:types/host': {
      Kv,
      fetchNumber(key) {
        if (key === 'component error') throw new ComponentError('no such key')
        if (key === 'thrown string') throw 'a thrown string'
        if (key === 'thrown payload') throw Object.assign(new Error('ignored'), { payload: 'from payload' })
        if (key === 'returned err') return { tag: 'err', val: 'returned err' }
        if (key === 'returned ok') return { tag: 'ok', val: 41 }
        if (key === 'thrown Error') throw new Error('a host bug')
        return key.length
      },
    },
    hostName: () => 'the host',
    'demo:types/mirror': mirrorImports(),
  }
  return { seen, imports }
}

function ours() {
  const { seen, imports } = host()
  const instance = component.instantiate({ imports })
  return { seen, instance, api: instance.exports.api, exports: instance.exports }
}

async function theirs(t) {
  const { seen, imports } = host()
  const jco = await jcoInstantiate(typesBytes, imports)
  t.teardown(jco.close)
  return { seen, api: jco.exports.api, exports: jco.exports }
}

/** Both sides, fresh. */
async function both(t) {
  return { ours: ours(), jco: await theirs(t) }
}

/** What a call gives: its value, or what it threw (for a ComponentError, its class, message and payload). */
function outcome(fn) {
  try {
    return { value: fn() }
  } catch (error) {
    return { threw: error }
  }
}

/**
 * Calls `name(...args)` on both sides; the values must be deep-equal (ava's deepEqual tells
 * typed array classes, -0 from 0, NaN, bigint from number, and a missing key from `undefined`).
 */
function same(t, sides, name, args, check) {
  const a = outcome(() => sides.ours.api[name](...args))
  const b = outcome(() => sides.jco.api[name](...args))
  const label = `${name}(${args.map((arg) => describe(arg)).join(', ')})`
  if (a.threw) t.fail(`${label}: the addon threw ${a.threw?.stack ?? a.threw}`)
  if (b.threw) t.fail(`${label}: jco threw ${b.threw?.stack ?? b.threw}`)
  if (a.threw || b.threw) return undefined
  t.deepEqual(a.value, b.value, label)
  check?.(a.value, label)
  return a.value
}

/** Both sides must throw a ComponentError (err of a top-level result) with the same payload and message. */
function sameError(t, sides, name, args, payload) {
  const a = outcome(() => sides.ours.api[name](...args))
  const b = outcome(() => sides.jco.api[name](...args))
  const label = `${name}(${args.map((arg) => describe(arg)).join(', ')})`
  t.truthy(a.threw, `${label}: the addon returned`)
  t.truthy(b.threw, `${label}: jco returned`)
  if (!a.threw || !b.threw) return
  t.true(a.threw instanceof ComponentError, label)
  t.true(a.threw instanceof Error)
  t.is(b.threw.constructor.name, 'ComponentError')
  t.deepEqual(a.threw.payload, b.threw.payload, label)
  t.deepEqual(a.threw.payload, payload, label)
  t.is(a.threw.message, b.threw.message, label)
  // jco defines a string payload as an own, non-enumerable property; so does the addon.
  t.deepEqual(Object.keys(a.threw), Object.keys(b.threw))
}

function describe(value) {
  if (typeof value === 'bigint') return `${value}n`
  if (ArrayBuffer.isView(value)) return `${value.constructor.name}[${value.length}]`
  if (typeof value === 'string') return JSON.stringify(value.length > 20 ? `${value.slice(0, 20)}…` : value)
  if (Object.is(value, -0)) return '-0'
  try {
    return JSON.stringify(value) ?? String(value)
  } catch {
    return String(value)
  }
}

const isNumber = (t) => (value, label) => t.is(typeof value, 'number', label)
const isBigint = (t) => (value, label) => t.is(typeof value, 'bigint', label)
const isString = (t) => (value, label) => t.is(typeof value, 'string', label)
const isA = (t, Class) => (value, label) => t.true(value instanceof Class, `${label}: ${value?.constructor?.name}`)

test('bool, integers, s64/u64 as bigint, floats, char and string, at their edges', async (t) => {
  const sides = await both(t)
  for (const v of [true, false]) same(t, sides, 'echoBool', [v], (value) => t.is(typeof value, 'boolean'))
  for (const v of [-128, -1, 0, 127]) same(t, sides, 'echoS8', [v], isNumber(t))
  for (const v of [0, 1, 255]) same(t, sides, 'echoU8', [v], isNumber(t))
  for (const v of [-32768, 32767]) same(t, sides, 'echoS16', [v], isNumber(t))
  for (const v of [0, 65535]) same(t, sides, 'echoU16', [v], isNumber(t))
  for (const v of [-(2 ** 31), 2 ** 31 - 1]) same(t, sides, 'echoS32', [v], isNumber(t))
  for (const v of [0, 2 ** 32 - 1]) same(t, sides, 'echoU32', [v], isNumber(t))
  for (const v of [-(2n ** 63n), -1n, 0n, 2n ** 63n - 1n]) same(t, sides, 'echoS64', [v], isBigint(t))
  for (const v of [0n, 2n ** 53n + 1n, 2n ** 64n - 1n]) same(t, sides, 'echoU64', [v], isBigint(t))
  // A number that is an integer is taken for a 64-bit integer by both (BigInt(5)); the result is a bigint.
  same(t, sides, 'echoU64', [5], isBigint(t))
  same(t, sides, 'echoS64', [-5], isBigint(t))
  // f32 rounds (0.1 -> Math.fround(0.1)); NaN, -0 and the infinities survive.
  for (const v of [0.1, -0, NaN, Infinity, -Infinity, 3.4028234663852886e38, 1e-45])
    same(t, sides, 'echoF32', [v], isNumber(t))
  t.is(sides.ours.api.echoF32(0.1), Math.fround(0.1))
  t.true(Object.is(sides.ours.api.echoF32(-0), -0))
  for (const v of [Math.PI, -0, NaN, Number.MAX_VALUE, Number.MIN_VALUE, -Infinity])
    same(t, sides, 'echoF64', [v], isNumber(t))
  t.true(Object.is(sides.ours.api.echoF64(-0), -0))
  for (const v of ['a', 'é', '😀', '\u{10ffff}', '\0']) same(t, sides, 'echoChar', [v], isString(t))
  // A lone surrogate is not a Unicode scalar value: both send U+FFFD (TextEncoder's replacement).
  for (const v of ['héllo', '', '😀 and \u0000 and 中文', 'a\ud800b', 'x'.repeat(100_000)])
    same(t, sides, 'echoString', [v], isString(t))
  t.is(sides.ours.api.echoString('a\ud800b'), 'a\ufffdb')
})

test('lists: numeric lists as their typed arrays, from typed arrays or plain arrays; list<string>, list<record>', async (t) => {
  const sides = await both(t)
  const typed = [
    ['echoListU8', Uint8Array, [0, 1, 255]],
    ['echoListS8', Int8Array, [-128, 0, 127]],
    ['echoListU16', Uint16Array, [0, 258, 65535]],
    ['echoListS16', Int16Array, [-32768, -2, 3, 32767]],
    ['echoListU32', Uint32Array, [0, 1, 2 ** 32 - 1]],
    ['echoListS32', Int32Array, [-(2 ** 31), -1, 2 ** 31 - 1]],
    ['echoListU64', BigUint64Array, [0n, 1n, 2n ** 64n - 1n]],
    ['echoListS64', BigInt64Array, [-(2n ** 63n), -1n, 2n ** 63n - 1n]],
    ['echoListF32', Float32Array, [0.5, -0, NaN, Infinity]],
    ['echoListF64', Float64Array, [Math.PI, -0, NaN, -Infinity]],
  ]
  for (const [name, Class, values] of typed) {
    same(t, sides, name, [Class.from(values)], isA(t, Class))
    same(t, sides, name, [values], isA(t, Class))
    same(t, sides, name, [new Class(0)], isA(t, Class))
    same(t, sides, name, [[]], isA(t, Class))
  }
  // A Buffer and a view into the middle of a larger buffer, for list<u8>: only the view's bytes.
  same(t, sides, 'echoListU8', [Buffer.from('bytes')], isA(t, Uint8Array))
  same(t, sides, 'echoListU8', [new Uint8Array([9, 8, 7, 6, 5]).subarray(1, 4)], isA(t, Uint8Array))
  t.deepEqual(sides.ours.api.echoListU8(new Uint8Array([9, 8, 7, 6, 5]).subarray(1, 4)), new Uint8Array([8, 7, 6]))
  // f32 elements are rounded.
  t.deepEqual([...sides.ours.api.echoListF32([0.1])], [Math.fround(0.1)])
  // The result is a fresh array, not the argument.
  const input = new Uint8Array([1, 2, 3])
  const output = sides.ours.api.echoListU8(input)
  t.not(output, input)
  output[0] = 99
  t.is(input[0], 1)

  for (const v of [[], ['a', '', 'héllo', '😀']]) same(t, sides, 'echoListString', [v], isA(t, Array))
  const points = same(
    t,
    sides,
    'echoListRecord',
    [
      [
        { x: 1, y: -2 },
        { x: -(2 ** 31), y: 2 ** 31 - 1 },
      ],
    ],
    isA(t, Array),
  )
  t.is(Object.getPrototypeOf(points[0]), Object.prototype)
  same(t, sides, 'echoListRecord', [[]])
})

test('numeric lists inside a record, a list of records and a result cross as jco gives them', async (t) => {
  const sides = await both(t)
  const limits = { ours: sides.ours.exports.limits, jco: sides.jco.exports.limits }
  const blob = limits.ours.makeBlob('b', 300)
  t.deepEqual(blob, limits.jco.makeBlob('b', 300))
  t.true(blob.data instanceof Uint8Array)
  t.true(blob.samples instanceof Float64Array)
  t.deepEqual(outcome(() => limits.ours.makeBlob('none', 0)).threw.payload, 'none: no bytes')
  t.deepEqual(outcome(() => limits.jco.makeBlob('none', 0)).threw.payload, 'none: no bytes')
  for (const args of [
    [blob, [blob, blob]],
    [{ name: 'plain', data: [1, 2, 3], samples: [0.25, -0] }, []],
    [{ name: '', data: Buffer.from('abc'), samples: new Float64Array([NaN]) }, [{ name: 'x', data: [], samples: [] }]],
  ]) {
    t.deepEqual(limits.ours.sumBlobs(...args), limits.jco.sumBlobs(...args), describe(args))
  }
  const input = { name: 'mirror', data: new Uint8Array([5, 6, 7]), samples: new Float64Array([1]) }
  t.deepEqual(limits.ours.throughBlob(input), limits.jco.throughBlob(input))
})

test('tuple, records with kebab-case fields (nested, with an option and a list), variant, enum, flags', async (t) => {
  const sides = await both(t)
  same(t, sides, 'echoTuple', [[255, 'x', 1.5]], isA(t, Array))
  same(t, sides, 'echoTuple', [[0, '', -0]])
  same(t, sides, 'echoPoint', [{ x: 3, y: -4 }])
  // Extra keys are ignored by both.
  same(t, sides, 'echoPoint', [{ x: 3, y: -4, z: 5 }])

  const record = {
    firstName: 'Ann',
    ageInYears: 30,
    isActive: true,
    nestedThing: { labelText: 'home', thePoint: { x: 1, y: 2 } },
    maybeScore: 2.5,
    tagList: ['a', 'b'],
  }
  const echoed = same(t, sides, 'echoRecord', [record])
  t.deepEqual(Object.keys(echoed), ['firstName', 'ageInYears', 'isActive', 'nestedThing', 'maybeScore', 'tagList'])
  t.deepEqual(Object.keys(echoed.nestedThing), ['labelText', 'thePoint'])
  // An option field that is none comes back as a present key holding undefined (jco's shape).
  for (const input of [
    { ...record, maybeScore: undefined },
    { ...record, maybeScore: null },
  ]) {
    const none = same(t, sides, 'echoRecord', [input])
    t.true('maybeScore' in none)
    t.is(none.maybeScore, undefined)
  }
  const { maybeScore, ...withoutScore } = record
  t.is(maybeScore, 2.5)
  same(t, sides, 'echoRecord', [withoutScore])
  same(t, sides, 'echoRecord', [{ ...record, maybeScore: 0, tagList: [], isActive: false }])

  const nothing = same(t, sides, 'echoVariant', [{ tag: 'nothing' }])
  t.false('val' in nothing, 'a case without payload has no val key')
  // A val given for a case without payload is ignored.
  same(t, sides, 'echoVariant', [{ tag: 'nothing', val: 5 }])
  same(t, sides, 'echoVariant', [{ tag: 'circle', val: 2.5 }])
  same(t, sides, 'echoVariant', [{ tag: 'rectangle', val: { x: 3, y: 4 } }])
  same(t, sides, 'echoVariant', [{ tag: 'labelled', val: 'a label' }])

  for (const light of ['red-light', 'amber-light', 'green-light']) same(t, sides, 'echoEnum', [light], isString(t))

  const flags = [
    {},
    { canRead: true },
    { canWrite: true, isAdminUser: true },
    { canRead: true, canWrite: true, canExecute: true, isAdminUser: true },
    // Kebab keys are not the flags' keys: ignored by both.
    { 'can-read': true },
    undefined,
  ]
  for (const value of flags) {
    const result = same(t, sides, 'echoFlags', [value])
    t.deepEqual(Object.keys(result), ['canRead', 'canWrite', 'canExecute', 'isAdminUser'])
  }
})

test('options (nested as jco nests them), results in arguments and nested, and top-level result err', async (t) => {
  const sides = await both(t)
  for (const v of [undefined, null, 0, 7, 2 ** 32 - 1]) same(t, sides, 'echoOptionU32', [v])
  t.is(sides.ours.api.echoOptionU32(null), undefined)
  for (const v of [undefined, null, '', 's']) same(t, sides, 'echoOptionString', [v])
  t.is(sides.ours.api.echoOptionString(''), '')
  // option<option<u32>>: the outer option is { tag }, the inner one value-or-undefined.
  for (const v of [
    { tag: 'none' },
    { tag: 'some', val: undefined },
    { tag: 'some', val: null },
    { tag: 'some', val: 3 },
  ])
    same(t, sides, 'echoOptionOptionU32', [v])
  t.deepEqual(sides.ours.api.echoOptionOptionU32({ tag: 'some', val: undefined }), { tag: 'some', val: undefined })
  t.deepEqual(sides.ours.api.echoOptionOptionU32({ tag: 'none' }), { tag: 'none' })

  // A result at the top of an export: ok is the value, err throws a ComponentError with the payload.
  same(t, sides, 'echoResult', [{ tag: 'ok', val: 4 }], isNumber(t))
  sameError(t, sides, 'echoResult', [{ tag: 'err', val: 'bad' }], 'bad')
  sameError(t, sides, 'echoResult', [{ tag: 'err', val: '' }], '')
  same(t, sides, 'echoResultUnit', [{ tag: 'ok' }])
  t.is(sides.ours.api.echoResultUnit({ tag: 'ok', val: undefined }), undefined)
  sameError(t, sides, 'echoResultUnit', [{ tag: 'err', val: 'E' }], 'E')
  same(t, sides, 'checkedDiv', [7, 2])
  sameError(t, sides, 'checkedDiv', [1, 0], 'division by zero')
  same(t, sides, 'maybeFail', [false, 'unused'])
  sameError(t, sides, 'maybeFail', [true, 'it failed'], 'it failed')
  // The ComponentError: its message is the string payload, the payload not enumerable.
  const error = t.throws(() => sides.ours.api.checkedDiv(1, 0), { instanceOf: ComponentError })
  t.is(error.message, 'division by zero')
  // Unlike jco's (whose name stays 'Error'), the addon's says what it is, from its prototype.
  t.is(error.name, 'ComponentError')
  t.false(Object.hasOwn(error, 'name'))
  t.deepEqual(Object.keys(error), [])
  t.false(Object.getOwnPropertyDescriptor(error, 'payload').enumerable)

  // Below the top, results are { tag, val }.
  same(t, sides, 'echoListResult', [
    [
      { tag: 'ok', val: 1 },
      { tag: 'err', val: 'e' },
      { tag: 'ok', val: 0 },
    ],
  ])
  same(t, sides, 'echoListResult', [[]])
  // Everything still works after the errors.
  same(t, sides, 'echoU8', [9])
})

test('world-level exports, and the world-level import host-name (as a function, by WIT name, or as { default })', async (t) => {
  const sides = await both(t)
  t.is(sides.ours.exports.hello('you'), sides.jco.exports.hello('you'))
  t.is(sides.ours.exports.hello('you'), 'Hello, you!')
  t.is(sides.ours.exports.helloHost(), sides.jco.exports.helloHost())
  t.is(sides.ours.exports.helloHost(), 'Hello, the host!')
  const { imports } = host()
  const { hostName, ...rest } = imports
  t.is(typeof hostName, 'function')
  for (const world of [{ 'host-name': () => 'kebab' }, { 'host-name': { default: () => 'kebab' } }]) {
    const instance = component.instantiate({ imports: { ...rest, ...world } })
    t.is(instance.exports.helloHost(), 'Hello, kebab!')
  }
})

test('imports: the logger gets a string and a plain-object record, as jco gives them', async (t) => {
  const sides = await both(t)
  for (const side of [sides.ours, sides.jco]) {
    side.api.callLogger('hi')
    side.api.callLogger('')
    side.api.callLogger('😀 héllo')
    side.api.callLogPoint({ x: 1, y: -2 })
  }
  t.deepEqual(sides.ours.seen.logged, sides.jco.seen.logged)
  t.deepEqual(sides.ours.seen.logged, ['hi', '', '😀 héllo', { x: 1, y: -2 }])
  t.is(Object.getPrototypeOf(sides.ours.seen.logged[3]), Object.prototype)
})

test('imports: the host resource kv is constructed by the guest, its methods called, and disposed when dropped', async (t) => {
  const sides = await both(t)
  for (const [key, value] of [
    ['k', 'v'],
    ['', ''],
    ['ключ', '😀'],
  ]) {
    const a = sides.ours.api.kvRoundtrip(key, value)
    t.is(a, sides.jco.api.kvRoundtrip(key, value))
    t.is(a, value)
  }
  t.is(sides.ours.seen.kvCreated, 3)
  t.is(sides.ours.seen.kvCreated, sides.jco.seen.kvCreated)
  // The guest drops its kv when kv-roundtrip returns: the JS object's [Symbol.dispose] runs (as jco does).
  t.is(sides.ours.seen.kvDisposed, sides.jco.seen.kvDisposed)
  t.is(sides.ours.seen.kvDisposed, 3)
})

test('imports: a result-typed import: return -> ok, { tag } -> itself, thrown ComponentError/payload/non-Error -> err', async (t) => {
  const sides = await both(t)
  for (const key of ['abc', '', 'returned ok']) same(t, sides, 'hostNumber', [key], isNumber(t))
  t.is(sides.ours.api.hostNumber('abc'), 3)
  t.is(sides.ours.api.hostNumber('returned ok'), 41)
  sameError(t, sides, 'hostNumber', ['component error'], 'no such key')
  sameError(t, sides, 'hostNumber', ['thrown string'], 'a thrown string')
  sameError(t, sides, 'hostNumber', ['thrown payload'], 'from payload')
  sameError(t, sides, 'hostNumber', ['returned err'], 'returned err')
  for (const key of ['component error', 'thrown string', 'thrown payload', 'returned err', 'abcd'])
    same(t, sides, 'hostNumberOr', [key, 99], isNumber(t))
  t.is(sides.ours.api.hostNumberOr('component error', 99), 99)
  t.is(sides.ours.api.hostNumberOr('abcd', 99), 4)
})

test('imports: a plain Error thrown by a result-typed import fails the call with ERR_WASM_IMPORT, the Error as cause', async (t) => {
  const sides = await both(t)
  // jco lets the Error itself escape from the export call.
  const jcoError = t.throws(() => sides.jco.api.hostNumberOr('thrown Error', 96))
  t.is(jcoError.message, 'a host bug')
  const error = t.throws(() => sides.ours.api.hostNumberOr('thrown Error', 96))
  t.is(error.code, 'ERR_WASM_IMPORT')
  t.regex(error.message, /demo:types\/host@0\.1\.0#fetch-number/)
  t.true(error.cause instanceof Error)
  t.is(error.cause.message, 'a host bug')
  // A failing host function is a trap to wasmtime, so unlike jco the instance is spent afterwards
  // (jco's next call works); it says so with a coded error rather than running on.
  t.is(sides.jco.api.echoU8(1), 1)
  t.throws(() => sides.ours.api.echoU8(1), { code: 'ERR_WASM_INSTANCE_POISONED' })
})

test('imports: a value thrown by an import without a result type is the cause of ERR_WASM_IMPORT, whatever it is', (t) => {
  for (const thrown of [new TypeError('typed'), { an: 'object' }, 'a string', 42, null, undefined]) {
    const { imports } = host()
    imports['demo:types/logger@0.1.0'].log = () => {
      throw thrown
    }
    const instance = component.instantiate({ imports })
    const error = t.throws(() => instance.exports.api.callLogger('x'), { code: 'ERR_WASM_IMPORT' }, describe(thrown))
    t.regex(error.message, /demo:types\/logger@0\.1\.0#log/)
    t.true('cause' in error, `${describe(thrown)} is kept as the cause`)
    t.is(error.cause, thrown, describe(thrown))
  }
})

test('imports: a wrong value returned by an import is ERR_WASM_IMPORT naming the import', (t) => {
  const { imports } = host()
  const instance = component.instantiate({ imports: { ...imports, hostName: () => 42 } })
  const error = t.throws(() => instance.exports.helloHost(), { code: 'ERR_WASM_IMPORT' })
  t.regex(error.message, /host-name/)
  t.regex(error.message, /string/)
})

/** An instance and a check that it still answers after each rejected call. */
function strict(t) {
  const { api } = ours()
  return (fn, expected, parameter, name) => {
    const error = t.throws(() => api[fn.name ?? fn](...fn.args), {
      instanceOf: expected.instanceOf,
      code: expected.code,
    })
    if (!error) return
    t.true(error.message.includes(`demo:types/api@0.1.0#${name}`), `${error.message} names ${name}`)
    t.true(error.message.includes(`"${parameter}"`), `${error.message} names the parameter ${parameter}`)
    // Thrown before the guest ran: the instance is usable.
    t.is(api.echoU8(7), 7)
    t.is(api.echoString('still here'), 'still here')
  }
}

test('stricter than jco: integers out of range or not numbers, non-booleans, bad chars and strings', async (t) => {
  const jco = await theirs(t)
  // What jco does with the same inputs (it wraps and coerces), for the record.
  t.is(jco.api.echoU8(256), 0)
  t.is(jco.api.echoU32('7'), 7)
  t.is(jco.api.echoBool(1), true)
  const rejects = strict(t)
  const range = { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' }
  const type = { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' }
  const value = { instanceOf: TypeError, code: 'ERR_INVALID_ARG_VALUE' }
  rejects({ name: 'echoU8', args: [256] }, range, 'v', 'echo-u8')
  rejects({ name: 'echoU8', args: [-1] }, range, 'v', 'echo-u8')
  rejects({ name: 'echoS8', args: [128] }, range, 'v', 'echo-s8')
  rejects({ name: 'echoU16', args: [65536] }, range, 'v', 'echo-u16')
  rejects({ name: 'echoS32', args: [2 ** 31] }, range, 'v', 'echo-s32')
  rejects({ name: 'echoU32', args: [2 ** 32] }, range, 'v', 'echo-u32')
  rejects({ name: 'echoU32', args: [1.5] }, range, 'v', 'echo-u32')
  rejects({ name: 'echoU32', args: ['7'] }, type, 'v', 'echo-u32')
  rejects({ name: 'echoU32', args: [7n] }, type, 'v', 'echo-u32')
  rejects({ name: 'echoU32', args: [] }, type, 'v', 'echo-u32')
  rejects({ name: 'echoU64', args: [-1n] }, range, 'v', 'echo-u64')
  rejects({ name: 'echoU64', args: [2n ** 64n] }, range, 'v', 'echo-u64')
  rejects({ name: 'echoS64', args: [2n ** 63n] }, range, 'v', 'echo-s64')
  rejects({ name: 'echoBool', args: [1] }, type, 'v', 'echo-bool')
  rejects({ name: 'echoBool', args: ['true'] }, type, 'v', 'echo-bool')
  rejects({ name: 'echoBool', args: [undefined] }, type, 'v', 'echo-bool')
  rejects({ name: 'echoF64', args: ['1.5'] }, type, 'v', 'echo-f64')
  rejects({ name: 'echoString', args: [1] }, type, 'v', 'echo-string')
  rejects({ name: 'echoChar', args: ['ab'] }, value, 'v', 'echo-char')
  rejects({ name: 'echoChar', args: [''] }, value, 'v', 'echo-char')
  rejects({ name: 'echoListU8', args: [[1, 300]] }, range, 'v[1]', 'echo-list-u8')
  rejects({ name: 'echoListString', args: [['a', 2]] }, type, 'v[1]', 'echo-list-string')
})

test('stricter than jco: records, enums, variants, tuples, options and results of the wrong shape', async (t) => {
  const jco = await theirs(t)
  // jco takes a missing u32 field as 0.
  t.deepEqual(jco.api.echoPoint({ x: 1 }), { x: 1, y: 0 })
  const rejects = strict(t)
  const type = { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' }
  const value = { instanceOf: TypeError, code: 'ERR_INVALID_ARG_VALUE' }
  const missingField = t.throws(() => ours().api.echoPoint({ x: 1 }), { instanceOf: TypeError })
  t.regex(missingField.message, /"y"/)
  rejects({ name: 'echoPoint', args: [{ x: 1 }] }, type, 'v', 'echo-point')
  rejects({ name: 'echoPoint', args: [null] }, type, 'v', 'echo-point')
  rejects({ name: 'echoPoint', args: [{ x: 1, y: 'two' }] }, type, 'v.y', 'echo-point')
  rejects({ name: 'echoEnum', args: ['amberLight'] }, value, 'v', 'echo-enum')
  rejects({ name: 'echoEnum', args: ['purple'] }, value, 'v', 'echo-enum')
  rejects({ name: 'echoVariant', args: [{ tag: 'bogus' }] }, value, 'v', 'echo-variant')
  rejects({ name: 'echoVariant', args: [{ tag: 'circle', val: 'round' }] }, type, 'v.val', 'echo-variant')
  rejects({ name: 'echoTuple', args: [[1, 'x']] }, value, 'v', 'echo-tuple')
  rejects({ name: 'echoTuple', args: [[1, 'x', 1.5, 'extra']] }, value, 'v', 'echo-tuple')
  rejects({ name: 'echoOptionOptionU32', args: [3] }, type, 'v', 'echo-option-option-u32')
  rejects({ name: 'echoOptionString', args: [3] }, type, 'v', 'echo-option-string')
  rejects({ name: 'echoResult', args: [4] }, type, 'v', 'echo-result')
  // The enum's message lists the cases.
  const enumError = t.throws(() => ours().api.echoEnum('amberLight'))
  t.regex(enumError.message, /'amber-light'/)
  const variantError = t.throws(() => ours().api.echoVariant({ tag: 'bogus' }))
  t.regex(variantError.message, /'bogus'/)
})

test('a nested bad value names its path in the parameter', (t) => {
  const { api } = ours()
  const record = {
    firstName: 'Ann',
    ageInYears: 30,
    isActive: true,
    nestedThing: { labelText: 'home', thePoint: { x: 1, y: 2 ** 40 } },
    maybeScore: 2.5,
    tagList: ['a'],
  }
  const error = t.throws(() => api.echoRecord(record), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
  t.regex(error.message, /echo-record/)
  t.regex(error.message, /v/)
  t.is(api.echoRecord({ ...record, nestedThing: { labelText: 'h', thePoint: { x: 1, y: 2 } } }).firstName, 'Ann')
})

test('more parameters than pass flat (17 u32): in memory both ways, an export taking them and an import given them', (t) => {
  const seventeen = Component.fromFile(
    fileURLToPath(new URL('../examples/components/text/seventeen-params.wat', import.meta.url)),
  )
  let received
  const instance = seventeen.instantiate({
    imports: {
      sum17: (...args) => {
        received = args
        return args.reduce((sum, value) => sum + value, 0)
      },
    },
  })
  const args = Array.from({ length: 17 }, (_, index) => 100 + index)
  t.deepEqual(instance.exports.echo17(...args), [100, 116])
  t.is(instance.exports.callSum17(), 153)
  t.deepEqual(
    received,
    Array.from({ length: 17 }, (_, index) => index + 1),
  )
  t.throws(() => instance.exports.echo17(...args.slice(0, 16), -1), { instanceOf: RangeError, message: /p17/ })
})
