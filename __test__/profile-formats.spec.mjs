// lib/profile/formats.js: a raw sampling profile of a guest, as the addon returns it, turned into
// a `.cpuprofile` (the shape `node --cpu-prof` writes) and into the Firefox Profiler's processed
// format (the shape fxprof-processed-profile 0.8.1, which wasmtime 48 links, writes). The raw
// profiles here are built by hand, so these tests need no native build; the `.cpuprofile` shape
// is held to one that this very Node writes, made by a child process.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import test from 'ava'

import { hottestFunction, toCpuProfile, toFirefoxProfile } from '../lib/profile/formats.js'

const SOURCE = '/work/x/src/lib.rs'
const FRAMES = [
  { name: 'main', kind: 'wasm', module: 'observe', url: SOURCE, line: 3, column: 1, offset: 120, funcIndex: 4 },
  {
    name: 'observe::hot_loop',
    kind: 'wasm',
    module: 'observe',
    url: SOURCE,
    line: 10,
    column: 5,
    offset: 300,
    funcIndex: 5,
  },
  {
    name: 'observe::cold_loop',
    kind: 'wasm',
    module: 'observe',
    url: SOURCE,
    line: 20,
    column: 5,
    offset: 420,
    funcIndex: 6,
  },
  {
    name: 'env.host_work',
    kind: 'import',
    module: null,
    url: null,
    line: null,
    column: null,
    offset: null,
    funcIndex: null,
  },
  {
    name: 'wasm-function[12]',
    kind: 'wasm',
    module: 'observe',
    url: null,
    line: null,
    column: null,
    offset: 777,
    funcIndex: 12,
  },
]
const [MAIN, HOT, COLD, HOST, BARE] = [0, 1, 2, 3, 4]

/**
 * 23 samples a millisecond apart (give or take a fraction of a microsecond): 12 in main → hot_loop,
 * 4 in main → cold_loop, 2 in main → cold_loop → wasm-function[12] (no debug info), 2 in the
 * import called from main, and 3 idle ones between calls.
 */
function syntheticRaw(startTime = 5_000_000.25) {
  const stacks = [
    ...Array(12).fill([MAIN, HOT]),
    ...Array(4).fill([MAIN, COLD]),
    ...Array(2).fill([MAIN, COLD, BARE]),
    ...Array(2).fill([MAIN, HOST]),
    ...Array(3).fill([]),
  ]
  // Interleaved, as a real run would be: a fixed shuffle of the list above.
  const order = stacks.map((_, index) => (index * 7) % stacks.length)
  const samples = order.map((from, index) => ({
    stack: [...stacks[from]],
    time: startTime + 1000 * (index + 1) + (index % 3) * 0.4,
  }))
  return {
    startTime,
    endTime: startTime + 1000 * (samples.length + 2) + 0.7,
    intervalUs: 1000,
    frames: FRAMES,
    samples,
  }
}

const BUSY = 20

/** The names on a raw sample's stack, outermost first. */
const rawNames = (raw, sample) => sample.stack.map((index) => raw.frames[index].name)

/** Structural problems of a `.cpuprofile` (an empty list when there are none). */
function cpuProfileProblems(profile, { lineTicksMayMiss = false } = {}) {
  const problems = []
  const { nodes, samples, timeDeltas } = profile
  if (!Array.isArray(nodes) || nodes.length === 0) return ['no nodes']
  if (nodes[0].callFrame.functionName !== '(root)') problems.push('the first node is not (root)')
  const byId = new Map()
  for (const node of nodes) {
    if (!Number.isInteger(node.id) || node.id < 1) problems.push(`node id ${node.id} is not a positive integer`)
    if (byId.has(node.id)) problems.push(`node id ${node.id} twice`)
    byId.set(node.id, node)
  }
  const parents = new Map()
  for (const node of nodes) {
    for (const child of node.children ?? []) {
      if (!byId.has(child)) problems.push(`node ${node.id} has a child ${child} that does not exist`)
      if (parents.has(child)) problems.push(`node ${child} has two parents`)
      parents.set(child, node.id)
    }
  }
  for (const node of nodes.slice(1)) {
    // Every node but the root hangs from the root.
    let at = node.id
    const seen = new Set()
    while (at !== nodes[0].id) {
      if (seen.has(at) || !parents.has(at)) {
        problems.push(`node ${node.id} is not under the root`)
        break
      }
      seen.add(at)
      at = parents.get(at)
    }
  }
  if (parents.has(nodes[0].id)) problems.push('the root has a parent')
  if (!Array.isArray(samples) || !Array.isArray(timeDeltas)) return [...problems, 'no samples or timeDeltas']
  if (samples.length !== timeDeltas.length) problems.push('samples and timeDeltas differ in length')
  for (const id of samples) if (!byId.has(id)) problems.push(`sample of node ${id}, which does not exist`)
  for (const delta of timeDeltas) if (!Number.isInteger(delta)) problems.push(`time delta ${delta} is not an integer`)
  if (!Number.isInteger(profile.startTime) || !Number.isInteger(profile.endTime)) problems.push('times not integers')
  const last = profile.startTime + timeDeltas.reduce((sum, delta) => sum + delta, 0)
  if (last > profile.endTime) problems.push(`the last sample (${last}) is after endTime (${profile.endTime})`)
  for (const node of nodes) {
    if (!node.positionTicks) continue
    const ticks = node.positionTicks.reduce((sum, tick) => sum + tick.ticks, 0)
    // V8 counts a tick it has no line for in hitCount only (seen on runInContext under load).
    if (lineTicksMayMiss ? ticks > node.hitCount : ticks !== node.hitCount)
      problems.push(`node ${node.id}: positionTicks add up to ${ticks}, not ${node.hitCount}`)
  }
  return problems
}

/** A JSON value's type, keys in their order: 'integer', 'string', `{a:integer}`, `array<...>`... */
function shapeOf(value) {
  if (Array.isArray(value)) return `array<${[...new Set(value.map(shapeOf))].sort().join('|')}>`
  if (value === null) return 'null'
  if (typeof value === 'object') {
    return `{${Object.entries(value)
      .map(([key, item]) => `${key}:${shapeOf(item)}`)
      .join(',')}}`
  }
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number'
  return typeof value
}

/** Per node key: the value shapes seen, how many nodes have it, and the keys' order. */
function nodeKeyShapes(profile) {
  const keys = new Map()
  const orders = new Set()
  for (const node of profile.nodes) {
    orders.add(Object.keys(node).join(','))
    for (const [key, value] of Object.entries(node)) {
      const entry = keys.get(key) ?? { shapes: new Set(), count: 0 }
      entry.shapes.add(shapeOf(value))
      entry.count++
      keys.set(key, entry)
    }
  }
  return { keys, orders, nodes: profile.nodes.length }
}

/** Whether `sub` is `full` with some items left out, the rest in the same order. */
function isSubsequence(sub, full) {
  let at = 0
  for (const item of full) if (item === sub[at]) at++
  return at === sub.length
}

/**
 * A wasm module of one function, `hot_loop` by its name section, exported as `hot`:
 * `(func (param $n i32) (result i32) (local $acc i32) (loop (acc += n) (br_if 0 (n = n - 1))) acc)`.
 */
// prettier-ignore
const HOT_LOOP_MODULE = [
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  0x01, 0x06, 0x01, 0x60, 0x01, 0x7f, 0x01, 0x7f, // type: (i32) -> i32
  0x03, 0x02, 0x01, 0x00, // function 0 has type 0
  0x07, 0x07, 0x01, 0x03, 0x68, 0x6f, 0x74, 0x00, 0x00, // export "hot" = function 0
  0x0a, 0x1b, 0x01, 0x19, 0x01, 0x01, 0x7f, // code: one body of 25 bytes, one i32 local
  0x03, 0x40, 0x20, 0x01, 0x20, 0x00, 0x6a, 0x21, 0x01, // loop: acc = acc + n
  0x20, 0x00, 0x41, 0x01, 0x6b, 0x22, 0x00, 0x0d, 0x00, 0x0b, // n = n - 1; br_if while n != 0
  0x20, 0x01, 0x0b, // acc
  0x00, 0x12, 0x04, 0x6e, 0x61, 0x6d, 0x65, 0x01, 0x0b, 0x01, 0x00, 0x08, // "name": function 0 is...
  0x68, 0x6f, 0x74, 0x5f, 0x6c, 0x6f, 0x6f, 0x70, // "hot_loop"
]

/** A profile that `node --cpu-prof` writes of a process running HOT_LOOP_MODULE for 300 ms. */
function realCpuProfile() {
  const directory = mkdtempSync(join(tmpdir(), 'profile-formats-'))
  try {
    const script = `
      const module = new WebAssembly.Module(new Uint8Array(${JSON.stringify(HOT_LOOP_MODULE)}))
      const { hot } = new WebAssembly.Instance(module).exports
      let sum = 0
      for (const end = Date.now() + 300; Date.now() < end; ) sum += hot(1e6)
      if (sum === 0.5) console.log(sum)`
    const child = spawnSync(process.execPath, ['--cpu-prof', '--cpu-prof-dir', directory, '-e', script], {
      encoding: 'utf8',
      timeout: 60_000,
    })
    if (child.status !== 0) throw new Error(`node --cpu-prof failed: ${child.stderr}`)
    const [file] = readdirSync(directory).filter((name) => name.endsWith('.cpuprofile'))
    return JSON.parse(readFileSync(join(directory, file), 'utf8'))
  } finally {
    rmSync(directory, { recursive: true, force: true })
  }
}

test('the hand-made wasm module of the node --cpu-prof test is valid', (t) => {
  t.true(WebAssembly.validate(new Uint8Array(HOT_LOOP_MODULE)))
  const { hot } = new WebAssembly.Instance(new WebAssembly.Module(new Uint8Array(HOT_LOOP_MODULE))).exports
  t.is(hot(4), 10)
})

test('cpuprofile: a tree of call paths whose hit counts add up to the samples', (t) => {
  const raw = syntheticRaw()
  const profile = toCpuProfile(raw)
  t.deepEqual(cpuProfileProblems(profile), [])
  t.deepEqual(Object.keys(profile), ['nodes', 'startTime', 'endTime', 'samples', 'timeDeltas'])
  t.deepEqual(
    profile.nodes.map((node) => node.id),
    profile.nodes.map((_, index) => index + 1),
  )
  t.is(profile.samples.length, raw.samples.length)
  t.is(
    profile.nodes.reduce((sum, node) => sum + node.hitCount, 0),
    raw.samples.length,
  )
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  for (const node of profile.nodes) {
    t.is(node.hitCount, profile.samples.filter((id) => id === node.id).length, `hitCount of node ${node.id}`)
    if (node.children) t.true(node.children.length > 0)
  }
  // Each sample's node is the end of its stack's path, the path's names its stack's names.
  const parentOf = new Map()
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id)
  const pathOf = (id) => {
    const names = []
    for (let at = id; at !== undefined; at = parentOf.get(at)) names.unshift(byId.get(at).callFrame.functionName)
    return names
  }
  raw.samples.forEach((sample, index) => {
    const expected = sample.stack.length ? rawNames(raw, sample) : ['(idle)']
    t.deepEqual(pathOf(profile.samples[index]), ['(root)', ...expected], `sample ${index}`)
  })
  // One node per call path: main once, with hot_loop, cold_loop and the import under it.
  const named = (name) => profile.nodes.filter((node) => node.callFrame.functionName === name)
  t.is(named('main').length, 1)
  t.deepEqual(
    named('main')[0]
      .children.map((id) => byId.get(id).callFrame.functionName)
      .sort(),
    ['env.host_work', 'observe::cold_loop', 'observe::hot_loop'],
  )
  const [idle] = named('(idle)')
  t.is(idle.hitCount, 3)
  t.is(parentOf.get(idle.id), 1)
  t.deepEqual(idle.callFrame, { functionName: '(idle)', scriptId: '0', url: '', lineNumber: -1, columnNumber: -1 })
  t.is(named('observe::hot_loop')[0].hitCount, 12)
  t.is(named('(root)')[0].hitCount, 0)
})

test('cpuprofile: 0-based lines and columns, file URLs, script ids and wasm frames as V8 writes them', (t) => {
  const profile = toCpuProfile(syntheticRaw())
  const frame = (name) => profile.nodes.find((node) => node.callFrame.functionName === name)
  const main = frame('main')
  const hot = frame('observe::hot_loop')
  t.deepEqual(hot.callFrame, {
    functionName: 'observe::hot_loop',
    scriptId: main.callFrame.scriptId,
    url: 'file:///work/x/src/lib.rs',
    lineNumber: 9,
    columnNumber: 4,
  })
  t.is(main.callFrame.lineNumber, 2)
  t.is(main.callFrame.columnNumber, 0)
  t.not(main.callFrame.scriptId, '0')
  // positionTicks lines are 1-based in the protocol (and in V8's output).
  t.deepEqual(hot.positionTicks, [{ line: 10, ticks: 12 }])
  t.is(main.positionTicks, undefined)
  // Without debug info, a wasm frame is on "line" 0 at its byte offset in a wasm:// script.
  const bare = frame('wasm-function[12]')
  t.deepEqual(bare.callFrame, {
    functionName: 'wasm-function[12]',
    scriptId: bare.callFrame.scriptId,
    url: 'wasm://wasm/observe',
    lineNumber: 0,
    columnNumber: 777,
  })
  t.not(bare.callFrame.scriptId, main.callFrame.scriptId)
  t.not(bare.callFrame.scriptId, '0')
  t.deepEqual(bare.positionTicks, [{ line: 1, ticks: 2 }])
  t.deepEqual(frame('env.host_work').callFrame, {
    functionName: 'env.host_work',
    scriptId: '0',
    url: '',
    lineNumber: -1,
    columnNumber: -1,
  })
  t.is(frame('env.host_work').positionTicks, undefined)
})

test('cpuprofile: whole-microsecond time deltas that add up to the sample times, without drift', (t) => {
  const raw = syntheticRaw()
  const profile = toCpuProfile(raw)
  t.is(profile.startTime, Math.round(raw.startTime))
  let at = profile.startTime
  profile.timeDeltas.forEach((delta, index) => {
    t.true(Number.isInteger(delta) && delta >= 0)
    at += delta
    t.is(at, Math.round(raw.samples[index].time))
    t.true(Math.abs(at - raw.samples[index].time) <= 0.5)
  })
  t.is(profile.endTime, Math.round(raw.endTime))
  t.true(profile.endTime >= at)
  // A stop recorded before the last sample still ends after it.
  const late = { ...raw, endTime: raw.samples.at(-1).time - 10 }
  t.is(toCpuProfile(late).endTime, Math.round(raw.samples.at(-1).time))
})

test('cpuprofile: frames of one function at different lines share a node; JSON round trip', (t) => {
  const frames = [
    ...FRAMES,
    // hot_loop again, at another line (a sampler that records a frame per pc).
    { ...FRAMES[HOT], line: 12, column: 9, offset: 340 },
  ]
  const raw = {
    startTime: 10,
    endTime: 100,
    intervalUs: 10,
    frames,
    samples: [
      { stack: [MAIN, HOT], time: 20 },
      { stack: [MAIN, 5], time: 30 },
      { stack: [MAIN, 5], time: 40 },
    ],
  }
  const profile = toCpuProfile(raw)
  const hot = profile.nodes.filter((node) => node.callFrame.functionName === 'observe::hot_loop')
  t.is(hot.length, 1)
  t.is(hot[0].callFrame.lineNumber, 9)
  t.deepEqual(hot[0].positionTicks, [
    { line: 10, ticks: 1 },
    { line: 12, ticks: 2 },
  ])
  t.deepEqual(JSON.parse(JSON.stringify(profile)), profile)
  const synthetic = toCpuProfile(syntheticRaw())
  t.deepEqual(JSON.parse(JSON.stringify(synthetic)), synthetic)
})

test('hottestFunction: the self-sample share of the busiest function, idle samples left out', (t) => {
  const hottest = hottestFunction(toCpuProfile(syntheticRaw()))
  t.is(hottest.functionName, 'observe::hot_loop')
  t.is(hottest.url, 'file:///work/x/src/lib.rs')
  t.is(hottest.samples, 12)
  t.is(hottest.share, 12 / BUSY)
  t.is(hottestFunction(toCpuProfile({ startTime: 0, endTime: 5, frames: [], samples: [{ stack: [], time: 1 }] })), null)
  t.throws(() => hottestFunction({ nodes: [] }), { instanceOf: TypeError })
})

test('our .cpuprofile has the shape of one that node --cpu-prof writes (a wasm guest included)', (t) => {
  const real = realCpuProfile()
  const ours = toCpuProfile(syntheticRaw())
  // The validator accepts the real profile (V8's line ticks may miss a sample; ours may not).
  t.deepEqual(cpuProfileProblems(real, { lineTicksMayMiss: true }), [])
  t.deepEqual(cpuProfileProblems(ours), [])
  t.deepEqual(Object.keys(ours), Object.keys(real))
  for (const key of ['startTime', 'endTime', 'samples', 'timeDeltas']) t.is(shapeOf(ours[key]), shapeOf(real[key]), key)

  const realNodes = nodeKeyShapes(real)
  const ourNodes = nodeKeyShapes(ours)
  const realOrder = Object.keys(real.nodes.find((node) => node.children && node.positionTicks) ?? {})
  const canonical = ['id', 'callFrame', 'hitCount', 'children', 'positionTicks']
  t.true(isSubsequence(realOrder, canonical), `V8's node key order: ${realOrder}`)
  for (const order of ourNodes.orders) t.true(isSubsequence(order.split(','), canonical), `our key order ${order}`)
  for (const [key, { shapes, count }] of ourNodes.keys) {
    const known = realNodes.keys.get(key)
    t.truthy(known, `V8 writes no node key ${key}`)
    for (const shape of shapes)
      t.true(known.shapes.has(shape), `${key}: ${shape} is not among V8's ${[...known.shapes]}`)
    // A key that V8 writes on every node, we write on every node too.
    if (known.count === realNodes.nodes) t.is(count, ourNodes.nodes, `${key} is on every node of V8's`)
  }
  for (const [key, { count }] of realNodes.keys) {
    if (count === realNodes.nodes) t.true(ourNodes.keys.has(key), `V8 writes ${key} on every node`)
  }

  // V8's wasm frames: name from the name section, wasm://wasm/<hash>, line 0, the function's
  // byte offset as column, ticks on line 1; ours without debug info follow the same rules.
  const v8Wasm = real.nodes.filter((node) => node.callFrame.functionName === 'hot_loop')
  t.true(v8Wasm.length > 0, 'the real profile has the wasm function')
  for (const { callFrame, hitCount, positionTicks } of v8Wasm) {
    t.regex(callFrame.url, /^wasm:\/\/wasm\/[0-9a-f]{8}$/)
    t.is(callFrame.lineNumber, 0)
    t.true(callFrame.columnNumber > 0 && callFrame.columnNumber < HOT_LOOP_MODULE.length)
    if (hitCount > 0) t.true(positionTicks.every((tick) => tick.line === 1))
  }
  const ourWasm = ours.nodes.find((node) => node.callFrame.functionName === 'wasm-function[12]')
  t.regex(ourWasm.callFrame.url, /^wasm:\/\/wasm\//)
  t.is(ourWasm.callFrame.lineNumber, 0)
  t.true(ourWasm.positionTicks.every((tick) => tick.line === 1))
  // And its idle node is V8's.
  const realIdle = real.nodes.find((node) => node.callFrame.functionName === '(idle)')
  if (realIdle) {
    t.deepEqual(ours.nodes.find((node) => node.callFrame.functionName === '(idle)').callFrame, realIdle.callFrame)
  }
  t.deepEqual(ours.nodes[0].callFrame, real.nodes[0].callFrame)

  // hottestFunction reads V8's profiles too.
  const hottest = hottestFunction(real)
  t.is(hottest.functionName, 'hot_loop')
  t.true(hottest.share > 0.3 && hottest.share <= 1)
})

/** Index and length problems of a processed profile thread (an empty list when there are none). */
function firefoxThreadProblems(profile, thread) {
  const problems = []
  const inRange = (value, length) => Number.isInteger(value) && value >= 0 && value < length
  const tables = ['frameTable', 'funcTable', 'stackTable', 'samples', 'markers', 'resourceTable', 'nativeSymbols']
  for (const name of tables) {
    const table = thread[name]
    for (const [column, values] of Object.entries(table)) {
      if (Array.isArray(values) && values.length !== table.length) problems.push(`${name}.${column} length`)
    }
  }
  const { frameTable, funcTable, stackTable, samples, resourceTable, stringArray } = thread
  const categories = profile.meta.categories
  samples.stack.forEach((stack, index) => {
    if (stack !== null && !inRange(stack, stackTable.length)) problems.push(`sample ${index} stack ${stack}`)
  })
  for (let index = 0; index < stackTable.length; index++) {
    const prefix = stackTable.prefix[index]
    if (prefix !== null && !inRange(prefix, index)) problems.push(`stack ${index} prefix ${prefix}`)
    if (!inRange(stackTable.frame[index], frameTable.length)) problems.push(`stack ${index} frame`)
  }
  for (let index = 0; index < frameTable.length; index++) {
    if (!inRange(frameTable.func[index], funcTable.length)) problems.push(`frame ${index} func`)
    const category = frameTable.category[index]
    if (!inRange(category, categories.length)) problems.push(`frame ${index} category`)
    else if (!inRange(frameTable.subcategory[index], categories[category].subcategories.length)) {
      problems.push(`frame ${index} subcategory`)
    }
  }
  for (let index = 0; index < funcTable.length; index++) {
    if (!inRange(funcTable.name[index], stringArray.length)) problems.push(`func ${index} name`)
    const resource = funcTable.resource[index]
    if (resource !== -1 && !inRange(resource, resourceTable.length)) problems.push(`func ${index} resource`)
    const file = funcTable.fileName[index]
    if (file !== null && !inRange(file, stringArray.length)) problems.push(`func ${index} fileName`)
  }
  for (let index = 0; index < resourceTable.length; index++) {
    if (!inRange(resourceTable.name[index], stringArray.length)) problems.push(`resource ${index} name`)
  }
  return problems
}

/** The function names of a processed profile's stack, outermost first (null for none). */
function firefoxStackNames(thread, stack) {
  if (stack === null) return null
  const names = []
  for (let at = stack; at !== null; at = thread.stackTable.prefix[at]) {
    const func = thread.frameTable.func[thread.stackTable.frame[at]]
    names.unshift(thread.stringArray[thread.funcTable.name[func]])
  }
  return names
}

test('Firefox: processed profile version 55 with the fields fxprof-processed-profile 0.8.1 writes', (t) => {
  const profile = toFirefoxProfile(syntheticRaw(), { startTimeUnixMs: 1_700_000_000_000 })
  t.deepEqual(Object.keys(profile), ['meta', 'libs', 'threads', 'pages', 'profilerOverhead', 'counters'])
  const { meta } = profile
  t.is(meta.preprocessedProfileVersion, 55)
  t.is(meta.version, 24)
  t.is(meta.interval, 1)
  t.is(meta.startTime, 1_700_000_000_000)
  t.is(meta.product, 'wasm guest')
  t.deepEqual(meta.sampleUnits, { time: 'ms', eventDelay: 'ms', threadCPUDelta: 'µs' })
  t.deepEqual(meta.markerSchema, [])
  // The crate's meta fields (src/profile.rs), plus the optional profiled range.
  for (const key of [
    'categories',
    'debug',
    'extensions',
    'interval',
    'preprocessedProfileVersion',
    'processType',
    'product',
    'sampleUnits',
    'startTime',
    'symbolicated',
    'pausedRanges',
    'version',
    'usesOnlyOneStackType',
    'sourceCodeIsNotOnSearchfox',
    'markerSchema',
  ]) {
    t.true(key in meta, `meta.${key}`)
  }
  t.deepEqual(meta.categories[0], { name: 'Other', color: 'grey', subcategories: ['Other'] })
  t.deepEqual(
    meta.categories.map((category) => category.name),
    ['Other', 'WebAssembly', 'JavaScript'],
  )
  t.is(profile.threads.length, 1)
  const [thread] = profile.threads
  // The crate's thread fields (src/thread.rs), in its order.
  t.deepEqual(Object.keys(thread), [
    'frameTable',
    'funcTable',
    'markers',
    'name',
    'isMainThread',
    'nativeSymbols',
    'pausedRanges',
    'pid',
    'processName',
    'processShutdownTime',
    'processStartupTime',
    'processType',
    'registerTime',
    'resourceTable',
    'samples',
    'stackTable',
    'stringArray',
    'tid',
    'unregisterTime',
    'showMarkersInTimeline',
  ])
  t.deepEqual(Object.keys(thread.frameTable), [
    'length',
    'address',
    'inlineDepth',
    'category',
    'subcategory',
    'func',
    'nativeSymbol',
    'innerWindowID',
    'line',
    'column',
  ])
  t.deepEqual(Object.keys(thread.funcTable), [
    'length',
    'name',
    'isJS',
    'relevantForJS',
    'resource',
    'fileName',
    'lineNumber',
    'columnNumber',
  ])
  t.deepEqual(Object.keys(thread.stackTable), ['length', 'prefix', 'frame'])
  t.deepEqual(Object.keys(thread.resourceTable), ['length', 'lib', 'name', 'host', 'type'])
  t.deepEqual(Object.keys(thread.samples), ['length', 'weightType', 'stack', 'timeDeltas', 'weight'])
  t.is(thread.name, 'wasm guest')
  t.is(thread.processName, 'wasm guest')
  t.true(thread.isMainThread)
  t.is(typeof thread.pid, 'string')
  t.is(typeof thread.tid, 'string')
  t.deepEqual(JSON.parse(JSON.stringify(profile)), profile)
  t.is(toFirefoxProfile(syntheticRaw(), { name: 'plugin' }).threads[0].name, 'plugin')
})

test('Firefox: indexes in range, stacks resolving to the raw names, times in milliseconds', (t) => {
  const raw = syntheticRaw()
  const profile = toFirefoxProfile(raw)
  const [thread] = profile.threads
  t.deepEqual(firefoxThreadProblems(profile, thread), [])
  t.is(thread.samples.length, raw.samples.length)
  t.is(thread.samples.weightType, 'samples')
  t.deepEqual(thread.samples.weight, Array(raw.samples.length).fill(1))
  raw.samples.forEach((sample, index) => {
    const names = firefoxStackNames(thread, thread.samples.stack[index])
    t.deepEqual(names, sample.stack.length ? rawNames(raw, sample) : null, `sample ${index}`)
  })
  t.is(thread.samples.stack.filter((stack) => stack === null).length, 3)
  let ms = 0
  thread.samples.timeDeltas.forEach((delta, index) => {
    ms += delta
    t.true(Math.abs(ms - (raw.samples[index].time - raw.startTime) / 1000) < 1e-6, `sample ${index} at ${ms} ms`)
  })
  t.true(Math.abs(thread.unregisterTime - (raw.endTime - raw.startTime) / 1000) < 1e-6)
  t.is(thread.registerTime, 0)
  // One stack per call path: main is a single root stack.
  t.deepEqual(
    thread.stackTable.prefix.filter((prefix) => prefix === null),
    [null],
  )
})

test('Firefox: categories, JS import frames, debug info (1-based lines) and modules as resources', (t) => {
  const frames = [...FRAMES, { ...FRAMES[HOT], line: 12, column: 9, offset: 340 }]
  const raw = {
    startTime: 0,
    endTime: 100,
    intervalUs: 250,
    frames,
    samples: [
      { stack: [MAIN, HOT], time: 10 },
      { stack: [MAIN, 5], time: 20 },
      { stack: [MAIN, HOST], time: 30 },
      { stack: [MAIN, COLD, BARE], time: 40 },
    ],
  }
  const profile = toFirefoxProfile(raw)
  const [thread] = profile.threads
  const { funcTable, frameTable, stringArray, resourceTable } = thread
  t.deepEqual(firefoxThreadProblems(profile, thread), [])
  t.is(profile.meta.interval, 0.25)
  const funcNamed = (name) => funcTable.name.findIndex((index) => stringArray[index] === name)
  const categoryName = (frame) => profile.meta.categories[frameTable.category[frame]].name
  const framesOf = (func) => [...frameTable.func.keys()].filter((frame) => frameTable.func[frame] === func)

  const hot = funcNamed('observe::hot_loop')
  t.is(funcTable.name.filter((index) => stringArray[index] === 'observe::hot_loop').length, 1)
  t.is(stringArray[funcTable.fileName[hot]], SOURCE)
  t.is(funcTable.lineNumber[hot], 10)
  t.is(funcTable.columnNumber[hot], 5)
  t.deepEqual(
    framesOf(hot).map((frame) => [frameTable.line[frame], frameTable.column[frame]]),
    [
      [10, 5],
      [12, 9],
    ],
  )
  t.false(funcTable.isJS[hot])
  t.is(stringArray[resourceTable.name[funcTable.resource[hot]]], 'observe')
  t.true(framesOf(hot).every((frame) => categoryName(frame) === 'WebAssembly'))

  const host = funcNamed('env.host_work')
  t.true(funcTable.isJS[host])
  t.is(funcTable.resource[host], -1)
  t.is(funcTable.fileName[host], null)
  t.deepEqual(framesOf(host).map(categoryName), ['JavaScript'])
  t.false(profile.meta.usesOnlyOneStackType)

  const bare = funcNamed('wasm-function[12]')
  t.is(funcTable.fileName[bare], null)
  t.is(funcTable.lineNumber[bare], null)
  t.deepEqual(
    framesOf(bare).map((frame) => frameTable.line[frame]),
    [null],
  )
  t.is(funcTable.resource[bare], funcTable.resource[hot])

  // Without import frames, every function is of one kind.
  const wasmOnly = toFirefoxProfile({ ...raw, samples: raw.samples.filter((sample) => !sample.stack.includes(HOST)) })
  t.true(wasmOnly.meta.usesOnlyOneStackType)
})

test('Firefox: meta.startTime is the profile start in milliseconds since the Unix epoch', (t) => {
  const nowUs = Number(process.hrtime.bigint()) / 1000
  const raw = { ...syntheticRaw(nowUs - 2_000_000), endTime: nowUs }
  const profile = toFirefoxProfile(raw)
  // Two seconds ago on the monotonic clock is two seconds ago on the wall clock.
  t.true(Math.abs(profile.meta.startTime - (Date.now() - 2000)) < 100, `${profile.meta.startTime} vs ${Date.now()}`)
})

test('malformed raw profiles are refused with a TypeError', (t) => {
  const raw = syntheticRaw()
  const bad = [
    null,
    { ...raw, frames: undefined },
    { ...raw, startTime: NaN },
    { ...raw, samples: [{ stack: [99], time: raw.startTime + 1 }] },
    { ...raw, samples: [{ stack: [0.5], time: raw.startTime + 1 }] },
    { ...raw, frames: [{ ...FRAMES[0], kind: 'native' }] },
    { ...raw, samples: [...raw.samples].reverse() },
  ]
  for (const value of bad) {
    t.throws(() => toCpuProfile(value), { instanceOf: TypeError })
    t.throws(() => toFirefoxProfile(value), { instanceOf: TypeError })
  }
})

test('an empty profile converts to a root-only cpuprofile and an empty thread', (t) => {
  const raw = { startTime: 100.6, endTime: 5000.2, intervalUs: 1000, frames: [], samples: [] }
  const cpu = toCpuProfile(raw)
  t.deepEqual(cpuProfileProblems(cpu), [])
  t.deepEqual(cpu, {
    nodes: [{ id: 1, callFrame: cpu.nodes[0].callFrame, hitCount: 0 }],
    startTime: 101,
    endTime: 5000,
    samples: [],
    timeDeltas: [],
  })
  const firefox = toFirefoxProfile(raw)
  t.is(firefox.threads[0].samples.length, 0)
  t.is(firefox.threads[0].stackTable.length, 0)
  t.deepEqual(firefoxThreadProblems(firefox, firefox.threads[0]), [])
})
