import test from 'ava'

import { BufferSandbox } from 'wasm-memory-sandbox'

const wrongTypes = [
  ['a numeric string', '15', "type string ('15')"],
  ['a bigint', 15n, 'type bigint'],
  ['undefined', undefined, 'undefined'],
  ['null', null, 'null'],
  ['an object', {}, 'type object'],
  ['an array', [15], 'type object'],
  ['a boolean', true, 'type boolean (true)'],
  ['a symbol', Symbol('15'), 'type symbol'],
  ['a function', () => 15, 'type function'],
]

const outOfRange = [
  ['256', 256],
  ['-1', -1],
  ['1.5', 1.5],
  ['NaN', NaN],
  ['Infinity', Infinity],
  ['-Infinity', -Infinity],
  ['9007199254740992', 2 ** 53],
  ['1e+300', 1e300],
]

for (const [label, value, received] of wrongTypes) {
  test(`storeValueInWasmMemoryBufferIndexZero(${label}) throws a TypeError naming the argument and range`, (t) => {
    const sandbox = new BufferSandbox()
    sandbox.storeValueInWasmMemoryBufferIndexZero(24)
    const error = t.throws(() => sandbox.storeValueInWasmMemoryBufferIndexZero(value), { instanceOf: TypeError })
    t.is(error.code, 'ERR_INVALID_ARG_TYPE')
    t.is(error.message, `The "value" argument must be of type number (an integer from 0 to 255). Received ${received}`)
    t.is(sandbox.buffer()[0], 24, 'nothing was written')
    sandbox.storeValueInWasmMemoryBufferIndexZero(25)
    t.is(sandbox.buffer()[0], 25, 'the sandbox is still usable')
  })
}

for (const [label, value] of outOfRange) {
  test(`storeValueInWasmMemoryBufferIndexZero(${label}) throws a RangeError instead of wrapping`, (t) => {
    const sandbox = new BufferSandbox()
    sandbox.storeValueInWasmMemoryBufferIndexZero(24)
    const error = t.throws(() => sandbox.storeValueInWasmMemoryBufferIndexZero(value), { instanceOf: RangeError })
    t.is(error.code, 'ERR_OUT_OF_RANGE')
    t.is(error.message, `The value of "value" is out of range. It must be an integer from 0 to 255. Received ${label}`)
    t.is(sandbox.buffer()[0], 24, 'nothing was written')
    sandbox.storeValueInWasmMemoryBufferIndexZero(15)
    t.is(sandbox.buffer()[0], 15, 'the sandbox is still usable')
  })
}

test('storeValueInWasmMemoryBufferIndexZero with no argument throws a TypeError', (t) => {
  const sandbox = new BufferSandbox()
  t.throws(() => sandbox.storeValueInWasmMemoryBufferIndexZero(), {
    instanceOf: TypeError,
    code: 'ERR_INVALID_ARG_TYPE',
  })
})

test('the bounds 0 and 255 and -0 are accepted', (t) => {
  const sandbox = new BufferSandbox()
  for (const value of [0, 255, -0]) {
    sandbox.storeValueInWasmMemoryBufferIndexZero(value)
    t.is(sandbox.buffer()[0], Math.abs(value))
  }
})

for (const [label, value, errorClass] of [
  ['-1', -1, RangeError],
  ['0.5', 0.5, RangeError],
  ['NaN', NaN, RangeError],
  ['65537', 65537, RangeError],
  ["'1'", '1', TypeError],
  ['1n', 1n, TypeError],
]) {
  test(`grow(${label}) throws a ${errorClass.name} and leaves the memory as it was`, (t) => {
    const sandbox = new BufferSandbox()
    const error = t.throws(() => sandbox.grow(value), { instanceOf: errorClass })
    t.regex(error.message, /"pages"/)
    t.regex(error.message, /an integer from 0 to 65536/)
    t.is(sandbox.memorySize, 65536)
    t.is(sandbox.grow(0), 1)
  })
}

test('extra arguments are ignored, as for any JS function', (t) => {
  const sandbox = new BufferSandbox()
  sandbox.storeValueInWasmMemoryBufferIndexZero(3, 'extra', 99)
  t.is(sandbox.buffer()[0], 3)
})

test('methods called on the wrong receiver throw a TypeError, not a crash', (t) => {
  for (const name of ['memory', 'buffer', 'getWasmMemoryBufferPointer', 'dispose', 'grow']) {
    t.throws(() => BufferSandbox.prototype[name].call({}), { instanceOf: TypeError }, name)
  }
})
