// The component rows of `npm run bench`: this package's Component against jco's transpiled glue on
// V8 for the same component, side by side in one process (imported by bench.mjs).
import { transpile } from '@bytecodealliance/jco'
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

import { measure } from './harness.mjs'

const require = createRequire(import.meta.url)
const { Component } = require('wasm-memory-sandbox')
const root = fileURLToPath(new URL('..', import.meta.url))

/** jco's glue for `bytes`: its instantiate(), with the core modules compiled once by V8. */
async function jcoGlue(bytes, name) {
  const { files } = await transpile(bytes, { name, instantiation: 'async', quiet: true })
  const directory = mkdtempSync(join(os.tmpdir(), 'wasm-memory-sandbox-bench-jco-'))
  try {
    for (const [file, content] of Object.entries(files)) {
      mkdirSync(dirname(join(directory, file)), { recursive: true })
      writeFileSync(join(directory, file), content)
    }
    const glue = await import(pathToFileURL(join(directory, `${name}.js`)).href)
    const modules = {}
    for (const [file, content] of Object.entries(files))
      if (file.endsWith('.wasm')) modules[file] = new WebAssembly.Module(content)
    return { instantiate: (imports) => glue.instantiate((path) => modules[path], imports), files }
  } finally {
    rmSync(directory, { recursive: true, force: true })
  }
}

export async function componentRows({ row, batch, quick }) {
  // A record in, a string out, on a guest that does nothing: the time is the host's.
  const noopText = readFileSync(`${root}examples/components/text/noop-greet.wat`, 'utf8')
  const noop = new Component(noopText)
  const ours = noop.instantiate().exports
  const { parse } = await import('@bytecodealliance/jco')
  const noopBytes = await parse(noopText)
  const jcoNoop = await jcoGlue(noopBytes, 'noop')
  const theirs = await jcoNoop.instantiate({})
  const person = { name: 'Ada', age: 36 }
  let sink = 0
  const timing = { batch: batch(50_000), samples: 7, warmup: 2 }
  const oursCall = measure(() => (sink ^= ours.greet(person).length), timing)
  const jcoCall = measure(() => (sink ^= theirs.greet(person).length), timing)
  row({
    operation: 'component call: record in, string out (no-op guest)',
    ours: oursCall,
    baseline: jcoCall,
    against: 'jco transpile on V8',
    kind: 'slower',
    target: 1,
  })

  // list<u8> of 1 MiB in and out (the types component's echo).
  const typesBytes = readFileSync(`${root}__test__/guests/build/types.rust.component.wasm`)
  const types = new Component(typesBytes)
  // The mirror interface (a function per WIT type the through-* exports pass through): identities.
  const mirror = Object.fromEntries(
    types.imports['demo:types/mirror@0.1.0'].functions.map((fn) => [fn.jsName, (value) => value]),
  )
  const imports = {
    'demo:types/logger': { log() {}, logPoint() {} },
    'demo:types/host': { Kv: class {}, fetchNumber: () => 0 },
    'host-name': () => 'bench',
    'demo:types/mirror': mirror,
  }
  const oursTypes = types.instantiate({ imports }).exports
  const oursApi = oursTypes.api
  const jcoTypes = await jcoGlue(typesBytes, 'types')
  const jcoImports = {
    'demo:types/logger': imports['demo:types/logger'],
    'demo:types/host': imports['demo:types/host'],
    'host-name': { default: imports['host-name'] },
    'demo:types/mirror': mirror,
    'demo:types/types': {},
  }
  const theirTypes = await jcoTypes.instantiate(jcoImports)
  const theirApi = theirTypes.api
  const megabyte = new Uint8Array(1 << 20).fill(7)
  const listTiming = { batch: batch(300), samples: 7, warmup: 2 }
  const oursList = measure(() => (sink ^= oursApi.echoListU8(megabyte).length), listTiming)
  const jcoList = measure(() => (sink ^= theirApi.echoListU8(megabyte).length), listTiming)
  row({
    operation: 'component call: list<u8> of 1 MiB in and out',
    ours: oursList,
    baseline: jcoList,
    against: 'jco transpile on V8',
    kind: 'slower',
    target: 1,
  })

  // The same megabyte inside a record, through the guest and one of its JS imports and back:
  // through-blob(b) returns b with its bytes replaced by what mirror-list-u8(b.data) returned.
  const blob = { name: 'blob', data: megabyte, samples: new Float64Array([1, 2]) }
  const oursBlob = measure(() => (sink ^= oursTypes.limits.throughBlob(blob).data.length), listTiming)
  const jcoBlob = measure(() => (sink ^= theirTypes.limits.throughBlob(blob).data.length), listTiming)
  row({
    operation: 'component call: 1 MiB list<u8> in a record, to a JS import and back',
    ours: oursBlob,
    baseline: jcoBlob,
    against: 'jco transpile on V8',
    kind: 'slower',
    target: 1,
  })

  // Instantiation of the types component (its code compiled once on both sides).
  const instantiateTiming = { batch: batch(200), samples: 5, warmup: 1 }
  const oursInstantiate = measure(() => types.instantiate({ imports }).dispose(), instantiateTiming)
  const rounds = quick ? 100 : 400
  await jcoTypes.instantiate(jcoImports)
  const started = process.hrtime.bigint()
  for (let index = 0; index < rounds; index += 1) await jcoTypes.instantiate(jcoImports)
  const jcoInstantiate = Number(process.hrtime.bigint() - started) / rounds
  row({
    operation: 'component instantiate (types component)',
    ours: oursInstantiate,
    baseline: jcoInstantiate,
    against: "jco's instantiate() on V8",
    kind: 'faster',
    target: 1,
  })
  // Compile from a warm code cache in a fresh process, against V8 compiling the core modules of
  // jco's output for the same component (componentize-js's 12 MB greeter: StarlingMonkey).
  const greeter = `${root}__test__/guests/build/greeter.js.component.wasm`
  const child = fileURLToPath(new URL('compile-child.mjs', import.meta.url))
  const cacheDirectory = mkdtempSync(join(os.tmpdir(), 'wasm-memory-sandbox-bench-cache-'))
  try {
    const compile = (mode) => {
      const env = { ...process.env, WASM_MEMORY_SANDBOX_CACHE_DIR: cacheDirectory }
      const run = spawnSync(process.execPath, [child, greeter, mode], { encoding: 'utf8', env })
      if (run.status !== 0) throw new Error(`compile-child ${mode} failed: ${run.stderr}`)
      return JSON.parse(run.stdout.trim().split('\n').pop())
    }
    compile('component') // fills the cache
    const repeats = quick ? 1 : 3
    const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]
    const warm = Array.from({ length: repeats }, () => compile('component'))
    if (warm.some((run) => run.stats.misses !== 0)) throw new Error('the warm component compiles missed the cache')
    const v8 = median(Array.from({ length: repeats }, () => compile('v8-jco').compileMs))
    row({
      operation: 'component from a warm disk cache, fresh process (12 MB componentize-js greeter)',
      ours: median(warm.map((run) => run.compileMs)) * 1e6,
      baseline: v8 * 1e6,
      against: "V8 compiling jco's core modules, fresh process",
      kind: 'slower',
      target: 2,
    })
  } finally {
    rmSync(cacheDirectory, { recursive: true, force: true })
  }
  return sink
}
