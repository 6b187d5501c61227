// Property tests: random sequences of write / read / grow / call / view accesses agree byte for
// byte with a plain JS model of the memory, and throw nothing but documented errors.
import fc from 'fast-check'
import test from 'ava'

import { Sandbox } from 'wasm-memory-sandbox'

const PAGE = 65536
const MAX_PAGES = 8
const guest = `(module
  (memory (export "memory") 1 ${MAX_PAGES})
  (func (export "poke") (param i32 i32) (i32.store8 (local.get 0) (local.get 1)))
  (func (export "peek") (param i32) (result i32) (i32.load8_u (local.get 0))))`

const DOCUMENTED = new Set(['ERR_OUT_OF_RANGE', 'ERR_INVALID_ARG_TYPE', 'ERR_WASM_MEMORY_LIMIT', 'ERR_WASM_TRAP'])

// Offsets near the interesting edges: 0, page ends, the current end, and far past it.
const offset = fc.oneof(
  fc.nat({ max: MAX_PAGES * PAGE + 16 }),
  fc.constantFrom(0, PAGE - 1, PAGE, 2 * PAGE - 1, MAX_PAGES * PAGE - 1, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1),
)
const operation = fc.oneof(
  fc.record({ kind: fc.constant('write'), offset, bytes: fc.uint8Array({ maxLength: 64 }) }),
  fc.record({ kind: fc.constant('read'), offset, length: fc.oneof(fc.nat({ max: 64 }), fc.constant(2 ** 32)) }),
  fc.record({ kind: fc.constant('grow'), pages: fc.nat({ max: 4 }) }),
  fc.record({ kind: fc.constant('poke'), offset, value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('peek'), offset }),
  fc.record({ kind: fc.constant('view'), offset, value: fc.integer({ min: 0, max: 255 }) }),
)

/** Applies `step` to the sandbox and to the model; returns what each side observed. */
function apply(sandbox, model, step) {
  const size = model.length
  switch (step.kind) {
    case 'write': {
      const fits = step.offset + step.bytes.length <= size
      if (fits) model.set(step.bytes, step.offset)
      return [() => sandbox.write(step.offset, step.bytes), fits ? undefined : 'ERR_OUT_OF_RANGE']
    }
    case 'read': {
      const fits = step.offset + step.length <= size
      return [
        () => [...sandbox.read(step.offset, step.length)],
        fits ? [...model.subarray(step.offset, step.offset + step.length)] : 'ERR_OUT_OF_RANGE',
      ]
    }
    case 'grow': {
      const pages = size / PAGE
      if (pages + step.pages > MAX_PAGES) return [() => sandbox.grow(step.pages), 'ERR_WASM_MEMORY_LIMIT']
      return [() => sandbox.grow(step.pages), pages]
    }
    case 'poke': {
      if (step.offset > 0xffffffff) return [() => sandbox.call('poke', step.offset, step.value), 'ERR_OUT_OF_RANGE']
      if (step.offset >= size) return [() => sandbox.call('poke', step.offset, step.value), 'ERR_WASM_TRAP']
      model[step.offset] = step.value
      return [() => sandbox.call('poke', step.offset, step.value), undefined]
    }
    case 'peek': {
      if (step.offset > 0xffffffff) return [() => sandbox.call('peek', step.offset), 'ERR_OUT_OF_RANGE']
      if (step.offset >= size) return [() => sandbox.call('peek', step.offset), 'ERR_WASM_TRAP']
      return [() => sandbox.call('peek', step.offset), model[step.offset]]
    }
    case 'view': {
      const view = sandbox.memory()
      if (view.length !== size) return [() => view.length, size]
      if (step.offset >= size) return [() => view[step.offset], undefined]
      model[step.offset] = step.value
      return [
        () => {
          view[step.offset] = step.value
          return view[step.offset]
        },
        step.value,
      ]
    }
  }
}

test('random operations agree with a JS model of the memory and throw only documented errors', (t) => {
  fc.assert(
    fc.property(fc.array(operation, { maxLength: 40 }), (steps) => {
      const sandbox = new Sandbox(guest)
      let model = new Uint8Array(PAGE)
      for (const step of steps) {
        const [run, expected] = apply(sandbox, model, step)
        let observed
        try {
          observed = run()
        } catch (error) {
          if (!DOCUMENTED.has(error.code)) throw new Error(`undocumented error ${error.code}: ${error.message}`)
          observed = error.code
        }
        if (step.kind === 'grow' && typeof expected === 'number') {
          const grown = new Uint8Array(model.length + step.pages * PAGE)
          grown.set(model)
          model = grown
        }
        if (JSON.stringify(observed) !== JSON.stringify(expected)) {
          throw new Error(
            `${JSON.stringify(step)}: observed ${JSON.stringify(observed)}, expected ${JSON.stringify(expected)}`,
          )
        }
      }
      // The whole memory, through a fresh view and through a copy, matches the model.
      const view = sandbox.memory()
      if (view.length !== model.length || Buffer.compare(view, model) !== 0)
        throw new Error('memory differs from the model')
      if (Buffer.compare(sandbox.read(0, model.length), model) !== 0) throw new Error('read() differs from the model')
      sandbox.dispose()
    }),
    { numRuns: 150 },
  )
  t.pass()
})
