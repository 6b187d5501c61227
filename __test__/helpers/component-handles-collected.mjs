// Run with `node --expose-gc` by component-resources.spec.mjs: resource objects of a component
// (demo:types `counter`) that JS drops without disposing are garbage-collected, and their guest
// handles dropped (the guest's destructor frees each counter: its memory stays bounded), while
// the instance keeps working. Prints one JSON line.
import { readFileSync } from 'node:fs'
import { setImmediate as nextTurn } from 'node:timers/promises'

import { Component } from 'wasm-memory-sandbox'

import { guestPath } from './guests.mjs'
import { mirrorImports } from './mirror.mjs'

const rounds = Number(process.argv[2] ?? 20)
const perRound = Number(process.argv[3] ?? 50_000)
const collect = process.argv[4] !== 'no-gc'

const component = new Component(readFileSync(guestPath('build/types.rust.component.wasm')))
const instance = component.instantiate({
  imports: {
    'demo:types/logger': { log() {}, logPoint() {} },
    'demo:types/host': { Kv: class {}, fetchNumber: () => 0 },
    'demo:types/mirror': mirrorImports(),
    hostName: () => 'gc',
  },
})
const { api, limits } = instance.exports

// A counter kept (and used) throughout: collection must not touch live objects.
const kept = new api.Counter(1)
const weak = new WeakRef(new api.Counter(5))
const pages = [limits.grow(0)]
let sum = 0
for (let round = 0; round < rounds; round++) {
  for (let index = 0; index < perRound; index++) sum += new api.Counter(index & 0xff).get()
  if (collect) {
    globalThis.gc()
    await nextTurn()
    globalThis.gc()
    await nextTurn()
  }
  kept.increment(1)
  pages.push(limits.grow(0))
}
let weakCollected = false
for (let attempt = 0; attempt < 50 && !weakCollected; attempt++) {
  globalThis.gc?.()
  await nextTurn()
  weakCollected = weak.deref() === undefined
}
// A call after the collections: the handles the finalizers queued are dropped before it runs.
const merged = api.Counter.merge(kept, kept)
console.log(
  JSON.stringify({
    pages,
    sum,
    kept: kept.get(),
    merged: merged.get(),
    weakCollected,
    echo: api.echoString('still working'),
    rssMiB: Math.round(process.memoryUsage().rss / 2 ** 20),
  }),
)
