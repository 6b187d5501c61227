import test from 'ava'

import { Module, Sandbox } from 'wasm-memory-sandbox'

import { guestText } from './helpers/guests.mjs'

const plugin = new Module(guestText('plugin.wat'))
const quietImports = { env: { log() {}, random: () => 0.5 } }
const newPlugin = () => new Sandbox(plugin, { imports: quietImports })

test('call converts i32, i64, f32 and f64 by signature and returns several results as an array', (t) => {
  const sandbox = newPlugin()
  t.is(sandbox.call('negate', 5), -5)
  t.is(sandbox.call('negate', -2147483648), -2147483648)
  t.is(sandbox.call('negate', 4294967295), 1, 'unsigned inputs are the same 32 bits')
  t.is(sandbox.call('add_i64', 2n ** 62n, 2n ** 62n), -(2n ** 63n), 'i64 wraps like wasm')
  t.is(sandbox.call('add_i64', -5n, 3n), -2n)
  t.is(sandbox.call('add_i64', 2n ** 64n - 1n, 0n), -1n)
  t.is(sandbox.call('mul_f64', 1.5, 4), 6)
  t.true(Number.isNaN(sandbox.call('mul_f64', NaN, 1)))
  t.is(sandbox.call('mul_f32', 0.1, 1), Math.fround(0.1))
  t.deepEqual(sandbox.call('pair', 41), [41, 42])
  t.is(sandbox.call('scaled_random', 10), 5)
})

test('call of a function with no results returns undefined', (t) => {
  const sandbox = new Sandbox('(module (func (export "nothing")))')
  t.is(sandbox.call('nothing'), undefined)
})

for (const [label, args, errorClass, pattern] of [
  ['a missing argument', ['negate'], TypeError, /negate\(i32\) -> i32 takes 1 argument\(s\); received 0/],
  ['an extra argument', ['negate', 1, 2], TypeError, /negate\(i32\) -> i32 takes 1 argument\(s\); received 2/],
  [
    'a string for an i32',
    ['negate', '1'],
    TypeError,
    /negate\(i32\) -> i32: argument 0 must be of type number \(i32\)/,
  ],
  ['a bigint for an i32', ['negate', 1n], TypeError, /must be of type number \(i32\); received type bigint/],
  [
    'a fraction for an i32',
    ['negate', 1.5],
    RangeError,
    /must be an integer from -2147483648 to 4294967295 \(i32\); received 1\.5/,
  ],
  ['NaN for an i32', ['negate', NaN], RangeError, /received NaN/],
  ['2**32 for an i32', ['negate', 2 ** 32], RangeError, /received 4294967296/],
  [
    'a number for an i64',
    ['add_i64', 1, 2n],
    TypeError,
    /add_i64\(i64, i64\) -> i64: argument 0 must be of type bigint \(i64\)/,
  ],
  ['2n**64n for an i64', ['add_i64', 2n ** 64n, 0n], RangeError, /argument 0 must be a bigint from/],
  ['-(2n**63n)-1n for an i64', ['add_i64', -(2n ** 63n) - 1n, 0n], RangeError, /argument 0 must be a bigint from/],
  ['a bigint for an f64', ['mul_f64', 1n, 2], TypeError, /must be of type number \(f64\)/],
  ['an unknown export', ['nope'], TypeError, /the guest exports no function named "nope"/],
  ['the memory as a function', ['memory'], TypeError, /no function named "memory"/],
  ['a non-string name', [42], TypeError, /The "name" argument must be of type string. Received type number \(42\)/],
  ['no name at all', [], TypeError, /The "name" argument must be of type string. Received undefined/],
]) {
  test(`call with ${label} throws a ${errorClass.name} with the signature, and the sandbox stays usable`, (t) => {
    const sandbox = newPlugin()
    const error = t.throws(() => sandbox.call(...args), { instanceOf: errorClass })
    t.regex(error.message, pattern)
    t.true(['ERR_INVALID_ARG_TYPE', 'ERR_OUT_OF_RANGE'].includes(error.code))
    t.is(sandbox.call('negate', 3), -3)
  })
}

test('call on the wrong receiver throws a TypeError', (t) => {
  const error = t.throws(() => Sandbox.prototype.call.call({}, 'negate', 1), { instanceOf: TypeError })
  t.is(error.code, 'ERR_INVALID_THIS')
  t.throws(() => Sandbox.prototype.call.call(new Module('(module)'), 'x'), { instanceOf: TypeError })
})

test('a Sandbox compiles bytes or text given directly', (t) => {
  t.is(new Sandbox('(module (func (export "one") (result i32) i32.const 1))').call('one'), 1)
  const bytes = Buffer.from('0061736d01000000010401600000030201000707010372756e00000a040102000b', 'hex')
  t.is(new Sandbox(bytes).call('run'), undefined)
})

for (const [label, options, errorClass, pattern] of [
  ['a non-object', 5, TypeError, /"options" argument must be of type object/],
  ['an unknown key', { timeout: 5 }, TypeError, /Unknown option "timeout"/],
  ['a negative maxMemoryBytes', { maxMemoryBytes: -1 }, RangeError, /options\.maxMemoryBytes/],
  ['maxMemoryBytes over 4 GiB', { maxMemoryBytes: 2 ** 32 + 1 }, RangeError, /options\.maxMemoryBytes/],
  ['a string timeoutMs', { timeoutMs: '5' }, TypeError, /options\.timeoutMs/],
  ['a zero timeoutMs', { timeoutMs: 0 }, RangeError, /options\.timeoutMs/],
  ['a fractional fuel', { fuel: 1.5 }, RangeError, /options\.fuel/],
  ['NaN fuel', { fuel: NaN }, RangeError, /options\.fuel/],
  ['imports that are not an object', { imports: 'env' }, TypeError, /options\.imports/],
]) {
  test(`options with ${label} throw a ${errorClass.name}`, (t) => {
    const error = t.throws(() => new Sandbox('(module)', options), { instanceOf: errorClass })
    t.regex(error.message, pattern)
  })
}

test('util.inspect shows the memory and limits', async (t) => {
  const { inspect } = await import('node:util')
  const sandbox = new Sandbox(plugin, { imports: quietImports, maxMemoryBytes: 131072, timeoutMs: 50, fuel: 1000 })
  t.is(inspect(sandbox), 'Sandbox { memorySize: 65536 (1 pages), maxMemoryBytes: 131072, timeoutMs: 50, fuel: 1000 }')
  sandbox.dispose()
  t.is(inspect(sandbox), 'Sandbox { disposed: true }')
})
