// One compile in a fresh process, for the cold-start rows of `npm run bench`:
// `node compile-child.mjs <file.wasm> <v8|cranelift|winch|namespace|component|v8-jco>` prints `{ compileMs, instantiateMs, stats }`
// (`namespace`: `await createWebAssembly().compile(bytes)`, the WebAssembly namespace's compile).
// The code cache directory (or its absence) comes from the environment, set by the parent.
import { readFileSync } from 'node:fs'

import { Component, Module, Sandbox, codeCacheStats, createWebAssembly } from 'wasm-memory-sandbox'

const [path, compiler] = process.argv.slice(2)
const bytes = readFileSync(path)
const now = () => Number(process.hrtime.bigint()) / 1e6

/** A no-op function for every function import, so that instantiation can be timed. */
function stubImports(imports) {
  const object = {}
  for (const entry of imports) {
    if (entry.kind !== 'function') continue
    object[entry.module] ??= {}
    object[entry.module][entry.name] = () => 0
  }
  return object
}

if (compiler === 'component') {
  // A component through Component (the engine made first, as V8's is).
  new Component('(component)')
  const started = now()
  const component = new Component(bytes)
  const compileMs = now() - started
  console.log(JSON.stringify({ compileMs, exports: Object.keys(component.exports).length, stats: codeCacheStats() }))
} else if (compiler === 'v8-jco') {
  // What a jco user's process compiles: the core modules of `jco transpile` (transpiled first,
  // untimed), each by `new WebAssembly.Module`.
  const { transpile } = await import('@bytecodealliance/jco')
  const { files } = await transpile(new Uint8Array(bytes), { name: 'component', instantiation: 'async', quiet: true })
  const cores = Object.entries(files).filter(([name]) => name.endsWith('.wasm'))
  const started = now()
  for (const [, content] of cores) new WebAssembly.Module(content)
  const compileMs = now() - started
  console.log(JSON.stringify({ compileMs, exports: cores.length }))
} else if (compiler === 'v8') {
  const started = now()
  const module = new WebAssembly.Module(bytes)
  const compileMs = now() - started
  console.log(JSON.stringify({ compileMs, exports: WebAssembly.Module.exports(module).length }))
} else if (compiler === 'namespace') {
  // The namespace and its engine exist before the clock starts.
  const WA = createWebAssembly()
  new WA.Module(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]))
  const started = now()
  const module = await WA.compile(bytes)
  const compileMs = now() - started
  console.log(JSON.stringify({ compileMs, exports: WA.Module.exports(module).length, stats: codeCacheStats() }))
} else {
  // The addon is loaded (and its engine created) before the clock starts, as V8 is.
  new Module('(module)', { compiler })
  const started = now()
  const module = new Module(bytes, { compiler })
  const compileMs = now() - started
  let instantiateMs = null
  let instantiateError = null
  const imports = module.imports
  if (imports.every((entry) => entry.kind === 'function')) {
    const instantiateStarted = now()
    try {
      new Sandbox(module, { imports: stubImports(imports) }).dispose()
      instantiateMs = now() - instantiateStarted
    } catch (error) {
      instantiateError = `${error.code}: ${error.message}`
    }
  }
  console.log(
    JSON.stringify({
      compileMs,
      instantiateMs,
      instantiateError,
      exports: module.exports.length,
      stats: codeCacheStats(),
    }),
  )
}
