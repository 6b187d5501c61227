// `sandbox.call()` takes a specialised path for exports whose signature is numbers only (i32, f32,
// f64; up to four parameters; at most one result) and the general path for every other one.
// These tests hold the two to the same behaviour: the same values reach the guest bit for bit,
// the same results come back, and the same errors are thrown for the same bad arguments.
import fc from 'fast-check'
import test from 'ava'

import { Sandbox } from 'wasm-memory-sandbox'

/** The napi-rs base class's `call`: the general path for every export (see src/js/raw.rs). */
const generalCall = Object.getPrototypeOf(Sandbox.prototype).call

const TYPES = ['i32', 'f32', 'f64', 'i64']
const STORE = { i32: 'i32.store', f32: 'f32.store', f64: 'f64.store', i64: 'i64.store' }
const ZERO = { i32: '(i32.const 0)', f32: '(f32.const 0)', f64: '(f64.const 0)', i64: '(i64.const 0)' }

/**
 * A guest with one export per signature: it stores each argument at 8 * its index (so the exact
 * bits that arrived can be read back) and returns its first argument when the first result has
 * that type, else a constant.
 */
function guestFor(signatures) {
  const functions = signatures.map(({ params, results }, index) => {
    const stores = params.map((type, at) => `(${STORE[type]} (i32.const ${at * 8}) (local.get ${at}))`).join(' ')
    const values = results.map((type, at) => (at === 0 && params[0] === type ? '(local.get 0)' : ZERO[type])).join(' ')
    const paramList = params.length ? `(param ${params.join(' ')})` : ''
    const resultList = results.length ? `(result ${results.join(' ')})` : ''
    return `(func (export "f${index}") ${paramList} ${resultList} ${stores} ${values})`
  })
  return `(module (memory (export "memory") 1) ${functions.join('\n')})`
}

/** What a call did: its result, or its error's class, code and message; and the bytes it stored. */
function outcome(sandbox, call) {
  sandbox.write(0, new Uint8Array(64))
  let result
  try {
    result = { value: call() }
  } catch (error) {
    result = { error: error.constructor.name, code: error.code, message: error.message }
  }
  return { ...result, stored: [...sandbox.read(0, 64)] }
}

const signature = fc.record({
  params: fc.array(fc.constantFrom(...TYPES), { maxLength: 5 }),
  results: fc.array(fc.constantFrom(...TYPES), { maxLength: 2 }),
})

const number = fc.oneof(
  fc.integer({ min: -(2 ** 31), max: 2 ** 32 - 1 }),
  fc.double(),
  fc.constantFrom(0, -0, -1, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, -(2 ** 31) - 1, 2 ** 53, 0.5, -1.5),
  fc.constantFrom(NaN, Infinity, -Infinity, Math.fround(0.1), 3.4e38, 3.5e38, 5e-324),
)
const argument = fc.oneof(
  { weight: 6, arbitrary: number },
  { weight: 1, arbitrary: fc.bigInt({ min: -(2n ** 64n), max: 2n ** 64n }) },
  { weight: 1, arbitrary: fc.constantFrom('1', undefined, null, true, {}, [1], Symbol.iterator) },
)

test('every signature and argument list gives the same result, stored bits and error on both paths', (t) => {
  fc.assert(
    fc.property(
      fc.array(signature, { minLength: 1, maxLength: 6 }),
      fc.array(fc.tuple(fc.nat(), fc.array(argument, { maxLength: 6 }), fc.boolean()), { maxLength: 12 }),
      (signatures, calls) => {
        const sandbox = new Sandbox(guestFor(signatures))
        for (const [pick, args, exactArity] of calls) {
          const index = pick % signatures.length
          // Half the calls get exactly the arity, with numbers where numbers belong.
          const callArgs = exactArity
            ? signatures[index].params.map((type, at) => {
                const given = args[at]
                if (type === 'i64') return typeof given === 'bigint' ? BigInt.asIntN(64, given) : 7n
                return typeof given === 'number' ? given : 7
              })
            : args
          const name = `f${index}`
          const specialised = outcome(sandbox, () => sandbox.call(name, ...callArgs))
          const general = outcome(sandbox, () => generalCall.call(sandbox, name, ...callArgs))
          t.deepEqual(specialised, general, `${name} ${JSON.stringify(signatures[index])}`)
        }
        sandbox.dispose()
      },
    ),
    { numRuns: 150, seed: 20261124 },
  )
})

test('a numbers-only export called with the right arguments returns exactly what the guest computed', (t) => {
  const sandbox = new Sandbox(`(module
    (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
    (func (export "mix") (param i32 f32 f64 i32) (result f64)
      (f64.add (f64.add (f64.convert_i32_s (local.get 0)) (f64.promote_f32 (local.get 1)))
               (f64.add (local.get 2) (f64.convert_i32_u (local.get 3)))))
    (func (export "half") (param f32) (result f32) (f32.mul (local.get 0) (f32.const 0.5)))
    (func (export "answer") (result i32) (i32.const 42))
    (func (export "nothing")))`)
  t.is(sandbox.call('add', 2147483647, 1), -2147483648, 'i32 wraps and comes back signed')
  t.is(sandbox.call('add', 4294967295, 0), -1, 'unsigned inputs are the same 32 bits')
  t.is(sandbox.call('mix', -1, 0.5, 0.25, 4294967295), -1 + 0.5 + 0.25 + 4294967295)
  t.is(sandbox.call('half', 3), 1.5)
  t.is(sandbox.call('half', 0.1), Math.fround(Math.fround(0.1) * 0.5))
  t.is(sandbox.call('answer'), 42)
  t.is(sandbox.call('nothing'), undefined)
  t.true(Object.is(sandbox.call('half', -0), -0))
})

test('the specialised path reports a disposed sandbox, a trap and a throwing import like the general one', (t) => {
  const thrown = new Error('from the import')
  const sandbox = new Sandbox(
    `(module
      (import "env" "fail" (func $fail (param i32)))
      (func (export "divide") (param i32 i32) (result i32) (i32.div_s (local.get 0) (local.get 1)))
      (func (export "callOut") (param i32) (call $fail (local.get 0))))`,
    {
      imports: {
        env: {
          fail() {
            throw thrown
          },
        },
      },
    },
  )
  t.is(sandbox.call('divide', 7, 2), 3)
  const trap = t.throws(() => sandbox.call('divide', 1, 0))
  t.is(trap.code, 'ERR_WASM_TRAP')
  t.is(trap.kind, 'integer_divide_by_zero')
  const imported = t.throws(() => sandbox.call('callOut', 1))
  t.is(imported.code, 'ERR_WASM_IMPORT')
  t.is(imported.cause, thrown)
  t.is(sandbox.call('divide', 9, 3), 3, 'usable after both')
  sandbox.dispose()
  t.is(t.throws(() => sandbox.call('divide', 1, 1)).code, 'ERR_SANDBOX_DISPOSED')
})
