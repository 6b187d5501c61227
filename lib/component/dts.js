'use strict'
// componentDts(): the text of a `.d.ts` typing a component's exports and imports, from the
// description `component.exports` / `component.imports` give (see index.d.ts, `ComponentItems`).
//
// Values are typed as they cross (the mapping of `jco transpile` with its default options), and
// names follow jco's TypeScript generator (crates/js-component-bindgen/src/ts_bindgen.rs): named
// types in PascalCase (`export interface Point`, `export type Color = 'red' | 'hot-pink'`, a variant
// as a union of one interface per case), functions, parameters, record fields and flags in
// camelCase (a parameter named like a reserved word gets a trailing `_`), an option that holds an
// option as `Option<T>`, a nested result as `Result<T, E>`, and a result returned at the top of a
// function as its ok type (the err case throws a `ComponentError`). Unlike jco's output, the
// result is one self-contained file: every name is declared once at the top level, renamed with
// its interface's name (or a number) only when two different declarations would share it.

const RESERVED_WORDS = new Set([
  'await',
  'break',
  'case',
  'catch',
  'class',
  'const',
  'continue',
  'debugger',
  'default',
  'delete',
  'do',
  'else',
  'enum',
  'eval',
  'export',
  'extends',
  'false',
  'finally',
  'for',
  'function',
  'if',
  'implements',
  'import',
  'in',
  'instanceof',
  'interface',
  'let',
  'new',
  'null',
  'package',
  'private',
  'protected',
  'public',
  'return',
  'static',
  'super',
  'switch',
  'this',
  'throw',
  'true',
  'try',
  'typeof',
  'var',
  'void',
  'while',
  'with',
  'yield',
])

/**
 * Top-level names the file uses itself, or that would shadow a global type it refers to (a WIT
 * record named `array` must not become `interface Array`).
 */
const TAKEN_NAMES = [
  'ComponentExports',
  'ComponentImports',
  'Option',
  'Result',
  'Array',
  'AsyncIterable',
  'BigInt',
  'BigInt64Array',
  'BigUint64Array',
  'Boolean',
  'Error',
  'Float32Array',
  'Float64Array',
  'Function',
  'Int16Array',
  'Int32Array',
  'Int8Array',
  'Map',
  'Number',
  'Object',
  'Promise',
  'PromiseLike',
  'Record',
  'String',
  'Symbol',
  'Uint16Array',
  'Uint32Array',
  'Uint8Array',
]

const PRIMITIVES = {
  bool: 'boolean',
  s8: 'number',
  u8: 'number',
  s16: 'number',
  u16: 'number',
  s32: 'number',
  u32: 'number',
  s64: 'bigint',
  u64: 'bigint',
  f32: 'number',
  f64: 'number',
  char: 'string',
  string: 'string',
  // As jco types it (its runtime hands out a number).
  'error-context': 'number',
}

const TYPED_ARRAYS = {
  s8: 'Int8Array',
  u8: 'Uint8Array',
  s16: 'Int16Array',
  u16: 'Uint16Array',
  s32: 'Int32Array',
  u32: 'Uint32Array',
  s64: 'BigInt64Array',
  u64: 'BigUint64Array',
  f32: 'Float32Array',
  f64: 'Float64Array',
}

const OPTION_ALIAS = "export type Option<T> = { tag: 'none' } | { tag: 'some'; val: T }"
const RESULT_ALIAS = "export type Result<T, E> = { tag: 'ok'; val: T } | { tag: 'err'; val: E }"

/** How many ways `ComponentImports` may be written (keys with or without version) before it stops listing them all. */
const MAX_IMPORT_ALTERNATIVES = 256

/** The words of a name, split as heck (jco's case converter) splits them. */
function words(name) {
  const result = []
  for (const part of String(name).split(/[^\p{L}\p{N}]+/u)) {
    let start = 0
    for (let i = 0; i < part.length; i++) {
      const c = part[i]
      const next = part[i + 1]
      if (next === undefined) break
      const lower = c !== c.toUpperCase() && c === c.toLowerCase()
      const upper = c !== c.toLowerCase() && c === c.toUpperCase()
      const nextUpper = next !== next.toLowerCase() && next === next.toUpperCase()
      const nextLower = next !== next.toUpperCase() && next === next.toLowerCase()
      const prev = part[i - 1]
      const prevUpper = prev !== undefined && prev !== prev.toLowerCase() && prev === prev.toUpperCase()
      if (lower && nextUpper) {
        result.push(part.slice(start, i + 1))
        start = i + 1
      } else if (upper && prevUpper && nextLower && i > start) {
        result.push(part.slice(start, i))
        start = i
      }
    }
    if (start < part.length) result.push(part.slice(start))
  }
  return result.filter((word) => word.length > 0)
}

function capitalize(word) {
  return word.charAt(0).toUpperCase() + word.slice(1).toLowerCase()
}

/** `hot-pink` -> `HotPink`, as jco names types and classes. */
function pascalCase(name) {
  return words(name).map(capitalize).join('')
}

/** `echo-u8` -> `echoU8`, as jco names functions, parameters, fields and flags. */
function camelCase(name) {
  const [first = '', ...rest] = words(name)
  return first.toLowerCase() + rest.map(capitalize).join('')
}

function quoteString(text) {
  return `'${String(text).replace(/[\\']/g, '\\$&').replace(/\n/g, '\\n')}'`
}

/** A property key: bare when it is an identifier name (reserved words are fine as keys), quoted otherwise. */
function propertyKey(name) {
  return /^[A-Za-z_$][\w$]*$/.test(name) ? name : quoteString(name)
}

/** A parameter name: camelCase, with `_` after a reserved word, as jco writes it. */
function parameterName(name) {
  let result = camelCase(name) || 'arg'
  if (!/^[A-Za-z_$]/.test(result)) result = `_${result}`
  return RESERVED_WORDS.has(result) ? `${result}_` : result
}

/** The interface name without package and version, as jco names a module file: `demo:types/api@0.1.0` -> `demo-types-api`. */
function interfaceGoalName(name) {
  const at = name.indexOf('@')
  return (at === -1 ? name : name.slice(0, at)).replace(/[/:]/g, '-')
}

function withoutVersion(name) {
  const at = name.indexOf('@')
  return at === -1 ? name : name.slice(0, at)
}

/** Text for a JSDoc comment (no `*\/` can end it early). */
function docText(text) {
  return String(text).replace(/\*\//g, '*\\/')
}

function indent(lines, prefix = '  ') {
  return lines.map((line) => (line ? prefix + line : line))
}

function docComment(lines) {
  const text = lines.flatMap((line) => docText(line).split('\n'))
  if (text.length === 1) return [`/** ${text[0]} */`]
  return ['/**', ...text.map((line) => (line ? ` * ${line}` : ' *')), ' */']
}

/** How the WIT text writes a type, for the documentation comments. */
function witType(type) {
  if (!type || typeof type !== 'object') return '_'
  if (type.name && type.kind !== 'own' && type.kind !== 'borrow') return type.name
  switch (type.kind) {
    case 'list':
      return `list<${witType(type.element)}>`
    case 'option':
      return `option<${witType(type.type)}>`
    case 'result':
      if (!type.ok && !type.err) return 'result'
      if (!type.err) return `result<${witType(type.ok)}>`
      return `result<${type.ok ? witType(type.ok) : '_'}, ${witType(type.err)}>`
    case 'tuple':
      return `tuple<${(type.elements || []).map(witType).join(', ')}>`
    case 'record':
      return `record { ${(type.fields || []).map((field) => `${field.name}: ${witType(field.type)}`).join(', ')} }`
    case 'variant':
      return `variant { ${(type.cases || [])
        .map((c) => (c.type ? `${c.name}(${witType(c.type)})` : c.name))
        .join(', ')} }`
    case 'enum':
      return `enum { ${(type.cases || []).join(', ')} }`
    case 'flags':
      return `flags { ${(type.flags || []).join(', ')} }`
    case 'own':
      return type.resource
    case 'borrow':
      return `borrow<${type.resource}>`
    case 'future':
    case 'stream':
      return type.type ? `${type.kind}<${witType(type.type)}>` : type.kind
    default:
      return type.kind
  }
}

/** The item name of a function: `[method]counter.get-value` -> `get-value`. */
function itemName(fn) {
  const name = String(fn.name)
  const match = /^\[[a-z-]+\][^.]*\.(.*)$/.exec(name)
  if (match) return match[1]
  if (name.startsWith('[constructor]')) return 'constructor'
  return name
}

/** Whether a WIT type holds a stream or a future. */
function holdsTransmits(type) {
  if (!type || typeof type !== 'object') return false
  if (type.kind === 'stream' || type.kind === 'future') return true
  return [type.type, type.ok, type.err, ...(type.fields || []), ...(type.types || []), ...(type.cases || [])].some(
    (inner) => inner && holdsTransmits(inner.kind ? inner : inner.type),
  )
}

/** Whether a function passes a stream or a future (it is then called asynchronously). */
function passesTransmits(fn) {
  return (fn.params || []).some((param) => holdsTransmits(param.type)) || holdsTransmits(fn.result)
}

function witSignature(fn, role) {
  const params = (fn.params || []).slice(role === 'method' ? 1 : 0)
  const list = params.map((param) => `${param.name}: ${witType(param.type)}`).join(', ')
  if (role === 'constructor') return `constructor(${list})`
  const result = fn.result ? ` -> ${witType(fn.result)}` : ''
  const kind = `${role === 'static' ? 'static ' : ''}${fn.async ? 'async ' : ''}func`
  return `${itemName(fn)}: ${kind}(${list})${result}`
}

/** Whether jco writes `option<T>` of this `T` as `Option<T>` (an option of an option that can be undefined). */
function nullable(type) {
  return Boolean(type) && type.kind === 'option' && !nullable(type.type)
}

function hasOwn(object, key) {
  return object != null && Object.prototype.hasOwnProperty.call(object, key)
}

class Names {
  constructor() {
    /** Top-level name -> signature of what it declares. */
    this.claimed = new Map()
    for (const name of TAKEN_NAMES) this.claimed.set(name, null)
  }

  /**
   * The first of `candidates` free or already declaring `signature` (then `found` is true), else
   * the first candidate with the smallest number that makes it free.
   */
  claim(candidates, signature) {
    const list = candidates.filter(Boolean).map((name) => (/^[A-Za-z_$]/.test(name) ? name : `T${name}`))
    for (const name of list) {
      if (!this.claimed.has(name)) {
        this.claimed.set(name, signature)
        return { name, found: false }
      }
      if (signature !== null && this.claimed.get(name) === signature) return { name, found: true }
    }
    const base = list[0] || 'Type'
    for (let n = 2; ; n++) {
      const name = `${base}${n}`
      if (!this.claimed.has(name)) {
        this.claimed.set(name, signature)
        return { name, found: false }
      }
      if (signature !== null && this.claimed.get(name) === signature) return { name, found: true }
    }
  }
}

class DtsWriter {
  constructor(description, name) {
    this.name = name
    this.names = new Names()
    this.exportsItems = Object.entries((description && description.exports) || {})
    this.importsItems = Object.entries((description && description.imports) || {})
    /** Top-level declarations, in the order written: [section, lines]. */
    this.sections = { interfaces: [], classes: [], types: [] }
    this.needsOption = false
    this.needsResult = false
    /** Every interface, with what it needs while rendering. */
    this.contexts = []
    for (const [direction, items] of [
      ['export', this.exportsItems],
      ['import', this.importsItems],
    ]) {
      for (const [key, item] of items) {
        if (!item || item.kind !== 'interface') continue
        const fullName = String(item.name || key)
        this.contexts.push({
          direction,
          item,
          fullName,
          prefix: pascalCase(interfaceGoalName(fullName)),
          classes: new Map(),
        })
      }
    }
    this.worldContexts = {
      export: { direction: 'export', item: null, fullName: 'world', prefix: '', classes: new Map() },
      import: { direction: 'import', item: null, fullName: 'world', prefix: '', classes: new Map() },
    }
  }

  /** The class name of resource `name` seen from `context`, declaring the class the first time. */
  resourceClass(name, context) {
    const order = [
      context,
      ...this.contexts.filter((other) => other !== context && other.direction === context.direction),
      ...this.contexts.filter((other) => other.direction !== context.direction),
    ]
    for (const owner of order) {
      if (!owner.item) continue
      const resource = (owner.item.resources || []).find((candidate) => candidate.name === name)
      if (resource) return this.declareClass(resource, owner)
    }
    return 'unknown'
  }

  /** Declares the class of an exported resource (disposable) or of an imported one (implemented in JS). */
  declareClass(resource, context) {
    if (context.classes.has(resource.name)) return context.classes.get(resource.name)
    const base = resource.jsName || pascalCase(resource.name)
    const candidates =
      context.direction === 'export'
        ? [base, `${context.prefix}${base}`]
        : [base, `${base}Import`, `${context.prefix}${base}Import`]
    // Claimed before its members are rendered, so that methods taking or returning it find it.
    const { name } = this.names.claim(candidates, null)
    context.classes.set(resource.name, name)
    const exported = context.direction === 'export'
    const members = []
    const ctor = hasOwn(resource, 'constructor') && resource.constructor && typeof resource.constructor === 'object'
    if (ctor) {
      const fn = resource.constructor
      members.push(...docComment([`\`${witSignature(fn, 'constructor')}\``]))
      members.push(`constructor(${this.params(fn.params || [], context)})`)
    } else if (exported) {
      members.push(...docComment(['The guest makes these; this type has no public constructor.']))
      members.push('private constructor()')
    } else {
      members.push(
        ...docComment(['The guest has no constructor for this resource: the host makes these, with any arguments.']),
      )
      members.push('constructor(...args: any[])')
    }
    for (const fn of resource.methods || []) members.push(...this.functionMember(fn, context, 'method'))
    for (const fn of resource.statics || []) members.push(...this.functionMember(fn, context, 'static'))
    const lines = []
    if (exported) {
      lines.push(
        ...docComment([
          `The resource \`${resource.name}\` of \`${context.fullName}\`: each object owns a handle to one of the guest's`,
          'resources, released by `[Symbol.dispose]()` (or when the object is garbage-collected).',
        ]),
      )
      members.push(...docComment(["Drops the handle: the guest's resource is released, and the object is unusable."]))
      members.push('[Symbol.dispose](): void')
    } else {
      lines.push(
        ...docComment([
          `The resource \`${resource.name}\` of the imported \`${context.fullName}\`, implemented by a JS class: the guest`,
          'holds its instances by handle, and calls their methods.',
        ]),
      )
    }
    lines.push(`export declare class ${name} {`, ...indent(members), '}')
    this.sections.classes.push(lines)
    return name
  }

  /** A named type's top-level name, declaring it the first time. */
  declareNamed(type, context) {
    const base = pascalCase(type.name) || 'Type'
    const candidates = [base, `${context.prefix}${base}`]
    const doc = `The WIT type \`${type.name}\`${context.item ? ` of \`${context.fullName}\`` : ''}.`
    switch (type.kind) {
      case 'record': {
        const fields = (type.fields || []).map((field) => this.field(field, context))
        const signature = `record:{${fields.join(';')}}`
        const { name, found } = this.names.claim(candidates, signature)
        if (!found) {
          this.sections.types.push([
            ...docComment([doc]),
            `export interface ${name} {`,
            ...indent(
              (type.fields || []).flatMap((field, i) => [
                ...docComment([`\`${field.name}: ${witType(field.type)}\``]),
                fields[i],
              ]),
            ),
            '}',
          ])
        }
        return name
      }
      case 'flags': {
        const flags = (type.flags || []).map((flag) => `${propertyKey(camelCase(flag))}?: boolean`)
        const { name, found } = this.names.claim(candidates, `flags:{${flags.join(';')}}`)
        if (!found) {
          this.sections.types.push([
            ...docComment([doc, 'An object of booleans: a flag absent or false is not set.']),
            `export interface ${name} {`,
            ...indent(flags),
            '}',
          ])
        }
        return name
      }
      case 'variant': {
        const cases = (type.cases || []).map((c) => ({ name: c.name, val: c.type ? this.ts(c.type, context) : null }))
        const signature = `variant:${cases.map((c) => `${c.name}(${c.val})`).join('|')}`
        const { name, found } = this.names.claim(candidates, signature)
        if (!found) {
          const caseNames = cases.map(
            (c) => this.names.claim([pascalCase(`${name}-${c.name}`)], `${signature}#${c.name}`).name,
          )
          const lines = [
            ...docComment([`${doc} A variant: \`tag\` is the case's name, \`val\` its payload.`]),
            `export type ${name} = ${caseNames.length ? caseNames.join(' | ') : 'never'}`,
          ]
          cases.forEach((c, i) => {
            lines.push(`export interface ${caseNames[i]} {`, `  tag: ${quoteString(c.name)}`)
            if (c.val !== null) lines.push(`  val: ${c.val}`)
            lines.push('}')
          })
          this.sections.types.push(lines)
        }
        return name
      }
      case 'enum': {
        const body = (type.cases || []).map(quoteString).join(' | ') || 'never'
        const { name, found } = this.names.claim(candidates, `enum:${body}`)
        if (!found) {
          const cases = (type.cases || []).map((c) => `\`${quoteString(c)}\``).join(', ')
          this.sections.types.push([
            ...docComment([`${doc} An enum: the name of its case (${cases}).`]),
            `export type ${name} = ${body}`,
          ])
        }
        return name
      }
      default: {
        const body = this.ts({ ...type, name: undefined }, context)
        const { name, found } = this.names.claim(candidates, `alias:${body}`)
        if (!found)
          this.sections.types.push([
            ...docComment([`${doc} \`${witType({ ...type, name: undefined })}\``]),
            `export type ${name} = ${body}`,
          ])
        return name
      }
    }
  }

  field(field, context) {
    const key = propertyKey(camelCase(field.name))
    if (nullable(field.type)) return `${key}?: ${this.ts(field.type.type, context)} | undefined`
    return `${key}: ${this.ts(field.type, context)}`
  }

  /** The TypeScript type of a value of WIT type `type`, seen from `context`. */
  ts(type, context) {
    if (!type || typeof type !== 'object') return 'unknown'
    if (type.name && type.kind !== 'own' && type.kind !== 'borrow') return this.declareNamed(type, context)
    if (hasOwn(PRIMITIVES, type.kind)) return PRIMITIVES[type.kind]
    switch (type.kind) {
      case 'list': {
        const element = type.element || {}
        if (hasOwn(TYPED_ARRAYS, element.kind)) return TYPED_ARRAYS[element.kind]
        return `Array<${this.ts(element, context)}>`
      }
      case 'tuple':
        return `[${(type.elements || []).map((element) => this.ts(element, context)).join(', ')}]`
      case 'option':
        if (nullable(type.type)) {
          this.needsOption = true
          return `Option<${this.ts(type.type, context)}>`
        }
        return `${this.ts(type.type, context)} | undefined`
      case 'result':
        this.needsResult = true
        return `Result<${this.optional(type.ok, context)}, ${this.optional(type.err, context)}>`
      case 'record':
        return `{ ${(type.fields || []).map((field) => this.field(field, context)).join('; ')} }`
      case 'flags':
        return `{ ${(type.flags || []).map((flag) => `${propertyKey(camelCase(flag))}?: boolean`).join('; ')} }`
      case 'variant':
        return (
          (type.cases || [])
            .map((c) =>
              c.type
                ? `{ tag: ${quoteString(c.name)}; val: ${this.ts(c.type, context)} }`
                : `{ tag: ${quoteString(c.name)} }`,
            )
            .join(' | ') || 'never'
        )
      case 'enum':
        return (type.cases || []).map(quoteString).join(' | ') || 'never'
      case 'own':
      case 'borrow':
        return this.resourceClass(type.resource, context)
      case 'future':
        return `Promise<${this.optional(type.type, context)}>`
      case 'stream':
        // A stream JS receives is a ReadableStream; only stream<u8> crosses (of Uint8Array chunks).
        return type.type?.kind === 'u8' ? 'ReadableStream<Uint8Array>' : 'never'
      default:
        return 'unknown'
    }
  }

  optional(type, context) {
    return type ? this.ts(type, context) : 'void'
  }

  /** A parameter list: `name: Type, ...`. */
  params(params, context) {
    // JS gives an export's arguments and an import's result: a stream or future it gives at the
    // top level may be any byte source, or a value or Promise.
    const given = context.direction === 'export'
    return params
      .map(
        (param) =>
          `${parameterName(param.name)}: ${given ? this.given(param.type, context) : this.ts(param.type, context)}`,
      )
      .join(', ')
  }

  /** The type of a value JS gives: as `ts`, with what a top-level stream or future accepts. */
  given(type, context) {
    if (type?.kind === 'stream' && type.type?.kind === 'u8')
      return 'ReadableStream<Uint8Array> | AsyncIterable<Uint8Array | string> | Iterable<Uint8Array | string> | Uint8Array'
    if (type?.kind === 'future') {
      const payload = this.optional(type.type, context)
      return `${payload} | PromiseLike<${payload}>`
    }
    return this.ts(type, context)
  }

  /** The TypeScript result of a function: a top-level result is its ok type (err throws). */
  result(fn, context) {
    let result
    const ts = (type) => (context.direction === 'export' ? this.ts(type, context) : this.given(type, context))
    if (!fn.result) result = 'void'
    else if (fn.result.kind === 'result') result = fn.result.ok ? ts(fn.result.ok) : 'void'
    else result = ts(fn.result)
    // An async function, or an export passing streams or futures, is called on the pool: a
    // Promise (a future's Promise as the value flattens into it).
    return fn.async || (context.direction === 'export' && passesTransmits(fn)) ? `Promise<${result}>` : result
  }

  functionDoc(fn, context, role) {
    const lines = [`\`${witSignature(fn, role)}\``]
    if (fn.result && fn.result.kind === 'result') {
      const err = fn.result.err
        ? `\`${this.ts(fn.result.err, context)}\` (WIT \`${witType(fn.result.err)}\`)`
        : '`undefined`'
      if (context.direction === 'export') {
        lines.push('', `@throws {ComponentError} when the guest returns \`err\`: its \`payload\` is the error, ${err}.`)
      } else {
        lines.push(
          '',
          `Returns \`ok\`'s value; to return \`err\`, throw a \`ComponentError\` whose \`payload\` is ${err}.`,
        )
      }
    }
    return docComment(lines)
  }

  /** A function as a member of an interface object type or a class. */
  functionMember(fn, context, role) {
    const jsName = role === 'constructor' ? 'constructor' : fn.jsName || camelCase(itemName(fn))
    const params = (fn.params || []).slice(role === 'method' ? 1 : 0)
    const prefix = role === 'static' ? 'static ' : ''
    return [
      ...this.functionDoc(fn, context, role),
      `${prefix}${propertyKey(jsName)}(${this.params(params, context)}): ${this.result(fn, context)}`,
    ]
  }

  /** The object type of an interface (its functions and resource classes); its name. */
  interfaceType(context) {
    const { item, direction } = context
    const base = context.prefix || pascalCase(context.fullName) || 'Interface'
    const { name } = this.names.claim(direction === 'export' ? [base] : [`${base}Import`], null)
    const members = []
    for (const fn of item.functions || []) members.push(...this.functionMember(fn, context, 'function'))
    for (const resource of item.resources || []) {
      const className = this.declareClass(resource, context)
      const key = resource.jsName || pascalCase(resource.name)
      members.push(
        ...docComment([
          direction === 'export'
            ? `The resource \`${resource.name}\`: a class (\`new\`, static functions, and \`instanceof\`).`
            : `The resource \`${resource.name}\`: a JS class, instances of which the guest holds by handle.`,
        ]),
        `${propertyKey(key)}: typeof ${className}`,
      )
    }
    // The types the interface names, even those no function uses, as jco declares them.
    for (const entry of item.types || []) {
      if (entry && entry.type) this.ts({ ...entry.type, name: entry.type.name || entry.name }, context)
    }
    const doc =
      direction === 'export'
        ? `The exported interface \`${context.fullName}\`.`
        : `The imported interface \`${context.fullName}\`: the JS implementation the component is instantiated with.`
    this.sections.interfaces.push([...docComment([doc]), `export interface ${name} {`, ...indent(members), '}'])
    return name
  }

  exportsType() {
    const members = []
    const keys = new Set()
    const add = (key, lines) => {
      if (keys.has(key)) return
      keys.add(key)
      members.push(...lines)
    }
    // Short names taken twice reach neither interface: they are left out.
    const shortNames = new Map()
    for (const context of this.contexts) {
      if (context.direction !== 'export') continue
      const short = context.item.jsName || camelCase(withoutVersion(context.fullName).split('/').pop())
      shortNames.set(short, (shortNames.get(short) || 0) + 1)
    }
    for (const [key, item] of this.exportsItems) {
      if (item && item.kind === 'function') shortNames.set(item.jsName || camelCase(item.name || key), 2)
    }
    for (const context of this.contexts) {
      if (context.direction !== 'export') continue
      const typeName = this.interfaceType(context)
      const doc = (how) => docComment([`The exported interface \`${context.fullName}\`${how}.`])
      add(context.fullName, [...doc(''), `readonly ${propertyKey(context.fullName)}: ${typeName}`])
      const bare = withoutVersion(context.fullName)
      add(bare, [...doc(', by its name without version'), `readonly ${propertyKey(bare)}: ${typeName}`])
      const short = context.item.jsName || camelCase(bare.split('/').pop())
      if (shortNames.get(short) === 1) {
        add(short, [...doc(', by the short name jco gives it'), `readonly ${propertyKey(short)}: ${typeName}`])
      }
    }
    for (const [key, item] of this.exportsItems) {
      if (!item || item.kind !== 'function') continue
      const jsName = item.jsName || camelCase(item.name || key)
      add(jsName, this.functionMember(item, this.worldContexts.export, 'function'))
    }
    return [
      ...docComment([
        `The exports of an instance of \`${this.name}\` (\`instance.exports\`): its interfaces by full name, by name`,
        'without version and by the short name jco gives them, and its world-level functions.',
      ]),
      'export interface ComponentExports {',
      ...indent(members),
      '}',
    ]
  }

  importsType() {
    /** Each entry: the ways to write one import (one object type per accepted key). */
    const entries = []
    const provided = []
    const typeOnly = []
    for (const context of this.contexts) {
      if (context.direction !== 'import') continue
      const { item, fullName } = context
      if (fullName.startsWith('wasi:')) {
        provided.push(fullName)
        continue
      }
      if (!(item.functions || []).length && !(item.resources || []).length) {
        // Only types (as an interface `use`d by another): nothing to implement.
        for (const entry of item.types || []) {
          if (entry && entry.type) this.ts({ ...entry.type, name: entry.type.name || entry.name }, context)
        }
        typeOnly.push(fullName)
        continue
      }
      const typeName = this.interfaceType(context)
      const keys = [fullName, withoutVersion(fullName)].filter((key, i, all) => all.indexOf(key) === i)
      entries.push(keys.map((key) => `{ ${propertyKey(key)}: ${typeName} }`))
    }
    for (const [key, item] of this.importsItems) {
      if (!item || item.kind !== 'function') continue
      const context = this.worldContexts.import
      const params = this.params(item.params || [], context)
      const signature = `(${params}) => ${this.result(item, context)}`
      const wit = String(item.name || key)
      const keys = [wit, item.jsName || camelCase(wit)].filter((k, i, all) => all.indexOf(k) === i)
      entries.push(keys.map((k) => `{ ${propertyKey(k)}: ${signature} }`))
    }
    const doc = [
      `The imports of \`${this.name}\`, for \`component.instantiate({ imports })\`: interfaces keyed by name with or`,
      'without version, world-level functions by WIT name or camelCase name.',
    ]
    if (provided.length) doc.push('', `The \`wasi\` option provides ${provided.map((n) => `\`${n}\``).join(', ')}.`)
    if (typeOnly.length) {
      doc.push('', `${typeOnly.map((n) => `\`${n}\``).join(', ')} only name types: there is nothing to implement.`)
    }
    let alternatives = 1
    const parts = entries.map((ways) => {
      alternatives *= ways.length
      // Past the bound, TypeScript would expand too many combinations: one way only.
      if (ways.length > 1 && alternatives > MAX_IMPORT_ALTERNATIVES) {
        alternatives /= ways.length
        return ways[0]
      }
      return ways.length === 1 ? ways[0] : `(${ways.join(' | ')})`
    })
    const body = parts.length ? parts : ['{ [name: string]: never }']
    return [
      ...docComment(doc),
      'export type ComponentImports =',
      ...indent(body.map((part, i) => (i ? `& ${part}` : part))),
    ]
  }

  render() {
    const header = [
      `// The types of the WebAssembly component \`${this.name}\` as wasm-memory-sandbox runs it (the value mapping`,
      '// of `jco transpile`), made by `wasm-memory-sandbox types`: do not edit. Use them with',
      "// `Component.fromFile<ComponentExports, ComponentImports>(path)` (from 'wasm-memory-sandbox').",
    ]
    const exportsType = this.exportsType()
    const importsType = this.importsType()
    const blocks = [
      header,
      exportsType,
      importsType,
      ...this.sections.interfaces,
      ...this.sections.classes,
      ...this.sections.types,
    ]
    if (this.needsOption) {
      blocks.push([...docComment(['An `option` of an `option`, which `undefined` alone cannot write.']), OPTION_ALIAS])
    }
    if (this.needsResult)
      blocks.push([...docComment(['A `result` inside a value (not returned at the top).']), RESULT_ALIAS])
    return `${blocks.map((lines) => lines.join('\n')).join('\n\n')}\n`
  }
}

/**
 * The text of a `.d.ts` for a component: `ComponentExports` (the type of `instance.exports`),
 * `ComponentImports` (of the `imports` option), and the interfaces, resource classes and named
 * types they use.
 *
 * @param {{ exports?: object, imports?: object }} description `component.exports` and `component.imports`
 * @param {{ name?: string }} [options] `name`: how the comments call the component
 * @returns {string}
 */
function componentDts(description, { name = 'component' } = {}) {
  if (!description || typeof description !== 'object') {
    throw new TypeError('componentDts(description): description must be { exports, imports }')
  }
  return new DtsWriter(description, String(name)).render()
}

module.exports = { componentDts, camelCase, pascalCase, witType }
