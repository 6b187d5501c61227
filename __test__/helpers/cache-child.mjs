// A fresh process for the code cache's tests: compiles the module at argv[2] (a .wasm or .wat
// file) with the options in argv[3] (JSON), calls its `run` export if it has one, and prints
// `{ result, compiler, stats }` as JSON. The cache directory comes from the environment.
import { readFileSync } from 'node:fs'

import { Module, Sandbox, codeCacheStats } from 'wasm-memory-sandbox'

if (process.env.IGNORE_SIGXFSZ === '1') process.on('SIGXFSZ', () => {})
const source = process.argv[2].endsWith('.wat') ? readFileSync(process.argv[2], 'utf8') : readFileSync(process.argv[2])
const options = process.argv[3] ? JSON.parse(process.argv[3]) : undefined
const module = process.argv[4] === 'async' ? await Module.compile(source, options) : new Module(source, options)
const hasRun = module.exports.some((entry) => entry.name === 'run')
const result = hasRun ? new Sandbox(module).call('run', 20) : null
console.log(JSON.stringify({ result, compiler: module.compiler, stats: codeCacheStats() }))
