// Runs streamed-output-memory.mjs in a child process with --expose-gc: a clean heap, and garbage
// collection that does not touch the other tests.
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const execFileAsync = promisify(execFile)

/** Streams `bytes` from a `kind` guest ('p1' or 'p3') to a slower callback; the child's report. */
export async function streamedMemory(kind, bytes) {
  const script = fileURLToPath(new URL('streamed-output-memory.mjs', import.meta.url))
  // Not spawnSync: the other tests of the calling file need the event loop meanwhile.
  const { stdout } = await execFileAsync(process.execPath, ['--expose-gc', script, kind, String(bytes)], {
    timeout: 120_000,
  })
  return JSON.parse(stdout.trim().split('\n').pop())
}
