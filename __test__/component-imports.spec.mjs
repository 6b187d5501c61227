// Every WIT type of the demo:types component crossing the *import* boundary, both ways, against
// `jco transpile` on V8 (helpers/jco.mjs). The guest's `through-<type>(v)` export calls the host's
// `mirror-<type>(v)` import and returns what the import returned (examples/components/wit/types.wit),
// so each value goes export argument -> guest -> import argument (lifted to JS) -> import result
// (lowered from JS) -> guest -> export result. For each type:
//   (a) what the JS import receives is deep-equal to what jco's import receives (the same JS shapes:
//       typed arrays, bigints, { tag, val }, camelCase keys, `undefined` for none...);
//   (b) the export's final result is deep-equal to jco's;
//   (c) an import returning a value that does not fit its WIT type fails the call with
//       ERR_WASM_IMPORT, naming the import and saying what was wrong (jco wraps or coerces many of
//       them; what it does is pinned beside, for the record).
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

import test from 'ava'

import { Component, ComponentError } from 'wasm-memory-sandbox'

import { guestPath } from './helpers/guests.mjs'
import { jcoInstantiate } from './helpers/jco.mjs'
import { mirrorJsName, mirrorTypes } from './helpers/mirror.mjs'

const typesBytes = readFileSync(guestPath('build/types.rust.component.wasm'))
const component = new Component(typesBytes)

const MIRROR = 'demo:types/mirror@0.1.0'
const pascalCase = (kebab) => kebab.replace(/(^|-)([a-z0-9])/g, (_, __, c) => c.toUpperCase())

/** The types the api's echo-* functions cover, as the suffix of `mirror-<type>` and `through-<type>`. */
const TYPES = mirrorTypes

const identity = (value) => value

/**
 * The host side of the world, the same object shape for the addon and for jco. The mirror imports
 * record each call (the import's name and every argument it got) and answer `state.reply(value)`.
 */
function host() {
  const state = { received: [], reply: identity }
  const mirror = {}
  for (const type of TYPES) {
    const jsName = mirrorJsName(type)
    mirror[jsName] = (...args) => {
      state.received.push({ name: jsName, args })
      return state.reply(...args)
    }
  }
  const imports = {
    'demo:types/logger': { log() {}, logPoint() {} },
    'demo:types/host': { Kv: class {}, fetchNumber: () => 0 },
    hostName: () => 'host',
    'demo:types/mirror': mirror,
  }
  return { state, imports }
}

function ours() {
  const { state, imports } = host()
  const instance = component.instantiate({ imports })
  // The instance is kept with its exports: see the last test for why it has to be.
  return { state, instance, api: instance.exports.api }
}

async function theirs(t) {
  const { state, imports } = host()
  const jco = await jcoInstantiate(typesBytes, imports)
  t.teardown(jco.close)
  return { state, api: jco.exports.api }
}

async function both(t) {
  return { ours: ours(), jco: await theirs(t) }
}

/** What a call gives: its value, or what it threw. */
function outcome(fn) {
  try {
    return { value: fn() }
  } catch (error) {
    return { threw: error }
  }
}

function describe(value) {
  if (typeof value === 'bigint') return `${value}n`
  if (value instanceof DataView)
    return `DataView(${describe(new Uint8Array(value.buffer, value.byteOffset, value.byteLength))})`
  if (ArrayBuffer.isView(value)) return `${value.constructor.name}[${Array.from(value, describe).join(', ')}]`
  if (typeof value === 'string') return JSON.stringify(value.length > 20 ? `${value.slice(0, 20)}…` : value)
  if (typeof value === 'function') return value.label ?? `(${value})`
  if (Object.is(value, -0)) return '-0'
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value)
  try {
    return (
      JSON.stringify(value, (_, inner) =>
        typeof inner === 'bigint' ? `${inner}n` : inner === undefined ? '<undefined>' : inner,
      ) ?? String(value)
    )
  } catch {
    return String(value)
  }
}

/** A reply: a constant, labelled by its value for the messages. */
const answer = (value) => Object.assign(() => value, { label: `=> ${describe(value)}` })

/**
 * Calls `through-<type>(input)` on both sides, their mirror import answering `reply(received)`
 * (by default what it received). Checks (a) the import's arguments and (b) the results.
 */
function through(t, sides, type, input, reply = identity) {
  const fn = `through${pascalCase(type)}`
  const label = `${fn}(${describe(input)})${reply === identity ? '' : ` with mirror ${describe(reply)}`}`
  const run = (side) => {
    side.state.received = []
    side.state.reply = reply
    const result = outcome(() => side.api[fn](input))
    return { ...result, received: side.state.received }
  }
  const a = run(sides.ours)
  const b = run(sides.jco)

  // (a) The import was called once, with one argument, and it got the same JS value as jco's.
  t.deepEqual(
    a.received.map((call) => call.name),
    [`mirror${pascalCase(type)}`],
    `${label}: the addon's import calls`,
  )
  t.deepEqual(
    b.received.map((call) => call.name),
    [`mirror${pascalCase(type)}`],
    `${label}: jco's import calls`,
  )
  t.deepEqual(
    a.received.map((call) => call.args),
    b.received.map((call) => call.args),
    `${label}: what the import received`,
  )

  // (b) The export's result (or, for a top-level result's err, the ComponentError) is jco's.
  if (a.threw && !(a.threw instanceof ComponentError)) t.fail(`${label}: the addon threw ${a.threw?.stack ?? a.threw}`)
  if (b.threw && b.threw.constructor.name !== 'ComponentError')
    t.fail(`${label}: jco threw ${b.threw?.stack ?? b.threw}`)
  if (a.threw || b.threw) {
    t.truthy(a.threw, `${label}: the addon returned ${describe(a.value)}, jco threw ${b.threw?.message}`)
    t.truthy(b.threw, `${label}: jco returned ${describe(b.value)}, the addon threw ${a.threw?.message}`)
    if (a.threw && b.threw) {
      t.deepEqual(a.threw.payload, b.threw.payload, `${label}: the ComponentError's payload`)
      t.is(a.threw.message, b.threw.message, `${label}: the ComponentError's message`)
    }
  } else {
    t.deepEqual(a.value, b.value, `${label}: the result`)
  }
  return { value: a.value, threw: a.threw, received: a.received[0]?.args[0] }
}

/** Cases: for each type, export arguments sent through the identity mirror. */
const RECORD = {
  firstName: 'Ann',
  ageInYears: 30,
  isActive: true,
  nestedThing: { labelText: 'home', thePoint: { x: 1, y: -2 } },
  maybeScore: 2.5,
  tagList: ['a', 'b'],
}
const INPUTS = {
  bool: [true, false],
  s8: [-128, -1, 0, 127],
  u8: [0, 1, 255],
  s16: [-32768, -1, 32767],
  u16: [0, 65535],
  s32: [-(2 ** 31), -1, 2 ** 31 - 1],
  u32: [0, 2 ** 31, 2 ** 32 - 1],
  s64: [-(2n ** 63n), -1n, 0n, 2n ** 63n - 1n],
  u64: [0n, 2n ** 53n + 1n, 2n ** 64n - 1n],
  f32: [0.5, 0.1, -0, NaN, Infinity, -Infinity, 3.4028234663852886e38, 1e-45],
  f64: [Math.PI, -0, NaN, Number.MAX_VALUE, Number.MIN_VALUE, -Infinity],
  char: ['a', 'é', '😀', '\u{10ffff}', '\0'],
  string: ['héllo', '', '😀 and \u0000 and 中文', 'x'.repeat(100_000)],
  'list-u8': [new Uint8Array([0, 1, 255]), new Uint8Array(0), new Uint8Array(100_000).fill(7)],
  'list-s8': [new Int8Array([-128, 0, 127]), new Int8Array(0)],
  'list-u16': [new Uint16Array([0, 258, 65535]), new Uint16Array(0)],
  'list-s16': [new Int16Array([-32768, -2, 3, 32767]), new Int16Array(0)],
  'list-u32': [new Uint32Array([0, 1, 2 ** 32 - 1]), new Uint32Array(0)],
  'list-s32': [new Int32Array([-(2 ** 31), -1, 2 ** 31 - 1]), new Int32Array(0)],
  'list-u64': [new BigUint64Array([0n, 1n, 2n ** 64n - 1n]), new BigUint64Array(0)],
  'list-s64': [new BigInt64Array([-(2n ** 63n), -1n, 2n ** 63n - 1n]), new BigInt64Array(0)],
  'list-f32': [new Float32Array([0.5, -0, NaN, Infinity]), new Float32Array(0)],
  'list-f64': [new Float64Array([Math.PI, -0, NaN, -Infinity]), new Float64Array(0)],
  'list-string': [['a', '', 'héllo', '😀'], []],
  'list-record': [
    [
      { x: 1, y: -2 },
      { x: -(2 ** 31), y: 2 ** 31 - 1 },
    ],
    [],
  ],
  tuple: [
    [255, 'x', 1.5],
    [0, '', -0],
  ],
  point: [
    { x: 3, y: -4 },
    { x: 0, y: 0 },
  ],
  record: [RECORD, { ...RECORD, maybeScore: undefined, tagList: [], isActive: false }, { ...RECORD, maybeScore: 0 }],
  variant: [
    { tag: 'nothing' },
    { tag: 'circle', val: 2.5 },
    { tag: 'rectangle', val: { x: 3, y: 4 } },
    { tag: 'labelled', val: 'a label' },
    { tag: 'labelled', val: '' },
  ],
  enum: ['red-light', 'amber-light', 'green-light'],
  flags: [
    {},
    { canRead: true },
    { canWrite: true, isAdminUser: true },
    { canRead: true, canWrite: true, canExecute: true, isAdminUser: true },
  ],
  'option-u32': [undefined, 0, 7, 2 ** 32 - 1],
  'option-option-u32': [
    { tag: 'none' },
    { tag: 'some', val: undefined },
    { tag: 'some', val: 0 },
    { tag: 'some', val: 3 },
  ],
  'option-string': [undefined, '', 's'],
  result: [
    { tag: 'ok', val: 4 },
    { tag: 'ok', val: 0 },
    { tag: 'err', val: 'bad' },
    { tag: 'err', val: '' },
  ],
  'result-unit': [{ tag: 'ok' }, { tag: 'err', val: 'E' }],
  'list-result': [
    [
      { tag: 'ok', val: 1 },
      { tag: 'err', val: 'e' },
      { tag: 'ok', val: 0 },
    ],
    [],
  ],
}

/** The echo-<type> export of the same type, whose result the import's argument is lifted like. */
const ECHO = (type) => `echo${pascalCase(type)}`

function identityCases(t, sides, types) {
  for (const type of types) {
    for (const input of INPUTS[type]) {
      const { value, received } = through(t, sides, type, input)
      if (!type.startsWith('result')) {
        // The import's argument is lifted as an export's result is: what echo-<type> returns.
        const echoed = sides.ours.api[ECHO(type)](input)
        t.deepEqual(received, echoed, `through${pascalCase(type)}(${describe(input)}): the import's argument`)
        t.deepEqual(value, echoed, `through${pascalCase(type)}(${describe(input)}): the result`)
      }
    }
  }
}

test('the mirror import and the through export cover every type the echo functions cover', (t) => {
  const echoes = component.exports['demo:types/api@0.1.0'].functions
    .map((fn) => fn.name)
    .filter((name) => name.startsWith('echo-'))
    .map((name) => name.slice('echo-'.length))
  t.deepEqual([...echoes].sort(), [...TYPES].sort())
  t.deepEqual(Object.keys(INPUTS).sort(), [...TYPES].sort())
  const mirror = component.imports[MIRROR]
  t.like(mirror, { kind: 'interface', name: MIRROR, jsName: 'mirror' })
  const api = component.exports['demo:types/api@0.1.0']
  for (const type of TYPES) {
    const echo = api.functions.find((fn) => fn.name === `echo-${type}`)
    const imported = mirror.functions.find((fn) => fn.name === `mirror-${type}`)
    const exported = api.functions.find((fn) => fn.name === `through-${type}`)
    t.truthy(imported, `mirror-${type}`)
    t.truthy(exported, `through-${type}`)
    if (!imported || !exported) continue
    t.is(imported.jsName, `mirror${pascalCase(type)}`)
    // The same WIT types as echo-<type>, in the import and in the export.
    t.deepEqual(imported.params, echo.params, `mirror-${type}`)
    t.deepEqual(imported.result, echo.result, `mirror-${type}`)
    t.deepEqual(exported.params, echo.params, `through-${type}`)
    t.deepEqual(exported.result, echo.result, `through-${type}`)
  }
})

test('imports: bool, integers, s64/u64 as bigint, floats, char and string reach the import and come back as with jco', async (t) => {
  const sides = await both(t)
  identityCases(t, sides, [
    'bool',
    's8',
    'u8',
    's16',
    'u16',
    's32',
    'u32',
    's64',
    'u64',
    'f32',
    'f64',
    'char',
    'string',
  ])
  // The import gets a bigint for s64/u64, f32 already rounded, -0 and NaN kept.
  t.is(through(t, sides, 'u64', 2n ** 64n - 1n).received, 2n ** 64n - 1n)
  t.is(through(t, sides, 's8', -1).received, -1)
  t.is(through(t, sides, 'f32', 0.1).received, Math.fround(0.1))
  t.true(Object.is(through(t, sides, 'f64', -0).received, -0))
  t.true(Number.isNaN(through(t, sides, 'f32', NaN).received))
  t.is(through(t, sides, 'char', '😀').received, '😀')
})

test('imports: numeric lists arrive as their typed arrays (fresh copies); list<string> and list<record> as arrays', async (t) => {
  const sides = await both(t)
  identityCases(t, sides, [
    'list-u8',
    'list-s8',
    'list-u16',
    'list-s16',
    'list-u32',
    'list-s32',
    'list-u64',
    'list-s64',
    'list-f32',
    'list-f64',
    'list-string',
    'list-record',
  ])
  const classes = {
    'list-u8': Uint8Array,
    'list-s8': Int8Array,
    'list-u16': Uint16Array,
    'list-s16': Int16Array,
    'list-u32': Uint32Array,
    'list-s32': Int32Array,
    'list-u64': BigUint64Array,
    'list-s64': BigInt64Array,
    'list-f32': Float32Array,
    'list-f64': Float64Array,
  }
  for (const [type, Class] of Object.entries(classes)) {
    const input = INPUTS[type][0]
    const { received, value } = through(t, sides, type, input)
    t.is(received.constructor, Class, type)
    t.is(value.constructor, Class, type)
    t.not(received, input)
    // The import's array is its own: the guest's memory moving on does not change it.
    t.deepEqual(received, input.constructor.from(input))
  }
  const points = through(t, sides, 'list-record', INPUTS['list-record'][0]).received
  t.true(Array.isArray(points))
  t.is(Object.getPrototypeOf(points[0]), Object.prototype)
})

test('imports: tuple, records (camelCase keys, a none option field present as undefined), variant, enum, flags', async (t) => {
  const sides = await both(t)
  identityCases(t, sides, ['tuple', 'point', 'record', 'variant', 'enum', 'flags'])
  const tuple = through(t, sides, 'tuple', [255, 'x', 1.5]).received
  t.deepEqual(tuple, [255, 'x', 1.5])
  const record = through(t, sides, 'record', { ...RECORD, maybeScore: undefined }).received
  t.deepEqual(Object.keys(record), ['firstName', 'ageInYears', 'isActive', 'nestedThing', 'maybeScore', 'tagList'])
  t.true('maybeScore' in record)
  t.deepEqual(Object.keys(record.nestedThing), ['labelText', 'thePoint'])
  t.is(Object.getPrototypeOf(record), Object.prototype)
  // A case without payload has no val key, in the import's argument and in the result.
  const nothing = through(t, sides, 'variant', { tag: 'nothing' })
  t.false('val' in nothing.received)
  t.false('val' in nothing.value)
  t.deepEqual(through(t, sides, 'variant', { tag: 'circle', val: 2 }).received, { tag: 'circle', val: 2 })
  t.is(through(t, sides, 'enum', 'amber-light').received, 'amber-light')
  const flags = through(t, sides, 'flags', { canWrite: true }).received
  t.deepEqual(flags, { canRead: false, canWrite: true, canExecute: false, isAdminUser: false })
})

test('imports: option<u32>, option<option<u32>>, option<string>, result<u32, string>, result<_, string> and list<result> as values', async (t) => {
  const sides = await both(t)
  identityCases(t, sides, ['option-u32', 'option-option-u32', 'option-string', 'result', 'result-unit', 'list-result'])
  t.is(through(t, sides, 'option-u32', undefined).received, undefined)
  t.is(through(t, sides, 'option-string', '').received, '')
  t.deepEqual(through(t, sides, 'option-option-u32', { tag: 'none' }).received, { tag: 'none' })
  t.deepEqual(through(t, sides, 'option-option-u32', { tag: 'some', val: undefined }).received, {
    tag: 'some',
    val: undefined,
  })
  // A result crosses into the import as { tag, val }: the import returning it gives it back; at the
  // top of the export, ok is the value and err a thrown ComponentError.
  const ok = through(t, sides, 'result', { tag: 'ok', val: 4 })
  t.deepEqual(ok.received, { tag: 'ok', val: 4 })
  t.is(ok.value, 4)
  const err = through(t, sides, 'result', { tag: 'err', val: 'bad' })
  t.deepEqual(err.received, { tag: 'err', val: 'bad' })
  t.true(err.threw instanceof ComponentError)
  t.is(err.threw?.payload, 'bad')
  const unit = through(t, sides, 'result-unit', { tag: 'ok' })
  t.is(unit.value, undefined)
  t.is(unit.received.tag, 'ok')
  t.is(through(t, sides, 'result-unit', { tag: 'err', val: 'E' }).threw?.payload, 'E')
  t.deepEqual(through(t, sides, 'list-result', [{ tag: 'err', val: 'e' }]).received, [{ tag: 'err', val: 'e' }])
})

test('imports: results of other JS shapes (plain arrays, Buffers, views, null for none, extra keys) are taken as jco takes them', async (t) => {
  const sides = await both(t)
  const replies = [
    ['bool', true, answer(false)],
    ['u8', 255, answer(0)],
    ['s8', 1, answer(-128)],
    ['u32', 1, answer(2 ** 32 - 1)],
    ['s64', 1n, answer(-(2n ** 63n))],
    ['u64', 1n, answer(2n ** 64n - 1n)],
    // An integral number for a 64-bit integer: BigInt(5) for both.
    ['u64', 1n, answer(5)],
    ['s64', 1n, answer(-5)],
    // f32 rounds what the import returns.
    ['f32', 1, answer(0.1)],
    ['f32', 1, answer(-0)],
    ['f64', 1, answer(NaN)],
    ['char', 'a', answer('😀')],
    ['string', 'a', answer('')],
    ['string', 'a', answer('😀 中文')],
    // A lone surrogate is not a Unicode scalar value: U+FFFD, as TextEncoder gives.
    ['string', 'a', answer('a\ud800b')],
    ['list-u8', new Uint8Array([1]), answer([1, 2, 255])],
    ['list-u8', new Uint8Array([1]), answer(Buffer.from('bytes'))],
    ['list-u8', new Uint8Array([1]), answer(new Uint8Array([9, 8, 7, 6, 5]).subarray(1, 4))],
    ['list-u8', new Uint8Array([1]), answer([])],
    ['list-s8', new Int8Array([1]), answer([-128, 127])],
    ['list-u16', new Uint16Array([1]), answer([0, 65535])],
    ['list-s16', new Int16Array([1]), answer([-32768, 32767])],
    ['list-u32', new Uint32Array([1]), answer([2 ** 32 - 1])],
    ['list-s32', new Int32Array([1]), answer([-(2 ** 31)])],
    ['list-u64', new BigUint64Array([1n]), answer([2n ** 64n - 1n, 0n])],
    ['list-s64', new BigInt64Array([1n]), answer([-(2n ** 63n)])],
    ['list-f32', new Float32Array([1]), answer([0.1, -0, NaN])],
    ['list-f64', new Float64Array([1]), answer([0.1, -0, NaN])],
    ['list-u32', new Uint32Array([1]), answer(new Uint32Array([5, 6]))],
    ['list-string', ['a'], answer(['z', ''])],
    ['list-record', [{ x: 1, y: 1 }], answer([{ x: 5, y: 6, z: 7 }])],
    ['tuple', [1, 'a', 1], answer([2, 'b', -0])],
    ['point', { x: 1, y: 1 }, answer({ x: 5, y: -6, extra: true })],
    ['record', RECORD, answer({ ...RECORD, maybeScore: null })],
    ['record', RECORD, (({ maybeScore, ...rest }) => answer(rest))(RECORD)],
    ['record', RECORD, answer({ ...RECORD, firstName: '', nestedThing: { labelText: 'x', thePoint: { x: 9, y: 9 } } })],
    ['variant', { tag: 'circle', val: 1 }, answer({ tag: 'nothing', val: 5 })],
    ['variant', { tag: 'nothing' }, answer({ tag: 'rectangle', val: { x: 1, y: 2 } })],
    ['variant', { tag: 'nothing' }, answer({ tag: 'labelled', val: 'l' })],
    ['enum', 'red-light', answer('green-light')],
    ['flags', { canRead: true }, answer({})],
    ['flags', { canRead: true }, answer({ canExecute: true, 'can-write': true })],
    ['flags', { canRead: true }, answer({ canRead: 1, isAdminUser: 'yes' })],
    ['option-u32', 1, answer(null)],
    ['option-u32', 1, answer(undefined)],
    ['option-u32', undefined, answer(0)],
    ['option-option-u32', { tag: 'none' }, answer({ tag: 'some', val: null })],
    ['option-option-u32', { tag: 'none' }, answer({ tag: 'some', val: 8 })],
    ['option-option-u32', { tag: 'some', val: 1 }, answer({ tag: 'none' })],
    ['option-string', 's', answer(null)],
    ['option-string', undefined, answer('')],
    ['result', { tag: 'ok', val: 1 }, answer({ tag: 'ok', val: 2 ** 32 - 1 })],
    ['result', { tag: 'ok', val: 1 }, answer({ tag: 'err', val: 'from the import' })],
    ['result', { tag: 'err', val: 'x' }, answer({ tag: 'ok', val: 0 })],
    ['result-unit', { tag: 'err', val: 'x' }, answer({ tag: 'ok' })],
    ['result-unit', { tag: 'ok' }, answer({ tag: 'ok', val: undefined })],
    ['result-unit', { tag: 'ok' }, answer({ tag: 'err', val: '' })],
    [
      'list-result',
      [],
      answer([
        { tag: 'ok', val: 7 },
        { tag: 'err', val: '' },
      ]),
    ],
    ['list-result', [{ tag: 'ok', val: 1 }], answer([])],
  ]
  for (const [type, input, reply] of replies) through(t, sides, type, input, reply)
  t.is(through(t, sides, 'f32', 1, answer(0.1)).value, Math.fround(0.1))
  t.is(through(t, sides, 'u64', 1n, answer(5)).value, 5n)
  t.is(through(t, sides, 'string', 'a', answer('a\ud800b')).value, 'a\ufffdb')
  t.deepEqual(through(t, sides, 'list-u8', new Uint8Array([1]), answer([1, 2, 255])).value, new Uint8Array([1, 2, 255]))
  t.is(through(t, sides, 'option-u32', 1, answer(null)).value, undefined)
})

/**
 * (c) Import results that do not fit their WIT type. Each: the type, the export argument, what the
 * import returns, what the addon's message must say was wrong, and what jco does with it.
 */
const WRONG = [
  ['u8', 1, 256, /out of range.*0 to 255.*256/, { value: 0 }],
  ['u8', 1, -1, /out of range.*0 to 255.*-1/, { value: 255 }],
  ['u8', 1, 1.5, /out of range.*integer from 0 to 255.*1\.5/, { value: 1 }],
  ['u8', 1, '7', /must be of type number/, { value: 7 }],
  ['s8', 1, 128, /out of range.*-128 to 127/, { value: -128 }],
  ['u16', 1, 65536, /out of range.*0 to 65535/, { value: 0 }],
  ['s32', 1, 2 ** 31, /out of range/, { value: -(2 ** 31) }],
  ['u32', 1, 2 ** 32, /out of range/, { value: 0 }],
  ['u32', 1, 5n, /must be of type number/, { threw: TypeError }],
  ['u64', 1n, -1n, /out of range/, { value: 2n ** 64n - 1n }],
  ['s64', 1n, 2n ** 63n, /out of range/, { value: -(2n ** 63n) }],
  ['s64', 1n, 1.5, /out of range.*bigint.*\(s64\).*1\.5/, { threw: RangeError }],
  ['bool', true, 'true', /must be of type boolean/, { value: true }],
  ['bool', true, 1, /must be of type boolean/, { value: true }],
  ['bool', true, undefined, /must be of type boolean/, { value: false }],
  ['f64', 1, '1.5', /must be of type number/, { value: 1.5 }],
  ['f32', 1, null, /must be of type number/, { value: 0 }],
  ['char', 'a', 'ab', /one Unicode code point/, { value: 'a' }],
  ['char', 'a', '', /one Unicode code point/, { value: '\0' }],
  ['char', 'a', 97, /must be a string of one character \(char\)/, { threw: TypeError }],
  ['string', 'a', 42, /must be of type string/, { threw: TypeError }],
  ['string', 'a', undefined, /must be of type string/, { threw: TypeError }],
  ['list-u8', new Uint8Array([1]), [1, 300], /result\[1\].*out of range.*300/, { threw: TypeError }],
  ['list-u8', new Uint8Array([1]), 'bytes', /must be a Uint8Array or an array/, { value: new Uint8Array(0) }],
  ['list-u64', new BigUint64Array([1n]), [1.5], /result\[0\].*out of range.*\(u64\)/, { threw: TypeError }],
  ['list-string', ['a'], ['a', 2], /result\[1\].*string/, { threw: TypeError }],
  ['list-record', [], [{ x: 1 }], /result\[0\].*"y"/, { value: [{ x: 1, y: 0 }] }],
  ['tuple', [1, 'a', 1], [1, 'x'], /array of 3 elements \(a WIT tuple\)\. Received 2/, { value: [1, 'x', NaN] }],
  ['point', { x: 1, y: 1 }, { x: 1 }, /missing the record field "y"/, { value: { x: 1, y: 0 } }],
  ['point', { x: 1, y: 1 }, { x: 1, y: 'two' }, /result\.y.*must be of type number/, { value: { x: 1, y: 0 } }],
  ['point', { x: 1, y: 1 }, null, /must be an object \(a WIT record\)\. Received null/, { threw: TypeError }],
  ['record', RECORD, { ...RECORD, firstName: undefined }, /missing the record field "firstName"/, { threw: TypeError }],
  ['variant', { tag: 'nothing' }, { tag: 'bogus' }, /'bogus'/, { threw: TypeError }],
  [
    'variant',
    { tag: 'nothing' },
    { tag: 'circle', val: 'round' },
    /result\.val.*must be of type number/,
    { value: { tag: 'circle', val: NaN } },
  ],
  ['enum', 'red-light', 'purple', /unknown enum case 'purple'.*'amber-light'/, { threw: TypeError }],
  ['enum', 'red-light', 'amberLight', /'amberLight'/, { threw: TypeError }],
  ['flags', {}, 'all', /must be an object of booleans \(WIT flags\)/, { threw: TypeError }],
  ['option-string', 's', 3, /must be of type string/, { threw: TypeError }],
  ['option-option-u32', { tag: 'none' }, 3, /\{ tag: 'none' \| 'some', val \}/, { threw: TypeError }],
  ['result', { tag: 'ok', val: 1 }, { tag: 'ok', val: 'four' }, /result\.val.*u32/, { value: 0 }],
  ['result', { tag: 'ok', val: 1 }, { tag: 'err', val: 4 }, /result\.val.*string/, { threw: TypeError }],
  ['list-result', [], [{ tag: 'maybe', val: 1 }], /result\[0\].*'maybe'.*'ok' or 'err'/, { threw: TypeError }],
]

test('imports: a result that does not fit its WIT type fails the call with ERR_WASM_IMPORT naming the import and the fault', (t) => {
  const rows = []
  for (const [type, input, wrong, fault] of WRONG) {
    const side = ours()
    side.state.reply = () => wrong
    const fn = `through${pascalCase(type)}`
    const label = `${fn}(${describe(input)}) with mirror => ${describe(wrong)}`
    const got = outcome(() => side.api[fn](input))
    const message = got.threw?.message ?? ''
    rows.push({
      label,
      code: got.threw ? got.threw.code : `returned ${describe(got.value)}`,
      namesTheImport: message.includes(`the import \`${MIRROR}#mirror-${type}\``),
      saysWhatWasWrong: fault.test(message) || message,
      // The guest made the call and the import answered: the instance is spent, and says so.
      importCalled: side.state.received.length,
      afterwards: outcome(() => side.api.echoU8(1)).threw?.code,
    })
  }
  t.deepEqual(
    rows,
    rows.map(({ label }) => ({
      label,
      code: 'ERR_WASM_IMPORT',
      namesTheImport: true,
      saysWhatWasWrong: true,
      importCalled: 1,
      afterwards: 'ERR_WASM_INSTANCE_POISONED',
    })),
  )
})

test('imports: what jco does with the same wrong results (it wraps and coerces many), for the record', async (t) => {
  const jco = await theirs(t)
  const rows = []
  for (const [type, input, wrong, , expected] of WRONG) {
    jco.state.reply = () => wrong
    const fn = `through${pascalCase(type)}`
    const label = `${fn}(${describe(input)}) with mirror => ${describe(wrong)}`
    const got = outcome(() => jco.api[fn](input))
    rows.push({ label, ...(got.threw ? { threw: got.threw.constructor } : { value: got.value }) })
  }
  t.deepEqual(
    rows,
    WRONG.map(([, , , , expected], index) => ({ label: rows[index].label, ...expected })),
  )
  // jco's instance stays usable after its TypeErrors.
  jco.state.reply = identity
  t.is(jco.api.throughU8(3), 3)
})

/**
 * Where the addon and jco take the same import result differently, by design (README, Components):
 * the addon takes a list<u8> as a Uint8Array (or an array of bytes), never the bytes of another
 * view, and integral numbers in a list<u64>/list<s64> as it does for a u64 alone. Both pinned.
 */
test('imports: list results the addon and jco take differently (byte views for list<u8>, numbers in list<u64>)', async (t) => {
  const jco = await theirs(t)
  const cases = [
    // jco copies the raw bytes of any ArrayBufferView for a list<u8>; the addon takes only Uint8Array (and arrays).
    ['list-u8', new Uint8Array([1]), new DataView(new Uint8Array([1, 2, 3]).buffer)],
    ['list-u8', new Uint8Array([1]), new Uint16Array([258])],
    // jco takes only bigints in a list<u64>/list<s64> (TypeError `invalid u64 value [1]`); the addon
    // takes integral numbers too, as both do for a u64 alone.
    ['list-u64', new BigUint64Array([1n]), [1, 2]],
    ['list-s64', new BigInt64Array([1n]), [-1]],
  ]
  const what = (side, type, input, reply) => {
    side.state.reply = () => reply
    const got = outcome(() => side.api[`through${pascalCase(type)}`](input))
    return got.threw ? `throws ${got.threw.constructor.name}: ${got.threw.message}` : got.value
  }
  const label = ([type, , reply]) => `mirror-${type} => ${describe(reply)}`
  const addon = cases.map((row) => ({ case: label(row), gives: what(ours(), ...row) }))
  const reference = cases.map((row) => ({ case: label(row), gives: what(jco, ...row) }))
  // Pinned: what jco gives.
  t.deepEqual(
    reference.map((row) => row.gives),
    [
      new Uint8Array([1, 2, 3]),
      new Uint8Array([2, 1]),
      'throws TypeError: invalid u64 value [1]',
      'throws TypeError: invalid s64 value [-1]',
    ],
  )
  const notBytes =
    'throws Error: the import `demo:types/mirror@0.1.0#mirror-list-u8` failed: the value returned for "result" must be a Uint8Array or an array (a WIT list). Received type object'
  t.deepEqual(
    addon.map((row) => row.gives),
    [notBytes, notBytes, new BigUint64Array([1n, 2n]), new BigInt64Array([-1n])],
  )
})

/** A child process (node --expose-gc) that keeps only `instance.exports` of an instance, collects, then calls. */
const EXPORTS_ONLY = `
import { readFileSync } from 'node:fs'
import { setImmediate as nextTurn } from 'node:timers/promises'
import { Component } from 'wasm-memory-sandbox'
const component = new Component(readFileSync(process.argv[1]))
function exportsOnly() {
  const mirror = {}
  for (const fn of component.imports['${MIRROR}'].functions) mirror[fn.jsName] = (v) => v
  const imports = {
    'demo:types/logger': { log() {}, logPoint() {} },
    'demo:types/host': { Kv: class {}, fetchNumber: () => 0 },
    hostName: () => 'gc',
    'demo:types/mirror': mirror,
  }
  return component.instantiate({ imports }).exports
}
const { api } = exportsOnly()
for (let round = 0; round < 5; round++) {
  globalThis.gc()
  await nextTurn()
}
const result = {}
for (const [name, call] of [['throughU8', () => api.throughU8(7)], ['throughString', () => api.throughString('s')]]) {
  try {
    result[name] = call()
  } catch (error) {
    result[name] = error.code + ': ' + error.message
  }
}
console.log(JSON.stringify(result))
`

test('imports: the JS import functions live as long as instance.exports does (the instance object itself not kept)', (t) => {
  // jco's instantiate() gives only the exports, and they keep what they call; `const { api } =
  // component.instantiate({ imports }).exports` must work as long as api is used.
  const child = spawnSync(
    process.execPath,
    ['--expose-gc', '--input-type=module', '-e', EXPORTS_ONLY, guestPath('build/types.rust.component.wasm')],
    { cwd: new URL('..', import.meta.url), encoding: 'utf8' },
  )
  t.is(child.status, 0, child.stderr)
  t.deepEqual(JSON.parse(child.stdout), { throughU8: 7, throughString: 's' })
})
