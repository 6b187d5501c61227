import { readFileSync } from 'node:fs'

import test from 'ava'

import { Module, Sandbox, Snapshot } from 'wasm-memory-sandbox'

// A guest with state everywhere a snapshot must reach: a memory with a data segment, a mutable
// global it does not export (as a stack pointer or an allocator's top), one it does, and a table
// whose slots it rewrites.
const stateful = `(module
  (memory (export "memory") 1 1024)
  (data (i32.const 16) "initial")
  (global $hidden (mut i64) (i64.const 7))
  (global (export "visible") (mut i32) (i32.const 1))
  (table $slots 2 funcref)
  (elem (i32.const 0) $one $two)
  (type $answer (func (result i32)))
  (func $one (result i32) (i32.const 1))
  (func $two (result i32) (i32.const 2))
  (func (export "bump") (result i64)
    (global.set $hidden (i64.add (global.get $hidden) (i64.const 1)))
    (global.get $hidden))
  (func (export "hidden") (result i64) (global.get $hidden))
  (func (export "setVisible") (param i32) (global.set 1 (local.get 0)))
  (func (export "getVisible") (result i32) (global.get 1))
  (func (export "swap") (table.set $slots (i32.const 0) (ref.func $two)))
  (func (export "slot0") (result i32) (call_indirect (type $answer) (i32.const 0)))
  (func (export "poke") (param i32 i32) (i32.store8 (local.get 0) (local.get 1)))
  (func (export "peek") (param i32) (result i32) (i32.load8_u (local.get 0)))
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "pages") (result i32) (memory.size)))`

const plain =
  '(module (memory (export "memory") 1 1024) (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))'

/** A random generator with a seed, so a failing run can be replayed. */
function random(seed) {
  let state = seed >>> 0 || 1
  return () => {
    state ^= state << 13
    state ^= state >>> 17
    state ^= state << 5
    return (state >>> 0) / 2 ** 32
  }
}

function residentBytes() {
  const status = readFileSync('/proc/self/status', 'utf8')
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)[1]) * 1024
}

test('restore() puts back every byte, the memory size, hidden and exported globals and table slots, after random writes and growth', (t) => {
  const next = random(20261206)
  const sandbox = new Sandbox(stateful)
  sandbox.grow(3)
  for (let index = 0; index < 2000; index++)
    sandbox.call('poke', Math.floor(next() * 4 * 65536), Math.floor(next() * 256))
  sandbox.call('bump')
  sandbox.call('setVisible', 41)
  const expected = Buffer.from(sandbox.memory())
  const snapshot = sandbox.snapshot()
  t.true(snapshot instanceof Snapshot)
  t.true(snapshot.memoryBytes > 0 && snapshot.memoryBytes <= 4 * 65536)
  for (let round = 0; round < 5; round++) {
    const view = sandbox.memory()
    for (let index = 0; index < 500; index++) view[Math.floor(next() * view.length)] = Math.floor(next() * 256)
    sandbox.call('grow', 1 + Math.floor(next() * 3))
    const grown = sandbox.memory()
    for (let index = 0; index < 500; index++) grown[Math.floor(next() * grown.length)] = Math.floor(next() * 256)
    sandbox.call('bump')
    sandbox.call('setVisible', round)
    sandbox.call('swap')
    t.is(sandbox.call('slot0'), 2)
    sandbox.restore(snapshot)
    t.is(sandbox.call('pages'), 4, `round ${round}: the memory is back to 4 pages`)
    t.true(Buffer.from(sandbox.memory()).equals(expected), `round ${round}: every byte is back`)
    t.is(sandbox.call('hidden'), 8n, `round ${round}: the unexported global is back`)
    t.is(sandbox.call('getVisible'), 41)
    t.is(sandbox.call('slot0'), 1, `round ${round}: the table slot is back`)
  }
})

test('reset() goes back to the state right after instantiation', (t) => {
  const sandbox = new Sandbox(stateful)
  const initial = Buffer.from(sandbox.memory())
  t.is(initial.toString('latin1', 16, 23), 'initial')
  sandbox.call('poke', 16, 0x49)
  sandbox.call('poke', 60000, 9)
  sandbox.call('grow', 5)
  sandbox.call('poke', 5 * 65536, 1)
  sandbox.call('bump')
  sandbox.call('bump')
  sandbox.call('setVisible', 99)
  sandbox.call('swap')
  sandbox.reset()
  t.is(sandbox.call('pages'), 1)
  t.true(Buffer.from(sandbox.memory()).equals(initial))
  t.is(sandbox.call('hidden'), 7n)
  t.is(sandbox.call('getVisible'), 1)
  t.is(sandbox.call('slot0'), 1)
  // Grown again after a reset, the memory's new pages are zero.
  t.is(sandbox.call('grow', 5), 1)
  t.is(sandbox.call('peek', 5 * 65536), 0)
  // Reset works any number of times, also with nothing changed.
  sandbox.reset()
  sandbox.reset()
  t.is(sandbox.call('pages'), 1)
})

test('views: one of an unchanged size sees the restored bytes; one longer than the restored memory is detached', (t) => {
  const sandbox = new Sandbox(plain)
  const snapshot = sandbox.snapshot()
  const same = sandbox.memory()
  same[5] = 55
  sandbox.restore(snapshot)
  t.is(same.length, 65536, 'a view of the same size stays attached')
  t.is(same[5], 0, 'and shows the restored byte')
  same[6] = 66
  sandbox.grow(2)
  const longer = sandbox.memory()
  t.is(longer.length, 3 * 65536)
  sandbox.restore(snapshot)
  t.is(longer.length, 0, 'the longer view is detached, so it never reaches unmapped pages')
  t.is(same.length, 65536)
  t.is(same[6], 0)
  t.is(sandbox.memory().length, 65536)
  sandbox.reset()
  t.is(same.length, 65536)
})

test('a snapshot restores into another sandbox of the same module, and the two stay apart', (t) => {
  const module = new Module(plain)
  const first = new Sandbox(module)
  first.memory()[100] = 1
  const snapshot = first.snapshot()
  const second = new Sandbox(module)
  second.restore(snapshot)
  t.is(second.memory()[100], 1)
  second.memory()[100] = 2
  first.memory()[100] = 3
  t.is(second.memory()[100], 2)
  t.is(first.memory()[100], 3)
  first.restore(snapshot)
  second.restore(snapshot)
  t.is(first.memory()[100], 1)
  t.is(second.memory()[100], 1)
})

test('what cannot be captured or put back is refused with a coded error, and changes nothing', (t) => {
  const sandbox = new Sandbox(stateful)
  const snapshot = sandbox.snapshot()
  // A snapshot of another module.
  const other = new Sandbox(plain)
  t.throws(() => other.restore(snapshot), { code: 'ERR_WASM_SNAPSHOT', message: /another module/ })
  // Table references belong to the sandbox they were taken in.
  const sibling = new Sandbox(new Module(stateful))
  t.throws(() => sibling.restore(snapshot), { code: 'ERR_WASM_SNAPSHOT' })
  // Larger than the target's maxMemoryBytes: refused, nothing changed.
  const module = new Module(plain)
  const big = new Sandbox(module)
  big.grow(9)
  big.memory()[0] = 7
  const bigSnapshot = big.snapshot()
  const small = new Sandbox(module, { maxMemoryBytes: 4 * 65536 })
  small.memory()[0] = 1
  t.throws(() => small.restore(bigSnapshot), { code: 'ERR_WASM_MEMORY_LIMIT', message: /maxMemoryBytes/ })
  t.is(small.memory().length, 65536)
  t.is(small.memory()[0], 1)
  // Not a snapshot.
  t.throws(() => sandbox.restore({}), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => sandbox.restore(), { instanceOf: TypeError })
  // Disposed snapshot, disposed sandbox.
  const disposable = sandbox.snapshot()
  disposable.dispose()
  t.true(disposable.disposed)
  t.throws(() => sandbox.restore(disposable), { code: 'ERR_SANDBOX_DISPOSED' })
  t.throws(() => disposable.memoryBytes, { code: 'ERR_SANDBOX_DISPOSED' })
  const gone = new Sandbox(plain)
  gone.dispose()
  t.throws(() => gone.snapshot(), { code: 'ERR_SANDBOX_DISPOSED' })
  t.throws(() => gone.reset(), { code: 'ERR_SANDBOX_DISPOSED' })
  // A WASI sandbox's descriptors live in the host.
  const wasi = new Sandbox('(module (memory (export "memory") 1) (func (export "_initialize")))', { wasi: {} })
  t.throws(() => wasi.snapshot(), { code: 'ERR_WASM_SNAPSHOT', message: /WASI/ })
  // A fuel budget: not yet.
  const metered = new Sandbox(plain, { fuel: 1000 })
  t.throws(() => metered.snapshot(), { code: 'ERR_WASM_SNAPSHOT', message: /fuel budget/ })
  t.throws(() => metered.reset(), { code: 'ERR_WASM_SNAPSHOT' })
  // The sandbox still works after all of that.
  sandbox.restore(snapshot)
  t.is(sandbox.call('hidden'), 7n)
})

test('a snapshot taken in the middle of a call (from an import) is refused', (t) => {
  let sandbox
  let refused
  sandbox = new Sandbox(
    '(module (import "host" "inside" (func $inside)) (memory (export "memory") 1) (func (export "run") (call $inside)))',
    {
      imports: {
        host: {
          inside() {
            try {
              sandbox.snapshot()
            } catch (error) {
              refused = error
            }
          },
        },
      },
    },
  )
  sandbox.call('run')
  t.is(refused?.code, 'ERR_WASM_SNAPSHOT')
  t.regex(refused.message, /call is in progress/)
  t.truthy(sandbox.snapshot())
})

test('function references in globals and tables restore into their own sandbox; elsewhere they are refused, nothing changed', (t) => {
  const source =
    '(module (memory (export "memory") 1) (type $answer (func (result i32))) (func $one (result i32) (i32.const 1)) (func $two (result i32) (i32.const 2)) (elem declare func $one $two) (global $chosen (mut funcref) (ref.func $one)) (func (export "choose") (global.set $chosen (ref.func $two))) (func (export "chosen") (result i32) (call_ref $answer (ref.cast (ref $answer) (global.get $chosen)))))'
  const module = new Module(source)
  const sandbox = new Sandbox(module)
  const snapshot = sandbox.snapshot()
  sandbox.call('choose')
  t.is(sandbox.call('chosen'), 2)
  sandbox.restore(snapshot)
  t.is(sandbox.call('chosen'), 1)
  const other = new Sandbox(module)
  other.call('choose')
  other.memory()[0] = 9
  t.throws(() => other.restore(snapshot), { code: 'ERR_WASM_SNAPSHOT', message: /global 0 holds a function reference/ })
  t.is(other.call('chosen'), 2)
  t.is(other.memory()[0], 9)
})

test('hidden state exports never show: exports() and memory(name) know only the module own exports', (t) => {
  const module = new Module(stateful)
  const names = module.exports.map((entry) => entry.name)
  t.false(names.some((name) => name.includes('snapshot')))
  t.is(names.length, new Set(names).size)
  const sandbox = new Sandbox(module)
  t.throws(() => sandbox.memory('\u0000snapshot:memory:0'), { code: 'ERR_WASM_NO_MEMORY' })
})

test('copy-on-write: after the snapshot of 64 MiB of written memory, restoring it after one page of writes costs no copy of the memory', (t) => {
  const sandbox = new Sandbox(plain)
  sandbox.grow(1023)
  const view = sandbox.memory()
  for (let offset = 0; offset < view.length; offset += 4096) view[offset] = (offset >>> 12) & 0xff
  const snapshot = sandbox.snapshot()
  const before = residentBytes()
  for (let round = 0; round < 20; round++) {
    sandbox.memory()[round * 4096 + 1] = 1
    sandbox.restore(snapshot)
  }
  const grew = residentBytes() - before
  t.true(grew < 16 * 1024 * 1024, `restores grew the resident memory by ${grew >> 20} MiB`)
  t.is(sandbox.memory()[4096], 1)
  t.is(sandbox.memory()[4097], 0)
})
