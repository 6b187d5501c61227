import { readFileSync } from 'node:fs'
import { Component } from 'wasm-memory-sandbox'
import { mirrorImports } from '/work/main/__test__/helpers/mirror.mjs'
const component = new Component(readFileSync('/work/main/__test__/guests/build/types.rust.component.wasm'))
const instance = component.instantiate({ imports: {
  'demo:types/logger': { log() {}, logPoint() {} }, 'demo:types/host': { Kv: class {}, fetchNumber: () => 0 },
  'demo:types/mirror': mirrorImports(), hostName: () => 'x' } })
const { api, limits } = instance.exports
function bench(label, fn, n) {
  for (let i = 0; i < n / 10; i++) fn()
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < n; i++) fn()
  console.log(label, (Number(process.hrtime.bigint() - t0) / n / 1000).toFixed(2), 'us')
}
const mib = new Uint8Array(2 ** 20).fill(5)
bench('echoListU8 1MiB', () => api.echoListU8(mib), 2000)
bench('sumBytes 1MiB', () => limits.sumBytes(mib), 2000)
bench('echoString 20', () => api.echoString('hello world, hello!!'), 200000)
bench('hello', () => instance.exports.hello('x'), 200000)
bench('echoU32', () => api.echoU32(7), 200000)
bench('echoPoint', () => api.echoPoint({ x: 1, y: 2 }), 200000)
bench('echoRecord', () => api.echoRecord({ firstName: 'a', ageInYears: 3, isActive: true, nestedThing: { labelText: 'l', thePoint: { x: 1, y: 2 } }, maybeScore: 1.5, tagList: ['a', 'b'] }), 100000)
bench('bytes(1MiB)', () => limits.bytes(2 ** 20), 2000)
bench('throughListU8 1MiB', () => api.throughListU8(mib), 1000)
