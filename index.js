// The package entry: the addon with its JS facade (lib/native.js) and the WebAssembly JS API
// namespace (lib/webassembly). The exports are listed one by one so that Node's CommonJS
// named-export detection lets `import { Sandbox, createWebAssembly } from 'wasm-memory-sandbox'`
// work from ESM.
'use strict'

const binding = require('./lib/native.js')
const { createWebAssembly } = require('./lib/webassembly/namespace.js')
const { Component, ComponentError } = require('./lib/component/index.js')

module.exports = binding
module.exports.BufferSandbox = binding.BufferSandbox
module.exports.Module = binding.Module
module.exports.Sandbox = binding.Sandbox
module.exports.Snapshot = binding.Snapshot
module.exports.bufferGuestWasm = binding.bufferGuestWasm
module.exports.zeroCopyViews = binding.zeroCopyViews
module.exports.asyncThreads = binding.asyncThreads
module.exports.setAsyncThreads = binding.setAsyncThreads
module.exports.codeCacheStats = binding.codeCacheStats
module.exports.createWebAssembly = createWebAssembly
module.exports.Component = Component
module.exports.ComponentError = ComponentError
