#!/usr/bin/env node
// Writes into dist/ the tarballs a user installs, laid out as napi-rs publishes them: the main
// package (loader, types, docs; `optionalDependencies` naming one package per platform, as
// `napi prepublish` writes them) and the platform package for this machine, holding the `.node`
// that `npm run build` made. Run by `npm run package` (which builds first) and by `npm test`.
//
// The repository's own package.json is never rewritten: everything is staged under
// target/package/ and packed from there.
//
// `npm run package -- --target <rust target>` (repeatable) also cross-builds that target
// (scripts/cross.mjs: aarch64-unknown-linux-gnu, x86_64-unknown-linux-musl,
// aarch64-unknown-linux-musl) and packs its binary package beside the main one, after checking
// that the binary's ELF machine and libc are what the package's `cpu` and `libc` claim
// (scripts/elf.mjs). dist/ then keeps the tarballs of targets packed before, and
// dist/packages.json lists them under `targets`; with no --target, dist/ is emptied first.
// `--prebuilt` packs what `node scripts/cross.mjs <target>` built earlier instead of building
// (CI builds the other targets while the tests run, in a target directory of their own).
import { execFileSync } from 'node:child_process'
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { buildTarget, builtTarget, CROSS_TARGETS } from './cross.mjs'
import { mismatches, readElf } from './elf.mjs'

const root = dirname(dirname(fileURLToPath(import.meta.url)))
const distDirectory = join(root, 'dist')
const stagingDirectory = join(root, 'target', 'package')
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
const { binaryName } = manifest.napi
/**
 * What users may download at most, main package and this platform's binary together: 8 MiB held
 * until WASI 0.3 (component-model-async, wasmtime-wasi's p3) added 1.21 MiB packed; the issue
 * that brought it allows 10 MiB with each feature's cost given (README, "Install"). One codegen
 * unit per dependency then took 0.57 MiB off again (8.59 MiB).
 */
const SIZE_BUDGET_BYTES = 10 * 1024 * 1024

const napi = (...args) =>
  execFileSync(process.execPath, [join(root, 'node_modules', '@napi-rs', 'cli', 'dist', 'cli.js'), ...args], {
    cwd: root,
    stdio: 'pipe', // its progress lines are noise; a failure throws with its output
  })

function npmPack(directory) {
  const output = execFileSync('npm', ['pack', '--json', '--pack-destination', distDirectory], {
    cwd: directory,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const [packed] = JSON.parse(output)
  return { name: packed.name, file: join(distDirectory, packed.filename), size: packed.size, files: packed.files }
}

/** This machine's napi platform name, as the generated loader computes it (linux-x64-gnu, darwin-arm64...). */
function hostPlatformName() {
  const { platform, arch } = process
  if (platform === 'linux') {
    const glibc = process.report?.getReport?.().header?.glibcVersionRuntime
    return `linux-${arch}-${glibc ? 'gnu' : 'musl'}`
  }
  if (platform === 'win32') return `win32-${arch}-msvc`
  return `${platform}-${arch}`
}

/** The Rust targets named by `--target T`, `--target=T` or `-t T`. */
function requestedTargets(argv) {
  const targets = []
  for (let index = 0; index < argv.length; index++) {
    const arg = argv[index]
    if (arg === '--target' || arg === '-t') targets.push(argv[++index])
    else if (arg.startsWith('--target=')) targets.push(arg.slice('--target='.length))
    else if (arg !== '--prebuilt')
      throw new Error(
        `package: unknown argument ${arg} (usage: node scripts/package.mjs [--prebuilt] [--target <rust target>]...)`,
      )
  }
  for (const target of targets) {
    if (!CROSS_TARGETS[target]) {
      throw new Error(`package: cannot build ${target} here (known: ${Object.keys(CROSS_TARGETS).join(', ')})`)
    }
  }
  return targets
}

const hostPlatform = hostPlatformName()
const prebuilt = process.argv.includes('--prebuilt')
const targets = requestedTargets(process.argv.slice(2)).filter(
  (target) => CROSS_TARGETS[target].platform !== hostPlatform,
)
// Cross builds first: a failed one leaves dist/ as it was.
const crossBinaries = targets.map((target) => ({
  target,
  platform: CROSS_TARGETS[target].platform,
  built: prebuilt ? builtTarget(target) : buildTarget(target),
}))
const previousRecord =
  targets.length > 0 && existsSync(join(distDirectory, 'packages.json'))
    ? JSON.parse(readFileSync(join(distDirectory, 'packages.json'), 'utf8'))
    : null

rmSync(stagingDirectory, { recursive: true, force: true })
if (targets.length === 0) rmSync(distDirectory, { recursive: true, force: true })
mkdirSync(distDirectory, { recursive: true })

// One directory per release target (npm/<platform>/package.json with os, cpu, libc), as the
// release workflow makes them. There `napi artifacts` then fills every one; here only this
// machine's binary exists (`napi artifacts` refuses a partial set), so it is copied in by hand.
const npmDirectory = join(stagingDirectory, 'npm')
napi('create-npm-dirs', '--npm-dir', npmDirectory)

const platformPackages = readdirSync(npmDirectory).map((platform) => ({
  platform,
  directory: join(npmDirectory, platform),
  manifest: JSON.parse(readFileSync(join(npmDirectory, platform, 'package.json'), 'utf8')),
}))

const hostPackage = platformPackages.find(({ platform }) => platform === hostPlatform)
if (!hostPackage) {
  throw new Error(`package: ${hostPlatform} is not among the release targets (package.json napi.targets)`)
}
const builtBinary = join(root, `${binaryName}.${hostPlatform}.node`)
// With --target, a machine that has not built its own binary still packs the targets'.
const packHost = targets.length === 0 || existsSync(builtBinary)
if (!existsSync(builtBinary) && packHost) {
  throw new Error(`package: no ${binaryName}.${hostPlatform}.node was built; run \`npm run build\` first`)
}
if (!packHost) console.log(`package: no ${binaryName}.${hostPlatform}.node built here; packing the targets only`)
const hostBinary = join(hostPackage.directory, `${binaryName}.${hostPlatform}.node`)
if (packHost) copyFileSync(builtBinary, hostBinary)

const crossPackages = crossBinaries.map(({ target, platform, built }) => {
  const crossPackage = platformPackages.find((candidate) => candidate.platform === platform)
  if (!crossPackage)
    throw new Error(`package: ${platform} is not among the release targets (package.json napi.targets)`)
  const binary = join(crossPackage.directory, `${binaryName}.${platform}.node`)
  copyFileSync(built, binary)
  const { os, cpu, libc } = crossPackage.manifest
  const problems = mismatches(readElf(readFileSync(binary)), { os, cpu, libc })
  if (problems.length > 0) {
    throw new Error(
      `package: the ${target} binary does not match ${crossPackage.manifest.name}: ${problems.join('; ')}`,
    )
  }
  return { ...crossPackage, target, binary }
})

// The main package: what `napi prepublish` would publish, staged rather than edited in place.
const mainDirectory = join(stagingDirectory, 'main')
mkdirSync(mainDirectory, { recursive: true })
for (const file of [...manifest.files, 'README.md', 'LICENSE']) {
  mkdirSync(dirname(join(mainDirectory, file)), { recursive: true })
  // `files` entries may be folders (lib/): copied whole.
  cpSync(join(root, file), join(mainDirectory, file), { recursive: true })
}
const published = { ...manifest }
delete published.devDependencies
delete published.scripts
delete published.ava
delete published.prettier
published.optionalDependencies = Object.fromEntries(
  platformPackages.map(({ manifest: platformManifest }) => [platformManifest.name, platformManifest.version]),
)
writeFileSync(join(mainDirectory, 'package.json'), `${JSON.stringify(published, null, 2)}\n`)

function describe({ file, size, files }) {
  console.log(
    `package: ${file.slice(root.length + 1)}  ${(size / 1024 / 1024).toFixed(2)} MiB packed, ` +
      `${(files.reduce((sum, { size: fileSize }) => sum + fileSize, 0) / 1024 / 1024).toFixed(2)} MiB unpacked, ` +
      `${files.length} files: ${files.map(({ path }) => path).join(', ')}`,
  )
}

/** Fails if the main package and one platform's package exceed what a user downloads at most. */
function checkBudget(platform, main, binaryPackage) {
  const total = main.size + binaryPackage.size
  console.log(
    `package: ${(total / 1024 / 1024).toFixed(2)} MiB in all for ${platform} (budget ${SIZE_BUDGET_BYTES / 1024 / 1024} MiB)`,
  )
  if (total > SIZE_BUDGET_BYTES) {
    throw new Error(`package: the ${platform} tarballs total ${total} bytes, over the ${SIZE_BUDGET_BYTES}-byte budget`)
  }
}

const mainPacked = npmPack(mainDirectory)
const packed = packHost ? [mainPacked, npmPack(hostPackage.directory)] : [mainPacked]
for (const entry of packed) describe(entry)
if (packHost) checkBudget(hostPlatform, mainPacked, packed[1])
const relative = (file) => file.slice(distDirectory.length + 1)
const crossRecords = crossPackages.map(({ platform, target, directory, binary }) => {
  const crossPacked = npmPack(directory)
  describe(crossPacked)
  checkBudget(platform, mainPacked, crossPacked)
  return [
    platform,
    {
      target,
      name: crossPacked.name,
      file: relative(crossPacked.file),
      size: crossPacked.size,
      binaryBytes: statSync(binary).size,
    },
  ]
})
// A record the install test reads, so it installs exactly what was packed.
const record = packHost
  ? {
      version: manifest.version,
      platform: hostPlatform,
      tarballs: packed.map(({ name, file }) => ({ name, file: relative(file) })),
      binaryBytes: statSync(hostBinary).size,
    }
  : {
      ...(previousRecord?.version === manifest.version ? previousRecord : {}),
      version: manifest.version,
    }
if (targets.length > 0) {
  // Packed targets accumulate over runs (of the same version); the main package is the newest.
  const kept = previousRecord?.version === manifest.version ? (previousRecord.targets ?? {}) : {}
  record.main = { name: mainPacked.name, file: relative(mainPacked.file) }
  record.targets = { ...kept, ...Object.fromEntries(crossRecords) }
}
writeFileSync(join(distDirectory, 'packages.json'), `${JSON.stringify(record, null, 2)}\n`)
