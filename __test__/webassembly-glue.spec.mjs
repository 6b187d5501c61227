// WebAssembly namespace: existing glue code runs unchanged through createWebAssembly(), one test
// per category of glue: Emscripten output (sql.js), wasm-bindgen --target nodejs output
// (lz4-wasm-nodejs), wasm-bindgen --target web output (the tutorial's Rust form, on a page),
// Go's wasm_exec.js (esbuild-wasm, a Go build), the AssemblyScript compiler's generated glue (the
// tutorial's guest), and a hand-written loader (the tutorial's own code).
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import vm from 'node:vm'

import test from 'ava'

import { bufferGuestWasm, createWebAssembly } from 'wasm-memory-sandbox'

const require = createRequire(import.meta.url)
const guests = join(dirname(fileURLToPath(import.meta.url)), 'guests', 'build')

/** Runs CommonJS `file` in a vm context whose global `WebAssembly` is `WA`; returns its exports. */
function requireInContext(file, WA, extraGlobals = {}) {
  const module = { exports: {} }
  const context = vm.createContext({
    WebAssembly: WA,
    console,
    process,
    Buffer,
    setTimeout,
    clearTimeout,
    setImmediate,
    TextEncoder,
    TextDecoder,
    URL,
    ...extraGlobals,
  })
  const wrapper = vm.runInContext(
    `(function (exports, require, module, __filename, __dirname) {${readFileSync(file, 'utf8')}\n})`,
    context,
    { filename: file },
  )
  wrapper(module.exports, createRequire(file), module, file, dirname(file))
  return module.exports
}

test('wasm-bindgen --target nodejs glue (lz4-wasm-nodejs) runs in a vm context with WA as WebAssembly', (t) => {
  const WA = createWebAssembly({ maxMemoryBytes: 64 << 20, timeoutMs: 5000 })
  const lz4 = requireInContext(require.resolve('lz4-wasm-nodejs'), WA)
  t.true(lz4.__wasm.memory instanceof WA.Memory, 'the glue instantiated through WA')
  const input = Buffer.from('hello hello hello hello hello hello, wasm-bindgen through a sandbox'.repeat(20))
  const compressed = lz4.compress(input)
  t.true(compressed.length < input.length)
  t.deepEqual(Buffer.from(lz4.decompress(compressed)), input)
})

test.serial('Emscripten output (sql.js) runs with WA as its global WebAssembly', async (t) => {
  const WA = createWebAssembly({ maxMemoryBytes: 256 << 20, timeoutMs: 10000 })
  const saved = globalThis.WebAssembly
  globalThis.WebAssembly = WA
  try {
    const initSqlJs = require('sql.js/dist/sql-wasm.js')
    const SQL = await initSqlJs()
    const db = new SQL.Database()
    db.run('CREATE TABLE t (a INTEGER, b TEXT); INSERT INTO t VALUES (1, "one"), (2, "two");')
    const [result] = db.exec('SELECT sum(a) AS total, group_concat(b) AS names FROM t')
    t.deepEqual(result.values, [[3, 'one,two']])
    t.throws(() => db.exec('SELECT * FROM missing'), { message: /no such table/ })
    db.close()
  } finally {
    globalThis.WebAssembly = saved
  }
})

test('Go’s wasm_exec.js runs a Go build (esbuild-wasm) through WA', async (t) => {
  const WA = createWebAssembly({ maxMemoryBytes: 1 << 30 })
  const root = dirname(require.resolve('esbuild-wasm/package.json'))
  let output = ''
  const decoder = new TextDecoder()
  const fs = {
    constants: { O_WRONLY: -1, O_RDWR: -1, O_CREAT: -1, O_TRUNC: -1, O_APPEND: -1, O_EXCL: -1, O_DIRECTORY: -1 },
    writeSync(fd, buffer) {
      output += decoder.decode(buffer)
      return buffer.length
    },
    write(fd, buffer, offset, length, position, callback) {
      output += decoder.decode(buffer.subarray(offset, offset + length))
      callback(null, length)
    },
  }
  const context = vm.createContext({
    WebAssembly: WA,
    console,
    fs,
    process: { ...process, pid: -1, cwd: () => '/', getuid: () => -1 },
    crypto: globalThis.crypto,
    performance,
    TextEncoder,
    TextDecoder,
    setTimeout,
    clearTimeout,
  })
  vm.runInContext(readFileSync(join(root, 'wasm_exec.js'), 'utf8'), context, { filename: 'wasm_exec.js' })
  const go = vm.runInContext('new Go()', context)
  go.argv = ['esbuild', '--version']
  const { instance } = await WA.instantiate(readFileSync(join(root, 'esbuild.wasm')), go.importObject)
  t.true(instance instanceof WA.Instance)
  await go.run(instance)
  t.is(output.trim(), require('esbuild-wasm/package.json').version)
})

test.serial(
  'the AssemblyScript compiler’s generated glue runs the tutorial’s guest with WA as WebAssembly',
  async (t) => {
    const WA = createWebAssembly({ maxMemoryBytes: 1 << 20 })
    const saved = globalThis.WebAssembly
    globalThis.WebAssembly = WA
    try {
      const { instantiate } = await import(pathToFileURL(join(guests, 'tutorial.as.mjs')).href)
      const exports = await instantiate(await WA.compile(readFileSync(join(guests, 'tutorial.as.wasm'))))
      exports.storeValueInWasmMemoryBufferIndexZero(24)
      const wasmMemory = new Uint8Array(exports.memory.buffer)
      const bufferPointer = exports.getWasmMemoryBufferPointer()
      t.is(wasmMemory[bufferPointer + 0], 24)
      wasmMemory[bufferPointer + 1] = 15
      t.is(exports.readWasmMemoryBufferAndReturnIndexOne(), 15)
      t.true(exports.memory instanceof WA.Memory)
    } finally {
      globalThis.WebAssembly = saved
    }
  },
)

// The tutorial's index.js, as published (its Go-specific `go.run` lines need a Go build, see the
// Go test above), with the Hello World example's `wasmBrowserInstantiate` loader, run in a vm
// context whose WebAssembly is WA and whose fetch serves the guest's bytes.
const tutorialLoader = `
const wasmBrowserInstantiate = async (wasmModuleUrl, importObject) => {
  let response = undefined;
  if (!importObject) {
    importObject = { env: { abort: () => console.log("Abort!") } };
  }
  if (WebAssembly.instantiateStreaming) {
    response = await WebAssembly.instantiateStreaming(fetch(wasmModuleUrl), importObject);
  } else {
    const fetchAndInstantiateTask = async () => {
      const wasmArrayBuffer = await fetch(wasmModuleUrl).then(response => response.arrayBuffer());
      return WebAssembly.instantiate(wasmArrayBuffer, importObject);
    };
    response = await fetchAndInstantiateTask();
  }
  return response;
};

const runWasm = async () => {
  const wasmModule = await wasmBrowserInstantiate("./main.wasm");
  console.log("Write in Wasm, Read in JS, Index 0:");
  wasmModule.instance.exports.storeValueInWasmMemoryBufferIndexZero(24);
  let wasmMemory = new Uint8Array(wasmModule.instance.exports.memory.buffer);
  let bufferPointer = wasmModule.instance.exports.getWasmMemoryBufferPointer();
  console.log(wasmMemory[bufferPointer + 0]);
  console.log("Write in JS, Read in Wasm, Index 1:");
  wasmMemory[bufferPointer + 1] = 15;
  console.log(wasmModule.instance.exports.readWasmMemoryBufferAndReturnIndexOne());
};
runWasm();
`

test('a hand-written loader (the tutorial’s own code) runs unchanged in a vm context', async (t) => {
  const WA = createWebAssembly({ maxMemoryBytes: 1 << 20, timeoutMs: 1000 })
  const lines = []
  const bytes = bufferGuestWasm()
  const context = vm.createContext({
    WebAssembly: WA,
    console: { log: (line) => lines.push(String(line)) },
    fetch: async () => new Response(bytes, { headers: { 'Content-Type': 'application/wasm' } }),
  })
  await vm.runInContext(tutorialLoader, context, { filename: 'index.js' })
  for (let turn = 0; turn < 20 && lines.length < 4; turn++) await new Promise((resolve) => setImmediate(resolve))
  t.deepEqual(lines, ['Write in Wasm, Read in JS, Index 0:', '24', 'Write in JS, Read in Wasm, Index 1:', '15'])
})

/** Runs a demo site on the page harness (helpers/page.mjs) in a child process; its JSON report. */
function runPage(page) {
  const harness = join(dirname(fileURLToPath(import.meta.url)), 'helpers', 'page.mjs')
  const child = spawnSync(
    process.execPath,
    ['--no-warnings', '--experimental-vm-modules', harness, JSON.stringify(page)],
    {
      encoding: 'utf8',
      timeout: 60_000,
    },
  )
  if (child.status !== 0) throw new Error(`page harness exited ${child.status}: ${child.stderr}`)
  return JSON.parse(child.stdout.trim().split('\n').at(-1))
}

const rustDemo = {
  site: join(guests, 'tutorial-wasm-bindgen'),
  module: 'index.js',
  lines: 4,
  probe: 'pkg/webassembly_linear_memory.js',
}
const tutorialLines = [['Write in Wasm, Read in JS, Index 0:'], [24], ['Write in JS, Read in Wasm, Index 1:'], [15]]

test('the tutorial’s Rust form: wasm-bindgen --target web glue, on a page whose WebAssembly is WA', (t) => {
  const page = runPage({ ...rustDemo, limits: { maxMemoryBytes: 16 << 20, timeoutMs: 5000 } })
  t.deepEqual(page.errors, [])
  t.deepEqual(page.warnings, [])
  t.deepEqual(page.log, tutorialLines)
  t.is(page.domConsole, 'Write in Wasm, Read in JS, Index 0:\n24\nWrite in JS, Read in Wasm, Index 1:\n15\n')
  t.deepEqual(page.used, { instantiateStreaming: 1 }, 'the glue fetched and instantiated through WA')
  t.true(page.probe.memoryFromNamespace, 'rustWasm.memory is a WA.Memory')
  // The control: the same page on Node's own WebAssembly logs the same lines.
  const control = runPage({ ...rustDemo, webAssembly: 'node' })
  t.deepEqual(control.log, tutorialLines)
})

test('the page’s limits hold: the glue’s 17-page memory is refused under a 1 MiB maxMemoryBytes', (t) => {
  const page = runPage({ ...rustDemo, limits: { maxMemoryBytes: 1 << 20 } })
  t.deepEqual(page.log, [])
  t.is(page.errors.length, 1)
  t.like(page.errors[0][0], { name: 'RangeError', code: 'ERR_WASM_MEMORY_LIMIT' })
  t.regex(page.errors[0][0].message, /17 pages/)
})

const assemblyScriptDemo = { site: join(guests, 'tutorial-assemblyscript'), module: 'index.js', lines: 2 }

test('the tutorial’s AssemblyScript form: the site’s loader, on a page whose WebAssembly is WA', (t) => {
  const page = runPage({ ...assemblyScriptDemo, limits: { maxMemoryBytes: 16 << 20 } })
  t.deepEqual(page.errors, [])
  t.deepEqual(page.log, [['Read from JS index Zero: 24'], ['Read from Wasm index one: 15']])
  t.deepEqual(page.used, { instantiateStreaming: 1 })
  const control = runPage({ ...assemblyScriptDemo, webAssembly: 'node' })
  t.deepEqual(control.log, page.log, 'the same lines on V8’s WebAssembly')
  // A fuel budget too small for the module's start function: instantiation fails with the limit.
  const starved = runPage({ ...assemblyScriptDemo, limits: { fuel: 5 } })
  t.deepEqual(starved.log, [])
  t.like(starved.errors[0][0], { name: 'RuntimeError', code: 'ERR_WASM_OUT_OF_FUEL', fromNamespace: true })
})
