// An AssemblyScript WASI command, compiled with @assemblyscript/wasi-shim: `console`, `process`
// and `crypto` become WASI calls. It greets the name in its first argument (or in the
// GREETING_NAME environment variable), echoes stdin upper-cased to stdout, writes a line to
// stderr and exits with the code in EXIT_CODE (0 when unset).
// `--exportStart _start` (the shim's default) makes it a command: the host calls `_start`.

const argv = process.argv
const name = argv.length > 1 ? argv[1] : process.env.has('GREETING_NAME') ? process.env.get('GREETING_NAME') : 'world'
console.log(`Hello, ${name}! (argv has ${argv.length} entries)`)

const input = new ArrayBuffer(4096)
let text = ''
while (true) {
  const read = process.stdin.read(input)
  if (read <= 0) break
  text += String.UTF8.decode(input.slice(0, read))
}
if (text.length > 0) process.stdout.write(text.toUpperCase())

// Two 16-byte draws from random_get: equal (or all zero) only if the host's source is broken;
// by chance, once in 2^128 runs.
const first = new Uint8Array(16)
const second = new Uint8Array(16)
crypto.getRandomValues(first)
crypto.getRandomValues(second)
let differ = false
for (let index = 0; index < first.length; index++) if (first[index] != second[index]) differ = true
process.stderr.write(`random_get: two 16-byte draws ${differ ? 'differ' : 'are equal'}\n`)

// The shim does not pass `process.exitCode` to WASI at the end of `_start`: exit explicitly.
if (process.env.has('EXIT_CODE')) process.exit(I32.parseInt(process.env.get('EXIT_CODE')))

/** Exported too: callable with `call()` after `run()`. Returns how many bytes stdin had. */
export function inputLength(): i32 {
  return String.UTF8.byteLength(text)
}
