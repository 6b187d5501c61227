// WebAssembly namespace: compile and instantiate compile off the main thread and through the code
// cache that Module uses, so a large module neither stalls the event loop nor compiles twice.
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import test from 'ava'

import { codeCacheStats, createWebAssembly } from 'wasm-memory-sandbox'

import { longestStall } from './helpers/stall.mjs'

const require = createRequire(import.meta.url)
// sql.js's 0.69 MB Emscripten module: about a second to compile with Cranelift here.
const sqlWasm = readFileSync(require.resolve('sql.js/dist/sql-wasm.wasm'))
/** The module with a custom section of its own, so no cache has seen these bytes. */
// A custom section makes each variant new to the code cache, in this run too: tests that share a
// cache directory (the emulated run, scripts/test-arm64.mjs) still compile each one here.
const runTag = randomBytes(8)
const variant = (tag) => Buffer.concat([sqlWasm, Buffer.from([0, 14, 5, 0x77, 0x61, 0x2d, 0x6e, tag]), runTag])

/** An import object with a function for every name. */
const anyImports = new Proxy({}, { get: () => new Proxy({}, { get: () => () => 0 }) })

test.serial('WA.compile and WA.instantiate compile a large module while the event loop keeps running', async (t) => {
  const WA = createWebAssembly()
  const compiled = await longestStall(() => WA.compile(variant(1)))
  t.true(compiled.value instanceof WA.Module)
  t.true(WA.Module.exports(compiled.value).length > 50)
  const instantiated = await longestStall(() => WA.instantiate(variant(2), anyImports))
  t.true(instantiated.value.instance instanceof WA.Instance)
  // The same compile on the main thread, for contrast: the loop stalls for all of it.
  const synchronous = await longestStall(async () => {
    await new Promise((resolve) => setTimeout(resolve, 20))
    return new WA.Module(variant(3))
  })
  t.log(
    `longest stall: WA.compile ${compiled.longest.toFixed(0)} ms, WA.instantiate ${instantiated.longest.toFixed(0)} ms, ` +
      `new WA.Module ${synchronous.longest.toFixed(0)} ms`,
  )
  t.true(synchronous.longest > 200, 'the synchronous compile is long enough to see a stall')
  t.true(compiled.longest < synchronous.longest / 4, `compile stalled ${compiled.longest} ms`)
  t.true(instantiated.longest < synchronous.longest / 4, `instantiate stalled ${instantiated.longest} ms`)
})

test.serial('a compile error rejects with the namespace’s CompileError', async (t) => {
  const WA = createWebAssembly()
  const broken = Buffer.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 1, 0xff])
  const error = await t.throwsAsync(WA.compile(broken), { instanceOf: WA.CompileError })
  t.regex(error.message, /^WebAssembly\.compile\(\): /)
  await t.throwsAsync(WA.instantiate(broken), { instanceOf: WA.CompileError })
  await t.throwsAsync(WA.compile(Buffer.from('(module)')), { instanceOf: WA.CompileError, message: /magic/ })
})

test.serial('compiled code is cached: the same bytes load from the disk cache in a fresh process', async (t) => {
  const bytes = variant(4)
  const before = codeCacheStats()
  const first = await createWebAssembly().compile(bytes)
  t.true(first instanceof Object)
  const after = codeCacheStats()
  t.is(after.misses - before.misses, 1)
  t.is(after.writes - before.writes, 1)
  // Another namespace of this process reuses the compiled code without a lookup.
  const started = performance.now()
  await createWebAssembly().compile(bytes)
  t.log(`second compile in this process: ${(performance.now() - started).toFixed(1)} ms`)
  t.is(codeCacheStats().misses, after.misses)
  // A fresh process (same cache directory, inherited) loads it from disk.
  const script = `
    const { createWebAssembly, codeCacheStats } = require('wasm-memory-sandbox')
    const bytes = require('node:fs').readFileSync(process.argv[1])
    const started = performance.now()
    createWebAssembly().compile(bytes).then(() => {
      const { hits, misses } = codeCacheStats()
      console.log(JSON.stringify({ hits, misses, ms: performance.now() - started }))
    })`
  const directory = mkdtempSync(join(tmpdir(), 'wa-compile-'))
  t.teardown(() => rmSync(directory, { recursive: true, force: true }))
  const file = join(directory, 'module.wasm')
  writeFileSync(file, bytes)
  const child = spawnSync(process.execPath, ['-e', script, file], { encoding: 'utf8' })
  t.is(child.status, 0, child.stderr)
  const fresh = JSON.parse(child.stdout)
  t.log(`fresh process: ${fresh.ms.toFixed(1)} ms from the disk cache`)
  t.deepEqual([fresh.hits, fresh.misses], [1, 0])
})
