import test from 'ava'

import { BufferSandbox, Sandbox, bufferGuestWasm } from 'wasm-memory-sandbox'

import { nodeLine, transferOfExternalBufferThrows } from './helpers/node-line.mjs'

test('zero-copy, wasm to JS: a view taken before the guest writes sees the write with no call in between', (t) => {
  const sandbox = new BufferSandbox()
  const memory = sandbox.memory()
  const buffer = sandbox.buffer()
  const pointer = sandbox.getWasmMemoryBufferPointer()
  for (const value of [1, 24, 200, 255, 0]) {
    sandbox.storeValueInWasmMemoryBufferIndexZero(value)
    t.is(memory[pointer], value)
    t.is(buffer[0], value)
  }
})

test('zero-copy, JS to wasm: a byte written through a view is what the guest reads next', (t) => {
  const sandbox = new BufferSandbox()
  const memory = sandbox.memory()
  const pointer = sandbox.getWasmMemoryBufferPointer()
  for (const value of [15, 0, 128, 255]) {
    memory[pointer + 1] = value
    t.is(sandbox.readWasmMemoryBufferAndReturnIndexOne(), value)
  }
  sandbox.buffer().writeUInt8(77, 1)
  t.is(sandbox.readWasmMemoryBufferAndReturnIndexOne(), 77)
})

test('memory() and buffer() are views of the same bytes, not copies of each other', (t) => {
  const sandbox = new BufferSandbox()
  const memory = sandbox.memory()
  const buffer = sandbox.buffer()
  const pointer = sandbox.getWasmMemoryBufferPointer()
  buffer[0] = 42
  t.is(memory[pointer], 42)
  memory[pointer + 1] = 43
  t.is(buffer[1], 43)
})

test('memory() returns the same Buffer again while the memory has not grown', (t) => {
  const sandbox = new BufferSandbox()
  const first = sandbox.memory()
  t.is(sandbox.memory(), first)
  t.is(sandbox.buffer(), sandbox.buffer())
  sandbox.storeValueInWasmMemoryBufferIndexZero(5)
  t.is(sandbox.memory(), first)
})

test('a BufferSandbox memory is one fixed page: grow(0) succeeds, growing more throws and changes nothing', (t) => {
  const sandbox = new BufferSandbox()
  const memory = sandbox.memory()
  t.is(sandbox.grow(0), 1)
  const error = t.throws(() => sandbox.grow(1))
  t.is(error.code, 'ERR_WASM_MEMORY_LIMIT')
  t.regex(error.message, /fixed at one 64 KiB page/)
  t.regex(error.message, /new Sandbox\(bufferGuestWasm\(\)\)/)
  t.is(sandbox.memorySize, 65536)
  t.is(sandbox.memory(), memory)
  sandbox.storeValueInWasmMemoryBufferIndexZero(24)
  t.is(memory[sandbox.getWasmMemoryBufferPointer()], 24)
})

test('the buffer guest in a general Sandbox grows; old views keep their bytes and a new view covers the new size', (t) => {
  const sandbox = new Sandbox(bufferGuestWasm())
  const before = sandbox.memory()
  const pointer = sandbox.call('getWasmMemoryBufferPointer')
  before[pointer + 1] = 15
  t.is(sandbox.grow(3), 1)
  t.is(sandbox.memorySize, 4 * 65536)
  t.is(before.length, 65536)
  const after = sandbox.memory()
  t.not(after, before)
  t.is(after.length, 4 * 65536)
  // Same base: a write through either view lands in the one memory.
  t.is(after[pointer + 1], 15)
  before[pointer + 1] = 16
  t.is(after[pointer + 1], 16)
  t.is(sandbox.call('readWasmMemoryBufferAndReturnIndexOne'), 16)
  sandbox.call('storeValueInWasmMemoryBufferIndexZero', 33)
  t.is(before[pointer], 33)
  t.is(sandbox.grow(0), 4)
  t.is(sandbox.memory(), after)
})

test('growth past what wasm32 allows throws ERR_WASM_MEMORY_LIMIT and changes nothing', (t) => {
  const sandbox = new Sandbox(bufferGuestWasm())
  const error = t.throws(() => sandbox.grow(65536))
  t.is(error.code, 'ERR_WASM_MEMORY_LIMIT')
  t.regex(error.message, /cannot grow memory by 65536 pages from 1 pages/)
  t.is(sandbox.memorySize, 65536)
  t.is(sandbox.memory().length, 65536)
})

test('postMessage of a view (no transfer list) sends a copy, never guest memory', async (t) => {
  const { MessageChannel, receiveMessageOnPort } = await import('node:worker_threads')
  const sandbox = new BufferSandbox()
  const memory = sandbox.memory()
  const pointer = sandbox.getWasmMemoryBufferPointer()
  sandbox.storeValueInWasmMemoryBufferIndexZero(24)
  const { port1, port2 } = new MessageChannel()
  try {
    port1.postMessage(memory)
    const received = receiveMessageOnPort(port2).message
    t.is(memory.length, 65536, 'the view stays attached')
    t.is(received[pointer], 24)
    received[pointer] = 1
    t.is(memory[pointer], 24)
    t.is(sandbox.memory(), memory)
  } finally {
    port1.close()
  }
})

test(`postMessage of a view with its buffer in the transfer list ${transferOfExternalBufferThrows ? 'throws DataCloneError' : 'sends a copy'} on Node ${nodeLine}`, async (t) => {
  const { MessageChannel, receiveMessageOnPort } = await import('node:worker_threads')
  const sandbox = new BufferSandbox()
  const memory = sandbox.memory()
  const pointer = sandbox.getWasmMemoryBufferPointer()
  sandbox.storeValueInWasmMemoryBufferIndexZero(24)
  const { port1, port2 } = new MessageChannel()
  try {
    if (transferOfExternalBufferThrows) {
      t.throws(() => port1.postMessage(memory, [memory.buffer]), { name: 'DataCloneError' })
      t.is(receiveMessageOnPort(port2), undefined, 'nothing was sent')
    } else {
      port1.postMessage(memory, [memory.buffer])
      const received = receiveMessageOnPort(port2).message
      t.is(received[pointer], 24)
      received[pointer] = 1
      t.is(memory[pointer], 24, 'the copy does not reach guest memory')
    }
    t.is(memory.length, 65536, 'the view stays attached')
    t.is(sandbox.memory(), memory)
  } finally {
    port1.close()
  }
})
