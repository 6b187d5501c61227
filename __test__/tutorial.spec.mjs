import { spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { inspect } from 'node:util'

import test from 'ava'

import { BufferSandbox } from 'wasm-memory-sandbox'

const repoRoot = fileURLToPath(new URL('..', import.meta.url))

test('the tutorial through memory(): wasm writes 24 and JS reads it, JS writes 15 and wasm reads it', (t) => {
  const sandbox = new BufferSandbox()
  t.is(sandbox.storeValueInWasmMemoryBufferIndexZero(24), undefined)
  const wasmMemory = sandbox.memory()
  const bufferPointer = sandbox.getWasmMemoryBufferPointer()
  t.is(wasmMemory[bufferPointer + 0], 24)
  wasmMemory[bufferPointer + 1] = 15
  t.is(sandbox.readWasmMemoryBufferAndReturnIndexOne(), 15)
})

test('the tutorial through buffer(): the 2-byte view is the guest buffer', (t) => {
  const sandbox = new BufferSandbox()
  const buffer = sandbox.buffer()
  t.true(Buffer.isBuffer(buffer))
  t.is(buffer.length, 2)
  sandbox.storeValueInWasmMemoryBufferIndexZero(24)
  t.is(buffer[0], 24)
  buffer[1] = 15
  t.is(sandbox.readWasmMemoryBufferAndReturnIndexOne(), 15)
})

test('memory() is a Buffer over the whole linear memory, one 64 KiB page for the buffer guest', (t) => {
  const sandbox = new BufferSandbox()
  const memory = sandbox.memory()
  t.true(Buffer.isBuffer(memory))
  t.is(memory.length, 65536)
  t.is(sandbox.memorySize, 65536)
  const pointer = sandbox.getWasmMemoryBufferPointer()
  t.true(Number.isInteger(pointer) && pointer > 0 && pointer + 2 <= memory.length)
})

test('two sandboxes do not share memory', (t) => {
  const first = new BufferSandbox()
  const second = new BufferSandbox()
  first.storeValueInWasmMemoryBufferIndexZero(24)
  second.storeValueInWasmMemoryBufferIndexZero(99)
  t.is(first.buffer()[0], 24)
  t.is(second.buffer()[0], 99)
  first.buffer()[1] = 15
  t.is(first.readWasmMemoryBufferAndReturnIndexOne(), 15)
  t.is(second.readWasmMemoryBufferAndReturnIndexOne(), 0)
  first.memory().fill(0xab)
  t.false(second.memory().includes(0xab))
  t.not(first.memory().buffer, second.memory().buffer)
})

test('util.inspect shows the memory size and the buffer pointer, not {}', (t) => {
  const sandbox = new BufferSandbox()
  const shown = inspect(sandbox)
  t.regex(shown, /^BufferSandbox \{ memorySize: 65536 \(1 pages\), bufferPointer: \d+, bufferSize: 2 \}$/)
  t.true(shown.includes(`bufferPointer: ${sandbox.getWasmMemoryBufferPointer()}`))
  sandbox.dispose()
  t.is(inspect(sandbox), 'BufferSandbox { disposed: true }')
})

test('the package loads with require() as well as import', (t) => {
  const require = createRequire(import.meta.url)
  const required = require('wasm-memory-sandbox')
  t.is(required.BufferSandbox, BufferSandbox)
})

test('the demo prints the tutorial scenario', (t) => {
  const demo = spawnSync(process.execPath, ['examples/tutorial.js'], { cwd: repoRoot, encoding: 'utf8' })
  t.is(demo.status, 0, demo.stderr)
  t.is(demo.stdout, 'Write in Wasm, Read in JS, Index 0:\n24\nWrite in JS, Read in Wasm, Index 1:\n15\n')
})
