//! A sandbox: one wasmtime `Store` with one instance, its limits (memory cap, fuel, deadline),
//! calls into it, and access to its linear memory.
//!
//! Every method takes `&self`: a host function may re-enter the sandbox that called it (read its
//! memory, call another export). While a host function runs, the store is reached through the
//! `Caller` wasmtime handed it instead of the `RefCell`, which the outer call holds.

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use wasmtime::{
    AsContextMut, Caller, Extern, Func, FuncType, ImportType, Instance, InstancePre, Linker, Memory, ModuleExport,
    PoolConcurrencyLimitError, Store, StoreContextMut, StoreLimits, StoreLimitsBuilder, Trap, UpdateDeadline, Val,
    ValType,
};

use crate::engine::{DENSE_SLOTS_VARIABLE, EngineKind, TickerGuard, deadline_ticks, dense_slots, engine_with};
use crate::error::{SandboxError, SandboxResult, TrapKind};
use crate::module::ModuleSource;

/// Size of a wasm page, the unit of `memory.grow`.
pub const WASM_PAGE_SIZE: u64 = 65_536;

/// The largest a wasm32 memory can be.
pub const MAX_WASM32_MEMORY_BYTES: u64 = 1 << 32;

/// An epoch deadline that is never reached: used while no deadline applies.
const NO_DEADLINE: u64 = 1 << 62;

/// Limits a sandbox enforces on its guest.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    /// Cap on each linear memory, in bytes.
    pub max_memory_bytes: Option<u64>,
    /// Wall-clock limit for each outermost call.
    pub timeout: Option<Duration>,
    /// Initial fuel budget; selects the metered engine.
    pub fuel: Option<u64>,
}

/// Per-store data the host keeps for the guest.
pub struct HostState {
    limits: StoreLimits,
}

/// Asked now and then while a guest runs in a worker thread: `true` stops the guest (its thread
/// is being terminated). Supplied by the embedder, which knows how to ask.
pub type StopProbe = Box<dyn Fn() -> bool>;

/// A host function supplied by the embedder (the JS glue): reads `params`, fills `results`.
pub type HostFunction = Box<dyn Fn(&[Val], &mut [Val]) -> Result<(), HostFunctionError>>;

/// How a host function failed; the embedder keeps its own details (a JS exception) aside.
#[derive(Debug, thiserror::Error)]
#[error("the import `{import}` failed: {message}")]
pub struct HostFunctionError {
    pub import: String,
    pub message: String,
}

/// The `Caller` of the host function now running on this sandbox, if any.
#[derive(Default)]
struct ActiveCaller {
    caller: Cell<Option<*mut Caller<'static, HostState>>>,
}

/// Moves thread-bound values into wasmtime's `Send + Sync` host-function closures.
struct ThreadBound<T>(T);
// SAFETY: a store, and so every host function in it, is only ever used on the thread that made
// it: the sandbox holding it is `!Send` (it lives in an `Rc` owned by one JS object), and
// wasmtime runs host functions on the thread that called into the store.
unsafe impl<T> Send for ThreadBound<T> {}
unsafe impl<T> Sync for ThreadBound<T> {}

impl<T> ThreadBound<T> {
    /// A method, not a field access, so closures capture the whole (`Send`) wrapper.
    fn get(&self) -> &T {
        &self.0
    }
}

/// One instantiated guest with its own store.
pub struct Sandbox {
    /// `None` once released.
    store: RefCell<Option<Store<HostState>>>,
    active: Rc<ActiveCaller>,
    instance: Instance,
    memory: Option<Memory>,
    /// Exported functions with their types; built on first use (the buffer guest never needs
    /// them, and building them is a good part of instantiation's cost).
    functions: OnceCell<ExportedFunctions>,
    limits: Limits,
    /// Keeps the epoch ticking while a sandbox with a time limit lives.
    _ticker: Option<TickerGuard>,
    /// The end of the native stack of the thread this sandbox lives on (see `stack.rs`).
    stack_bottom: usize,
    /// Whether running guests ask a stop probe at every epoch tick (worker threads).
    watched: bool,
}

/// Where a memory lives in the host's address space. `base` stays fixed for the memory's whole
/// life (the engine forbids moving memories), so a view over `base..base + length` stays valid
/// as long as the store that owns it is alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryRegion {
    pub base: *mut u8,
    pub length: usize,
}

impl Sandbox {
    /// Instantiates `source` in a new store. `resolve` supplies a host function for each
    /// function import (or an error naming what is wrong with it).
    pub fn instantiate(
        source: &ModuleSource,
        limits: Limits,
        stop_probe: Option<StopProbe>,
        mut resolve: impl FnMut(&ImportType, &FuncType) -> SandboxResult<HostFunction>,
    ) -> SandboxResult<Self> {
        // The start function runs during instantiation.
        crate::stack::ensure_room_for_wasm(crate::stack::thread_stack_bottom())?;
        let kind = if limits.fuel.is_some() {
            EngineKind::Metered
        } else {
            EngineKind::Standard
        };
        let engine = engine_with(kind, source.compiler())?;
        let module = source.for_engine(kind)?;
        // A timed guest stops at its deadline anyway; an untimed one is watched, if asked.
        let stop_probe = stop_probe.filter(|_| limits.timeout.is_none());
        let watched = stop_probe.is_some();
        let mut store = new_store(engine, limits, true)?;
        if let Some(probe) = stop_probe {
            let probe = ThreadBound(probe);
            store.epoch_deadline_callback(move |_| {
                Ok(if (probe.get())() {
                    UpdateDeadline::Interrupt
                } else {
                    UpdateDeadline::Continue(1)
                })
            });
        }
        let active = Rc::new(ActiveCaller::default());
        let mut linker = Linker::new(engine);
        for import in module.imports() {
            let wasmtime::ExternType::Func(func_type) = import.ty() else {
                return Err(SandboxError::Link(format!(
                    "the import \"{}.{}\" is a {}; only function imports can be supplied",
                    import.module(),
                    import.name(),
                    extern_kind(&import.ty())
                )));
            };
            let host = ThreadBound((resolve(&import, &func_type)?, Rc::clone(&active)));
            linker
                .func_new(
                    import.module(),
                    import.name(),
                    func_type,
                    move |mut caller, params, results| {
                        let (function, active) = host.get();
                        let caller_ptr = (&raw mut caller).cast::<Caller<'static, HostState>>();
                        let _restore = RestoreCaller(active, active.caller.replace(Some(caller_ptr)));
                        function(params, results).map_err(wasmtime::Error::new)
                    },
                )
                .map_err(|error| SandboxError::Link(format!("{error:#}")))?;
        }
        let instance = linker
            .instantiate(&mut store, &module)
            .map_err(|error| instantiation_error(error, limits))?;
        let ticker = match (limits.timeout, watched) {
            (Some(_), _) => Some(TickerGuard::timed()?),
            (None, true) => Some(TickerGuard::watched()?),
            (None, false) => None,
        };
        Ok(Self {
            _ticker: ticker,
            watched,
            ..Self::finish(store, instance, active, limits)
        })
    }

    /// Instantiates a pre-linked module that imports nothing (the buffer guest), with no limits.
    /// `memory` is the index of its memory export.
    pub fn instantiate_pre(pre: &InstancePre<HostState>, memory: &ModuleExport) -> SandboxResult<Self> {
        let limits = Limits::default();
        // The dense engine runs without epoch interruption: the buffer guest has no time limit.
        let mut store = new_store(pre.module().engine(), limits, false)?;
        let instance = pre
            .instantiate(&mut store)
            .map_err(|error| instantiation_error(error, limits))?;
        let memory = instance
            .get_module_export(&mut store, memory)
            .and_then(Extern::into_memory);
        Ok(Self::with_parts(store, instance, memory, Rc::default(), limits))
    }

    fn finish(mut store: Store<HostState>, instance: Instance, active: Rc<ActiveCaller>, limits: Limits) -> Self {
        let memory = instance.get_memory(&mut store, "memory").or_else(|| {
            // Guests that name their memory differently still get a default view.
            instance.exports(&mut store).find_map(|export| export.into_memory())
        });
        Self::with_parts(store, instance, memory, active, limits)
    }

    fn with_parts(
        store: Store<HostState>,
        instance: Instance,
        memory: Option<Memory>,
        active: Rc<ActiveCaller>,
        limits: Limits,
    ) -> Self {
        Self {
            store: RefCell::new(Some(store)),
            active,
            instance,
            memory,
            functions: OnceCell::new(),
            limits,
            _ticker: None,
            stack_bottom: crate::stack::thread_stack_bottom(),
            watched: false,
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Runs `action` on the store: through the active host function's `Caller` when re-entered
    /// from one, else through the owned store.
    pub fn with_context<R>(&self, action: impl FnOnce(StoreContextMut<'_, HostState>) -> R) -> SandboxResult<R> {
        if let Some(caller) = self.active.caller.get() {
            // SAFETY: the pointer is set only while a host function of this store runs on this
            // thread, and that function is blocked in the embedder's code that called us; the
            // `Caller` lives on its stack frame until `RestoreCaller` clears the pointer.
            let caller = unsafe { &mut *caller };
            return Ok(action(caller.as_context_mut()));
        }
        let mut store = self.store.try_borrow_mut().map_err(|_| SandboxError::Busy)?;
        let store = crate::error::alive(store.as_mut())?;
        Ok(action(store.as_context_mut()))
    }

    /// Frees the store now. Returns `false` (and frees nothing) while a call is running on it.
    pub fn release(&self) -> bool {
        match self.store.try_borrow_mut() {
            Ok(mut store) => {
                store.take();
                true
            }
            Err(_) => false,
        }
    }

    fn exported_functions(&self) -> SandboxResult<&ExportedFunctions> {
        if let Some(functions) = self.functions.get() {
            return Ok(functions);
        }
        let functions = self.with_context(|mut context| {
            let exports: Vec<_> = self
                .instance
                .exports(&mut context)
                .filter_map(|export| {
                    let name: Box<str> = export.name().into();
                    export.into_func().map(|func| (name, func))
                })
                .collect();
            let list: Vec<ExportedFunction> = exports
                .into_iter()
                .map(|(name, func)| ExportedFunction::new(name, func, func.ty(&context)))
                .collect();
            let by_name = list
                .iter()
                .enumerate()
                .map(|(index, function)| (function.name.clone(), index))
                .collect();
            ExportedFunctions { list, by_name }
        })?;
        Ok(self.functions.get_or_init(|| functions))
    }

    /// The index of the exported function `name`, for `function_at`.
    pub fn function_index(&self, name: &str) -> SandboxResult<Option<usize>> {
        Ok(self.exported_functions()?.by_name.get(name).copied())
    }

    /// The exported function at `index` (from `function_index`).
    pub fn function_at(&self, index: usize) -> SandboxResult<Option<&ExportedFunction>> {
        Ok(self.exported_functions()?.list.get(index))
    }

    /// Runs `run` (a call into the guest) on the store. An outermost call on a sandbox with a
    /// timeout gets a fresh deadline; a re-entrant call (from a host function) runs under the
    /// outer call's deadline.
    #[inline]
    fn enter<R>(
        &self,
        run: impl FnOnce(&mut StoreContextMut<'_, HostState>) -> wasmtime::Result<R>,
    ) -> SandboxResult<R> {
        // Written out rather than through `with_context`: on this path a nested `Result` costs a
        // store-forwarding stall per call (seen with perf).
        let outcome = if let Some(caller) = self.active.caller.get() {
            // Re-entrant calls run within the stack allowance wasmtime set at the outermost one,
            // and under its deadline.
            // SAFETY: as in `with_context`.
            let caller = unsafe { &mut *caller };
            run(&mut caller.as_context_mut())
        } else {
            crate::stack::ensure_room_for_wasm(self.stack_bottom)?;
            let mut store = self.store.try_borrow_mut().map_err(|_| SandboxError::Busy)?;
            let mut context = crate::error::alive(store.as_mut())?.as_context_mut();
            if let Some(timeout) = self.limits.timeout {
                context.set_epoch_deadline(deadline_ticks(timeout));
            } else if self.watched {
                context.set_epoch_deadline(1);
            }
            run(&mut context)
        };
        outcome.map_err(|error| self.call_failed(error))
    }

    #[cold]
    #[inline(never)]
    fn call_failed(&self, error: wasmtime::Error) -> SandboxError {
        self.explain(SandboxError::from_call(error))
    }

    /// Calls `func` with `params`, writing `results`.
    pub fn call(&self, func: &Func, params: &[Val], results: &mut [Val]) -> SandboxResult<()> {
        self.enter(|context| func.call(context, params, results))
    }

    /// Calls `func` with its arguments in `params_and_results` and leaves its results there.
    ///
    /// # Safety
    /// `func` must be an export of this sandbox, and `params_and_results` must hold values of its
    /// parameter types and be as long as the longer of its parameter and result lists (the
    /// contract of `Func::call_unchecked`); only numeric types (no references) may appear.
    #[inline]
    pub unsafe fn call_unchecked(&self, func: &Func, params_and_results: &mut [wasmtime::ValRaw]) -> SandboxResult<()> {
        // SAFETY: forwarded from this function's contract.
        self.enter(|context| unsafe { func.call_unchecked(context, params_and_results) })
    }

    /// Says which limit a limit trap hit, in the sandbox's own terms.
    fn explain(&self, error: SandboxError) -> SandboxError {
        match error {
            SandboxError::Trap {
                kind: kind @ TrapKind::Interrupt,
                backtrace,
                ..
            } => SandboxError::Trap {
                kind,
                message: match self.limits.timeout {
                    Some(timeout) => format!(
                        "the guest ran past its time limit (timeoutMs: {}) and was stopped",
                        timeout.as_millis()
                    ),
                    None => "the guest was stopped because its thread is being terminated".to_owned(),
                },
                backtrace,
            },
            SandboxError::Trap {
                kind: kind @ TrapKind::OutOfFuel,
                backtrace,
                ..
            } => SandboxError::Trap {
                kind,
                message: "the guest used up its fuel (set sandbox.fuel to refill it)".to_owned(),
                backtrace,
            },
            other => other,
        }
    }

    /// The function exported at a module export index.
    pub fn func_by_export(&self, export: &ModuleExport) -> SandboxResult<Func> {
        self.with_context(|mut context| {
            self.instance
                .get_module_export(&mut context, export)
                .and_then(Extern::into_func)
                .ok_or_else(|| SandboxError::BadExport {
                    name: "(by index)".to_owned(),
                    expected: "function",
                    reason: "missing".to_owned(),
                })
        })?
    }

    /// The memory exported as `name`, or the default memory (`memory`, else the first exported).
    pub fn memory(&self, name: Option<&str>) -> SandboxResult<Memory> {
        match name {
            None => self.memory.ok_or_else(|| SandboxError::NoMemory("memory".to_owned())),
            Some(name) => self
                .with_context(|mut context| self.instance.get_memory(&mut context, name))?
                .ok_or_else(|| SandboxError::NoMemory(name.to_owned())),
        }
    }

    /// The memory's current place and size.
    pub fn memory_region(&self, memory: Memory) -> SandboxResult<MemoryRegion> {
        self.with_context(|context| MemoryRegion {
            base: memory.data_ptr(&context),
            length: memory.data_size(&context),
        })
    }

    /// The memory's size in bytes.
    pub fn memory_size(&self, memory: Memory) -> SandboxResult<usize> {
        self.with_context(|context| memory.data_size(&context))
    }

    /// Grows the memory by `pages` wasm pages; returns the previous size in pages.
    pub fn grow(&self, memory: Memory, pages: u64) -> SandboxResult<u64> {
        let max_memory_bytes = self.limits.max_memory_bytes;
        self.with_context(|mut context| {
            let current_pages = memory.size(&context);
            memory.grow(&mut context, pages).map_err(|error| {
                let cap = match max_memory_bytes {
                    Some(bytes) => format!("the sandbox's maxMemoryBytes is {bytes}"),
                    None => format!(
                        "the memory's maximum is {} pages",
                        memory
                            .ty(&context)
                            .maximum()
                            .unwrap_or(MAX_WASM32_MEMORY_BYTES / WASM_PAGE_SIZE)
                    ),
                };
                SandboxError::MemoryLimit(format!(
                    "cannot grow memory by {pages} pages from {current_pages} pages of {WASM_PAGE_SIZE} bytes: \
                     {cap} ({error:#})"
                ))
            })
        })?
    }

    /// Copies `length` bytes at `offset` out of the memory.
    pub fn read(&self, memory: Memory, offset: u64, length: u64) -> SandboxResult<Vec<u8>> {
        self.with_context(|context| {
            let data = memory.data(&context);
            let range = checked_range(offset, length, data.len())?;
            Ok(data[range].to_vec())
        })?
    }

    /// Copies `bytes` into the memory at `offset`.
    pub fn write(&self, memory: Memory, offset: u64, bytes: &[u8]) -> SandboxResult<()> {
        self.with_context(|mut context| {
            let data = memory.data_mut(&mut context);
            let range = checked_range(offset, bytes.len() as u64, data.len())?;
            data[range].copy_from_slice(bytes);
            Ok(())
        })?
    }

    /// Fuel left, for a sandbox with a fuel budget.
    pub fn fuel(&self) -> SandboxResult<u64> {
        self.require_fuel()?;
        self.with_context(|context| {
            context
                .get_fuel()
                .map_err(|error| SandboxError::Internal(format!("{error:#}")))
        })?
    }

    /// Sets the fuel left, for a sandbox with a fuel budget.
    pub fn set_fuel(&self, fuel: u64) -> SandboxResult<()> {
        self.require_fuel()?;
        self.with_context(|mut context| {
            context
                .set_fuel(fuel)
                .map_err(|error| SandboxError::Internal(format!("{error:#}")))
        })?
    }

    fn require_fuel(&self) -> SandboxResult<()> {
        match self.limits.fuel {
            Some(_) => Ok(()),
            None => Err(SandboxError::FuelNotEnabled),
        }
    }
}

/// Clears (restores) the active caller when a host function returns or unwinds.
struct RestoreCaller<'a>(&'a ActiveCaller, Option<*mut Caller<'static, HostState>>);

impl Drop for RestoreCaller<'_> {
    fn drop(&mut self) {
        self.0.caller.set(self.1);
    }
}

/// `offset..offset + length` if it lies inside `size` bytes, with no overflow on the way.
fn checked_range(offset: u64, length: u64, size: usize) -> SandboxResult<std::ops::Range<usize>> {
    let end = offset
        .checked_add(length)
        .filter(|&end| end <= size as u64)
        .ok_or_else(|| {
            SandboxError::OutOfRange(format!(
                "The range [{offset}, {offset} + {length}) is outside the memory's {size} bytes"
            ))
        })?;
    Ok(offset as usize..end as usize)
}

fn extern_kind(ty: &wasmtime::ExternType) -> &'static str {
    match ty {
        wasmtime::ExternType::Func(_) => "function",
        wasmtime::ExternType::Memory(_) => "memory",
        wasmtime::ExternType::Table(_) => "table",
        wasmtime::ExternType::Global(_) => "global",
        wasmtime::ExternType::Tag(_) => "tag",
    }
}

/// A store on `engine` enforcing `limits`.
/// `epochs` says whether the engine interrupts on epochs (then every store needs a deadline).
fn new_store(engine: &wasmtime::Engine, limits: Limits, epochs: bool) -> SandboxResult<Store<HostState>> {
    let mut store_limits = StoreLimitsBuilder::new().instances(1);
    if let Some(bytes) = limits.max_memory_bytes {
        store_limits = store_limits.memory_size(usize::try_from(bytes).unwrap_or(usize::MAX));
    }
    let mut store = Store::new(
        engine,
        HostState {
            limits: store_limits.build(),
        },
    );
    store.limiter(|state| &mut state.limits);
    if epochs {
        // Until a timed call sets a real deadline, none is ever reached: an untimed store just
        // pushes it out again should the epoch ever get there.
        store.set_epoch_deadline(NO_DEADLINE);
        if limits.timeout.is_some() {
            store.epoch_deadline_trap();
        } else {
            store.epoch_deadline_callback(|_| Ok(UpdateDeadline::Continue(NO_DEADLINE)));
        }
    }
    if let Some(fuel) = limits.fuel {
        store
            .set_fuel(fuel)
            .map_err(|error| SandboxError::Internal(format!("{error:#}")))?;
    }
    Ok(store)
}

/// Classifies a failed instantiation: a trap or failing import in the start function, a memory
/// over `maxMemoryBytes`, an exhausted pool or address space, or a linking problem.
fn instantiation_error(error: wasmtime::Error, limits: Limits) -> SandboxError {
    if error.downcast_ref::<Trap>().is_some() || error.downcast_ref::<HostFunctionError>().is_some() {
        return SandboxError::from_call(error);
    }
    let message = format!("{error:#}");
    if error.downcast_ref::<PoolConcurrencyLimitError>().is_some() {
        return SandboxError::SandboxLimit(format!(
            "all {} BufferSandbox slots are in use ({message}): dispose() sandboxes you are done with \
             (garbage collection alone frees them only between event-loop turns), or raise the limit \
             with the environment variable {}=<count> before the first BufferSandbox is made",
            dense_slots(),
            DENSE_SLOTS_VARIABLE
        ));
    }
    if message.contains("Cannot allocate memory") || message.contains("mmap failed") {
        return SandboxError::SandboxLimit(format!(
            "the process cannot reserve memory for another sandbox ({message}): each Sandbox reserves \
             4 GiB of address space and two memory mappings; dispose() sandboxes you are done with"
        ));
    }
    if limits.max_memory_bytes.is_some() && message.contains("exceeds memory limits") {
        return SandboxError::MemoryLimit(message);
    }
    SandboxError::Link(message)
}

struct ExportedFunctions {
    list: Vec<ExportedFunction>,
    by_name: HashMap<Box<str>, usize>,
}

/// An exported function with what a dynamic call needs to know about it, computed once.
pub struct ExportedFunction {
    pub name: Box<str>,
    pub func: Func,
    pub ty: FuncType,
    /// Parameter and result types, when all are numbers (the raw-slot fast path), else `None`.
    pub numeric: Option<(Vec<ValType>, Vec<ValType>)>,
}

impl ExportedFunction {
    fn new(name: Box<str>, func: Func, ty: FuncType) -> Self {
        let is_number =
            |value_type: &ValType| matches!(value_type, ValType::I32 | ValType::I64 | ValType::F32 | ValType::F64);
        let params: Vec<ValType> = ty.params().collect();
        let results: Vec<ValType> = ty.results().collect();
        let numeric = (params.iter().chain(&results).all(is_number)).then_some((params, results));
        Self {
            name,
            func,
            ty,
            numeric,
        }
    }
}
