// Every shipped binary is what its package says it is: each `.node` in the platform tarballs of
// dist/ (`npm run package`, and `npm run package -- --target <rust target>` for the cross-built
// ones) and this machine's own build, checked against the package's `os`, `cpu` and `libc`: the
// ELF machine (x86-64, AArch64), the libc it links (glibc's libc.so.6 and no musl interpreter, or
// musl's libc and nothing of glibc's) and, for glibc builds, the newest GLIBC_ symbol version
// it needs (at most 2.17, the cross toolchain's sysroot). Mach-O and PE binaries get their
// machine checked. The ELF reader is scripts/elf.mjs, plain JS; package.mjs runs the same check
// before it packs a cross-built binary.
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

import test from 'ava'

import { binaryMismatches, GLIBC_FLOOR, newestGlibc, readElf, untar } from '../scripts/elf.mjs'

const repoRoot = fileURLToPath(new URL('..', import.meta.url))
const distDirectory = join(repoRoot, 'dist')
const manifest = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8'))
const { binaryName } = manifest.napi

/** This machine's napi platform and the os/cpu/libc its package declares. */
function host() {
  const { platform, arch } = process
  const glibc = process.report?.getReport?.().header?.glibcVersionRuntime
  const libc = platform === 'linux' ? (glibc ? 'glibc' : 'musl') : undefined
  const name =
    platform === 'linux'
      ? `linux-${arch}-${glibc ? 'gnu' : 'musl'}`
      : platform === 'win32'
        ? `win32-${arch}-msvc`
        : `${platform}-${arch}`
  return { name, fields: { os: [platform], cpu: [arch], ...(libc ? { libc: [libc] } : {}) } }
}

function describe(bytes) {
  try {
    const elf = readElf(bytes)
    return `ELF ${elf.cpu}, needs ${elf.needed.join(' ')}, newest glibc symbol ${newestGlibc(elf) ?? 'none'}`
  } catch {
    return 'not ELF'
  }
}

const tarballs = existsSync(distDirectory)
  ? readdirSync(distDirectory)
      .filter((name) => name.endsWith('.tgz'))
      .sort()
  : []
const hostPlatform = host()
const hostBinary = join(repoRoot, `${binaryName}.${hostPlatform.name}.node`)

test(`this machine's build (${binaryName}.${hostPlatform.name}.node) is what its package claims`, (t) => {
  t.true(existsSync(hostBinary), `${hostBinary} is missing: \`npm run build\` makes it, \`npm test\` runs that`)
  const bytes = readFileSync(hostBinary)
  t.deepEqual(binaryMismatches(bytes, hostPlatform.fields), [])
  t.log(describe(bytes))
  // `npm test` packs first; `npm run test:prebuilt` (the release workflow's test jobs) does not.
  if (tarballs.length === 0) t.log('dist/ holds no tarballs (`npm run package` writes them): only this build checked')
})

test('the checker rejects a binary labelled with another machine or libc', (t) => {
  t.true(existsSync(hostBinary), `${hostBinary} is missing`)
  const bytes = readFileSync(hostBinary)
  const { os, cpu, libc } = hostPlatform.fields
  const otherCpu = cpu[0] === 'x64' ? 'arm64' : 'x64'
  t.true(binaryMismatches(bytes, { os, cpu: [otherCpu], libc }).length > 0)
  if (libc) t.true(binaryMismatches(bytes, { os, cpu, libc: [libc[0] === 'glibc' ? 'musl' : 'glibc'] }).length > 0)
  t.true(binaryMismatches(bytes, { os: [os[0] === 'darwin' ? 'win32' : 'darwin'], cpu, libc }).length > 0)
})

for (const tarball of tarballs) {
  test(`${tarball}: its binaries are what its package claims`, (t) => {
    const files = untar(readFileSync(join(distDirectory, tarball)))
    const packageJson = JSON.parse(files.get('package/package.json').toString('utf8'))
    t.is(tarball, `${packageJson.name}-${packageJson.version}.tgz`, 'named as `npm pack` names the package')
    const binaries = [...files.keys()].filter((path) => path.endsWith('.node'))
    if (packageJson.name === manifest.name) {
      t.deepEqual(binaries, [], 'the main package ships no binary')
      return
    }
    // A platform package: wasm-memory-sandbox-<platform>, holding wasm-memory-sandbox.<platform>.node.
    const platform = packageJson.name.slice(`${manifest.name}-`.length)
    t.deepEqual(binaries, [`package/${binaryName}.${platform}.node`])
    t.is(packageJson.main, `${binaryName}.${platform}.node`)
    const fields = { os: packageJson.os, cpu: packageJson.cpu, libc: packageJson.libc }
    const bytes = files.get(binaries[0])
    t.deepEqual(binaryMismatches(bytes, fields), [], `${binaries[0]} vs ${JSON.stringify(fields)}`)
    const summary = describe(bytes)
    if (fields.libc?.[0] === 'glibc') t.regex(summary, /newest glibc symbol 2\.\d+$/)
    t.log(`${platform}: ${summary} (floor ${GLIBC_FLOOR})`)
  })
}
