// Component: compiling (sync, Promise, file, component text), the world as data
// (`component.exports` / `component.imports`), the names instance.exports answers to, the wrong
// kind of binary for each class, malformed input, link errors, the code cache, and dispose.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

import test from 'ava'

import { Component, ComponentError, Module, Sandbox } from 'wasm-memory-sandbox'

import { guestPath } from './helpers/guests.mjs'
import { mirrorImports } from './helpers/mirror.mjs'

const typesPath = guestPath('build/types.rust.component.wasm')
const typesBytes = readFileSync(typesPath)
const textPath = (name) => fileURLToPath(new URL(`../examples/components/text/${name}`, import.meta.url))
const text = (name) => readFileSync(textPath(name), 'utf8')

const typesImports = () => ({
  'demo:types/logger': { log() {}, logPoint() {} },
  'demo:types/host': { Kv: class {}, fetchNumber: () => 0 },
  hostName: () => 'basics',
  'demo:types/mirror': mirrorImports(),
})

test('new Component, Component.compile (a Promise) and Component.fromFile give the same working component', async (t) => {
  const promise = Component.compile(typesBytes)
  t.true(promise instanceof Promise)
  const components = [
    new Component(typesBytes),
    await promise,
    Component.fromFile(typesPath),
    // Any of the binary forms: a Buffer, a Uint8Array, an ArrayBuffer.
    new Component(new Uint8Array(typesBytes)),
    new Component(typesBytes.buffer.slice(typesBytes.byteOffset, typesBytes.byteOffset + typesBytes.length)),
  ]
  for (const component of components) {
    t.true(component instanceof Component)
    t.is(component.compiler, 'cranelift')
    const instance = component.instantiate({ imports: typesImports() })
    t.is(instance.exports.hello('compile'), 'Hello, compile!')
    t.is(instance.exports.api.echoU32(7), 7)
  }
  t.deepEqual(components[1].exports, components[0].exports)
  t.deepEqual(components[2].imports, components[0].imports)
})

test('the winch compiler compiles components too', (t) => {
  const component = new Component(typesBytes, { compiler: 'winch' })
  t.is(component.compiler, 'winch')
  t.is(component.instantiate({ imports: typesImports() }).exports.api.echoString('winch'), 'winch')
})

test('component text: a (component ...) string, and a .wat file through fromFile', async (t) => {
  const source = text('noop-greet.wat')
  t.true(source.includes('(component'))
  for (const component of [
    new Component(source),
    await Component.compile(source),
    Component.fromFile(textPath('noop-greet.wat')),
  ]) {
    const instance = component.instantiate()
    t.is(instance.exports.greet({ name: 'Ann', age: 30 }), 'Hello, world!')
    t.deepEqual(Object.keys(component.exports), ['greet'])
    t.like(component.exports.greet, { kind: 'function', name: 'greet', jsName: 'greet', result: { kind: 'string' } })
    t.deepEqual(component.exports.greet.params, [
      {
        name: 'person',
        type: {
          kind: 'record',
          fields: [
            { name: 'name', type: { kind: 'string' } },
            { name: 'age', type: { kind: 'u32' } },
          ],
        },
      },
    ])
  }
  const minimal = new Component('(component)')
  t.deepEqual(minimal.exports, {})
  t.deepEqual(minimal.imports, {})
  t.deepEqual(Object.keys(minimal.instantiate().exports), [])
})

test('a componentize-js component (StarlingMonkey) runs, with a world-level record argument', (t) => {
  const component = Component.fromFile(guestPath('build/greeter.js.component.wasm'))
  t.deepEqual(Object.keys(component.exports).sort(), ['greet', 'shout'])
  const instance = component.instantiate()
  t.is(instance.exports.greet({ name: 'Ann', age: 30 }), 'Hello, Ann! You are 30.')
  t.is(instance.exports.shout('héllo'), 'HÉLLO!')
})

test('component.exports: interfaces by full name with functions, resources and named types; world functions', (t) => {
  const { exports } = new Component(typesBytes)
  t.deepEqual(Object.keys(exports), ['demo:types/api@0.1.0', 'demo:types/limits@0.1.0', 'hello', 'hello-host'])
  const api = exports['demo:types/api@0.1.0']
  t.like(api, { kind: 'interface', name: 'demo:types/api@0.1.0', jsName: 'api' })
  const fn = (name) => api.functions.find((candidate) => candidate.name === name)
  t.deepEqual(fn('echo-u8'), {
    kind: 'function',
    name: 'echo-u8',
    jsName: 'echoU8',
    params: [{ name: 'v', type: { kind: 'u8' } }],
    result: { kind: 'u8' },
    async: false,
  })
  t.deepEqual(fn('echo-list-u8').result, { kind: 'list', element: { kind: 'u8' } })
  t.deepEqual(fn('echo-tuple').params[0].type, {
    kind: 'tuple',
    elements: [{ kind: 'u8' }, { kind: 'string' }, { kind: 'f64' }],
  })
  t.deepEqual(fn('echo-option-option-u32').result, { kind: 'option', type: { kind: 'option', type: { kind: 'u32' } } })
  t.deepEqual(fn('checked-div').result, { kind: 'result', ok: { kind: 'u32' }, err: { kind: 'string' } })
  t.deepEqual(fn('echo-result-unit').result, { kind: 'result', err: { kind: 'string' } })
  t.is(fn('stash').result, undefined)
  t.false('result' in fn('stash'))
  t.deepEqual(fn('stash').params, [{ name: 'c', type: { kind: 'own', resource: 'counter' } }])
  t.is(fn('call-logger').jsName, 'callLogger')
  // A named type keeps its WIT name (kebab-case), fields as in WIT.
  t.like(fn('echo-record').params[0].type, { kind: 'record', name: 'kebab-record' })
  t.deepEqual(
    fn('echo-record').params[0].type.fields.map((field) => field.name),
    ['first-name', 'age-in-years', 'is-active', 'nested-thing', 'maybe-score', 'tag-list'],
  )
  t.like(fn('echo-variant').result, { kind: 'variant', name: 'shape' })
  t.deepEqual(fn('echo-variant').result.cases, [
    { name: 'nothing' },
    { name: 'circle', type: { kind: 'f64' } },
    {
      name: 'rectangle',
      type: {
        kind: 'record',
        name: 'point',
        fields: [
          { name: 'x', type: { kind: 's32' } },
          { name: 'y', type: { kind: 's32' } },
        ],
      },
    },
    { name: 'labelled', type: { kind: 'string' } },
  ])
  t.deepEqual(fn('echo-enum').result, {
    kind: 'enum',
    name: 'traffic-light',
    cases: ['red-light', 'amber-light', 'green-light'],
  })
  t.deepEqual(fn('echo-flags').result, {
    kind: 'flags',
    name: 'permissions',
    flags: ['can-read', 'can-write', 'can-execute', 'is-admin-user'],
  })
  t.deepEqual(
    api.types.map(({ name, type }) => [name, type.kind]),
    [
      ['point', 'record'],
      ['inner-thing', 'record'],
      ['kebab-record', 'record'],
      ['shape', 'variant'],
      ['traffic-light', 'enum'],
      ['permissions', 'flags'],
    ],
  )
  // The resource: constructor, methods (self first, a borrow), statics.
  t.is(api.resources.length, 1)
  const [counter] = api.resources
  t.is(counter.name, 'counter')
  t.is(counter.jsName, 'Counter')
  t.like(counter.constructor, {
    kind: 'function',
    name: '[constructor]counter',
    jsName: 'constructor',
    params: [{ name: 'start', type: { kind: 'u32' } }],
    result: { kind: 'own', resource: 'counter' },
  })
  t.deepEqual(
    counter.methods.map((method) => [method.name, method.jsName, method.params[0]]),
    [
      ['[method]counter.increment', 'increment', { name: 'self', type: { kind: 'borrow', resource: 'counter' } }],
      ['[method]counter.get', 'get', { name: 'self', type: { kind: 'borrow', resource: 'counter' } }],
    ],
  )
  t.deepEqual(
    counter.statics.map((fn) => [fn.name, fn.jsName, fn.params.map((param) => param.type.kind), fn.result]),
    [['[static]counter.merge', 'merge', ['borrow', 'borrow'], { kind: 'own', resource: 'counter' }]],
  )
  // Resource functions are not among the free functions.
  t.false(api.functions.some((candidate) => candidate.name.startsWith('[')))

  t.like(exports['demo:types/limits@0.1.0'], { kind: 'interface', jsName: 'limits' })
  t.deepEqual(exports.hello, {
    kind: 'function',
    name: 'hello',
    jsName: 'hello',
    params: [{ name: 'name', type: { kind: 'string' } }],
    result: { kind: 'string' },
    async: false,
  })
  t.like(exports['hello-host'], { kind: 'function', name: 'hello-host', jsName: 'helloHost', params: [] })
})

test('component.imports: imported interfaces (with an imported resource and a types-only one) and the world function', (t) => {
  const component = new Component(typesBytes)
  const { imports } = component
  t.deepEqual(Object.keys(imports).sort(), [
    'demo:types/host@0.1.0',
    'demo:types/logger@0.1.0',
    'demo:types/mirror@0.1.0',
    'demo:types/types@0.1.0',
    'host-name',
  ])
  const host = imports['demo:types/host@0.1.0']
  t.like(host, { kind: 'interface', name: 'demo:types/host@0.1.0', jsName: 'host' })
  t.deepEqual(
    host.functions.map((fn) => [fn.name, fn.jsName]),
    [['fetch-number', 'fetchNumber']],
  )
  const [kv] = host.resources
  t.like(kv, { name: 'kv', jsName: 'Kv' })
  t.like(kv.constructor, { name: '[constructor]kv', params: [], result: { kind: 'own', resource: 'kv' } })
  t.deepEqual(
    kv.methods.map((method) => method.jsName),
    ['get', 'set'],
  )
  t.deepEqual(kv.methods[0].result, { kind: 'option', type: { kind: 'string' } })
  t.deepEqual(kv.statics, [])
  const types = imports['demo:types/types@0.1.0']
  t.deepEqual(types.functions, [])
  t.deepEqual(types.resources, [])
  t.deepEqual(
    types.types.map((type) => type.name),
    // In the order the component lists them (wit-component's, since the mirror interface uses them too).
    ['point', 'traffic-light', 'permissions', 'inner-thing', 'kebab-record', 'shape'],
  )
  t.like(imports['host-name'], { kind: 'function', jsName: 'hostName', params: [], result: { kind: 'string' } })
  // The descriptions are data: a copy each time, changes do not reach the component.
  t.not(component.exports, component.exports)
  imports['host-name'].name = 'changed'
  t.is(component.imports['host-name'].name, 'host-name')
  t.deepEqual(JSON.parse(JSON.stringify(component.exports)), component.exports)
})

test('instance.exports: each interface under its full name, its name without version and its short name', (t) => {
  const instance = new Component(typesBytes).instantiate({ imports: typesImports() })
  const { exports } = instance
  t.deepEqual(Object.keys(exports), [
    'demo:types/api@0.1.0',
    'demo:types/api',
    'api',
    'demo:types/limits@0.1.0',
    'demo:types/limits',
    'limits',
    'hello',
    'helloHost',
  ])
  t.is(exports['demo:types/api@0.1.0'], exports.api)
  t.is(exports['demo:types/api'], exports.api)
  t.is(exports['demo:types/limits'], exports.limits)
  t.is(exports.api.echoU8.name, 'echoU8')
  t.is(typeof exports.api.Counter, 'function')
  t.true(Object.isFrozen(exports))
  t.true(Object.isFrozen(exports.api))
  t.is(exports['demo:types/api'].echoString('by any name'), 'by any name')
})

test('a core module given to Component is ERR_WASM_KIND pointing to Module', async (t) => {
  const wasm = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0])
  for (const source of ['(module)', '(module (func (export "f")))', wasm]) {
    const error = t.throws(() => new Component(source), { code: 'ERR_WASM_KIND' })
    t.regex(error.message, /core WebAssembly module, not a component/)
    t.regex(error.message, /new Module\(bytes\)/)
    await t.throwsAsync(Component.compile(source), { code: 'ERR_WASM_KIND', message: /Module/ })
  }
})

test('a component given to Module or Sandbox is ERR_WASM_KIND pointing to Component', (t) => {
  for (const source of [typesBytes, '(component)', text('noop-greet.wat')]) {
    for (const make of [(s) => new Module(s), (s) => new Sandbox(s)]) {
      const error = t.throws(() => make(source), { code: 'ERR_WASM_KIND' })
      t.regex(error.message, /a WebAssembly component, not a core module/)
      t.regex(error.message, /new Component\(bytes\)/)
    }
  }
})

test('malformed bytes and text are ERR_WASM_COMPILE, synchronously and from compile()', async (t) => {
  const truncated = typesBytes.subarray(0, Math.floor(typesBytes.length / 2))
  const header = new Uint8Array([0, 97, 115, 109, 0x0d, 0, 1, 0, 9])
  for (const source of [truncated, header, '(component (func', '(component (export "x" (func $missing)))']) {
    t.throws(() => new Component(source), { code: 'ERR_WASM_COMPILE' })
    await t.throwsAsync(Component.compile(source), { code: 'ERR_WASM_COMPILE' })
  }
  t.throws(() => new Component(42), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => Component.fromFile(join(tmpdir(), 'no-such-component.wasm')), { code: 'ERR_WASM_READ_FILE' })
  t.throws(() => Component.fromFile(42), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
})

test('a missing import is ERR_WASM_LINK naming the interface, the item and its WIT signature', (t) => {
  const component = new Component(typesBytes)
  const link = (imports) => t.throws(() => component.instantiate({ imports }), { code: 'ERR_WASM_LINK' })?.message ?? ''
  const { hostName, ...withoutHostName } = typesImports()
  t.is(typeof hostName, 'function')
  t.regex(link(withoutHostName), /host-name\(\) -> string/)
  const withoutLogger = { ...typesImports(), 'demo:types/logger': undefined }
  const loggerMessage = link(withoutLogger)
  t.regex(loggerMessage, /demo:types\/logger@0\.1\.0/)
  t.regex(loggerMessage, /log\(message: string\)/)
  const withoutLogPoint = { ...typesImports(), 'demo:types/logger': { log() {} } }
  const logPointMessage = link(withoutLogPoint)
  t.regex(logPointMessage, /demo:types\/logger@0\.1\.0/)
  t.regex(logPointMessage, /log-point\(p: point\)/)
  t.regex(logPointMessage, /logPoint/)
  const withoutKv = { ...typesImports(), 'demo:types/host': { fetchNumber: () => 0 } }
  t.regex(link(withoutKv), /demo:types\/host@0\.1\.0#kv.*"Kv"/)
  const withoutFetch = { ...typesImports(), 'demo:types/host': { Kv: class {} } }
  t.regex(link(withoutFetch), /fetch-number\(key: string\) -> result<u32, string>/)
  t.regex(link(undefined), /demo:types\/(host|logger)/)
  // With the version in the key, and functions under their WIT names, the imports link too.
  const instance = component.instantiate({
    imports: {
      'demo:types/logger@0.1.0': { log() {}, 'log-point'() {} },
      'demo:types/host@0.1.0': { Kv: class {}, 'fetch-number': () => 0 },
      'host-name': () => 'versioned',
      'demo:types/mirror@0.1.0': mirrorImports(),
    },
  })
  t.is(instance.exports.helloHost(), 'Hello, versioned!')
})

test('a WASI-importing component without the wasi option is ERR_WASM_LINK mentioning the wasi option', (t) => {
  for (const component of [
    Component.fromFile(guestPath('build/command.rust.component.wasm')),
    new Component(text('future-wasi.wat')),
  ]) {
    const error = t.throws(() => component.instantiate(), { code: 'ERR_WASM_LINK' })
    t.regex(error.message, /wasi:cli\/environment@/)
    t.regex(error.message, /the `wasi` option/)
  }
})

test('a component importing a WASI version nothing provides (wasi:cli/environment@0.9.0) is ERR_WASM_LINK even with wasi', (t) => {
  const component = new Component(text('future-wasi.wat'))
  const error = t.throws(() => component.instantiate({ wasi: {} }), { code: 'ERR_WASM_LINK' })
  t.regex(error.message, /wasi:cli\/environment@0\.9\.0/)
})

test('a component importing wasi:cli/environment@0.2.99 links to the 0.2.x the host has (semver-compatible)', (t) => {
  const instance = new Component(text('unknown-wasi.wat')).instantiate({ wasi: { args: ['a', 'b', 'c'] } })
  t.is(instance.exports.countArgs(), 3)
})

test('instance.dispose(): later calls are ERR_SANDBOX_DISPOSED; dispose twice and [Symbol.dispose] are harmless', (t) => {
  const instance = new Component(typesBytes).instantiate({ imports: typesImports() })
  t.false(instance.disposed)
  const { api, hello } = instance.exports
  instance.dispose()
  t.true(instance.disposed)
  t.throws(() => api.echoU8(1), { code: 'ERR_SANDBOX_DISPOSED' })
  t.throws(() => hello('x'), { code: 'ERR_SANDBOX_DISPOSED' })
  t.throws(() => new api.Counter(1), { code: 'ERR_SANDBOX_DISPOSED' })
  t.notThrows(() => instance.dispose())
  t.notThrows(() => instance[Symbol.dispose]())
  // The component itself is unaffected: a new instance works.
  const again = new Component(typesBytes).instantiate({ imports: typesImports() })
  again[Symbol.dispose]()
  t.true(again.disposed)
  t.true(ComponentError.prototype instanceof Error)
})

test('the code cache on disk serves components: a fresh process misses and writes, the next one hits', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'wasm-memory-sandbox-component-cache-'))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  const cache = join(root, 'cache')
  const child = fileURLToPath(new URL('helpers/component-cache-child.mjs', import.meta.url))
  const run = (...args) => {
    const result = spawnSync(process.execPath, [child, typesPath, ...args], {
      encoding: 'utf8',
      env: { ...process.env, WASM_MEMORY_SANDBOX_CACHE_DIR: cache },
      timeout: 60_000,
    })
    t.is(result.status, 0, result.stderr)
    return JSON.parse(result.stdout.trim().split('\n').pop())
  }
  const first = run('1')
  t.is(first.result, 'Hello, cache!')
  t.like(first.stats, { enabled: true, directory: cache, hits: 0, misses: 1, writes: 1, rejected: 0 })
  const files = readdirSync(cache).filter((name) => name.endsWith('.cwasm'))
  t.is(files.length, 1)
  const second = run('1')
  t.is(second.result, 'Hello, cache!')
  t.like(second.stats, { hits: 1, misses: 0, writes: 0, rejected: 0 })
  // Compiled three times in one process: one disk hit, then the memory cache.
  t.like(run('3').stats, { hits: 1, misses: 0, writes: 0 })
  // Component.compile reads the same entry.
  t.like(run('1', 'async').stats, { hits: 1, misses: 0, writes: 0 })
  t.deepEqual(
    readdirSync(cache).filter((name) => name.endsWith('.cwasm')),
    files,
  )
})
