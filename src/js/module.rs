//! `Module`: compiled wasm, shared by any number of sandboxes.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;

use napi::bindgen_prelude::{JsValue, Object, Unknown};
use napi::{Env, Result, ValueType};
use napi_derive::napi;

use crate::cache::{Artifact, CompiledSource};
use crate::engine::Compiler;
use crate::error::{SandboxError, SandboxResult};
use crate::js::errors::{OrThrow, rejection, throw, throw_with_cause};
use crate::js::imports::{ImportBridge, get_property, resolve};
use crate::js::sandbox::{Sandbox, own_keys, parse_options_with};
use crate::js::values::{RawValue, bytes_or_text, describe};
use crate::module::{EntryDescriptor, ModuleSource};
use crate::sandbox::Sandbox as CoreSandbox;

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

/// Options of `Module.preinitialize`: the export to run, and what the sandbox it runs in gets
/// (as `SandboxOptions`).
// Declares the options' type for index.d.ts; read key by key (`preinit_name`, `parse_options`).
#[allow(dead_code)]
#[napi(object)]
pub struct PreinitializeOptions {
    /// The export run once, a function of no parameters and no results (Wizer's
    /// `wizer.initialize`). The pre-initialized module no longer exports it.
    pub init: String,
    /// The imports `init` may call (as `SandboxOptions.imports`). The pre-initialized module
    /// still imports them: pass them again to instantiate it (they are not called then).
    #[napi(ts_type = "Record<string, Record<string, (...args: any[]) => unknown>>")]
    pub imports: Option<Object<'static>>,
    /// Cap on linear memory while `init` runs, in bytes.
    pub max_memory_bytes: Option<f64>,
    /// Wall-clock limit for `init` (and the start function), in milliseconds.
    pub timeout_ms: Option<f64>,
    /// Instruction budget for `init` (and the start function).
    pub fuel: Option<f64>,
    /// CPU-time limit for `init` (and the start function), in milliseconds.
    pub cpu_time_ms: Option<f64>,
    /// WASI for a WASI module's `init` (a reactor's `_initialize` runs first).
    #[napi(ts_type = "WasiOptions")]
    pub wasi: Option<Object<'static>>,
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

    /// Pre-initializes a module (Wizer's technique): instantiates it with `options` (imports,
    /// limits, wasi), runs its export `options.init` once, and resolves to a `Module` whose
    /// initial state is the state `init` left (memories and mutable globals), so instantiating it
    /// runs no initializer. The result goes through the code cache, keyed by the input, `init`,
    /// the WASI options and the imports' source text: a fresh process gets it without running
    /// `init` again. Rejects with what instantiating or calling would throw, or
    /// `ERR_WASM_SNAPSHOT` for a module Wizer cannot pre-initialize.
    #[napi(
        catch_unwind,
        ts_args_type = "source: Uint8Array | ArrayBuffer | string, options: PreinitializeOptions",
        ts_return_type = "Promise<Module>"
    )]
    pub fn preinitialize<'env>(env: &'env Env, source: Unknown, options: Unknown) -> Result<Unknown<'env>> {
        // `init`'s imports are JS functions, so it runs here, on the JS thread; the Promise
        // carries its outcome, settled before this returns.
        let outcome = Self::preinitialize_now(env, source, options).map_err(|error| {
            // The error was thrown (`or_throw`, `throw`): the pending exception is the reason. It
            // is taken first, as no Node-API call works while an exception is pending.
            let mut exception = std::ptr::null_mut();
            let mut kind = 0;
            // SAFETY: the live env of this call.
            unsafe {
                napi::sys::napi_get_and_clear_last_exception(env.raw(), &mut exception);
                napi::sys::napi_typeof(env.raw(), exception, &mut kind);
            }
            if kind == napi::sys::ValueType::napi_undefined {
                let message = error.reason.clone();
                let mut text = std::ptr::null_mut();
                // SAFETY: creating values in the live env.
                unsafe {
                    napi::sys::napi_create_string_utf8(
                        env.raw(),
                        message.as_ptr().cast(),
                        message.len() as isize,
                        &mut text,
                    );
                    napi::sys::napi_create_error(env.raw(), std::ptr::null_mut(), text, &mut exception);
                }
            }
            exception
        });
        let mut deferred = std::ptr::null_mut();
        let mut promise = std::ptr::null_mut();
        // SAFETY: the live env of this call, with no exception pending.
        let status = unsafe { napi::sys::napi_create_promise(env.raw(), &mut deferred, &mut promise) };
        if status != napi::sys::Status::napi_ok {
            return Err(napi::Error::from_reason("napi_create_promise failed"));
        }
        // SAFETY: the deferred just made, settled once, with a value of this env.
        match outcome {
            Ok(module) => unsafe {
                let value = <Self as napi::bindgen_prelude::ToNapiValue>::to_napi_value(env.raw(), module)?;
                napi::sys::napi_resolve_deferred(env.raw(), deferred, value);
            },
            Err(reason) => unsafe {
                napi::sys::napi_reject_deferred(env.raw(), deferred, reason);
            },
        }
        // SAFETY: made in this env during this call.
        Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), promise) })
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

/// `options.init`: the name of the export to run once.
fn preinit_name(env: &Env, options: &Unknown) -> SandboxResult<String> {
    if options.get_type().ok() != Some(ValueType::Object) {
        return Err(SandboxError::InvalidArgType(format!(
            "The \"options\" argument must be of type object (with \"init\", the export to run). Received {}",
            describe(env, options)
        )));
    }
    let value = get_property(env, options.raw(), "init")?;
    // SAFETY: the value belongs to this env and call.
    let value = unsafe { Unknown::from_raw_unchecked(env.raw(), value) };
    if value.get_type().ok() != Some(ValueType::String) {
        return Err(SandboxError::InvalidArgType(format!(
            "The \"options.init\" property must be of type string (the export to run). Received {}",
            describe(env, &value)
        )));
    }
    // SAFETY: checked to be a string of this env.
    unsafe { napi::bindgen_prelude::FromNapiValue::from_napi_value(env.raw(), value.raw()) }
        .map_err(|error: napi::Error| SandboxError::InvalidArgType(error.reason.clone()))
}

/// For the pre-initialization cache key: each function import's name and the source text of
/// the JS function given for it (a change of the code makes a new pre-initialization; what a
/// function's closure holds is the caller's to keep the same).
fn import_sources(env: &Env, imports: Option<RawValue>, binary: &[u8]) -> SandboxResult<Vec<u8>> {
    let mut key = Vec::new();
    let Some(imports) = imports else {
        return Ok(key);
    };
    for payload in wasmparser::Parser::new(0).parse_all(binary) {
        let Ok(wasmparser::Payload::ImportSection(section)) = payload else {
            continue;
        };
        for import in section.into_imports().flatten() {
            let module = get_property(env, imports, import.module)?;
            let mut kind = 0;
            // SAFETY: a value of this env.
            unsafe { napi::sys::napi_typeof(env.raw(), module, &mut kind) };
            let text = if kind == napi::sys::ValueType::napi_object {
                let function = get_property(env, module, import.name)?;
                let mut text = std::ptr::null_mut();
                // SAFETY: a value of this env; a throwing `toString` leaves an exception, cleared.
                if unsafe { napi::sys::napi_coerce_to_string(env.raw(), function, &mut text) }
                    != napi::sys::Status::napi_ok
                {
                    let mut exception = std::ptr::null_mut();
                    // SAFETY: clears what the conversion threw.
                    unsafe { napi::sys::napi_get_and_clear_last_exception(env.raw(), &mut exception) };
                    String::new()
                } else {
                    // SAFETY: a string of this env.
                    unsafe { napi::bindgen_prelude::FromNapiValue::from_napi_value(env.raw(), text) }
                        .unwrap_or_default()
                }
            } else {
                String::new()
            };
            for part in [import.module, import.name, &text] {
                key.extend_from_slice(part.as_bytes());
                key.push(0);
            }
        }
    }
    Ok(key)
}

/// Stack of a compile thread: wasmtime's parser and compilers recurse on deeply nested code.
pub(crate) const COMPILE_THREAD_STACK: usize = 8 * 1024 * 1024;

impl Module {
    /// `preinitialize`'s work: the pre-initialized module, or the error thrown into `env`.
    fn preinitialize_now(env: &Env, source: Unknown, options: Unknown) -> Result<Self> {
        let bytes = bytes_or_text(env, &source, "source").or_throw(env)?;
        let binary = wat::parse_bytes(&bytes)
            .map_err(|error| SandboxError::Compile(format!("{error:#}")))
            .or_throw(env)?
            .into_owned();
        let init = preinit_name(env, &options).or_throw(env)?;
        let (limits, imports, wasi, _) = parse_options_with(env, Some(options), &["init"]).or_throw(env)?;
        let import_sources = import_sources(env, imports, &binary).or_throw(env)?;
        let wasi_key = format!("{wasi:?}");
        let parts: [&[u8]; 4] = [&binary, init.as_bytes(), wasi_key.as_bytes(), &import_sources];
        let bridge = Rc::new(ImportBridge::default());
        let stop_probe = crate::js::termination::stop_probe(env);
        let made = crate::cache::load_or_make_bytes(&parts, || {
            crate::store::preinit::preinitialize(&binary, &init, |instrumented| {
                let source =
                    ModuleSource::compile_for(limits.engine_kind(), Compiler::process_default(), instrumented)?;
                CoreSandbox::instantiate(&source, limits, wasi.as_ref(), stop_probe, None, |import, ty| {
                    resolve(env, imports, import, ty, &bridge)
                })
            })
        });
        let output = made.map_err(|error| match error {
            SandboxError::Import(_) => throw_with_cause(env, &error, bridge.take_exception()),
            other => throw(env, &other),
        })?;
        Ok(Self {
            source: ModuleSource::compile(&output).or_throw(env)?,
        })
    }

    pub fn source(&self) -> &ModuleSource {
        &self.source
    }
}
