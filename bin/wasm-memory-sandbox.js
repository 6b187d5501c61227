#!/usr/bin/env node
// The package's command line: `wasm-memory-sandbox types <component.wasm|.wat>` prints a `.d.ts`
// typing that component's exports and imports as wasm-memory-sandbox maps its values.
'use strict'

const { writeFileSync } = require('node:fs')
const { basename, extname } = require('node:path')
const { parseArgs } = require('node:util')

const USAGE = `Usage: wasm-memory-sandbox types <component.wasm|component.wat> [--out <file.d.ts>] [--name <name>]

Commands:
  types    Print a TypeScript declaration file (.d.ts) for a WebAssembly component: the type of
           \`instance.exports\` (ComponentExports) and of the \`imports\` option (ComponentImports),
           with the interfaces, resource classes and WIT types they use, mapped as jco maps them.
           Use it as Component.fromFile<ComponentExports, ComponentImports>(path).

Options:
  -o, --out <file>    Write the declarations to <file> instead of standard output
  -n, --name <name>   The component's name in the comments (default: the file name without extension)
  -h, --help          Show this help
`

/** A mistake in the command line: printed with the usage, exit code 2. */
class UsageError extends Error {}

function parseArguments(argv) {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        out: { type: 'string', short: 'o' },
        name: { type: 'string', short: 'n' },
        help: { type: 'boolean', short: 'h' },
      },
    })
  } catch (error) {
    // Node's messages for an unknown option or a missing value, without its advice to use `--`.
    if (String(error.code).startsWith('ERR_PARSE_ARGS_')) throw new UsageError(error.message.split('. ')[0])
    throw error
  }
  const { values, positionals } = parsed
  if (values.help) return { help: true }
  const [command, input, ...rest] = positionals
  if (command === undefined) throw new UsageError('missing command')
  if (command !== 'types') throw new UsageError(`unknown command '${command}'`)
  if (input === undefined) throw new UsageError('types: missing the component file')
  if (rest.length) throw new UsageError(`types: unexpected argument '${rest[0]}'`)
  if (values.out === '') throw new UsageError('types: --out needs a file name')
  return { help: false, input, out: values.out, name: values.name }
}

function types({ input, out, name }) {
  // Loaded here, so that --help and usage errors work without the native addon.
  const { Component } = require('../index.js')
  const { componentDts } = require('../lib/component/dts.js')
  if (typeof Component !== 'function') throw new Error('this build of wasm-memory-sandbox has no Component class')
  const component = Component.fromFile(input)
  const text = componentDts(
    { exports: component.exports, imports: component.imports },
    { name: name ?? basename(input, extname(input)) },
  )
  if (out === undefined) process.stdout.write(text)
  else writeFileSync(out, text)
}

function main(argv) {
  let options
  try {
    options = parseArguments(argv)
  } catch (error) {
    if (!(error instanceof UsageError)) throw error
    process.stderr.write(
      `wasm-memory-sandbox: ${error.message}\n${USAGE.split('\n')[0]}\nRun 'wasm-memory-sandbox --help' for more.\n`,
    )
    return 2
  }
  if (options.help) {
    process.stdout.write(USAGE)
    return 0
  }
  try {
    types(options)
    return 0
  } catch (error) {
    const code = error && error.code ? ` (${error.code})` : ''
    const message = error && error.message ? error.message : String(error)
    process.stderr.write(`wasm-memory-sandbox types: ${message}${code}\n`)
    return 1
  }
}

process.exitCode = main(process.argv.slice(2))
