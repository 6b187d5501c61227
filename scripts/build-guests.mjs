// Builds the example guests from source into __test__/guests/build/: AssemblyScript modules
// (npm `assemblyscript`: the example, the benchmark's SHA-256, the tutorial's guest with the glue
// asc generates, and the WASI ones with `@assemblyscript/wasi-shim`), Rust modules (cargo,
// wasm32-unknown-unknown and wasm32-wasip1) and components (examples/components: Rust for
// wasm32-wasip2 with wit-bindgen, and JavaScript through npm `@bytecodealliance/componentize-js`).
// A guest whose output is newer than every source file is left as it is. Names given as arguments
// (`node scripts/build-guests.mjs greeter.js.component.wasm`) build only those guests.
import { spawnSync } from 'node:child_process'
import { copyFileSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { dirname, join, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = dirname(dirname(fileURLToPath(import.meta.url)))
/** The AssemblyScript compiler (npm `assemblyscript`), run with this Node. */
const asc = join(root, 'node_modules', 'assemblyscript', 'bin', 'asc.js')
const outputDirectory = join(root, '__test__', 'guests', 'build')
mkdirSync(outputDirectory, { recursive: true })

function newestSource(directory) {
  let newest = 0
  for (const entry of readdirSync(directory, { withFileTypes: true })) {
    if (entry.name === 'target' || entry.name === 'build') continue
    const path = join(directory, entry.name)
    newest = Math.max(newest, entry.isDirectory() ? newestSource(path) : statSync(path).mtimeMs)
  }
  return newest
}

function isFresh(output, sourceDirectories) {
  try {
    return statSync(output).mtimeMs > Math.max(...sourceDirectories.map(newestSource))
  } catch {
    return false
  }
}

/** The environment for a guest's own cargo build: none of the addon build's settings leak in. */
function cargoEnv() {
  const env = { ...process.env }
  for (const name of ['RUSTFLAGS', 'CARGO_ENCODED_RUSTFLAGS', 'CARGO_TARGET_DIR', 'CARGO_BUILD_TARGET'])
    delete env[name]
  return env
}

function run(command, args, options) {
  const result = spawnSync(command, args, { stdio: 'inherit', ...options })
  if (result.status !== 0) {
    console.error(
      `build-guests: \`${command} ${args.join(' ')}\` failed (${result.error?.message ?? `exit ${result.status}`})`,
    )
    process.exit(1)
  }
}

/**
 * A guest built by cargo from the crate in `source` for `target`, copied from its `artifact`
 * (the file cargo writes, without `.wasm`); `inputs` are other directories it is built from.
 * With `relativeDebugPaths`, its debug info names its files from the repository's root
 * (examples/guests/rust-observe/src/lib.rs), not by this machine's absolute paths.
 */
function cargoGuest({ name, source, target, artifact, inputs, relativeDebugPaths }) {
  const args = ['build', '--release', '--locked', '--target', target]
  if (relativeDebugPaths) {
    const remap = `--remap-path-prefix=${source}=${relative(root, source).split(sep).join('/')}`
    // Cargo appends an array given with --config to the crate's own (.cargo/config.toml).
    args.push('--config', `target.${target}.rustflags=${JSON.stringify([remap])}`)
  }
  return {
    name,
    source,
    inputs,
    build(output) {
      run('cargo', args, { cwd: source, env: cargoEnv() })
      copyFileSync(join(source, 'target', target, 'release', `${artifact}.wasm`), output)
    },
  }
}

const guests = [
  {
    name: 'checksum.as.wasm',
    source: join(root, 'examples', 'guests', 'assemblyscript'),
    build(output) {
      run(process.execPath, [asc, 'assembly/index.ts', '--outFile', output, '--runtime', 'stub', '-O3'], {
        cwd: this.source,
      })
    },
  },
  {
    name: 'sha256.as.wasm',
    source: join(root, 'benchmark', 'guests', 'sha256'),
    build(output) {
      run(process.execPath, [asc, 'assembly/index.ts', '--outFile', output, '--runtime', 'stub', '-O3'], {
        cwd: this.source,
      })
    },
  },
  {
    // The tutorial's guest in AssemblyScript, with the glue asc generates (`--bindings raw`:
    // tutorial.as.js, whose instantiate() calls the global WebAssembly.instantiate).
    name: 'tutorial.as.wasm',
    source: join(root, 'examples', 'guests', 'assemblyscript-tutorial'),
    build(output) {
      run(
        process.execPath,
        [asc, 'assembly/index.ts', '--outFile', output, '--runtime', 'stub', '-O3', '--bindings', 'raw'],
        { cwd: this.source },
      )
      // The glue is an ES module; the .mjs name says so to Node (no reparsing warning).
      copyFileSync(output.replace(/\.wasm$/, '.js'), output.replace(/\.wasm$/, '.mjs'))
    },
  },
  cargoGuest({
    name: 'text.rust.wasm',
    source: join(root, 'examples', 'guests', 'rust-text'),
    target: 'wasm32-unknown-unknown',
    artifact: 'rust_text_guest',
  }),
  // Module.preinitialize's guest: init() builds a lookup table, a dispatch table of boxed
  // closures and a configurable amount of busy work from host imports (env.seed,
  // env.work_iterations).
  cargoGuest({
    name: 'preinit.rust.wasm',
    source: join(root, 'examples', 'guests', 'rust-preinit'),
    target: 'wasm32-unknown-unknown',
    artifact: 'rust_preinit_guest',
  }),
  // The profiler's and source-level backtraces' guest, no_std, optimised with full DWARF:
  // hot() (most of its time in hot_loop), trap_here() (`unreachable` on the line of
  // src/lib.rs marked `// TRAP LINE`), spin() (never returns), call_import() (calls
  // env.host_work) and grow().
  cargoGuest({
    name: 'observe.rust.wasm',
    source: join(root, 'examples', 'guests', 'rust-observe'),
    target: 'wasm32-unknown-unknown',
    artifact: 'rust_observe_guest',
    relativeDebugPaths: true,
  }),
  {
    // The tutorial's Rust demo as it publishes it: the wasm-bindgen guest, its `--target web` glue
    // in pkg/ (scripts/wasm-bindgen, the same wasm-bindgen version), and its page's index.js and
    // index.html beside it, a site a test serves to the page harness (__test__/helpers/page.mjs).
    name: join('tutorial-wasm-bindgen', 'index.js'),
    source: join(root, 'examples', 'tutorial-demos', 'rust'),
    build(output) {
      const site = dirname(output)
      run('cargo', ['build', '--release', '--locked', '--target', 'wasm32-unknown-unknown'], {
        cwd: this.source,
        env: cargoEnv(),
      })
      const glueTool = join(root, 'scripts', 'wasm-bindgen')
      const toolTarget = join(root, 'target', 'wasm-bindgen-glue')
      run('cargo', ['build', '--release', '--locked', '--manifest-path', join(glueTool, 'Cargo.toml')], {
        env: { ...cargoEnv(), CARGO_TARGET_DIR: toolTarget },
      })
      const input = join(this.source, 'target', 'wasm32-unknown-unknown', 'release', 'webassembly_linear_memory.wasm')
      run(join(toolTarget, 'release', 'wasm-bindgen-glue'), [input, join(site, 'pkg')])
      copyFileSync(join(this.source, 'demo', 'index.html'), join(site, 'index.html'))
      copyFileSync(join(this.source, 'demo', 'index.js'), output)
    },
  },
  {
    // The tutorial's AssemblyScript demo page: the module built as the tutorial builds it
    // (`asc index.ts`, default options), beside the page's index.js and index.html.
    name: join('tutorial-assemblyscript', 'index.js'),
    source: join(root, 'examples', 'tutorial-demos', 'assemblyscript'),
    build(output) {
      const site = dirname(output)
      run(process.execPath, [asc, 'assembly/index.ts', '--outFile', join(site, 'index.wasm')], { cwd: this.source })
      copyFileSync(join(this.source, 'demo', 'index.html'), join(site, 'index.html'))
      copyFileSync(join(this.source, 'demo', 'index.js'), output)
    },
  },
  // WASI commands from Rust (wasm32-wasip1): a small CLI, the tutorial's buffer guest as a
  // command, and the benchmark's compute-heavy program. One cargo build makes all three.
  ...['wasi-cli', 'buffer-command', 'compute'].map((binary) =>
    cargoGuest({
      name: `${binary}.wasip1.wasm`,
      source: join(root, 'examples', 'guests', 'rust-wasi'),
      target: 'wasm32-wasip1',
      artifact: binary,
    }),
  ),
  // AssemblyScript through @assemblyscript/wasi-shim: a command and a reactor.
  ...[
    { file: 'index', name: 'hello.as-wasi.wasm', start: '_start' },
    { file: 'reactor', name: 'reactor.as-wasi.wasm', start: '_initialize' },
  ].map(({ file, name, start }) => ({
    name,
    source: join(root, 'examples', 'guests', 'assemblyscript-wasi'),
    build(output) {
      run(
        process.execPath,
        [asc, `assembly/${file}.ts`, '--config', 'asconfig.json', '--exportStart', start, '--outFile', output, '-O3'],
        { cwd: this.source },
      )
    },
  })),
  // Components (wasm32-wasip2; the target is in `npm run setup:rust`). The demo:types component:
  // the WIT package in examples/components/wit, implemented in Rust with wit-bindgen.
  cargoGuest({
    name: 'types.rust.component.wasm',
    source: join(root, 'examples', 'components', 'rust-types'),
    inputs: [join(root, 'examples', 'components', 'wit')],
    target: 'wasm32-wasip2',
    artifact: 'rust_types_component',
  }),
  // WASI 0.2 commands from one crate, Rust std: `command` (println!, a preopened file, an exit
  // code) and `net` (wasi:sockets: TCP connect and listen, UDP, name lookup; for the network
  // allow-list tests).
  ...['command', 'net'].map((binary) =>
    cargoGuest({
      name: `${binary}.rust.component.wasm`,
      source: join(root, 'examples', 'components', 'rust-command'),
      target: 'wasm32-wasip2',
      artifact: binary,
    }),
  ),
  // WASI 0.3 commands (an async `wasi:cli/run@0.3.0`, streams, clocks) with the `wasip3` bindings
  // crate, for wasm32-wasip2 (Rust has no wasm32-wasip3 target): `p3-command`, `p3-host` with a
  // JS import and an async export, and `p3-streams`, whose own functions pass stream<u8> and
  // future<T> both ways.
  ...['p3-command', 'p3-host', 'p3-streams'].map((binary) =>
    cargoGuest({
      name: `${binary}.rust.component.wasm`,
      source: join(root, 'examples', 'components', 'rust-p3'),
      target: 'wasm32-wasip2',
      artifact: binary,
    }),
  ),
  // wasi:http guests (the `wasip2` and `wasip3` bindings crates): `http`, a WASI 0.2
  // wasi:http/incoming-handler service, and `http-fetch`, a WASI 0.2 command that GETs a URL
  // through wasi:http/outgoing-handler, from one crate (the service is its library), and
  // `p3-http`, the same service on WASI 0.3 (wasi:http/handler@0.3.0), which shares its routes'
  // helpers (rust-http/src/common.rs).
  ...[
    { name: 'http', artifact: 'rust_http_component' },
    { name: 'http-fetch', artifact: 'http-fetch' },
  ].map(({ name, artifact }) =>
    cargoGuest({
      name: `${name}.rust.component.wasm`,
      source: join(root, 'examples', 'components', 'rust-http'),
      target: 'wasm32-wasip2',
      artifact,
    }),
  ),
  cargoGuest({
    name: 'p3-http.rust.component.wasm',
    source: join(root, 'examples', 'components', 'rust-http-p3'),
    inputs: [join(root, 'examples', 'components', 'rust-http', 'src')],
    target: 'wasm32-wasip2',
    artifact: 'rust_http_p3_component',
  }),
  {
    // JavaScript made a component by componentize-js (StarlingMonkey; about 10 s and 12 MB), with
    // every WASI feature it can leave out left out: the component imports nothing.
    name: 'greeter.js.component.wasm',
    source: join(root, 'examples', 'components', 'js-greeter'),
    async build(output) {
      const { componentize } = await import('@bytecodealliance/componentize-js')
      // componentize-js reads the WIT through its own WASI guest and preview2-shim, whose
      // filesystem has no preopens by default (since 0.26): give it the source directory.
      const { _setPreopens } = await import('@bytecodealliance/preview2-shim/filesystem')
      _setPreopens({ [this.source]: this.source })
      const { component } = await componentize({
        sourcePath: join(this.source, 'greeter.js'),
        witPath: join(this.source, 'wit'),
        worldName: 'greeter',
        disableFeatures: ['stdio', 'random', 'clocks', 'http', 'fetch-event'],
      })
      writeFileSync(output, component)
    },
  },
]

const only = process.argv.slice(2)
for (const guest of guests) {
  if (only.length > 0 && !only.includes(guest.name)) continue
  const output = join(outputDirectory, guest.name)
  mkdirSync(dirname(output), { recursive: true })
  if (isFresh(output, [guest.source, ...(guest.inputs ?? [])])) {
    console.log(`build-guests: ${guest.name} is up to date`)
    continue
  }
  await guest.build(output)
  console.log(`build-guests: built ${guest.name}`)
}
