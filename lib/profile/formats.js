'use strict'
// A sampling profile of a WebAssembly guest, as the addon hands it over (see `RawProfile` below),
// converted into the two formats that profile viewers open:
//
// - `toCpuProfile(raw)`: the `.cpuprofile` JSON of `node --cpu-prof` and of the inspector's
//   `Profiler.stop` (Chrome DevTools protocol `Profiler.Profile`), which Chrome DevTools, VS Code's
//   profile viewer, speedscope and the Firefox Profiler all open.
// - `toFirefoxProfile(raw, { name })`: the Firefox Profiler's processed profile format, as the
//   Rust crate `fxprof-processed-profile` 0.8.1 writes it (the version wasmtime 48 links for its
//   `GuestProfiler`): `meta.preprocessedProfileVersion` 55 and `meta.version` 24, which the
//   profiler's upgraders (src/profile-logic/processed-profile-versioning) bring up to date.
//
// RawProfile (times in microseconds on CLOCK_MONOTONIC, the clock of `process.hrtime()`):
//   { startTime, endTime, intervalUs,
//     frames: [{ name, kind: 'wasm' | 'import', module, url, line, column, offset, funcIndex }],
//     samples: [{ stack: [frame index, outermost first], time }] }   (an empty stack: idle)
// `line` and `column` are 1-based (DWARF); a frame's `line` is the first line of its function.

/** `meta.preprocessedProfileVersion` that fxprof-processed-profile 0.8.1 writes (src/profile.rs). */
const PROCESSED_PROFILE_VERSION = 55
/** `meta.version` (the Gecko format's) it writes alongside; the profiler ignores it. */
const GECKO_PROFILE_VERSION = 24

/** The V8 nodes that stand for no function of the program; `hottestFunction` skips them. */
const V8_META_NODES = new Set(['(root)', '(program)', '(idle)', '(garbage collector)'])

/** Checks the raw profile's shape; throws a TypeError naming the first thing wrong. */
function checkRaw(raw) {
  if (raw === null || typeof raw !== 'object') throw new TypeError('the raw profile must be an object')
  for (const key of ['startTime', 'endTime']) {
    if (!Number.isFinite(raw[key])) throw new TypeError(`raw profile ${key} must be a finite number`)
  }
  if (!Array.isArray(raw.frames)) throw new TypeError('raw profile frames must be an array')
  if (!Array.isArray(raw.samples)) throw new TypeError('raw profile samples must be an array')
  raw.frames.forEach((frame, index) => {
    if (frame === null || typeof frame !== 'object') throw new TypeError(`raw profile frame ${index} must be an object`)
    if (typeof frame.name !== 'string') throw new TypeError(`raw profile frame ${index} needs a string name`)
    if (frame.kind !== 'wasm' && frame.kind !== 'import') {
      throw new TypeError(`raw profile frame ${index} has kind ${JSON.stringify(frame.kind)}, not 'wasm' or 'import'`)
    }
  })
  let previous = -Infinity
  raw.samples.forEach((sample, index) => {
    if (sample === null || typeof sample !== 'object' || !Array.isArray(sample.stack)) {
      throw new TypeError(`raw profile sample ${index} needs a stack array`)
    }
    if (!Number.isFinite(sample.time)) throw new TypeError(`raw profile sample ${index} needs a finite time`)
    if (sample.time < previous) throw new TypeError(`raw profile sample ${index} is earlier than the one before it`)
    previous = sample.time
    for (const frame of sample.stack) {
      if (!Number.isInteger(frame) || frame < 0 || frame >= raw.frames.length) {
        throw new TypeError(`raw profile sample ${index} refers to frame ${frame}, which does not exist`)
      }
    }
  })
}

/** A frame's optional field: the value, or null when absent. */
function optional(value) {
  return value === undefined || value === null ? null : value
}

/** Where the profile's clock starts: its start, or an earlier first sample. */
function origin(raw) {
  return raw.samples.length ? Math.min(raw.startTime, raw.samples[0].time) : raw.startTime
}

/**
 * A source file named by DWARF as the URL V8 would give a script from it: Node names every
 * script, CommonJS and ESM alike, by its `file://` URL, and VS Code turns those back into paths
 * to open the file. Relative paths (which DWARF may hold, relative to a compilation directory
 * this profile does not know) and strings that already are URLs stay as they are.
 */
function sourceUrl(path) {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(path)) return path
  const encode = (segments) => segments.map((segment) => encodeURIComponent(segment)).join('/')
  if (path.startsWith('/')) return `file://${encode(path.split('/'))}`
  const drive = /^([a-z]):[\\/]/i.exec(path)
  if (drive) return `file:///${drive[1]}:/${encode(path.slice(3).split(/[\\/]/))}`
  return path
}

/**
 * The DevTools call frame of each raw frame (frames of one function share one), and the line a
 * sample in it is charged to in `positionTicks` (1-based, or null when there is none).
 *
 * Wasm frames are written as V8 writes its own wasm frames in a `.cpuprofile` (checked against
 * `node --cpu-prof` on Node 20 running a module with a name section): the function name from
 * the name section or `wasm-function[N]`, `url` `wasm://wasm/<module name>-<hash>` (V8 drops the
 * name when the module has none, and the hash is of the module's bytes), `lineNumber` 0 (V8
 * shows a wasm module as one line), `columnNumber` the function's byte offset in the module, and
 * `positionTicks` on line 1. We have no bytes to hash, so the URL is `wasm://wasm/<module name>`,
 * or `wasm://wasm/guest` for a module without a name. DevTools shows such a frame as a normal
 * frame with a `wasm://` location (it cannot open it in a saved profile, as with V8's own), and
 * the Firefox Profiler's and speedscope's importers take it like any other frame.
 *
 * A wasm frame with DWARF debug info instead points at its source, the way a JS frame does: `url`
 * the source file's `file://` URL, 0-based `lineNumber` and `columnNumber` (DWARF's are 1-based),
 * and `positionTicks` on its DWARF line. VS Code's viewer and DevTools then link the frame to the
 * source file and line, which is what one wants from a Rust or C guest built with debug info.
 *
 * An import frame (a JS function of the host, called by the guest) keeps the import's name
 * (e.g. `env.host_work`) and no location (`url` '', scriptId '0', -1 -1), like V8's frames for
 * code without a script. No prefix: the name already reads as an import, and names that start
 * with a parenthesis are V8's own meta nodes (`(program)`, `(idle)`...), which the viewers treat
 * specially. A V8 profile of the same code would show the JS function itself under a
 * `wasm-to-js` wrapper; the addon only knows the import's name.
 */
function cpuCallFrames(raw) {
  const scriptIds = new Map()
  const scriptId = (url) => {
    if (url === '') return '0'
    let id = scriptIds.get(url)
    if (id === undefined) scriptIds.set(url, (id = String(scriptIds.size + 1)))
    return id
  }
  // One call frame per function: frames of the same function (say, one per pc if the native side
  // ever records them so) take the function's earliest line, as V8's call frames carry the line
  // where the function starts and leave the lines that ran to `positionTicks`.
  const functions = new Map()
  const keys = raw.frames.map((frame) => {
    const key = JSON.stringify([
      frame.kind,
      optional(frame.module),
      frame.name,
      optional(frame.funcIndex),
      optional(frame.url),
    ])
    const known = functions.get(key)
    const line = optional(frame.line)
    const offset = optional(frame.offset)
    if (!known) {
      functions.set(key, { frame, line, column: optional(frame.column), offset })
    } else {
      if (line !== null && (known.line === null || line < known.line)) {
        known.line = line
        known.column = optional(frame.column)
      }
      if (offset !== null && (known.offset === null || offset < known.offset)) known.offset = offset
    }
    return key
  })
  // Call frames (and script ids) are made as samples reach them, so that frames no sample
  // holds take no script id.
  const callFrames = new Map()
  const callFrameOf = (key) => {
    let callFrame = callFrames.get(key)
    if (callFrame) return callFrame
    const { frame, line, column, offset } = functions.get(key)
    if (frame.kind === 'import') {
      callFrame = { functionName: frame.name, scriptId: '0', url: '', lineNumber: -1, columnNumber: -1 }
    } else if (optional(frame.url) !== null) {
      const url = sourceUrl(frame.url)
      callFrame = {
        functionName: frame.name,
        scriptId: scriptId(url),
        url,
        lineNumber: line === null ? -1 : line - 1,
        columnNumber: line === null || column === null ? -1 : column - 1,
      }
    } else {
      const module = optional(frame.module)
      const url = `wasm://wasm/${module === null ? 'guest' : encodeURIComponent(module)}`
      callFrame = {
        functionName: frame.name,
        scriptId: scriptId(url),
        url,
        lineNumber: 0,
        columnNumber: offset === null ? -1 : offset,
      }
    }
    callFrames.set(key, callFrame)
    return callFrame
  }
  return raw.frames.map((frame, index) => {
    const key = keys[index]
    let tickLine = null
    if (frame.kind === 'wasm') tickLine = optional(frame.url) === null ? 1 : optional(frame.line)
    return { key, callFrame: () => callFrameOf(key), tickLine }
  })
}

/**
 * The `.cpuprofile` of a raw profile: `{ nodes, startTime, endTime, samples, timeDeltas }`, with
 * the fields, types and conventions of `node --cpu-prof`:
 * - node 1 is `(root)`; a sample with an empty stack (the guest was not running) is charged to
 *   an `(idle)` node under the root, as V8 does; every other node is one call path of functions
 *   (frames of one function share a node, as in V8), `hitCount` counting the samples that ended
 *   there, `positionTicks` (1-based lines) where such samples ran, `children` left out when
 *   there are none (V8 leaves both out then);
 * - node ids are numbered breadth first, root first, and `nodes[i].id === i + 1`: any numbering
 *   is valid, and this one also suits VS Code's viewer, which looks nodes up at `id - 1`;
 * - `startTime`, `endTime` and `timeDeltas` are whole microseconds on the monotonic clock; the
 *   deltas are taken between rounded sample times, so `startTime + timeDeltas[0..i]` is sample
 *   i's time rounded, with no drift; `endTime` is never before the last sample.
 */
function toCpuProfile(raw) {
  checkRaw(raw)
  const frames = cpuCallFrames(raw)

  const root = { callFrame: v8MetaFrame('(root)'), hits: 0, children: new Map(), ticks: new Map() }
  let idle = null
  const leaves = raw.samples.map(({ stack }) => {
    if (stack.length === 0) {
      if (!idle) {
        idle = { callFrame: v8MetaFrame('(idle)'), hits: 0, children: new Map(), ticks: new Map() }
        root.children.set('(idle)', idle)
      }
      idle.hits++
      return idle
    }
    let node = root
    for (const index of stack) {
      const { key, callFrame } = frames[index]
      let child = node.children.get(key)
      if (!child) {
        child = { callFrame: callFrame(), hits: 0, children: new Map(), ticks: new Map() }
        node.children.set(key, child)
      }
      node = child
    }
    node.hits++
    const line = frames[stack[stack.length - 1]].tickLine
    if (line !== null) node.ticks.set(line, (node.ticks.get(line) ?? 0) + 1)
    return node
  })

  // Breadth first: a node's id is its place in `nodes` plus one, and parents come before children.
  const order = [root]
  for (let at = 0; at < order.length; at++) order.push(...order[at].children.values())
  order.forEach((node, index) => (node.id = index + 1))
  const nodes = order.map((node) => {
    const out = { id: node.id, callFrame: { ...node.callFrame }, hitCount: node.hits }
    if (node.children.size) out.children = [...node.children.values()].map((child) => child.id)
    if (node.ticks.size) {
      out.positionTicks = [...node.ticks]
        .sort((left, right) => left[0] - right[0])
        .map(([line, ticks]) => ({ line, ticks }))
    }
    return out
  })

  const startTime = Math.round(origin(raw))
  let previous = startTime
  const timeDeltas = raw.samples.map(({ time }) => {
    const rounded = Math.round(time)
    const delta = rounded - previous
    previous = rounded
    return delta
  })
  return {
    nodes,
    startTime,
    endTime: Math.max(Math.round(raw.endTime), previous),
    samples: leaves.map((node) => node.id),
    timeDeltas,
  }
}

function v8MetaFrame(functionName) {
  return { functionName, scriptId: '0', url: '', lineNumber: -1, columnNumber: -1 }
}

/** Category indexes of the Firefox profile (`meta.categories`). */
const CATEGORY = { other: 0, wasm: 1, js: 2 }

/** fxprof-processed-profile's `meta.categories`: 'Other' (grey) first, then the ones added. */
function firefoxCategories() {
  return [
    { name: 'Other', color: 'grey', subcategories: ['Other'] },
    { name: 'WebAssembly', color: 'blue', subcategories: ['Other'] },
    { name: 'JavaScript', color: 'yellow', subcategories: ['Other'] },
  ]
}

/** Milliseconds since the Unix epoch of a time in microseconds on the monotonic clock. */
function unixMsOfMonotonicUs(us) {
  const nowUs = Number(process.hrtime.bigint()) / 1000
  return Date.now() - (nowUs - us) / 1000
}

/** Nanoseconds (an integer, as fxprof's `Timestamp`) from the profile's origin to `us`. */
function nanosSince(originUs, us) {
  return Math.max(0, Math.round((us - originUs) * 1000))
}

/**
 * The Firefox Profiler's processed profile of a raw profile: one process with one thread, both
 * named `name` (default 'wasm guest'), laid out field by field as fxprof-processed-profile 0.8.1
 * serializes a `Profile` (src/profile.rs, thread.rs and the table modules; its integration test
 * `profile_without_js` shows a whole file): `meta`, `libs`, `threads`, `pages`,
 * `profilerOverhead`, `counters`; per thread the columnar `frameTable`, `funcTable`,
 * `stackTable`, `samples`, `markers`, `resourceTable`, `nativeSymbols` and its own `stringArray`
 * (processed version 55 keeps strings per thread; version 56 moved them to `profile.shared`).
 *
 * Times are milliseconds from `meta.startTime`, which is the profile's start as milliseconds
 * since the Unix epoch (from the monotonic times and the clocks now, or `startTimeUnixMs`).
 * Samples keep their stacks' order (outermost frame at the stack table's root); a sample with an
 * empty stack has a null stack, as fxprof writes a sample without frames.
 *
 * Where this differs from what wasmtime's `GuestProfiler` writes through the crate:
 * - frames are named functions (fxprof's label frames) rather than addresses into a library
 *   with a symbol table, so `libs` and `nativeSymbols` are empty and `meta.symbolicated` is true
 *   (there is nothing for the profiler to symbolicate); each wasm module is a resource;
 * - a wasm frame with DWARF info carries it as the profiler's JS frames do: the function's file
 *   (`funcTable.fileName`) and first line (`lineNumber`, `columnNumber`), and the frame's
 *   `line` and `column`, all 1-based as in the profiler (its Chrome importer adds one to
 *   DevTools' 0-based numbers);
 * - categories 'WebAssembly' (wasm frames) and 'JavaScript' (import frames, marked `isJS`, so
 *   the profiler's JavaScript-only view shows the time spent in the host's JS);
 * - no `threadCPUDelta` column: the addon does not measure CPU time per sample, and a column of
 *   zeros (what the crate writes when given none) would draw the thread as never using the CPU;
 *   without it the profiler draws its activity graph from the samples (the column is optional);
 * - `meta.profilingStartTime` and `profilingEndTime` (optional fields of version 55) give the
 *   profiled range, so time before the first sample and after the last one shows as such.
 */
function toFirefoxProfile(raw, options = {}) {
  checkRaw(raw)
  const name = options.name === undefined ? 'wasm guest' : String(options.name)
  const originUs = origin(raw)
  const startTimeUnixMs =
    options.startTimeUnixMs === undefined ? unixMsOfMonotonicUs(originUs) : Number(options.startTimeUnixMs)
  const endNanos = Math.max(
    nanosSince(originUs, raw.endTime),
    raw.samples.length ? nanosSince(originUs, raw.samples[raw.samples.length - 1].time) : 0,
  )
  const endMs = endNanos / 1e6

  const stringArray = []
  const stringIndexes = new Map()
  const string = (text) => {
    let index = stringIndexes.get(text)
    if (index === undefined) {
      index = stringArray.length
      stringArray.push(text)
      stringIndexes.set(text, index)
    }
    return index
  }

  // fxprof's `ResourceTable`: type 1 (library) for libraries; a wasm module here is a resource
  // of type 0 (unknown), with no library and no host.
  const resourceTable = { length: 0, lib: [], name: [], host: [], type: [] }
  const resources = new Map()
  const resource = (module) => {
    let index = resources.get(module)
    if (index === undefined) {
      index = resourceTable.length++
      resourceTable.lib.push(null)
      resourceTable.name.push(string(module))
      resourceTable.host.push(null)
      resourceTable.type.push(0)
      resources.set(module, index)
    }
    return index
  }

  const funcTable = {
    length: 0,
    name: [],
    isJS: [],
    relevantForJS: [],
    resource: [],
    fileName: [],
    lineNumber: [],
    columnNumber: [],
  }
  const funcs = new Map()
  const frameTable = {
    length: 0,
    address: [],
    inlineDepth: [],
    category: [],
    subcategory: [],
    func: [],
    nativeSymbol: [],
    innerWindowID: [],
    line: [],
    column: [],
  }
  const frameIndexes = new Map()
  let containsJs = false

  // Frames, funcs and their strings are made as samples reach them, as fxprof interns only the
  // frames of the stacks it is given.
  const frameOfRaw = new Map()
  const frameIndexOf = (rawIndex) => {
    let known = frameOfRaw.get(rawIndex)
    if (known === undefined) frameOfRaw.set(rawIndex, (known = internFrame(raw.frames[rawIndex])))
    return known
  }
  const internFrame = (frame) => {
    const isImport = frame.kind === 'import'
    const module = optional(frame.module)
    const url = optional(frame.url)
    const line = optional(frame.line)
    const column = line === null ? null : optional(frame.column)
    const funcKey = JSON.stringify([frame.kind, module, frame.name, optional(frame.funcIndex), url])
    let func = funcs.get(funcKey)
    if (func === undefined) {
      func = funcTable.length++
      funcTable.name.push(string(frame.name))
      funcTable.isJS.push(isImport)
      funcTable.relevantForJS.push(false)
      funcTable.resource.push(!isImport && module !== null ? resource(module) : -1)
      funcTable.fileName.push(url === null ? null : string(url))
      funcTable.lineNumber.push(url === null ? null : line)
      funcTable.columnNumber.push(url === null ? null : column)
      funcs.set(funcKey, func)
      containsJs ||= isImport
    } else if (url !== null && line !== null) {
      // The function starts at the earliest line any of its frames has.
      const known = funcTable.lineNumber[func]
      if (known === null || line < known) {
        funcTable.lineNumber[func] = line
        funcTable.columnNumber[func] = column
      }
    }
    const category = isImport ? CATEGORY.js : CATEGORY.wasm
    const frameKey = `${func}:${line}:${column}:${category}`
    let index = frameIndexes.get(frameKey)
    if (index === undefined) {
      index = frameTable.length++
      frameTable.address.push(-1)
      frameTable.inlineDepth.push(0)
      frameTable.category.push(category)
      frameTable.subcategory.push(0)
      frameTable.func.push(func)
      frameTable.nativeSymbol.push(null)
      frameTable.innerWindowID.push(0)
      frameTable.line.push(line)
      frameTable.column.push(column)
      frameIndexes.set(frameKey, index)
    }
    return index
  }

  // fxprof's `StackTable`: one stack per (prefix, frame), a root stack's prefix null.
  const stackTable = { length: 0, prefix: [], frame: [] }
  const stackIndexes = new Map()
  const stackOf = (stack) => {
    let prefix = null
    for (const rawFrame of stack) {
      const frame = frameIndexOf(rawFrame)
      const key = `${prefix}:${frame}`
      let index = stackIndexes.get(key)
      if (index === undefined) {
        index = stackTable.length++
        stackTable.prefix.push(prefix)
        stackTable.frame.push(frame)
        stackIndexes.set(key, index)
      }
      prefix = index
    }
    return prefix
  }

  // fxprof's `SampleTable` sorted by time: deltas in float milliseconds between whole
  // nanoseconds, the first from `meta.startTime`.
  let previousNanos = 0
  const samples = {
    length: raw.samples.length,
    weightType: 'samples',
    stack: [],
    timeDeltas: [],
    weight: [],
  }
  for (const sample of raw.samples) {
    const nanos = nanosSince(originUs, sample.time)
    samples.stack.push(stackOf(sample.stack))
    samples.timeDeltas.push((nanos - previousNanos) / 1e6)
    samples.weight.push(1)
    previousNanos = nanos
  }

  const thread = {
    frameTable,
    funcTable,
    markers: { length: 0, category: [], data: [], endTime: [], name: [], phase: [], startTime: [] },
    name,
    isMainThread: true,
    nativeSymbols: { length: 0, address: [], functionSize: [], libIndex: [], name: [] },
    pausedRanges: [],
    pid: '0',
    processName: name,
    processShutdownTime: endMs,
    processStartupTime: 0,
    processType: 'default',
    registerTime: 0,
    resourceTable,
    samples,
    stackTable,
    stringArray,
    tid: '0',
    unregisterTime: endMs,
    showMarkersInTimeline: false,
  }

  return {
    meta: {
      categories: firefoxCategories(),
      debug: false,
      extensions: { length: 0, baseURL: [], id: [], name: [] },
      interval: Number.isFinite(raw.intervalUs) && raw.intervalUs > 0 ? raw.intervalUs / 1000 : 1,
      preprocessedProfileVersion: PROCESSED_PROFILE_VERSION,
      processType: 0,
      product: name,
      sampleUnits: { time: 'ms', eventDelay: 'ms', threadCPUDelta: 'µs' },
      startTime: startTimeUnixMs,
      profilingStartTime: 0,
      profilingEndTime: endMs,
      symbolicated: true,
      pausedRanges: [],
      version: GECKO_PROFILE_VERSION,
      usesOnlyOneStackType: !containsJs,
      sourceCodeIsNotOnSearchfox: true,
      markerSchema: [],
    },
    libs: [],
    threads: [thread],
    pages: [],
    profilerOverhead: [],
    counters: [],
  }
}

/**
 * The function with the most self samples in a `.cpuprofile` (ours or V8's):
 * `{ functionName, url, share, samples }`, `share` being its samples over all samples but the
 * idle ones (a profile of the addon records one idle sample per call, not per interval, so idle
 * samples say nothing of time). Nodes of the same function (name, url, line and column) add up;
 * V8's meta nodes ((root), (program), (idle), (garbage collector)) are never the answer, though
 * (program) and (garbage collector) samples count as busy. Null when no sample is busy.
 */
function hottestFunction(cpuprofile) {
  if (!cpuprofile || !Array.isArray(cpuprofile.nodes) || !Array.isArray(cpuprofile.samples)) {
    throw new TypeError('hottestFunction needs a .cpuprofile object with nodes and samples')
  }
  const byId = new Map(cpuprofile.nodes.map((node) => [node.id, node]))
  const counts = new Map()
  let busy = 0
  for (const id of cpuprofile.samples) {
    const node = byId.get(id)
    if (!node) throw new TypeError(`sample refers to node ${id}, which does not exist`)
    const { functionName, url, lineNumber, columnNumber } = node.callFrame
    if (functionName === '(idle)') continue
    busy++
    if (V8_META_NODES.has(functionName)) continue
    const key = JSON.stringify([functionName, url, lineNumber, columnNumber])
    const entry = counts.get(key)
    if (entry) entry.samples++
    else counts.set(key, { functionName, url, samples: 1 })
  }
  let best = null
  for (const entry of counts.values()) if (!best || entry.samples > best.samples) best = entry
  return best && { functionName: best.functionName, url: best.url, share: best.samples / busy, samples: best.samples }
}

module.exports = { toCpuProfile, toFirefoxProfile, hottestFunction }
