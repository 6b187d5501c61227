#!/usr/bin/env node
// `npm run build`: the release addon, `napi build --platform --release` plus any arguments given.
//
// On a Linux glibc host with no explicit --target, the addon is linked against glibc 2.17 with
// napi-rs's prebuilt cross toolchain (`--use-napi-cross`), so the binary built here, the one the
// tests, the benchmark and `npm run package` use, runs on every glibc Linux that Node 20+ runs
// on, not only on distributions as new as this machine. The napi CLI fetches that toolchain by
// its own package's version, which has no x86_64 build on the registry (1.0.5 exists only for
// some targets), so this script fetches the newest published one into the place the CLI looks.
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { homedir, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = dirname(dirname(fileURLToPath(import.meta.url)))
const require = createRequire(join(root, 'node_modules', '@napi-rs', 'cli', 'package.json'))
const args = process.argv.slice(2)
const napiCli = join(root, 'node_modules', '@napi-rs', 'cli', 'dist', 'cli.js')

const CROSS_TRIPLES = { x64: 'x86_64-unknown-linux-gnu', arm64: 'aarch64-unknown-linux-gnu' }

function isGlibcLinux() {
  return process.platform === 'linux' && Boolean(process.report?.getReport?.().header?.glibcVersionRuntime)
}

/** Makes sure napi's `--use-napi-cross` finds a toolchain for `triple` without fetching it itself. */
function ensureCrossToolchain(triple) {
  const { version } = require('@napi-rs/cross-toolchain/package.json')
  const toolchainPath = join(homedir(), '.napi-rs', 'cross-toolchain', version, triple)
  const gcc = join(toolchainPath, 'bin', `${triple}-gcc`)
  if (existsSync(gcc) && existsSync(join(toolchainPath, 'package.json'))) return
  const targetName = { x86_64: 'x86_64', aarch64: 'aarch64' }[triple.split('-')[0]]
  if (!targetName || !triple.endsWith('-linux-gnu')) throw new Error(`build: no napi cross toolchain for ${triple}`)
  const packageName = `@napi-rs/cross-toolchain-${process.arch}-target-${targetName}`
  const published = JSON.parse(execFileSync('npm', ['view', packageName, 'versions', '--json'], { encoding: 'utf8' }))
  const newest = [published].flat().at(-1)
  console.log(`build: fetching ${packageName}@${newest} (a gcc toolchain with a glibc 2.17 sysroot)`)
  const staging = mkdtempSync(join(tmpdir(), 'napi-cross-'))
  try {
    const tarball = execFileSync('npm', ['pack', `${packageName}@${newest}`, '--loglevel=error'], {
      cwd: staging,
      encoding: 'utf8',
    })
      .trim()
      .split('\n')
      .pop()
    execFileSync('tar', ['-xzf', join(staging, tarball), '-C', staging])
    rmSync(toolchainPath, { recursive: true, force: true })
    mkdirSync(toolchainPath, { recursive: true })
    execFileSync('tar', ['-xJf', join(staging, 'package', `${triple}.tar.xz`), '-C', toolchainPath])
    if (!existsSync(gcc)) throw new Error(`build: ${packageName}@${newest} has no ${gcc}`)
    // The napi CLI takes a toolchain directory with a package.json as already unpacked.
    if (!existsSync(join(toolchainPath, 'package.json')))
      writeFileSync(join(toolchainPath, 'package.json'), `${JSON.stringify({ name: packageName, version: newest })}\n`)
  } finally {
    rmSync(staging, { recursive: true, force: true })
  }
}

// The generated loader is binding.js (and binding.d.ts); index.js and index.d.ts are written by hand
// over it, adding the WebAssembly JS API namespace (lib/webassembly).
const napiArgs = ['build', '--platform', '--release', '--js', 'binding.js', '--dts', 'binding.d.ts', ...args]
const targetIndex = args.findIndex((arg) => arg === '--target' || arg === '-t')
const explicitTarget =
  targetIndex >= 0 ? args[targetIndex + 1] : args.find((arg) => arg.startsWith('--target='))?.slice(9)
if (args.includes('--use-napi-cross')) {
  // The release workflow asks for it by name: make sure the toolchain is where napi looks.
  ensureCrossToolchain(explicitTarget ?? CROSS_TRIPLES[process.arch])
} else if (!explicitTarget && isGlibcLinux() && CROSS_TRIPLES[process.arch]) {
  if (process.env.WASM_MEMORY_SANDBOX_NATIVE_TOOLCHAIN === '1') {
    console.log("build: WASM_MEMORY_SANDBOX_NATIVE_TOOLCHAIN=1, linking against this machine's glibc")
  } else {
    ensureCrossToolchain(CROSS_TRIPLES[process.arch])
    napiArgs.push('--target', CROSS_TRIPLES[process.arch], '--use-napi-cross')
  }
}
// Cross builds through Zig run `cargo zigbuild`, which napi spawns only without a `CARGO` override.
const env = args.includes('--cross-compile')
  ? process.env
  : { ...process.env, CARGO: join(root, 'scripts', 'napi-cargo.mjs') }
const { status, signal } = spawnSync(process.execPath, [napiCli, ...napiArgs], { cwd: root, stdio: 'inherit', env })
process.exitCode = status ?? (signal ? 1 : 0)
