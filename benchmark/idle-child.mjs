// A process holding 1,000 sandboxes with timeoutMs (each called once, ten of them also through
// callAsync), then idle: prints the CPU time it used over 3 s of idling, in milliseconds.
import { Sandbox } from 'wasm-memory-sandbox'

const text = '(module (func (export "id") (param i32) (result i32) local.get 0))'
const sandboxes = Array.from({ length: 1000 }, () => new Sandbox(text, { timeoutMs: 100 }))
for (const sandbox of sandboxes) sandbox.call('id', 1)
await Promise.all(sandboxes.slice(0, 10).map((sandbox) => sandbox.callAsync('id', 1)))
// The epoch ticker keeps ticking for 200 ms after the last call.
await new Promise((resolve) => setTimeout(resolve, 500))
const start = process.cpuUsage()
await new Promise((resolve) => setTimeout(resolve, 3000))
const used = process.cpuUsage(start)
process.stdout.write(String((used.user + used.system) / 1000))
