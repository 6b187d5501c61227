// The reference the Component specs compare against (helpers/jco.mjs): the Rust demo:types
// component run by `jco transpile` on V8. These tests pin what jco gives, so a change in jco's
// mapping shows here first.
import test from 'ava'
import { existsSync, readFileSync } from 'node:fs'

import { guestPath } from './helpers/guests.mjs'
import { jcoInstantiate } from './helpers/jco.mjs'
import { mirrorImports } from './helpers/mirror.mjs'

// Built from examples/components/ by scripts/build-guests.mjs (run by `npm test`).
const typesComponent = readFileSync(guestPath('build/types.rust.component.wasm'))

/** Host imports recording what the guest sends them. */
function hostImports() {
  const logged = []
  const imports = {
    'demo:types/logger@0.1.0': {
      log: (message) => logged.push(message),
      logPoint: (point) => logged.push(point),
    },
    // Without the version, as the addon also accepts.
    'demo:types/host': {
      Kv: class Kv {
        #entries = new Map()
        get(key) {
          return this.#entries.get(key)
        }
        set(key, value) {
          this.#entries.set(key, value)
        }
      },
      fetchNumber(key) {
        if (key === 'thrown string') throw 'no such key'
        if (key === 'thrown payload') throw Object.assign(new Error('ignored'), { payload: 'from payload' })
        if (key === 'returned err') return { tag: 'err', val: 'returned err' }
        if (key === 'thrown Error') throw new Error('a host bug')
        return key.length
      },
    },
    hostName: () => 'V8',
    'demo:types/mirror': mirrorImports(),
  }
  return { logged, imports }
}

async function instantiate(t) {
  const { logged, imports } = hostImports()
  const jco = await jcoInstantiate(typesComponent, imports)
  t.teardown(jco.close)
  return { ...jco, logged, api: jco.exports.api }
}

test('jco harness: the transpiled glue is loaded, its files removed, and its .d.ts kept', async (t) => {
  const { exports, directory, dts, close } = await instantiate(t)
  t.false(existsSync(directory))
  close()
  t.deepEqual(Object.keys(exports).sort(), [
    'api',
    'demo:types/api@0.1.0',
    'demo:types/limits@0.1.0',
    'hello',
    'helloHost',
    'limits',
  ])
  t.is(exports.api, exports['demo:types/api@0.1.0'])
  t.true('component.d.ts' in dts)
  t.regex(dts['interfaces/demo-types-api.d.ts'], /export function checkedDiv\(a: number, b: number\): number;/)
  t.regex(dts['component.d.ts'], /'host-name': \{\s*'default'\(\): string,/)
})

test('jco: scalars, strings and lists', async (t) => {
  const { api } = await instantiate(t)
  t.is(api.echoBool(true), true)
  t.is(api.echoS8(-128), -128)
  t.is(api.echoU8(255), 255)
  t.is(api.echoU16(65535), 65535)
  t.is(api.echoS32(-1), -1)
  t.is(api.echoU32(4294967295), 4294967295)
  t.is(api.echoS64(-(2n ** 63n)), -(2n ** 63n))
  t.is(api.echoU64(2n ** 64n - 1n), 2n ** 64n - 1n)
  t.is(api.echoF32(0.1), Math.fround(0.1))
  t.true(Object.is(api.echoF64(-0), -0))
  t.is(api.echoChar('😀'), '😀')
  t.is(api.echoString('héllo'), 'héllo')
  // jco wraps out-of-range integers (the addon throws a RangeError instead).
  t.is(api.echoU8(256), 0)
  t.is(api.echoU8(-1), 255)
  t.deepEqual(api.echoListU8(new Uint8Array([1, 2, 3])), new Uint8Array([1, 2, 3]))
  t.deepEqual(api.echoListS16(new Int16Array([-2, 3])), new Int16Array([-2, 3]))
  const u64 = api.echoListU64(new BigUint64Array([1n, 2n ** 64n - 1n]))
  t.true(u64 instanceof BigUint64Array)
  t.deepEqual([...u64], [1n, 2n ** 64n - 1n])
  // A plain array is accepted for a numeric list; the result is still the typed array.
  t.deepEqual(api.echoListU64([5n]), new BigUint64Array([5n]))
  t.deepEqual(api.echoListF64([0.5]), new Float64Array([0.5]))
  t.deepEqual(api.echoListString(['a', '']), ['a', ''])
  t.deepEqual(api.echoListRecord([{ x: 1, y: -2 }]), [{ x: 1, y: -2 }])
  t.deepEqual(api.echoTuple([255, 'x', 1.5]), [255, 'x', 1.5])
})

test('jco: records, variants, enums, flags', async (t) => {
  const { api } = await instantiate(t)
  const record = {
    firstName: 'Ann',
    ageInYears: 30,
    isActive: true,
    nestedThing: { labelText: 'home', thePoint: { x: 1, y: 2 } },
    maybeScore: 2.5,
    tagList: ['a', 'b'],
  }
  t.deepEqual(api.echoRecord(record), record)
  // An absent option field comes back as a key whose value is undefined.
  const noScore = api.echoRecord({ ...record, maybeScore: undefined })
  t.true('maybeScore' in noScore)
  t.is(noScore.maybeScore, undefined)

  const nothing = api.echoVariant({ tag: 'nothing' })
  t.deepEqual(nothing, { tag: 'nothing' })
  t.false('val' in nothing)
  t.deepEqual(api.echoVariant({ tag: 'circle', val: 2 }), { tag: 'circle', val: 2 })
  t.deepEqual(api.echoVariant({ tag: 'rectangle', val: { x: 3, y: 4 } }), { tag: 'rectangle', val: { x: 3, y: 4 } })
  t.throws(() => api.echoVariant({ tag: 'bogus' }), { instanceOf: TypeError })

  t.is(api.echoEnum('amber-light'), 'amber-light')
  t.throws(() => api.echoEnum('amberLight'), { instanceOf: TypeError })

  t.deepEqual(api.echoFlags({ canRead: true, isAdminUser: true }), {
    canRead: true,
    canWrite: false,
    canExecute: false,
    isAdminUser: true,
  })
  t.deepEqual(api.echoFlags({}), { canRead: false, canWrite: false, canExecute: false, isAdminUser: false })
})

test('jco: options, nested options and results', async (t) => {
  const { api } = await instantiate(t)
  t.is(api.echoOptionU32(undefined), undefined)
  t.is(api.echoOptionU32(null), undefined)
  t.is(api.echoOptionU32(0), 0)
  t.is(api.echoOptionString(''), '')
  // option<option<T>>: the outer option is { tag }, the inner one value-or-undefined.
  t.deepEqual(api.echoOptionOptionU32({ tag: 'none' }), { tag: 'none' })
  t.deepEqual(api.echoOptionOptionU32({ tag: 'some', val: undefined }), { tag: 'some', val: undefined })
  t.deepEqual(api.echoOptionOptionU32({ tag: 'some', val: 3 }), { tag: 'some', val: 3 })
  t.throws(() => api.echoOptionOptionU32(3), { instanceOf: TypeError })

  t.is(api.checkedDiv(7, 2), 3)
  const error = t.throws(() => api.checkedDiv(1, 0))
  t.is(error.constructor.name, 'ComponentError')
  t.true(error instanceof Error)
  t.is(error.name, 'Error')
  t.is(error.message, 'division by zero')
  t.is(error.payload, 'division by zero')
  t.is(api.echoResult({ tag: 'ok', val: 4 }), 4)
  t.is(t.throws(() => api.echoResult({ tag: 'err', val: 'bad' })).payload, 'bad')
  t.is(api.maybeFail(false, 'unused'), undefined)
  t.is(t.throws(() => api.echoResultUnit({ tag: 'err', val: 'E' })).payload, 'E')
  // Below the top, results are { tag, val }.
  t.deepEqual(
    api.echoListResult([
      { tag: 'ok', val: 1 },
      { tag: 'err', val: 'e' },
    ]),
    [
      { tag: 'ok', val: 1 },
      { tag: 'err', val: 'e' },
    ],
  )
})

test('jco: the counter resource', async (t) => {
  const { api } = await instantiate(t)
  const counter = new api.Counter(5)
  counter.increment(2)
  t.is(counter.get(), 7)
  const merged = api.Counter.merge(counter, counter)
  t.true(merged instanceof api.Counter)
  t.is(merged.get(), 14)
  merged[Symbol.dispose]()
  t.throws(() => merged.get(), { instanceOf: TypeError, message: /Not a valid "Counter" resource/ })
  // Handing an owned handle to the guest moves it there: the JS object is spent.
  api.stash(counter)
  api.stash(new api.Counter(3))
  t.is(api.stashedTotal(), 10)
  t.throws(() => counter.get(), { instanceOf: TypeError })
})

test('jco: imports — logger, world function, imported resource, results from JS', async (t) => {
  const { api, exports, logged } = await instantiate(t)
  api.callLogger('hi')
  api.callLogPoint({ x: 1, y: 2 })
  t.deepEqual(logged, ['hi', { x: 1, y: 2 }])
  t.is(exports.hello('you'), 'Hello, you!')
  t.is(exports.helloHost(), 'Hello, V8!')
  t.is(api.kvRoundtrip('k', 'v'), 'v')
  // A plain return is ok; a thrown non-Error value, a thrown value with an own `payload`, or a
  // returned { tag: 'err', val } is err; a thrown Error without `payload` propagates.
  t.is(api.hostNumber('abc'), 3)
  t.is(t.throws(() => api.hostNumber('thrown string')).payload, 'no such key')
  t.is(api.hostNumberOr('thrown string', 99), 99)
  t.is(api.hostNumberOr('thrown payload', 98), 98)
  t.is(api.hostNumberOr('returned err', 97), 97)
  t.throws(() => api.hostNumberOr('thrown Error', 96), { message: 'a host bug' })
})
