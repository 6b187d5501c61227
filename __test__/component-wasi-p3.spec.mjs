// WASI 0.3 commands (examples/components/rust-p3: an async `wasi:cli/run@0.3.0` export with the
// `wasip3` bindings, writing through WASI 0.3 streams, waiting on WASI 0.3 clocks, beside Rust
// std's WASI 0.2): runAsync() and run() give the same result object as WASI 0.2 and preview 1;
// exit codes, streamed output, timeouts of a guest running or waiting on a host future,
// interrupt() and dispose(), and what cannot run synchronously.
import test from 'ava'

import { Component } from 'wasm-memory-sandbox'

import { guestPath } from './helpers/guests.mjs'

const command = Component.fromFile(guestPath('build/p3-command.rust.component.wasm'))
const instantiate = (args, options = {}) =>
  command.instantiate({ ...options, wasi: { args: ['p3-command', ...args], ...options.wasi } })

test('the component is described as a WASI 0.3 command (it exports run@0.3.0 and imports WASI 0.3)', (t) => {
  t.true('wasi:cli/run@0.3.0' in command.exports)
  t.true(Object.keys(command.imports).some((name) => name === 'wasi:cli/stdout@0.3.0'))
})

test('runAsync(): stdout through a WASI 0.3 stream, stderr through WASI 0.2, exit code 0', async (t) => {
  const result = await instantiate(['hello', 'one']).runAsync()
  t.deepEqual(
    { ...result, stdout: result.stdout.toString(), stderr: result.stderr.toString() },
    {
      exitCode: 0,
      stdout: 'hello from WASI 0.3, args: ["p3-command", "hello", "one"]\n',
      stderr: 'a line on stderr through WASI 0.2\n',
      stdoutTruncated: false,
      stderrTruncated: false,
    },
  )
})

test('exit codes: run returning an error is 1, wasi:cli/exit#exit-with-code gives its code', async (t) => {
  t.is((await instantiate(['fail']).runAsync()).exitCode, 1)
  t.is((await instantiate(['exit', '7']).runAsync()).exitCode, 7)
  t.is((await instantiate(['exit', '255']).runAsync()).exitCode, 255)
})

test('run() works on the calling thread for a component without JS imports', (t) => {
  const result = instantiate(['exit', '3']).run()
  t.is(result.exitCode, 3)
  const hello = instantiate(['hello']).run()
  t.regex(hello.stdout.toString(), /^hello from WASI 0\.3/)
})

test('an async import (a WASI 0.3 clock wait) does not block the JS thread during runAsync()', async (t) => {
  const instance = instantiate(['sleep', '300'])
  let ticks = 0
  const timer = setInterval(() => ticks++, 10)
  const started = performance.now()
  const result = await instance.runAsync()
  clearInterval(timer)
  t.is(result.stdout.toString(), 'woke\n')
  t.true(performance.now() - started >= 290)
  t.true(ticks >= 5, `the event loop ran ${ticks} timer ticks meanwhile`)
})

test.serial(
  'a 512 MiB WASI 0.3 stream to a streamed stdout arrives while the guest runs, in bounded memory',
  async (t) => {
    const total = 512 * 1024 * 1024
    let received = 0
    let chunks = 0
    const before = process.memoryUsage().rss
    let peak = before
    const result = await instantiate(['stream', String(total)], {
      wasi: {
        stdout: (chunk) => {
          received += chunk.length
          if (++chunks % 32 === 0) peak = Math.max(peak, process.memoryUsage().rss)
        },
      },
    }).runAsync()
    t.is(result.exitCode, 0)
    t.is(received, total)
    t.is(result.stderr.toString(), 'done\n')
    t.true(chunks > 16, `${chunks} chunks`)
    t.true((peak - before) / 2 ** 20 < 128, `resident memory grew ${((peak - before) / 2 ** 20).toFixed(1)} MiB`)
  },
)

test('timeoutMs stops a guest that spins and one that waits forever on a host future', async (t) => {
  const timeout = { code: 'ERR_WASM_TIMEOUT' }
  await t.throwsAsync(instantiate(['spin'], { timeoutMs: 100 }).runAsync(), timeout)
  const started = performance.now()
  await t.throwsAsync(instantiate(['sleep', '100000'], { timeoutMs: 100 }).runAsync(), timeout)
  t.true(performance.now() - started < 5_000)
  // The same on the calling thread.
  t.throws(() => instantiate(['sleep', '100000'], { timeoutMs: 100 }).run(), timeout)
})

test('interrupt through dispose(): a guest waiting on a host future stops, the Promise rejects', async (t) => {
  const instance = instantiate(['sleep', '100000'])
  const running = instance.runAsync()
  await new Promise((resolve) => setTimeout(resolve, 50))
  instance.dispose()
  await t.throwsAsync(running, { code: 'ERR_SANDBOX_DISPOSED' })
})

test('fuel counts in WASI 0.3 guests too', async (t) => {
  await t.throwsAsync(instantiate(['spin'], { fuel: 1_000_000 }).runAsync(), { code: 'ERR_WASM_OUT_OF_FUEL' })
})

test('a WASI 0.3 component needs the wasi option, as any WASI component', (t) => {
  t.throws(() => command.instantiate(), { code: 'ERR_WASM_LINK', message: /wasi/ })
})

const withImport = Component.fromFile(guestPath('build/p3-host.rust.component.wasm'))

test('a WASI 0.3 component with JS imports: runAsync() calls them on the JS thread; run() says to use runAsync()', async (t) => {
  const logged = []
  const log = (message) => {
    logged.push(message)
    return message.length
  }
  const instance = withImport.instantiate({ imports: { log }, wasi: { args: ['p3-host', 'one', 'three'] } })
  const result = await instance.runAsync()
  t.is(result.exitCode, 0)
  t.deepEqual(logged, ['one', 'three'])
  t.is(result.stdout.toString(), 'logged 8 bytes\n')
  const sync = withImport.instantiate({ imports: { log }, wasi: { args: ['p3-host', 'x'] } })
  t.throws(() => sync.run(), { code: 'ERR_WASM_ASYNC_REQUIRED', message: /use callAsync\(\) or runAsync\(\)/ })
  // The instance is still usable after the refusal.
  t.is((await sync.runAsync()).exitCode, 0)
  t.deepEqual(logged, ['one', 'three', 'x'])
})

test('a JS import of a WASI 0.3 component may return a Promise', async (t) => {
  const log = async (message) => {
    await new Promise((resolve) => setTimeout(resolve, 5))
    return message.length * 2
  }
  const result = await withImport.instantiate({ imports: { log }, wasi: { args: ['p3-host', 'ab', 'cde'] } }).runAsync()
  t.is(result.stdout.toString(), 'logged 10 bytes\n')
})
