import { spawnSync } from 'node:child_process'
import { inspect } from 'node:util'
import { Worker } from 'node:worker_threads'
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import test from 'ava'

import { Module, Sandbox } from 'wasm-memory-sandbox'

import { guestPath, guestText } from './helpers/guests.mjs'

// Built from examples/guests/ by scripts/build-guests.mjs (run by `npm test`).
const cli = Module.fromFile(guestPath('build/wasi-cli.wasip1.wasm'))
const bufferCommand = Module.fromFile(guestPath('build/buffer-command.wasip1.wasm'))
const asHello = Module.fromFile(guestPath('build/hello.as-wasi.wasm'))
const asReactor = Module.fromFile(guestPath('build/reactor.as-wasi.wasm'))
// WebAssembly text, one per edge case.
const exitThenCall = new Module(guestText('wasi/exit_then_call.wat'))
const flood = new Module(guestText('wasi/output_flood.wat'))
const preview0 = new Module(guestText('wasi/preview0.wat'))
const mixed = new Module(guestText('wasi/mixed_imports.wat'))
const limits = new Module(guestText('wasi/limits.wat'))
const proxy = new Module(guestText('wasi/fs_proxy.wat'))
const sleep = new Module(guestText('wasi/sleep.wat'))

function scratch(t) {
  const directory = mkdtempSync(join(tmpdir(), 'wasi-spec-'))
  t.teardown(() => rmSync(directory, { recursive: true, force: true }))
  return directory
}

/** Runs the Rust CLI guest with `args` after argv[0] and the rest of the wasi options. */
function runCli(args, wasi = {}, options = {}) {
  return new Sandbox(cli, { ...options, wasi: { args: ['wasi-cli', ...args], ...wasi } }).run()
}

test('Rust guest: argv (argv[0] included) reaches the guest as given', (t) => {
  const args = ['args', 'input.txt', 'two words', 'ünïcödé ✓', '']
  const result = runCli(args)
  t.is(result.exitCode, 0)
  t.true(Buffer.isBuffer(result.stdout))
  t.is(result.stdout.toString(), ['wasi-cli', ...args].map((arg) => `${arg}\n`).join(''))
  t.is(result.stderr.length, 0)
  t.false(result.stdoutTruncated)
  t.false(result.stderrTruncated)
})

test('Rust guest: the environment is exactly the env option, in its order; nothing of the host leaks', (t) => {
  process.env.WASI_SPEC_HOST_SECRET = 'must not leak'
  t.teardown(() => delete process.env.WASI_SPEC_HOST_SECRET)
  const result = runCli(['env'], { env: { KEY: 'value', EMPTY: '', SPACES: 'a b = c', ÜNI: 'ç' } })
  t.is(result.stdout.toString(), 'KEY=value\nEMPTY=\nSPACES=a b = c\nÜNI=ç\n')
  t.is(runCli(['env']).stdout.toString(), '')
})

test('Rust guest: stdin (a string or bytes) is copied to stdout byte for byte', (t) => {
  t.is(runCli(['cat'], { stdin: 'text on stdin\nsecond line ✓' }).stdout.toString(), 'text on stdin\nsecond line ✓')
  const bytes = Uint8Array.from({ length: 70_000 }, (_, index) => (index * 7) % 256)
  const result = runCli(['cat'], { stdin: bytes })
  t.true(result.stdout.equals(bytes))
  t.is(runCli(['cat']).stdout.length, 0, 'no stdin option: empty stdin')
})

test('Rust guest: reads a file from a preopened directory, and writes one into it', (t) => {
  const host = scratch(t)
  writeFileSync(join(host, 'input.txt'), 'hello from the host\n')
  const preopens = { '/work': host }
  t.is(runCli(['read', '/work/input.txt'], { preopens }).stdout.toString(), 'hello from the host\n')
  t.is(runCli(['write', '/work/out.txt', 'from the guest'], { preopens }).exitCode, 0)
  t.is(readFileSync(join(host, 'out.txt'), 'utf8'), 'from the guest')
  mkdirSync(join(host, 'sub'))
  t.is(runCli(['ls', '/work'], { preopens }).stdout.toString(), 'input.txt\nout.txt\nsub\n')
})

test('Rust guest: without a preopen there is no file system at all', (t) => {
  const result = runCli(['read', '/etc/hostname'])
  t.is(result.exitCode, 1)
  t.regex(result.stderr.toString(), /^error: read \/etc\/hostname: /)
  t.is(result.stdout.length, 0)
  t.is(runCli(['ls', '/']).exitCode, 1)
  t.is(runCli(['ls', '.']).exitCode, 1)
})

test('Rust guest: exit codes; proc_exit(n) is a result, not an error', (t) => {
  const exited = runCli(['exit', '3'])
  t.is(exited.exitCode, 3)
  t.is(exited.stderr.toString(), 'exiting\n')
  t.is(runCli(['exit', '0']).exitCode, 0)
  t.is(runCli(['exit', '125']).exitCode, 125)
  t.is(runCli(['args']).exitCode, 0, 'main returning is exit code 0')
  t.is(runCli(['no-such-command']).exitCode, 1)
})

test('Rust guest: the clocks and random numbers are real', (t) => {
  const first = runCli(['time']).stdout.toString().trim().split(' ')
  const second = runCli(['time']).stdout.toString().trim().split(' ')
  t.true(Math.abs(Number(first[0]) - Date.now() / 1000) < 120, `guest time ${first[0]}`)
  t.regex(first[1], /^[0-9a-f]{32}$/)
  t.not(first[1], second[1])
  t.not(first[1], '0'.repeat(32))
})

test("stdout 'ignore' discards and 'inherit' writes to the process's own stdout", (t) => {
  const ignored = runCli(['args', 'x'], { stdout: 'ignore', stderr: 'ignore' })
  t.is(ignored.exitCode, 0)
  t.is(ignored.stdout.length, 0)
  const script = `
    const { Module, Sandbox } = require('wasm-memory-sandbox')
    const cli = Module.fromFile(${JSON.stringify(guestPath('build/wasi-cli.wasip1.wasm'))})
    const result = new Sandbox(cli, { wasi: { args: ['p', 'args', 'to-stdout'], stdout: 'inherit' } }).run()
    const exited = new Sandbox(cli, { wasi: { args: ['p', 'exit', '4'], stderr: 'inherit' } }).run()
    process.stdout.write('captured:' + result.stdout.length + ' ' + exited.stderr.length + ' ' + exited.exitCode)
  `
  const child = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' })
  t.is(child.status, 0, child.stderr)
  t.is(child.stdout, 'p\nargs\nto-stdout\ncaptured:0 0 4')
  t.is(child.stderr, 'exiting\n')
})

test('AssemblyScript guest (wasi-shim): argv, env, stdin, stderr, exit code, and exports after run()', (t) => {
  const sandbox = new Sandbox(asHello, { wasi: { args: ['hello', 'Ada'], stdin: 'shout this' } })
  const result = sandbox.run()
  t.is(result.exitCode, 0)
  t.is(result.stdout.toString(), 'Hello, Ada! (argv has 2 entries)\nSHOUT THIS')
  t.is(result.stderr.toString(), 'random_get: two 16-byte draws differ\n')
  t.is(sandbox.call('inputLength'), 10)
  const fromEnv = new Sandbox(asHello, { wasi: { args: ['hello'], env: { GREETING_NAME: 'env', EXIT_CODE: '9' } } })
  const exited = fromEnv.run()
  t.is(exited.exitCode, 9)
  t.is(exited.stdout.toString(), 'Hello, env! (argv has 1 entries)\n')
})

test('AssemblyScript reactor: _initialize runs at instantiation, its exports print through WASI', (t) => {
  const sandbox = new Sandbox(asReactor, { wasi: {} })
  t.is(sandbox.call('shout', 2), 2)
  t.is(sandbox.call('shout', 1), 3)
  const output = sandbox.takeOutput()
  t.is(output.stdout.toString(), 'line 1\nline 2\nline 3\n')
  t.false(output.stdoutTruncated)
  t.is(sandbox.takeOutput().stdout.length, 0, 'taking empties the capture')
  t.true(Math.abs(sandbox.call('now') - Date.now()) < 60_000)
  const error = t.throws(() => sandbox.run(), { code: 'ERR_WASM_EXPORT' })
  t.regex(error.message, /reactor/)
})

test('the tutorial buffer guest as a WASI command: run() main, then use its exports and memory', (t) => {
  const sandbox = new Sandbox(bufferCommand, { wasi: {} })
  t.regex(inspect(sandbox), /^Sandbox \{ memorySize: \d+ \(\d+ pages\), wasi: true \}$/)
  const result = sandbox.run()
  t.is(result.exitCode, 0)
  t.is(result.stdout.toString(), 'Write in Wasm, Read in JS, Index 0:\n24\n')
  const memory = sandbox.memory()
  const pointer = sandbox.call('getWasmMemoryBufferPointer')
  t.is(memory[pointer + 0], 24)
  memory[pointer + 1] = 15
  t.is(sandbox.call('readWasmMemoryBufferAndReturnIndexOne'), 15)
})

test('proc_exit leaves the store usable: exports are callable after run(), run() runs once', (t) => {
  const sandbox = new Sandbox(exitThenCall, { wasi: {} })
  const result = sandbox.run()
  t.is(result.exitCode, 7)
  t.is(result.stdout.toString(), 'before exit\n')
  t.is(sandbox.call('runs'), 1)
  t.throws(() => sandbox.run(), { code: 'ERR_WASI_ALREADY_STARTED' })
  const exit = t.throws(() => sandbox.call('exit_now', 5), { code: 'ERR_WASI_EXIT' })
  t.is(exit.exitCode, 5)
  t.is(sandbox.call('runs'), 1)
})

test('captured output is bounded: a 1 GiB flood keeps maxOutputBytes, the guest sees ENOSPC', (t) => {
  const before = process.memoryUsage().rss
  const sandbox = new Sandbox(flood, { wasi: { maxOutputBytes: 1 << 20 } })
  const result = sandbox.run()
  const grown = process.memoryUsage().rss - before
  t.is(result.stdout.length, 1 << 20)
  t.true(result.stdout.every((byte) => byte === 0x78))
  t.true(result.stdoutTruncated)
  t.is(result.stderr.toString(), 'flooded\n')
  t.false(result.stderrTruncated)
  t.is(result.exitCode, 51, 'the last failed write said ENOSPC')
  t.is(sandbox.call('failures'), 16_384 - 16, 'every write past the first 16 of 64 KiB failed')
  t.true(grown < 256 * 1024 * 1024, `RSS grew by ${grown} bytes`)
})

test('the default output bound is 16 MiB', (t) => {
  const result = new Sandbox(flood, { wasi: {} }).run()
  t.is(result.stdout.length, 16 * 1024 * 1024)
  t.true(result.stdoutTruncated)
})

test('maxOutputBytes: 0 captures nothing and a write of exactly the room left succeeds', (t) => {
  const none = new Sandbox(flood, { wasi: { maxOutputBytes: 0 } }).run()
  t.is(none.stdout.length, 0)
  t.true(none.stdoutTruncated)
  t.is(none.stderr.length, 0)
  t.true(none.stderrTruncated)
  const exact = new Sandbox(exitThenCall, { wasi: { maxOutputBytes: 12 } }).run()
  t.is(exact.stdout.toString(), 'before exit\n')
  t.false(exact.stdoutTruncated)
})

test('takeOutput() frees the room: output past the bound resumes after it', (t) => {
  const sandbox = new Sandbox(asReactor, { wasi: { maxOutputBytes: 14 } })
  // The shim aborts when a write fails: a message to stderr, then proc_exit(255).
  const abort = t.throws(() => sandbox.call('shout', 3), { code: 'ERR_WASI_EXIT' })
  t.is(abort.exitCode, 255)
  const first = sandbox.takeOutput()
  t.is(first.stdout.toString(), 'line 1\nline 2\n')
  t.true(first.stdoutTruncated)
  sandbox.call('shout', 1)
  const second = sandbox.takeOutput()
  t.is(second.stdout.toString(), 'line 4\n')
  t.false(second.stdoutTruncated)
})

test('WASI preview 0 (wasi_unstable) guests run too', (t) => {
  t.is(new Sandbox(preview0, { wasi: {} }).run().stdout.toString(), 'hello from wasi_unstable\n')
})

test('JS imports of other modules work beside WASI', (t) => {
  const result = new Sandbox(mixed, { wasi: {}, imports: { env: { pick: () => 4 } } }).run()
  t.is(result.exitCode, 4)
  t.is(result.stdout.toString(), 'picked 4\n')
  const thrown = new Error('no pick')
  const error = t.throws(
    () =>
      new Sandbox(mixed, {
        wasi: {},
        imports: {
          env: {
            pick: () => {
              throw thrown
            },
          },
        },
      }).run(),
    { code: 'ERR_WASM_IMPORT' },
  )
  t.is(error.cause, thrown)
  t.throws(() => new Sandbox(mixed, { wasi: {} }), { code: 'ERR_WASM_LINK', message: /env\.pick/ })
})

test('limits apply during run(): timeout, fuel, memory, traps keep their codes', (t) => {
  const run = (op, options = {}) => new Sandbox(limits, { ...options, wasi: { args: ['limits', op] } }).run()
  const started = Date.now()
  t.throws(() => run('spin', { timeoutMs: 50 }), { code: 'ERR_WASM_TIMEOUT' })
  t.true(Date.now() - started < 5000)
  t.throws(() => run('spin', { fuel: 100_000 }), { code: 'ERR_WASM_OUT_OF_FUEL' })
  t.is(run('grow').exitCode, 0)
  t.is(run('grow', { maxMemoryBytes: 4 * 65536 }).exitCode, 1, 'memory.grow past maxMemoryBytes failed')
  const sandbox = new Sandbox(limits, { wasi: { args: ['limits', 'trap'] } })
  const trap = t.throws(() => sandbox.run(), { code: 'ERR_WASM_TRAP' })
  t.is(trap.kind, 'unreachable')
  t.is(sandbox.takeOutput().stdout.toString(), 'partial output\n', 'output before the trap is kept')
  t.is(run('big').exitCode, 200, 'an exit code of 126 or more is still an exit code, as in node:wasi')
  // The fuel and the deadline apply to the WASI sandbox's later calls as to any other.
  const timed = new Sandbox(limits, { timeoutMs: 50, wasi: { args: ['limits', 'grow'] } })
  t.is(timed.run().exitCode, 0)
})

test('a WASI sleep is real, and a deadline that passes during it stops the guest when it returns', (t) => {
  let started = Date.now()
  t.is(new Sandbox(sleep, { wasi: {} }).run().exitCode, 0)
  t.true(Date.now() - started >= 290, 'slept 300 ms on the monotonic clock')
  started = Date.now()
  t.throws(() => new Sandbox(sleep, { wasi: {}, timeoutMs: 50 }).run(), { code: 'ERR_WASM_TIMEOUT' })
  const elapsed = Date.now() - started
  // Blocking host calls are not interrupted: the guest is stopped at its next wasm instruction.
  t.true(elapsed >= 290 && elapsed < 5000, `stopped after ${elapsed} ms`)
})

test('WASI is opt-in: without the wasi option a WASI import is ERR_WASM_LINK, and run() is refused', (t) => {
  const error = t.throws(() => new Sandbox(cli), { code: 'ERR_WASM_LINK' })
  t.regex(error.message, /wasi_snapshot_preview1\./)
  const plain = new Sandbox('(module (func (export "_start")))')
  t.throws(() => plain.run(), { code: 'ERR_WASI_NOT_ENABLED' })
  t.throws(() => plain.takeOutput(), { code: 'ERR_WASI_NOT_ENABLED' })
  // With it, a module importing nothing from WASI still runs.
  t.deepEqual(
    { ...new Sandbox('(module (func (export "_start")))', { wasi: {} }).run(), stdout: 0, stderr: 0 },
    {
      exitCode: 0,
      stdout: 0,
      stderr: 0,
      stdoutTruncated: false,
      stderrTruncated: false,
    },
  )
})

test('a WASI function that does not exist, or with the wrong signature, is ERR_WASM_LINK', (t) => {
  t.throws(
    () =>
      new Sandbox('(module (import "wasi_snapshot_preview1" "no_such_call" (func)) (func (export "_start")))', {
        wasi: {},
      }),
    { code: 'ERR_WASM_LINK', message: /no_such_call/ },
  )
  t.throws(
    () =>
      new Sandbox('(module (import "wasi_snapshot_preview1" "fd_write" (func (param i32))) (func (export "_start")))', {
        wasi: {},
      }),
    { code: 'ERR_WASM_LINK', message: /fd_write/ },
  )
  t.throws(() => new Sandbox('(module (func (export "_start") (param i32)))', { wasi: {} }).run(), {
    code: 'ERR_WASM_EXPORT',
  })
})

test('no preopen: the first descriptor after stdio does not exist (EBADF)', (t) => {
  const sandbox = new Sandbox(proxy, { wasi: {} })
  t.is(sandbox.call('initialized'), 1, 'the reactor was initialised')
  t.is(sandbox.call('fd_prestat_get', 3, 0), 8)
  t.is(sandbox.call('path_open', 3, 0, 0, 1, 0, 2n, 0n, 0, 64), 8)
})

test('bad wasi options throw TypeError/RangeError with a code before anything runs', (t) => {
  const host = scratch(t)
  const file = join(host, 'file.txt')
  writeFileSync(file, '')
  let ran = 0
  const watched = '(module (import "env" "ran" (func $ran)) (func $init (call $ran)) (start $init))'
  const cases = [
    [5, TypeError, 'ERR_INVALID_ARG_TYPE'],
    [[], TypeError, 'ERR_INVALID_ARG_TYPE'],
    [null, TypeError, 'ERR_INVALID_ARG_TYPE'],
    [{ argv: [] }, TypeError, 'ERR_INVALID_ARG_TYPE'],
    [{ args: 'prog' }, TypeError, 'ERR_INVALID_ARG_TYPE'],
    [{ args: ['prog', 1] }, TypeError, 'ERR_INVALID_ARG_TYPE'],
    [{ args: ['a\0b'] }, TypeError, 'ERR_INVALID_ARG_VALUE'],
    [{ env: ['A=1'] }, TypeError, 'ERR_INVALID_ARG_TYPE'],
    [{ env: { A: 1 } }, TypeError, 'ERR_INVALID_ARG_TYPE'],
    [{ env: { A: undefined } }, TypeError, 'ERR_INVALID_ARG_TYPE'],
    [{ env: { 'A=B': 'c' } }, TypeError, 'ERR_INVALID_ARG_VALUE'],
    [{ env: { A: 'b\0c' } }, TypeError, 'ERR_INVALID_ARG_VALUE'],
    [{ preopens: '/tmp' }, TypeError, 'ERR_INVALID_ARG_TYPE'],
    [{ preopens: { '/work': 'relative/dir' } }, TypeError, 'ERR_INVALID_ARG_VALUE'],
    [{ preopens: { '/work': file } }, TypeError, 'ERR_INVALID_ARG_VALUE'],
    [{ preopens: { '/work': join(host, 'missing') } }, TypeError, 'ERR_INVALID_ARG_VALUE'],
    [{ preopens: { '/work': 5 } }, TypeError, 'ERR_INVALID_ARG_TYPE'],
    [{ preopens: { '/work': { path: host, readonly: 'yes' } } }, TypeError, 'ERR_INVALID_ARG_TYPE'],
    [{ preopens: { '/work': { path: host, mode: 'ro' } } }, TypeError, 'ERR_INVALID_ARG_TYPE'],
    [{ preopens: { '/work': { readonly: true } } }, TypeError, 'ERR_INVALID_ARG_TYPE'],
    [{ preopens: { '': host } }, TypeError, 'ERR_INVALID_ARG_VALUE'],
    [{ stdin: 5 }, TypeError, 'ERR_INVALID_ARG_TYPE'],
    [{ stdin: [1, 2] }, TypeError, 'ERR_INVALID_ARG_TYPE'],
    [{ stdout: 'file' }, TypeError, 'ERR_INVALID_ARG_VALUE'],
    [{ stderr: 2 }, TypeError, 'ERR_INVALID_ARG_TYPE'],
    [{ maxOutputBytes: -1 }, RangeError, 'ERR_OUT_OF_RANGE'],
    [{ maxOutputBytes: 1.5 }, RangeError, 'ERR_OUT_OF_RANGE'],
    [{ maxOutputBytes: 2 ** 31 }, RangeError, 'ERR_OUT_OF_RANGE'],
    [{ maxOutputBytes: '1' }, TypeError, 'ERR_INVALID_ARG_TYPE'],
  ]
  for (const [wasi, type, code] of cases) {
    const error = t.throws(() => new Sandbox(watched, { wasi, imports: { env: { ran: () => ran++ } } }), {
      instanceOf: type,
      code,
    })
    t.truthy(error.message, JSON.stringify(wasi))
  }
  t.is(ran, 0, 'the guest never ran')
  new Sandbox(watched, { wasi: {}, imports: { env: { ran: () => ran++ } } })
  t.is(ran, 1, 'a good option set runs the start function')
})

test('a throwing getter in the wasi options is a TypeError, not a crash', (t) => {
  const wasi = {
    get args() {
      throw new Error('boom')
    },
  }
  t.throws(() => new Sandbox(cli, { wasi }), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
})

test('WASI sandboxes run in worker threads too, beside the main thread’s', async (t) => {
  const path = guestPath('build/wasi-cli.wasip1.wasm')
  const worker = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads')
     const { Module, Sandbox } = require('wasm-memory-sandbox')
     const cli = Module.fromFile(workerData)
     const results = []
     for (let index = 0; index < 3; index++) {
       const { exitCode, stdout } = new Sandbox(cli, { wasi: { args: ['w', 'args', String(index)] } }).run()
       results.push([exitCode, stdout.toString()])
     }
     parentPort.postMessage(results)`,
    { eval: true, workerData: path },
  )
  const fromWorker = new Promise((resolve, reject) => {
    worker.once('message', resolve)
    worker.once('error', reject)
  })
  t.is(runCli(['args', 'main']).stdout.toString(), 'wasi-cli\nargs\nmain\n')
  t.deepEqual(await fromWorker, [
    [0, 'w\nargs\n0\n'],
    [0, 'w\nargs\n1\n'],
    [0, 'w\nargs\n2\n'],
  ])
  await worker.terminate()
})
