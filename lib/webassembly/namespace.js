'use strict'
// createWebAssembly(): a namespace shaped like globalThis.WebAssembly over one wasmtime store.
//
// Each namespace has its own classes (so `instanceof` tells namespaces apart) and one native
// store (src/webassembly) holding every instance, memory, table, global and function made through
// it. The native side names each extern by an index in its registry; this file keeps one JS
// object per index, so an extern seen twice is the same object, and converts values between JS
// and wasm as the JS API specifies (ToWebAssemblyValue / ToJSValue). The native side only ever
// sees values already converted: numbers, bigints, and registry indexes for references.

const { enforceRangeU32, isObject, copyBufferSource, valueTypeCode, addressValue } = require('./convert')
const { customSections, exportedFunctionIndexes } = require('./binary')
const { argumentError, describe } = require('../argument-errors')

const MAX_MEMORY_PAGES = 65536
/** How many new externref slots may be made before asking which old ones wasmtime released. */
const EXTERN_DRAIN_INTERVAL = 256
/** V8's bound for 64-bit memories: 16 GiB. */
const MAX_MEMORY64_PAGES = 262144
const MAX_TABLE_LENGTH = 10000000
const OPTION_NAMES = ['maxMemoryBytes', 'timeoutMs', 'cpuTimeMs', 'fuel']

/** Validates createWebAssembly's options as `new Sandbox()` does: -1 stands for "unset". */
function parseOptions(options) {
  if (options === undefined) return [-1, -1, -1, -1]
  if (typeof options !== 'object' || options === null) {
    throw argumentError(
      TypeError,
      'ERR_INVALID_ARG_TYPE',
      `The "options" argument must be of type object. Received ${describe(options)}`,
    )
  }
  for (const key of Object.keys(options)) {
    if (!OPTION_NAMES.includes(key)) {
      throw argumentError(
        TypeError,
        'ERR_INVALID_ARG_TYPE',
        `Unknown option "${key}": the options are ${OPTION_NAMES.join(', ')}`,
      )
    }
  }
  const integer = (key, min, max) => {
    const value = options[key]
    if (value === undefined) return -1
    const expected = `an integer from ${min} to ${max}`
    if (typeof value !== 'number') {
      throw argumentError(
        TypeError,
        'ERR_INVALID_ARG_TYPE',
        `The "options.${key}" argument must be of type number (${expected}). Received ${describe(value)}`,
      )
    }
    if (!Number.isInteger(value) || value < min || value > max) {
      throw argumentError(
        RangeError,
        'ERR_OUT_OF_RANGE',
        `The value of "options.${key}" is out of range. It must be ${expected}. Received ${value}`,
      )
    }
    return value
  }
  return [
    integer('maxMemoryBytes', 0, 2 ** 32),
    integer('timeoutMs', 1, 2147483647),
    integer('fuel', 0, Number.MAX_SAFE_INTEGER),
    integer('cpuTimeMs', 1, 2147483647),
  ]
}

/** Makes `object[name]` a WebIDL operation or attribute: enumerable, as WebIDL wants. */
function enumerable(object, names) {
  for (const name of names) {
    const descriptor = Object.getOwnPropertyDescriptor(object, name)
    descriptor.enumerable = true
    Object.defineProperty(object, name, descriptor)
  }
}

function toStringTag(object, tag) {
  Object.defineProperty(object, Symbol.toStringTag, { value: tag, configurable: true })
}

/** A NativeError-like class (callable without `new`, `length` 1, `name` on the prototype). */
function makeErrorClass(name) {
  const ErrorClass = {
    [name]: function (message) {
      const options = arguments.length > 1 ? [message, arguments[1]] : [message]
      return Reflect.construct(Error, options, new.target ?? ErrorClass)
    },
  }[name]
  Object.setPrototypeOf(ErrorClass, Error)
  const prototype = Object.create(Error.prototype)
  Object.defineProperties(prototype, {
    constructor: { value: ErrorClass, writable: true, configurable: true },
    name: { value: name, writable: true, configurable: true },
    message: { value: '', writable: true, configurable: true },
  })
  Object.defineProperty(ErrorClass, 'prototype', { value: prototype, writable: false })
  return ErrorClass
}

/**
 * The native functions (the addon's `__webassembly` object). Bound in `createWebAssembly`.
 * @type {Record<string, Function>}
 */
let native

/** Creates a namespace shaped like globalThis.WebAssembly over one sandboxed store. */
function createWebAssembly(options) {
  native ??= require('../native.js').__webassembly
  const [maxMemoryBytes, timeoutMs, fuel, cpuTimeMs] = parseOptions(options)

  const CompileError = makeErrorClass('CompileError')
  const LinkError = makeErrorClass('LinkError')
  const RuntimeError = makeErrorClass('RuntimeError')
  const errorClasses = { CompileError, LinkError, RuntimeError, TypeError, RangeError, Error }

  // The hooks native code calls back; held weakly there, so the namespace keeps them.
  const hooks = {
    error(className, message, code, kind, backtrace) {
      const error = new (errorClasses[className] ?? Error)(message)
      error.code = code
      if (kind !== undefined) error.kind = kind
      if (backtrace !== undefined) error.wasmBacktrace = backtrace
      return error
    },
    /** What JS throws for wasm exception `index` that left the guest uncaught. */
    exception(index) {
      if (native.exceptionTag(ns, index) === JS_TAG) {
        // A JS exception that crossed the guest: the value itself, as V8 does.
        const value = fromRaw(native.exceptionArg(ns, index, 0), 'e')
        native.exceptionRelease(ns, index)
        return value
      }
      return exceptionObject(index)
    },
    /**
     * How a JS import's exception enters the guest: this namespace's `WebAssembly.Exception` as
     * itself (its index), any other value under the JS tag (-2 - its externref encoding).
     */
    thrown(value) {
      const index = isObject(value) ? exceptionIndexes.get(value) : undefined
      return index ?? -2 - externrefToRaw(value)
    },
  }
  const ns = native.namespace(maxMemoryBytes, timeoutMs, fuel, cpuTimeMs, hooks)
  const {
    call,
    caller: nativeCaller,
    memoryBuffer,
    memoryGrow,
    memoryType,
    memoryNew,
    tableNew,
    tableType,
    tableLength,
    tableGet,
    tableSet,
    tableGrow,
    globalNew,
    globalType,
    globalGet,
    globalSet,
    tagNew,
    tagType,
    exceptionNew,
    exceptionTag,
    exceptionArg,
    exceptionRelease,
    externReleased,
  } = native

  // ---- registries: one JS object per extern, by native index --------------------------------

  /** Exported functions by registry index, and the index of each. */
  const functions = []
  const functionIndexes = new WeakMap()
  /**
   * JS functions given as imports, kept alive here (native code holds them weakly, as it holds
   * `hooks`: a strong native reference would make the namespace a GC root through their scope).
   */
  const adapters = [hooks]
  const memories = []
  const tables = []
  const globals = []
  const tags = []
  /** Exceptions JS holds, by index, held weakly: a collected one is released natively. */
  const exceptions = []
  const exceptionIndexes = new WeakMap()
  const releasedExceptions = new FinalizationRegistry((index) => {
    // A new object may stand for the same exception by now (wasm threw it out again).
    if (exceptions[index]?.deref() === undefined) exceptionRelease(ns, index)
  })
  /** The JS values externrefs carry, by slot; the free slots; new slots since released ones were last asked for. */
  const externValues = []
  const freeExternSlots = []
  let externsSinceDrain = 0

  /** A token only this namespace's code has, to construct objects for existing externs. */
  const EXISTING = Symbol('existing extern')
  let existingIndex = -1

  function wrapExisting(Class, index) {
    existingIndex = index
    try {
      return new Class(EXISTING)
    } finally {
      existingIndex = -1
    }
  }

  // ---- values ---------------------------------------------------------------------------------

  function funcrefToRaw(value) {
    if (value === null) return -1
    const index = typeof value === 'function' ? functionIndexes.get(value) : undefined
    if (index === undefined) throw new TypeError('type incompatibility when transforming from/to JS')
    return index
  }

  /**
   * The slot of a JS value crossing into wasm as an externref: a slot of its own each time, held
   * until wasmtime collects that externref (native code then lists the slot as released), so a
   * value wasm no longer holds is not kept alive by the namespace.
   */
  function externrefToRaw(value) {
    if (value === null) return -1
    if (freeExternSlots.length === 0 && ++externsSinceDrain >= EXTERN_DRAIN_INTERVAL) {
      externsSinceDrain = 0
      for (const slot of externReleased(ns)) {
        externValues[slot] = undefined
        freeExternSlots.push(slot)
      }
    }
    const slot = freeExternSlots.length > 0 ? freeExternSlots.pop() : externValues.length
    externValues[slot] = value
    return slot
  }

  /** ToWebAssemblyValue, giving the native encoding. */
  function toRaw(value, code) {
    switch (code) {
      case 'i':
        return value | 0
      case 'I':
        return BigInt.asIntN(64, value)
      case 'f':
      case 'F':
        return +value
      case 'r':
        return funcrefToRaw(value)
      case 'e':
        return externrefToRaw(value)
      default:
        throw new TypeError('type incompatibility when transforming from/to JS')
    }
  }

  /** ToJSValue, from the native encoding. */
  function fromRaw(raw, code) {
    switch (code) {
      case 'r':
        return raw < 0 ? null : exportedFunction(raw)
      case 'e':
        return raw < 0 ? null : externValues[raw]
      default:
        return raw
    }
  }

  function defaultValue(code) {
    switch (code) {
      case 'i':
      case 'f':
      case 'F':
        return 0
      case 'I':
        return 0n
      case 'r':
        return null
      default:
        return undefined
    }
  }

  const NUMERIC = /^[ifF]*$/

  /** The JS function for registry function `index`: made once, then the same object. */
  function exportedFunction(index, name) {
    const existing = functions[index]
    if (existing !== undefined) return existing
    const [target, params, results] = nativeCaller(ns, index)
    const unsupported = /[vx]/.test(params + results)
    let exported
    if (!unsupported && NUMERIC.test(params) && results.length <= 1 && results !== 'r' && results !== 'e') {
      // Numbers in, at most one number or bigint out: no conversion of the result, and a call
      // site per arity (each shared by every such function, so it stays monomorphic).
      const c = [...params].map((code) => (code === 'i' ? (v) => v | 0 : (v) => +v))
      switch (params.length) {
        case 0:
          exported = () => call(target)
          break
        case 1: {
          const [c0] = c
          exported = params === 'i' ? (a) => call(target, a | 0) : (a) => call(target, c0(a))
          break
        }
        case 2: {
          const [c0, c1] = c
          exported = params === 'ii' ? (a, b) => call(target, a | 0, b | 0) : (a, b) => call(target, c0(a), c1(b))
          break
        }
        case 3: {
          const [c0, c1, c2] = c
          exported = (a, b, d) => call(target, c0(a), c1(b), c2(d))
          break
        }
        default:
          exported = (...args) => {
            const raw = new Array(params.length)
            for (let i = 0; i < params.length; i++) raw[i] = c[i](args[i])
            return call(target, ...raw)
          }
      }
    } else {
      exported = (...args) => {
        if (unsupported) throw new TypeError('type incompatibility when transforming from/to JS')
        const raw = new Array(params.length)
        for (let i = 0; i < params.length; i++) raw[i] = toRaw(args[i], params[i])
        const result = call(target, ...raw)
        switch (results.length) {
          case 0:
            return undefined
          case 1:
            return fromRaw(result, results)
          default:
            return result.map((value, i) => fromRaw(value, results[i]))
        }
      }
    }
    Object.defineProperty(exported, 'length', { value: params.length })
    Object.defineProperty(exported, 'name', { value: String(name ?? index) })
    functions[index] = exported
    functionIndexes.set(exported, index)
    return exported
  }

  /** Registers a JS function as a host function of the signature `params` -> `results`. */
  function hostFunction(fn, params, results) {
    const adapter = (...raw) => {
      const args = new Array(params.length)
      for (let i = 0; i < params.length; i++) args[i] = fromRaw(raw[i], params[i])
      const returned = Reflect.apply(fn, undefined, args)
      switch (results.length) {
        case 0:
          return undefined
        case 1:
          return toRaw(returned, results)
        default: {
          if (!isObject(returned)) throw new TypeError('multi-return value must be iterable')
          const values = [...returned]
          if (values.length !== results.length) {
            throw new TypeError(`multi-return length mismatch: expected ${results.length}, got ${values.length}`)
          }
          return values.map((value, i) => toRaw(value, results[i]))
        }
      }
    }
    adapters.push(adapter)
    return native.hostFunc(ns, adapter, params, results)
  }

  // ---- Module ---------------------------------------------------------------------------------

  const moduleHandles = new WeakMap()

  function moduleData(module, what) {
    const data = isObject(module) ? moduleHandles.get(module) : undefined
    if (data === undefined) throw new TypeError(`${what}: Argument 0 must be a WebAssembly.Module`)
    return data
  }

  /** Whether bytes start with the binary magic: the JS API takes binary modules only (wasmtime would also take text). */
  function hasMagic(bytes) {
    return bytes.length >= 4 && bytes[0] === 0 && bytes[1] === 0x61 && bytes[2] === 0x73 && bytes[3] === 0x6d
  }

  function compileBytes(bytes) {
    if (!hasMagic(bytes)) throw new CompileError('WebAssembly.Module(): expected magic word 00 61 73 6d')
    return { handle: native.compile(ns, bytes), bytes, exportIndexes: undefined }
  }

  /**
   * A `Module` compiled off the main thread (a thread of the addon's, through the code cache), so
   * the event loop runs on while a large module compiles: `compile` and `instantiate` use it.
   */
  async function compileInBackground(bytes, what) {
    if (!hasMagic(bytes)) throw new CompileError(`${what}: expected magic word 00 61 73 6d`)
    const [handle, message] = await native.compileAsync(ns, bytes)
    if (handle === undefined) throw new CompileError(`${what}: ${message}`)
    const module = Object.create(Module.prototype)
    moduleHandles.set(module, { handle, bytes, exportIndexes: undefined })
    return module
  }

  class Module {
    constructor(bytes) {
      if (arguments.length < 1) throw new TypeError('WebAssembly.Module(): Argument 0 must be a buffer source')
      const copy = copyBufferSource(bytes, 'WebAssembly.Module()')
      moduleHandles.set(this, compileBytes(copy))
    }

    static exports(module) {
      const data = moduleData(module, 'WebAssembly.Module.exports()')
      return native.moduleExports(ns, data.handle).map(([name, type]) => ({ name, kind: type[0] }))
    }

    static imports(module) {
      const data = moduleData(module, 'WebAssembly.Module.imports()')
      return native
        .moduleImports(ns, data.handle)
        .map(([moduleName, name, type]) => ({ module: moduleName, name, kind: type[0] }))
    }

    static customSections(module, sectionName) {
      const data = moduleData(module, 'WebAssembly.Module.customSections()')
      if (arguments.length < 2) {
        throw new TypeError('WebAssembly.Module.customSections(): Argument 1 is required')
      }
      return customSections(data.bytes, String(sectionName))
    }
  }
  enumerable(Module, ['exports', 'imports', 'customSections'])
  toStringTag(Module.prototype, 'WebAssembly.Module')

  // ---- Instance -------------------------------------------------------------------------------

  const instanceExports = new WeakMap()

  /** Reads the import object in the module's import order, as the JS API's "read the imports". */
  function readImports(data, importObject) {
    const imports = native.moduleImports(ns, data.handle)
    if (imports.length > 0 && importObject === undefined) {
      throw new TypeError('WebAssembly.Instance(): Imports argument must be present and must be an object')
    }
    if (importObject !== undefined && !isObject(importObject)) {
      throw new TypeError('WebAssembly.Instance(): Argument 1 must be an object')
    }
    const list = []
    for (const [moduleName, name, type] of imports) {
      const where = `WebAssembly.Instance(): Import #${list.length / 2} "${moduleName}"`
      const namespace = importObject[moduleName]
      if (!isObject(namespace)) throw new TypeError(`${where}: module is not an object or function`)
      const value = namespace[name]
      const kind = type[0]
      switch (kind) {
        case 'function': {
          if (typeof value !== 'function')
            throw new LinkError(`${where} "${name}": function import requires a callable`)
          const index = functionIndexes.get(value)
          list.push(0, index ?? hostFunction(value, type[1], type[2]))
          break
        }
        case 'table':
          if (!(value instanceof Table) || !tableIndexes.has(value)) {
            throw new LinkError(`${where} "${name}": table import requires a WebAssembly.Table`)
          }
          list.push(1, tableIndexes.get(value))
          break
        case 'memory':
          if (!(value instanceof Memory) || !memoryIndexes.has(value)) {
            throw new LinkError(`${where} "${name}": memory import must be a WebAssembly.Memory object`)
          }
          list.push(2, memoryIndexes.get(value))
          break
        case 'global': {
          const [, code, mutable] = type
          if (isObject(value) && globalIndexes.has(value)) {
            list.push(3, globalIndexes.get(value))
            break
          }
          if (mutable) {
            throw new LinkError(`${where} "${name}": imported mutable global must be a WebAssembly.Global object`)
          }
          if (code === 'I' && typeof value !== 'bigint') {
            throw new LinkError(`${where} "${name}": global import must be a BigInt or WebAssembly.Global object`)
          }
          if ((code === 'i' || code === 'f' || code === 'F') && typeof value !== 'number') {
            throw new LinkError(`${where} "${name}": global import must be a number or WebAssembly.Global object`)
          }
          if (code === 'v' || code === 'x') {
            throw new LinkError(`${where} "${name}": global import of this type cannot be supplied from JavaScript`)
          }
          list.push(3, globalNew(ns, code, false, toRaw(value, code)))
          break
        }
        case 'tag':
          if (!isObject(value) || !tagIndexes.has(value)) {
            throw new LinkError(`${where} "${name}": tag import requires a WebAssembly.Tag`)
          }
          list.push(4, tagIndexes.get(value))
          break
        default:
          throw new LinkError(`${where} "${name}": ${kind} imports are not supported`)
      }
    }
    return list
  }

  /** Defines an export (a property even when named `__proto__`; `freeze` seals it after). */
  function define(exports, name, value) {
    Object.defineProperty(exports, name, { value, writable: true, enumerable: true, configurable: true })
  }

  function exportsObject(data, described, list) {
    // Built as an ordinary object, then given a null prototype: V8 keeps it in fast mode, so
    // `exports.f` loads stay inline-cached (Object.create(null) would make a dictionary object).
    const exports = {}
    data.exportIndexes ??= exportedFunctionIndexes(data.bytes)
    // The registry indexes of the function imports, in order: the first function indexes of the
    // module. A re-exported import is the imported function itself (wasmtime hands out another
    // handle for it, which would otherwise get another JS function).
    const importedFunctions = []
    for (let i = 0; i < list.length; i += 2) if (list[i] === 0) importedFunctions.push(list[i + 1])
    for (let i = 0; i < described.length; i += 3) {
      const name = described[i]
      const kind = described[i + 1]
      const index = described[i + 2]
      switch (kind) {
        case 0: {
          const functionIndex = data.exportIndexes.get(name)
          const imported = functionIndex < importedFunctions.length ? importedFunctions[functionIndex] : undefined
          define(exports, name, exportedFunction(imported ?? index, functionIndex))
          break
        }
        case 1:
          define(exports, name, tables[index] ?? wrapExisting(Table, index))
          break
        case 2:
          define(exports, name, memories[index] ?? wrapExisting(Memory, index))
          break
        case 3:
          define(exports, name, globals[index] ?? wrapExisting(Global, index))
          break
        default:
          define(exports, name, tags[index] ?? wrapExisting(Tag, index))
      }
    }
    Object.setPrototypeOf(exports, null)
    return Object.freeze(exports)
  }

  class Instance {
    constructor(module, importObject) {
      const data = moduleData(module, 'WebAssembly.Instance()')
      const list = readImports(data, importObject)
      instanceExports.set(this, exportsObject(data, native.instantiate(ns, data.handle, list), list))
    }

    get exports() {
      const exports = instanceExports.get(this)
      if (exports === undefined) throw new TypeError('Receiver is not a WebAssembly.Instance')
      return exports
    }
  }
  Object.defineProperty(Instance, 'length', { value: 1 })
  enumerable(Instance.prototype, ['exports'])
  toStringTag(Instance.prototype, 'WebAssembly.Instance')

  // ---- Memory ---------------------------------------------------------------------------------

  const memoryIndexes = new WeakMap()

  class Memory {
    #index
    #buffer
    #is64 = false

    constructor(descriptor) {
      if (descriptor === EXISTING && existingIndex >= 0) {
        this.#index = existingIndex
        this.#is64 = memoryType(ns, existingIndex)[3]
      } else {
        if (!isObject(descriptor)) throw new TypeError('WebAssembly.Memory(): Argument 0 must be a memory descriptor')
        const address = descriptor.address
        const addressName = address === undefined ? 'i32' : String(address)
        if (addressName !== 'i32' && addressName !== 'i64') {
          throw new TypeError("WebAssembly.Memory(): Descriptor property 'address' must be 'i32' or 'i64'")
        }
        const is64 = addressName === 'i64'
        const rawInitial = descriptor.initial
        if (rawInitial === undefined) throw new TypeError("WebAssembly.Memory(): Property 'initial' is required")
        const initial = addressValue(rawInitial, is64, "WebAssembly.Memory(): Property 'initial'")
        const rawMaximum = descriptor.maximum
        const maximum =
          rawMaximum === undefined ? -1 : addressValue(rawMaximum, is64, "WebAssembly.Memory(): Property 'maximum'")
        const shared = Boolean(descriptor.shared)
        const limit = is64 ? MAX_MEMORY64_PAGES : MAX_MEMORY_PAGES
        if (initial > limit) {
          throw new RangeError(`WebAssembly.Memory(): Property 'initial': value ${initial} is above the upper bound`)
        }
        if (maximum !== -1 && maximum > limit) {
          throw new RangeError(`WebAssembly.Memory(): Property 'maximum': value ${maximum} is above the upper bound`)
        }
        if (maximum !== -1 && maximum < initial) {
          throw new RangeError("WebAssembly.Memory(): Property 'maximum' must not be below 'initial'")
        }
        if (shared) throw new TypeError('WebAssembly.Memory(): shared memories are not supported by this namespace')
        this.#index = memoryNew(ns, initial, maximum, is64)
        this.#is64 = is64
      }
      memories[this.#index] = this
      memoryIndexes.set(this, this.#index)
    }

    grow(delta) {
      if (!(#index in this)) throw new TypeError('Receiver is not a WebAssembly.Memory')
      if (arguments.length < 1) throw new TypeError('WebAssembly.Memory.grow(): Argument 0 is required')
      const pages = addressValue(delta, this.#is64, 'WebAssembly.Memory.grow(): Argument 0')
      this.#buffer = undefined
      const old = memoryGrow(ns, this.#index, pages)
      return this.#is64 ? BigInt(old) : old
    }

    get buffer() {
      if (!(#index in this)) throw new TypeError('Receiver is not a WebAssembly.Memory')
      // Native code detaches a buffer as soon as it may have been outgrown (after every call
      // into wasm, before every import runs, on grow()), so one still attached is current.
      const buffer = this.#buffer
      if (buffer !== undefined && buffer.byteLength !== 0) return buffer
      return (this.#buffer = memoryBuffer(ns, this.#index))
    }
  }
  enumerable(Memory.prototype, ['grow', 'buffer'])
  toStringTag(Memory.prototype, 'WebAssembly.Memory')

  // ---- Table ----------------------------------------------------------------------------------

  const tableIndexes = new WeakMap()
  const tableElements = new WeakMap()

  class Table {
    #index
    #is64 = false

    constructor(descriptor, ...rest) {
      let code
      let is64 = false
      if (descriptor === EXISTING && existingIndex >= 0) {
        this.#index = existingIndex
        const type = tableType(ns, existingIndex)
        code = type[0]
        is64 = type[4]
      } else {
        if (!isObject(descriptor)) throw new TypeError('WebAssembly.Table(): Argument 0 must be a table descriptor')
        // Read in the order the JS API's tests expect: element, address, initial, maximum.
        const elementName = String(descriptor.element)
        const address = descriptor.address
        const addressName = address === undefined ? 'i32' : String(address)
        if (addressName !== 'i32' && addressName !== 'i64') {
          throw new TypeError("WebAssembly.Table(): Descriptor property 'address' must be 'i32' or 'i64'")
        }
        is64 = addressName === 'i64'
        code = { anyfunc: 'r', funcref: 'r', externref: 'e' }[elementName]
        if (code === undefined) {
          throw new TypeError("WebAssembly.Table(): Descriptor property 'element' must be a WebAssembly reference type")
        }
        const rawInitial = descriptor.initial
        if (rawInitial === undefined) throw new TypeError("WebAssembly.Table(): Property 'initial' is required")
        const initial = addressValue(rawInitial, is64, "WebAssembly.Table(): Property 'initial'")
        const rawMaximum = descriptor.maximum
        const maximum =
          rawMaximum === undefined ? -1 : addressValue(rawMaximum, is64, "WebAssembly.Table(): Property 'maximum'")
        if (initial > MAX_TABLE_LENGTH) {
          throw new RangeError(`WebAssembly.Table(): Property 'initial': value ${initial} is above the upper bound`)
        }
        if (maximum !== -1 && maximum < initial) {
          throw new RangeError("WebAssembly.Table(): Property 'maximum' must not be below 'initial'")
        }
        const init = rest.length > 0 && rest[0] !== undefined ? toRaw(rest[0], code) : toRaw(defaultValue(code), code)
        this.#index = tableNew(ns, code, initial, maximum, init, is64)
      }
      this.#is64 = is64
      tables[this.#index] = this
      tableIndexes.set(this, this.#index)
      tableElements.set(this, code)
    }

    get length() {
      if (!(#index in this)) throw new TypeError('Receiver is not a WebAssembly.Table')
      const length = tableLength(ns, this.#index)
      return this.#is64 ? BigInt(length) : length
    }

    grow(delta, ...rest) {
      if (!(#index in this)) throw new TypeError('Receiver is not a WebAssembly.Table')
      if (arguments.length < 1) throw new TypeError('WebAssembly.Table.grow(): Argument 0 is required')
      const count = addressValue(delta, this.#is64, 'WebAssembly.Table.grow(): Argument 0')
      const code = tableElements.get(this)
      const init = rest.length > 0 && rest[0] !== undefined ? toRaw(rest[0], code) : toRaw(defaultValue(code), code)
      const old = tableGrow(ns, this.#index, count, init)
      return this.#is64 ? BigInt(old) : old
    }

    get(index) {
      if (!(#index in this)) throw new TypeError('Receiver is not a WebAssembly.Table')
      if (arguments.length < 1) throw new TypeError('WebAssembly.Table.get(): Argument 0 is required')
      const element = addressValue(index, this.#is64, 'WebAssembly.Table.get(): Argument 0')
      return fromRaw(tableGet(ns, this.#index, element), tableElements.get(this))
    }

    set(index, ...rest) {
      if (!(#index in this)) throw new TypeError('Receiver is not a WebAssembly.Table')
      if (arguments.length < 1) throw new TypeError('WebAssembly.Table.set(): Argument 0 is required')
      const element = addressValue(index, this.#is64, 'WebAssembly.Table.set(): Argument 0')
      const code = tableElements.get(this)
      const value = rest.length > 0 ? toRaw(rest[0], code) : toRaw(defaultValue(code), code)
      tableSet(ns, this.#index, element, value)
    }
  }
  enumerable(Table.prototype, ['length', 'grow', 'get', 'set'])
  toStringTag(Table.prototype, 'WebAssembly.Table')

  // ---- Global ---------------------------------------------------------------------------------

  const globalIndexes = new WeakMap()

  class Global {
    #index
    #code
    #mutable

    constructor(descriptor, ...rest) {
      if (descriptor === EXISTING && existingIndex >= 0) {
        this.#index = existingIndex
        const [code, mutable] = globalType(ns, existingIndex)
        this.#code = code
        this.#mutable = mutable
      } else {
        if (!isObject(descriptor)) throw new TypeError('WebAssembly.Global(): Argument 0 must be a global descriptor')
        const mutable = Boolean(descriptor.mutable)
        const typeName = String(descriptor.value)
        const code = valueTypeCode(typeName)
        if (code === undefined) {
          throw new TypeError("WebAssembly.Global(): Descriptor property 'value' must be a WebAssembly type")
        }
        const value = rest.length > 0 && rest[0] !== undefined ? rest[0] : defaultValue(code)
        this.#code = code
        this.#mutable = mutable
        this.#index = globalNew(ns, code, mutable, toRaw(value, code))
      }
      globals[this.#index] = this
      globalIndexes.set(this, this.#index)
    }

    valueOf() {
      if (!(#index in this)) throw new TypeError('Receiver is not a WebAssembly.Global')
      if (this.#code === 'v' || this.#code === 'x') throw new TypeError('type incompatibility when transforming to JS')
      return fromRaw(globalGet(ns, this.#index), this.#code)
    }

    get value() {
      if (!(#index in this)) throw new TypeError('Receiver is not a WebAssembly.Global')
      if (this.#code === 'v' || this.#code === 'x') throw new TypeError('type incompatibility when transforming to JS')
      return fromRaw(globalGet(ns, this.#index), this.#code)
    }

    set value(value) {
      if (!(#index in this)) throw new TypeError('Receiver is not a WebAssembly.Global')
      if (!this.#mutable) throw new TypeError("WebAssembly.Global: Can't set the value of an immutable global.")
      // Called without an argument, a setter behaves as if given undefined (the JS API's test).
      globalSet(ns, this.#index, toRaw(value, this.#code))
    }
  }
  enumerable(Global.prototype, ['valueOf', 'value'])
  toStringTag(Global.prototype, 'WebAssembly.Global')

  // ---- Tag and Exception ----------------------------------------------------------------------

  const tagIndexes = new WeakMap()
  /** The registry index of the namespace's JS tag (`WebAssembly.JSTag`). */
  const JS_TAG = 0

  /** The payload type codes of each tag, by registry index (a tag's type never changes). */
  const tagCodes = []
  const tagCodesOf = (index) => (tagCodes[index] ??= tagType(ns, index))

  function tagIndexOf(value, what) {
    const index = isObject(value) ? tagIndexes.get(value) : undefined
    if (index === undefined) throw new TypeError(`${what} must be a WebAssembly.Tag`)
    return index
  }

  class Tag {
    #index

    constructor(type) {
      if (type === EXISTING && existingIndex >= 0) {
        this.#index = existingIndex
      } else {
        if (!isObject(type)) throw new TypeError('WebAssembly.Tag(): Argument 0 must be a tag type')
        const parameters = type.parameters
        if (!isObject(parameters) || typeof parameters[Symbol.iterator] !== 'function') {
          throw new TypeError("WebAssembly.Tag(): Argument 0 must be a tag type with a 'parameters' sequence")
        }
        let codes = ''
        for (const parameter of parameters) {
          const name = String(parameter)
          const code = valueTypeCode(name)
          if (code === undefined) {
            throw new TypeError(
              `WebAssembly.Tag(): Argument 0 parameter type at index #${codes.length} must be a value type`,
            )
          }
          codes += code
        }
        this.#index = tagNew(ns, codes)
      }
      tags[this.#index] = this
      tagIndexes.set(this, this.#index)
    }
  }
  toStringTag(Tag.prototype, 'WebAssembly.Tag')

  /** The `WebAssembly.Exception` of registry exception `index`: the same object while JS holds it. */
  function exceptionObject(index) {
    return exceptions[index]?.deref() ?? wrapExisting(Exception, index)
  }

  class Exception {
    #index
    #tag

    constructor(tagObject, payload, options) {
      if (tagObject === EXISTING && existingIndex >= 0) {
        this.#index = existingIndex
        this.#tag = exceptionTag(ns, existingIndex)
      } else {
        const tag = tagIndexOf(tagObject, 'WebAssembly.Exception(): Argument 0')
        if (tag === JS_TAG) {
          throw new TypeError('WebAssembly.Exception(): Argument 0 cannot be WebAssembly.JSTag')
        }
        if (!isObject(payload) || typeof payload[Symbol.iterator] !== 'function') {
          throw new TypeError('WebAssembly.Exception(): Argument 1 must be a sequence')
        }
        const values = [...payload]
        const codes = tagCodesOf(tag)
        if (values.length !== codes.length) {
          throw new TypeError(
            `WebAssembly.Exception(): Number of exception values (${values.length}) does not match the tag's ${codes.length}`,
          )
        }
        if (options !== undefined && options !== null && !isObject(options)) {
          throw new TypeError('WebAssembly.Exception(): Argument 2 must be an object')
        }
        const raw = values.map((value, i) => toRaw(value, codes[i]))
        const traceStack = Boolean(options?.traceStack)
        this.#index = exceptionNew(ns, tag, ...raw)
        this.#tag = tag
        if (traceStack) {
          const { stack } = new Error()
          Object.defineProperty(this, 'stack', { value: stack, writable: true, configurable: true })
        }
      }
      exceptions[this.#index] = new WeakRef(this)
      exceptionIndexes.set(this, this.#index)
      releasedExceptions.register(this, this.#index)
    }

    getArg(tagObject, index) {
      if (!(#index in this)) throw new TypeError('Receiver is not a WebAssembly.Exception')
      if (arguments.length < 2) throw new TypeError('WebAssembly.Exception.getArg(): Argument 1 is required')
      const tag = tagIndexOf(tagObject, 'WebAssembly.Exception.getArg(): Argument 0')
      const field = enforceRangeU32(index, 'WebAssembly.Exception.getArg(): Argument 1')
      if (tag !== this.#tag) {
        throw new TypeError('WebAssembly.Exception.getArg(): First argument does not match the exception tag')
      }
      const codes = tagCodesOf(tag)
      if (field >= codes.length) {
        throw new RangeError(`WebAssembly.Exception.getArg(): Index ${field} is out of bounds (${codes.length} values)`)
      }
      const code = codes[field]
      if (code === 'v' || code === 'x') throw new TypeError('type incompatibility when transforming from/to JS')
      return fromRaw(exceptionArg(ns, this.#index, field), code)
    }

    is(tagObject) {
      if (!(#index in this)) throw new TypeError('Receiver is not a WebAssembly.Exception')
      if (arguments.length < 1) throw new TypeError('WebAssembly.Exception.is(): Argument 0 is required')
      return tagIndexOf(tagObject, 'WebAssembly.Exception.is(): Argument 0') === this.#tag
    }
  }
  Object.defineProperty(Exception, 'length', { value: 2 })
  enumerable(Exception.prototype, ['getArg', 'is'])
  toStringTag(Exception.prototype, 'WebAssembly.Exception')

  const jsTag = wrapExisting(Tag, JS_TAG)

  // ---- namespace functions --------------------------------------------------------------------

  const api = {
    validate(bytes) {
      const copy = copyBufferSource(bytes, 'WebAssembly.validate()')
      if (copy.length < 4 || copy[0] !== 0 || copy[1] !== 0x61 || copy[2] !== 0x73 || copy[3] !== 0x6d) return false
      return native.validate(ns, copy)
    },
    compile(bytes) {
      return new Promise((resolve) => {
        resolve(compileInBackground(copyBufferSource(bytes, 'WebAssembly.compile()'), 'WebAssembly.compile()'))
      })
    },
    instantiate(source, importObject) {
      return new Promise((resolve, reject) => {
        if (isObject(source) && moduleHandles.has(source)) {
          resolve(new Instance(source, importObject))
          return
        }
        const copy = copyBufferSource(source, 'WebAssembly.instantiate()')
        compileInBackground(copy, 'WebAssembly.instantiate()').then((module) => {
          // Instantiation runs a turn later, as V8's does: its import object is read then.
          setImmediate(() => {
            try {
              resolve({ module, instance: new Instance(module, importObject) })
            } catch (error) {
              reject(error)
            }
          })
        }, reject)
      })
    },
  }

  /** The bytes of a `Response` (or a promise of one), checked as Node's WebAssembly does. */
  async function responseBytes(source, what) {
    const response = await source
    if (Object.prototype.toString.call(response) !== '[object Response]') {
      throw new TypeError(`${what}: Argument 0 must be provided and must be a Response`)
    }
    const type = response.headers.get('Content-Type')
    if (type !== 'application/wasm') {
      throw new TypeError(`${what}: Incorrect response MIME type. Expected 'application/wasm'.`)
    }
    if (!response.ok) throw new TypeError(`${what}: HTTP status code is not ok`)
    return response.arrayBuffer()
  }

  api.compileStreaming = async function compileStreaming(source) {
    return api.compile(await responseBytes(source, 'WebAssembly.compileStreaming()'))
  }
  api.instantiateStreaming = async function instantiateStreaming(source, importObject) {
    return api.instantiate(await responseBytes(source, 'WebAssembly.instantiateStreaming()'), importObject)
  }

  const WebAssembly = {}
  toStringTag(WebAssembly, 'WebAssembly')
  for (const name of ['validate', 'compile', 'instantiate', 'compileStreaming', 'instantiateStreaming']) {
    // Every one takes one required argument (WebIDL's `length`).
    Object.defineProperty(api[name], 'length', { value: 1 })
    Object.defineProperty(WebAssembly, name, { value: api[name], writable: true, enumerable: true, configurable: true })
  }
  const interfaces = { Module, Instance, Memory, Table, Global, Tag, Exception, CompileError, LinkError, RuntimeError }
  for (const [name, value] of Object.entries(interfaces)) {
    Object.defineProperty(WebAssembly, name, { value, writable: true, enumerable: false, configurable: true })
  }
  Object.defineProperty(WebAssembly, 'JSTag', { get: () => jsTag, enumerable: true, configurable: true })
  return WebAssembly
}

module.exports = { createWebAssembly }
