// The package's types: the generated napi-rs declarations (binding.d.ts) and the WebAssembly JS
// API namespace, typed with TypeScript's own `WebAssembly` lib types.

export * from './binding'

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
    /** `ERR_WASM_TRAP`, `ERR_WASM_TIMEOUT` or `ERR_WASM_OUT_OF_FUEL` (absent when made by user code). */
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
