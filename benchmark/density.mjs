// Density: how many sandboxes one process holds at once, and the resident memory each costs.
// Usage: node --expose-gc benchmark/density.mjs <buffer|v8> <count>
// Prints one JSON line: { kind, requested, created, rssBeforeBytes, rssAfterBytes, perSandboxBytes, error }.
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const { BufferSandbox, bufferGuestWasm } = require('wasm-memory-sandbox')

const [kind = 'buffer', countText = '100000'] = process.argv.slice(2)
const requested = Number(countText)
const live = []

globalThis.gc?.()
const rssBeforeBytes = process.memoryUsage.rss()
let error = null
try {
  if (kind === 'buffer') {
    for (let index = 0; index < requested; index++) {
      const sandbox = new BufferSandbox()
      // Use each sandbox as the tutorial does, so its memory is touched, not just reserved.
      sandbox.storeValueInWasmMemoryBufferIndexZero(index & 0xff)
      live.push(sandbox)
    }
  } else {
    const module = new WebAssembly.Module(bufferGuestWasm())
    for (let index = 0; index < requested; index++) {
      const instance = new WebAssembly.Instance(module)
      instance.exports.storeValueInWasmMemoryBufferIndexZero(index & 0xff)
      live.push(instance)
    }
  }
} catch (caught) {
  error = `${caught.name}: ${caught.message}${caught.code ? ` (${caught.code})` : ''}`
}
globalThis.gc?.()
const rssAfterBytes = process.memoryUsage.rss()
const created = live.length
console.log(
  JSON.stringify({
    kind,
    requested,
    created,
    rssBeforeBytes,
    rssAfterBytes,
    perSandboxBytes: created ? (rssAfterBytes - rssBeforeBytes) / created : null,
    error,
  }),
)
