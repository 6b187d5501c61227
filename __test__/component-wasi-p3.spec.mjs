// WASI 0.3 commands (examples/components/rust-p3: an async `wasi:cli/run@0.3.0` export with the
// `wasip3` bindings, writing through WASI 0.3 streams, waiting on WASI 0.3 clocks, beside Rust
// std's WASI 0.2): runAsync() and run() give the same result object as WASI 0.2 and preview 1;
// exit codes, streamed output, timeouts of a guest running or waiting on a host future,
// interrupt() and dispose(), and what cannot run synchronously.
import test from 'ava'

import { Component } from 'wasm-memory-sandbox'

import { guestPath } from './helpers/guests.mjs'
import { streamedMemory } from './helpers/streamed-memory.mjs'

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
  let timerFired = false
  setTimeout(() => (timerFired = true), 20)
  const started = performance.now()
  const result = await instance.runAsync()
  t.is(result.stdout.toString(), 'woke\n')
  t.true(performance.now() - started >= 290)
  t.true(timerFired, 'a 20 ms timer set when the run began fired before its 300 ms wait ended')
})

test('a guest streaming 2 GiB to a slower callback waits for it: the host holds a bounded part of it', async (t) => {
  const streamed = await streamedMemory('p3', 2 ** 31)
  t.is(streamed.received, 2 ** 31)
  t.is(streamed.stderr, 'done\n')
  // Many deliveries, each at most about 1 MiB (what may be in flight).
  t.true(streamed.chunks > 512, `${streamed.chunks} chunks`)
  // Measured here: 28-30 MiB in every run (V8's heap and the chunks between collections);
  // holding the stream would take 2 GiB. (Each chunk's Buffer was once kept alive until the
  // guest paused, which grew it by 130-850 MiB.)
  t.true(streamed.growthMiB < 128, `resident memory grew ${streamed.growthMiB} MiB while 2 GiB streamed`)
})

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

test('interrupt() stops a WASI 0.3 guest waiting on a host future', async (t) => {
  const instance = instantiate(['sleep', '100000'])
  const running = instance.runAsync()
  await new Promise((resolve) => setTimeout(resolve, 50))
  const started = performance.now()
  t.true(instance.interrupt())
  await t.throwsAsync(running, { code: 'ERR_WASM_INTERRUPTED' })
  t.true(performance.now() - started < 1_000)
})

test('an async export is a JS function that returns a Promise, and does not block the event loop', async (t) => {
  const instance = withImport.instantiate({ imports: { log: () => 0 }, wasi: { args: ['p3-host'] } })
  let timerFired = false
  setTimeout(() => (timerFired = true), 10)
  const pending = instance.exports.slowAdd(40, 2, 100)
  t.true(pending instanceof Promise)
  t.is(await pending, 42)
  t.true(timerFired)
  // Calls queue behind each other, as callAsync() calls do.
  t.deepEqual(await Promise.all([instance.exports.slowAdd(1, 2, 5), instance.exports.slowAdd(3, 4, 5)]), [3, 7])
  await t.throwsAsync(instance.exports.slowAdd(1, 'x', 0), { instanceOf: TypeError })
})
