// The package's types: the generated napi-rs declarations (binding.d.ts) and the WebAssembly JS
// API namespace, typed with TypeScript's own `WebAssembly` lib types.

export * from './binding'

import type { ModuleOptions, WasiOptions, WasiOutput, WasiRunResult } from './binding'

/** Options for `createWebAssembly()`: the limits mean what they mean for `Sandbox`. */
export interface WebAssemblyOptions {
  /**
   * Cap on each linear memory of the namespace, in bytes (up to 4 GiB). A guest `memory.grow`
   * past it returns -1; `Memory.prototype.grow` past it throws a `RangeError`; a module whose
   * initial memory is larger fails to instantiate with a `RangeError`.
   */
  maxMemoryBytes?: number
  /**
   * Wall-clock limit, in milliseconds, for each call from JavaScript into wasm (an exported
   * function, or instantiation running a start function). A call still running then throws the
   * namespace's `RuntimeError` with `code: 'ERR_WASM_TIMEOUT'`.
   */
  timeoutMs?: number
  /**
   * Instruction budget (wasmtime fuel) for the whole namespace; running out throws the
   * namespace's `RuntimeError` with `code: 'ERR_WASM_OUT_OF_FUEL'`.
   */
  fuel?: number
  /**
   * CPU-time limit, in milliseconds, for each call from JavaScript into wasm: the guest's own CPU
   * time (not time in JS imports). A call that uses it up throws the namespace's `RuntimeError`
   * with `code: 'ERR_WASM_CPU_LIMIT'`.
   */
  cpuTimeMs?: number
}

/** What a sandbox's calls cost: `sandbox.stats()` (all calls so far) and `sandbox.lastCall`. */
export interface SandboxStats {
  /** Outermost calls: `call()`, `run()`, async calls, and calls that ended in an error. */
  calls: number
  /**
   * Wall-clock time of the calls, in milliseconds (from when the guest started running: not
   * time waiting in an async queue). `null` unless calls are timed: the `metrics: true` option,
   * a `cpuTimeMs` limit, or while profiling.
   */
  wallTimeMs: number | null
  /**
   * CPU time the guest's wasm used, in milliseconds: its thread's CPU clock while the guest runs,
   * without the time of JS imports (sync or async) or time waiting. `null` when calls are not
   * timed (see `wallTimeMs`).
   */
  cpuTimeMs: number | null
  /** Fuel burned; `null` for a sandbox without a `fuel` budget. */
  fuelConsumed: number | null
  /** Bytes of linear memory the sandbox holds now. */
  memoryBytes: number
  /** The most linear memory held at once (during the call, for `lastCall`). */
  peakMemoryBytes: number
}

/** Options of `sandbox.startProfiling()`. */
export interface ProfilingOptions {
  /**
   * Microseconds between samples, 1000 (the default, Node's `--cpu-prof-interval` default) to
   * 1000000. Samples are taken on the addon's 1 ms epoch tick, so an interval is honoured to
   * within a tick.
   */
  intervalUs?: number
}

/** A node of a `.cpuprofile`: one call path. */
export interface CpuProfileNode {
  id: number
  callFrame: {
    /** The function's name from the module's name section (demangled), or the import's `module.name`. */
    functionName: string
    scriptId: string
    /**
     * `file://` URL of the source file (from DWARF), `wasm://wasm/<module>` for a function
     * without debug info, `''` for an import.
     */
    url: string
    /** 0-based (the format's convention); -1 when unknown. */
    lineNumber: number
    /** 0-based; -1 when unknown. */
    columnNumber: number
  }
  hitCount: number
  children?: number[]
  positionTicks?: { line: number; ticks: number }[]
}

/**
 * A profile in the `.cpuprofile` format (Chrome DevTools protocol `Profiler.Profile`): what
 * `node --cpu-prof` writes and what Chrome DevTools, VS Code and speedscope open. Times in
 * microseconds; `(idle)` samples mark the time between calls.
 */
export interface CpuProfile {
  nodes: CpuProfileNode[]
  startTime: number
  endTime: number
  /** The node id of each sample. */
  samples: number[]
  /** Microseconds from the previous sample (the first from `startTime`). */
  timeDeltas: number[]
}

/**
 * A profile in the Firefox Profiler's processed format (version 55, what wasmtime's guest
 * profiler writes through `fxprof-processed-profile`), for https://profiler.firefox.com.
 */
export interface FirefoxProfile {
  meta: {
    version: number
    preprocessedProfileVersion: number
    interval: number
    startTime: number
    [key: string]: unknown
  }
  threads: Array<{ name: string; [key: string]: any }>
  [key: string]: unknown
}

/** A frame of a trap's backtrace, innermost first. */
export interface WasmFrame {
  /** The function's name (demangled), from the name section or DWARF; `null` if unnamed. */
  function: string | null
  /** The module's name, from its name section. */
  module: string | null
  functionIndex: number
  /** Byte offset of the instruction in the module. */
  offset: number | null
  /** Source location from the module's DWARF; `null` without debug info. */
  file: string | null
  line: number | null
  column: number | null
}

/**
 * What a call that trapped throws (`code` `ERR_WASM_TRAP`, `ERR_WASM_TIMEOUT`,
 * `ERR_WASM_OUT_OF_FUEL`, `ERR_WASM_CPU_LIMIT`). For a module with DWARF, `stack` also lists the
 * wasm frames, above the JS ones, as `at function (file:line:column)`.
 */
export interface SandboxTrapError extends Error {
  code: string
  /** What trapped: `unreachable`, `memory_out_of_bounds`, `interrupt`, `out_of_fuel`, `cpu_limit`, ... */
  kind: string
  /** The wasm frames as text (with `at file:line:column` lines where the module has DWARF). */
  wasmBacktrace?: string
  /** The wasm frames as data. */
  wasmFrames?: WasmFrame[]
}

declare module './binding' {
  interface Sandbox {
    /**
     * Stops the profiler started by `startProfiling()` and returns its samples as a
     * `.cpuprofile` (default) or, with `{ format: 'firefox' }`, a Firefox Profiler profile. Calls
     * into JS imports are frames of their own. Throws `ERR_INVALID_STATE` if the profiler is not
     * running, `ERR_INVALID_ARG_VALUE` for another format.
     */
    stopProfiling(options?: { format?: 'cpuprofile' }): CpuProfile
    stopProfiling(options: { format: 'firefox' }): FirefoxProfile
  }
}

/**
 * The types of a `createWebAssembly()` namespace: the shapes of TypeScript's own `WebAssembly`
 * lib types (lib.dom), declared here because Node projects usually compile without lib.dom, and a
 * namespace's classes are its own (not the global `WebAssembly`'s).
 */
export declare namespace SandboxWebAssembly {
  type BufferSource = ArrayBufferView | ArrayBuffer
  type ImportExportKind = 'function' | 'global' | 'memory' | 'table' | 'tag'
  type TableKind = 'anyfunc' | 'externref' | 'funcref'
  type ValueType = 'anyfunc' | 'externref' | 'f32' | 'f64' | 'funcref' | 'i32' | 'i64'
  /** The address type of a memory or table: `'i64'` for the 64-bit ones (memory64 and table64). */
  type AddressType = 'i32' | 'i64'
  /** A size, index or delta of a memory or table: a number for `'i32'`, a BigInt for `'i64'`. */
  type AddressValue<A extends AddressType> = A extends 'i64' ? bigint : number
  type ExportValue = Function | Global | Memory<AddressType> | Table<AddressType> | Tag
  type Exports = Record<string, ExportValue>
  type ImportValue = ExportValue | number | bigint
  type ModuleImports = Record<string, ImportValue>
  type Imports = Record<string, ModuleImports>

  interface ModuleExportDescriptor {
    kind: ImportExportKind
    name: string
  }
  interface ModuleImportDescriptor {
    kind: ImportExportKind
    module: string
    name: string
  }
  interface MemoryDescriptor<A extends AddressType = 'i32'> {
    /** `'i64'` makes a 64-bit memory (memory64): its sizes are BigInts. Default `'i32'`. */
    address?: A
    /** Pages (64 KiB each). */
    initial: AddressValue<A>
    maximum?: AddressValue<A>
    /** Not supported: shared memories (threads) throw a `TypeError`. */
    shared?: boolean
  }
  interface TableDescriptor<A extends AddressType = 'i32'> {
    /** `'i64'` makes a 64-bit table (table64): its lengths and indexes are BigInts. Default `'i32'`. */
    address?: A
    element: TableKind
    initial: AddressValue<A>
    maximum?: AddressValue<A>
  }
  interface GlobalDescriptor {
    mutable?: boolean
    value: ValueType
  }
  interface WebAssemblyInstantiatedSource {
    instance: Instance
    module: Module
  }

  interface Module {}
  interface ModuleConstructor {
    readonly prototype: Module
    new (bytes: BufferSource): Module
    customSections(moduleObject: Module, sectionName: string): ArrayBuffer[]
    exports(moduleObject: Module): ModuleExportDescriptor[]
    imports(moduleObject: Module): ModuleImportDescriptor[]
  }

  interface Instance {
    /** Frozen, with a null prototype; the same object each time. */
    readonly exports: Exports
  }
  interface InstanceConstructor {
    readonly prototype: Instance
    new (module: Module, importObject?: Imports): Instance
  }

  /** A memory; `A` is its address type (an exported memory's is not known statically). */
  interface Memory<A extends AddressType = 'i32'> {
    /**
     * An ArrayBuffer over the memory itself (no copy): the same object until the memory grows,
     * then detached (byteLength 0), whoever grew it.
     */
    readonly buffer: ArrayBuffer
    /** Grows by `delta` pages; returns the old size in pages. Past a limit, throws a `RangeError`. */
    grow(delta: AddressValue<A>): AddressValue<A>
  }
  interface MemoryConstructor {
    readonly prototype: Memory<AddressType>
    new <A extends AddressType = 'i32'>(descriptor: MemoryDescriptor<A>): Memory<A>
  }

  /** A table; `A` is its address type. */
  interface Table<A extends AddressType = 'i32'> {
    readonly length: AddressValue<A>
    get(index: AddressValue<A>): any
    /** Grows by `delta` elements (set to `value`); returns the old length. */
    grow(delta: AddressValue<A>, value?: any): AddressValue<A>
    set(index: AddressValue<A>, value?: any): void
  }
  interface TableConstructor {
    readonly prototype: Table<AddressType>
    new <A extends AddressType = 'i32'>(descriptor: TableDescriptor<A>, value?: any): Table<A>
  }

  interface Global {
    value: any
    valueOf(): any
  }
  interface GlobalConstructor {
    readonly prototype: Global
    new (descriptor: GlobalDescriptor, v?: any): Global
  }

  interface TagType {
    /** The types of the values an exception of this tag carries. */
    parameters: ValueType[]
  }
  /** An exception tag: made from JS, or exported by an instance (each instance its own). */
  interface Tag {}
  interface TagConstructor {
    readonly prototype: Tag
    new (type: TagType): Tag
  }
  interface ExceptionOptions {
    /** Records a `stack` on the exception, as an `Error` has. */
    traceStack?: boolean
  }
  /**
   * A WebAssembly exception: made from JS and thrown by an import (the guest can catch it by its
   * tag), or thrown by the guest and caught in JS (the same object each time it crosses, while
   * JS holds it). Not an `Error`, as in V8.
   */
  interface Exception {
    /** Present when made with `{ traceStack: true }`. */
    readonly stack?: string
    /** Payload value `index`; a `TypeError` unless `tag` is the exception's tag, a `RangeError` past its end. */
    getArg(tag: Tag, index: number): any
    /** Whether the exception is of `tag`. */
    is(tag: Tag): boolean
  }
  interface ExceptionConstructor {
    readonly prototype: Exception
    new (tag: Tag, payload: any[], options?: ExceptionOptions): Exception
  }

  interface CompileError extends Error {}
  interface LinkError extends Error {}
  /** A trap, a timeout or running out of fuel. */
  interface RuntimeError extends Error {
    /** `ERR_WASM_TRAP`, `ERR_WASM_TIMEOUT`, `ERR_WASM_OUT_OF_FUEL` or `ERR_WASM_CPU_LIMIT` (absent when made by user code). */
    code?: string
    /** What trapped: `unreachable`, `memory_out_of_bounds`, `interrupt`, `out_of_fuel`, ... */
    kind?: string
    /** The wasm frames of the trap, when known. */
    wasmBacktrace?: string
  }
  interface ErrorConstructor<E extends Error> {
    readonly prototype: E
    new (message?: string, options?: { cause?: unknown }): E
    (message?: string, options?: { cause?: unknown }): E
  }

  /** A namespace shaped like `globalThis.WebAssembly`. */
  interface Namespace {
    readonly Module: ModuleConstructor
    readonly Instance: InstanceConstructor
    readonly Memory: MemoryConstructor
    readonly Table: TableConstructor
    readonly Global: GlobalConstructor
    readonly Tag: TagConstructor
    readonly Exception: ExceptionConstructor
    /**
     * The tag of JS exceptions inside the guest: a JS import's exception that is not a
     * `WebAssembly.Exception` crosses the guest as an exception of this tag carrying the thrown
     * value (externref), so `catch_all` and `catch $JSTag` catch it; uncaught, it comes out as the
     * value itself.
     */
    readonly JSTag: Tag
    readonly CompileError: ErrorConstructor<CompileError>
    readonly LinkError: ErrorConstructor<LinkError>
    readonly RuntimeError: ErrorConstructor<RuntimeError>
    validate(bytes: BufferSource): boolean
    compile(bytes: BufferSource): Promise<Module>
    instantiate(bytes: BufferSource, importObject?: Imports): Promise<WebAssemblyInstantiatedSource>
    instantiate(moduleObject: Module, importObject?: Imports): Promise<Instance>
    compileStreaming(source: Response | PromiseLike<Response>): Promise<Module>
    instantiateStreaming(
      source: Response | PromiseLike<Response>,
      importObject?: Imports,
    ): Promise<WebAssemblyInstantiatedSource>
  }
}

/**
 * Creates a namespace shaped like `globalThis.WebAssembly` (`Module`, `Instance`, `Memory`,
 * `Table`, `Global`, `Tag`, `Exception`, `JSTag`, `validate`, `compile`, `instantiate`,
 * `compileStreaming`, `instantiateStreaming`, `CompileError`, `LinkError`, `RuntimeError`) over
 * one wasmtime store:
 * everything made through it (instances, memories, tables, globals) lives in that store and can
 * be shared between its instances, and the limits hold for the whole store. Two namespaces are
 * isolated from each other. Hand it to existing glue code as its global `WebAssembly`.
 *
 * @example
 * const WA = createWebAssembly({ maxMemoryBytes: 16 * 65536, timeoutMs: 100 })
 * const { instance } = await WA.instantiate(bytes, imports)
 */
export declare function createWebAssembly(options?: WebAssemblyOptions): SandboxWebAssembly.Namespace

// Components (the component model, WASI 0.2): the classes live in lib/component.

/** Options of `new Component`, `Component.compile` and `Component.fromFile`: those of `Module`. */
export type ComponentOptions = ModuleOptions

/**
 * A WIT type, as `component.exports` and `component.imports` describe it. `name` is the WIT name
 * (kebab-case) of a type the interface names (`point` for `record point { ... }`).
 */
export type WitType = { name?: string } & (
  | {
      kind:
        | 'bool'
        | 's8'
        | 'u8'
        | 's16'
        | 'u16'
        | 's32'
        | 'u32'
        | 's64'
        | 'u64'
        | 'f32'
        | 'f64'
        | 'char'
        | 'string'
        | 'error-context'
    }
  | { kind: 'list'; element: WitType }
  /** Field names are kebab-case, as in WIT (the JS object has them in camelCase). */
  | { kind: 'record'; fields: Array<{ name: string; type: WitType }> }
  | { kind: 'tuple'; elements: WitType[] }
  /** A case without payload has no `type`. */
  | { kind: 'variant'; cases: Array<{ name: string; type?: WitType }> }
  | { kind: 'enum'; cases: string[] }
  | { kind: 'flags'; flags: string[] }
  | { kind: 'option'; type: WitType }
  /** `ok` or `err` absent: that case has no payload (`result<_, E>`, `result<T>`, `result`). */
  | { kind: 'result'; ok?: WitType; err?: WitType }
  /** A handle to a resource: `resource` is its name in its interface (`counter`). */
  | { kind: 'own' | 'borrow'; resource: string }
  | { kind: 'future' | 'stream'; type?: WitType }
)

/** A function of a component: a world-level function, a function of an interface, or of a resource. */
export interface ComponentFunction {
  kind: 'function'
  /** The WIT name, kebab-case (`echo-u8`); for a resource's, `[constructor]counter`, `[method]counter.get-value`, `[static]counter.merge`. */
  name: string
  /** Its name in JS, as jco gives it: camelCase (`echoU8`, `getValue`), `constructor` for a constructor. */
  jsName: string
  /** The parameters, with their WIT names; a method's first is `self` (a `borrow` of its resource). */
  params: Array<{ name: string; type: WitType }>
  /** The result type; absent when the function returns nothing. */
  result?: WitType
  /** Whether it is an `async` function of the component model. */
  async: boolean
}

/** A resource type of an interface, and its functions. */
export interface ComponentResource {
  /** The WIT name (`counter`). */
  name: string
  /** Its class name in JS (`Counter`): the key of the class in the interface object. */
  jsName: string
  /** The constructor, if the resource has one (`name` `[constructor]counter`, `jsName` `constructor`). */
  constructor?: ComponentFunction
  /** The methods (`[method]counter.get-value`, `jsName` `getValue`): `params[0]` is `self`. */
  methods: ComponentFunction[]
  /** The static functions (`[static]counter.merge`, `jsName` `merge`). */
  statics: ComponentFunction[]
}

/** An interface a component imports or exports. */
export interface ComponentInterface {
  kind: 'interface'
  /** The full name (`demo:types/api@0.1.0`), or a plain name for an interface declared in the world (`api`). */
  name: string
  /** The short name jco gives it: camelCase of the name without package and version (`api`). */
  jsName: string
  /** Its free functions (a resource's are under `resources`). */
  functions: ComponentFunction[]
  /** Its resource types. */
  resources: ComponentResource[]
  /** The types it names (records, variants, enums, flags, aliases...), by their WIT names. */
  types: Array<{ name: string; type: WitType }>
}

/** What a component imports or exports: interfaces by full name, world-level functions by WIT name. */
export type ComponentItems = Record<string, ComponentInterface | ComponentFunction>

/**
 * The exports of an instance whose types are not given: interfaces (objects of functions and
 * resource classes) and world-level functions. `wasm-memory-sandbox types component.wasm` writes
 * the exact type of a component's.
 */
export type ComponentExportsObject = Record<string, any>

/**
 * The imports of a component whose types are not given: interface implementations (objects of
 * functions and resource classes) keyed by name with or without `@version`, and world-level
 * functions keyed by WIT name or camelCase name.
 */
export type ComponentImportsObject = Record<string, Record<string, any> | ((...args: any[]) => unknown)>

/** Options of `component.instantiate()`: the limits and the `wasi` option mean what they mean for `Sandbox`. */
export interface ComponentInstantiateOptions<Imports extends object = ComponentImportsObject> {
  /**
   * The JS implementations of what the component imports: interfaces keyed by name with or without
   * `@version` (`{ 'demo:types/logger': { log(message) {} } }`), with functions named as jco names
   * them (camelCase) and resources as classes under their PascalCase name; world-level functions
   * by WIT or camelCase name. Values convert as for exports. A function whose WIT result is a
   * `result` returns `ok`'s value and throws a `ComponentError` (its `payload` is `err`'s) to
   * return `err`. A missing import is `ERR_WASM_LINK` naming the interface, the function and its
   * WIT signature.
   */
  imports?: Imports
  /**
   * Gives the component WASI 0.2 and WASI 0.3 (wasmtime-wasi's `wasi:*@0.2.x` and `@0.3.0`
   * interfaces), granting what the options list, as for `Sandbox` (the network only as `network`
   * says). Without it, a WASI import is `ERR_WASM_LINK`.
   */
  wasi?: WasiOptions
  /**
   * Cap, in bytes, on each linear memory of the component's core instances (up to 4 GiB). A guest
   * `memory.grow` past it fails; a component whose initial memory is larger fails to instantiate.
   */
  maxMemoryBytes?: number
  /**
   * Wall-clock limit for each call into the component, in milliseconds (instantiation included);
   * a call still running then throws `ERR_WASM_TIMEOUT`.
   */
  timeoutMs?: number
  /** Instruction budget (wasmtime fuel) for the whole instance; running out throws `ERR_WASM_OUT_OF_FUEL`. */
  fuel?: number
  /**
   * CPU-time limit for each call into the component, in milliseconds: the guest's own CPU time
   * (its thread's CPU clock while its wasm runs). A call that uses it up throws
   * `ERR_WASM_CPU_LIMIT` (and, as after any trap, the instance is poisoned).
   */
  cpuTimeMs?: number
  /**
   * Outgoing `wasi:http` requests (WASI 0.2's `outgoing-handler`, WASI 0.3's `client`). `wasi:http`
   * is linked with `wasi`; without this option every request the guest sends fails in the guest
   * with `HTTP-request-denied` (its types and fields still work). Requests are sent by Node, so
   * they need the guest to run off the JS thread: in `callAsync()`, `runAsync()` and
   * `httpHandler()` (a synchronous call's request fails with `internal-error`).
   */
  http?: HttpOptions
}

/** Where a component's outgoing `wasi:http` requests may go, and what sends them. */
export interface HttpOptions {
  /**
   * The hosts the guest may reach: `'api.example.com'` (any port), `'api.example.com:8443'`,
   * `'127.0.0.1:*'`, `'[::1]:80'`, or `'*'` (anywhere). Any other host: `HTTP-request-denied`.
   * Requests go out through Node's `http`/`https` clients (Node's TLS, certificates and agents),
   * with their bodies and trailers streamed both ways. Default: none (with `fetch`: all).
   */
  allowedHosts?: string[]
  /**
   * Sends every allowed request through this function instead of Node's clients: it gets a
   * `Request` (its body streamed, with `duplex: 'half'`) and returns a `Response`. It cannot
   * carry trailers either way. A rejection or a thrown error fails the guest's request with
   * `internal-error` (Node's connection errors map to their `wasi:http` codes).
   */
  fetch?: (request: Request) => Promise<Response> | Response
}

/** Options of `component.httpHandler()`: every instance option, applied to each request's fresh instance, and these. */
export interface HttpHandlerOptions<
  Imports extends object = ComponentImportsObject,
> extends ComponentInstantiateOptions<Imports> {
  /**
   * Largest request body passed to the guest, in bytes: a request whose `Content-Length` is larger
   * gets a 413 without reaching the guest; a chunked one is cut off at the limit (the guest's
   * body stream fails, the client gets a 413 if no response has started).
   */
  maxRequestBodyBytes?: number
  /** Called with each request's failure (a trap, a timeout, a failed instantiation) and the request. */
  onError?: (error: Error, request: import('node:http').IncomingMessage) => void
}

/**
 * A compiled WebAssembly component (the component model: WIT-typed imports and exports). Compiled
 * code is cached in memory and on disk as `Module`'s is.
 *
 * `Exports` and `Imports` type `instance.exports` and the `imports` option; `wasm-memory-sandbox
 * types component.wasm > component.d.ts` writes them for a component (`ComponentExports`,
 * `ComponentImports`), as in `Component.fromFile<ComponentExports, ComponentImports>(path)`.
 */
export declare class Component<
  Exports extends object = ComponentExportsObject,
  Imports extends object = ComponentImportsObject,
> {
  /**
   * Compiles a component binary (a `Uint8Array`, `Buffer` or `ArrayBuffer`) or component text (a
   * `string`) on the calling thread. Malformed input throws `ERR_WASM_COMPILE` with wasmtime's
   * reason; a core module throws a coded error saying to use `Module`.
   */
  constructor(source: Uint8Array | ArrayBuffer | string, options?: ComponentOptions)
  /**
   * Compiles a component on a background thread, as `Module.compile` does: resolves to the
   * `Component`, or rejects with the error `new Component` would throw.
   */
  static compile<Exports extends object = ComponentExportsObject, Imports extends object = ComponentImportsObject>(
    source: Uint8Array | ArrayBuffer | string,
    options?: ComponentOptions,
  ): Promise<Component<Exports, Imports>>
  /** Reads and compiles a `.wasm` (binary) or `.wat` (text) component file on the calling thread. */
  static fromFile<Exports extends object = ComponentExportsObject, Imports extends object = ComponentImportsObject>(
    path: string,
    options?: ComponentOptions,
  ): Component<Exports, Imports>
  /** The compiler this component's code was compiled with. */
  readonly compiler: 'cranelift' | 'winch'
  /** What the component exports: interfaces by full name (with their functions, resources and types), world-level functions. */
  readonly exports: ComponentItems
  /** What the component imports, described as `exports` is. */
  readonly imports: ComponentItems
  /**
   * Instantiates the component in a new store, with `options.imports` as its imports and
   * `Sandbox`'s limits. Throws `ERR_WASM_LINK` for a missing or mistyped import.
   */
  instantiate(options?: ComponentInstantiateOptions<Imports>): ComponentInstance<Exports>
  /**
   * A Node request listener for `http.createServer()` that serves each request with a fresh
   * instance of this `wasi:http` service component (exporting `wasi:http/incoming-handler@0.2.x`
   * or `wasi:http/handler@0.3.x`), so no state leaks between requests. Request and response bodies
   * stream both ways. A trap or guest error becomes a 500 and a timeout (`timeoutMs`, per request)
   * a 504 if the response has not started (else the connection is cut); a client that disconnects
   * interrupts its guest. `wasi` defaults to `{}` (a service built with a standard library imports
   * WASI, as `wasmtime serve -Scli` grants). Bad options throw here, not per request; a component
   * that is not a service throws `ERR_WASM_EXPORT`.
   */
  httpHandler(
    options?: HttpHandlerOptions<Imports>,
  ): (request: import('node:http').IncomingMessage, response: import('node:http').ServerResponse) => void
}

/** An instance of a `Component`, in its own wasmtime store. */
export interface ComponentInstance<Exports extends object = ComponentExportsObject> {
  /**
   * The exports: each exported interface as an object (functions, and resource classes under
   * their PascalCase name) by its full name, its name without `@version` and the short name jco
   * gives it (`exports.api`); world-level functions as functions. Calls run synchronously on the
   * JS thread; a `result` returned at the top of a function returns its `ok` value, or throws a
   * `ComponentError` with `err`'s as `payload`. A value that does not fit its WIT type throws a
   * `TypeError` or `RangeError` before the guest runs; traps, timeouts and fuel throw the coded
   * errors `Sandbox` throws, after which the instance cannot be entered again.
   */
  readonly exports: Exports
  /**
   * Runs a component exporting `wasi:cli/run@0.3.0` or `@0.2.x` (an instance made with the `wasi`
   * option): returns its exit code and what it wrote to stdout and stderr, as `Sandbox.run()`
   * does. A WASI 0.3 component with JS imports cannot run synchronously (V8 cannot run JS on
   * wasmtime's fibers): `ERR_WASM_ASYNC_REQUIRED`, use `runAsync()`.
   */
  run(): WasiRunResult
  /**
   * Calls an exported function on a thread of the addon's pool, so the event loop keeps running:
   * `fn` is the function as `instance.exports` has it (`instance.exports.api.echo`), or its path
   * (`'api.echo'`, or `'hello'` for a world-level function). Resolves to what the synchronous
   * call returns, or rejects with what it throws. JS imports still run on the JS thread while the
   * guest waits for them and may return Promises, which the guest waits for (a rejection fails
   * the call with `ERR_WASM_IMPORT`, the reason as `cause`). While it runs the instance is busy
   * (`ERR_SANDBOX_BUSY`); further async calls wait their turn. `timeoutMs` counts the time spent
   * waiting for imports; `dispose()` interrupts the call.
   *
   * Streams and futures (WASI 0.3): a `stream<u8>` the guest gives is a `ReadableStream` of
   * `Uint8Array` chunks, a `future<T>` a Promise; JS gives a stream as a `ReadableStream`, an
   * (async) iterable of byte chunks or a `Uint8Array`, and a future as a Promise or a value. A
   * function passing them is always called this way (its `instance.exports` function returns a
   * Promise). The Promise settles with the value as soon as the guest returns it; the call goes on
   * (the instance busy, `timeoutMs` counting) until every stream and future it passed has ended,
   * and a call that fails then fails them too.
   */
  callAsync<F extends (...args: any[]) => any>(fn: F, ...args: Parameters<F>): Promise<Awaited<ReturnType<F>>>
  callAsync(fn: string, ...args: unknown[]): Promise<unknown>
  /**
   * Runs a WASI 0.3 or 0.2 command as `run()` does, on a thread of the addon's pool: a Promise of
   * its result. A guest waiting on a WASI 0.3 future leaves the JS thread free; `timeoutMs` and
   * `dispose()` stop it there too.
   */
  runAsync(): Promise<WasiRunResult>
  /**
   * Stops the running async call (`callAsync()`, `runAsync()`) within milliseconds, also while the
   * guest waits for an import or a WASI 0.3 future: it rejects with `ERR_WASM_INTERRUPTED`, and
   * the instance cannot be entered again (as after a trap). Returns whether a call was running.
   */
  interrupt(): boolean
  /**
   * Takes what the component wrote to its captured stdout and stderr since the instance was made
   * or since the last `run()` or `takeOutput()`, as `Sandbox.takeOutput()` does.
   */
  takeOutput(): WasiOutput
  /** Whether `dispose()` has been called. */
  readonly disposed: boolean
  /**
   * Releases the instance, its memories and its resources now: later calls throw
   * `ERR_SANDBOX_DISPOSED`, a second call does nothing.
   */
  dispose(): void
  /** Same as `dispose()`, for `using instance = component.instantiate()`. */
  [Symbol.dispose](): void
}

/**
 * The error an exported function throws when its top-level WIT `result` is `err` (the error value
 * is `payload`); an import throws one to return `err`. As jco's `ComponentError`.
 */
export declare class ComponentError extends Error {
  /** Makes an error carrying `payload`, the value of `err` (its message says what the payload is). */
  constructor(payload: unknown)
  /** The value of `err`, converted as its WIT type says (`undefined` for a `result<T>` without error type). */
  readonly payload: unknown
}
