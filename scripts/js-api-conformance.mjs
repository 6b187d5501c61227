#!/usr/bin/env node
// Conformance of createWebAssembly() to the WebAssembly JS API, measured with the official tests.
//
//   node scripts/js-api-conformance.mjs <spec checkout> [--only <substring>] [--verbose] [--json]
//
// <spec checkout> is a clone of github.com/WebAssembly/spec: a work tree, or a bare git directory
// (its files are read with `git show HEAD:...`). Nothing of it is copied into this repository.
//
// Each core file of test/js-api (interface, prototypes, constructor/, module/, instance/,
// memory/ and table/ without memory64, global/) runs twice, each time in a fresh Node process:
// once with V8's own WebAssembly, once with globalThis.WebAssembly replaced by a fresh
// createWebAssembly() namespace, after test/harness/testharness.js and the file's META scripts
// (assertions.js, wasm-module-builder.js, ...). It runs in the process's main realm rather than
// a `vm` context: the tests compare prototypes with the realm's own (`Object.prototype`,
// `ArrayBuffer`, `Function.prototype`), and the addon makes its objects (the memory's
// ArrayBuffer) in the main realm, so a `vm` context would fail them for a reason that has nothing
// to do with conformance. The script prints each file's passing subtests next to V8's; then, as a
// second table, the same for the exception-handling files (exception/ and tag/, `Tag`,
// `Exception` and `JSTag`), and a third for the 64-bit address files (memory64).
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import vm from 'node:vm'
import { createRequire } from 'node:module'

const root = dirname(dirname(fileURLToPath(import.meta.url)))

/** Reads `path` (relative to the checkout) from a work tree or a git directory. */
function reader(checkout) {
  if (existsSync(join(checkout, 'test', 'js-api'))) {
    return {
      read: (path) => readFileSync(join(checkout, path), 'utf8'),
      list: (dir) =>
        execFileSync('git', ['-C', checkout, 'ls-files', dir], { encoding: 'utf8' }).split('\n').filter(Boolean),
    }
  }
  const gitDir = statSync(join(checkout, 'HEAD'), { throwIfNoEntry: false }) ? checkout : join(checkout, '.git')
  return {
    read: (path) =>
      execFileSync('git', ['--git-dir', gitDir, 'show', `HEAD:${path}`], {
        encoding: 'utf8',
        maxBuffer: 64 << 20,
      }),
    list: (dir) =>
      execFileSync('git', ['--git-dir', gitDir, 'ls-tree', '-r', '--name-only', 'HEAD', dir], { encoding: 'utf8' })
        .split('\n')
        .filter(Boolean),
  }
}

/** The core files: the set V8's published figures (916 on Node 20, 930 on Node 24) are for. */
function coreFiles(source) {
  const core =
    /^test\/js-api\/(interface|prototypes|(constructor|module|instance|memory|table|global)\/[^/]+)\.any\.js$/
  return source
    .list('test/js-api')
    .filter((path) => core.test(path) && !path.includes('memory64'))
    .sort()
}

/** The 64-bit address files (memory/ and table/ `*-memory64`): reported apart from the core set. */
function memory64Files(source) {
  return source
    .list('test/js-api')
    .filter((path) => /^test\/js-api\/(memory|table)\/[^/]+-memory64\.any\.js$/.test(path))
    .sort()
}

/** The exception-handling files (exception/, tag/): reported apart from the core set. */
function exceptionFiles(source) {
  return source
    .list('test/js-api')
    .filter((path) => /^test\/js-api\/(exception|tag)\/[^/]+\.any\.js$/.test(path))
    .sort()
}

/** The files a test names in `// META: script=` lines, as paths in the checkout. */
function metaScripts(path, text) {
  const scripts = []
  for (const match of text.matchAll(/^\/\/ META: script=(\S+)/gm)) {
    const script = match[1]
    scripts.push(
      script.startsWith('/wasm/jsapi/')
        ? `test/js-api/${script.slice('/wasm/jsapi/'.length)}`
        : join(dirname(path), script).replaceAll('\\', '/'),
    )
  }
  return scripts
}

/** In the child: runs one file and prints its subtest results as JSON on stdout. */
async function child(checkout, path, mode) {
  const source = reader(checkout)
  const text = source.read(path)
  if (mode === 'sandbox') {
    const { createWebAssembly } = createRequire(join(root, 'index.js'))(join(root, 'index.js'))
    Object.defineProperty(globalThis, 'WebAssembly', {
      value: createWebAssembly(),
      writable: true,
      configurable: true,
      enumerable: false,
    })
  }
  const results = []
  let finished
  const completion = new Promise((resolveCompletion) => (finished = resolveCompletion))
  const run = (file, code) => vm.runInThisContext(code, { filename: file })
  // testharness picks its shell environment when there is no document or worker scope.
  globalThis.self = globalThis
  run('test/harness/testharness.js', source.read('test/harness/testharness.js'))
  globalThis.add_result_callback((test) => {
    results.push({ name: test.name, status: test.status, message: test.message ?? undefined })
  })
  globalThis.add_completion_callback((tests, status) => finished(status))
  globalThis.setup({ explicit_done: true, debug: false })
  try {
    for (const script of metaScripts(path, text)) run(script, source.read(script))
    run(path, text)
  } catch (error) {
    results.push({ name: '(file)', status: 1, message: String(error?.stack ?? error) })
  }
  globalThis.done()
  const timer = setTimeout(() => finished({ status: 2, message: 'timed out' }), 60_000)
  const status = await completion
  clearTimeout(timer)
  process.stdout.write(JSON.stringify({ results, harness: { status: status.status, message: status.message } }))
  process.exit(0)
}

function runFile(checkout, path, mode) {
  const output = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', checkout, path, mode], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
    timeout: 120_000,
  })
  try {
    return JSON.parse(output.stdout)
  } catch {
    return {
      results: [],
      harness: { status: 1, message: `the child failed: ${output.stderr.slice(-2000) || output.signal}` },
    }
  }
}

async function main() {
  const args = process.argv.slice(2)
  if (args[0] === '--child') return child(args[1], args[2], args[3])
  const checkout = args.find((arg) => !arg.startsWith('--') && args[args.indexOf(arg) - 1] !== '--only')
  if (!checkout) {
    console.error('usage: node scripts/js-api-conformance.mjs <spec checkout> [--only <substring>] [--verbose]')
    process.exit(2)
  }
  const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined
  const verbose = args.includes('--verbose')
  const source = reader(resolve(checkout))
  const PASS = 0
  const report = []
  for (const [title, files] of [
    ['WebAssembly JS API core tests', coreFiles(source)],
    ['Exception handling (exception/, tag/)', exceptionFiles(source)],
    ['64-bit addresses (memory/, table/ *-memory64)', memory64Files(source)],
  ]) {
    const selected = files.filter((path) => !only || path.includes(only))
    if (selected.length > 0) report.push({ title, ...runSet(checkout, selected, verbose) })
  }
  for (const { title, rows, totals } of report) {
    const width = Math.max(...rows.map((row) => row[0].length), 5)
    console.log(`${title}, Node ${process.version}`)
    console.log(`${'file'.padEnd(width)}  subtests  V8  createWebAssembly`)
    for (const [file, subtests, v8Pass, ourPass] of rows) {
      console.log(`${file.padEnd(width)}  ${String(subtests).padStart(8)}  ${String(v8Pass).padStart(3)}  ${ourPass}`)
    }
    console.log(
      `${'total'.padEnd(width)}  ${String(totals.subtests).padStart(8)}  ${String(totals.v8).padStart(3)}  ${totals.sandbox}`,
    )
  }
  if (args.includes('--json')) {
    console.log(JSON.stringify({ node: process.version, report }))
  }
}

/** Runs `files` with V8 and with the namespace; the rows and totals. */
function runSet(checkout, files, verbose) {
  const PASS = 0
  const rows = []
  const totals = { subtests: 0, v8: 0, sandbox: 0 }
  for (const path of files) {
    const v8 = runFile(resolve(checkout), path, 'v8')
    const ours = runFile(resolve(checkout), path, 'sandbox')
    const subtests = Math.max(v8.results.length, ours.results.length)
    const v8Pass = v8.results.filter((result) => result.status === PASS).length
    const ourPass = ours.results.filter((result) => result.status === PASS).length
    totals.subtests += subtests
    totals.v8 += v8Pass
    totals.sandbox += ourPass
    rows.push([path.slice('test/js-api/'.length), subtests, v8Pass, ourPass])
    if (verbose) {
      const v8Passing = new Set(v8.results.filter((result) => result.status === PASS).map((result) => result.name))
      for (const result of ours.results) {
        if (result.status !== PASS) {
          const mark = v8Passing.has(result.name) ? 'FAIL' : 'fail (V8 too)'
          console.log(`  ${mark} ${path}: ${result.name}: ${String(result.message).split('\n')[0].slice(0, 300)}`)
        }
      }
      if (ours.harness.status !== 0 && ours.harness.message) console.log(`  harness: ${ours.harness.message}`)
    }
  }
  return { rows, totals }
}

await main()
