// The addon as the package uses it: the generated napi-rs loader (binding.js) with the JS facade
// (lib/facade.js) installed over its `BufferSandbox` and `Sandbox`. Everything in the package
// requires this file, never binding.js, so the facade is installed once, before any use.
'use strict'

const binding = require('../binding.js')

if (binding.__native) {
  require('./facade.js')(binding.__native, binding)
  // Only the facade may call the raw functions (they trust their arguments' types).
  delete binding.__native
}

module.exports = binding
