//! `Module`: compiled wasm, shared by any number of sandboxes.

use std::panic::{AssertUnwindSafe, catch_unwind};

use napi::bindgen_prelude::{JsValue, Object, Unknown};
use napi::{Env, Result, ValueType};
use napi_derive::napi;

use crate::cache::{Artifact, CompiledSource};
use crate::engine::Compiler;
use crate::error::{SandboxError, SandboxResult};
use crate::js::errors::{OrThrow, rejection};
use crate::js::imports::get_property;
use crate::js::sandbox::{Sandbox, own_keys};
use crate::js::values::{bytes_or_text, describe};
use crate::module::{EntryDescriptor, ModuleSource};

/// A compiled WebAssembly module. Compiling the same bytes again reuses the compiled code: in
/// the same process from memory, in a new process from the code cache on disk (see
/// `codeCacheStats`).
#[napi]
pub struct Module {
    source: ModuleSource,
}

/// Options of `new Module`, `Module.compile` and `Module.fromFile`.
// Declares the options' type for index.d.ts; they are read field by field
// (`parse_module_options`) to give coded errors.
#[allow(dead_code)]
#[napi(object)]
pub struct ModuleOptions {
    /// The code generator: `'cranelift'` (the default: optimized code) or `'winch'` (a baseline
    /// compiler: compiles several times faster, the code runs slower; x86-64 and arm64 only).
    /// The environment variable `WASM_MEMORY_SANDBOX_COMPILER` sets the default.
    #[napi(ts_type = "'cranelift' | 'winch'")]
    pub compiler: Option<String>,
}

/// What the code cache on disk did in this process.
#[napi(object)]
#[cfg_attr(test, allow(dead_code))] // registered with Node only outside `cfg(test)`
pub struct CodeCacheStats {
    /// Whether this process uses a cache directory (off with `WASM_MEMORY_SANDBOX_CACHE=0`, or
    /// when the directory cannot be created or is not private to this user).
    pub enabled: bool,
    /// The cache directory, or `undefined` when the cache is off.
    pub directory: Option<String>,
    /// Modules loaded from a cache file instead of compiled.
    pub hits: f64,
    /// Modules not in the cache, compiled (and then written to it).
    pub misses: f64,
    /// Cache files written.
    pub writes: f64,
    /// Cache files found truncated, corrupted or foreign, deleted and replaced by a fresh compile.
    pub rejected: f64,
    /// Cache files not used because they are writable by other users or not owned by this one.
    pub untrusted: f64,
    /// Cache files that could not be written (a full or read-only disk); the module was compiled.
    pub write_failures: f64,
}

/// What the code cache on disk has done in this process (it is opened at the first compile):
/// loads, compiles, writes, and files it refused.
#[napi(catch_unwind)]
#[cfg_attr(test, allow(dead_code))] // registered with Node only outside `cfg(test)`
pub fn code_cache_stats() -> CodeCacheStats {
    let stats = crate::cache::stats();
    let directory = crate::cache::directory();
    CodeCacheStats {
        enabled: directory.is_some(),
        directory: directory.map(|path| path.display().to_string()),
        hits: stats.hits as f64,
        misses: stats.misses as f64,
        writes: stats.writes as f64,
        rejected: stats.rejected as f64,
        untrusted: stats.untrusted as f64,
        write_failures: stats.write_failures as f64,
    }
}

/// Reads `{ compiler }` from a module's options.
pub(crate) fn parse_module_options(env: &Env, options: Option<Unknown>) -> SandboxResult<Compiler> {
    let Some(options) = options.filter(|options| options.get_type().ok() != Some(ValueType::Undefined)) else {
        return Ok(Compiler::process_default());
    };
    if options.get_type().ok() != Some(ValueType::Object) {
        return Err(SandboxError::InvalidArgType(format!(
            "The \"options\" argument must be of type object. Received {}",
            describe(env, &options)
        )));
    }
    for key in own_keys(env, options.raw())? {
        if key != "compiler" {
            return Err(SandboxError::InvalidArgType(format!(
                "Unknown option \"{key}\": the options are compiler"
            )));
        }
    }
    let value = get_property(env, options.raw(), "compiler")?;
    // SAFETY: the value belongs to this env and call.
    let value = unsafe { Unknown::from_raw_unchecked(env.raw(), value) };
    match value.get_type().ok() {
        Some(ValueType::Undefined) => Ok(Compiler::process_default()),
        Some(ValueType::String) => {
            // SAFETY: checked to be a string of this env.
            let name: String = unsafe { napi::bindgen_prelude::FromNapiValue::from_napi_value(env.raw(), value.raw()) }
                .map_err(|error| SandboxError::Internal(error.to_string()))?;
            Compiler::from_name(&name).ok_or_else(|| {
                SandboxError::OutOfRange(format!(
                    "The value of \"options.compiler\" is out of range. It must be 'cranelift' or 'winch'. \
                     Received {name:?}"
                ))
            })
        }
        _ => Err(SandboxError::InvalidArgType(format!(
            "The \"options.compiler\" property must be of type string. Received {}",
            describe(env, &value)
        ))),
    }
}

/// One import or export of a module.
#[napi(object)]
pub struct ModuleEntry {
    /// For imports: the module namespace (`env` in `env.log`).
    pub module: Option<String>,
    pub name: String,
    #[napi(ts_type = "'function' | 'memory' | 'table' | 'global' | 'tag'")]
    pub kind: String,
    /// For functions: parameter types.
    #[napi(ts_type = "Array<'i32' | 'i64' | 'f32' | 'f64' | 'v128' | 'funcref' | 'externref' | 'anyref'>")]
    pub params: Option<Vec<String>>,
    /// For functions: result types.
    #[napi(ts_type = "Array<'i32' | 'i64' | 'f32' | 'f64' | 'v128' | 'funcref' | 'externref' | 'anyref'>")]
    pub results: Option<Vec<String>>,
}

impl From<EntryDescriptor> for ModuleEntry {
    fn from(entry: EntryDescriptor) -> Self {
        let (params, results) = match entry.signature {
            Some((params, results)) => (
                Some(params.into_iter().map(str::to_owned).collect()),
                Some(results.into_iter().map(str::to_owned).collect()),
            ),
            None => (None, None),
        };
        Self {
            module: entry.module,
            name: entry.name,
            kind: entry.kind.to_owned(),
            params,
            results,
        }
    }
}

#[napi]
impl Module {
    /// Compiles wasm bytes (a `Uint8Array`, `Buffer` or `ArrayBuffer`) or WebAssembly text (a
    /// `string`) on the calling thread. Throws `ERR_WASM_COMPILE` with wasmtime's reason if they
    /// are malformed. Large modules take long to compile (seconds for megabytes) the first time
    /// they are seen; `Module.compile` does it without blocking the event loop.
    #[napi(
        constructor,
        catch_unwind,
        ts_args_type = "source: Uint8Array | ArrayBuffer | string, options?: ModuleOptions"
    )]
    pub fn new(env: &Env, source: Unknown, options: Option<Unknown>) -> Result<Self> {
        let bytes = bytes_or_text(env, &source, "source").or_throw(env)?;
        let compiler = parse_module_options(env, options).or_throw(env)?;
        Ok(Self {
            source: ModuleSource::compile_with(compiler, &bytes).or_throw(env)?,
        })
    }

    /// Compiles wasm bytes or WebAssembly text on a background thread (its own, not libuv's
    /// thread pool), so the event loop keeps running; resolves to the `Module`, or rejects with
    /// the error `new Module` would throw. The bytes are copied first: the caller may reuse them
    /// at once.
    #[napi(
        catch_unwind,
        ts_args_type = "source: Uint8Array | ArrayBuffer | string, options?: ModuleOptions",
        ts_return_type = "Promise<Module>"
    )]
    pub fn compile<'env>(env: &'env Env, source: Unknown, options: Option<Unknown>) -> Result<Object<'env>> {
        compile_off_thread(env, source, options, |source| Module { source })
    }

    /// The compiler this module's code was compiled with.
    #[napi(getter, ts_return_type = "'cranelift' | 'winch'")]
    pub fn compiler(&self) -> &'static str {
        self.source.compiler().name()
    }

    /// Reads and compiles a `.wasm` (binary) or `.wat` (text) file on the calling thread.
    #[napi(factory, catch_unwind, ts_args_type = "path: string, options?: ModuleOptions")]
    pub fn from_file(env: &Env, path: Unknown, options: Option<Unknown>) -> Result<Self> {
        if path.get_type().ok() != Some(ValueType::String) {
            return Err(SandboxError::InvalidArgType(format!(
                "The \"path\" argument must be of type string. Received {}",
                describe(env, &path)
            )))
            .or_throw(env);
        }
        // SAFETY: checked to be a string of this env.
        let path: String = unsafe { napi::bindgen_prelude::FromNapiValue::from_napi_value(env.raw(), path.raw()) }?;
        let bytes = std::fs::read(&path)
            .map_err(|error| SandboxError::ReadFile {
                path: path.clone(),
                reason: error.to_string(),
            })
            .or_throw(env)?;
        let compiler = parse_module_options(env, options).or_throw(env)?;
        Ok(Self {
            source: ModuleSource::compile_with(compiler, &bytes).or_throw(env)?,
        })
    }

    /// Every export: name, kind, and for functions the parameter and result types.
    #[napi(getter)]
    pub fn exports(&self) -> Vec<ModuleEntry> {
        self.source.exports().into_iter().map(ModuleEntry::from).collect()
    }

    /// Every import: module, name, kind, and for functions the parameter and result types.
    #[napi(getter)]
    pub fn imports(&self) -> Vec<ModuleEntry> {
        self.source.imports().into_iter().map(ModuleEntry::from).collect()
    }

    /// Same as `new Sandbox(module, options)`.
    #[napi(catch_unwind, ts_args_type = "options?: SandboxOptions")]
    pub fn instantiate(&self, env: &Env, options: Option<Unknown>) -> Result<Sandbox> {
        Sandbox::from_source(env, &self.source, options)
    }
}

/// Compiles a module's or component's `source` on a thread of its own (its bytes copied first,
/// so the caller may reuse them at once): a Promise of `wrap(compiled)`, or rejected with the
/// error compiling on the calling thread would throw.
pub(crate) fn compile_off_thread<'env, A, T>(
    env: &'env Env,
    source: Unknown,
    options: Option<Unknown>,
    wrap: fn(CompiledSource<A>) -> T,
) -> Result<Object<'env>>
where
    A: Artifact + Send + 'static,
    T: napi::bindgen_prelude::ToNapiValue + 'static,
{
    let (deferred, promise) = env.create_deferred()?;
    let settle = move |compiled: SandboxResult<CompiledSource<A>>| {
        move |env: Env| match compiled {
            Ok(source) => Ok(wrap(source)),
            Err(error) => Err(rejection(&env, &error)),
        }
    };
    let request =
        bytes_or_text(env, &source, "source").and_then(|bytes| Ok((bytes, parse_module_options(env, options)?)));
    let (bytes, compiler) = match request {
        Ok(request) => request,
        Err(error) => {
            deferred.resolve(settle(Err(error)));
            return Ok(promise);
        }
    };
    let spawned = std::thread::Builder::new()
        .name("wasm-sandbox-compile".to_owned())
        .stack_size(COMPILE_THREAD_STACK)
        .spawn(move || {
            let compiled = catch_unwind(AssertUnwindSafe(|| CompiledSource::<A>::compile_with(compiler, &bytes)))
                .unwrap_or_else(|_| Err(SandboxError::Internal("compiling panicked".to_owned())));
            deferred.resolve(settle(compiled));
        });
    if let Err(error) = spawned {
        return Err(SandboxError::Internal(format!(
            "could not start a compile thread: {error}"
        )))
        .or_throw(env);
    }
    Ok(promise)
}

/// Stack of a compile thread: wasmtime's parser and compilers recurse on deeply nested code.
pub(crate) const COMPILE_THREAD_STACK: usize = 8 * 1024 * 1024;

impl Module {
    pub fn source(&self) -> &ModuleSource {
        &self.source
    }
}
