// A strict TypeScript consumer, type-checked by `npm test` (tsc --noEmit -p __test__).
// It imports the package the way users do, so the published index.d.ts is what is checked.
import { BufferSandbox } from 'wasm-memory-sandbox'

const sandbox: BufferSandbox = new BufferSandbox()
sandbox.storeValueInWasmMemoryBufferIndexZero(24)
const memory: Buffer = sandbox.memory()
const pointer: number = sandbox.getWasmMemoryBufferPointer()
const first: number | undefined = memory[pointer]
memory[pointer + 1] = 15
const second: number = sandbox.readWasmMemoryBufferAndReturnIndexOne()
const guestBuffer: Buffer = sandbox.buffer()
const previousPages: number = sandbox.grow(1)
const bytes: number = sandbox.memorySize
const isDisposed: boolean = sandbox.disposed
const bufferState = sandbox.snapshot()
sandbox.restore(bufferState)
sandbox.reset()
sandbox.dispose()

function scoped(): number {
  using scopedSandbox = new BufferSandbox()
  return scopedSandbox.memory().length
}

// @ts-expect-error the value is a number, not a string
sandbox.storeValueInWasmMemoryBufferIndexZero('15')
// @ts-expect-error the value is required
sandbox.storeValueInWasmMemoryBufferIndexZero()
// @ts-expect-error memory() returns a Buffer, not a string
const notAString: string = sandbox.memory()
// @ts-expect-error memorySize is read-only
sandbox.memorySize = 0
// @ts-expect-error the constructor takes no arguments
new BufferSandbox('guest.wasm')

export { first, second, guestBuffer, previousPages, bytes, isDisposed, scoped, notAString }

// The general sandbox.
import { Module, Sandbox, Snapshot, type ModuleEntry, type SandboxOptions } from 'wasm-memory-sandbox'

const module: Module = Module.fromFile('plugin.wat')
const fromBytes: Module = new Module(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]))
const entries: ModuleEntry[] = [...module.exports, ...module.imports]
const kinds: Array<'function' | 'memory' | 'table' | 'global' | 'tag'> = entries.map((entry) => entry.kind)
const params: string[] | undefined = entries[0]?.params
const options: SandboxOptions = {
  imports: { env: { log: (pointer: number, length: number) => void [pointer, length] } },
  maxMemoryBytes: 1 << 20,
  timeoutMs: 100,
  fuel: 1_000_000,
}
const plugin: Sandbox = new Sandbox(module, options)
const fromText: Sandbox = new Sandbox('(module)')
const instantiated: Sandbox = fromBytes.instantiate()
const result: number | bigint | Array<number | bigint> | undefined = plugin.call('add', 1, 2n)
const view: Buffer = plugin.memory()
const named: Buffer = plugin.memory('memory')
const copy: Buffer = plugin.read(0, 16)
plugin.write(0, new Uint8Array([1, 2, 3]))
const previous: number = plugin.grow(1)
const size: number = plugin.memorySize
const fuelLeft: number = plugin.fuel
plugin.fuel = 10
const snapshot: Snapshot = plugin.snapshot()
const snapshotBytes: number = snapshot.memoryBytes
plugin.restore(snapshot)
plugin.reset()
const fork: Sandbox = snapshot.instantiate({ maxMemoryBytes: 1 << 20, imports: {} })
const forkToo: Sandbox = new Sandbox(snapshot, { fuel: 1000 })
fork.dispose()
forkToo.dispose()
const preinitialized: Promise<Module> = Module.preinitialize(new Uint8Array(), { init: 'init', fuel: 10, imports: {} })
snapshot.dispose()
const snapshotGone: boolean = snapshot.disposed
plugin.dispose()

// @ts-expect-error call arguments are numbers or bigints
plugin.call('add', 'one')
// @ts-expect-error options are checked
new Sandbox(module, { timeout: 5 })
// @ts-expect-error maxMemoryBytes is a number
new Sandbox(module, { maxMemoryBytes: '1MiB' })
// @ts-expect-error write takes bytes
plugin.write(0, 'text')
// @ts-expect-error restore takes a Snapshot
plugin.restore({})
// @ts-expect-error preinitialize needs the init export's name
Module.preinitialize(new Uint8Array(), {})

export {
  kinds,
  params,
  fromText,
  instantiated,
  result,
  view,
  named,
  copy,
  previous,
  size,
  fuelLeft,
  snapshotBytes,
  snapshotGone,
  preinitialized,
}

// Functions.
import { bufferGuestWasm, zeroCopyViews } from 'wasm-memory-sandbox'

const guestBytes: Buffer = bufferGuestWasm()
const zeroCopy: boolean = zeroCopyViews()

export { guestBytes, zeroCopy }

// WASI.
import type { WasiOptions, WasiOutput, WasiRunResult } from 'wasm-memory-sandbox'

const wasi: WasiOptions = {
  args: ['prog', 'input.txt'],
  env: { KEY: 'value' },
  preopens: { '/work': '/tmp/scratch', '/data': { path: '/srv/data', readonly: true } },
  stdin: new Uint8Array([1, 2, 3]),
  stdout: 'pipe',
  stderr: 'inherit',
  maxOutputBytes: 1 << 20,
}
const command = new Sandbox(module, { wasi: { ...wasi, stdin: 'text' }, timeoutMs: 100, fuel: 1_000_000 })
const ran: WasiRunResult = command.run()
const exitCode: number = ran.exitCode
const printed: Buffer = ran.stdout
const cut: boolean = ran.stdoutTruncated || ran.stderrTruncated
const later: WasiOutput = command.takeOutput()
const laterErrors: Buffer = later.stderr

// @ts-expect-error stdout is 'pipe', 'inherit', 'ignore' or a callback
new Sandbox(module, { wasi: { stdout: 'file' } })
// Streamed output: each chunk as a Buffer.
new Sandbox(module, {
  wasi: { stdout: (chunk: Buffer) => process.stdout.write(chunk), stderr: (chunk) => chunk.length },
})
// @ts-expect-error a chunk is a Buffer, not a string
new Sandbox(module, { wasi: { stdout: (chunk: string) => chunk } })
// @ts-expect-error args are strings
new Sandbox(module, { wasi: { args: [1] } })
// @ts-expect-error readonly is a boolean
new Sandbox(module, { wasi: { preopens: { '/d': { path: '/tmp', readonly: 'yes' } } } })
// @ts-expect-error takeOutput() has no exit code
const noExitCode: number = later.exitCode

export { exitCode, printed, cut, laterErrors, noExitCode }

// Async calls.
import { asyncThreads, setAsyncThreads } from 'wasm-memory-sandbox'

async function asyncCalls(sandbox: Sandbox): Promise<void> {
  const result: number | bigint | Array<number | bigint> | undefined = await sandbox.callAsync('add', 1, 2n)
  const finished: WasiRunResult = await sandbox.runAsync()
  const stopped: boolean = sandbox.interrupt()
  const threads: number = asyncThreads()
  setAsyncThreads(threads)
  // @ts-expect-error callAsync returns a Promise, not the value
  const notAwaited: number = sandbox.callAsync('add', 1, 2)
  // @ts-expect-error arguments are numbers or bigints
  await sandbox.callAsync('add', '1')
  void [result, finished, stopped, notAwaited]
}
export { asyncCalls }
// Cold start: the async compile, the compiler option and the code cache's counters.
import { codeCacheStats, type CodeCacheStats, type ModuleOptions } from 'wasm-memory-sandbox'

const moduleOptions: ModuleOptions = { compiler: 'winch' }
const compiled: Promise<Module> = Module.compile(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]), moduleOptions)
const compilerName: 'cranelift' | 'winch' = new Module('(module)', { compiler: 'cranelift' }).compiler
const fromFileWinch: Module = Module.fromFile('plugin.wat', { compiler: 'winch' })
const stats: CodeCacheStats = codeCacheStats()
const cacheDirectory: string | undefined = stats.directory
const hits: number = stats.hits + stats.misses + stats.writes + stats.rejected + stats.untrusted + stats.writeFailures

// @ts-expect-error the compiler is 'cranelift' or 'winch'
new Module('(module)', { compiler: 'llvm' })
// @ts-expect-error Module.compile returns a promise, not a Module
const notAModule: Module = Module.compile('(module)')

export { compiled, compilerName, fromFileWinch, cacheDirectory, hits, notAModule }

// The WebAssembly namespace.
import { createWebAssembly, type SandboxWebAssembly } from 'wasm-memory-sandbox'

const WA: SandboxWebAssembly.Namespace = createWebAssembly({ maxMemoryBytes: 1 << 20, timeoutMs: 100, fuel: 1e6 })
async function runNamespace(wasmBytes: Uint8Array): Promise<number> {
  const { instance, module } = await WA.instantiate(wasmBytes, { env: { log: (value: number) => value } })
  const sameInstance: SandboxWebAssembly.Instance = await WA.instantiate(module)
  const memory = instance.exports['memory'] as SandboxWebAssembly.Memory
  const view = new Uint8Array(memory.buffer)
  const grown: number = new WA.Memory({ initial: 1, maximum: 2 }).grow(1)
  const table = new WA.Table({ element: 'anyfunc', initial: 1 })
  const global = new WA.Global({ value: 'i64', mutable: true }, 1n)
  const kinds: SandboxWebAssembly.ImportExportKind[] = WA.Module.exports(module).map((entry) => entry.kind)
  const valid: boolean = WA.validate(wasmBytes)
  const trap: SandboxWebAssembly.RuntimeError = new WA.RuntimeError('x')
  return (
    view.length +
    grown +
    table.length +
    Number(global.value) +
    kinds.length +
    Number(valid) +
    (trap.code ? 1 : 0) +
    (sameInstance ? 1 : 0)
  )
}
// @ts-expect-error unknown option
createWebAssembly({ timeout: 5 })

function wideSizes(): bigint {
  const memory: SandboxWebAssembly.Memory<'i64'> = new WA.Memory({ address: 'i64', initial: 1n, maximum: 4n })
  const table = new WA.Table({ address: 'i64', element: 'externref', initial: 2n })
  const narrow: number = new WA.Memory({ initial: 1 }).grow(1)
  // @ts-expect-error a 64-bit memory grows by a BigInt
  memory.grow(1)
  // @ts-expect-error a 32-bit memory's sizes are numbers
  new WA.Memory({ initial: 1n })
  return memory.grow(1n) + table.length + table.grow(1n, null) + BigInt(narrow)
}

function exceptionPayload(): number {
  const tag: SandboxWebAssembly.Tag = new WA.Tag({ parameters: ['i32', 'externref'] })
  const exception: SandboxWebAssembly.Exception = new WA.Exception(tag, [1, {}], { traceStack: true })
  const jsTag: SandboxWebAssembly.Tag = WA.JSTag
  // @ts-expect-error a tag's parameters are value types
  new WA.Tag({ parameters: ['i16'] })
  return exception.is(tag) && !exception.is(jsTag) ? (exception.getArg(tag, 0) as number) : 0
}

export { runNamespace, exceptionPayload, wideSizes }

// Components.
import {
  Component,
  ComponentError,
  type ComponentFunction,
  type ComponentInstance,
  type ComponentInstantiateOptions,
  type ComponentInterface,
  type ComponentItems,
  type ComponentResource,
  type WitType,
} from 'wasm-memory-sandbox'

const component: Component = Component.fromFile('types.wasm', { compiler: 'winch' })
const fromComponentText: Component = new Component('(component)')
const componentCompiled: Promise<Component> = Component.compile(new Uint8Array([0, 97, 115, 109, 13, 0, 1, 0]))
const componentCompiler: 'cranelift' | 'winch' = component.compiler
const componentOptions: ComponentInstantiateOptions = {
  imports: {
    'demo:types/logger': { log: (message: string) => void message },
    'host-fn': (x: number) => String(x),
  },
  wasi: { args: ['types'], stdout: 'pipe' },
  maxMemoryBytes: 1 << 24,
  timeoutMs: 100,
  fuel: 1_000_000,
}
const componentInstance: ComponentInstance = component.instantiate(componentOptions)
const untypedExport: unknown = componentInstance.exports['demo:types/api']?.echoU8(1)
const componentRun: WasiRunResult = componentInstance.run()
const componentDisposed: boolean = componentInstance.disposed
const componentOutput: WasiOutput = componentInstance.takeOutput()
componentInstance.dispose()

function scopedInstance(): void {
  using scoped = component.instantiate()
  void scoped.exports
}

/** The WIT text of a type: every kind of the description, switched over exhaustively. */
function witText(type: WitType): string {
  switch (type.kind) {
    case 'list':
      return `list<${witText(type.element)}>`
    case 'record':
      return `record { ${type.fields.map((field) => `${field.name}: ${witText(field.type)}`).join(', ')} }`
    case 'tuple':
      return `tuple<${type.elements.map(witText).join(', ')}>`
    case 'variant':
      return type.cases.map((c) => (c.type ? `${c.name}(${witText(c.type)})` : c.name)).join(' | ')
    case 'enum':
      return type.cases.join(' | ')
    case 'flags':
      return type.flags.join(' | ')
    case 'option':
      return `option<${witText(type.type)}>`
    case 'result':
      return `result<${type.ok ? witText(type.ok) : '_'}, ${type.err ? witText(type.err) : '_'}>`
    case 'own':
      return type.resource
    case 'borrow':
      return `borrow<${type.resource}>`
    case 'future':
    case 'stream':
      return type.type ? `${type.kind}<${witText(type.type)}>` : type.kind
    default: {
      // Only the primitive kinds are left.
      const primitive:
        `${'s' | 'u'}${8 | 16 | 32 | 64}` | 'f32' | 'f64' | 'bool' | 'char' | 'string' | 'error-context' = type.kind
      return type.name ?? primitive
    }
  }
}

function describeItems(items: ComponentItems): string[] {
  const lines: string[] = []
  for (const item of Object.values(items)) {
    if (item.kind === 'function') {
      const fn: ComponentFunction = item
      lines.push(`${fn.jsName}(${fn.params.map((p) => witText(p.type)).join(', ')})${fn.async ? ' async' : ''}`)
    } else {
      const iface: ComponentInterface = item
      const resources: ComponentResource[] = iface.resources
      lines.push(iface.name, iface.jsName, ...iface.types.map((entry) => `${entry.name} = ${witText(entry.type)}`))
      for (const resource of resources) {
        const constructorParams: number = resource.constructor?.params.length ?? 0
        lines.push(`${resource.jsName}/${constructorParams}`, ...resource.methods.map((m) => m.jsName))
        lines.push(...resource.statics.map((s) => s.name))
      }
      const results: Array<WitType | undefined> = iface.functions.map((fn) => fn.result)
      lines.push(String(results.length))
    }
  }
  return lines
}

// Typed exports and imports, as `wasm-memory-sandbox types` writes them.
interface TypesExports {
  readonly api: { echoU8(v: number): number; Counter: new (start: number) => { getValue(): bigint } }
  worldFn(a: bigint): bigint
}
type TypesImports = { 'demo:types/logger': { log(message: string): void } } | { hostFn: (x: number) => string }
const typed = Component.fromFile<TypesExports, TypesImports>('types.wasm')
const typedInstance: ComponentInstance<TypesExports> = typed.instantiate({ imports: { hostFn: (x) => `${x}` } })
const echoed: number = typedInstance.exports.api.echoU8(1)
const counterValue: bigint = new typedInstance.exports.api.Counter(1).getValue()
const echoedLater: Promise<number> = typedInstance.callAsync(typedInstance.exports.api.echoU8, 1)
// @ts-expect-error: echoU8 takes a number
void typedInstance.callAsync(typedInstance.exports.api.echoU8, 'one')
const byPath: Promise<unknown> = typedInstance.callAsync('api.echoU8', 1)
const ranLater: Promise<WasiRunResult> = typedInstance.runAsync()
const typedCompiled: Promise<Component<TypesExports, TypesImports>> = Component.compile<TypesExports, TypesImports>(
  '(component)',
)

function payloadOf(error: unknown): unknown {
  if (error instanceof ComponentError) {
    const message: string = error.message
    return error.payload ?? message
  }
  return new ComponentError({ tag: 'not-found' }).payload
}

// @ts-expect-error the source is bytes or text
new Component(42)
// @ts-expect-error instantiate options are checked
component.instantiate({ timeout: 5 })
// @ts-expect-error wasi options are Sandbox's
component.instantiate({ wasi: { stdout: 'file' } })
// @ts-expect-error exports and imports are read-only descriptions
component.exports = {}
// @ts-expect-error a typed export's arguments are checked
typedInstance.exports.api.echoU8('1')
// @ts-expect-error typed imports are checked
typed.instantiate({ imports: { hostFn: (x: string) => x } })
// @ts-expect-error run() returns the WASI result, not a number
const runCode: number = componentInstance.run()
// @ts-expect-error the payload is unknown until checked
const payloadNumber: number = new ComponentError(1).payload

// wasi:http: services as Node request listeners, outgoing requests allowed per host or through fetch.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { HttpHandlerOptions, HttpOptions } from 'wasm-memory-sandbox'

const allowed: HttpOptions = { allowedHosts: ['api.example.com', '127.0.0.1:*'] }
const throughFetch: HttpOptions = { fetch: async (request: Request) => new Response(request.url, { status: 200 }) }
const handlerOptions: HttpHandlerOptions = {
  timeoutMs: 1000,
  maxRequestBodyBytes: 1 << 20,
  wasi: { env: { GREETING: 'hi' } },
  http: allowed,
  onError: (error: Error, request: IncomingMessage) => void [error.message, request.url],
}
const listener: (request: IncomingMessage, response: ServerResponse) => void = component.httpHandler(handlerOptions)
const httpServer = createServer(component.httpHandler())
const fetchingInstance: ComponentInstance = component.instantiate({ wasi: {}, http: throughFetch })
// @ts-expect-error: allowedHosts is a list of strings
component.instantiate({ wasi: {}, http: { allowedHosts: 'api.example.com' } })
// @ts-expect-error: maxRequestBodyBytes is a number
component.httpHandler({ maxRequestBodyBytes: '1mb' })

export {
  fromComponentText,
  componentCompiled,
  componentCompiler,
  untypedExport,
  componentRun,
  componentDisposed,
  componentOutput,
  scopedInstance,
  describeItems,
  echoed,
  counterValue,
  echoedLater,
  byPath,
  ranLater,
  typedCompiled,
  payloadOf,
  runCode,
  payloadNumber,
  listener,
  httpServer,
  fetchingInstance,
}

// Seeing inside a guest: stats, lastCall, the CPU limit, the profiler, trap frames.
import type { CpuProfile, FirefoxProfile, SandboxStats, SandboxTrapError, WasmFrame } from 'wasm-memory-sandbox'

const observed = new Sandbox(module, { metrics: true, cpuTimeMs: 50, timeoutMs: 1_000 })
const totals: SandboxStats = observed.stats()
const totalCpu: number | null = totals.cpuTimeMs
const lastCall: SandboxStats | null = observed.lastCall
const lastWall: number | null | undefined = lastCall?.wallTimeMs
observed.startProfiling({ intervalUs: 1000 })
const cpuProfile: CpuProfile = observed.stopProfiling()
const firstFrameName: string | undefined = cpuProfile.nodes[0]?.callFrame.functionName
observed.startProfiling()
const firefoxProfile: FirefoxProfile = observed.stopProfiling({ format: 'firefox' })
try {
  observed.call('run')
} catch (error) {
  const frames: WasmFrame[] | undefined = (error as SandboxTrapError).wasmFrames
  const line: number | null | undefined = frames?.[0]?.line
  void line
}
const componentCpuLimited = { cpuTimeMs: 50 } satisfies ComponentInstantiateOptions
const namespaceCpuLimited: SandboxWebAssembly.Namespace = createWebAssembly({ cpuTimeMs: 50 })
// @ts-expect-error metrics is a boolean
new Sandbox(module, { metrics: 'yes' })
// @ts-expect-error the profile format is 'cpuprofile' or 'firefox'
observed.stopProfiling({ format: 'pprof' })
// @ts-expect-error a cpuprofile is not a Firefox profile
const wrongProfile: FirefoxProfile = observed.stopProfiling()

export { totalCpu, lastWall, firstFrameName, firefoxProfile, componentCpuLimited, namespaceCpuLimited, wrongProfile }
