import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import test from 'ava'

import { BufferSandbox, Module, Sandbox, Snapshot } from 'wasm-memory-sandbox'

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

// A WASI reactor that opens /data/data.txt (preopened first, descriptor 3) and closes it.
const wasiOpener = `(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "data.txt")
  (func (export "_initialize"))
  (func (export "open") (result i32)
    (drop (call $path_open (i32.const 3) (i32.const 0) (i32.const 64) (i32.const 8) (i32.const 0)
      (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 16)))
    (i32.load (i32.const 16)))
  (func (export "close") (param i32) (result i32) (call $fd_close (local.get 0))))`

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
  // A file a WASI guest holds open lives in the host.
  const directory = mkdtempSync(join(tmpdir(), 'snapshot-'))
  t.teardown(() => rmSync(directory, { recursive: true, force: true }))
  writeFileSync(join(directory, 'data.txt'), 'hello')
  const opener = new Sandbox(wasiOpener, { wasi: { preopens: { '/data': directory } } })
  const fd = opener.call('open')
  t.true(fd > 3, `path_open gave descriptor ${fd}`)
  t.throws(() => opener.snapshot(), { code: 'ERR_WASM_SNAPSHOT', message: /1 file open through WASI/ })
  t.throws(() => opener.reset(), { code: 'ERR_WASM_SNAPSHOT', message: /1 file open/ })
  t.is(opener.call('close', fd), 0)
  t.truthy(opener.snapshot())
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

test('function references in globals and tables restore as the module own functions, into any sandbox of the module', (t) => {
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
  other.restore(snapshot)
  t.is(other.call('chosen'), 1)
  other.call('choose')
  const chose = other.snapshot()
  sandbox.restore(chose)
  t.is(sandbox.call('chosen'), 2, "the other sandbox's reference is this sandbox's own function")
  t.is(chose.instantiate().call('chosen'), 2)
})

test('a table slot holding a host reference (an externref) is refused, nothing changed', (t) => {
  // The guest makes a non-null externref itself (an i31 converted), as JS cannot pass one to call().
  const source =
    '(module (memory (export "memory") 1) (table $refs 1 externref) (func (export "keep") (table.set $refs (i32.const 0) (extern.convert_any (ref.i31 (i32.const 5))))))'
  const sandbox = new Sandbox(source)
  sandbox.memory()[0] = 5
  const snapshot = sandbox.snapshot()
  sandbox.call('keep')
  t.throws(() => sandbox.snapshot(), { code: 'ERR_WASM_SNAPSHOT', message: /table 0 holds a host reference/ })
  sandbox.memory()[0] = 6
  sandbox.restore(snapshot)
  t.is(sandbox.memory()[0], 5)
  t.truthy(sandbox.snapshot(), 'restoring put the null back')
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

test('instantiate() forks: the fork starts from the snapshot, and parent, forks and snapshot never see each other’s writes', (t) => {
  const parent = new Sandbox(stateful)
  parent.grow(2)
  parent.call('poke', 70000, 9)
  parent.call('bump')
  parent.call('setVisible', 5)
  parent.call('swap')
  const snapshot = parent.snapshot()
  const first = snapshot.instantiate()
  const second = snapshot.instantiate()
  for (const fork of [first, second]) {
    t.true(fork instanceof Sandbox)
    t.is(fork.call('pages'), 3)
    t.is(fork.call('peek', 70000), 9)
    t.is(fork.call('peek', 16), 'i'.charCodeAt(0), 'the data segment is there')
    t.is(fork.call('hidden'), 8n)
    t.is(fork.call('getVisible'), 5)
    t.is(fork.call('slot0'), 2, 'the table slot the parent rewrote')
  }
  first.call('poke', 70000, 1)
  first.call('bump')
  second.call('poke', 70001, 2)
  parent.call('poke', 70002, 3)
  t.deepEqual(
    [first, second, parent].map((sandbox) => sandbox.call('peek', 70000)),
    [1, 9, 9],
  )
  t.deepEqual(
    [first, second, parent].map((sandbox) => sandbox.call('peek', 70001)),
    [0, 2, 0],
  )
  t.deepEqual(
    [first, second, parent].map((sandbox) => sandbox.call('peek', 70002)),
    [0, 0, 3],
  )
  t.deepEqual(
    [first, second].map((sandbox) => sandbox.call('hidden')),
    [9n, 8n],
  )
  const third = snapshot.instantiate()
  t.deepEqual(
    [70000, 70001, 70002].map((offset) => third.call('peek', offset)),
    [9, 0, 0],
    'the snapshot is unchanged',
  )
  // A fork's reset() goes back to the snapshot it started from.
  first.reset()
  t.is(first.call('peek', 70000), 9)
  t.is(first.call('hidden'), 8n)
  // Forks outlive the snapshot's dispose() and their parent.
  snapshot.dispose()
  parent.dispose()
  t.is(second.call('peek', 70001), 2)
  second.reset()
  t.is(second.call('peek', 70001), 0)
  t.throws(() => snapshot.instantiate(), { code: 'ERR_SANDBOX_DISPOSED' })
})

test('a fork does not run the start function again; a new instance does, and reset() does not', (t) => {
  const source = `(module
    (import "host" "started" (func $started))
    (memory (export "memory") 1)
    (global $runs (mut i32) (i32.const 0))
    (func $start (call $started) (global.set $runs (i32.add (global.get $runs) (i32.const 1))) (i32.store (i32.const 0) (i32.const 77)))
    (start $start)
    (func (export "runs") (result i32) (global.get $runs)))`
  let started = 0
  const imports = { host: { started: () => started++ } }
  const sandbox = new Sandbox(source, { imports })
  t.is(started, 1)
  t.is(sandbox.call('runs'), 1)
  t.is(sandbox.memory().readInt32LE(0), 77)
  sandbox.memory().writeInt32LE(1, 0)
  sandbox.reset()
  t.is(started, 1)
  t.is(sandbox.memory().readInt32LE(0), 77)
  const fork = sandbox.snapshot().instantiate({ imports })
  t.is(started, 1, 'the fork did not run the start function')
  t.is(fork.call('runs'), 1)
  // A trapping start function still fails instantiation, as a trap.
  t.throws(() => new Sandbox('(module (func $boom unreachable) (start $boom))'), { code: 'ERR_WASM_TRAP' })
})

test('limits apply to forks: maxMemoryBytes refuses a larger snapshot, fuel and timeoutMs stop them', (t) => {
  const module = new Module(`(module (memory (export "memory") 1 1024)
    (func (export "spin") (loop $forever (br $forever)))
    (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))`)
  const parent = new Sandbox(module)
  parent.grow(15)
  parent.memory()[65536 * 15] = 4
  const snapshot = parent.snapshot()
  t.throws(() => snapshot.instantiate({ maxMemoryBytes: 8 * 65536 }), {
    code: 'ERR_WASM_MEMORY_LIMIT',
    message: /maxMemoryBytes/,
  })
  const capped = snapshot.instantiate({ maxMemoryBytes: 16 * 65536 })
  t.is(capped.memory()[65536 * 15], 4)
  t.is(capped.call('grow', 1), -1, 'the fork cannot grow past its limit')
  const metered = snapshot.instantiate({ fuel: 10_000 })
  t.is(metered.memory()[65536 * 15], 4)
  t.throws(() => metered.call('spin'), { code: 'ERR_WASM_OUT_OF_FUEL' })
  const timed = snapshot.instantiate({ timeoutMs: 50 })
  t.throws(() => timed.call('spin'), { code: 'ERR_WASM_TIMEOUT' })
  t.is(timed.memory()[65536 * 15], 4)
})

test('fuel sandboxes: snapshot, restore and reset work, instantiation charges nothing for data segments, the start function is charged', (t) => {
  const source = `(module (memory (export "memory") 1)
    (data (i32.const 0) "a data segment of some length, copied in at instantiation")
    (global $count (mut i32) (i32.const 0))
    (func $start (local $i i32) (loop $again (local.set $i (i32.add (local.get $i) (i32.const 1))) (br_if $again (i32.lt_u (local.get $i) (i32.const 100)))))
    (start $start)
    (func (export "bump") (result i32) (global.set $count (i32.add (global.get $count) (i32.const 1))) (global.get $count)))`
  const plainModule = new Sandbox(
    `(module (memory (export "memory") 1) (data (i32.const 0) "a data segment of some length, copied in at instantiation") (func (export "bump") (result i32) (i32.const 0)))`,
    { fuel: 1000 },
  )
  t.is(plainModule.fuel, 1000, 'copying the data segment cost no fuel')
  const sandbox = new Sandbox(source, { fuel: 100_000 })
  const charged = 100_000 - sandbox.fuel
  t.true(charged >= 100 && charged < 2000, `the start function's loop cost ${charged}`)
  sandbox.call('bump')
  const snapshot = sandbox.snapshot()
  sandbox.call('bump')
  sandbox.memory()[0] = 0
  sandbox.restore(snapshot)
  t.is(sandbox.call('bump'), 2)
  sandbox.reset()
  t.is(sandbox.call('bump'), 1)
  t.is(sandbox.memory()[0], 'a'.charCodeAt(0))
})

test('WASI: a command runs again after reset(); a reactor forks with its own WASI context', (t) => {
  const command = `(module
    (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
    (memory (export "memory") 1)
    (data (i32.const 32) "run\\n")
    (global $runs (mut i32) (i32.const 0))
    (func (export "_start")
      (global.set $runs (i32.add (global.get $runs) (i32.const 1)))
      (i32.store (i32.const 0) (i32.const 32)) (i32.store (i32.const 4) (i32.const 4))
      (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
    (func (export "runs") (result i32) (global.get $runs)))`
  const sandbox = new Sandbox(command, { wasi: {} })
  t.is(sandbox.run().stdout.toString(), 'run\n')
  t.throws(() => sandbox.run(), { code: 'ERR_WASI_ALREADY_STARTED' })
  const after = sandbox.snapshot()
  sandbox.reset()
  t.is(sandbox.call('runs'), 0)
  t.is(sandbox.run().stdout.toString(), 'run\n')
  t.is(sandbox.call('runs'), 1)
  sandbox.restore(after)
  t.throws(() => sandbox.run(), { code: 'ERR_WASI_ALREADY_STARTED' }, 'the snapshot was taken after run()')
  const directory = mkdtempSync(join(tmpdir(), 'snapshot-'))
  t.teardown(() => rmSync(directory, { recursive: true, force: true }))
  writeFileSync(join(directory, 'data.txt'), 'hello')
  const reactor = new Sandbox(wasiOpener, { wasi: { preopens: { '/data': directory } } })
  reactor.memory()[1000] = 42
  const fork = reactor.snapshot().instantiate({ wasi: { preopens: { '/data': directory } } })
  t.is(fork.memory()[1000], 42)
  const fd = fork.call('open')
  t.true(fd > 3)
  t.throws(() => fork.snapshot(), { code: 'ERR_WASM_SNAPSHOT' })
  t.truthy(reactor.snapshot(), "the fork's open file is its own")
})

test('1,000 forks of a 64 MiB snapshot that each write one page share the rest: resident memory grows by far less than one copy', (t) => {
  const parent = new Sandbox(plain)
  parent.grow(1023)
  const view = parent.memory()
  for (let offset = 0; offset < view.length; offset += 4096) view[offset] = 1 + ((offset >>> 12) & 0x7f)
  const snapshot = parent.snapshot()
  parent.dispose()
  const before = residentBytes()
  const forks = []
  for (let index = 0; index < 1000; index++) {
    const fork = snapshot.instantiate()
    fork.memory()[index * 4096 + 1] = 1
    forks.push(fork)
  }
  const grew = residentBytes() - before
  t.true(grew < 16 * 1024 * 1024, `1,000 forks grew the resident memory by ${(grew / 2 ** 20).toFixed(1)} MiB`)
  t.is(forks[999].memory()[999 * 4096 + 1], 1)
  t.is(forks[998].memory()[999 * 4096 + 1], 0)
  t.is(forks[500].memory()[4096 * 700], 1 + (700 & 0x7f))
  for (const fork of forks) fork.dispose()
})

test('BufferSandbox: snapshot(), restore() and reset() of its one page; a snapshot forks into a Sandbox of the same module', (t) => {
  const sandbox = new BufferSandbox()
  const view = sandbox.memory()
  sandbox.storeValueInWasmMemoryBufferIndexZero(24)
  view[1000] = 7
  const snapshot = sandbox.snapshot()
  t.true(snapshot instanceof Snapshot)
  view[1000] = 8
  sandbox.storeValueInWasmMemoryBufferIndexZero(99)
  sandbox.restore(snapshot)
  t.is(view[1000], 7, 'the view sees the restored bytes')
  t.is(sandbox.buffer()[0], 24)
  const other = new BufferSandbox()
  other.restore(snapshot)
  t.is(other.memory()[1000], 7)
  sandbox.reset()
  t.is(view[1000], 0)
  t.is(sandbox.buffer()[0], 0)
  const fork = snapshot.instantiate({ maxMemoryBytes: 4 * 65536 })
  t.true(fork instanceof Sandbox)
  t.is(fork.memory()[1000], 7)
  t.is(fork.call('storeValueInWasmMemoryBufferIndexZero', 15), undefined)
  t.is(other.memory()[1000], 7)
  // A Sandbox snapshot of another module, a disposed one, not a snapshot at all.
  t.throws(() => sandbox.restore(new Sandbox(plain).snapshot()), {
    code: 'ERR_WASM_SNAPSHOT',
    message: /another module/,
  })
  t.throws(() => sandbox.restore({}), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
  snapshot.dispose()
  t.throws(() => sandbox.restore(snapshot), { code: 'ERR_SANDBOX_DISPOSED' })
  sandbox.dispose()
  t.throws(() => sandbox.snapshot(), { code: 'ERR_SANDBOX_DISPOSED' })
})
