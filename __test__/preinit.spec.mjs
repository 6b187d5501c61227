import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

import test from 'ava'

import { Module, Sandbox } from 'wasm-memory-sandbox'

import { guestPath } from './helpers/guests.mjs'

// The Rust guest (examples/guests/rust-preinit): init() calls env.seed once, builds a lookup
// table of 65,536 entries and a dispatch table of boxed closures (called through the wasm
// funcref table), and spins env.work_iterations() rounds of work into its state.
const guest = readFileSync(guestPath('build/preinit.rust.wasm'))

function countingImports(seed = 12345, work = 1000) {
  const calls = { seed: 0, work: 0 }
  const imports = {
    env: {
      seed: () => {
        calls.seed++
        return seed
      },
      work_iterations: () => {
        calls.work++
        return work
      },
    },
  }
  return { calls, imports }
}

test('the Rust guest: the pre-initialized module starts where init() left it, without calling init or its imports', async (t) => {
  const { calls, imports } = countingImports()
  const module = await Module.preinitialize(guest, { init: 'init', imports })
  t.true(module instanceof Module)
  t.deepEqual(calls, { seed: 1, work: 1 }, 'init ran once, with its imports')
  t.false(
    module.exports.some((entry) => entry.name === 'init'),
    'the pre-initialized module no longer exports init',
  )
  const reference = new Sandbox(guest, { imports })
  reference.call('init')
  const sandbox = new Sandbox(module, { imports })
  t.deepEqual(
    calls,
    { seed: 2, work: 2 },
    'instantiating the pre-initialized module called no import (only the reference did)',
  )
  t.is(sandbox.call('initialized'), 1)
  t.is(sandbox.call('checksum'), reference.call('checksum'))
  for (const index of [0, 1, 7, 4096, 65535]) t.is(sandbox.call('lookup', index), reference.call('lookup', index))
  for (let which = 0; which < 4; which++)
    t.is(sandbox.call('dispatch', which, 99), reference.call('dispatch', which, 99), `dispatch entry ${which}`)
  t.is(sandbox.call('bump'), 1)
  t.is(sandbox.call('bump'), 2)
  // Sandboxes of it are independent, and reset() goes back to the pre-initialized state.
  const other = new Sandbox(module, { imports })
  t.is(other.call('bump'), 1)
  sandbox.reset()
  t.is(sandbox.call('bump'), 1)
  t.is(sandbox.call('initialized'), 1)
})

test('text input, a start function and globals: the state after start and init is the initial state', async (t) => {
  const module = await Module.preinitialize(
    `(module (memory (export "memory") 1)
      (global $count (mut i32) (i32.const 0))
      (global $scale (mut f64) (f64.const 1))
      (func $start (global.set $count (i32.const 10)))
      (start $start)
      (func (export "setup") (global.set $count (i32.add (global.get $count) (i32.const 5))) (global.set $scale (f64.const 2.5))
        (i32.store (i32.const 100) (i32.const 0xabcdef)))
      (func (export "count") (result i32) (global.get $count))
      (func (export "scale") (result f64) (global.get $scale))
      (func (export "word") (result i32) (i32.load (i32.const 100))))`,
    { init: 'setup' },
  )
  const sandbox = new Sandbox(module)
  t.is(sandbox.call('count'), 15, 'the start function ran during pre-initialization, not again')
  t.is(sandbox.call('scale'), 2.5)
  t.is(sandbox.call('word'), 0xabcdef)
})

test('what goes wrong rejects with the error a sandbox would throw, or a coded refusal', async (t) => {
  const { imports } = countingImports()
  await t.throwsAsync(Module.preinitialize(guest, { init: 'nope', imports }), { code: 'ERR_WASM_EXPORT' })
  await t.throwsAsync(Module.preinitialize(guest, { init: 'init' }), { code: 'ERR_WASM_LINK' })
  await t.throwsAsync(Module.preinitialize('(module (func (export "init") unreachable))', { init: 'init' }), {
    code: 'ERR_WASM_TRAP',
  })
  await t.throwsAsync(
    Module.preinitialize('(module (func (export "init") (loop $l (br $l))))', { init: 'init', fuel: 10_000 }),
    { code: 'ERR_WASM_OUT_OF_FUEL' },
  )
  await t.throwsAsync(
    Module.preinitialize('(module (func (export "init") (loop $l (br $l))))', { init: 'init', timeoutMs: 50 }),
    { code: 'ERR_WASM_TIMEOUT' },
  )
  const failing = {
    env: {
      seed: () => {
        throw new Error('no seed today')
      },
      work_iterations: () => 1,
    },
  }
  const error = await t.throwsAsync(Module.preinitialize(guest, { init: 'init', imports: failing }), {
    code: 'ERR_WASM_IMPORT',
  })
  t.is(error.cause?.message, 'no seed today')
  // Wizer cannot snapshot tables, so it refuses modules that could change one.
  await t.throwsAsync(
    Module.preinitialize(
      '(module (table 1 funcref) (func $f) (elem declare func $f) (func (export "init") (table.set (i32.const 0) (ref.func $f))))',
      { init: 'init' },
    ),
    { code: 'ERR_WASM_SNAPSHOT', message: /cannot be pre-initialized/ },
  )
  await t.throwsAsync(Module.preinitialize(guest, {}), { instanceOf: TypeError, message: /options.init/ })
  await t.throwsAsync(Module.preinitialize(guest), { instanceOf: TypeError })
  await t.throwsAsync(Module.preinitialize(guest, { init: 'init', bogus: 1 }), {
    instanceOf: TypeError,
    message: /Unknown option/,
  })
  await t.throwsAsync(Module.preinitialize(42, { init: 'init' }), { instanceOf: TypeError })
  await t.throwsAsync(Module.preinitialize(new Uint8Array([0, 97, 115, 109, 9]), { init: 'init' }), {
    code: 'ERR_WASM_COMPILE',
  })
})

test('a fresh process gets the pre-initialized module from the code cache, without running init', (t) => {
  const directory = mkdtempSync(join(tmpdir(), 'preinit-cache-'))
  t.teardown(() => rmSync(directory, { recursive: true, force: true }))
  const child = fileURLToPath(new URL('helpers/preinit-child.mjs', import.meta.url))
  const run = () => {
    const result = spawnSync(process.execPath, [child, guestPath('build/preinit.rust.wasm')], {
      env: { ...process.env, WASM_MEMORY_SANDBOX_CACHE_DIR: directory },
      encoding: 'utf8',
    })
    t.is(result.status, 0, result.stderr)
    return JSON.parse(result.stdout)
  }
  const first = run()
  const second = run()
  t.is(first.seedCalls, 1, 'the first process ran init')
  t.is(second.seedCalls, 0, 'the second process did not')
  t.is(second.checksum, first.checksum)
  t.true(second.stats.hits >= 2, 'the pre-initialized bytes and their compiled code both came from the cache')
})
