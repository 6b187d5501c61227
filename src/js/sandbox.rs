//! `Sandbox`: any guest module, with JS imports, limits, coded errors and zero-copy views.

use std::cell::RefCell;
use std::ptr;
use std::rc::Rc;
use std::time::Duration;

use napi::bindgen_prelude::{Buffer, JsValue, Object, ObjectFinalize, Unknown};
use napi::{Env, Result, ValueType, sys};
use napi_derive::napi;
use wasmtime::{Func, Val, ValRaw, ValType};

use crate::error::{SandboxError, SandboxResult, alive};
use crate::js::async_calls::{self, AsyncContext, AsyncQueue, SandboxAsync, results_to_js};
use crate::js::errors::{OrThrow, raise, throw, throw_with_cause};
use crate::js::gc_pressure::ExternalMemory;
use crate::js::imports::{ImportBridge, get_property, resolve};
use crate::js::module::Module;
use crate::js::output::{OutputCallbacks, OutputDelivery};
use crate::js::snapshot::Snapshot;
use crate::js::values::{
    RawValue, bytes_or_text, describe, describe_raw, from_wasm, i32_from_number, integer_in_range, to_wasm,
    uint8_bytes, unwrap_class,
};
use crate::js::views::{KeepAlive, ViewKind, ViewRegistry};
use crate::js::wasi::{output_object, parse_wasi_options};
use crate::module::{ModuleSource, describe_signature};
use crate::sandbox::{AsyncCall, CallValues, Limits, MAX_WASM32_MEMORY_BYTES, Sandbox as CoreSandbox, WASM_PAGE_SIZE};
use crate::store::snapshot::StateSnapshot;
use crate::wasi::WasiOptions;

// This struct only declares the TypeScript interface: the options arrive raw and are validated
// key by key in `parse_options`, so a typo or a wrong type gets a precise error.
/// Options for `new Sandbox()` and `module.instantiate()`.
#[napi(object)]
#[allow(dead_code)]
pub struct SandboxOptions {
    /// Host functions the guest imports, as `{ [module]: { [name]: function } }`. Arguments and
    /// results convert by the wasm signature (i32, f32, f64 as `number`; i64 as `bigint`; several
    /// results as an array). A function that throws ends the guest call; the caller gets
    /// `ERR_WASM_IMPORT` with the original error as `cause`.
    #[napi(ts_type = "Record<string, Record<string, (...args: any[]) => unknown>>")]
    pub imports: Option<Object<'static>>,
    /// Cap on linear memory, in bytes (up to 4 GiB). A guest `memory.grow` past it returns -1;
    /// `grow()` past it throws `ERR_WASM_MEMORY_LIMIT`.
    pub max_memory_bytes: Option<f64>,
    /// Wall-clock limit for each call, in milliseconds; a call still running then throws
    /// `ERR_WASM_TIMEOUT`.
    pub timeout_ms: Option<f64>,
    /// CPU-time limit for each call, in milliseconds: the guest's own CPU time (its thread's CPU
    /// clock while its wasm runs; not time in JS imports, waiting in a queue or preempted by
    /// other threads). A call that uses it up throws `ERR_WASM_CPU_LIMIT`. Works beside
    /// `timeoutMs` and `fuel`, for synchronous and async calls.
    pub cpu_time_ms: Option<f64>,
    /// Time every call (`wallTimeMs` and `cpuTimeMs` in `stats()` and `lastCall`); off by
    /// default, because reading a thread's CPU clock costs about 0.4 us per call, several times
    /// a hot call's cost. `Sandbox` only.
    pub metrics: Option<bool>,
    /// Instruction budget (wasmtime fuel); running out throws `ERR_WASM_OUT_OF_FUEL`. Read and
    /// refill it with `sandbox.fuel`.
    pub fuel: Option<f64>,
    /// Makes the guest a WASI program (`wasi_snapshot_preview1`, and the older `wasi_unstable`):
    /// what it may reach (arguments, environment, directories, stdin) and where its output goes.
    /// Without it, a WASI import is `ERR_WASM_LINK` like any missing import. `run()` runs a
    /// command; a reactor (exporting `_initialize`) is initialised here.
    #[napi(ts_type = "WasiOptions")]
    pub wasi: Option<Object<'static>>,
}

const OPTION_NAMES: [&str; 6] = ["imports", "maxMemoryBytes", "timeoutMs", "cpuTimeMs", "fuel", "wasi"];

/// A guest module instantiated in its own wasmtime store, with optional limits and JS imports.
///
/// Views from `memory()` follow the same rules as `BufferSandbox`: zero-copy, cached while the
/// memory keeps its size, valid after growth for what they cover, alive past garbage collection
/// of the sandbox, and detached by `dispose()`.
#[napi(custom_finalize)]
pub struct Sandbox {
    /// `None` once disposed.
    core: Option<Rc<CoreSandbox>>,
    views: RefCell<ViewRegistry>,
    bridge: Rc<ImportBridge>,
    /// The exports behind the `sandboxCaller` handles the facade caches (see `raw.rs`); boxed so
    /// their addresses stay fixed while the sandbox lives (the handles point at them).
    #[allow(clippy::vec_box)]
    callers: RefCell<Vec<Box<ExportCaller>>>,
    external: ExternalMemory,
    /// Async calls waiting their turn, and whether `dispose()` came.
    async_queue: Rc<AsyncQueue>,
    /// Where streamed WASI output goes (`wasi.stdout` / `wasi.stderr` as functions).
    output: Option<Rc<OutputDelivery>>,
    /// What async calls share, made at the first (it holds the core: `dispose()` clears it).
    async_context: RefCell<Option<AsyncContext>>,
}

/// A store's own native footprint beyond its linear memory, as reported to V8.
const STORE_BYTES: usize = 32 * 1024;

/// What a `sandboxCaller` handle names: an export of a sandbox, for `callExport*`.
pub struct ExportCaller {
    pub sandbox: *const Sandbox,
    pub index: usize,
    /// The export itself and its signature, when `call_numeric` can take it (see there).
    pub numeric: Option<(Func, NumericSignature)>,
}

/// Most parameters a signature may have for `Sandbox::call_numeric`.
pub const NUMERIC_MAX_PARAMS: usize = 4;

/// A wasm type that converts from and to a JS `number` (i64 takes a `bigint`, so it is not one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NumberType {
    I32,
    F32,
    F64,
}

impl NumberType {
    fn of(value_type: &ValType) -> Option<Self> {
        match value_type {
            ValType::I32 => Some(Self::I32),
            ValType::F32 => Some(Self::F32),
            ValType::F64 => Some(Self::F64),
            _ => None,
        }
    }
}

/// A signature of `number`s only, at most `NUMERIC_MAX_PARAMS` in and at most one out: the
/// common shape of plugin exports, called without the general path's per-call bookkeeping.
#[derive(Clone, Copy, Debug)]
pub struct NumericSignature {
    pub arity: usize,
    params: [NumberType; NUMERIC_MAX_PARAMS],
    result: Option<NumberType>,
}

impl NumericSignature {
    fn of(ty: &wasmtime::FuncType) -> Option<Self> {
        let mut params = [NumberType::I32; NUMERIC_MAX_PARAMS];
        let mut arity = 0;
        for param in ty.params() {
            *params.get_mut(arity)? = NumberType::of(&param)?;
            arity += 1;
        }
        let mut results = ty.results();
        let result = match (results.next(), results.next()) {
            (None, _) => None,
            (Some(result), None) => Some(NumberType::of(&result)?),
            (Some(_), Some(_)) => return None,
        };
        Some(Self { arity, params, result })
    }
}

/// The arguments of a call of a `NumericSignature` export as wasmtime's raw slots: one Node-API
/// read each, `None` if one is not a number in range (the general path then says what is wrong).
#[inline(always)]
fn numeric_slots(
    env: sys::napi_env,
    signature: &NumericSignature,
    args: &[RawValue],
) -> Option<[ValRaw; NUMERIC_MAX_PARAMS]> {
    let mut slots = [ValRaw::i32(0); NUMERIC_MAX_PARAMS];
    for ((slot, &arg), param) in slots.iter_mut().zip(args).zip(&signature.params) {
        let mut number = 0.0;
        // SAFETY: `arg` belongs to this env; a non-number gives a non-ok status.
        if unsafe { sys::napi_get_value_double(env, arg, &mut number) } != sys::Status::napi_ok {
            return None;
        }
        *slot = match param {
            NumberType::I32 => ValRaw::i32(i32_from_number(number)?),
            NumberType::F32 => ValRaw::f32((number as f32).to_bits()),
            NumberType::F64 => ValRaw::f64(number.to_bits()),
        };
    }
    Some(slots)
}

/// An async call of a `NumericSignature` export, its arguments read as `call_numeric` reads
/// them (no walk over wasmtime's `FuncType`); `None` when they do not fit it exactly.
fn numeric_async_call(env: &Env, func: &Func, signature: &NumericSignature, args: &[RawValue]) -> Option<AsyncCall> {
    if args.len() != signature.arity {
        return None;
    }
    let slots = numeric_slots(env.raw(), signature, args)?;
    let params = slots
        .iter()
        .zip(&signature.params[..signature.arity])
        .map(|(slot, param)| match param {
            NumberType::I32 => Val::I32(slot.get_i32()),
            NumberType::F32 => Val::F32(slot.get_f32()),
            NumberType::F64 => Val::F64(slot.get_f64()),
        })
        .collect();
    Some(AsyncCall::Export {
        func: *func,
        params,
        results: usize::from(signature.result.is_some()),
    })
}

#[napi]
impl Sandbox {
    /// Instantiates a `Module`, or compiles and instantiates wasm bytes or WebAssembly text; given
    /// a `Snapshot`, makes a fork of it (as `snapshot.instantiate(options)`).
    #[napi(
        constructor,
        catch_unwind,
        ts_args_type = "moduleOrSource: Module | Snapshot | Uint8Array | ArrayBuffer | string, options?: SandboxOptions"
    )]
    pub fn new(env: &Env, module_or_source: Unknown, options: Option<Unknown>) -> Result<Self> {
        // SAFETY: the value belongs to this env and call.
        if let Some(module) = unsafe { unwrap_class::<Module>(env, module_or_source.raw()) } {
            return Self::from_source(env, module.source(), options);
        }
        // SAFETY: as above.
        if let Some(snapshot) = unsafe { unwrap_class::<Snapshot>(env, module_or_source.raw()) } {
            return Self::fork(env, Rc::clone(snapshot.state().or_throw(env)?), options);
        }
        let bytes = bytes_or_text(env, &module_or_source, "moduleOrSource")
            .map_err(|error| match error {
                SandboxError::InvalidArgType(_) => SandboxError::InvalidArgType(format!(
                    "The \"moduleOrSource\" argument must be a Module, a Snapshot, a Uint8Array, an ArrayBuffer or a string. \
                     Received {}",
                    describe(env, &module_or_source)
                )),
                other => other,
            })
            .or_throw(env)?;
        let source = ModuleSource::compile(&bytes).or_throw(env)?;
        Self::from_source(env, &source, options)
    }

    /// Calls the export `name` with `args` (i32, f32, f64 as `number`; i64 as `bigint`) and
    /// returns its result: `undefined` for none, the value for one, an array for several.
    /// A wrong name, arity or argument type throws a `TypeError` naming the signature; a trap
    /// throws `ERR_WASM_TRAP` (with `kind` and `wasmBacktrace`), `ERR_WASM_TIMEOUT` or
    /// `ERR_WASM_OUT_OF_FUEL`; a throwing import, `ERR_WASM_IMPORT` with `cause`.
    #[napi(
        catch_unwind,
        ts_args_type = "name: string, ...args: Array<number | bigint>",
        ts_return_type = "number | bigint | Array<number | bigint> | undefined"
    )]
    pub fn call<'env>(&self, env: &'env Env, name: Unknown) -> Result<Unknown<'env>> {
        // The prototype's `call` is replaced at load by the variadic raw method (`raw.rs`); this
        // declaration gives it its type and serves calls with no arguments.
        let value = self.call_with(env, &[name.raw()])?;
        // SAFETY: created in this env during this call.
        Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), value) })
    }

    /// A zero-copy view of linear memory: the memory exported as `name`, or the default one
    /// (`memory`, else the first exported memory).
    #[napi(catch_unwind, ts_args_type = "name?: string", ts_return_type = "Buffer")]
    pub fn memory<'env>(&self, env: &'env Env, name: Option<Unknown>) -> Result<Unknown<'env>> {
        let core = self.core(env)?;
        let name = optional_name(env, name).or_throw(env)?;
        let memory = core.memory(name.as_deref()).or_throw(env)?;
        let region = core.memory_region(memory).or_throw(env)?;
        let kind = match name {
            Some(name) => ViewKind::NamedMemory(name),
            None => ViewKind::Memory,
        };
        let keep_alive: KeepAlive = core.clone();
        // SAFETY: `region` lies in a memory of this store, which never moves and stays mapped while
        // the store lives; every view holds an `Rc` of the sandbox, and `dispose()` frees the store
        // early only after detaching every view that holds one.
        let value = unsafe { self.views.borrow_mut().view(env.raw(), kind, region, &keep_alive) }.or_throw(env)?;
        // SAFETY: created in this env during this call.
        Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), value) })
    }

    /// Copies `length` bytes at `offset` out of the default memory into a new `Buffer`. Throws a
    /// `RangeError` if the range is not inside the memory.
    #[napi(catch_unwind, ts_args_type = "offset: number, length: number")]
    pub fn read(&self, env: &Env, offset: Unknown, length: Unknown) -> Result<Buffer> {
        let offset = integer_in_range(env, &offset, "offset", 0.0, MAX_WASM32_MEMORY_BYTES as f64).or_throw(env)?;
        let length = integer_in_range(env, &length, "length", 0.0, MAX_WASM32_MEMORY_BYTES as f64).or_throw(env)?;
        let core = self.core(env)?;
        let memory = core.memory(None).or_throw(env)?;
        core.read(memory, offset as u64, length as u64)
            .map(Buffer::from)
            .or_throw(env)
    }

    /// Copies `bytes` into the default memory at `offset`. Throws a `RangeError` if they would not
    /// fit inside the memory (and writes nothing).
    #[napi(catch_unwind, ts_args_type = "offset: number, bytes: Uint8Array")]
    pub fn write(&self, env: &Env, offset: Unknown, bytes: Unknown) -> Result<()> {
        let offset = integer_in_range(env, &offset, "offset", 0.0, MAX_WASM32_MEMORY_BYTES as f64).or_throw(env)?;
        // Copied out first: `bytes` may itself be a view of this memory.
        let bytes = uint8_bytes(env, bytes.raw())
            .map(<[u8]>::to_vec)
            .ok_or_else(|| {
                SandboxError::InvalidArgType(format!(
                    "The \"bytes\" argument must be a Uint8Array. Received {}",
                    describe(env, &bytes)
                ))
            })
            .or_throw(env)?;
        let core = self.core(env)?;
        let memory = core.memory(None).or_throw(env)?;
        core.write(memory, offset as u64, &bytes).or_throw(env)
    }

    /// Grows the default memory by `pages` pages of 64 KiB; returns the previous size in pages.
    /// Throws `ERR_WASM_MEMORY_LIMIT` past `maxMemoryBytes` or the memory's own maximum.
    #[napi(catch_unwind, ts_args_type = "pages: number")]
    pub fn grow(&self, env: &Env, pages: Unknown) -> Result<f64> {
        let pages = integer_in_range(env, &pages, "pages", 0.0, 65_536.0).or_throw(env)? as u64;
        let core = self.core(env)?;
        let memory = core.memory(None).or_throw(env)?;
        core.grow(memory, pages).map(|previous| previous as f64).or_throw(env)
    }

    /// The size of the default memory in bytes.
    #[napi(getter, catch_unwind)]
    pub fn memory_size(&self, env: &Env) -> Result<f64> {
        let core = self.core(env)?;
        let memory = core.memory(None).or_throw(env)?;
        core.memory_size(memory).map(|bytes| bytes as f64).or_throw(env)
    }

    /// Fuel left, for a sandbox created with the `fuel` option; set it to refill.
    #[napi(getter, catch_unwind)]
    pub fn fuel(&self, env: &Env) -> Result<f64> {
        self.core(env)?.fuel().map(|fuel| fuel as f64).or_throw(env)
    }

    #[napi(setter, catch_unwind, js_name = "fuel", ts_args_type = "fuel: number")]
    pub fn set_fuel(&self, env: &Env, fuel: Unknown) -> Result<()> {
        let fuel = integer_in_range(env, &fuel, "fuel", 0.0, MAX_SAFE_INTEGER).or_throw(env)?;
        self.core(env)?.set_fuel(fuel as u64).or_throw(env)
    }

    /// Runs a WASI command (a sandbox made with the `wasi` option): calls its `_start` and returns
    /// its exit code (0 when `_start` returns, the code given to `proc_exit` otherwise) with what
    /// it wrote to stdout and stderr when they are `'pipe'`. A trap, a timeout, running out of
    /// fuel or a memory limit throws as `call()` does (`takeOutput()` then has the output). The
    /// exports stay callable afterwards; `run()` itself runs once (`ERR_WASI_ALREADY_STARTED`).
    /// Without the `wasi` option it throws `ERR_WASI_NOT_ENABLED`.
    #[napi(catch_unwind, ts_return_type = "WasiRunResult")]
    pub fn run<'env>(&self, env: &'env Env) -> Result<Unknown<'env>> {
        // Held for the whole run, as in `call_index`.
        let core = Rc::clone(self.core(env)?);
        let exit_code = core.run().map_err(|error| self.call_error(env, error))?;
        self.deliver_output(env)?;
        let output = core.take_output().or_throw(env)?;
        let value = output_object(env, Some(exit_code), output).or_throw(env)?;
        // SAFETY: created in this env during this call.
        Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), value) })
    }

    /// Takes what the guest wrote to its captured stdout and stderr since the sandbox was made or
    /// since the last `run()` or `takeOutput()` (after `call()`s, or after a `run()` that threw),
    /// and frees that room under `maxOutputBytes` again.
    #[napi(catch_unwind, ts_return_type = "WasiOutput")]
    pub fn take_output<'env>(&self, env: &'env Env) -> Result<Unknown<'env>> {
        let output = self.core(env)?.take_output().or_throw(env)?;
        let value = output_object(env, None, output).or_throw(env)?;
        // SAFETY: created in this env during this call.
        Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), value) })
    }

    /// Calls the export `name` as `call()` does, but on a thread of the addon's pool, so the JS
    /// thread stays free: returns a Promise of the same result. JS imports still run on the JS
    /// thread while the guest waits for them, and may return a Promise, which the guest waits
    /// for (a rejection fails the call with `ERR_WASM_IMPORT`, the reason as `cause`). While it
    /// runs the sandbox is busy: `call()`, `read()`, `write()`, `grow()`, `memory()` and `run()`
    /// throw `ERR_SANDBOX_BUSY` (but inside its imports), and further `callAsync()`/`runAsync()`
    /// calls wait their turn. `timeoutMs` counts from the start of the call, time waiting for
    /// imports included; `interrupt()` stops it with `ERR_WASM_INTERRUPTED`. A sandbox with no
    /// imports, no WASI and no call timing starts the call on the JS thread instead: a short
    /// call ends there, a longer one moves to the pool at its first epoch tick (about 1 ms).
    #[napi(
        catch_unwind,
        js_name = "callAsync",
        ts_args_type = "name: string, ...args: Array<number | bigint>",
        ts_return_type = "Promise<number | bigint | Array<number | bigint> | undefined>"
    )]
    pub fn call_async<'env>(&self, env: &'env Env, name: Unknown, args: Option<Unknown>) -> Result<Unknown<'env>> {
        let promise = match self.async_export_call(env, name, args) {
            Ok(call) => async_calls::call_async(env, &self.async_context(env)?, Box::new(call))?,
            Err(error) => async_calls::rejected(env, &error)?,
        };
        // SAFETY: created in this env during this call.
        Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), promise) })
    }

    /// `callAsync` of the export behind a `sandboxCaller` handle with `args`, for the facade's
    /// `Promise.resolve`: the value if the call settled at once, else a Promise (rejected if
    /// the arguments do not fit).
    pub(crate) fn call_async_export(&self, env: &Env, caller: &ExportCaller, args: &[RawValue]) -> Result<RawValue> {
        // A disposed sandbox and anything off take the general path, which says what is wrong.
        let numeric = (caller.numeric.as_ref())
            .filter(|_| self.core.is_some())
            .and_then(|(func, signature)| numeric_async_call(env, func, signature, args));
        let call = match numeric {
            Some(call) => Ok(call),
            None => self.async_call_at(env, caller.index, args),
        };
        match call {
            Ok(call) => async_calls::call_async_value(env, &self.async_context(env)?, Box::new(call)),
            Err(error) => async_calls::rejected(env, &error),
        }
    }

    /// Runs a WASI command as `run()` does, on a thread of the addon's pool: returns a Promise
    /// of `{ exitCode, stdout, stderr, ... }`. The same rules as `callAsync()` apply.
    #[napi(catch_unwind, ts_return_type = "Promise<WasiRunResult>")]
    pub fn run_async<'env>(&self, env: &'env Env) -> Result<Unknown<'env>> {
        let started = alive(self.core.as_ref()).and_then(|core| core.start_function());
        let promise = match started {
            Ok(start) => async_calls::call_async(env, &self.async_context(env)?, Box::new(AsyncCall::Start(start)))?,
            Err(error) => async_calls::rejected(env, &error)?,
        };
        // SAFETY: created in this env during this call.
        Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), promise) })
    }

    /// Stops the running guest call: an async one (`callAsync`, `runAsync`) within about a
    /// millisecond, or at once if it is waiting for an import; a synchronous one when the import
    /// that calls `interrupt()` returns. The call fails with `ERR_WASM_INTERRUPTED`; the sandbox
    /// stays usable. Returns whether a call was running.
    #[napi(catch_unwind)]
    pub fn interrupt(&self, env: &Env) -> Result<bool> {
        Ok(self.core(env)?.interrupt())
    }

    /// Whether `dispose()` has been called.
    #[napi(getter)]
    pub fn disposed(&self) -> bool {
        self.core.is_none()
    }

    /// What the sandbox's calls have cost so far: every call (`call()`, `run()`, async calls, and
    /// calls that ended in an error), their wall and CPU time (with `metrics: true`, a
    /// `cpuTimeMs` limit or while profiling), fuel and memory.
    #[napi(catch_unwind, ts_return_type = "import('./index').SandboxStats")]
    pub fn stats<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        let (totals, _, memory_bytes) = self.core(env)?.figures().or_throw(env)?;
        crate::js::observe::figures_object(env, &totals, memory_bytes)
    }

    /// The last call's figures, or `null` before the first call.
    #[napi(getter, catch_unwind, ts_return_type = "import('./index').SandboxStats | null")]
    pub fn last_call<'env>(&self, env: &'env Env) -> Result<Option<Object<'env>>> {
        let (_, last, memory_bytes) = self.core(env)?.figures().or_throw(env)?;
        last.map(|last| crate::js::observe::figures_object(env, &last, memory_bytes))
            .transpose()
    }

    /// Starts sampling the guest's wasm stack every `intervalUs` microseconds (1000 to 1000000,
    /// default 1000) of its calls; `stopProfiling()` returns the profile. Throws
    /// `ERR_INVALID_STATE` if the profiler is already running, `ERR_SANDBOX_BUSY` during a call.
    #[napi(catch_unwind, ts_args_type = "options?: import('./index').ProfilingOptions")]
    pub fn start_profiling(&self, env: &Env, options: Option<Unknown>) -> Result<()> {
        let interval = crate::js::observe::parse_profiling_options(env, options).or_throw(env)?;
        self.core(env)?.start_profiling(interval).or_throw(env)
    }

    /// Stops the profiler and returns its samples as the facade's formats take them.
    #[napi(catch_unwind, js_name = "takeProfile", skip_typescript)]
    pub fn take_profile<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        match self.core(env)?.stop_profiling().or_throw(env)? {
            Some(profile) => crate::js::observe::profile_object(env, &profile),
            None => Err(throw(
                env,
                &SandboxError::InvalidState(
                    "stopProfiling() was called, but the profiler is not running: call startProfiling() first"
                        .to_owned(),
                ),
            )),
        }
    }

    /// The guest's state now: its memories, globals and tables (`ERR_WASM_SNAPSHOT` for a WASI
    /// sandbox, a call in progress, or a host reference in a global or table).
    #[napi(catch_unwind)]
    pub fn snapshot(&self, env: &Env) -> Result<Snapshot> {
        self.core(env)?.snapshot().map(Snapshot::new).or_throw(env)
    }

    /// Puts `snapshot` (taken of a sandbox of the same module) back: every byte of every
    /// memory, every global and table slot as captured. Views of a memory that became smaller
    /// are detached; others see the restored bytes.
    #[napi(catch_unwind, ts_args_type = "snapshot: Snapshot")]
    pub fn restore(&self, env: &Env, snapshot: Unknown) -> Result<()> {
        // SAFETY: the value belongs to this env and call.
        let Some(snapshot) = (unsafe { unwrap_class::<Snapshot>(env, snapshot.raw()) }) else {
            return Err(SandboxError::InvalidArgType(format!(
                "The \"snapshot\" argument must be a Snapshot. Received {}",
                describe(env, &snapshot)
            )))
            .or_throw(env);
        };
        let state = Rc::clone(snapshot.state().or_throw(env)?);
        let core = Rc::clone(self.core(env)?);
        core.restore(&state).or_throw(env)?;
        self.detach_views_past_memories(env, &core);
        Ok(())
    }

    /// Puts the state right after instantiation back (start function and, for WASI reactors,
    /// `_initialize` already run), as `restore()` does.
    #[napi(catch_unwind)]
    pub fn reset(&self, env: &Env) -> Result<()> {
        let core = Rc::clone(self.core(env)?);
        core.reset().or_throw(env)?;
        self.detach_views_past_memories(env, &core);
        Ok(())
    }

    /// Releases the instance and its memory now: every view is detached first, later calls throw
    /// `ERR_SANDBOX_DISPOSED`, a second call does nothing. Called from inside an import, the
    /// running guest call finishes first and the memory is freed when it returns.
    #[napi(catch_unwind)]
    pub fn dispose(&mut self, env: &Env) {
        let Some(core) = self.core.take() else {
            return;
        };
        self.async_context.borrow_mut().take();
        // An async call running is interrupted (its Promise rejects with ERR_SANDBOX_DISPOSED
        // when it has returned, and the store is freed then); calls waiting reject now.
        self.async_queue.dispose(
            env,
            &SandboxAsync {
                core: Rc::clone(&core),
                bridge: Rc::clone(&self.bridge),
            },
        );
        // SAFETY: the views were made in this env.
        let detached = unsafe { self.views.borrow_mut().detach_all(env.raw()) };
        // See `BufferSandbox::dispose`: free now only if no holder of the memory is unaccounted
        // for (a running call holds one too, so a dispose from inside an import waits for it).
        if Rc::strong_count(&core) == 1 + detached {
            core.release();
        }
        self.external.release();
    }

    /// Same as `dispose()`, for `using sandbox = new Sandbox(...)`.
    #[napi(catch_unwind, well_known_symbol = "dispose")]
    pub fn symbol_dispose(&mut self, env: &Env) {
        self.dispose(env);
    }

    /// What `util.inspect()` and `console.log()` show.
    #[napi(catch_unwind, symbol_for = "nodejs.util.inspect.custom")]
    pub fn inspect(&self) -> String {
        let Some(core) = self.core.as_ref() else {
            return "Sandbox { disposed: true }".to_owned();
        };
        let memory = match core.memory(None).and_then(|memory| core.memory_size(memory)) {
            Ok(bytes) => format!("{bytes} ({} pages)", bytes as u64 / WASM_PAGE_SIZE),
            Err(_) => "none".to_owned(),
        };
        let limits = core.limits();
        let mut shown = format!("Sandbox {{ memorySize: {memory}");
        if let Some(bytes) = limits.max_memory_bytes {
            shown.push_str(&format!(", maxMemoryBytes: {bytes}"));
        }
        if let Some(timeout) = limits.timeout {
            shown.push_str(&format!(", timeoutMs: {}", timeout.as_secs_f64() * 1000.0));
        }
        if let Ok(fuel) = core.fuel() {
            shown.push_str(&format!(", fuel: {fuel}"));
        }
        if core.has_wasi() {
            shown.push_str(", wasi: true");
        }
        shown.push_str(" }");
        shown
    }
}

const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

impl Sandbox {
    pub fn from_source(env: &Env, source: &ModuleSource, options: Option<Unknown>) -> Result<Self> {
        Self::instantiate(env, source, None, options)
    }

    /// A fork of `snapshot`: a new sandbox of its module starting from its state.
    pub fn fork(env: &Env, snapshot: Rc<StateSnapshot>, options: Option<Unknown>) -> Result<Self> {
        let source = snapshot.source().clone();
        Self::instantiate(env, &source, Some(snapshot), options)
    }

    fn instantiate(
        env: &Env,
        source: &ModuleSource,
        origin: Option<Rc<StateSnapshot>>,
        options: Option<Unknown>,
    ) -> Result<Self> {
        let (limits, imports, wasi, output) = parse_options_with(env, options, &["metrics"]).or_throw(env)?;
        let forked = origin.is_some();
        let bridge = Rc::new(ImportBridge::default());
        let stop_probe = crate::js::termination::stop_probe(env);
        let core = CoreSandbox::instantiate(source, limits, wasi.as_ref(), stop_probe, origin, |import, ty| {
            resolve(env, imports, import, ty, &bridge)
        })
        .map_err(|error| match error {
            SandboxError::Import(_) => throw_with_cause(env, &error, bridge.take_exception()),
            other => throw(env, &other),
        })?;
        // A fork's memory is the snapshot's pages, shared until written.
        let memory_bytes = match forked {
            true => 0,
            false => core
                .memory(None)
                .and_then(|memory| core.memory_size(memory))
                .unwrap_or(0),
        };
        let output = OutputDelivery::new(env, core.output_streams(), output);
        let sandbox = Self {
            core: Some(Rc::new(core)),
            views: RefCell::new(ViewRegistry::default()),
            bridge,
            callers: RefCell::default(),
            external: ExternalMemory::report(env, STORE_BYTES + memory_bytes),
            async_queue: Rc::default(),
            async_context: RefCell::default(),
            output,
        };
        // What a reactor's `_initialize` wrote.
        sandbox.deliver_output(env)?;
        Ok(sandbox)
    }

    /// Hands streamed output to its callbacks after a synchronous call; a callback that threw
    /// fails the call.
    #[inline]
    fn deliver_output(&self, env: &Env) -> Result<()> {
        match &self.output {
            Some(output) => output.deliver_after_call(env),
            None => Ok(()),
        }
    }

    /// Validates `callAsync(name, ...args)` into a call of an export.
    fn async_export_call(&self, env: &Env, name: Unknown, args: Option<Unknown>) -> SandboxResult<AsyncCall> {
        let core = alive(self.core.as_ref())?;
        let mut name_buffer = [0u8; 128];
        let name = export_name_checked(env, name.raw(), &mut name_buffer)?;
        let index = core
            .function_index(&name)?
            .ok_or_else(|| SandboxError::InvalidArgType(format!("the guest exports no function named \"{name}\"")))?;
        let args = match args {
            Some(args) => array_elements(env, args.raw())?,
            None => Vec::new(),
        };
        self.async_call_at(env, index, &args)
    }

    /// Validates the arguments of an async call of the export at `index` (from `function_index`).
    fn async_call_at(&self, env: &Env, index: usize, args: &[RawValue]) -> SandboxResult<AsyncCall> {
        let core = alive(self.core.as_ref())?;
        let function = core
            .function_at(index)?
            .ok_or_else(|| SandboxError::Internal(format!("no exported function at index {index}")))?;
        let ty = &function.ty;
        if args.len() != ty.params().len() {
            return Err(SandboxError::InvalidArgType(format!(
                "{} takes {} argument(s); received {}",
                describe_signature(&function.name, ty),
                ty.params().len(),
                args.len()
            )));
        }
        let params = args
            .iter()
            .zip(ty.params())
            .enumerate()
            .map(|(index, (&arg, param))| {
                to_wasm(env, arg, &param).map_err(|(is_type_error, problem)| {
                    let message = format!("{}: argument {index} {problem}", describe_signature(&function.name, ty));
                    if is_type_error {
                        SandboxError::InvalidArgType(message)
                    } else {
                        SandboxError::OutOfRange(message)
                    }
                })
            })
            .collect::<SandboxResult<CallValues>>()?;
        Ok(AsyncCall::Export {
            func: function.func,
            params,
            results: ty.results().len(),
        })
    }

    /// The `AsyncContext` of this sandbox's async calls, made once (`dispose()` lets it go).
    fn async_context(&self, env: &Env) -> Result<AsyncContext> {
        let mut cached = self.async_context.borrow_mut();
        if let Some(context) = cached.as_ref() {
            return Ok(context.clone());
        }
        let context = AsyncContext {
            host: Rc::new(SandboxAsync {
                core: Rc::clone(self.core(env)?),
                bridge: Rc::clone(&self.bridge),
            }),
            queue: Rc::clone(&self.async_queue),
            output: self.output.clone(),
        };
        *cached = Some(context.clone());
        Ok(context)
    }

    /// After a restore: views reaching past a memory's new end are detached.
    fn detach_views_past_memories(&self, env: &Env, core: &CoreSandbox) {
        for region in core.memory_regions().unwrap_or_default() {
            // SAFETY: the views were made in this env.
            unsafe {
                self.views
                    .borrow_mut()
                    .detach_beyond(env.raw(), region.base, region.length)
            };
        }
    }

    fn core(&self, env: &Env) -> Result<&Rc<CoreSandbox>> {
        alive(self.core.as_ref()).or_throw(env)
    }

    /// `call(name, ...args)` on raw arguments.
    pub(crate) fn call_with(&self, env: &Env, args: &[RawValue]) -> Result<RawValue> {
        let Some((&name, args)) = args.split_first() else {
            return Err(throw(env, &missing_name(env, None)));
        };
        let index = self.function_index(env, name)?;
        self.call_index(env, index, args)
    }

    /// The index of the exported function named by the JS value `name` (the facade caches it).
    pub(crate) fn function_index(&self, env: &Env, name: RawValue) -> Result<usize> {
        let core = self.core(env)?;
        let mut name_buffer = [0u8; 128];
        let name = export_name(env, name, &mut name_buffer)?;
        core.function_index(&name)
            .or_throw(env)?
            .ok_or_else(|| SandboxError::InvalidArgType(format!("the guest exports no function named \"{name}\"")))
            .or_throw(env)
    }

    /// The JS import functions, as an array, for the facade to keep alive (see `ImportBridge`).
    pub(crate) fn import_functions(&self, env: &Env) -> Result<RawValue> {
        let mut functions = self.bridge.functions();
        functions.extend(self.output.iter().flat_map(|output| output.functions()));
        let mut array = ptr::null_mut();
        // SAFETY: values of the live env of this call.
        unsafe {
            sys::napi_create_array_with_length(env.raw(), functions.len(), &mut array);
            for (index, function) in functions.into_iter().enumerate() {
                sys::napi_set_element(env.raw(), array, index as u32, function);
            }
        }
        Ok(array)
    }

    /// The target of a `sandboxCaller` handle: this sandbox's export named by `name`. The
    /// pointer stays valid while this sandbox lives.
    pub(crate) fn caller(&self, env: &Env, name: RawValue) -> Result<*const ExportCaller> {
        let index = self.function_index(env, name)?;
        let numeric = self
            .core(env)?
            .function_at(index)
            .or_throw(env)?
            .and_then(|function| Some((function.func, NumericSignature::of(&function.ty)?)));
        let caller = Box::new(ExportCaller {
            sandbox: ptr::from_ref(self),
            index,
            numeric,
        });
        let target = ptr::from_ref(caller.as_ref());
        self.callers.borrow_mut().push(caller);
        Ok(target)
    }

    /// Calls an export of a `NumericSignature` with exactly its arity of arguments, all numbers
    /// in range: one Node-API read per argument straight into wasmtime's raw slots, one value
    /// back (or null, with the guest's error thrown). `None` when anything is off (disposed, a
    /// wrong argument), before the guest runs: the caller then takes `call_index`, which says
    /// precisely what is wrong. Returns a bare value, not a `Result`: moving napi-rs's large
    /// error type around cost a store-forwarding stall per call (seen with perf).
    #[inline(always)]
    pub(crate) fn call_numeric<const ARITY: usize>(
        &self,
        env: &Env,
        func: &Func,
        signature: &NumericSignature,
        args: &[RawValue; ARITY],
    ) -> Option<RawValue> {
        let core = self.core.as_ref()?;
        let raw_env = env.raw();
        let mut slots = numeric_slots(raw_env, signature, args)?;
        // Held for the whole call, as in `call_index`.
        let core = Rc::clone(core);
        let slot_count = signature.arity.max(usize::from(signature.result.is_some()));
        // SAFETY: `func` is an export of `core` (taken from it in `caller`) whose parameters are
        // exactly `signature`'s; the slots hold one value of each and cover the result.
        if let Err(error) = unsafe { core.call_unchecked(func, &mut slots[..slot_count]) } {
            raise(raw_env, self.call_error(env, error));
            return Some(ptr::null_mut());
        }
        if self.output.is_some() && self.deliver_output(env).is_err() {
            return Some(ptr::null_mut());
        }
        let mut value = ptr::null_mut();
        // SAFETY: creating a number in the live env of this call; a null result is `undefined`.
        unsafe {
            match signature.result {
                None => {}
                Some(NumberType::I32) => {
                    sys::napi_create_int32(raw_env, slots[0].get_i32(), &mut value);
                }
                Some(NumberType::F32) => {
                    sys::napi_create_double(raw_env, f64::from(f32::from_bits(slots[0].get_f32())), &mut value);
                }
                Some(NumberType::F64) => {
                    sys::napi_create_double(raw_env, f64::from_bits(slots[0].get_f64()), &mut value);
                }
            }
        }
        Some(value)
    }

    /// Throws the error of a guest call; an import's error carries the JS exception as `cause`.
    fn call_error(&self, env: &Env, error: SandboxError) -> napi::Error {
        // What the guest wrote before it failed; a callback that threw is the first cause.
        if let Err(failed) = self.deliver_output(env) {
            return failed;
        }
        match error {
            SandboxError::Import(_) => throw_with_cause(env, &error, self.bridge.take_exception()),
            other => throw(env, &other),
        }
    }

    /// Calls the exported function at `index` with JS arguments.
    pub(crate) fn call_index(&self, env: &Env, index: usize, args: &[RawValue]) -> Result<RawValue> {
        // Held for the whole call, so a `dispose()` from inside an import cannot free the store
        // under the running guest.
        let core = Rc::clone(self.core(env)?);
        let function = core
            .function_at(index)
            .or_throw(env)?
            .ok_or_else(|| SandboxError::Internal(format!("no exported function at index {index}")))
            .or_throw(env)?;
        let ty = &function.ty;
        let signature = || describe_signature(&function.name, ty);
        let arity = || ty.params().len();
        let argument_error = |index: usize, (is_type_error, problem): (bool, String)| {
            let message = format!("{}: argument {index} {problem}", signature());
            throw(
                env,
                &if is_type_error {
                    SandboxError::InvalidArgType(message)
                } else {
                    SandboxError::OutOfRange(message)
                },
            )
        };
        let arity_error = || {
            throw(
                env,
                &SandboxError::InvalidArgType(format!(
                    "{} takes {} argument(s); received {}",
                    signature(),
                    arity(),
                    args.len()
                )),
            )
        };
        let call_error = |error: SandboxError| self.call_error(env, error);

        if let Some((params, results)) = &function.numeric {
            if args.len() != params.len() {
                return Err(arity_error());
            }
            // Numbers only: straight into the raw slots wasmtime calls with, on the stack,
            // without the checks and conversions of `Func::call`.
            let slots = params.len().max(results.len());
            let mut inline = [ValRaw::i32(0); 4];
            let mut spilled = Vec::new();
            let raw: &mut [ValRaw] = if slots <= inline.len() {
                &mut inline[..slots]
            } else {
                spilled.resize(slots, ValRaw::i32(0));
                &mut spilled
            };
            for (index, (&arg, param)) in args.iter().zip(params).enumerate() {
                raw[index] = to_wasm(env, arg, param)
                    .map(|value| to_raw(&value))
                    .map_err(|problem| argument_error(index, problem))?;
            }
            // SAFETY: `function` is an export of `core`; `raw` holds one value of each parameter's
            // (numeric) type and is as long as the longer of the parameter and result lists.
            unsafe { core.call_unchecked(&function.func, raw) }.map_err(call_error)?;
            self.deliver_output(env)?;
            if let [result] = results.as_slice() {
                return from_wasm(env, &from_raw(result, &raw[0])).or_throw(env);
            }
            let values: Vec<Val> = results
                .iter()
                .zip(raw.iter())
                .map(|(result, slot)| from_raw(result, slot))
                .collect();
            return results_to_js(env, &values).or_throw(env);
        }

        if args.len() != arity() {
            return Err(arity_error());
        }
        let params = args
            .iter()
            .zip(ty.params())
            .enumerate()
            .map(|(index, (&arg, param))| to_wasm(env, arg, &param).map_err(|problem| argument_error(index, problem)))
            .collect::<Result<Vec<Val>>>()?;
        let mut results = vec![Val::I32(0); ty.results().len()];
        core.call(&function.func, &params, &mut results).map_err(call_error)?;
        self.deliver_output(env)?;
        results_to_js(env, &results).or_throw(env)
    }
}

fn missing_name(env: &Env, name: Option<RawValue>) -> SandboxError {
    SandboxError::InvalidArgType(format!(
        "The \"name\" argument must be of type string. Received {}",
        name.map_or_else(|| "undefined".to_owned(), |name| describe_raw(env, name))
    ))
}

fn optional_name(env: &Env, name: Option<Unknown>) -> SandboxResult<Option<String>> {
    match name {
        None => Ok(None),
        Some(name) if name.get_type().ok() == Some(ValueType::Undefined) => Ok(None),
        Some(name) if name.get_type().ok() == Some(ValueType::String) => {
            // SAFETY: checked to be a string of this env.
            unsafe { napi::bindgen_prelude::FromNapiValue::from_napi_value(env.raw(), name.raw()) }
                .map(Some)
                .map_err(|error| SandboxError::Internal(error.to_string()))
        }
        Some(name) => Err(SandboxError::InvalidArgType(format!(
            "The \"name\" argument must be of type string. Received {}",
            describe(env, &name)
        ))),
    }
}

/// The options as the core takes them: limits, the `imports` object, WASI options and the
/// callbacks of streamed output.
type ParsedOptions = (Limits, Option<RawValue>, Option<WasiOptions>, OutputCallbacks);

/// Validates the options object: known keys only, each of the right type and range.
pub(crate) fn parse_options(env: &Env, options: Option<Unknown>) -> SandboxResult<ParsedOptions> {
    parse_options_with(env, options, &[])
}

/// `parse_options`, also allowing the keys `more` (which the caller reads).
pub(crate) fn parse_options_with(env: &Env, options: Option<Unknown>, more: &[&str]) -> SandboxResult<ParsedOptions> {
    let Some(options) = options.filter(|options| options.get_type().ok() != Some(ValueType::Undefined)) else {
        return Ok((Limits::default(), None, None, OutputCallbacks::default()));
    };
    if options.get_type().ok() != Some(ValueType::Object) {
        return Err(SandboxError::InvalidArgType(format!(
            "The \"options\" argument must be of type object. Received {}",
            describe(env, &options)
        )));
    }
    for key in own_keys(env, options.raw())? {
        if !OPTION_NAMES.contains(&key.as_str()) && !more.contains(&key.as_str()) {
            return Err(SandboxError::InvalidArgType(format!(
                "Unknown option \"{key}\": the options are {}",
                more.iter().chain(&OPTION_NAMES).copied().collect::<Vec<_>>().join(", ")
            )));
        }
    }
    let option = |key: &str| -> SandboxResult<Option<Unknown>> {
        let value = get_property(env, options.raw(), key)?;
        // SAFETY: the value belongs to this env and call.
        let value = unsafe { Unknown::from_raw_unchecked(env.raw(), value) };
        Ok((value.get_type().ok() != Some(ValueType::Undefined)).then_some(value))
    };
    let max_memory_bytes = option("maxMemoryBytes")?
        .map(|value| {
            integer_in_range(
                env,
                &value,
                "options.maxMemoryBytes",
                0.0,
                MAX_WASM32_MEMORY_BYTES as f64,
            )
        })
        .transpose()?
        .map(|bytes| bytes as u64);
    let timeout = option("timeoutMs")?
        .map(|value| integer_in_range(env, &value, "options.timeoutMs", 1.0, 2_147_483_647.0))
        .transpose()?
        .map(|milliseconds| Duration::from_millis(milliseconds as u64));
    let cpu_time = option("cpuTimeMs")?
        .map(|value| integer_in_range(env, &value, "options.cpuTimeMs", 1.0, 2_147_483_647.0))
        .transpose()?
        .map(|milliseconds| Duration::from_millis(milliseconds as u64));
    let metrics = match option("metrics")? {
        None => false,
        Some(value) if value.get_type().ok() == Some(ValueType::Boolean) => {
            // SAFETY: checked to be a boolean of this env.
            unsafe { napi::bindgen_prelude::FromNapiValue::from_napi_value(env.raw(), value.raw()) }
                .map_err(|error: napi::Error| SandboxError::Internal(error.to_string()))?
        }
        Some(value) => {
            return Err(SandboxError::InvalidArgType(format!(
                "The \"options.metrics\" property must be of type boolean. Received {}",
                describe(env, &value)
            )));
        }
    };
    let fuel = option("fuel")?
        .map(|value| integer_in_range(env, &value, "options.fuel", 0.0, MAX_SAFE_INTEGER))
        .transpose()?
        .map(|fuel| fuel as u64);
    let imports = match option("imports")? {
        None => None,
        Some(value) if value.get_type().ok() == Some(ValueType::Object) => Some(value.raw()),
        Some(value) => {
            return Err(SandboxError::InvalidArgType(format!(
                "The \"options.imports\" property must be of type object. Received {}",
                describe(env, &value)
            )));
        }
    };
    let wasi = match option("wasi")? {
        None => None,
        Some(value) => parse_wasi_options(env, value.raw())?,
    };
    let (wasi, output) = wasi.map_or((None, OutputCallbacks::default()), |(wasi, output)| {
        (Some(wasi), output)
    });
    Ok((
        Limits {
            max_memory_bytes,
            timeout,
            fuel,
            cpu_time,
            metrics,
        },
        imports,
        wasi,
        output,
    ))
}

pub(crate) fn own_keys(env: &Env, object: RawValue) -> SandboxResult<Vec<String>> {
    let mut keys = ptr::null_mut();
    // SAFETY: `object` is an object of this env.
    let status = unsafe { sys::napi_get_property_names(env.raw(), object, &mut keys) };
    if status != sys::Status::napi_ok {
        let mut exception = ptr::null_mut();
        // SAFETY: clears what a throwing proxy left pending.
        unsafe { sys::napi_get_and_clear_last_exception(env.raw(), &mut exception) };
        return Err(SandboxError::InvalidArgType(
            "the options object could not be enumerated".to_owned(),
        ));
    }
    let mut length = 0;
    // SAFETY: `keys` is the array just returned.
    unsafe { sys::napi_get_array_length(env.raw(), keys, &mut length) };
    (0..length)
        .map(|index| {
            let mut key = ptr::null_mut();
            // SAFETY: `index < length`; property names are strings.
            unsafe { sys::napi_get_element(env.raw(), keys, index, &mut key) };
            unsafe { napi::bindgen_prelude::FromNapiValue::from_napi_value(env.raw(), key) }
                .map_err(|error: napi::Error| SandboxError::Internal(error.to_string()))
        })
        .collect()
}

impl ObjectFinalize for Sandbox {
    fn finalize(self, env: Env) -> Result<()> {
        // The views stay valid on their own (each holds the sandbox); only our references go.
        // SAFETY: the references were made in this env.
        unsafe { self.views.borrow_mut().release(env.raw()) };
        Ok(())
    }
}

/// Reads an export name into `buffer` when it fits (no allocation on the hot path).
fn export_name<'a>(env: &Env, name: RawValue, buffer: &'a mut [u8; 128]) -> Result<std::borrow::Cow<'a, str>> {
    let mut length = 0usize;
    // SAFETY: `name` belongs to this env; a non-string gives `napi_string_expected`.
    let status = unsafe {
        sys::napi_get_value_string_utf8(env.raw(), name, buffer.as_mut_ptr().cast(), buffer.len(), &mut length)
    };
    if status != sys::Status::napi_ok {
        return Err(throw(env, &missing_name(env, Some(name))));
    }
    if length < buffer.len() - 1 {
        // Node-API writes whole UTF-8 characters only, so the prefix is valid UTF-8.
        return Ok(std::borrow::Cow::Borrowed(
            std::str::from_utf8(&buffer[..length]).unwrap_or_default(),
        ));
    }
    // SAFETY: checked to be a string of this env.
    let owned: String = unsafe { napi::bindgen_prelude::FromNapiValue::from_napi_value(env.raw(), name) }?;
    Ok(std::borrow::Cow::Owned(owned))
}

/// `export_name` for the async methods, which reject rather than throw.
fn export_name_checked(env: &Env, name: RawValue, buffer: &mut [u8; 128]) -> SandboxResult<String> {
    if crate::js::values::type_of(env, name) != ValueType::String {
        return Err(missing_name(env, Some(name)));
    }
    export_name(env, name, buffer)
        .map(|name| name.into_owned())
        .map_err(|_| missing_name(env, Some(name)))
}

/// The elements of the JS array `array`.
fn array_elements(env: &Env, array: RawValue) -> SandboxResult<Vec<RawValue>> {
    let mut length = 0u32;
    // SAFETY: `array` belongs to this env (the facade passes its rest parameter).
    if unsafe { sys::napi_get_array_length(env.raw(), array, &mut length) } != sys::Status::napi_ok {
        return Err(SandboxError::Internal(
            "callAsync expects its arguments as an array".to_owned(),
        ));
    }
    (0..length)
        .map(|index| {
            let mut element = ptr::null_mut();
            // SAFETY: `index < length`.
            match unsafe { sys::napi_get_element(env.raw(), array, index, &mut element) } {
                sys::Status::napi_ok => Ok(element),
                _ => Err(SandboxError::Internal("could not read an argument".to_owned())),
            }
        })
        .collect()
}

/// A numeric `Val` as the raw slot wasmtime passes.
fn to_raw(value: &Val) -> ValRaw {
    match *value {
        Val::I32(number) => ValRaw::i32(number),
        Val::I64(number) => ValRaw::i64(number),
        Val::F32(bits) => ValRaw::f32(bits),
        Val::F64(bits) => ValRaw::f64(bits),
        // `to_wasm` makes numbers only, and the raw path is taken for numeric signatures only.
        _ => ValRaw::i32(0),
    }
}

/// A raw result slot read as a `Val` of a numeric `value_type`.
fn from_raw(value_type: &wasmtime::ValType, slot: &ValRaw) -> Val {
    match value_type {
        wasmtime::ValType::I64 => Val::I64(slot.get_i64()),
        wasmtime::ValType::F32 => Val::F32(slot.get_f32()),
        wasmtime::ValType::F64 => Val::F64(slot.get_f64()),
        _ => Val::I32(slot.get_i32()),
    }
}
