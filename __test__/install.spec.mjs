// The package as users get it: the tarballs `npm run package` wrote into dist/ (the main package
// and this platform's binary package), installed into an empty project by a Node with no Rust
// toolchain in reach (no cargo, rustc or rustup on PATH, HOME elsewhere), then used there through
// `require` and `import`. `npm test` runs this under every Node line.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

import test from 'ava'

const repoRoot = fileURLToPath(new URL('..', import.meta.url))
const distDirectory = join(repoRoot, 'dist')
const record = existsSync(join(distDirectory, 'packages.json'))
  ? JSON.parse(readFileSync(join(distDirectory, 'packages.json'), 'utf8'))
  : null

if (!record) {
  console.warn(
    'install.spec: SKIPPED: dist/ holds no packed tarballs (dist/packages.json is missing); ' +
      '`npm run package` writes them and `npm test` runs it first.',
  )
}
const installTest = record ? test.serial : test.skip

/** A PATH with this Node (and its npm) and the system's basic tools, but no Rust toolchain. */
function pathWithoutRust() {
  const directories = [dirname(process.execPath), '/usr/bin', '/bin']
  return directories.filter((directory) => !existsSync(join(directory, 'cargo'))).join(delimiter)
}

let project
let installEnv
let installSeconds

test.before(() => {
  if (!record) return
  project = mkdtempSync(join(tmpdir(), 'wms-install-'))
  const home = join(project, 'home')
  // This process's environment (certificates, proxies, registry settings all pass through) minus
  // everything that points at Rust or at this repository's own npm run.
  installEnv = Object.fromEntries(
    Object.entries(process.env).filter(
      ([name]) =>
        !/^(CARGO|RUSTUP|RUSTC|RUST_|npm_package_|npm_lifecycle_|npm_config_(local_)?prefix$|INIT_CWD$)/i.test(name),
    ),
  )
  Object.assign(installEnv, {
    PATH: pathWithoutRust(),
    HOME: home,
    npm_config_cache: join(home, '.npm'),
    npm_config_update_notifier: 'false',
    npm_config_fund: 'false',
    npm_config_audit: 'false',
  })
  // The machine-wide npm settings (a CA file, a registry) live in the system npm's config;
  // a Node line's own npm does not read it.
  for (const globalConfig of ['/usr/etc/npmrc', '/etc/npmrc']) {
    if (existsSync(globalConfig) && !installEnv.npm_config_globalconfig)
      installEnv.npm_config_globalconfig = globalConfig
  }
  const app = join(project, 'app')
  spawnSync('mkdir', ['-p', app, home])
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }))
  const tarballs = record.tarballs.map(({ file }) => join(distDirectory, file))
  const started = process.hrtime.bigint()
  const npmCli = join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js')
  const npm = existsSync(npmCli) ? [process.execPath, npmCli] : ['npm']
  const result = spawnSync(npm[0], [...npm.slice(1), 'install', '--no-package-lock', ...tarballs], {
    cwd: app,
    env: installEnv,
    encoding: 'utf8',
  })
  installSeconds = Number(process.hrtime.bigint() - started) / 1e9
  if (result.status !== 0) {
    throw new Error(`npm install of ${tarballs.join(' ')} failed:\n${result.stdout}\n${result.stderr}`)
  }
})

test.after.always(() => {
  if (project) rmSync(project, { recursive: true, force: true })
})

function runInApp(t, fileName, source) {
  const app = join(project, 'app')
  writeFileSync(join(app, fileName), source)
  const result = spawnSync(process.execPath, [fileName], { cwd: app, env: installEnv, encoding: 'utf8' })
  t.is(result.status, 0, `node ${fileName} failed:\n${result.stdout}\n${result.stderr}`)
  return result.stdout
}

installTest('the install needs no Rust toolchain and ships nothing but the package', (t) => {
  for (const tool of ['cargo', 'rustc', 'rustup']) {
    const found = spawnSync('sh', ['-c', `command -v ${tool}`], { env: installEnv, encoding: 'utf8' })
    t.not(found.status, 0, `${tool} must not be reachable during the install, found ${found.stdout.trim()}`)
  }
  t.log(`${process.version}: npm install of the two tarballs took ${installSeconds.toFixed(1)} s`)
  const modules = join(project, 'app', 'node_modules')
  const main = readdirSync(join(modules, 'wasm-memory-sandbox')).sort()
  t.deepEqual(main, [
    'LICENSE',
    'README.md',
    'bin',
    'binding.d.ts',
    'binding.js',
    'index.d.ts',
    'index.js',
    'lib',
    'package.json',
  ])
  t.deepEqual(readdirSync(join(modules, 'wasm-memory-sandbox', 'bin')), ['wasm-memory-sandbox.js'])
  t.deepEqual(readdirSync(join(modules, 'wasm-memory-sandbox', 'lib')).sort(), [
    'argument-errors.js',
    'component',
    'facade.js',
    'native.js',
    'profile',
    'webassembly',
  ])
  t.deepEqual(readdirSync(join(modules, 'wasm-memory-sandbox', 'lib', 'profile')), ['formats.js'])
  t.true(readdirSync(join(modules, 'wasm-memory-sandbox', 'lib', 'component')).includes('dts.js'))
  t.deepEqual(readdirSync(join(modules, 'wasm-memory-sandbox', 'lib', 'webassembly')).sort(), [
    'binary.js',
    'convert.js',
    'namespace.js',
  ])
  const platform = readdirSync(join(modules, `wasm-memory-sandbox-${record.platform}`)).sort()
  t.deepEqual(platform, ['README.md', `wasm-memory-sandbox.${record.platform}.node`, 'package.json'].sort())
  const manifest = JSON.parse(readFileSync(join(modules, 'wasm-memory-sandbox', 'package.json'), 'utf8'))
  t.is(manifest.optionalDependencies[`wasm-memory-sandbox-${record.platform}`], record.version)
  t.is(manifest.devDependencies, undefined)
  t.is(manifest.scripts, undefined)
})

installTest('the tutorial runs from the installed package through require()', (t) => {
  const output = runInApp(
    t,
    'tutorial.cjs',
    `const { BufferSandbox } = require('wasm-memory-sandbox')
     const sandbox = new BufferSandbox()
     console.log('Write in Wasm, Read in JS, Index 0:')
     sandbox.storeValueInWasmMemoryBufferIndexZero(24)
     const wasmMemory = sandbox.memory()
     const bufferPointer = sandbox.getWasmMemoryBufferPointer()
     console.log(wasmMemory[bufferPointer + 0])
     console.log('Write in JS, Read in Wasm, Index 1:')
     wasmMemory[bufferPointer + 1] = 15
     console.log(sandbox.readWasmMemoryBufferAndReturnIndexOne())
     sandbox.dispose()`,
  )
  t.is(output, 'Write in Wasm, Read in JS, Index 0:\n24\nWrite in JS, Read in Wasm, Index 1:\n15\n')
})

installTest('import works too, and Module and Sandbox run a guest of their own', (t) => {
  const output = runInApp(
    t,
    'modules.mjs',
    `import { BufferSandbox, Module, Sandbox, bufferGuestWasm } from 'wasm-memory-sandbox'
     import assert from 'node:assert/strict'
     const module = new Module('(module (memory (export "memory") 1) (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))')
     assert.deepEqual(module.exports.map(({ name }) => name), ['memory', 'add'])
     const sandbox = new Sandbox(module, { fuel: 10000, timeoutMs: 1000, maxMemoryBytes: 1 << 20 })
     assert.equal(sandbox.call('add', 20, 22), 42)
     const view = sandbox.memory()
     view[8] = 15
     assert.equal(sandbox.read(8, 1)[0], 15)
     const again = new Sandbox(bufferGuestWasm())
     again.call('storeValueInWasmMemoryBufferIndexZero', 24)
     assert.equal(again.memory()[again.call('getWasmMemoryBufferPointer')], 24)
     assert.throws(() => sandbox.call('add', 'x', 1), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' })
     assert.equal(typeof BufferSandbox, 'function')
     console.log('ok')`,
  )
  t.is(output, 'ok\n')
})

installTest('the installed wasm-memory-sandbox command prints the types of a component', (t) => {
  const app = join(project, 'app')
  const command = join(app, 'node_modules', '.bin', 'wasm-memory-sandbox')
  const help = spawnSync(command, ['--help'], { cwd: app, env: installEnv, encoding: 'utf8' })
  t.is(help.status, 0, help.stderr)
  t.regex(help.stdout, /^Usage: wasm-memory-sandbox types /)
  const unknown = spawnSync(command, ['typo'], { cwd: app, env: installEnv, encoding: 'utf8' })
  t.is(unknown.status, 2)
  t.regex(unknown.stderr, /unknown command 'typo'/)
  writeFileSync(
    join(app, 'answer.wat'),
    `(component
       (core module $m (func (export "f") (result i32) i32.const 42))
       (core instance $i (instantiate $m))
       (func (export "the-answer") (result u32) (canon lift (core func $i "f"))))`,
  )
  const types = spawnSync(command, ['types', 'answer.wat'], { cwd: app, env: installEnv, encoding: 'utf8' })
  t.is(types.status, 0, types.stderr)
  t.regex(types.stdout, /export interface ComponentExports \{[^}]*\btheAnswer\(\): number\n/)
})

installTest('the installed types check under a strict TypeScript consumer', (t) => {
  const app = join(project, 'app')
  writeFileSync(
    join(app, 'consumer.ts'),
    `import { BufferSandbox, Sandbox } from 'wasm-memory-sandbox'
     const sandbox: BufferSandbox = new BufferSandbox()
     const view: Buffer = sandbox.memory()
     const value: number = sandbox.readWasmMemoryBufferAndReturnIndexOne()
     const other: Sandbox = new Sandbox(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]))
     // @ts-expect-error the value must be a number
     sandbox.storeValueInWasmMemoryBufferIndexZero('15')
     export { view, value, other }`,
  )
  const tsc = join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc')
  const result = spawnSync(
    process.execPath,
    [
      tsc,
      '--noEmit',
      '--strict',
      '--module',
      'node16',
      '--types',
      'node',
      '--typeRoots',
      join(repoRoot, 'node_modules', '@types'),
      'consumer.ts',
    ],
    { cwd: app, encoding: 'utf8' },
  )
  t.is(result.status, 0, result.stdout + result.stderr)
})
