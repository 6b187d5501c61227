// A fresh process for the component code-cache test: compiles the component at argv[2] (a .wasm
// or .wat file) argv[3] times (`new Component`, or `Component.compile` when argv[4] is 'async'),
// calls `hello('cache')` on the last one, and prints `{ result, stats }` as JSON. The cache
// directory comes from the environment.
import { readFileSync } from 'node:fs'

import { Component, codeCacheStats } from 'wasm-memory-sandbox'

import { mirrorImports } from './mirror.mjs'

const path = process.argv[2]
const times = Number(process.argv[3] ?? 1)
const source = path.endsWith('.wat') ? readFileSync(path, 'utf8') : readFileSync(path)
let component
for (let index = 0; index < times; index++)
  component = process.argv[4] === 'async' ? await Component.compile(source) : new Component(source)
const instance = component.instantiate({
  imports: {
    'demo:types/logger': { log() {}, logPoint() {} },
    'demo:types/host': { Kv: class {}, fetchNumber: () => 0 },
    hostName: () => 'cache',
    'demo:types/mirror': mirrorImports(),
  },
})
console.log(JSON.stringify({ result: instance.exports.hello('cache'), stats: codeCacheStats() }))
