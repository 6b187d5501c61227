import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

import test from 'ava'

const child = fileURLToPath(new URL('helpers/view-outlives-sandbox.mjs', import.meta.url))

test('views outlive their garbage-collected sandbox and never show another sandbox’s bytes', (t) => {
  // A child process: a clean heap, and --expose-gc without affecting the other tests.
  const run = spawnSync(process.execPath, ['--expose-gc', child], { encoding: 'utf8', timeout: 60_000 })
  t.is(run.status, 0, run.stderr)
  t.deepEqual(JSON.parse(run.stdout), { collected: true, first: 7, second: 15, length: 65536 })
})

test('a sandbox whose import closes over it is garbage-collected (no native reference cycle)', (t) => {
  const script = fileURLToPath(new URL('helpers/import-cycle-collected.mjs', import.meta.url))
  const run = spawnSync(process.execPath, ['--expose-gc', script], { encoding: 'utf8', timeout: 60_000 })
  t.is(run.status, 0, run.stderr)
  t.is(run.stdout.trim(), 'ok')
})

test('a WebAssembly namespace whose memory buffer was taken is garbage-collected, buffer and all', (t) => {
  const script = fileURLToPath(new URL('helpers/namespace-collected.mjs', import.meta.url))
  const run = spawnSync(process.execPath, ['--expose-gc', script], { encoding: 'utf8', timeout: 60_000 })
  t.is(run.status, 0, run.stderr)
  t.is(run.stdout.trim(), 'ok')
})

test('JS values passed to wasm as externrefs are let go once wasm no longer holds them', (t) => {
  const script = fileURLToPath(new URL('helpers/externref-released.mjs', import.meta.url))
  const run = spawnSync(process.execPath, ['--expose-gc', script], { encoding: 'utf8', timeout: 60_000 })
  t.is(run.status, 0, run.stderr)
  t.is(run.stdout.trim(), 'ok')
})
