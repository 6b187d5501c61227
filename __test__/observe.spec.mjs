// Seeing inside a guest: stats() and lastCall (sync, async, WASI, errors), the cpuTimeMs limit
// (Sandbox, components, the WebAssembly namespace; alone and four guests on two cores), the
// profiler (.cpuprofile and Firefox formats, a known hot function, imports as frames) and
// source lines from DWARF in trap backtraces and stacks.
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

import test from 'ava'

import { Component, Module, Sandbox, createWebAssembly } from 'wasm-memory-sandbox'

import { guestPath, guestText } from './helpers/guests.mjs'

const require = (await import('node:module')).createRequire(import.meta.url)
const { hottestFunction } = require('../lib/profile/formats.js')

const observeSource = fileURLToPath(new URL('../examples/guests/rust-observe/src/lib.rs', import.meta.url))
const observe = new Module(readFileSync(guestPath('build/observe.rust.wasm')))
const sourceLines = readFileSync(observeSource, 'utf8').split('\n')
const trapLine = sourceLines.findIndex((line) => line.includes('// TRAP LINE')) + 1
const loop = new Module(guestText('infinite_loop.wat'))

/** Busy JS for `ms` milliseconds (CPU time spent outside the guest). */
function busy(ms) {
  const end = performance.now() + ms
  while (performance.now() < end);
}

const importsWith = (host_work = (i) => i) => ({ env: { host_work } })

test('stats() and lastCall count every call, with times under { metrics: true }', (t) => {
  const sandbox = new Sandbox(observe, { metrics: true, imports: importsWith() })
  t.is(sandbox.lastCall, null)
  t.deepEqual(Object.keys(sandbox.stats()), [
    'calls',
    'wallTimeMs',
    'cpuTimeMs',
    'fuelConsumed',
    'memoryBytes',
    'peakMemoryBytes',
  ])
  t.is(sandbox.stats().calls, 0)
  sandbox.call('hot', 20_000_000)
  const first = sandbox.lastCall
  t.is(first.calls, 1)
  t.true(first.wallTimeMs > 1, `wall ${first.wallTimeMs}`)
  t.true(first.cpuTimeMs > 1 && first.cpuTimeMs <= first.wallTimeMs + 1, `cpu ${first.cpuTimeMs}`)
  t.is(first.fuelConsumed, null)
  t.is(first.memoryBytes, 65_536)
  // A call that fails counts too.
  t.throws(() => sandbox.call('trap_here'), { code: 'ERR_WASM_TRAP' })
  t.is(sandbox.lastCall.calls, 1)
  t.true(sandbox.lastCall.wallTimeMs >= 0)
  const stats = sandbox.stats()
  t.is(stats.calls, 2)
  t.true(stats.wallTimeMs >= first.wallTimeMs)
  t.true(stats.cpuTimeMs >= first.cpuTimeMs)
})

test('without metrics, calls are counted and the times are null', (t) => {
  const sandbox = new Sandbox(observe, { imports: importsWith() })
  sandbox.call('hot', 1000)
  sandbox.call('hot', 1000)
  t.like(sandbox.stats(), { calls: 2, wallTimeMs: null, cpuTimeMs: null, fuelConsumed: null, memoryBytes: 65_536 })
  t.like(sandbox.lastCall, { calls: 1, wallTimeMs: null, cpuTimeMs: null })
})

test('CPU time leaves out the time spent in JS imports', (t) => {
  const sandbox = new Sandbox(observe, { metrics: true, imports: importsWith(() => (busy(20), 1)) })
  t.is(sandbox.call('call_import', 3), 3)
  const { wallTimeMs, cpuTimeMs } = sandbox.lastCall
  t.true(wallTimeMs >= 60, `wall ${wallTimeMs}`)
  t.true(cpuTimeMs < 10, `cpu ${cpuTimeMs}`)
})

test('fuelConsumed and peakMemoryBytes', (t) => {
  const sandbox = new Sandbox(observe, { fuel: 10_000_000, imports: importsWith() })
  sandbox.call('hot', 1000)
  const burned = sandbox.lastCall.fuelConsumed
  t.true(burned > 1000 && burned < 100_000, `fuel ${burned}`)
  t.is(sandbox.fuel, 10_000_000 - burned)
  t.is(sandbox.call('grow', 3), 1)
  t.like(sandbox.lastCall, { memoryBytes: 4 * 65_536, peakMemoryBytes: 4 * 65_536 })
  t.is(sandbox.stats().fuelConsumed, burned + sandbox.lastCall.fuelConsumed)
  t.is(sandbox.stats().peakMemoryBytes, 4 * 65_536)
})

test('peakMemoryBytes keeps the peak after reset() shrinks the memory', (t) => {
  const sandbox = new Sandbox(observe, { imports: importsWith() })
  sandbox.call('grow', 7)
  sandbox.reset()
  t.like(sandbox.stats(), { memoryBytes: 65_536, peakMemoryBytes: 8 * 65_536 })
  t.like(sandbox.lastCall, { memoryBytes: 65_536, peakMemoryBytes: 8 * 65_536 })
  sandbox.call('hot', 10)
  t.like(sandbox.lastCall, { calls: 1, peakMemoryBytes: 65_536 })
})

test('async calls are counted and timed on the guest’s thread', async (t) => {
  const sandbox = new Sandbox(observe, { metrics: true, imports: importsWith(() => (busy(20), 1)) })
  await sandbox.callAsync('hot', 10_000_000)
  const hot = sandbox.lastCall
  t.true(hot.cpuTimeMs > 1 && hot.cpuTimeMs <= hot.wallTimeMs + 1, JSON.stringify(hot))
  t.is(await sandbox.callAsync('call_import', 2), 2)
  const imported = sandbox.lastCall
  t.true(imported.wallTimeMs >= 40, JSON.stringify(imported))
  t.true(imported.cpuTimeMs < 10, JSON.stringify(imported))
  t.is(sandbox.stats().calls, 2)
})

test('a WASI run() is a call with its figures', (t) => {
  const sandbox = new Sandbox(readFileSync(guestPath('build/hello.as-wasi.wasm')), {
    metrics: true,
    wasi: { stdout: 'pipe' },
  })
  t.is(sandbox.run().exitCode, 0)
  t.is(sandbox.stats().calls, 1)
  t.true(sandbox.lastCall.wallTimeMs > 0)
  t.true(sandbox.lastCall.cpuTimeMs > 0)
})

test('cpuTimeMs stops a runaway guest after 50-60 ms of its CPU time; the sandbox stays usable', (t) => {
  const sandbox = new Sandbox(observe, { cpuTimeMs: 50, imports: importsWith() })
  const error = t.throws(() => sandbox.call('spin'), { code: 'ERR_WASM_CPU_LIMIT' })
  t.is(error.kind, 'cpu_limit')
  t.regex(error.message, /cpuTimeMs: 50/)
  t.regex(error.wasmBacktrace, /spin/)
  const { cpuTimeMs } = sandbox.lastCall
  t.true(cpuTimeMs >= 50 && cpuTimeMs <= 60, `cpu ${cpuTimeMs}`)
  t.is(sandbox.call('call_import', 2), 1)
})

test('cpuTimeMs does not count JS imports; timeoutMs still does', (t) => {
  const slowImport = importsWith(() => (busy(30), 1))
  const limited = new Sandbox(observe, { cpuTimeMs: 20, imports: slowImport })
  t.is(limited.call('call_import', 3), 3)
  const timed = new Sandbox(observe, { cpuTimeMs: 1_000, timeoutMs: 50, imports: slowImport })
  t.throws(() => timed.call('call_import', 10), { code: 'ERR_WASM_TIMEOUT' })
})

test('cpuTimeMs with fuel and with async calls', async (t) => {
  const fueled = new Sandbox(observe, { cpuTimeMs: 30, fuel: 1e15, imports: importsWith() })
  t.throws(() => fueled.call('spin'), { code: 'ERR_WASM_CPU_LIMIT' })
  // wasmtime writes the fuel a loop burns back to the store only when the loop calls out, so a
  // loop stopped by a limit shows what was burned before it.
  t.is(typeof fueled.lastCall.fuelConsumed, 'number')
  t.is(fueled.call('hot', 1000), new Sandbox(observe, { imports: importsWith() }).call('hot', 1000))
  t.true(fueled.lastCall.fuelConsumed > 1000)
  const sandbox = new Sandbox(observe, { cpuTimeMs: 50, imports: importsWith() })
  await t.throwsAsync(sandbox.callAsync('spin'), { code: 'ERR_WASM_CPU_LIMIT' })
  const { cpuTimeMs } = sandbox.lastCall
  t.true(cpuTimeMs >= 50 && cpuTimeMs <= 60, `cpu ${cpuTimeMs}`)
  t.is(await sandbox.callAsync('hot', 100), sandbox.call('hot', 100))
})

test('four guests on two cores each get 50-60 ms of CPU time, over a longer wall time', async (t) => {
  const child = fileURLToPath(new URL('helpers/cpu-limit-child.mjs', import.meta.url))
  const children = Array.from({ length: 4 }, () => spawn(process.execPath, [child], { stdio: 'pipe' }))
  const outputs = children.map(
    (process) =>
      new Promise((resolve, reject) => {
        let text = ''
        process.stdout.on('data', (chunk) => (text += chunk))
        process.on('error', reject)
        process.on('close', (code) => (code === 0 ? resolve(text) : reject(new Error(`child exited ${code}`))))
      }),
  )
  const ready = children.map((process) => new Promise((resolve) => process.stdout.once('data', resolve)))
  await Promise.all(ready)
  for (const process of children) process.stdin.end('go')
  const results = (await Promise.all(outputs)).map((text) => JSON.parse(text.slice(text.indexOf('{'))))
  for (const { code, cpuTimeMs, wallTimeMs } of results) {
    t.is(code, 'ERR_WASM_CPU_LIMIT')
    t.true(cpuTimeMs >= 50 && cpuTimeMs <= 60, `cpu ${cpuTimeMs} (wall ${wallTimeMs})`)
  }
  t.log(results.map(({ cpuTimeMs, wallTimeMs }) => `cpu ${cpuTimeMs.toFixed(1)} ms, wall ${wallTimeMs.toFixed(1)} ms`))
  // Four spinning guests on two cores: on average each waits about as long as it runs.
  const meanWall = results.reduce((sum, { wallTimeMs }) => sum + wallTimeMs, 0) / results.length
  t.true(meanWall > 70, `mean wall ${meanWall}`)
})

test('cpuTimeMs for components and createWebAssembly()', async (t) => {
  const component = new Component(readFileSync(guestPath('build/types.rust.component.wasm')))
  const componentImports = {
    'demo:types/logger': { log() {}, logPoint() {} },
    'demo:types/host': { Kv: class {}, fetchNumber: () => 0 },
    'demo:types/mirror': new Proxy({}, { get: () => (value) => value }),
    hostName: () => 'observe',
  }
  const instance = component.instantiate({ cpuTimeMs: 40, imports: componentImports })
  const error = t.throws(() => instance.exports.limits.spin(), { code: 'ERR_WASM_CPU_LIMIT' })
  t.regex(error.message, /cpuTimeMs: 40/)
  // An async call runs on the guest's thread, whose CPU clock counts.
  const asyncInstance = component.instantiate({ cpuTimeMs: 40, imports: componentImports })
  const asyncStarted = performance.now()
  await t.throwsAsync(asyncInstance.callAsync('limits.spin'), { code: 'ERR_WASM_CPU_LIMIT' })
  t.true(performance.now() - asyncStarted < 2_000)

  const WebAssembly = createWebAssembly({ cpuTimeMs: 40 })
  const { instance: spinner } = await WebAssembly.instantiate(
    readFileSync(guestPath('build/observe.rust.wasm')),
    importsWith(),
  )
  const started = performance.now()
  t.throws(() => spinner.exports.spin(), { code: 'ERR_WASM_CPU_LIMIT' })
  t.true(performance.now() - started < 2_000)
  t.is(spinner.exports.hot(10), spinner.exports.hot(10))
})

test('bad cpuTimeMs, metrics and profiling options are TypeError or RangeError with codes', (t) => {
  for (const cpuTimeMs of [0, -1, 1.5, NaN, 2 ** 31]) {
    t.throws(() => new Sandbox(loop, { cpuTimeMs }), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
    t.throws(() => createWebAssembly({ cpuTimeMs }), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
  }
  t.throws(() => new Sandbox(loop, { cpuTimeMs: '50' }), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => new Sandbox(loop, { metrics: 1 }), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
  const sandbox = new Sandbox(loop)
  for (const intervalUs of [0, 999, 1_000_001, 1.5, NaN, -5]) {
    t.throws(() => sandbox.startProfiling({ intervalUs }), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
  }
  t.throws(() => sandbox.startProfiling({ intervalUs: '1000' }), { instanceOf: TypeError })
  t.throws(() => sandbox.startProfiling({ interval: 1000 }), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => sandbox.startProfiling(5), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => sandbox.stopProfiling(), { instanceOf: TypeError, code: 'ERR_INVALID_STATE' })
  sandbox.startProfiling()
  t.throws(() => sandbox.startProfiling(), { instanceOf: TypeError, code: 'ERR_INVALID_STATE' })
  t.throws(() => sandbox.stopProfiling({ format: 'pprof' }), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_VALUE' })
  // A refused format leaves the profiler running.
  t.is(typeof sandbox.stopProfiling({ format: 'cpuprofile' }).startTime, 'number')
  t.is(sandbox.call('add', 1, 2), 3)
})

test('the profiler finds the hot function; the profile has the .cpuprofile shape', (t) => {
  const sandbox = new Sandbox(observe, { imports: importsWith() })
  sandbox.startProfiling({ intervalUs: 1000 })
  for (let round = 0; round < 5; round++) sandbox.call('hot', 30_000_000)
  const profile = sandbox.stopProfiling()
  t.deepEqual(Object.keys(profile).sort(), ['endTime', 'nodes', 'samples', 'startTime', 'timeDeltas'])
  t.is(profile.samples.length, profile.timeDeltas.length)
  t.true(profile.samples.length >= 20, `${profile.samples.length} samples`)
  t.true(profile.endTime >= profile.startTime)
  const ids = new Set(profile.nodes.map((node) => node.id))
  for (const id of profile.samples) t.true(ids.has(id))
  t.is(profile.nodes[0].callFrame.functionName, '(root)')
  const hottest = hottestFunction(profile)
  t.regex(hottest.functionName, /hot_loop/)
  t.true(hottest.share > 0.6, `hot_loop share ${hottest.share}`)
  const hotLoop = profile.nodes.find((node) => /hot_loop/.test(node.callFrame.functionName))
  t.regex(hotLoop.callFrame.url, /rust-observe\/src\/lib\.rs$/)
  // DWARF: the export `hot` is sampled where it calls hot_loop, a line of its body (0-based in the
  // format). (hot_loop itself is sampled at its loop's epoch check, an instruction DWARF gives
  // line 0, so its line is unknown: -1.)
  const hot = profile.nodes.find((node) => node.callFrame.functionName === 'hot')
  t.regex(hot.callFrame.url, /rust-observe\/src\/lib\.rs$/)
  const hotLine = sourceLines.findIndex((line) => line.includes('pub extern "C" fn hot('))
  t.true(
    hot.callFrame.lineNumber > hotLine && hot.callFrame.lineNumber < hotLine + 8,
    `line ${hot.callFrame.lineNumber}, fn at ${hotLine}`,
  )
  // The profile survives JSON, as a file would.
  t.deepEqual(JSON.parse(JSON.stringify(profile)), profile)
  // Profiling again starts afresh.
  sandbox.startProfiling()
  sandbox.call('hot', 1000)
  t.true(sandbox.stopProfiling().startTime > profile.endTime - 1)
})

test('JS imports show as frames of their own; the Firefox format names them', (t) => {
  const sandbox = new Sandbox(observe, { imports: importsWith(() => (busy(5), 1)) })
  sandbox.startProfiling()
  sandbox.call('call_import', 10)
  const firefox = sandbox.stopProfiling({ format: 'firefox' })
  t.is(firefox.threads.length, 1)
  const thread = firefox.threads[0]
  const strings = thread.stringArray ?? firefox.shared?.stringArray
  const names = thread.funcTable.name.map((index) => strings[index])
  t.true(names.includes('env.host_work'), names.join(', '))
  t.true(
    names.some((name) => name === 'call_import'),
    names.join(', '),
  )
  t.true(thread.samples.length > 0)

  sandbox.startProfiling()
  sandbox.call('call_import', 10)
  const profile = sandbox.stopProfiling()
  const importNode = profile.nodes.find((node) => node.callFrame.functionName === 'env.host_work')
  t.truthy(importNode)
  const parent = profile.nodes.find((node) => node.children?.includes(importNode.id))
  t.is(parent.callFrame.functionName, 'call_import')
  // The import's time is sampled as the guest's is, once an interval (ticks cannot interrupt
  // JS): ten 5 ms imports at 1 kHz are at least 40 samples, the guest's own loop a few.
  const hottest = hottestFunction(profile)
  t.is(hottest.functionName, 'env.host_work')
  t.true(hottest.samples >= 40, `${hottest.samples} samples of the import`)
})

test('a trap in a module with DWARF gives file, line and column, in wasmFrames and in the stack', (t) => {
  const sandbox = new Sandbox(observe, { imports: importsWith() })
  const error = t.throws(() => sandbox.call('trap_here'), { code: 'ERR_WASM_TRAP' })
  const frame = error.wasmFrames.find((frame) => /fail_at_known_line/.test(frame.function))
  t.truthy(frame, JSON.stringify(error.wasmFrames))
  t.regex(frame.file, /rust-observe\/src\/lib\.rs$/)
  t.is(frame.line, trapLine)
  t.true(frame.column > 0)
  t.is(typeof frame.offset, 'number')
  t.regex(error.wasmBacktrace, new RegExp(`lib\\.rs:${trapLine}:`))
  t.regex(error.stack, new RegExp(`\\n    at rust_observe_guest::fail_at_known_line \\(.*lib\\.rs:${trapLine}:\\d+\\)`))
  t.regex(error.stack, /\n {4}at trap_here \(.*lib\.rs:\d+:\d+\)/)
  // The package's own frames name its files, not `<anonymous>`.
  t.regex(error.stack, /at Sandbox\.call \(.*lib[/\\]facade\.js:\d+:\d+\)/)
  t.notRegex(error.stack, /<anonymous>/)
})

test('a module without DWARF keeps its backtrace without source lines', (t) => {
  const sandbox = new Sandbox(guestText('traps.wat'))
  const error = t.throws(() => sandbox.call('unreachable'))
  t.true(Array.isArray(error.wasmFrames) && error.wasmFrames.length > 0)
  for (const frame of error.wasmFrames) {
    t.is(frame.file, null)
    t.is(frame.line, null)
  }
  t.notRegex(error.stack, /wasm-function/)
})

test('an async call is profiled on the guest’s thread; the profiler cannot be stopped while it runs', async (t) => {
  const sandbox = new Sandbox(observe, { imports: importsWith() })
  sandbox.startProfiling()
  const pending = sandbox.callAsync('hot', 30_000_000)
  t.throws(() => sandbox.stopProfiling(), { code: 'ERR_SANDBOX_BUSY' })
  await pending
  const profile = sandbox.stopProfiling()
  t.regex(hottestFunction(profile).functionName, /hot_loop/)
  t.throws(() => sandbox.stopProfiling(), { code: 'ERR_INVALID_STATE' })
})
