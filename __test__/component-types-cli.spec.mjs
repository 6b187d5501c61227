// `wasm-memory-sandbox types` and componentDts(): the .d.ts of a component, type-checked by the
// repository's TypeScript (strict) with code using it, and compared with the types `jco transpile`
// writes for the same component: every name jco declares is declared here too, and every function,
// method and named type is mutually assignable with jco's.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { componentEmbed, componentNew, parse, transpile } from '@bytecodealliance/jco'
import test from 'ava'

import { mirrorJsName, mirrorTypes } from './helpers/mirror.mjs'
import { description as kindsDescription, witSource as kindsWit } from './helpers/wit-kinds.mjs'

const require = createRequire(import.meta.url)
const { componentDts, camelCase, pascalCase } = require('../lib/component/dts.js')

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const cli = join(root, 'bin', 'wasm-memory-sandbox.js')
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
const rustTypes = join(root, '__test__', 'guests', 'build', 'types.rust.component.wasm')

/** A temp folder, removed after the test (passed or failed). */
function scratch(t) {
  const directory = mkdtempSync(join(tmpdir(), 'wasm-memory-sandbox-types-'))
  t.teardown(() => rmSync(directory, { recursive: true, force: true }))
  return directory
}

function runCli(args) {
  return spawnSync(process.execPath, [cli, ...args], { cwd: root, encoding: 'utf8' })
}

function write(directory, files) {
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(dirname(join(directory, file)), { recursive: true })
    writeFileSync(join(directory, file), text)
  }
}

/**
 * Type-checks `files` of `directory` with the repository's TypeScript, strict (and with
 * exactOptionalPropertyTypes unless `exact` is false: jco's own types are not written for it).
 */
function typeCheck(t, directory, files, { exact = true } = {}) {
  const name = exact ? 'tsconfig.json' : 'tsconfig.loose.json'
  const compilerOptions = {
    strict: true,
    noEmit: true,
    target: 'ES2022',
    // jco's types name WebAssembly.Module, which only the DOM lib declares.
    lib: exact ? ['ES2022', 'ESNext.Disposable'] : ['ES2022', 'ESNext.Disposable', 'DOM'],
    module: 'Node16',
    moduleResolution: 'Node16',
    types: ['node'],
    typeRoots: [join(root, 'node_modules', '@types')],
    skipLibCheck: false,
    noUncheckedIndexedAccess: true,
    exactOptionalPropertyTypes: exact,
  }
  writeFileSync(join(directory, name), JSON.stringify({ compilerOptions, files }, null, 2))
  const result = spawnSync(process.execPath, [tsc, '-p', join(directory, name)], { encoding: 'utf8' })
  t.is(result.status, 0, `tsc (${files.join(', ')}):\n${result.stdout}${result.stderr}`)
}

/** A component of `world` with the interfaces of `witSource` and a core module that only traps (made by jco). */
async function dummyComponent(witSource, world) {
  return componentNew(await componentEmbed({ dummy: true, witSource, world }))
}

/** The .d.ts files `jco transpile` writes for `bytes` (sync instantiation: `instantiate()` returns the exports). */
async function jcoTypes(bytes) {
  const { files } = await transpile(bytes, { name: 'component', instantiation: 'sync', quiet: true })
  const types = {}
  for (const [file, content] of Object.entries(files)) {
    if (file.endsWith('.d.ts')) types[file] = new TextDecoder().decode(content)
  }
  return types
}

function mentionsResource(type) {
  if (!type || typeof type !== 'object') return false
  if (type.kind === 'own' || type.kind === 'borrow') return true
  const children = [
    type.element,
    type.type,
    type.ok,
    type.err,
    ...(type.elements || []),
    ...(type.fields || []).map((field) => field.type),
    ...(type.cases || []).map((c) => c && c.type),
  ]
  return children.some(mentionsResource)
}

/**
 * Where `fn` (its parameters after the first `skip`, or its result) names a resource. Our exported
 * resource classes have `[Symbol.dispose]` and jco's not, so ours is assignable to jco's and not
 * the other way round: where jco's class would have to be assignable to ours, that check is skipped.
 */
function resourcesOf(fn, skip = 0) {
  return {
    params: (fn.params || []).slice(skip).some((param) => mentionsResource(param.type)),
    result: mentionsResource(fn.result),
  }
}

const quote = (text) => `'${text.replace(/'/g, "\\'")}'`

/**
 * TypeScript that compiles only when our `ours.d.ts` declares every export, import, function, method
 * and named type jco declares for the same component (in `jco/`), with mutually assignable types.
 */
function jcoComparison(description, jcoFiles) {
  const lines = [
    "import type { ComponentExports, ComponentImports } from './ours.js'",
    "import type * as Ours from './ours.js'",
    "import type { instantiate, ImportObject } from './jco/component.js'",
    'type JcoExports = ReturnType<typeof instantiate>',
    'type OurImport<K extends string> = Extract<ComponentImports, Record<K, unknown>>[K]',
    'type NoneMissing<A, B> = [Exclude<keyof A, keyof B>] extends [never] ? true : Exclude<keyof A, keyof B>',
    'type Equivalent<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false',
    'declare function value<T>(): T',
    'export const exportKeys: NoneMissing<JcoExports, ComponentExports> = true',
  ]
  let n = 0
  const check = (target, source) => lines.push(`export const c${n++}: ${target} = ${source}`)
  /**
   * Our exported `ourFn` and jco's `jcoFn` (types) for `fn`: each assignable to the other, but for
   * the directions that would need jco's resource class assignable to ours. Ours assignable to jco's
   * needs jco's parameters assignable to ours: with a resource parameter, only our parameters and
   * result are checked against jco's. jco's assignable to ours needs jco's result assignable to ours:
   * skipped with a resource result.
   */
  const compareExport = (jcoFn, ourFn, fn, skip = 0) => {
    const resources = resourcesOf(fn, skip)
    if (!resources.params) check(jcoFn, `value<${ourFn}>()`)
    else {
      check(`Parameters<${jcoFn}>`, `value<Parameters<${ourFn}>>()`)
      check(`ReturnType<${jcoFn}>`, `value<ReturnType<${ourFn}>>()`)
    }
    if (!resources.result) check(ourFn, `value<${jcoFn}>()`)
  }
  for (const [key, item] of Object.entries(description.exports)) {
    if (item.kind === 'function') {
      compareExport(`JcoExports[${quote(item.jsName)}]`, `ComponentExports[${quote(item.jsName)}]`, item)
      continue
    }
    const q = quote(item.name || key)
    lines.push(`export const keys${n++}: NoneMissing<JcoExports[${q}], ComponentExports[${q}]> = true`)
    for (const fn of item.functions) {
      compareExport(`JcoExports[${q}][${quote(fn.jsName)}]`, `ComponentExports[${q}][${quote(fn.jsName)}]`, fn)
    }
    for (const resource of item.resources) {
      const ourClass = `ComponentExports[${q}][${quote(resource.jsName)}]`
      const jcoClass = `JcoExports[${q}][${quote(resource.jsName)}]`
      if (Object.hasOwn(resource, 'constructor') && resource.constructor) {
        check(`ConstructorParameters<${jcoClass}>`, `value<ConstructorParameters<${ourClass}>>()`)
        if (!resourcesOf(resource.constructor).params) {
          check(`ConstructorParameters<${ourClass}>`, `value<ConstructorParameters<${jcoClass}>>()`)
        }
      }
      for (const fn of resource.methods) {
        const method = (cls) => `${cls}['prototype'][${quote(fn.jsName)}]`
        compareExport(method(jcoClass), method(ourClass), fn, 1)
      }
      for (const fn of resource.statics) {
        compareExport(`${jcoClass}[${quote(fn.jsName)}]`, `${ourClass}[${quote(fn.jsName)}]`, fn)
      }
    }
  }
  for (const [key, item] of Object.entries(description.imports)) {
    if (item.kind === 'function') {
      // jco takes a world-level function as `{ default: fn }` under its WIT name.
      const ourFn = `OurImport<${quote(item.name || key)}>`
      const jcoFn = `ImportObject[${quote(item.name || key)}]['default']`
      check(jcoFn, `value<${ourFn}>()`)
      check(ourFn, `value<${jcoFn}>()`)
      continue
    }
    const name = item.name || key
    if (name.startsWith('wasi:') || (!item.functions.length && !item.resources.length)) continue
    const ourInterface = `OurImport<${quote(name)}>`
    const jcoInterface = `ImportObject[${quote(name)}]`
    lines.push(`export const keys${n++}: NoneMissing<${jcoInterface}, ${ourInterface}> = true`)
    for (const fn of item.functions) {
      check(`${jcoInterface}[${quote(fn.jsName)}]`, `value<${ourInterface}[${quote(fn.jsName)}]>()`)
      check(`${ourInterface}[${quote(fn.jsName)}]`, `value<${jcoInterface}[${quote(fn.jsName)}]>()`)
    }
    for (const resource of item.resources) {
      const ourClass = `${ourInterface}[${quote(resource.jsName)}]`
      const jcoClass = `${jcoInterface}[${quote(resource.jsName)}]`
      for (const fn of [...resource.methods]) {
        check(`${jcoClass}['prototype'][${quote(fn.jsName)}]`, `value<${ourClass}['prototype'][${quote(fn.jsName)}]>()`)
        check(`${ourClass}['prototype'][${quote(fn.jsName)}]`, `value<${jcoClass}['prototype'][${quote(fn.jsName)}]>()`)
      }
      for (const fn of resource.statics) {
        check(`${jcoClass}[${quote(fn.jsName)}]`, `value<${ourClass}[${quote(fn.jsName)}]>()`)
        check(`${ourClass}[${quote(fn.jsName)}]`, `value<${jcoClass}[${quote(fn.jsName)}]>()`)
      }
    }
  }
  // Every type and class jco declares, under the same name, and the types equivalent.
  const seen = new Set()
  for (const [file, text] of Object.entries(jcoFiles)) {
    if (!file.startsWith('interfaces/')) continue
    const module = `J${n++}`
    lines.push(`import type * as ${module} from './jco/${file.replace(/\.d\.ts$/, '.js')}'`)
    for (const [, kind, name] of text.matchAll(/^export (interface|type|class) (\w+)/gm)) {
      if (name === 'Option' || name === 'Result' || seen.has(name)) continue
      seen.add(name)
      if (kind === 'class') lines.push(`export type K${n++} = Ours.${name}`)
      else lines.push(`export const t${n++}: Equivalent<Ours.${name}, ${module}.${name}> = true`)
    }
  }
  return { text: `${lines.join('\n')}\n`, typeNames: [...seen] }
}

/** Checks `ours` (a .d.ts) under strict TypeScript with `usage`, then against jco's types for `bytes`. */
async function checkWithJco(t, { ours, usage, description, bytes }) {
  const directory = scratch(t)
  const jcoFiles = await jcoTypes(bytes)
  const comparison = jcoComparison(description, jcoFiles)
  write(directory, { 'ours.d.ts': ours, 'usage.ts': usage, 'jco-comparison.ts': comparison.text })
  write(join(directory, 'jco'), jcoFiles)
  typeCheck(t, directory, ['ours.d.ts', 'usage.ts'])
  typeCheck(t, directory, ['jco-comparison.ts'], { exact: false })
  return comparison
}

/**
 * A JS implementation of the imported `demo:kinds/api`: the component jco builds for `kinds` imports
 * all of it (its core module imports every function of the world), while the hand-written
 * description of helpers/wit-kinds.mjs imports only its types.
 */
const kindsApiImport = `  'demo:kinds/api': {
    prims: (a, b, c, d, e, f, g, h, i, j, k, l, m) => [a, b + c + d + e + f + g + j + k, h + i, l + m],
    echoPoint: (p) => p,
    tryIt: (in_, default_) => ({ x: in_.length, yCoord: Number(default_), nested: { tag: 'none' } }),
    tryVoid: () => {},
    tryErrVoid: () => 0,
    nestedRes: (r) => [r.tag === 'ok' ? { tag: 'ok', val: undefined } : { tag: 'err', val: r.val.length }],
    opts: (a, b, c) => (a.tag === 'some' && b === undefined && c === undefined ? 'red' : undefined),
    lists: (a, b, c, d, e, f, g, h, i, j, k, l) => [l],
    tup: ([n, [s]]) => [n, s],
    shapes: (s, c, p) => [s, c === 'red' ? p : {}],
    make: () => new ApiCounter(0),
    namedRes: () => 1,
    Counter: ApiCounter,
    NoCtor: class { id() { return 7 } },
  },
`

/** Code using the types of the `kinds` world (helpers/wit-kinds.mjs), strictly; `apiImport` implements the imported api. */
function kindsUsage(apiImport = '') {
  return `import type { ComponentExports, ComponentImports, Point, Shape, Counter, Perms, Color } from './ours.js'
declare const exports: ComponentExports
const p: Point = exports.api.echoPoint({ x: 1, yCoord: 2, nested: { tag: 'some', val: undefined } })
const labelled: Point = { ...p, label: 'here' }
const shapes: [Shape, Perms] = exports['demo:kinds/api'].shapes({ tag: 'square', val: labelled }, 'hot-pink', { writeAll: true })
const none: Shape = { tag: 'none' }
// @ts-expect-error a case with a payload needs its val
const circle: Shape = { tag: 'circle' }
// @ts-expect-error not a case of the enum
const pink: Color = 'pink'
const counter: Counter = new exports.api.Counter(1)
const value: bigint = counter.getValue()
counter.add(-1n, counter)
const merged: Counter = exports['demo:kinds/api@0.1.0'].Counter.merge(counter, counter)
merged[Symbol.dispose]()
// @ts-expect-error no-ctor has no constructor
new exports.api.NoCtor()
const thrown: Point = exports.api.tryIt('x', true)
const nothing: void = exports.api.tryVoid()
const options: Color | undefined = exports.api.opts({ tag: 'some', val: undefined }, undefined, 3)
const prims: [boolean, number, bigint, string] = exports.api.prims(true, -1, 1, -1, 1, -1, 1, -1n, 1n, 0.5, 0.5, 'x', 'y')
// @ts-expect-error u64 is a bigint
exports.api.prims(true, -1, 1, -1, 1, -1, 1, -1n, 1, 0.5, 0.5, 'x', 'y')
const bytes: Uint8Array | undefined = exports.api.lists(new Int8Array(), new Uint16Array(), new Int16Array(), new Uint32Array(), new Int32Array(), new BigUint64Array(), new BigInt64Array(), new Float32Array(), new Float64Array(), ['a'], [true], new Uint8Array())[0]
const worldValue: bigint = exports.worldFn(1n)
const otherValue: boolean = exports.other.f() && exports.plain.hello() === exports['demo:kinds/plain@0.1.0'].hello()
class Store {
  constructor(readonly name: string) {}
  get(k: string): string | undefined { return k === this.name ? k : undefined }
  static open(): Store { return new Store('opened') }
}
class Handle {
  id(): number { return 7 }
}
class ApiCounter {
  #value: bigint
  constructor(start: number) { this.#value = BigInt(start) }
  getValue(): bigint { return this.#value }
  add(delta: bigint, other: ApiCounter) { this.#value += delta + other.getValue() }
  static merge(a: ApiCounter, b: ApiCounter): ApiCounter { a.add(0n, b); return a }
}
const imports: ComponentImports = {
${apiImport}  'demo:kinds/logger': { log(message: string, at: Point) { void [message, at] }, fetch: (s) => s.get('k') ?? '', Store, Handle },
  'demo:kinds/plain@0.1.0': { hello: () => 'hi' },
  hostFn: (x) => String(x),
}
// @ts-expect-error the logger is missing
const missing: ComponentImports = { 'demo:kinds/plain': { hello: () => 'hi' }, 'host-fn': (x: number) => String(x) }
export { shapes, none, circle, pink, value, thrown, nothing, options, prims, bytes, worldValue, otherValue, imports, missing }
`
}

test('componentDts types every WIT kind of a world as jco transpile does (names and signatures)', (t) => {
  const dts = componentDts(kindsDescription, { name: 'kinds' })
  const has = (text) => t.true(dts.includes(text), `missing: ${text}`)
  has('// The types of the WebAssembly component `kinds`')
  has(
    'prims(a: boolean, b: number, c: number, d: number, e: number, f: number, g: number, h: bigint, i: bigint, j: number, k: number, l: string, m: string): [boolean, number, bigint, string]',
  )
  has('echoPoint(p: Point): Point')
  // A top-level result returns its ok type and documents the error.
  has('tryIt(in_: string, default_: boolean): Point')
  has('@throws {ComponentError} when the guest returns `err`: its `payload` is the error, `Color` (WIT `color`).')
  has('tryVoid(): void')
  has('tryErrVoid(): number')
  has('namedRes(): number')
  has('nestedRes(r: Result<number, string>): Array<Result<void, number>>')
  has('opts(a: Option<number | undefined>, b: Option<number | undefined> | undefined, c: Maybe): Color | undefined')
  has(
    'lists(a: Int8Array, b: Uint16Array, c: Int16Array, d: Uint32Array, e: Int32Array, f: BigUint64Array, g: BigInt64Array, h: Float32Array, i: Float64Array, j: Array<string>, k: Array<boolean>, l: Bytes): Array<Uint8Array>',
  )
  has('tup(t: [number, [string, string]]): Pair')
  has('shapes(s: Shape, c: Color, p: Perms): [Shape, Perms]')
  has(
    'export interface Point {\n  /** `x: s32` */\n  x: number\n  /** `y-coord: f64` */\n  yCoord: number\n  /** `label: option<string>` */\n  label?: string | undefined\n  /** `nested: option<option<u8>>` */\n  nested: Option<number | undefined>\n}',
  )
  has("export type Color = 'red' | 'hot-pink'")
  has('export interface Perms {\n  read?: boolean\n  writeAll?: boolean\n}')
  has('export type Shape = ShapeCircle | ShapeNone | ShapeSquare')
  has("export interface ShapeNone {\n  tag: 'none'\n}")
  has("export interface ShapeSquare {\n  tag: 'square'\n  val: Point\n}")
  has('export type Pair = [number, string]')
  has('export type Bytes = Uint8Array')
  has('export type Maybe = number | undefined')
  has('export type Res = Result<number, string>')
  has("export type Option<T> = { tag: 'none' } | { tag: 'some'; val: T }")
  has("export type Result<T, E> = { tag: 'ok'; val: T } | { tag: 'err'; val: E }")
  // Point is declared once, though both the exported api and the imported logger name it.
  t.is(dts.match(/export interface Point /g).length, 1)
  // Exported resources: disposable classes; without a constructor, a private one.
  has('export declare class Counter {\n  /** `constructor(start: u32)` */\n  constructor(start: number)')
  has('  static merge(a: Counter, b: Counter): Counter\n')
  has('  add(delta: bigint, other: Counter): void\n')
  has('private constructor()')
  t.is(dts.match(/\[Symbol\.dispose\]\(\): void/g).length, 2)
  // Imported resources: classes the user writes (no dispose), any constructor when WIT has none.
  has('export declare class Store {\n  /** `constructor(name: string)` */\n  constructor(name: string)')
  has('export declare class Handle {')
  has('constructor(...args: any[])')
  has('Store: typeof Store')
  // Exports by full name, name without version, and jco's short name; world functions.
  for (const key of ["'demo:kinds/api@0.1.0'", "'demo:kinds/api'", 'api', 'plain', 'other']) {
    t.regex(dts, new RegExp(`\\n  readonly ${key.replace(/[.@/]/g, '\\$&')}: `), key)
  }
  has('  worldFn(a: bigint): bigint\n')
  // Imports: with or without version, world functions by either name; WASI and type-only interfaces left out.
  has("({ 'demo:kinds/logger@0.1.0': DemoKindsLoggerImport } | { 'demo:kinds/logger': DemoKindsLoggerImport })")
  has("({ 'host-fn': (x: number) => string } | { hostFn: (x: number) => string })")
  has('The `wasi` option provides `wasi:cli/environment@0.2.0`.')
  has('`demo:kinds/api@0.1.0` only name types: there is nothing to implement.')
  t.false(/getArguments/.test(dts))
  has("Returns `ok`'s value; to return `err`, throw a `ComponentError` whose `payload` is `number` (WIT `u32`).")
})

test('componentDts output of every kind type-checks strictly and matches jco transpile of the same world', async (t) => {
  const bytes = await dummyComponent(kindsWit, 'kinds')
  const { typeNames } = await checkWithJco(t, {
    ours: componentDts(kindsDescription, { name: 'kinds' }),
    usage: kindsUsage(),
    description: kindsDescription,
    bytes,
  })
  t.deepEqual(
    typeNames.sort(),
    [
      'Bytes',
      'Color',
      'Counter',
      'Handle',
      'Maybe',
      'NoCtor',
      'Pair',
      'Perms',
      'Point',
      'Res',
      'Shape',
      'ShapeCircle',
      'ShapeNone',
      'ShapeSquare',
      'Store',
    ].sort(),
  )
})

const k = (kind, extra = {}) => ({ kind, ...extra })
const fn = (name, params, result, extra = {}) => ({
  kind: 'function',
  name,
  jsName: camelCase(name),
  params: params.map(([paramName, type]) => ({ name: paramName, type })),
  ...(result ? { result } : {}),
  async: false,
  ...extra,
})
const iface = (name, { functions = [], resources = [], types = [] } = {}) => ({
  kind: 'interface',
  name,
  jsName: camelCase(name.replace(/@.*$/, '').split('/').pop()),
  functions,
  resources,
  types,
})

test('componentDts writes anonymous records, variants, enums and flags inline, and futures, streams (a function passing them returns a Promise) and error-context', (t) => {
  const description = {
    exports: {
      edge: fn(
        'edge',
        [
          ['record', k('record', { fields: [{ name: 'first-name', type: k('string') }] })],
          ['variant', k('variant', { cases: [{ name: 'a', type: k('u8') }, { name: 'b-c' }] })],
          ['enum', k('enum', { cases: ['x', "it's"] })],
          ['flags', k('flags', { flags: ['can-read'] })],
          ['future', k('future', { type: k('u32') })],
          ['stream', k('stream')],
          ['bytes', k('stream', { type: k('u8') })],
          ['error', k('error-context')],
          ['opt3', k('option', { type: k('option', { type: k('option', { type: k('u32') }) }) })],
          ['opt-record', k('record', { fields: [{ name: 'o', type: k('option', { type: k('s64') }) }] })],
        ],
        k('result'),
      ),
      later: fn('later', [], k('u8'), { async: true }),
      'empty-enum': fn('empty-enum', [['e', k('enum', { cases: [] })]]),
    },
    imports: {},
  }
  const dts = componentDts(description, { name: 'edge' })
  t.true(
    dts.includes(
      "edge(record: { firstName: string }, variant: { tag: 'a'; val: number } | { tag: 'b-c' }, enum_: 'x' | 'it\\'s', flags: { canRead?: boolean }, future: number | PromiseLike<number>, stream: never, bytes: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array | string> | Iterable<Uint8Array | string> | Uint8Array, error: number, opt3: Option<number | undefined> | undefined, optRecord: { o?: bigint | undefined }): Promise<void>",
    ),
    dts,
  )
  t.true(dts.includes('later(): Promise<number>'))
  t.true(dts.includes('emptyEnum(e: never): void'))
  t.true(dts.includes('export type ComponentImports =\n  { [name: string]: never }'))
  const directory = scratch(t)
  write(directory, {
    'edge.d.ts': dts,
    'usage.ts': `import type { ComponentExports, ComponentImports } from './edge.js'
declare const e: ComponentExports
declare const future: PromiseLike<number>
declare const stream: never
const edged: Promise<void> = e.edge({ firstName: 'a' }, { tag: 'b-c' }, "it's", {}, future, stream, new Uint8Array(1), 0, { tag: 'some', val: undefined }, {})
const readable: Promise<void> = e.edge({ firstName: 'a' }, { tag: 'b-c' }, 'x', {}, 1, stream, new ReadableStream<Uint8Array>(), 0, undefined, {})
const later: Promise<number> = e.later()
// @ts-expect-error no imports at all
const imports: ComponentImports = { anything: () => 1 }
const none: ComponentImports = {}
export { later, imports, none, edged, readable }
`,
  })
  typeCheck(t, directory, ['edge.d.ts', 'usage.ts'])
})

test('componentDts names each declaration once, renames different ones sharing a name, and never shadows a global type', (t) => {
  const pointA = { name: 'point', kind: 'record', fields: [{ name: 'x', type: k('u8') }] }
  const pointB = { name: 'point', kind: 'record', fields: [{ name: 'y', type: k('string') }] }
  const sameAsA = { name: 'point', kind: 'record', fields: [{ name: 'x', type: k('u8') }] }
  const array = {
    name: 'array',
    kind: 'record',
    fields: [{ name: 'items', type: k('list', { element: k('string') }) }],
  }
  const promise = { name: 'promise', kind: 'enum', cases: ['kept'] }
  const symbol = { name: 'symbol', kind: 'flags', flags: ['s'] }
  // A description read from JSON: a resource without constructor has no own `constructor` key.
  const thing = JSON.parse(
    JSON.stringify({
      name: 'thing',
      jsName: 'Thing',
      methods: [fn('[method]thing.go', [['self', k('borrow', { resource: 'thing' })]])],
      statics: [],
    }),
  )
  const description = {
    exports: {
      'demo:a/shapes@1.0.0': iface('demo:a/shapes@1.0.0', {
        functions: [fn('a', [['p', pointA]], array)],
        resources: [thing],
        types: [{ name: 'point', type: pointA }],
      }),
      'demo:b/shapes@1.0.0': iface('demo:b/shapes@1.0.0', {
        functions: [fn('b', [['p', pointB]], promise), fn('c', [['p', sameAsA]], symbol)],
        resources: [{ ...thing, methods: [] }],
      }),
      shapes: fn('shapes', [], k('own', { resource: 'thing' })),
    },
    imports: {
      'demo:a/shapes@1.0.0': iface('demo:a/shapes@1.0.0', {
        functions: [fn('take', [['t', k('own', { resource: 'thing' })]])],
        resources: [{ name: 'thing', jsName: 'Thing', methods: [], statics: [] }],
      }),
    },
  }
  const dts = componentDts(description)
  t.true(dts.includes('export interface Point {\n  /** `x: u8` */\n  x: number\n}'))
  t.true(dts.includes('export interface DemoBShapesPoint {\n  /** `y: string` */\n  y: string\n}'))
  t.is(dts.match(/export interface Point /g).length, 1)
  t.true(dts.includes('a(p: Point): DemoAShapesArray'))
  t.true(dts.includes('b(p: DemoBShapesPoint): DemoBShapesPromise'))
  t.true(dts.includes('c(p: Point): DemoBShapesSymbol'))
  t.false(/export (interface|type|declare class) (Array|Promise|Symbol|Result|Option)\b/.test(dts))
  // Two exported resources named thing, and an imported one: three classes.
  t.true(
    dts.includes(
      'export declare class Thing {\n  /** The guest makes these; this type has no public constructor. */\n  private constructor()',
    ),
  )
  t.true(dts.includes('export declare class DemoBShapesThing {'))
  t.true(dts.includes('export declare class ThingImport {'))
  t.true(dts.includes('take(t: ThingImport): void'))
  // The world function finds the resource in the first exported interface that has one.
  t.true(dts.includes('shapes(): Thing'))
  // Both interfaces are `shapes` for jco, and so is the world function: the short name is left out.
  t.false(/\n {2}readonly shapes:/.test(dts))
  t.true(dts.includes("readonly 'demo:b/shapes': DemoBShapes"))
  const directory = scratch(t)
  write(directory, {
    'names.d.ts': dts,
    'usage.ts': `import type { ComponentExports, DemoAShapesArray } from './names.js'
declare const e: ComponentExports
const items: Array<string> = e['demo:a/shapes'].a({ x: 1 }).items
const fromArray: DemoAShapesArray = { items }
const kept: Promise<void> = Promise.resolve()
export { fromArray, kept }
`,
  })
  typeCheck(t, directory, ['names.d.ts', 'usage.ts'])
})

test('componentDts keeps ComponentImports within what TypeScript can check for many versioned imports', (t) => {
  const imports = {}
  for (let i = 0; i < 12; i++) {
    const name = `demo:many/i${i}@1.0.0`
    imports[name] = iface(name, { functions: [fn(`f${i}`, [], k('u32'))] })
  }
  const dts = componentDts({ exports: {}, imports })
  // The first 8 (2^8 = 256 ways) take either key, the rest the versioned one only.
  t.true(dts.includes("({ 'demo:many/i7@1.0.0': DemoManyI7Import } | { 'demo:many/i7': DemoManyI7Import })"))
  t.true(dts.includes("& { 'demo:many/i8@1.0.0': DemoManyI8Import }"))
  const directory = scratch(t)
  const entries = Array.from(
    { length: 12 },
    (_, i) => `'demo:many/i${i}${i < 8 ? '' : '@1.0.0'}': { f${i}: () => ${i} }`,
  )
  write(directory, {
    'many.d.ts': dts,
    'usage.ts': `import type { ComponentImports } from './many.js'\nexport const imports: ComponentImports = { ${entries.join(', ')} }\n`,
  })
  typeCheck(t, directory, ['many.d.ts', 'usage.ts'])
})

test('componentDts rejects a missing description, and camelCase/PascalCase split names as jco (heck) does', (t) => {
  t.throws(() => componentDts(), { instanceOf: TypeError, message: /description must be \{ exports, imports \}/ })
  t.is(camelCase('echo-u8'), 'echoU8')
  t.is(camelCase('get-HTTP-thing'), 'getHttpThing')
  t.is(camelCase('is-admin-user'), 'isAdminUser')
  t.is(pascalCase('hot-pink'), 'HotPink')
  t.is(pascalCase('demo-types-api'), 'DemoTypesApi')
  t.is(pascalCase('URL-parser'), 'UrlParser')
  t.is(pascalCase('HTTPServer'), 'HttpServer')
})

test('the types command prints usage with --help, and refuses bad command lines with exit code 2', (t) => {
  const help = runCli(['--help'])
  t.is(help.status, 0)
  t.regex(help.stdout, /^Usage: wasm-memory-sandbox types <component\.wasm\|component\.wat> \[--out <file\.d\.ts>\]/)
  t.regex(help.stdout, /--name <name>/)
  for (const [args, message] of [
    [[], /missing command/],
    [['typo'], /unknown command 'typo'/],
    [['types'], /types: missing the component file/],
    [['types', 'a.wasm', 'b.wasm'], /unexpected argument 'b\.wasm'/],
    [['types', 'a.wasm', '--bogus'], /Unknown option '--bogus'/],
    [['types', 'a.wasm', '--out'], /--out <value>' argument missing/],
  ]) {
    const result = runCli(args)
    t.is(result.status, 2, args.join(' '))
    t.regex(result.stderr, message)
    t.regex(result.stderr, /Run 'wasm-memory-sandbox --help' for more\./)
    t.is(result.stdout, '')
  }
})

const inlineComponent = `(component
  (import "demo:cli/host@1.0.0" (instance $host (export "log" (func (param "n" u64)))))
  (core func $log (canon lower (func $host "log")))
  (core instance $hostcore (export "log" (func $log)))
  (core module $m
    (import "host" "log" (func $log (param i64)))
    (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add)
    (func (export "answer") (result i32) i64.const 42 call $log i32.const 42))
  (core instance $i (instantiate $m (with "host" (instance $hostcore))))
  (func $add (param "a" u32) (param "b-value" u32) (result u32) (canon lift (core func $i "add")))
  (instance $math (export "add" (func $add)))
  (export "demo:cli/math@1.0.0" (instance $math))
  (func (export "the-answer") (result u32) (canon lift (core func $i "answer"))))
`

test('the types command writes the .d.ts of a component text file with --out, which type-checks and matches jco', async (t) => {
  const directory = scratch(t)
  const input = join(directory, 'inline.wat')
  writeFileSync(input, inlineComponent)
  const out = join(directory, 'inline.d.ts')
  const result = runCli(['types', input, '--out', out, '--name', 'inline-demo'])
  t.is(result.status, 0, result.stderr)
  t.is(result.stdout, '')
  const dts = readFileSync(out, 'utf8')
  t.true(dts.startsWith('// The types of the WebAssembly component `inline-demo`'))
  t.regex(
    dts,
    /export interface DemoCliMath \{\n {2}\/\*\* `add: func\(a: u32, b-value: u32\) -> u32` \*\/\n {2}add\(a: number, bValue: number\): number\n\}/,
  )
  t.regex(dts, /\n {2}theAnswer\(\): number\n/)
  t.regex(
    dts,
    /export type ComponentImports =\n {2}\(\{ 'demo:cli\/host@1\.0\.0': DemoCliHostImport \} \| \{ 'demo:cli\/host': DemoCliHostImport \}\)/,
  )
  t.regex(dts, /log\(n: bigint\): void/)
  // Without --out and --name: to stdout, named after the file.
  const printed = runCli(['types', input])
  t.is(printed.status, 0, printed.stderr)
  t.is(printed.stdout, dts.replace(/inline-demo/g, 'inline'))

  const { Component } = require('wasm-memory-sandbox')
  const component = Component.fromFile(input)
  await checkWithJco(t, {
    ours: dts,
    usage: `import type { ComponentExports, ComponentImports } from './ours.js'
declare const e: ComponentExports
const sum: number = e['demo:cli/math@1.0.0'].add(1, 2) + e['demo:cli/math'].add(3, 4) + e.math.add(5, 6) + e.theAnswer()
const imports: ComponentImports = { 'demo:cli/host': { log: (n: bigint) => void n } }
// @ts-expect-error u64 is a bigint
const wrong: ComponentImports = { 'demo:cli/host': { log: (n: number) => void n } }
export { sum, imports, wrong }
`,
    description: { exports: component.exports, imports: component.imports },
    bytes: await parse(inlineComponent),
  })
})

// The component jco builds imports all of demo:kinds/api (functions and resources, not only the
// point logger uses): the usage implements it.
test('the types command on the kinds world (a component jco builds) agrees with jco transpile', async (t) => {
  const directory = scratch(t)
  const bytes = await dummyComponent(kindsWit, 'kinds')
  const input = join(directory, 'kinds.wasm')
  writeFileSync(input, bytes)
  const result = runCli(['types', input])
  t.is(result.status, 0, result.stderr)
  const { Component } = require('wasm-memory-sandbox')
  const component = new Component(bytes)
  // The description's names are the ones jco uses, and the types are the same whichever describes them.
  const description = { exports: component.exports, imports: component.imports }
  await checkWithJco(t, { ours: result.stdout, usage: kindsUsage(kindsApiImport), description, bytes })
})

test('the types command on the Rust demo:types component (build:guests) type-checks and agrees with jco', async (t) => {
  if (!existsSync(rustTypes)) {
    t.log(`skipped: ${rustTypes} is missing; \`npm run build:guests\` builds it`)
    t.pass()
    return
  }
  const result = runCli(['types', rustTypes])
  t.is(result.status, 0, result.stderr)
  const dts = result.stdout
  for (const name of ['Point', 'InnerThing', 'KebabRecord', 'Shape', 'TrafficLight', 'Permissions', 'Counter', 'Kv']) {
    t.regex(dts, new RegExp(`export (interface|type|declare class) ${name}\\b`), name)
  }
  t.regex(dts, /\n {2}checkedDiv\(a: number, b: number\): number\n/)
  t.regex(dts, /\n {2}echoListU8\(v: Uint8Array\): Uint8Array\n/)
  t.regex(dts, /\n {2}echoOptionOptionU32\(v: Option<number \| undefined>\): Option<number \| undefined>\n/)
  t.regex(dts, /\n {2}hello\(name: string\): string\n/)
  const { Component } = require('wasm-memory-sandbox')
  const component = Component.fromFile(rustTypes)
  const usage = `import type { ComponentExports, ComponentImports, Point, KebabRecord, Shape, TrafficLight, Permissions, Counter } from './ours.js'
declare const e: ComponentExports
const p: Point = e['demo:types/api'].echoPoint({ x: 1, y: 2 })
const record: KebabRecord = e.api.echoRecord({ firstName: 'a', ageInYears: 1, isActive: true, nestedThing: { labelText: 'l', thePoint: p }, tagList: [] })
const shape: Shape = e.api.echoVariant({ tag: 'nothing' })
const light: TrafficLight = e.api.echoEnum('amber-light')
const permissions: Permissions = e.api.echoFlags({ canRead: true, isAdminUser: false })
const bytes: Uint8Array = e['demo:types/api@0.1.0'].echoListU8(new Uint8Array([1]))
const quotient: number = e.api.checkedDiv(6, 3)
const counter: Counter = new e.api.Counter(1)
counter.increment(2)
const total: number = counter.get() + e.api.Counter.merge(counter, counter).get()
counter[Symbol.dispose]()
const greeting: string = e.hello('you') + e.helloHost()
const burnt: bigint = e.limits.burn(10n)
const imports: ComponentImports = {
  'demo:types/logger': { log: (message: string) => void message, logPoint: (point: Point) => void point },
  'demo:types/host@0.1.0': {
    Kv: class {
      #map = new Map<string, string>()
      get(key: string) { return this.#map.get(key) }
      set(key: string, value: string) { this.#map.set(key, value) }
    },
    fetchNumber: (key: string) => key.length,
  },
  hostName: () => 'host',
  // A result-typed import is typed, as jco types it, by its ok value (err is thrown).
  'demo:types/mirror': { ${mirrorTypes.map((type) => (type === 'result' ? `${mirrorJsName(type)}: (v) => { if (v.tag === 'err') throw v.val; return v.val }` : `${mirrorJsName(type)}: (v) => v`)).join(', ')} },
}
export { record, shape, light, permissions, bytes, quotient, total, greeting, burnt, imports }
`
  await checkWithJco(t, {
    ours: dts,
    usage,
    description: { exports: component.exports, imports: component.imports },
    bytes: readFileSync(rustTypes),
  })
})

test('the types command fails with exit code 1 and the reason for a missing file and for a core module', (t) => {
  const missing = runCli(['types', '/no/such/component.wasm'])
  t.is(missing.status, 1)
  t.regex(missing.stderr, /^wasm-memory-sandbox types: .*\/no\/such\/component\.wasm/)
  t.is(missing.stdout, '')
  const directory = scratch(t)
  const core = join(directory, 'core.wat')
  writeFileSync(core, '(module (func (export "f")))')
  const result = runCli(['types', core])
  t.is(result.status, 1)
  t.regex(result.stderr, /^wasm-memory-sandbox types: .*Module.*\(ERR_[A-Z_]+\)\n$/s)
})
