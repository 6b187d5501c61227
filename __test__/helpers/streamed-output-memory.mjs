// Run with `node --expose-gc` by wasi-streaming.spec.mjs and component-wasi-p3.spec.mjs: a guest
// streams `bytes` of stdout to a callback slower than it (a preview 1 sandbox, `p1`, or a WASI 0.3
// stream, `p3`), collecting garbage every 16 chunks so that only memory something still holds
// counts. Prints one JSON line: { received, chunks, exitCode, stderr, growthMiB } where growthMiB is
// the peak resident memory over the baseline.
import { Component, Module, Sandbox } from 'wasm-memory-sandbox'

import { guestPath } from './guests.mjs'

const [kind, bytes] = [process.argv[2], Number(process.argv[3])]
let received = 0
let chunks = 0
const baseline = () => {
  globalThis.gc()
  return process.memoryUsage().rss
}
const stdout = (chunk) => {
  received += chunk.length
  if (++chunks % 16 === 0) {
    peak = Math.max(peak, process.memoryUsage().rss)
    globalThis.gc()
  }
  // Slower than the guest: it gets ahead and has to wait.
  const until = performance.now() + 0.05
  while (performance.now() < until);
}
const guest =
  kind === 'p1'
    ? new Sandbox(Module.fromFile(guestPath('build/wasi-cli.wasip1.wasm')), {
        wasi: { args: ['wasi-cli', 'spam', String(bytes)], stdout, stderr: 'pipe' },
      })
    : Component.fromFile(guestPath('build/p3-command.rust.component.wasm')).instantiate({
        wasi: { args: ['p3-command', 'stream', String(bytes)], stdout, stderr: 'pipe' },
      })
const before = baseline()
let peak = before
const result = await guest.runAsync()
console.log(
  JSON.stringify({
    received,
    chunks,
    exitCode: result.exitCode,
    stderr: result.stderr.toString(),
    growthMiB: Math.round(((peak - before) / 2 ** 20) * 10) / 10,
  }),
)
