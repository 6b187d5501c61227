#!/usr/bin/env node
// Runs WebAssembly/wasi-testsuite's wasm32-wasip1 tests through `new Sandbox(..., { wasi }).run()`
// and through node:wasi on the same machine, and its wasm32-wasip3 component tests through
// `Component` and `instance.runAsync()` (node:wasi has no WASI 0.3), and prints per-suite counts
// side by side.
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
//
// A WASI 0.3 test is a list of operations interpreted against the running instance: `run` (args,
// env; `root` preopened as `/`), `write` to stdin (given to the guest when it starts: stdin is
// bytes here, not a stream), `read` of stdout or stderr (awaited as the guest streams them),
// `connect`/`send`/`recv` with the TCP server whose `host:port` the guest printed, and `wait` for
// the exit code.
//
// wasi:http tests (scripts/wasi-testsuite-http.mjs has the details): the mock servers a test's
// `servers` describe run in the test's process, each found by the guest as `HTTP_SERVER_<NAME>`
// (`127.0.0.1:<port>`) in its environment and the only hosts its `http.allowedHosts` allows (a
// test using wasi:http without servers gets `http: {}`, every outgoing request denied). A command
// runs with `runAsync()` as any other. A `world: wasi:http/service` test is served instead:
// `http.createServer(component.httpHandler({ wasi, http, timeoutMs }))` on 127.0.0.1 (a fresh
// instance per request), its `request` operations sent there and their status, listed headers and
// body compared as the suite's runner does, `kill` closing the served component and the mock
// servers, and `wait` passing once they closed cleanly (with the exit code 0 a killed server exits
// with). Each test has a time limit in its process as well as outside it; whatever it started is
// closed however it ends.
import { spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  parseServers,
  responseMismatch,
  sendRequest,
  serveComponent,
  startMockServers,
} from './wasi-testsuite-http.mjs'

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

/** How long a WASI 0.3 operation waits for the guest. */
const OPERATION_TIMEOUT_MS = 20_000
/** How long a whole WASI 0.3 test may take in its process (less than TIMEOUT_MS, to say why). */
const TEST_TIMEOUT_MS = 45_000
/** The limit on each call into a served component (each request's instance). */
const HANDLER_TIMEOUT_MS = 10_000
/** How long a `request` operation waits for the served component's response. */
const REQUEST_TIMEOUT_MS = 15_000

/**
 * Runs one WASI 0.3 test in this process (the child side): its operations in order against the
 * running instance or the served component; writes { exitCode, stdout, stderr } or { failure } to
 * `resultPath`.
 */
async function runComponent(wasmPath, workDirectory, resultPath) {
  const net = await import('node:net')
  const { Component } = await import('wasm-memory-sandbox')
  const jsonPath = wasmPath.replace(/\.wasm$/, '.json')
  const spec = existsSync(jsonPath) ? JSON.parse(readFileSync(jsonPath, 'utf8')) : {}
  const operations = spec.operations ?? [{ type: 'run' }, { type: 'wait' }]
  const start = operations.find((operation) => operation.type === 'run') ?? {}
  const root = start.root ?? spec.root
  const served = spec.world === 'wasi:http/service'
  const usesHttp = served || spec.proposals?.includes('http') || spec.servers !== undefined
  process.chdir(workDirectory)
  const output = { stdout: '', stderr: '' }
  const cursor = { stdout: 0, stderr: 0 }
  let wake = () => {}
  const changed = () => new Promise((resolve) => (wake = resolve))
  /** Resolves once `predicate()` is true, re-checked as output arrives. */
  async function until(predicate, what) {
    const deadline = Date.now() + OPERATION_TIMEOUT_MS
    for (;;) {
      const value = predicate()
      if (value) return value
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`timed out waiting for ${what}`)
      await Promise.race([changed(), new Promise((resolve) => setTimeout(resolve, Math.min(left, 50)))])
    }
  }
  const stream = (name) => (chunk) => {
    output[name] += chunk.toString()
    wake()
  }
  let servers // the mock servers: { env, allowedHosts, close }
  let instance // a command's instance
  let service // a served component: { port, errors, serverErrors, close }
  let finished // a command's outcome: { result } or { error }
  let running // a command's runAsync()
  let closed // a served component's close(), once `kill` started it: { done }
  const sockets = new Map()
  let result = { exitCode: undefined }
  /** What the guest and the handler said, for a failure's reason. */
  function detail() {
    const said = [
      ...(service?.errors ?? []).map((error) => `handler: ${`${error.code ?? ''} ${error.message}`.trim()}`),
    ]
    if (output.stderr.trim()) said.push(`stderr: ${output.stderr.trim().slice(-300)}`)
    return said.length > 0 ? ` (${said.join('; ')})` : ''
  }
  /** Starts the test: the mock servers, then the command running or the component served. */
  async function begin() {
    if (usesHttp) servers = await startMockServers(parseServers(spec.servers))
    const wasi = {
      args: [basename(wasmPath), ...(start.args ?? [])],
      env: { ...(start.env ?? {}), ...servers?.env },
      preopens: root ? { '/': join(workDirectory, root) } : {},
      stdin: operations
        .filter((operation) => operation.type === 'write' && (operation.id ?? 'stdin') === 'stdin')
        .map((operation) => operation.payload ?? '')
        .join(''),
      stdout: stream('stdout'),
      stderr: stream('stderr'),
      // As the suite's runner gives engines for the sockets proposal: the host's network.
      network: spec.proposals?.includes('sockets') ? true : undefined,
    }
    // Outgoing HTTP only to the test's own servers; none at all for a test without servers.
    const http = usesHttp ? (servers.allowedHosts.length > 0 ? { allowedHosts: servers.allowedHosts } : {}) : undefined
    const component = new Component(readFileSync(wasmPath))
    if (served) {
      service = await serveComponent(component, { wasi, http, timeoutMs: HANDLER_TIMEOUT_MS })
      return
    }
    instance = component.instantiate(http ? { wasi, http } : { wasi })
    running = instance.runAsync().then(
      (result) => (finished = { result }),
      (error) => (finished = { error }),
    )
  }
  async function perform() {
    await begin()
    for (const operation of operations) {
      switch (operation.type) {
        case 'run':
        case 'write':
          break
        case 'read': {
          const name = operation.id ?? 'stdout'
          const payload = operation.payload ?? ''
          await until(() => output[name].length - cursor[name] >= payload.length || finished, `${name} ${payload}`)
          const got = output[name].slice(cursor[name], cursor[name] + payload.length)
          if (got !== payload) throw new Error(`${name} ${JSON.stringify(got)}, expected ${JSON.stringify(payload)}`)
          cursor[name] += payload.length
          break
        }
        case 'connect': {
          const address = await until(
            () => /(\[[0-9a-f:]+\]|[0-9.]+|localhost):(\d+)/i.exec(output.stdout),
            'an address on stdout',
          )
          const socket = net.connect({ host: address[1].replace(/^\[|\]$/g, ''), port: Number(address[2]) })
          await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject))
          const entry = { socket, received: '' }
          socket.on('data', (data) => {
            entry.received += data.toString()
            wake()
          })
          sockets.set(operation.id, entry)
          break
        }
        case 'send':
          sockets.get(operation.id).socket.write(operation.payload ?? '')
          break
        case 'recv': {
          const entry = sockets.get(operation.id)
          const payload = operation.payload ?? ''
          await until(() => entry.received.length >= payload.length, `recv ${payload}`)
          const got = entry.received.slice(0, payload.length)
          entry.received = entry.received.slice(payload.length)
          if (got !== payload) throw new Error(`recv ${JSON.stringify(got)}, expected ${JSON.stringify(payload)}`)
          break
        }
        case 'request': {
          if (!service) throw new Error('a request operation needs a served component (world wasi:http/service)')
          if (closed) throw new Error('a request operation after kill')
          const got = await sendRequest(service.port, operation, REQUEST_TIMEOUT_MS).catch((error) => {
            throw new Error(
              `${operation.method ?? 'GET'} ${operation.path ?? '/'}: ${`${error.code ?? ''} ${error.message}`.trim()}${detail()}`,
            )
          })
          const mismatch = responseMismatch(operation, got)
          if (mismatch) throw new Error(`${mismatch}${detail()}`)
          break
        }
        case 'kill': {
          // The suite's runner signals the serving process; here the served component and the
          // mock servers close.
          if (!service) throw new Error('kill is supported for a served component (world wasi:http/service) only')
          if (closed) break
          const state = { done: false }
          closed = state
          Promise.all([service.close(), servers?.close()]).then(() => {
            state.done = true
            wake()
          })
          break
        }
        case 'wait': {
          const expected = operation.exit_code ?? 0
          if (service) {
            if (!closed) throw new Error('wait for a served component that was not killed')
            await until(() => closed.done, 'the served component to close')
            if (service.serverErrors.length > 0)
              throw new Error(`the server did not close cleanly: ${service.serverErrors[0].message}${detail()}`)
            // A server stopped by its signal exits with 0, as `wasmtime serve` does.
            if (expected !== 0) throw new Error(`exit code 0, expected ${expected}`)
            result = { exitCode: 0 }
            break
          }
          await until(() => finished, 'the guest to exit')
          if (finished.error) {
            const { code, message } = finished.error
            throw new Error(`${`${code ?? ''} ${message}`.trim()}${detail()}`)
          }
          if (finished.result.exitCode !== expected)
            throw new Error(
              `exit code ${finished.result.exitCode}, expected ${expected}: ${output.stderr.trim().slice(0, 300)}`,
            )
          result = { exitCode: finished.result.exitCode }
          break
        }
        default:
          throw new Error(`unsupported operation ${operation.type}`)
      }
    }
  }
  let timer
  try {
    await Promise.race([
      perform(),
      new Promise((resolve, reject) => {
        timer = setTimeout(
          () => reject(new Error(`the test did not finish in ${TEST_TIMEOUT_MS / 1000} s${detail()}`)),
          TEST_TIMEOUT_MS,
        )
      }),
    ])
    writeFileSync(resultPath, JSON.stringify({ ...result, ...output }))
  } catch (error) {
    writeFileSync(resultPath, JSON.stringify({ failure: `${error.code ?? ''} ${error.message}`.trim(), ...output }))
  } finally {
    clearTimeout(timer)
    for (const { socket } of sockets.values()) socket.destroy()
    instance?.dispose()
    let grace
    await Promise.race([
      Promise.allSettled([running, service?.close(), servers?.close()]),
      new Promise((resolve) => (grace = setTimeout(resolve, 1000))),
    ])
    clearTimeout(grace)
  }
}

/** Runs one test in this process (the child side); writes { exitCode, stdout, stderr } to `resultPath`. */
async function runOne(runtime, wasmPath, workDirectory, resultPath) {
  if (runtime === 'component') return runComponent(wasmPath, workDirectory, resultPath)
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

/** The suites run: preview 1 modules and WASI 0.3 components. */
const SUITES = ['wasm32-wasip1', 'wasm32-wasip3']

function findSuites(directory, found = []) {
  for (const entry of readdirSync(directory, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue
    const path = join(directory, entry.name)
    if (SUITES.includes(entry.name) && existsSync(join(path, 'manifest.json'))) found.push(path)
    else if (!entry.name.endsWith('.dir')) findSuites(path, found)
  }
  return found.sort()
}

/** Set once the run is interrupted (Ctrl-C): no further test starts, and the table shows what ran. */
let interrupted = false

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
    if (child.signal === 'SIGINT') interrupted = true
    if (child.error) return { pass: false, reason: `did not finish: ${child.error.message}` }
    if (!existsSync(resultPath)) {
      const detail = (child.stderr || child.stdout || '').trim().split('\n').slice(-3).join(' | ')
      return { pass: false, reason: `no result (status ${child.status ?? child.signal}): ${detail}` }
    }
    const result = { stdout: child.stdout, stderr: child.stderr, ...JSON.parse(readFileSync(resultPath, 'utf8')) }
    if (runtime === 'component') return result.failure ? { pass: false, reason: result.failure } : { pass: true }
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
  if (argv[0] === '--one') {
    await runOne(...argv.slice(1))
    // The result is written: whatever a test left running (a connection, a guest still winding
    // down) may not keep this process, and its caller, waiting.
    setTimeout(() => process.exit(), 3000).unref()
    return
  }
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
    console.error(
      `wasi-testsuite: no */wasm32-wasip1/ or */wasm32-wasip3/ suite (with a manifest.json) under ${directory}`,
    )
    process.exitCode = 2
    return
  }
  // Ctrl-C stops the test running (it reaches the child too) and then the run, after the test's
  // copy of its directories is removed.
  process.on('SIGINT', () => (interrupted = true))
  // Preview 1 suites run through Sandbox and node:wasi; WASI 0.3 ones through Component only.
  const rows = []
  for (const suite of suites) {
    if (interrupted) break
    const manifest = JSON.parse(readFileSync(join(suite, 'manifest.json'), 'utf8'))
    const components = basename(suite) === 'wasm32-wasip3'
    const suiteRuntimes = components ? (only === 'node' ? [] : ['component']) : runtimes
    const wasms = readdirSync(suite)
      .filter((name) => name.endsWith('.wasm') && (!filter || name.includes(filter)))
      .sort()
    const groups = new Map()
    for (const name of wasms) {
      // A turn of the event loop, so that a Ctrl-C between tests is seen.
      await new Promise((resolve) => setImmediate(resolve))
      if (interrupted) break
      const outcomes = suiteRuntimes.map((runtime) => [runtime, check(runtime, join(suite, name))])
      if (interrupted) break
      const group = components ? groupOf(name) : manifest.name
      const counts = groups.get(group) ?? { tests: 0, passed: {} }
      counts.tests++
      for (const [runtime, outcome] of outcomes) counts.passed[runtime] = (counts.passed[runtime] ?? 0) + +outcome.pass
      groups.set(group, counts)
      const failing = outcomes.filter(([, outcome]) => !outcome.pass)
      if (verbose || failing.length > 0) {
        const marks = outcomes.map(([runtime, outcome]) => `${runtime} ${outcome.pass ? 'pass' : 'FAIL'}`).join(', ')
        console.log(`  ${manifest.name}: ${name}: ${marks}`)
        for (const [runtime, outcome] of failing) console.log(`      ${runtime}: ${outcome.reason}`)
      }
    }
    for (const [group, counts] of groups) rows.push([group, counts, components])
  }
  const label = {
    ours: 'Sandbox + run()',
    node: `node:wasi (Node ${process.versions.node})`,
    component: 'Component + runAsync()',
  }
  for (const components of [false, true]) {
    const table = rows.filter((row) => row[2] === components)
    if (table.length === 0) continue
    const columns = components ? ['component'] : runtimes
    const total = { tests: 0, passed: {} }
    console.log('')
    console.log(['suite', 'tests', ...columns.map((runtime) => label[runtime])].join(' | '))
    for (const [group, counts] of table) {
      total.tests += counts.tests
      for (const runtime of columns)
        total.passed[runtime] = (total.passed[runtime] ?? 0) + (counts.passed[runtime] ?? 0)
      console.log(
        [group, counts.tests, ...columns.map((runtime) => `${counts.passed[runtime] ?? 0} passed`)].join(' | '),
      )
    }
    console.log(['all', total.tests, ...columns.map((runtime) => `${total.passed[runtime]} passed`)].join(' | '))
  }
  if (interrupted) {
    console.log('\ninterrupted: the counts are those of the tests that ran')
    process.exitCode = 130
  }
}

/** The group of a WASI 0.3 test, as the suite's description counts them. */
function groupOf(name) {
  if (name.startsWith('cli-') || name.startsWith('run-')) return 'cli'
  if (name.startsWith('filesystem-')) return 'filesystem'
  if (name.includes('clock')) return 'clocks'
  if (name.startsWith('random')) return 'random'
  if (name.startsWith('sockets-')) return 'sockets'
  if (name.startsWith('http-client')) return 'HTTP client'
  if (name.startsWith('http-service')) return 'HTTP service'
  if (name.startsWith('http-')) return 'HTTP types'
  return 'other'
}

await main()
