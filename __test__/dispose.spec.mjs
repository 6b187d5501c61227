import test from 'ava'

import { BufferSandbox, Sandbox, bufferGuestWasm } from 'wasm-memory-sandbox'

import { detachedIterationMessage, nodeLine, transferOfExternalBufferThrows } from './helpers/node-line.mjs'

const callsAfterDispose = {
  getWasmMemoryBufferPointer: (sandbox) => sandbox.getWasmMemoryBufferPointer(),
  storeValueInWasmMemoryBufferIndexZero: (sandbox) => sandbox.storeValueInWasmMemoryBufferIndexZero(1),
  readWasmMemoryBufferAndReturnIndexOne: (sandbox) => sandbox.readWasmMemoryBufferAndReturnIndexOne(),
  memory: (sandbox) => sandbox.memory(),
  buffer: (sandbox) => sandbox.buffer(),
  grow: (sandbox) => sandbox.grow(0),
  memorySize: (sandbox) => sandbox.memorySize,
}

test('dispose() detaches every view handed out', (t) => {
  const sandbox = new BufferSandbox()
  const memory = sandbox.memory()
  const buffer = sandbox.buffer()
  sandbox.dispose()
  t.is(memory.length, 0)
  t.is(buffer.length, 0)
  t.is(memory.buffer.byteLength, 0)
})

test('dispose() also detaches views replaced after growth (the buffer guest in a Sandbox)', (t) => {
  const sandbox = new Sandbox(bufferGuestWasm())
  const beforeGrowth = sandbox.memory()
  sandbox.grow(1)
  const afterGrowth = sandbox.memory()
  t.is(afterGrowth.length, 2 * 65536)
  sandbox.dispose()
  t.is(beforeGrowth.length, 0)
  t.is(afterGrowth.length, 0)
})

test('a disposed sandbox’s detached views read nothing and writes to them go nowhere', (t) => {
  const sandbox = new BufferSandbox()
  const memory = sandbox.memory()
  const pointer = sandbox.getWasmMemoryBufferPointer()
  sandbox.storeValueInWasmMemoryBufferIndexZero(24)
  sandbox.dispose()
  t.is(memory[pointer], undefined)
  memory[pointer] = 99
  t.is(memory[pointer], undefined)
  t.throws(() => [...memory], { instanceOf: TypeError, message: detachedIterationMessage })
  t.throws(() => memory.readUInt8(pointer), { instanceOf: RangeError })
  const other = new BufferSandbox()
  t.is(other.buffer()[0], 0)
})

for (const [name, call] of Object.entries(callsAfterDispose)) {
  test(`${name} after dispose() throws ERR_SANDBOX_DISPOSED`, (t) => {
    const sandbox = new BufferSandbox()
    sandbox.dispose()
    const error = t.throws(() => call(sandbox))
    t.is(error.code, 'ERR_SANDBOX_DISPOSED')
    t.regex(error.message, /disposed/)
  })
}

test('a second dispose() is a no-op, and disposed reports the state', (t) => {
  const sandbox = new BufferSandbox()
  t.false(sandbox.disposed)
  sandbox.dispose()
  t.true(sandbox.disposed)
  t.notThrows(() => sandbox.dispose())
  t.notThrows(() => sandbox[Symbol.dispose]())
  t.true(sandbox.disposed)
})

test('[Symbol.dispose]() disposes, so `using` works', (t) => {
  const sandbox = new BufferSandbox()
  const memory = sandbox.memory()
  sandbox[Symbol.dispose]()
  t.true(sandbox.disposed)
  t.is(memory.length, 0)
})

test('structuredClone of a view’s buffer is an independent copy', (t) => {
  const sandbox = new BufferSandbox()
  sandbox.storeValueInWasmMemoryBufferIndexZero(24)
  const pointer = sandbox.getWasmMemoryBufferPointer()
  const memory = sandbox.memory()
  const copy = new Uint8Array(structuredClone(memory.buffer))
  t.is(copy[pointer], 24)
  copy[pointer] = 25
  t.is(memory[pointer], 24, 'the copy does not reach guest memory')
  sandbox.dispose()
  t.is(memory.length, 0)
  t.is(copy[pointer], 25, 'the copy is plain memory of its own')
})

test(`transferring a view’s buffer ${transferOfExternalBufferThrows ? 'throws DataCloneError' : 'gives an independent copy'} on Node ${nodeLine}, and the view stays attached`, (t) => {
  const sandbox = new BufferSandbox()
  sandbox.storeValueInWasmMemoryBufferIndexZero(24)
  const pointer = sandbox.getWasmMemoryBufferPointer()
  const memory = sandbox.memory()
  if (transferOfExternalBufferThrows) {
    t.throws(() => structuredClone(memory.buffer, { transfer: [memory.buffer] }), { name: 'DataCloneError' })
  } else {
    const copy = new Uint8Array(structuredClone(memory.buffer, { transfer: [memory.buffer] }))
    t.is(copy[pointer], 24)
    copy[pointer] = 25
    t.is(memory[pointer], 24, 'the copy does not reach guest memory')
  }
  t.is(memory.length, 65536, 'the view was not detached by the transfer')
  memory[pointer + 1] = 15
  t.is(sandbox.readWasmMemoryBufferAndReturnIndexOne(), 15, 'and is still the guest’s memory')
  sandbox.dispose()
  t.is(memory.length, 0)
})

test('disposing one sandbox leaves another usable', (t) => {
  const kept = new BufferSandbox()
  const keptMemory = kept.memory()
  const dropped = new BufferSandbox()
  dropped.memory()
  dropped.dispose()
  kept.storeValueInWasmMemoryBufferIndexZero(7)
  t.is(keptMemory[kept.getWasmMemoryBufferPointer()], 7)
})
