// Components, as `jco transpile` presents them to JS: `Component` (a compiled component, its world
// as data), and its instances, whose `exports` are interfaces of camelCase functions and resource
// classes. The native layer (ComponentCore, ComponentInstanceCore) compiles, links, converts
// values and calls by index; this file names things, resolves imports and unwraps results.
'use strict'

const { ComponentCore, componentSetup } = require('../native.js')
const { witType } = require('./dts.js')
const { HttpLink, parseHttpOption, parseBodyLimit, rawHeader, serve, replyError } = require('./http.js')
const { transmitHook } = require('./transmit.js')

/** What `throw` carries out of a function whose WIT result is `result<T, E>`: `payload` is the `E`. */
class ComponentError extends Error {
  constructor(value) {
    const enumerable = typeof value !== 'string'
    super(enumerable ? `${String(value)} (see error.payload)` : value)
    Object.defineProperty(this, 'payload', { value, enumerable, writable: true, configurable: true })
  }
}
// On the prototype, as Error's own `name`: an own `name` would be enumerable (Object.keys(error)
// would be ['name'] where jco's ComponentError has no enumerable key for a string payload).
Object.defineProperty(ComponentError.prototype, 'name', { value: 'ComponentError', writable: true, configurable: true })

const WRAP = Symbol('wrap a guest resource handle')
const KEEP = Symbol('what the native instance references weakly')

/** The base of every exported resource class: it holds the guest handle. */
class ComponentResource {
  #handle
  constructor(token, handle) {
    if (token !== WRAP) throw codedError(TypeError, 'ERR_ILLEGAL_CONSTRUCTOR', 'Illegal constructor')
    this.#handle = handle
  }

  static handleOf(value) {
    return value !== null && typeof value === 'object' && #handle in value ? value.#handle : NOT_A_RESOURCE
  }
}

// What handleOf gives for a value that is not a resource object: an object without the handle's
// type tag. (Not `undefined`: the native side checks the tag with napi_check_object_type_tag,
// which throws an uncoded "Cannot convert undefined or null to object" for undefined.)
const NOT_A_RESOURCE = Object.freeze({})

componentSetup((Class, handle) => new Class(WRAP, handle), ComponentResource.handleOf)

function codedError(Class, code, message) {
  const error = new Class(message)
  error.code = code
  return error
}

function witSignature(fn) {
  const params = fn.params.map((param) => `${param.name}: ${witType(param.type)}`).join(', ')
  return `${fn.name}(${params})${fn.result ? ` -> ${witType(fn.result)}` : ''}`
}

function withoutVersion(name) {
  const at = name.indexOf('@')
  return at < 0 ? name : name.slice(0, at)
}

function isResult(type) {
  return type !== undefined && type.kind === 'result'
}

/** The value of a call whose result the native layer lifted as `{ tag, val }` for a `result`. */
function unwrapResult(result) {
  if (result.tag === 'err') throw new ComponentError(result.val)
  return result.val
}

/**
 * A JS import whose WIT result is a `result`, as jco takes it: a returned `{ tag: 'ok' | 'err', val }`
 * is the result itself, any other return is `ok`; a thrown value with a `payload` (a ComponentError)
 * is `err` of that payload, a thrown non-Error value is `err` of itself, and a thrown Error fails
 * the call (ERR_WASM_IMPORT, the Error as `cause`).
 */
function resultImport(fn) {
  const ok = (value) =>
    value !== null && typeof value === 'object' && (value.tag === 'ok' || value.tag === 'err')
      ? value
      : { tag: 'ok', val: value }
  const err = (error) => {
    if (error !== null && typeof error === 'object' && 'payload' in error) return { tag: 'err', val: error.payload }
    if (error instanceof Error) throw error
    return { tag: 'err', val: error }
  }
  return function (...args) {
    let value
    try {
      value = Reflect.apply(fn, this, args)
    } catch (error) {
      return err(error)
    }
    // An async import (for callAsync and runAsync): the same rules once it settles.
    if (value !== null && typeof value === 'object' && typeof value.then === 'function') return value.then(ok, err)
    return ok(value)
  }
}

function linkError(message) {
  return codedError(Error, 'ERR_WASM_LINK', `the component could not be instantiated: ${message}`)
}

/** Finds a property under any of `keys`. */
function lookup(object, keys) {
  if (object === null || (typeof object !== 'object' && typeof object !== 'function')) return undefined
  for (const key of keys) {
    const value = object[key]
    if (value !== undefined) return value
  }
  return undefined
}

/** Resolves `options.imports` against the component's imports into the native layer's bindings. */
function resolveImports(description, options) {
  const imports = options !== null && typeof options === 'object' ? options.imports : undefined
  const wasi = options !== null && typeof options === 'object' && options.wasi !== undefined
  const bindings = []
  const resources = []
  const keep = []
  for (const item of Object.values(description)) {
    if (item.kind === 'function') {
      let fn = lookup(imports, [item.name, item.jsName])
      // jco's form for a world-level function: `{ 'host-name': { default: fn } }`.
      if (fn !== null && typeof fn === 'object' && typeof fn.default === 'function') fn = fn.default
      if (typeof fn !== 'function')
        throw linkError(
          `it imports the function ${witSignature(item)}, which options.imports does not provide (give imports[${JSON.stringify(item.jsName)}] as a function)`,
        )
      const bound = isResult(item.result) ? resultImport(fn) : fn
      keep.push(bound)
      bindings.push([null, item.name, bound])
      continue
    }
    if (item.name.startsWith('wasi:') && wasi) continue
    // An interface of types only needs nothing from JS.
    if (item.functions.length === 0 && item.resources.length === 0) continue
    const iface = lookup(imports, [item.name, withoutVersion(item.name)])
    if (iface === undefined || iface === null || (typeof iface !== 'object' && typeof iface !== 'function')) {
      const hint = item.name.startsWith('wasi:')
        ? ' (it is a WASI 0.2 interface: create the instance with the `wasi` option to grant WASI, as for Sandbox)'
        : ''
      const first = item.functions[0] ?? item.resources[0]?.constructor ?? item.resources[0]?.methods[0]
      const what = first ? `, with ${witSignature(first)}` : ''
      throw linkError(
        `it imports the interface ${item.name}${what}, which options.imports does not provide (give imports[${JSON.stringify(withoutVersion(item.name))}])${hint}`,
      )
    }
    for (const fn of item.functions) {
      const impl = lookup(iface, [fn.jsName, fn.name])
      if (typeof impl !== 'function')
        throw linkError(
          `it imports ${item.name}#${witSignature(fn)}, which imports[${JSON.stringify(withoutVersion(item.name))}] does not provide (a function ${JSON.stringify(fn.jsName)})`,
        )
      const bound = isResult(fn.result) ? resultImport(impl) : impl
      keep.push(bound)
      bindings.push([item.name, fn.name, bound])
    }
    for (const resource of item.resources) {
      const Class = lookup(iface, [resource.jsName, resource.name])
      if (typeof Class !== 'function')
        throw linkError(
          `it imports the resource ${item.name}#${resource.name}, which imports[${JSON.stringify(withoutVersion(item.name))}] does not provide (a class ${JSON.stringify(resource.jsName)})`,
        )
      const dispose = (object) => {
        if (object !== null && typeof object === 'object' && typeof object[Symbol.dispose] === 'function')
          object[Symbol.dispose]()
      }
      keep.push(Class, dispose)
      resources.push([item.name, resource.name, dispose])
      if (Object.hasOwn(resource, 'constructor')) {
        const construct = (...args) => new Class(...args)
        keep.push(construct)
        bindings.push([item.name, resource.constructor.name, construct])
      }
      for (const method of resource.methods) {
        let call = function (self, ...args) {
          if (typeof self[method.jsName] !== 'function')
            throw new TypeError(`the ${resource.jsName} object has no method ${method.jsName}`)
          return self[method.jsName](...args)
        }
        if (isResult(method.result)) call = resultImport(call)
        keep.push(call)
        bindings.push([item.name, method.name, call])
      }
      for (const fn of resource.statics) {
        if (typeof Class[fn.jsName] !== 'function')
          throw linkError(
            `it imports ${item.name}#${witSignature(fn)}, which the class ${resource.jsName} does not provide (a static method ${JSON.stringify(fn.jsName)})`,
          )
        let call = (...args) => Class[fn.jsName](...args)
        if (isResult(fn.result)) call = resultImport(call)
        keep.push(call)
        bindings.push([item.name, fn.name, call])
      }
    }
  }
  return { bindings, resources, keep }
}

/** Builds `instance.exports`: interfaces by full name, name without version and jco's short name. */
function buildExports(description, core, transmits) {
  const calls = new Map()
  const indexes = new Map(core.functions().map(([iface, name], index) => [`${iface ?? ''}#${name}`, index]))
  const transmitting = new Set(core.transmitting())
  const call = (iface, fn) => {
    const index = indexes.get(`${iface ?? ''}#${fn.name}`)
    if (index === undefined) return undefined
    const returnsResult = isResult(fn.result)
    // An `async func` (WASI 0.3) returns a Promise, as jco maps it: the call runs on the pool. So
    // does a function passing streams or futures: the guest's event loop runs on for them.
    // Where streams or futures can cross, an async call's value may come before the call ends
    // (its streams still flowing).
    const startAsync = transmits ? (args) => transmits.call(index, args) : (args) => core.callAsync(index, args)
    const wrapper =
      fn.async || transmitting.has(index)
        ? {
            [fn.jsName](...args) {
              const promise = startAsync(args)
              return returnsResult ? promise.then(unwrapResult) : promise
            },
          }[fn.jsName]
        : {
            [fn.jsName](...args) {
              const value = core.call(index, args)
              return returnsResult ? unwrapResult(value) : value
            },
          }[fn.jsName]
    calls.set(wrapper, { index, returnsResult, startAsync })
    return wrapper
  }
  const classes = new Map()
  const exports = {}
  for (const item of Object.values(description)) {
    if (item.kind === 'function') {
      const fn = call(null, item)
      if (fn) exports[item.jsName] = fn
      continue
    }
    const iface = {}
    for (const fn of item.functions) {
      const wrapper = call(item.name, fn)
      if (wrapper) iface[fn.jsName] = wrapper
    }
    for (const resource of item.resources) {
      const Class = resourceClass(item.name, resource, call, core)
      classes.set(`${item.name}#${resource.name}`, Class)
      iface[resource.jsName] = Class
    }
    Object.freeze(iface)
    for (const key of [item.name, withoutVersion(item.name), item.jsName]) if (!(key in exports)) exports[key] = iface
  }
  core.resources().forEach(([iface, name], index) => {
    const Class = classes.get(`${iface}#${name}`)
    if (Class) core.setResourceClass(index, Class)
  })
  return { exports: Object.freeze(exports), classes: [...classes.values()], calls }
}

function resourceClass(iface, resource, call, core) {
  const constructorCall = Object.hasOwn(resource, 'constructor') ? call(iface, resource.constructor) : undefined
  const Class = {
    [resource.jsName]: class extends ComponentResource {
      constructor(...args) {
        if (args[0] === WRAP) {
          super(WRAP, args[1])
          return
        }
        if (constructorCall === undefined)
          throw codedError(TypeError, 'ERR_ILLEGAL_CONSTRUCTOR', `the resource ${resource.name} has no constructor`)
        // The guest's constructor returns a new handle, wrapped in an object of this class.
        return constructorCall(...args)
      }

      [Symbol.dispose]() {
        core.dropResource(this)
      }
    },
  }[resource.jsName]
  for (const method of resource.methods) {
    const fn = call(iface, method)
    if (!fn) continue
    Object.defineProperty(Class.prototype, method.jsName, {
      value: {
        [method.jsName](...args) {
          return fn(this, ...args)
        },
      }[method.jsName],
      writable: true,
      configurable: true,
    })
  }
  for (const staticFn of resource.statics) {
    const fn = call(iface, staticFn)
    if (fn) Object.defineProperty(Class, staticFn.jsName, { value: fn, writable: true, configurable: true })
  }
  return Class
}

class ComponentInstance {
  #core
  #keep
  #exports
  #calls

  constructor(token, core, description, keep) {
    if (token !== WRAP) throw codedError(TypeError, 'ERR_ILLEGAL_CONSTRUCTOR', 'use component.instantiate()')
    this.#core = core
    const transmits = core.passesTransmits ? transmitHook(core) : undefined
    if (transmits) core.setTransmitHook(transmits.hook)
    const { exports, classes, calls } = buildExports(description, core, transmits)
    this.#exports = exports
    this.#calls = calls
    // The import functions, resource classes and the stream hook are referenced weakly by the
    // native instance: whatever keeps it reachable (this object, or an export function alone)
    // keeps them too.
    this.#keep = [keep, classes, transmits?.hook]
    Object.defineProperty(core, KEEP, { value: this.#keep })
  }

  /** Exported interfaces (by full name, name without version, and jco's short name) and functions. */
  get exports() {
    return this.#exports
  }

  /** Runs a WASI 0.2 command (`wasi:cli/run`). */
  run() {
    return this.#core.run()
  }

  /**
   * Calls an exported function on a thread of the addon's pool: `fn` is the function as
   * `instance.exports` has it (or its path, `'api.echoU8'`, `'hello'`). JS imports run on this
   * thread meanwhile and may return Promises.
   */
  callAsync(fn, ...args) {
    const call = this.#findCall(fn)
    if (call === undefined) {
      const shown = typeof fn === 'function' ? `the function ${fn.name}` : JSON.stringify(String(fn))
      return Promise.reject(
        codedError(
          TypeError,
          'ERR_INVALID_ARG_VALUE',
          `callAsync takes an exported function of this instance (from instance.exports) or its path such as 'api.echoU8'; got ${shown}`,
        ),
      )
    }
    const promise = call.startAsync(args)
    return call.returnsResult ? promise.then(unwrapResult) : promise
  }

  /** Runs a WASI 0.3 or 0.2 command on a thread of the addon's pool: a Promise of what `run()` returns. */
  runAsync() {
    return this.#core.runAsync()
  }

  /**
   * Stops the running async call (`callAsync()`, `runAsync()`), also while the guest waits for an
   * import or a WASI 0.3 future: it rejects with ERR_WASM_INTERRUPTED, and the instance cannot be
   * entered again (as after a trap). Returns whether a call was running.
   */
  interrupt() {
    return this.#core.interrupt()
  }

  #findCall(fn) {
    if (typeof fn === 'function') return this.#calls.get(fn)
    if (typeof fn !== 'string') return undefined
    const dot = fn.lastIndexOf('.')
    const target = dot < 0 ? this.#exports[fn] : this.#exports[fn.slice(0, dot)]?.[fn.slice(dot + 1)]
    return typeof target === 'function' ? this.#calls.get(target) : undefined
  }

  /** What the guest wrote to its captured stdout and stderr since last taken. */
  takeOutput() {
    return this.#core.takeOutput()
  }

  get disposed() {
    return this.#core.disposed
  }

  dispose() {
    this.#core.dispose()
    this.#keep = undefined
  }

  [Symbol.dispose]() {
    this.dispose()
  }
}

class Component {
  #core
  #exports
  #imports

  constructor(source, options) {
    if (source === WRAP) {
      this.#core = options
      return
    }
    this.#core = new ComponentCore(source, options)
  }

  /** Compiles on a background thread. */
  static async compile(source, options) {
    return new Component(WRAP, await ComponentCore.compile(source, options))
  }

  /** Reads and compiles a component file (`.wasm` or `.wat`). */
  static fromFile(path, options) {
    if (typeof path !== 'string')
      throw codedError(
        TypeError,
        'ERR_INVALID_ARG_TYPE',
        `The "path" argument must be of type string. Received ${typeof path}`,
      )
    let bytes
    try {
      bytes = require('node:fs').readFileSync(path)
    } catch (error) {
      throw Object.assign(
        codedError(Error, 'ERR_WASM_READ_FILE', `could not read the component file ${path}: ${error.message}`),
        { cause: error },
      )
    }
    return new Component(bytes, options)
  }

  #describe() {
    if (this.#exports === undefined) {
      const [exports, imports] = this.#core.describe()
      this.#exports = JSON.parse(exports)
      this.#imports = JSON.parse(imports)
    }
  }

  /** The world's exports as data. */
  get exports() {
    this.#describe()
    return structuredClone(this.#exports)
  }

  /** The world's imports as data. */
  get imports() {
    this.#describe()
    return structuredClone(this.#imports)
  }

  get compiler() {
    return this.#core.compiler
  }

  /** A new instance in its own store. */
  instantiate(options) {
    return this.#instantiate(options).instance
  }

  #instantiate(options) {
    this.#describe()
    const { bindings, resources, keep } = resolveImports(this.#imports, options)
    let native = options
    let http = { allowedHosts: null, fetch: undefined }
    if (options !== null && typeof options === 'object' && 'http' in options) {
      http = parseHttpOption(options.http)
      native = { ...options }
      delete native.http
    }
    const core = this.#core.instantiate(native, bindings, resources, http.allowedHosts)
    // Streamed output callbacks are referenced weakly too.
    const wasi = options?.wasi
    if (wasi !== null && typeof wasi === 'object') {
      for (const stream of [wasi.stdout, wasi.stderr]) if (typeof stream === 'function') keep.push(stream)
    }
    // The guest's wasi:http events (outgoing requests, a served response) reach JS through it.
    const link = wasi !== undefined && wasi !== null ? new HttpLink(core, http.fetch) : null
    if (link) keep.push(link)
    return { instance: new ComponentInstance(WRAP, core, this.#exports, keep), core, link }
  }

  /**
   * A Node request listener (`http.createServer(component.httpHandler(options))`) serving every
   * request with a fresh instance of this `wasi:http` service component.
   */
  httpHandler(options = {}) {
    if (options === null || typeof options !== 'object') {
      throw codedError(TypeError, 'ERR_INVALID_ARG_TYPE', 'The "options" argument must be of type object')
    }
    this.#describe()
    const service = Object.keys(this.#exports).find((name) =>
      /^wasi:http\/(handler@0\.3|incoming-handler@0\.2)/.test(name),
    )
    if (service === undefined) {
      throw codedError(
        TypeError,
        'ERR_WASM_EXPORT',
        'the component does not export wasi:http/incoming-handler@0.2.x or wasi:http/handler@0.3.x, so it cannot serve requests',
      )
    }
    const { maxRequestBodyBytes, onError, ...instanceOptions } = options
    const limits = { maxRequestBodyBytes: parseBodyLimit(maxRequestBodyBytes), onError }
    if (onError !== undefined && typeof onError !== 'function') {
      throw codedError(TypeError, 'ERR_INVALID_ARG_TYPE', 'options.onError must be a function')
    }
    if (instanceOptions.wasi === undefined) instanceOptions.wasi = {}
    const next = this.#requestInstances(instanceOptions)
    return (req, res) => {
      if (
        limits.maxRequestBodyBytes !== undefined &&
        Number(rawHeader(req.rawHeaders, 'content-length') ?? 0) > limits.maxRequestBodyBytes
      ) {
        replyError(res, 413, 'request body too large\n')
        req.resume()
        return
      }
      let parts
      try {
        parts = next()
      } catch (error) {
        onError?.(error, req)
        replyError(res, 500, 'the guest could not be instantiated\n')
        req.resume()
        return
      }
      serve(parts, req, res, limits)
    }
  }

  /**
   * What serves each request of `httpHandler(options)`: without JS imports or output callbacks,
   * an exchange whose instance is made, run and dropped off the JS thread; otherwise a full
   * instance. Bad options throw here, not on the first request.
   */
  #requestInstances(options) {
    const imports = options.imports
    const hasImports = imports !== undefined && imports !== null && Object.keys(imports).length > 0
    const wasi = options.wasi
    const streamsOutput =
      wasi !== null &&
      typeof wasi === 'object' &&
      (typeof wasi.stdout === 'function' || typeof wasi.stderr === 'function')
    if (hasImports || streamsOutput || Object.keys(this.#imports).some((name) => !name.startsWith('wasi:'))) {
      this.#instantiate(options).instance.dispose()
      return () => this.#instantiate(options)
    }
    const { http: httpOption, imports: _, ...native } = options
    const http = parseHttpOption(httpOption)
    const service = this.#core.httpService(native, http.allowedHosts)
    return () => {
      const exchange = service.exchange()
      return { instance: exchange, core: exchange, link: new HttpLink(exchange, http.fetch) }
    }
  }
}

module.exports = { Component, ComponentError, ComponentInstance, ComponentResource }
