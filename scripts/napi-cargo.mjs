#!/usr/bin/env node
// The cargo `napi build` runs for scripts/build.mjs (through the `CARGO` variable napi honours).
//
// napi asks cargo to recompile the crate (`NAPI_FORCE_BUILD_<CRATE>=<time>`) whenever its cache
// of generated type definitions is missing, and on a fresh checkout it always is. Cargo records
// that value, so the next build, which sets none, recompiles the crate again for nothing: 3-4
// minutes on 2 cores between `npm start` and `npm test` on a fresh clone. When this target
// directory has never compiled the crate, cargo compiles it anyway (and the type definitions are
// written), so the request is dropped there; otherwise it is passed on untouched.
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = dirname(dirname(fileURLToPath(import.meta.url)))
const args = process.argv.slice(2)
const env = { ...process.env }
delete env.CARGO

const forceVariable = 'NAPI_FORCE_BUILD_WASM_MEMORY_SANDBOX'
if (env[forceVariable] !== undefined && !compiledBefore()) delete env[forceVariable]

const { status, signal } = spawnSync('cargo', args, { stdio: 'inherit', env })
if (signal) process.kill(process.pid, signal)
process.exitCode = status ?? 1

/** Whether this build's target directory holds a compiled library of the crate. */
function compiledBefore() {
  const valueOf = (flag) => (args.includes(flag) ? args[args.indexOf(flag) + 1] : undefined)
  const triple = valueOf('--target')
  const profile = valueOf('--profile') ?? (args.includes('--release') ? 'release' : 'dev')
  const targetDirectory = valueOf('--target-dir') ?? env.CARGO_TARGET_DIR ?? join(root, 'target')
  const fingerprints = join(
    targetDirectory,
    ...(triple ? [triple] : []),
    profile === 'dev' ? 'debug' : profile,
    '.fingerprint',
  )
  if (!existsSync(fingerprints)) return false
  return readdirSync(fingerprints).some(
    (unit) =>
      unit.startsWith('wasm-memory-sandbox-') && existsSync(join(fingerprints, unit, 'lib-wasm_memory_sandbox')),
  )
}
