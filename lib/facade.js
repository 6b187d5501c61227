// The JS side of the hot paths (see src/js/raw.rs), installed once by lib/native.js. It is a file
// of the package, not a string the addon evaluates, so stack traces name it and its lines.
//
// A call from JS into a napi-rs method spends most of its time finding the Rust object behind
// `this` (two private-property lookups in C++). These classes keep it in a private field as an
// External and pass it to raw Node-API functions: JS private fields are read at JIT speed, and an
// External is unwrapped without any lookup. `BufferSandbox` owns its state through the External
// (no napi-rs object wrapping at construction); `Sandbox` subclasses the napi-rs class and finds
// its object once. A private field also brands the receiver: a method called on anything else
// throws ERR_INVALID_THIS.
'use strict'

const { inspect } = require('node:util')

const { argumentError, describe } = require('./argument-errors.js')
const formats = require('./profile/formats.js')

/**
 * Replaces the addon's exported `BufferSandbox` and `Sandbox` with the facade classes; `native`
 * holds the raw Node-API functions. Called once, by `lib/native.js`.
 */
module.exports = function installFacade(native, exports) {
  const NativeSandbox = exports.Sandbox
  const NativeModule = exports.Module

  /** The error for a method called on something that is not an instance of its class. */
  function invalidThis(className, method) {
    const error = new TypeError(`${className}.prototype.${method} was called on something that is not a ${className}`)
    error.code = 'ERR_INVALID_THIS'
    return error
  }

  /** The `format` of `stopProfiling(options)`, checked before the profiler is stopped. */
  function profileFormat(options) {
    if (options === undefined) return 'cpuprofile'
    if (options === null || typeof options !== 'object') {
      throw argumentError(
        TypeError,
        'ERR_INVALID_ARG_TYPE',
        `The "options" argument must be of type object. Received ${describe(options)}`,
      )
    }
    for (const key of Object.keys(options)) {
      if (key !== 'format') {
        throw argumentError(TypeError, 'ERR_INVALID_ARG_TYPE', `Unknown option "${key}": the options are format`)
      }
    }
    const { format = 'cpuprofile' } = options
    if (format !== 'cpuprofile' && format !== 'firefox') {
      throw argumentError(
        TypeError,
        'ERR_INVALID_ARG_VALUE',
        `The property 'options.format' must be one of: 'cpuprofile', 'firefox'. Received ${inspect(format)}`,
      )
    }
    return format
  }

  class BufferSandbox {
    #handle
    #memory

    constructor() {
      // The External owns the sandbox; it is freed when this object is collected (or at dispose()).
      this.#handle = native.bufferCreate()
    }

    getWasmMemoryBufferPointer() {
      if (!(#handle in this)) throw invalidThis('BufferSandbox', 'getWasmMemoryBufferPointer')
      return native.bufferPointer(this.#handle)
    }

    storeValueInWasmMemoryBufferIndexZero(value) {
      if (!(#handle in this)) throw invalidThis('BufferSandbox', 'storeValueInWasmMemoryBufferIndexZero')
      native.bufferStore(this.#handle, value)
    }

    readWasmMemoryBufferAndReturnIndexOne() {
      if (!(#handle in this)) throw invalidThis('BufferSandbox', 'readWasmMemoryBufferAndReturnIndexOne')
      return native.bufferRead(this.#handle)
    }

    memory() {
      if (!(#handle in this)) throw invalidThis('BufferSandbox', 'memory')
      // A BufferSandbox's memory never grows, so its view only changes when it is detached
      // (by dispose(), after which the native call throws ERR_SANDBOX_DISPOSED).
      const view = this.#memory
      if (view !== undefined && view.byteLength !== 0) return view
      return (this.#memory = native.bufferMemory(this.#handle))
    }

    buffer() {
      if (!(#handle in this)) throw invalidThis('BufferSandbox', 'buffer')
      return native.bufferView(this.#handle)
    }

    grow(pages) {
      if (!(#handle in this)) throw invalidThis('BufferSandbox', 'grow')
      return native.bufferGrow(this.#handle, pages)
    }

    get memorySize() {
      if (!(#handle in this)) throw invalidThis('BufferSandbox', 'memorySize')
      return native.bufferMemorySize(this.#handle)
    }

    get disposed() {
      if (!(#handle in this)) throw invalidThis('BufferSandbox', 'disposed')
      return native.bufferDisposed(this.#handle)
    }

    snapshot() {
      if (!(#handle in this)) throw invalidThis('BufferSandbox', 'snapshot')
      return native.bufferSnapshot(this.#handle)
    }

    restore(snapshot) {
      if (!(#handle in this)) throw invalidThis('BufferSandbox', 'restore')
      native.bufferRestore(this.#handle, snapshot)
    }

    reset() {
      if (!(#handle in this)) throw invalidThis('BufferSandbox', 'reset')
      native.bufferReset(this.#handle)
    }

    dispose() {
      if (!(#handle in this)) throw invalidThis('BufferSandbox', 'dispose')
      this.#memory = undefined
      native.bufferDispose(this.#handle)
    }

    [Symbol.dispose]() {
      this.dispose()
    }

    [Symbol.for('nodejs.util.inspect.custom')]() {
      if (!(#handle in this)) return Object.prototype.toString.call(this)
      return native.bufferInspect(this.#handle)
    }
  }

  /** `#lastName` before the first call: no argument can be equal to it. */
  const NO_CALL_YET = Symbol('no call yet')

  // The native callAsync takes its arguments as one array; the facade gives it the variadic shape.
  const nativeCallAsync = NativeSandbox.prototype.callAsync

  class Sandbox extends NativeSandbox {
    #handle
    /** Export name to a native handle on that export, made on first use of each name. */
    #targets = new Map()
    /** The last name called and its handle: a loop calling one export skips the map. */
    #lastName = NO_CALL_YET
    #lastTarget
    /**
     * The import functions. Native code holds them weakly: they usually close over this sandbox,
     * and only a cycle kept inside the JS heap can be collected.
     */
    #imports

    constructor(moduleOrSource, options) {
      super(moduleOrSource, options)
      this.#handle = native.sandboxHandle(this)
      this.#imports = native.sandboxImports(this.#handle)
    }

    /**
     * Stops the profiler: a `.cpuprofile` (what `node --cpu-prof` writes) by default, or the
     * Firefox Profiler's format with `{ format: 'firefox' }`.
     */
    stopProfiling(options) {
      if (!(#handle in this)) throw invalidThis('Sandbox', 'stopProfiling')
      const format = profileFormat(options)
      const raw = this.takeProfile()
      return format === 'firefox' ? formats.toFirefoxProfile(raw) : formats.toCpuProfile(raw)
    }

    /** The native handle on export `name`, cached; throws for a name that is not an exported function. */
    #targetOf(name) {
      if (name === this.#lastName) return this.#lastTarget
      let target = this.#targets.get(name)
      if (target === undefined) {
        target = native.sandboxCaller(this.#handle, name)
        this.#targets.set(name, target)
      }
      this.#lastName = name
      this.#lastTarget = target
      return target
    }

    callAsync(name, ...args) {
      // The native callAsync (one array of arguments) says what is wrong with a receiver that
      // is not a Sandbox or a name that is not an exported function, as a rejected Promise.
      if (!(#handle in this)) return nativeCallAsync.call(this, name, args)
      let target
      try {
        target = this.#targetOf(name)
      } catch {
        return nativeCallAsync.call(this, name, args)
      }
      // A call that settled at once comes back as its value (no Node-API Promise made and
      // resolved), one still running as its Promise, which Promise.resolve returns as it is.
      // One native function per argument count, as in call().
      switch (args.length) {
        case 0:
          return Promise.resolve(native.callAsyncExport0(target))
        case 1:
          return Promise.resolve(native.callAsyncExport1(target, args[0]))
        case 2:
          return Promise.resolve(native.callAsyncExport2(target, args[0], args[1]))
        case 3:
          return Promise.resolve(native.callAsyncExport3(target, args[0], args[1], args[2]))
        case 4:
          return Promise.resolve(native.callAsyncExport4(target, args[0], args[1], args[2], args[3]))
        default:
          return Promise.resolve(native.callAsyncExport(target, ...args))
      }
    }

    call(name, ...args) {
      if (!(#handle in this)) throw invalidThis('Sandbox', 'call')
      const target = this.#targetOf(name)
      // One native function per argument count, the same for every sandbox and export, so these
      // call sites stay monomorphic (a spread call into a native function is not optimized).
      switch (args.length) {
        case 0:
          return native.callExport0(target)
        case 1:
          return native.callExport1(target, args[0])
        case 2:
          return native.callExport2(target, args[0], args[1])
        case 3:
          return native.callExport3(target, args[0], args[1], args[2])
        case 4:
          return native.callExport4(target, args[0], args[1], args[2], args[3])
        default:
          return native.callExport(target, ...args)
      }
    }
  }

  Object.defineProperty(NativeModule.prototype, 'instantiate', {
    value: function instantiate(options) {
      return new Sandbox(this, options)
    },
    writable: true,
    configurable: true,
    enumerable: false,
  })

  // A fork is a `Sandbox` made from the snapshot (the constructor takes one in place of a module).
  Object.defineProperty(exports.Snapshot.prototype, 'instantiate', {
    value: function instantiate(options) {
      return new Sandbox(this, options)
    },
    writable: true,
    configurable: true,
    enumerable: false,
  })

  exports.BufferSandbox = BufferSandbox
  exports.Sandbox = Sandbox
}
