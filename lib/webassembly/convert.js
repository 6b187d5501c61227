'use strict'
// WebIDL and WebAssembly JS API conversions, written to the letter of the specifications so that
// user code observes the same reads, calls and errors as with V8's own WebAssembly.

const { types } = require('node:util')

const MAX_UINT32 = 0xffffffff

/** WebIDL `[EnforceRange] unsigned long`. */
function enforceRangeU32(value, what) {
  const number = +value
  if (!Number.isFinite(number)) throw new TypeError(`${what} must be convertible to a valid number`)
  const integer = Math.trunc(number)
  if (integer < 0 || integer > MAX_UINT32) throw new TypeError(`${what} must be in the unsigned long range`)
  return integer === 0 ? 0 : integer
}

/** WebIDL `[EnforceRange] unsigned long long` from a BigInt (the table64 API's addresses). */
function enforceRangeBigU64(value, what) {
  const integer = BigInt.asIntN(128, BigInt(typeof value === 'bigint' ? value : toBigInt(value)))
  if (integer < 0n || integer >= 2n ** 64n) throw new TypeError(`${what} must be in the unsigned long long range`)
  return integer
}

/** ECMAScript ToBigInt (throws for numbers, as the JS API wants). */
function toBigInt(value) {
  // BigInt.asUintN runs ToBigInt on its argument; 2^128 bits keep the value as it is for any
  // address the check above accepts or refuses.
  const unsigned = BigInt.asUintN(128, value)
  return unsigned >= 2n ** 127n ? unsigned - 2n ** 128n : unsigned
}

/** Whether a value is an object (WebIDL dictionaries and the import object). */
function isObject(value) {
  return (typeof value === 'object' && value !== null) || typeof value === 'function'
}

/** A copy of the bytes of a BufferSource (an ArrayBuffer, a SharedArrayBuffer or a view), or a TypeError. */
function copyBufferSource(source, what) {
  if (ArrayBuffer.isView(source)) {
    return new Uint8Array(source.buffer, source.byteOffset, source.byteLength).slice()
  }
  // Brand checks that hold across realms (a vm context's ArrayBuffer is not this realm's).
  if (types.isArrayBuffer(source) || types.isSharedArrayBuffer(source)) return new Uint8Array(source).slice()
  throw new TypeError(`${what}: Argument 0 must be a buffer source`)
}

/** The value type names the JS API accepts, as the native side's one-letter codes. */
const VALUE_TYPES = {
  i32: 'i',
  i64: 'I',
  f32: 'f',
  f64: 'F',
  anyfunc: 'r',
  funcref: 'r',
  externref: 'e',
}

/** The native code of a value type name, or undefined for a name that is not one. */
function valueTypeCode(name) {
  return Object.hasOwn(VALUE_TYPES, name) ? VALUE_TYPES[name] : undefined
}

/**
 * An address, length or delta of a memory or table: a Number for i32 ones, a BigInt for i64 ones
 * (memory64, table64), returned as a Number either way.
 */
function addressValue(value, is64, what) {
  if (!is64) return enforceRangeU32(value, what)
  // Above 2^53 no memory or table can reach: it stays a Number large enough to be out of range.
  return Number(enforceRangeBigU64(value, what))
}

module.exports = {
  enforceRangeU32,
  isObject,
  copyBufferSource,
  valueTypeCode,
  addressValue,
}
