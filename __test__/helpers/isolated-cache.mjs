// Loaded by ava before every test file (package.json `ava.require`): unless the caller chose a
// cache directory, the code cache of each test process is a fresh temporary directory, removed
// at exit, so the suite neither reads nor fills the user's real cache. (The cache's own tests
// point their child processes at directories of their own.)
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

if (!process.env.WASM_MEMORY_SANDBOX_CACHE_DIR) {
  const directory = mkdtempSync(join(tmpdir(), 'wasm-memory-sandbox-cache-'))
  process.env.WASM_MEMORY_SANDBOX_CACHE_DIR = directory
  process.on('exit', () => rmSync(directory, { recursive: true, force: true }))
}
