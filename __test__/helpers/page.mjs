// A browser-like page for running a tutorial's published demo unchanged: its classic scripts (such
// as wasm_exec.js) and its ES module entry run in a vm context whose global `WebAssembly` is a
// createWebAssembly() namespace (or Node's own, as a control), with `fetch` serving the demo's
// own files, a `document` with a body, and `/demo-util/domConsole.js` and
// `/demo-util/instantiateWasm.js` (the tutorial site's shared logger and loader) provided by the
// page.
//
//   node --experimental-vm-modules page.mjs '<json>'
//   { "site": dir, "scripts": ["wasm_exec.js"], "module": "index.js", "lines": 4,
//     "webAssembly": "sandbox" | "node", "limits": { maxMemoryBytes, timeoutMs, fuel },
//     "probe": "pkg/glue.js" }
//
// Prints one JSON line: what the page logged, its warnings and errors, and how many times it
// instantiated through the namespace it was given.
import { readFileSync } from 'node:fs'
import { join, normalize } from 'node:path'
import vm from 'node:vm'

import { createWebAssembly } from 'wasm-memory-sandbox'

const options = JSON.parse(process.argv[2])
const origin = 'http://localhost'
const pageUrl = `${origin}/index.html`

const log = []
const warnings = []
const errors = []
const record =
  (list) =>
  (...values) =>
    list.push(values.map((value) => (value instanceof Error ? String(value) : value)))
const pageConsole = { log: record(log), info: record(log), warn: record(warnings), error: record(errors), debug() {} }

// The namespace the page gets as WebAssembly, with its entry points counted.
const WebAssemblyNamespace = options.webAssembly === 'node' ? globalThis.WebAssembly : createWebAssembly(options.limits)
const namespace = Object.create(WebAssemblyNamespace)
const used = {}
for (const name of ['compile', 'instantiate', 'compileStreaming', 'instantiateStreaming']) {
  namespace[name] = (...args) => {
    used[name] = (used[name] ?? 0) + 1
    return WebAssemblyNamespace[name](...args)
  }
}

/** The file behind a URL of this page's origin; undefined when there is none. */
function siteFile(url) {
  const { origin: urlOrigin, pathname } = new URL(url)
  if (urlOrigin !== origin) return undefined
  const path = join(options.site, normalize(decodeURIComponent(pathname)))
  if (!path.startsWith(options.site)) return undefined
  try {
    return readFileSync(path)
  } catch {
    return undefined
  }
}

const contentTypes = { '.wasm': 'application/wasm', '.js': 'text/javascript', '.html': 'text/html' }
async function fetchFromSite(resource) {
  const url = new URL(resource instanceof Request ? resource.url : String(resource), pageUrl).href
  const body = siteFile(url)
  if (body === undefined) return new Response('not found', { status: 404 })
  const type = contentTypes[url.slice(url.lastIndexOf('.'))] ?? 'application/octet-stream'
  return new Response(body, { status: 200, headers: { 'Content-Type': type } })
}

// A document whose elements keep their text: enough for a demo that prints into a <pre>.
function element(tagName) {
  return {
    tagName: tagName.toUpperCase(),
    style: '',
    textContent: '',
    children: [],
    appendChild(child) {
      this.children.push(child)
      return child
    },
  }
}
const document = { body: element('body'), createElement: element }

const context = vm.createContext({
  WebAssembly: namespace,
  console: pageConsole,
  fetch: fetchFromSite,
  Request,
  Response,
  Headers,
  URL,
  TextEncoder,
  TextDecoder,
  crypto: globalThis.crypto,
  performance,
  setTimeout,
  clearTimeout,
  setInterval,
  clearInterval,
  queueMicrotask,
  document,
})
vm.runInContext('globalThis.window = globalThis; globalThis.self = globalThis', context)

process.on('unhandledRejection', (reason) => errors.push([describe(reason)]))
function describe(error) {
  if (!error || typeof error !== 'object') return String(error)
  return { name: error.name, message: error.message, code: error.code, fromNamespace: isNamespaceError(error) }
}
function isNamespaceError(error) {
  return ['CompileError', 'LinkError', 'RuntimeError'].some((name) => error instanceof WebAssemblyNamespace[name])
}

// The tutorial site's shared helpers, as the page provides them: its logger, and its loader
// (fetch the module and instantiate it through the global WebAssembly, streaming when it can).
const pageUtilities = {
  '/demo-util/instantiateWasm.js': `
    export async function wasmBrowserInstantiate(url, importObject) {
      importObject ??= { env: { abort: () => console.log('Abort!') } }
      if (WebAssembly.instantiateStreaming) return WebAssembly.instantiateStreaming(fetch(url), importObject)
      const bytes = await (await fetch(url)).arrayBuffer()
      return WebAssembly.instantiate(bytes, importObject)
    }`,
  '/demo-util/domConsole.js': `
    const consoleElement = document.createElement('pre')
    document.body.appendChild(consoleElement)
    export function domConsoleLog(value) {
      console.log(value)
      consoleElement.textContent += String(value) + '\\n'
    }`,
}

const modules = new Map()
function loadModule(url) {
  if (modules.has(url)) return modules.get(url)
  const { pathname } = new URL(url)
  const source = siteFile(url)?.toString('utf8') ?? pageUtilities[pathname]
  if (source === undefined) throw new Error(`the page has no module ${url}`)
  const module = new vm.SourceTextModule(source, {
    identifier: url,
    context,
    initializeImportMeta(meta) {
      meta.url = url
    },
  })
  modules.set(url, module)
  return module
}

for (const script of options.scripts ?? []) {
  const url = new URL(script, pageUrl).href
  vm.runInContext(siteFile(url).toString('utf8'), context, { filename: url })
}
try {
  const entry = loadModule(new URL(options.module, pageUrl).href)
  await entry.link((specifier, referencingModule) => loadModule(new URL(specifier, referencingModule.identifier).href))
  await entry.evaluate()
} catch (error) {
  errors.push([describe(error)])
}

// The demo runs on after its module evaluates (its async main is not awaited): wait for its
// lines, an error, or 30 s.
const deadline = Date.now() + 30_000
while (log.length < options.lines && errors.length === 0 && Date.now() < deadline) {
  await new Promise((resolve) => setTimeout(resolve, 5))
}
const pre = document.body.children[0]
// `probe`: a wasm-bindgen glue module of the page, whose default export (its init, once done)
// gives the instance's exports: whose Memory is it?
let probe
if (options.probe && errors.length === 0) {
  const exports = await loadModule(new URL(options.probe, pageUrl).href).namespace.default()
  probe = { memoryFromNamespace: exports.memory instanceof WebAssemblyNamespace.Memory }
}
console.log(JSON.stringify({ log, warnings, errors, used, domConsole: pre?.textContent, probe }))
