#!/usr/bin/env node
// Release builds of the addon for another Linux target than this machine's, with the tools each
// needs fetched by this script (idempotent, cached under .tools/, which git ignores):
//
//   aarch64-unknown-linux-gnu    napi-rs's gcc cross toolchain with a glibc 2.17 sysroot
//                                (`@napi-rs/cross-toolchain-x64-target-aarch64`, fetched by
//                                scripts/build.mjs, `--use-napi-cross`), as x64 is built
//   x86_64-unknown-linux-musl    Zig (PyPI's `ziglang`) as the C compiler and linker, through
//   aarch64-unknown-linux-musl   crates.io's `cargo-zigbuild` (`napi build --cross-compile`)
//
//   node scripts/cross.mjs <rust target>   builds, prints the path of the .node
//
// The .node lands in <cargo target dir>/napi-out/<target>/ (CARGO_TARGET_DIR is honoured), never
// beside binding.js, and the generated binding.js/binding.d.ts of the repository are left alone.
// Used by `npm run package -- --target <rust target>` and `npm run test:arm64`.
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs'
import { delimiter, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = dirname(dirname(fileURLToPath(import.meta.url)))
export const toolsDirectory = join(root, '.tools')
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))

/** Pinned, so every build uses the same tools; bump them deliberately. */
export const ZIG_VERSION = '0.15.2'
export const CARGO_ZIGBUILD_VERSION = '0.24.1'

/** Rust target -> napi platform name and how it is built here. */
export const CROSS_TARGETS = {
  'x86_64-unknown-linux-gnu': { platform: 'linux-x64-gnu', how: 'napi-cross' },
  'aarch64-unknown-linux-gnu': { platform: 'linux-arm64-gnu', how: 'napi-cross' },
  'x86_64-unknown-linux-musl': { platform: 'linux-x64-musl', how: 'zig' },
  'aarch64-unknown-linux-musl': { platform: 'linux-arm64-musl', how: 'zig' },
}

export function cargoTargetDirectory() {
  return process.env.CARGO_TARGET_DIR || join(root, 'target')
}

function log(message) {
  console.log(`cross: ${message}`)
}

function ensureRustTarget(target) {
  const installed = execFileSync('rustup', ['target', 'list', '--installed'], { encoding: 'utf8' }).split('\n')
  if (installed.includes(target)) return
  log(`rustup target add ${target}`)
  execFileSync('rustup', ['target', 'add', target], { stdio: 'inherit' })
}

function versionOf(command, args) {
  const result = spawnSync(command, args, { encoding: 'utf8' })
  return result.status === 0 ? result.stdout.trim() : null
}

/** The directory holding `zig` (PyPI's `ziglang` wheel, unpacked), fetched if needed. */
export function ensureZig() {
  const directory = join(toolsDirectory, `zig-${ZIG_VERSION}`)
  const zig = join(directory, 'ziglang', 'zig')
  if (versionOf(zig, ['version']) === ZIG_VERSION) return join(directory, 'ziglang')
  log(`fetching ziglang==${ZIG_VERSION} from PyPI into ${directory.slice(root.length + 1)}`)
  mkdirSync(toolsDirectory, { recursive: true })
  const staging = `${directory}.partial`
  rmSync(staging, { recursive: true, force: true })
  try {
    // `pip download` fetches the wheel for this machine; a wheel is a zip, unpacked with Python's
    // own zipfile: nothing is installed into any Python environment.
    const wheels = join(staging, 'wheels')
    execFileSync(
      'python3',
      ['-m', 'pip', 'download', '--no-deps', '--only-binary=:all:', '-d', wheels, `ziglang==${ZIG_VERSION}`],
      { stdio: ['ignore', 'inherit', 'inherit'] },
    )
    const wheel = execFileSync('sh', ['-c', `ls "${wheels}"/ziglang-*.whl`], { encoding: 'utf8' }).trim()
    execFileSync('python3', ['-m', 'zipfile', '-e', wheel, join(staging, 'unpacked')])
    execFileSync('chmod', ['+x', join(staging, 'unpacked', 'ziglang', 'zig')])
    const got = versionOf(join(staging, 'unpacked', 'ziglang', 'zig'), ['version'])
    if (got !== ZIG_VERSION) throw new Error(`cross: ziglang==${ZIG_VERSION} unpacked a zig that says ${got}`)
    rmSync(directory, { recursive: true, force: true })
    renameSync(join(staging, 'unpacked'), directory)
  } finally {
    rmSync(staging, { recursive: true, force: true })
  }
  return join(directory, 'ziglang')
}

/** The directory holding `cargo-zigbuild`, built from crates.io if needed. */
export function ensureCargoZigbuild() {
  const directory = join(toolsDirectory, `cargo-zigbuild-${CARGO_ZIGBUILD_VERSION}`)
  const bin = join(directory, 'bin')
  if (versionOf(join(bin, 'cargo-zigbuild'), ['--version']) === `cargo-zigbuild ${CARGO_ZIGBUILD_VERSION}`) return bin
  log(`cargo install cargo-zigbuild@${CARGO_ZIGBUILD_VERSION} into ${directory.slice(root.length + 1)}`)
  const env = { ...process.env }
  delete env.CARGO_TARGET_DIR // its own temporary target directory, not the addon's
  execFileSync(
    'cargo',
    ['install', '--locked', '--root', directory, '--version', CARGO_ZIGBUILD_VERSION, 'cargo-zigbuild'],
    { stdio: 'inherit', env },
  )
  return bin
}

function specOf(target) {
  const spec = CROSS_TARGETS[target]
  if (!spec) {
    throw new Error(`cross: no way to build ${target} here (known: ${Object.keys(CROSS_TARGETS).join(', ')})`)
  }
  return spec
}

/** Where the build of `target` leaves its .node (present only once a build has succeeded). */
export function binaryPath(target) {
  const spec = specOf(target)
  return join(cargoTargetDirectory(), 'napi-out', target, `${manifest.napi.binaryName}.${spec.platform}.node`)
}

/** The .node an earlier build of `target` left (CI builds them beside the tests), or an error. */
export function builtTarget(target) {
  const binary = binaryPath(target)
  if (!existsSync(binary)) {
    throw new Error(`cross: ${target} has not been built into ${dirname(binary)}: run node scripts/cross.mjs ${target}`)
  }
  return binary
}

/** Builds the release addon for `target`; returns the path of the .node. */
export function buildTarget(target) {
  const spec = specOf(target)
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error('cross: cross builds are set up for a Linux x64 host only')
  }
  ensureRustTarget(target)
  const outputDirectory = join(cargoTargetDirectory(), 'napi-out', target)
  rmSync(outputDirectory, { recursive: true, force: true })
  mkdirSync(outputDirectory, { recursive: true })
  const env = { ...process.env }
  const args = ['--target', target, '--output-dir', outputDirectory]
  if (spec.how === 'napi-cross') {
    args.push('--use-napi-cross')
  } else {
    env.PATH = [ensureZig(), ensureCargoZigbuild(), env.PATH].join(delimiter)
    args.push('--cross-compile')
  }
  const started = Date.now()
  log(`building ${target} (${spec.how === 'zig' ? 'Zig, cargo-zigbuild' : 'napi-rs cross toolchain, glibc 2.17'})`)
  // scripts/build.mjs fetches napi-rs's toolchain; its binding.js and binding.d.ts go to the
  // output directory with the .node, since --js and --dts are relative to it.
  const { status, signal } = spawnSync(process.execPath, [join(root, 'scripts', 'build.mjs'), ...args], {
    cwd: root,
    stdio: 'inherit',
    env,
  })
  if (status !== 0) throw new Error(`cross: the build of ${target} failed (${signal ?? status})`)
  const binary = binaryPath(target)
  if (!existsSync(binary)) throw new Error(`cross: the build of ${target} made no ${binary}`)
  log(`${target} built in ${((Date.now() - started) / 1000).toFixed(0)} s: ${binary}`)
  return binary
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const targets = process.argv.slice(2)
  if (targets.length === 0) {
    console.error(`usage: node scripts/cross.mjs <rust target>...  (${Object.keys(CROSS_TARGETS).join(', ')})`)
    process.exitCode = 2
  } else {
    for (const target of targets) console.log(buildTarget(target))
  }
}
