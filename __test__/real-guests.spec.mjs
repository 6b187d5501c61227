import test from 'ava'

import { Module, Sandbox } from 'wasm-memory-sandbox'

import { guestPath } from './helpers/guests.mjs'

// Built from examples/guests/ by scripts/build-guests.mjs (run by `npm test`).
const assemblyScript = Module.fromFile(guestPath('build/checksum.as.wasm'))
const rustText = Module.fromFile(guestPath('build/text.rust.wasm'))

/** Reads an AssemblyScript string (UTF-16, its byte length in the 4 bytes before it) from a view. */
function readAssemblyScriptString(memory, pointer) {
  const byteLength = memory.readUInt32LE(pointer - 4)
  return memory.toString('utf16le', pointer, pointer + byteLength)
}

function assemblyScriptSandbox(onAbort) {
  let sandbox
  sandbox = new Sandbox(assemblyScript, {
    imports: {
      env: {
        abort(message, file, line, column) {
          const memory = sandbox.memory()
          onAbort(readAssemblyScriptString(memory, message), readAssemblyScriptString(memory, file), line, column)
        },
      },
    },
  })
  return sandbox
}

test('AssemblyScript guest: it imports env.abort and exports functions typed by its compiler', (t) => {
  t.deepEqual(assemblyScript.imports, [
    { module: 'env', name: 'abort', kind: 'function', params: ['i32', 'i32', 'i32', 'i32'], results: [] },
  ])
  const exports = Object.fromEntries(assemblyScript.exports.map((entry) => [entry.name, entry]))
  t.deepEqual(exports.checksum.params, ['i32', 'i32'])
  t.is(exports.memory.kind, 'memory')
})

test('AssemblyScript guest: JS writes bytes through the view, the guest hashes them in place', (t) => {
  const sandbox = assemblyScriptSandbox(() => t.fail('no abort expected'))
  const input = Buffer.from('zero-copy bytes from JavaScript')
  const pointer = sandbox.call('alloc', input.length)
  input.copy(sandbox.memory(), pointer)
  let expected = 0
  for (const byte of input) expected = (Math.imul(expected, 31) + byte) >>> 0
  t.is(sandbox.call('checksum', pointer, input.length) >>> 0, expected)
})

test('AssemblyScript guest: the guest fills memory and JS sees it through the same view', (t) => {
  const sandbox = assemblyScriptSandbox(() => t.fail('no abort expected'))
  const view = sandbox.memory()
  const pointer = sandbox.call('alloc', 16)
  sandbox.call('fill', pointer, 16, 7)
  t.deepEqual([...view.subarray(pointer, pointer + 16)], Array(16).fill(7))
})

test('AssemblyScript guest: an assert failure calls env.abort with its message, then traps', (t) => {
  const aborts = []
  const sandbox = assemblyScriptSandbox((...details) => aborts.push(details))
  const error = t.throws(() => sandbox.call('requirePositive', 0))
  t.is(error.code, 'ERR_WASM_TRAP')
  t.is(error.kind, 'unreachable')
  t.is(aborts.length, 1)
  t.is(aborts[0][0], 'count must be positive')
  t.regex(aborts[0][1], /index\.ts$/)
  t.is(sandbox.call('requirePositive', 3), 3)
})

test('AssemblyScript guest: an env.abort that throws hands its error to the caller as cause', (t) => {
  const sandbox = assemblyScriptSandbox((message) => {
    throw new Error(`guest aborted: ${message}`)
  })
  const error = t.throws(() => sandbox.call('requirePositive', -1))
  t.is(error.code, 'ERR_WASM_IMPORT')
  t.is(error.cause.message, 'guest aborted: count must be positive')
})

test('Rust guest: text written through the view is upper-cased in place by the guest', (t) => {
  const sandbox = new Sandbox(rustText)
  const text = Buffer.from('hello wasm world, from node')
  const pointer = sandbox.call('alloc', text.length)
  t.not(pointer, 0)
  const view = sandbox.memory()
  text.copy(view, pointer)
  sandbox.call('to_upper', pointer, text.length)
  t.is(view.toString('utf8', pointer, pointer + text.length), 'HELLO WASM WORLD, FROM NODE')
  t.is(sandbox.call('count_words', pointer, text.length), 5)
})

test('Rust guest: its arena runs out cleanly and resets', (t) => {
  const sandbox = new Sandbox(rustText)
  t.not(sandbox.call('alloc', 60_000), 0)
  t.is(sandbox.call('alloc', 60_000), 0)
  sandbox.call('reset')
  t.not(sandbox.call('alloc', 60_000), 0)
})

test('Rust guest: a range past linear memory traps instead of touching host memory', (t) => {
  const sandbox = new Sandbox(rustText)
  const error = t.throws(() => sandbox.call('to_upper', sandbox.memorySize - 4, 64))
  t.is(error.code, 'ERR_WASM_TRAP')
  t.is(error.kind, 'memory_out_of_bounds')
})

test('the plugin example runs: imports, limits and the Rust guest', async (t) => {
  const { spawnSync } = await import('node:child_process')
  const { fileURLToPath } = await import('node:url')
  const example = fileURLToPath(new URL('../examples/plugin.js', import.meta.url))
  const run = spawnSync(process.execPath, [example], { encoding: 'utf8', timeout: 60_000 })
  t.is(run.status, 0, run.stderr)
  t.regex(run.stdout, /\[plugin\] hello from the plugin/)
  t.regex(run.stdout, /memory\.grow returned -1/)
  t.regex(run.stdout, /spin\(\) stopped: ERR_WASM_TIMEOUT/)
  t.regex(run.stdout, /rust to_upper: SHOUT THIS THROUGH LINEAR MEMORY/)
})
