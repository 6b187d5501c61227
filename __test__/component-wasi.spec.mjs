// A WASI 0.2 command component (examples/components/rust-command: Rust std for wasm32-wasip2)
// run by instance.run(): arguments, environment, a preopened directory, captured stdout and
// stderr, the exit code; WASI is opt-in and grants nothing beyond what the options give.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import test from 'ava'

import { Component } from 'wasm-memory-sandbox'

import { guestPath } from './helpers/guests.mjs'
import { mirrorImports } from './helpers/mirror.mjs'

const command = Component.fromFile(guestPath('build/command.rust.component.wasm'))
const FILE_CONTENT = 'the content of hello.txt\nsecond line ✓\n'

/** A host directory holding hello.txt, removed when the test ends. */
function dataDirectory(t) {
  const directory = mkdtempSync(join(tmpdir(), 'component-wasi-spec-'))
  t.teardown(() => rmSync(directory, { recursive: true, force: true }))
  writeFileSync(join(directory, 'hello.txt'), FILE_CONTENT)
  return directory
}

test('run(): args, env and a preopened file reach the guest; stdout and stderr are captured; exit code 0', (t) => {
  const data = dataDirectory(t)
  const instance = command.instantiate({
    wasi: { args: ['command', '/data/hello.txt'], preopens: { '/data': data }, env: { EXIT_CODE: '0' } },
  })
  const result = instance.run()
  t.is(result.exitCode, 0, result.stderr.toString())
  const stdout = result.stdout.toString()
  t.true(stdout.startsWith('hello from the command, args: ["command", "/data/hello.txt"]\n'), stdout)
  t.true(stdout.endsWith(FILE_CONTENT), stdout)
  t.is(result.stderr.toString(), 'a line on stderr\n')
  t.false(result.stdoutTruncated)
  t.false(result.stderrTruncated)
})

test('run(): a non-zero exit code arrives as 1 (WASI 0.2 exit carries only ok or err)', (t) => {
  const data = dataDirectory(t)
  // Rust's process::exit(3) on wasm32-wasip2 calls wasi:cli/exit#exit(err): the code itself is not
  // part of WASI 0.2's exit, only ok/err, so any non-zero code is 1 (as on jco and wasmtime's CLI).
  const result = command
    .instantiate({
      wasi: { args: ['command', '/data/hello.txt'], preopens: { '/data': data }, env: { EXIT_CODE: '3' } },
    })
    .run()
  t.is(result.exitCode, 1)
  t.true(result.stdout.toString().endsWith(FILE_CONTENT))
  // Without EXIT_CODE, and without a file argument, the command exits 0.
  const plain = command.instantiate({ wasi: { args: ['command'] } }).run()
  t.is(plain.exitCode, 0)
  t.is(plain.stdout.toString(), 'hello from the command, args: ["command"]\n')
})

test('run(): without a preopen the guest cannot read the file, by its guest path or its host path', (t) => {
  const data = dataDirectory(t)
  for (const path of ['/data/hello.txt', join(data, 'hello.txt')]) {
    const result = command.instantiate({ wasi: { args: ['command', path] } }).run()
    t.not(result.exitCode, 0)
    t.false(result.stdout.toString().includes('the content of hello.txt'), path)
    t.regex(result.stderr.toString(), new RegExp(`cannot read ${path.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`))
  }
  // A preopen gives that directory only: a path outside it fails too.
  const outside = command
    .instantiate({ wasi: { args: ['command', '/data/../../etc/hostname'], preopens: { '/data': data } } })
    .run()
  t.not(outside.exitCode, 0)
  t.regex(outside.stderr.toString(), /cannot read/)
})

test('run(): the environment is only the env option (nothing of the host leaks)', (t) => {
  process.env.EXIT_CODE = '5'
  t.teardown(() => delete process.env.EXIT_CODE)
  // The host's EXIT_CODE=5 does not reach the guest: it exits 0.
  t.is(command.instantiate({ wasi: { args: ['command'] } }).run().exitCode, 0)
})

test('run(): maxOutputBytes caps the captured output and says it did', (t) => {
  // Rust's println! panics when stdout fails, so the guest traps once the capture is full; what
  // fitted is kept, and takeOutput() says the rest was cut.
  const instance = command.instantiate({ wasi: { args: ['command'], maxOutputBytes: 10 } })
  t.throws(() => instance.run(), { code: 'ERR_WASM_TRAP' })
  const result = instance.takeOutput()
  t.true(result.stdoutTruncated)
  t.true(result.stdout.length <= 10)
  t.is(result.stdout.toString(), 'hello from the command'.slice(0, result.stdout.length))
})

test('run() twice on one instance is ERR_WASI_ALREADY_STARTED', (t) => {
  const instance = command.instantiate({ wasi: { args: ['command'] } })
  t.is(instance.run().exitCode, 0)
  t.throws(() => instance.run(), { code: 'ERR_WASI_ALREADY_STARTED' })
  // Another instance of the same component runs.
  t.is(command.instantiate({ wasi: { args: ['command'] } }).run().exitCode, 0)
})

test('run() on a component that is not a command, or without wasi, is a coded error', (t) => {
  const types = Component.fromFile(guestPath('build/types.rust.component.wasm'))
  const imports = {
    'demo:types/logger': { log() {}, logPoint() {} },
    'demo:types/host': { Kv: class {}, fetchNumber: () => 0 },
    'demo:types/mirror': mirrorImports(),
    hostName: () => 'not a command',
  }
  const withoutWasi = types.instantiate({ imports })
  t.throws(() => withoutWasi.run(), { code: 'ERR_WASI_NOT_ENABLED', message: /`wasi` option/ })
  t.is(withoutWasi.exports.api.echoU8(1), 1)
  const withWasi = types.instantiate({ imports, wasi: {} })
  const error = t.throws(() => withWasi.run())
  t.regex(error?.code ?? '', /^ERR_/)
  t.regex(error?.message ?? '', /wasi:cli\/run/)
  t.is(withWasi.exports.api.echoU8(2), 2)
})
