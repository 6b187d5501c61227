// The code cache on disk, each case in fresh child processes pointed at a temporary cache
// directory of its own (WASM_MEMORY_SANDBOX_CACHE_DIR), never at the user's real cache.
import { spawn, spawnSync } from 'node:child_process'
import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

import test from 'ava'

const child = fileURLToPath(new URL('helpers/cache-child.mjs', import.meta.url))

/** A module with enough functions to take a noticeable time to compile; `run(x)` = x * 3 + `salt`. */
function moduleText(salt, functions = 400) {
  const bodies = Array.from(
    { length: functions },
    (_, index) =>
      `(func $f${index} (param i32) (result i32) (i32.add (i32.mul (local.get 0) (i32.const ${index + 1})) (i32.const ${salt})))`,
  )
  return `(module ${bodies.join('\n')}
    (func (export "run") (param i32) (result i32) (i32.add (i32.mul (local.get 0) (i32.const 3)) (i32.const ${salt}))))`
}

function fixture(t, { salt = 7, functions } = {}) {
  const root = mkdtempSync(join(tmpdir(), 'wasm-memory-sandbox-cache-test-'))
  const cache = join(root, 'cache')
  const modulePath = join(root, 'module.wat')
  writeFileSync(modulePath, moduleText(salt, functions))
  t.teardown(() => spawnSync('rm', ['-rf', root]))
  return { root, cache, modulePath, expected: 20 * 3 + salt }
}

function environment(extra) {
  const env = { ...process.env, ...extra }
  for (const [name, value] of Object.entries(env)) if (value === undefined) delete env[name]
  return env
}

/** Runs the child synchronously; returns its JSON report and stderr. */
function runChild(t, { cache, modulePath, options, mode, env = {}, shell }) {
  const args = [child, modulePath, options ? JSON.stringify(options) : '', mode ?? 'sync']
  const run = shell
    ? spawnSync('sh', ['-c', `${shell}; exec "$0" "$@"`, process.execPath, ...args], {
        encoding: 'utf8',
        env: environment({ WASM_MEMORY_SANDBOX_CACHE_DIR: cache, ...env }),
      })
    : spawnSync(process.execPath, args, {
        encoding: 'utf8',
        env: environment({ WASM_MEMORY_SANDBOX_CACHE_DIR: cache, ...env }),
      })
  t.is(run.status, 0, `child failed: ${run.stderr}`)
  return { ...JSON.parse(run.stdout.trim().split('\n').pop()), stderr: run.stderr }
}

const cacheFiles = (cache) => readdirSync(cache).filter((name) => name.endsWith('.cwasm'))

test('a fresh process misses and writes a private file; the next fresh process hits it', (t) => {
  const setup = fixture(t)
  const first = runChild(t, setup)
  t.is(first.result, setup.expected)
  t.like(first.stats, { enabled: true, directory: setup.cache, hits: 0, misses: 1, writes: 1, rejected: 0 })
  t.is(statSync(setup.cache).mode & 0o777, 0o700)
  const files = cacheFiles(setup.cache)
  t.is(files.length, 1)
  t.regex(files[0], /^[0-9a-f]{64}-[0-9a-f]{64}\.cwasm$/)
  t.is(statSync(join(setup.cache, files[0])).mode & 0o777, 0o600)
  t.deepEqual(
    readdirSync(setup.cache).filter((name) => !name.endsWith('.cwasm')),
    [],
    'no temporary file is left',
  )

  const second = runChild(t, setup)
  t.is(second.result, setup.expected)
  t.like(second.stats, { hits: 1, misses: 0, writes: 0, rejected: 0 })
  t.deepEqual(cacheFiles(setup.cache), files)
})

test('other bytes, another compiler and the async path each have their own entry', (t) => {
  const setup = fixture(t)
  runChild(t, setup)
  const winch = runChild(t, { ...setup, options: { compiler: 'winch' } })
  t.is(winch.compiler, 'winch')
  t.is(winch.result, setup.expected)
  t.like(winch.stats, { hits: 0, misses: 1, writes: 1 })
  const other = fixture(t, { salt: 8 })
  const changed = runChild(t, { ...setup, modulePath: other.modulePath })
  t.is(changed.result, other.expected)
  t.like(changed.stats, { hits: 0, misses: 1 })
  t.is(cacheFiles(setup.cache).length, 3)
  const asynchronous = runChild(t, { ...setup, mode: 'async' })
  t.is(asynchronous.result, setup.expected)
  t.like(asynchronous.stats, { hits: 1, misses: 0 })
})

/** Damages the one cache file in `cache` in place, keeping its name. */
const damages = {
  truncated(path) {
    truncateSync(path, Math.floor(statSync(path).size / 2))
  },
  'one byte flipped'(path) {
    const bytes = readFileSync(path)
    bytes[Math.floor(bytes.length / 2)] ^= 0x40
    writeFileSync(path, bytes)
  },
  emptied(path) {
    truncateSync(path, 0)
  },
  'garbage of the same length'(path) {
    writeFileSync(path, Buffer.alloc(statSync(path).size, 0xcc))
  },
}

for (const [label, damage] of Object.entries(damages)) {
  test(`a cache file ${label} is detected, deleted and replaced by a fresh compile, never run`, (t) => {
    const setup = fixture(t)
    runChild(t, setup)
    const [name] = cacheFiles(setup.cache)
    damage(join(setup.cache, name))
    const after = runChild(t, setup)
    t.is(after.result, setup.expected)
    t.like(after.stats, { hits: 0, rejected: 1, misses: 1, writes: 1 })
    t.deepEqual(cacheFiles(setup.cache), [name], 'the fresh file has the original name (same contents)')
    const again = runChild(t, setup)
    t.like(again.stats, { hits: 1, rejected: 0 })
  })
}

test("a foreign artifact with a valid checksum (another engine's) is refused by wasmtime and replaced", (t) => {
  const setup = fixture(t)
  runChild(t, setup)
  const [craneliftName] = cacheFiles(setup.cache)
  const elsewhere = { ...setup, cache: join(setup.root, 'winch-cache') }
  runChild(t, { ...elsewhere, options: { compiler: 'winch' } })
  const [winchName] = cacheFiles(elsewhere.cache)
  // The Winch artifact, under the Cranelift key, with its own (correct) checksum in the name.
  const planted = `${craneliftName.slice(0, 64)}-${winchName.slice(65)}`
  renameSync(join(setup.cache, craneliftName), join(setup.root, 'set-aside'))
  renameSync(join(elsewhere.cache, winchName), join(setup.cache, planted))
  const after = runChild(t, setup)
  t.is(after.result, setup.expected)
  t.is(after.compiler, 'cranelift')
  t.like(after.stats, { hits: 0, rejected: 1, misses: 1, writes: 1 })
  t.deepEqual(cacheFiles(setup.cache), [craneliftName])
})

test('four processes racing into one empty cache all succeed and leave only whole files', async (t) => {
  const setup = fixture(t, { functions: 3000 })
  const racers = Array.from(
    { length: 4 },
    () =>
      new Promise((resolve, reject) => {
        const racer = spawn(process.execPath, [child, setup.modulePath], {
          env: environment({ WASM_MEMORY_SANDBOX_CACHE_DIR: setup.cache }),
        })
        let stdout = ''
        let stderr = ''
        racer.stdout.on('data', (chunk) => (stdout += chunk))
        racer.stderr.on('data', (chunk) => (stderr += chunk))
        racer.on('error', reject)
        racer.on('close', (code) => (code === 0 ? resolve(JSON.parse(stdout)) : reject(new Error(stderr))))
      }),
  )
  const reports = await Promise.all(racers)
  for (const report of reports) {
    t.is(report.result, setup.expected)
    t.is(report.stats.rejected, 0)
    t.is(report.stats.hits + report.stats.misses, 1)
  }
  const names = readdirSync(setup.cache)
  t.true(names.length >= 1)
  t.true(
    names.every((name) => /^[0-9a-f]{64}-[0-9a-f]{64}\.cwasm$/.test(name)),
    `only whole files: ${names}`,
  )
  const after = runChild(t, setup)
  t.like(after.stats, { hits: 1, misses: 0, rejected: 0 })
})

test('a cache directory writable by others is not used, and the process says so once on stderr', (t) => {
  const setup = fixture(t)
  mkdirSync(setup.cache)
  chmodSync(setup.cache, 0o777)
  const report = runChild(t, setup)
  t.is(report.result, setup.expected)
  t.like(report.stats, { enabled: false, directory: undefined, hits: 0, misses: 0, writes: 0 })
  t.deepEqual(readdirSync(setup.cache), [])
  t.is(report.stderr.match(/wasm-memory-sandbox: warning: the code cache directory .* is not used/g)?.length, 1)
  t.regex(report.stderr, /writable by other users \(mode 777\)/)
})

test('a cache file writable by others is not used (said once on stderr), the module compiled instead', (t) => {
  const setup = fixture(t)
  runChild(t, setup)
  const [name] = cacheFiles(setup.cache)
  chmodSync(join(setup.cache, name), 0o666)
  const report = runChild(t, setup)
  t.is(report.result, setup.expected)
  t.like(report.stats, { hits: 0, untrusted: 1, misses: 1 })
  t.is(report.stderr.match(/warning: the code cache file .* is not used: it is writable by other users/g)?.length, 1)
})

const root = process.getuid?.() === 0
// Giving a directory away needs root; the mode checks above run everywhere.
;(root ? test : test.skip)('a cache directory owned by another user is not used', (t) => {
  const setup = fixture(t)
  mkdirSync(setup.cache, { mode: 0o700 })
  chownSync(setup.cache, 65534, 65534)
  const report = runChild(t, setup)
  t.is(report.result, setup.expected)
  t.like(report.stats, { enabled: false, misses: 0 })
  t.regex(report.stderr, /is owned by user 65534, not by this user \(0\)/)
})

test('WASM_MEMORY_SANDBOX_CACHE=0 turns the cache off: nothing is read or written', (t) => {
  const setup = fixture(t)
  runChild(t, setup)
  const files = cacheFiles(setup.cache)
  const report = runChild(t, { ...setup, env: { WASM_MEMORY_SANDBOX_CACHE: '0' } })
  t.is(report.result, setup.expected)
  t.like(report.stats, { enabled: false, directory: undefined, hits: 0, misses: 0, writes: 0 })
  t.deepEqual(cacheFiles(setup.cache), files)
  t.is(report.stderr, '')
})

test('a full disk falls back to compiling with no error: the write fails and is counted', (t) => {
  const setup = fixture(t)
  // A file-size limit of 1 KiB: every cache file write fails with EFBIG, as on a full disk.
  const report = runChild(t, { ...setup, shell: 'ulimit -f 2', env: { IGNORE_SIGXFSZ: '1' } })
  t.is(report.result, setup.expected)
  t.like(report.stats, { enabled: true, misses: 1, writes: 0, writeFailures: 1 })
  t.deepEqual(readdirSync(setup.cache), [], 'the partial temporary file is removed')
  t.is(report.stderr, '')
})

test('a cache location that cannot be created (read-only) falls back to compiling with no error', (t) => {
  const setup = fixture(t)
  const report = runChild(t, { ...setup, cache: '/proc/self/wasm-memory-sandbox-cache' })
  t.is(report.result, setup.expected)
  t.like(report.stats, { enabled: false, hits: 0, misses: 0 })
  t.is(report.stderr, '')
})

// Root writes through read-only modes; the full-disk test covers failing writes there.
;(root ? test.skip : test)('a read-only cache directory: hits still load, misses compile, nothing fails', (t) => {
  const setup = fixture(t)
  runChild(t, setup)
  chmodSync(setup.cache, 0o500)
  t.teardown(() => chmodSync(setup.cache, 0o700))
  t.like(runChild(t, setup).stats, { hits: 1 })
  const other = fixture(t, { salt: 9 })
  const report = runChild(t, { ...setup, modulePath: other.modulePath })
  t.is(report.result, other.expected)
  t.like(report.stats, { misses: 1, writeFailures: 1 })
})
