// A plugin host: run an untrusted plugin with JS imports, a memory cap, a time limit and a fuel
// budget, and survive whatever it does. Run with `npm run example:plugin`.
const { readFileSync } = require('node:fs')
const { join } = require('node:path')

const { Module, Sandbox } = require('wasm-memory-sandbox')

const plugin = Module.fromFile(join(__dirname, '..', '__test__', 'guests', 'plugin.wat'))
console.log('plugin imports:', plugin.imports.map(({ module, name }) => `${module}.${name}`).join(', '))

let sandbox
sandbox = new Sandbox(plugin, {
  imports: {
    env: {
      // The guest passes a pointer and a length; the host reads the string out of its memory.
      log: (pointer, length) => console.log(`[plugin] ${sandbox.read(pointer, length).toString('utf8')}`),
      random: () => Math.random(),
    },
  },
  maxMemoryBytes: 4 * 65536, // at most 4 pages of linear memory
  timeoutMs: 100, // no call may run longer than 100 ms
})

console.log('run() returned', sandbox.call('run'))
console.log('add_i64(2n ** 40n, 1n) =', sandbox.call('add_i64', 2n ** 40n, 1n))
console.log('pair(41) =', sandbox.call('pair', 41))
console.log('the guest grows past the cap: memory.grow returned', sandbox.call('grow', 8))

// Limits: an infinite loop is stopped by the time limit; the sandbox is usable afterwards.
const spinner = new Sandbox(readFileSync(join(__dirname, '..', '__test__', 'guests', 'infinite_loop.wat'), 'utf8'), {
  timeoutMs: 50,
})
try {
  spinner.call('spin')
} catch (error) {
  console.log(`spin() stopped: ${error.code}: ${error.message}`)
}
console.log('add(2, 3) afterwards =', spinner.call('add', 2, 3))

// A zero-copy exchange with a guest compiled from Rust (examples/guests/rust-text).
const text = new Sandbox(Module.fromFile(join(__dirname, '..', '__test__', 'guests', 'build', 'text.rust.wasm')))
const input = Buffer.from('shout this through linear memory')
const pointer = text.call('alloc', input.length)
const view = text.memory()
input.copy(view, pointer)
text.call('to_upper', pointer, input.length)
console.log('rust to_upper:', view.toString('utf8', pointer, pointer + input.length))

sandbox.dispose()
spinner.dispose()
text.dispose()
