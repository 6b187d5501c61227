// The reference the Component specs compare against: the same component run by `jco transpile`
// (@bytecodealliance/jco, default value mapping) on V8, with @bytecodealliance/preview2-shim for
// its WASI imports.
import { transpile } from '@bytecodealliance/jco'
import { WASIShim } from '@bytecodealliance/preview2-shim/instantiation'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { pathToFileURL } from 'node:url'

/** Directories of transpiled glue not yet removed; removed at the latest when the process exits. */
const liveDirectories = new Set()
process.once('exit', () => {
  for (const directory of liveDirectories) rmSync(directory, { recursive: true, force: true })
})

function removeDirectory(directory) {
  if (!liveDirectories.delete(directory)) return
  rmSync(directory, { recursive: true, force: true })
}

/** What `wasi:cli/exit` throws here instead of ending the process (preview2-shim calls process.exit). */
export class JcoExit extends Error {
  constructor(code) {
    super(`the component exited with code ${code}`)
    this.name = 'JcoExit'
    this.code = code
  }
}

const withoutVersion = (name) => name.replace(/@[^@/]*$/, '')
const camelCase = (name) => name.replace(/-([a-z0-9])/g, (_, c) => c.toUpperCase())

/**
 * Transpiles `bytes` (a component binary) with jco, instantiates it on V8 and returns its exports.
 *
 * `imports` take the addon's form: interfaces keyed by name with or without `@version`, world-level
 * function imports as functions keyed by their WIT or camelCase name. WASI interfaces come from
 * preview2-shim (`new WASIShim(wasi)`, e.g. `{ sandbox: { args, env, preopens } }`) unless given in
 * `imports`; `wasi:cli/exit` throws a JcoExit instead of ending the process.
 *
 * @returns {Promise<{ exports: any, close(): void, dts: Record<string, string>, files: Record<string, Uint8Array>, directory: string }>}
 */
export async function jcoInstantiate(bytes, imports = {}, { name = 'component', wasi } = {}) {
  const { files, imports: importNames } = await transpile(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes), {
    name,
    instantiation: 'async',
    quiet: true,
  })

  // The import object in the form the generated instantiate() reads: interfaces by unversioned
  // name, world-level functions as `{ default: fn }` under their WIT name.
  const importObject = {}
  const wasiImports = new WASIShim(wasi).getImportObject()
  wasiImports['wasi:cli/exit'] = {
    exit: (status) => {
      throw new JcoExit(status.tag === 'err' ? 1 : 0)
    },
    exitWithCode: (code) => {
      throw new JcoExit(code)
    },
  }
  for (const importName of importNames) {
    if (importName.startsWith('wasi:')) importObject[importName] = wasiImports[importName]
  }
  for (const [key, value] of Object.entries(imports)) {
    if (key.includes(':')) {
      importObject[withoutVersion(key)] = value
    } else {
      const witName = importNames.find((name) => name === key || camelCase(name) === key) ?? key
      importObject[witName] = typeof value === 'function' ? { default: value } : value
    }
  }
  // Interfaces that only define types are imports too; jco wants an object for them.
  for (const importName of importNames) importObject[importName] ??= {}

  const dts = {}
  for (const [file, content] of Object.entries(files)) {
    if (file.endsWith('.d.ts')) dts[file] = new TextDecoder().decode(content)
  }

  const directory = mkdtempSync(join(tmpdir(), 'wasm-memory-sandbox-jco-'))
  liveDirectories.add(directory)
  try {
    for (const [file, content] of Object.entries(files)) {
      mkdirSync(dirname(join(directory, file)), { recursive: true })
      writeFileSync(join(directory, file), content)
    }
    const glue = await import(pathToFileURL(join(directory, `${name}.js`)).href)
    const exports = await glue.instantiate((path) => WebAssembly.compile(files[path]), importObject)
    return { exports, close: () => removeDirectory(directory), dts, files, directory }
  } finally {
    // The glue is loaded and the core modules are compiled from memory: nothing reads the files again.
    removeDirectory(directory)
  }
}
