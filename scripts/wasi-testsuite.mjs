#!/usr/bin/env node
// Runs WebAssembly/wasi-testsuite's wasm32-wasip1 tests through `new Sandbox(..., { wasi }).run()`
// and through node:wasi on the same machine, and prints per-suite counts side by side.
//
//   node scripts/wasi-testsuite.mjs <suite-directory> [--verbose] [--only ours|node] [--filter text]
//
// <suite-directory> is a checkout of the suite's prebuilt tests (its `prod/testsuite-base`
// branch, or any directory under which `*/wasm32-wasip1/manifest.json` suites are found). Nothing
// of the suite is copied into this repository. Each test runs in a child process with a time
// limit, in a fresh copy of its `root` directory (so no run sees another's leftovers), with
// exactly the arguments (after argv[0], the module's file name), environment and preopens its
// JSON specification gives, and passes when its exit code matches and its stdout and stderr begin
// with the expected text (as the suite's own runner reads them).
import { spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const TIMEOUT_MS = 60_000
const self = fileURLToPath(import.meta.url)

/** The test's specification in the legacy form: { args, env, root, dirs, exit_code, stdout, stderr }. */
function specification(wasmPath) {
  const jsonPath = wasmPath.replace(/\.wasm$/, '.json')
  const spec = existsSync(jsonPath) ? JSON.parse(readFileSync(jsonPath, 'utf8')) : {}
  if (!Array.isArray(spec.operations)) return spec
  // The operation-based form: a run, reads and a wait.
  const legacy = {}
  for (const operation of spec.operations) {
    if (operation.type === 'run')
      Object.assign(legacy, { args: operation.args, env: operation.env, root: operation.root })
    else if (operation.type === 'read') legacy[operation.id ?? 'stdout'] = operation.payload ?? ''
    else if (operation.type === 'wait') legacy.exit_code = operation.exit_code ?? 0
    else legacy.unsupported = operation.type
  }
  return legacy
}

/** Runs one test in this process (the child side); writes { exitCode, stdout, stderr } to `resultPath`. */
async function runOne(runtime, wasmPath, workDirectory, resultPath) {
  const spec = specification(wasmPath)
  if (spec.unsupported) throw new Error(`unsupported operation ${spec.unsupported}`)
  const args = [basename(wasmPath), ...(spec.args ?? [])]
  const env = spec.env ?? {}
  const preopens = {}
  if (spec.root) preopens['/'] = join(workDirectory, spec.root)
  for (const directory of spec.dirs ?? []) preopens[directory] = join(workDirectory, directory)
  // Relative paths inside the guest resolve against its preopens; the suite's runner starts the
  // engine in the test's directory, so do the same for anything the engine itself resolves.
  process.chdir(workDirectory)
  let result
  if (runtime === 'ours') {
    const { Module, Sandbox } = await import('wasm-memory-sandbox')
    const sandbox = new Sandbox(Module.fromFile(wasmPath), { wasi: { args, env, preopens } })
    const { exitCode, stdout, stderr } = sandbox.run()
    result = { exitCode, stdout: stdout.toString(), stderr: stderr.toString() }
  } else {
    // The guest writes to this child's own stdout and stderr, pipes the parent reads (as the
    // suite's runner gives engines): node:wasi polls and stats them as the real descriptors.
    const { WASI } = await import('node:wasi')
    const wasi = new WASI({ version: 'preview1', args, env, preopens, returnOnExit: true })
    const module = new WebAssembly.Module(readFileSync(wasmPath))
    const instance = new WebAssembly.Instance(module, wasi.getImportObject())
    result = { exitCode: wasi.start(instance) }
  }
  writeFileSync(resultPath, JSON.stringify(result))
}

function findSuites(directory, found = []) {
  for (const entry of readdirSync(directory, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue
    const path = join(directory, entry.name)
    if (entry.name === 'wasm32-wasip1' && existsSync(join(path, 'manifest.json'))) found.push(path)
    else if (!entry.name.endsWith('.dir')) findSuites(path, found)
  }
  return found.sort()
}

/** Runs a test in a child process; returns { pass, reason }. */
function check(runtime, wasmPath) {
  const suiteDirectory = dirname(wasmPath)
  const spec = specification(wasmPath)
  const work = mkdtempSync(join(tmpdir(), 'wasi-testsuite-'))
  try {
    // A fresh copy of every directory the test may use, symlinks kept as they are.
    for (const entry of readdirSync(suiteDirectory, { withFileTypes: true })) {
      if (entry.isDirectory())
        cpSync(join(suiteDirectory, entry.name), join(work, entry.name), { recursive: true, verbatimSymlinks: true })
    }
    const resultPath = join(work, '.result.json')
    const child = spawnSync(process.execPath, ['--no-warnings', self, '--one', runtime, wasmPath, work, resultPath], {
      input: '',
      encoding: 'utf8',
      timeout: TIMEOUT_MS,
    })
    if (child.error) return { pass: false, reason: `did not finish: ${child.error.message}` }
    if (!existsSync(resultPath)) {
      const detail = (child.stderr || child.stdout || '').trim().split('\n').slice(-3).join(' | ')
      return { pass: false, reason: `no result (status ${child.status ?? child.signal}): ${detail}` }
    }
    const result = { stdout: child.stdout, stderr: child.stderr, ...JSON.parse(readFileSync(resultPath, 'utf8')) }
    const expected = { exitCode: spec.exit_code ?? 0, stdout: spec.stdout ?? '', stderr: spec.stderr ?? '' }
    if (result.exitCode !== expected.exitCode)
      return {
        pass: false,
        reason: `exit code ${result.exitCode}, expected ${expected.exitCode}: ${result.stderr.trim().slice(0, 300)}`,
      }
    for (const stream of ['stdout', 'stderr']) {
      const got = result[stream].slice(0, expected[stream].length)
      if (got !== expected[stream])
        return { pass: false, reason: `${stream} ${JSON.stringify(got)}, expected ${JSON.stringify(expected[stream])}` }
    }
    return { pass: true }
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

async function main() {
  const argv = process.argv.slice(2)
  if (argv[0] === '--one') return runOne(...argv.slice(1))
  const directory = argv.find(
    (arg, index) => !arg.startsWith('--') && !['--only', '--filter'].includes(argv[index - 1]),
  )
  if (!directory || !statSync(directory, { throwIfNoEntry: false })?.isDirectory()) {
    console.error(
      'usage: node scripts/wasi-testsuite.mjs <suite-directory> [--verbose] [--only ours|node] [--filter text]',
    )
    process.exitCode = 2
    return
  }
  const verbose = argv.includes('--verbose')
  const only = argv.includes('--only') ? argv[argv.indexOf('--only') + 1] : undefined
  const filter = argv.includes('--filter') ? argv[argv.indexOf('--filter') + 1] : undefined
  const runtimes = ['ours', 'node'].filter((runtime) => !only || runtime === only)
  const suites = findSuites(resolve(directory))
  if (suites.length === 0) {
    console.error(`wasi-testsuite: no */wasm32-wasip1/manifest.json under ${directory}`)
    process.exitCode = 2
    return
  }
  const totals = Object.fromEntries(runtimes.map((runtime) => [runtime, 0]))
  let tests = 0
  const rows = []
  for (const suite of suites) {
    const manifest = JSON.parse(readFileSync(join(suite, 'manifest.json'), 'utf8'))
    const wasms = readdirSync(suite)
      .filter((name) => name.endsWith('.wasm') && (!filter || name.includes(filter)))
      .sort()
    const passed = Object.fromEntries(runtimes.map((runtime) => [runtime, 0]))
    for (const name of wasms) {
      const outcomes = runtimes.map((runtime) => [runtime, check(runtime, join(suite, name))])
      for (const [runtime, outcome] of outcomes) if (outcome.pass) passed[runtime]++
      const failing = outcomes.filter(([, outcome]) => !outcome.pass)
      if (verbose || failing.length > 0) {
        const marks = outcomes.map(([runtime, outcome]) => `${runtime} ${outcome.pass ? 'pass' : 'FAIL'}`).join(', ')
        console.log(`  ${manifest.name}: ${name}: ${marks}`)
        for (const [runtime, outcome] of failing) console.log(`      ${runtime}: ${outcome.reason}`)
      }
    }
    tests += wasms.length
    for (const runtime of runtimes) totals[runtime] += passed[runtime]
    rows.push([manifest.name, wasms.length, passed])
  }
  const label = { ours: 'Sandbox + run()', node: `node:wasi (Node ${process.versions.node})` }
  console.log('')
  console.log(['suite', 'tests', ...runtimes.map((runtime) => label[runtime])].join(' | '))
  for (const [name, count, passed] of rows)
    console.log([name, count, ...runtimes.map((runtime) => `${passed[runtime]} passed`)].join(' | '))
  console.log(['all', tests, ...runtimes.map((runtime) => `${totals[runtime]} passed`)].join(' | '))
  for (const runtime of runtimes)
    console.log(`${label[runtime]}: ${totals[runtime]} passed, ${tests - totals[runtime]} failed`)
}

await main()
