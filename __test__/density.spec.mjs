import { spawnSync } from 'node:child_process'

import test from 'ava'

// Runs `script` in a fresh Node with a small BufferSandbox pool, so filling it is quick.
function withPool(slots, script) {
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8',
    env: { ...process.env, WASM_MEMORY_SANDBOX_BUFFER_SLOTS: String(slots) },
    timeout: 60_000,
  })
  if (run.status !== 0) throw new Error(run.stderr)
  return JSON.parse(run.stdout)
}

test('a full BufferSandbox pool throws ERR_SANDBOX_LIMIT naming the limit and how to raise it', (t) => {
  const result = withPool(
    8,
    `import { BufferSandbox } from 'wasm-memory-sandbox'
     const live = []
     let error
     try { for (let i = 0; i < 9; i++) live.push(new BufferSandbox()) } catch (caught) { error = caught }
     live[0].storeValueInWasmMemoryBufferIndexZero(1)
     console.log(JSON.stringify({ created: live.length, code: error?.code, message: error?.message, usable: live[0].buffer()[0] }))`,
  )
  t.is(result.created, 8)
  t.is(result.code, 'ERR_SANDBOX_LIMIT')
  t.regex(result.message, /all 8 BufferSandbox slots are in use/)
  t.regex(result.message, /WASM_MEMORY_SANDBOX_BUFFER_SLOTS/)
  t.regex(result.message, /dispose\(\)/)
  t.is(result.usable, 1, 'the sandboxes already made stay usable')
})

test('dispose() returns the slot at once: a full pool serves a synchronous create/dispose loop forever', (t) => {
  const result = withPool(
    4,
    `import { BufferSandbox } from 'wasm-memory-sandbox'
     const kept = [new BufferSandbox(), new BufferSandbox(), new BufferSandbox()]
     let made = 0
     for (let i = 0; i < 10000; i++) {
       const sandbox = new BufferSandbox()
       sandbox.storeValueInWasmMemoryBufferIndexZero(i & 0xff)
       const view = sandbox.memory()
       sandbox.dispose()
       if (view.length !== 0) throw new Error('a view survived dispose()')
       made++
     }
     console.log(JSON.stringify({ made, kept: kept.map((sandbox) => sandbox.memorySize) }))`,
  )
  t.is(result.made, 10000)
  t.deepEqual(result.kept, [65536, 65536, 65536])
})

test('a reused slot is zeroed and never visible through an old view', (t) => {
  const result = withPool(
    1,
    `import { BufferSandbox } from 'wasm-memory-sandbox'
     const first = new BufferSandbox()
     const oldView = first.memory()
     oldView.fill(0xab)
     first.dispose()
     const second = new BufferSandbox()
     console.log(JSON.stringify({ oldLength: oldView.length, reusedHasOldBytes: second.memory().includes(0xab) }))`,
  )
  t.deepEqual(result, { oldLength: 0, reusedHasOldBytes: false })
})
