#!/usr/bin/env node
// Writes into dist/ the tarballs a user installs, laid out as napi-rs publishes them: the main
// package (loader, types, docs; `optionalDependencies` naming one package per platform, as
// `napi prepublish` writes them) and the platform package for this machine, holding the `.node`
// that `npm run build` made. Run by `npm run package` (which builds first) and by `npm test`.
//
// The repository's own package.json is never rewritten: everything is staged under
// target/package/ and packed from there.
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

rmSync(stagingDirectory, { recursive: true, force: true })
rmSync(distDirectory, { recursive: true, force: true })
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

const hostPlatform = hostPlatformName()
const hostPackage = platformPackages.find(({ platform }) => platform === hostPlatform)
if (!hostPackage) {
  throw new Error(`package: ${hostPlatform} is not among the release targets (package.json napi.targets)`)
}
const builtBinary = join(root, `${binaryName}.${hostPlatform}.node`)
if (!existsSync(builtBinary)) {
  throw new Error(`package: no ${binaryName}.${hostPlatform}.node was built; run \`npm run build\` first`)
}
const hostBinary = join(hostPackage.directory, `${binaryName}.${hostPlatform}.node`)
copyFileSync(builtBinary, hostBinary)

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

const packed = [npmPack(mainDirectory), npmPack(hostPackage.directory)]
const total = packed.reduce((sum, { size }) => sum + size, 0)
for (const { file, size, files } of packed) {
  console.log(
    `package: ${file.slice(root.length + 1)}  ${(size / 1024 / 1024).toFixed(2)} MiB packed, ` +
      `${(files.reduce((sum, { size: fileSize }) => sum + fileSize, 0) / 1024 / 1024).toFixed(2)} MiB unpacked, ` +
      `${files.length} files: ${files.map(({ path }) => path).join(', ')}`,
  )
}
console.log(`package: ${(total / 1024 / 1024).toFixed(2)} MiB in all (budget ${SIZE_BUDGET_BYTES / 1024 / 1024} MiB)`)
if (total > SIZE_BUDGET_BYTES) {
  throw new Error(`package: the tarballs total ${total} bytes, over the ${SIZE_BUDGET_BYTES}-byte budget`)
}
// A record the install test reads, so it installs exactly what was packed.
writeFileSync(
  join(distDirectory, 'packages.json'),
  `${JSON.stringify(
    {
      version: manifest.version,
      platform: hostPlatform,
      tarballs: packed.map(({ name, file }) => ({ name, file: file.slice(distDirectory.length + 1) })),
      binaryBytes: statSync(hostBinary).size,
    },
    null,
    2,
  )}\n`,
)
