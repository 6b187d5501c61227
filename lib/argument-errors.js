// Argument errors in Node's style, for the package's JS side (the native side makes its own in
// src/js/errors.rs): a TypeError or RangeError carrying a `code`.
'use strict'

/** An error of class `ErrorClass` with Node's `code` (`ERR_INVALID_ARG_TYPE`, ...). */
function argumentError(ErrorClass, code, message) {
  const error = new ErrorClass(message)
  error.code = code
  return error
}

/** A received value as Node's `ERR_INVALID_ARG_TYPE` messages show it. */
function describe(value) {
  if (value === null) return 'null'
  if (typeof value === 'string') return `type string ('${value.slice(0, 25)}')`
  if (typeof value === 'object') return 'an instance of ' + (value.constructor?.name ?? 'Object')
  return `type ${typeof value} (${String(value)})`
}

module.exports = { argumentError, describe }
