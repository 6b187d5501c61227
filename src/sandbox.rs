//! A sandbox: one wasmtime `Store` with one instance, its limits (memory cap, fuel, deadline),
//! calls into it, and access to its linear memory.
//!
//! Every method takes `&self`: a host function may re-enter the sandbox that called it (read its
//! memory, call another export). While a host function runs, the store is reached through the
//! `Caller` wasmtime handed it instead of the `RefCell`, which the outer call holds.

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use wasmtime::{
    AsContextMut, Caller, Func, FuncType, ImportType, Instance, Linker, Memory, PoolConcurrencyLimitError, Store,
    StoreContextMut, StoreLimitsBuilder, Trap, UpdateDeadline, Val, ValType,
};

use crate::engine::{
    Compiler, EngineKind, PerWasiEngine, SERVICE_SLOTS_VARIABLE, TickerGuard, TimedCall, deadline_ticks, engine_with,
    service_slots,
};
use crate::error::{SandboxError, SandboxResult};
use crate::module::ModuleSource;
use crate::remote::{CallerPtr, Interrupted, RemoteLink, ToJs, ToPool};
use crate::wasi::{Drain, Output, OutputStreams, WasiOptions, WasiState, is_wasi_module, take_output_of};

/// Size of a wasm page, the unit of `memory.grow`.
pub const WASM_PAGE_SIZE: u64 = 65_536;

/// The largest a wasm32 memory can be.
pub const MAX_WASM32_MEMORY_BYTES: u64 = 1 << 32;

pub use crate::store::Limits;
use crate::store::expose_state::{HIDDEN_START, is_hidden_export};
use crate::store::observe::{self, CallFigures, Profile};
use crate::store::snapshot::{self, Functions, InitialState, StateSnapshot};
use crate::store::{LimitedState, Observer, RemoteState, apply_limits, async_epochs};

/// Per-store data the host keeps for the guest.
pub struct HostState {
    observer: Observer,
    /// The guest's WASI context, when it was given one.
    wasi: Option<WasiState>,
    /// While an async call runs the guest on a pool thread: the way to the JS thread, which its
    /// imports take.
    remote: Option<Arc<RemoteLink>>,
}

impl RemoteState for HostState {
    fn remote(&self) -> Option<&Arc<RemoteLink>> {
        self.remote.as_ref()
    }
}

impl LimitedState for HostState {
    fn observer(&mut self) -> &mut Observer {
        &mut self.observer
    }
}

/// The WASI context of a store that has one. The linker gets WASI functions only for such a
/// store, so they never run without it.
fn wasi_ctx(state: &mut HostState) -> &mut wasmtime_wasi::p1::WasiP1Ctx {
    &mut state
        .wasi
        .as_mut()
        .expect("WASI functions are linked only into stores with a WASI context")
        .ctx
}

/// Asked now and then while a guest runs in a worker thread: `true` stops the guest (its thread
/// is being terminated). Supplied by the embedder, which knows how to ask.
pub type StopProbe = Box<dyn Fn() -> bool>;

/// Where an import called during an async call sends its results, now or later (when the
/// Promise a JS import returned settles).
pub type ImportDone = Box<dyn FnOnce(Result<Vec<Val>, HostFunctionError>)>;

/// A host function supplied by the embedder (the JS glue).
pub trait HostImport {
    /// Runs to completion: reads `params`, fills `results` (a guest call on the JS thread).
    fn call(&self, params: &[Val], results: &mut [Val]) -> Result<(), HostFunctionError>;

    /// Runs for an async call: answers `done` now, or later if it has to wait (a Promise).
    fn call_async(&self, params: &[Val], results: usize, done: ImportDone) {
        let mut values = vec![Val::I32(0); results];
        done(self.call(params, &mut values).map(|()| values));
    }
}

impl<F: Fn(&[Val], &mut [Val]) -> Result<(), HostFunctionError>> HostImport for F {
    fn call(&self, params: &[Val], results: &mut [Val]) -> Result<(), HostFunctionError> {
        self(params, results)
    }
}

/// A host function as the core keeps it.
pub type HostFunction = Box<dyn HostImport>;

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

/// Moves thread-bound values into wasmtime's `Send + Sync` host-function closures (a
/// `Sandbox`'s and a WebAssembly namespace's).
pub(crate) struct ThreadBound<T>(T);
// SAFETY: a store's host functions only touch what they hold on the thread that made it: its
// owner (a `Sandbox`, a namespace's store) is `!Send`, living in an `Rc` owned by one JS object,
// and wasmtime runs host functions on the thread that called into the store. An async call runs
// the store on a pool thread, where its host functions forward to the JS thread through the
// store's `RemoteLink` without touching what they hold (see `instantiate`).
unsafe impl<T> Send for ThreadBound<T> {}
unsafe impl<T> Sync for ThreadBound<T> {}

impl<T> ThreadBound<T> {
    pub(crate) fn new(value: T) -> Self {
        Self(value)
    }

    /// A method, not a field access, so closures capture the whole (`Send`) wrapper.
    pub(crate) fn get(&self) -> &T {
        &self.0
    }
}

/// One instantiated guest with its own store.
pub struct Sandbox {
    /// `None` once released, or while an async call has it (then `away` is set).
    store: RefCell<Option<Store<HostState>>>,
    active: Rc<ActiveCaller>,
    /// The JS imports, by the index their host functions know them by.
    imports: Rc<Vec<HostFunction>>,
    /// How many results each of them returns.
    import_results: Vec<usize>,
    /// The running async call's link, while the store is on a pool thread.
    away: RefCell<Option<Arc<RemoteLink>>>,
    /// The top-level import of the running async call that is waiting for a Promise, if any.
    pending_import: RefCell<Option<PendingImport>>,
    /// `interrupt()` was called from inside an import of a synchronous call: the call ends as
    /// the import returns.
    interrupt_requested: Rc<Cell<bool>>,
    /// The stop probe, reinstalled after each async call (`sync_epochs`).
    stop_probe: Option<Rc<StopProbe>>,
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
    /// Whether calls go through `enter_watched` (timed, metered, CPU-limited or profiled).
    watches_calls: Cell<bool>,
    /// This thread's count of running limited calls (see `engine::TimedCall`).
    running_calls: &'static std::sync::atomic::AtomicU32,
    /// Whether the store has a WASI context.
    wasi: bool,
    /// The queue of the guest's streamed stdout and stderr, if one is a callback.
    output_streams: Option<OutputStreams>,
    /// Whether `run()` was called.
    started: Cell<bool>,
    /// The module, for snapshots (engines that take them only).
    source: Option<ModuleSource>,
    /// The functions tables and globals may refer to, for snapshots (made when first needed).
    referable: OnceCell<Functions>,
    /// The state right after instantiation (or the snapshot a fork started from), for `reset()`.
    initial: RefCell<Option<Initial>>,
}

/// A sandbox's state right after instantiation: copied to the heap, then an image once reset.
enum Initial {
    Copied(InitialState),
    Imaged(Rc<StateSnapshot>),
}

/// An import of an async call that answers later: `live` is cleared when it no longer may.
struct PendingImport {
    live: Rc<Cell<bool>>,
}

/// A store on its way to, or on, a pool thread for an async call (see `Sandbox::begin_async`).
pub struct AwayStore {
    store: Store<HostState>,
    /// Whether the store meters fuel: otherwise asking for it makes (and drops) an error.
    metered: bool,
    /// Whether the guest may start on the JS thread (`run_on_fiber`): nothing it can call blocks
    /// or needs JS (no imports, no WASI), and its calls are not timed (a thread's CPU clock
    /// cannot time a call that changes threads).
    pub may_start_on_js_thread: bool,
}

/// An async call's parameters or results: a few of them inline, no allocation per call.
pub type CallValues = smallvec::SmallVec<[Val; 4]>;

/// What an async call runs on the guest's thread.
pub enum AsyncCall {
    Export {
        func: Func,
        params: CallValues,
        results: usize,
    },
    Start(Func),
}

/// What an async call returned.
pub enum AsyncOutcome {
    Values(CallValues),
    Exit(u32),
}

impl AwayStore {
    /// Guest's thread: runs `call`.
    pub fn run(&mut self, call: AsyncCall) -> wasmtime::Result<AsyncOutcome> {
        if let Err(error) = crate::stack::ensure_room_for_wasm(crate::stack::thread_stack_bottom()) {
            return Err(wasmtime::Error::msg(error.to_string()));
        }
        // Timed here, on the guest's thread: the time the call waited for it is not the guest's.
        let fuel = self.fuel();
        self.store.data_mut().observer.begin(fuel, None);
        let outcome = self.run_call(call);
        let fuel = self.fuel();
        self.store.data_mut().observer.end(fuel);
        outcome
    }

    /// Runs `call` on a fiber of the store: polled first on the JS thread, where a short call
    /// ends in the first poll and a longer one yields at its first epoch tick (the link says it
    /// is on the JS thread), then polled to the end wherever the future was moved.
    pub async fn run_on_fiber(mut self, call: AsyncCall) -> (Self, wasmtime::Result<AsyncOutcome>) {
        let fuel = self.fuel();
        self.store.data_mut().observer.begin(fuel, None);
        let outcome = match call {
            AsyncCall::Export { func, params, results } => {
                let mut values = smallvec::smallvec![Val::I32(0); results];
                func.call_async(&mut self.store, &params, &mut values)
                    .await
                    .map(|()| AsyncOutcome::Values(values))
            }
            AsyncCall::Start(start) => exit_outcome(start.call_async(&mut self.store, &[], &mut []).await),
        };
        let fuel = self.fuel();
        self.store.data_mut().observer.end(fuel);
        (self, outcome)
    }

    fn fuel(&self) -> Option<u64> {
        if self.metered { self.store.get_fuel().ok() } else { None }
    }

    fn run_call(&mut self, call: AsyncCall) -> wasmtime::Result<AsyncOutcome> {
        match call {
            AsyncCall::Export { func, params, results } => {
                let mut values = smallvec::smallvec![Val::I32(0); results];
                func.call(&mut self.store, &params, &mut values)
                    .map(|()| AsyncOutcome::Values(values))
            }
            AsyncCall::Start(start) => exit_outcome(start.call(&mut self.store, &[], &mut [])),
        }
    }
}

/// A WASI command's end: returning is exit code 0, `proc_exit` gives its code.
fn exit_outcome(result: wasmtime::Result<()>) -> wasmtime::Result<AsyncOutcome> {
    match result {
        Ok(()) => Ok(AsyncOutcome::Exit(0)),
        Err(error) => match error.downcast_ref::<wasmtime_wasi::I32Exit>() {
            Some(exit) => Ok(AsyncOutcome::Exit(exit.0 as u32)),
            None => Err(error),
        },
    }
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
    /// function import (or an error naming what is wrong with it); with `wasi`, the WASI
    /// modules' imports are WASI's own and never reach `resolve`, and a WASI reactor (a module
    /// exporting `_initialize` and no `_start`) is initialised.
    pub fn instantiate(
        source: &ModuleSource,
        limits: Limits,
        wasi: Option<&WasiOptions>,
        stop_probe: Option<StopProbe>,
        // A snapshot to start from instead of the module's initial state (a fork). Its memories
        // map the snapshot's images copy-on-write, so a fork costs what instantiating the module
        // costs, whatever the size of the memory.
        origin: Option<Rc<StateSnapshot>>,
        mut resolve: impl FnMut(&ImportType, &FuncType) -> SandboxResult<HostFunction>,
    ) -> SandboxResult<Self> {
        // The start function runs during instantiation (unless the module's was made a hidden
        // export, see below).
        crate::stack::ensure_room_for_wasm(crate::stack::thread_stack_bottom())?;
        let kind = limits.engine_kind();
        let engine = engine_with(kind, source.compiler())?;
        let module = source.for_engine(kind)?;
        // A timed guest stops at its deadline anyway; an untimed one is watched, if asked.
        let stop_probe = stop_probe.filter(|_| limits.timeout.is_none());
        let watched = stop_probe.is_some();
        let wasi = wasi.map(WasiState::new).transpose()?;
        let has_wasi = wasi.is_some();
        let output_streams = wasi.as_ref().and_then(|wasi| wasi.streams().cloned());
        let mut store = new_store(engine, limits, true)?;
        store.data_mut().wasi = wasi;
        let stop_probe = stop_probe.map(Rc::new);
        install_sync_epochs(&mut store, limits, stop_probe.as_ref());
        let active = Rc::new(ActiveCaller::default());
        let interrupt_requested = Rc::new(Cell::new(false));
        let mut functions = Vec::new();
        let mut linker = if has_wasi {
            wasi_linker(kind, source.compiler())?
        } else {
            Linker::new(engine)
        };
        for import in module.imports() {
            if has_wasi && is_wasi_module(import.module()) {
                continue;
            }
            let wasmtime::ExternType::Func(func_type) = import.ty() else {
                return Err(SandboxError::Link(format!(
                    "the import \"{}.{}\" is a {}; only function imports can be supplied",
                    import.module(),
                    import.name(),
                    extern_kind(&import.ty())
                )));
            };
            // A module may import one name twice (esbuild.wasm does): one definition serves both
            // when the types agree; wasmtime's linker holds one definition per name.
            let seen = functions
                .iter()
                .find(|(module_name, name, _, _)| module_name == import.module() && name == import.name());
            if let Some((_, _, seen_type, _)) = seen {
                if FuncType::eq(seen_type, &func_type) {
                    continue;
                }
                return Err(SandboxError::Link(format!(
                    "the import \"{}.{}\" is imported twice with different types ({} and {}); one function cannot be both",
                    import.module(),
                    import.name(),
                    seen_type,
                    func_type
                )));
            }
            let host = resolve(&import, &func_type)?;
            functions.push((import.module().to_owned(), import.name().to_owned(), func_type, host));
        }
        let mut hosts = Vec::with_capacity(functions.len());
        let mut signatures = Vec::with_capacity(functions.len());
        for (module_name, name, func_type, host) in functions {
            hosts.push(host);
            signatures.push((module_name, name, func_type));
        }
        let imports = Rc::new(hosts);
        let import_results: Vec<usize> = signatures.iter().map(|(_, _, ty)| ty.results().len()).collect();
        for (index, (module_name, name, func_type)) in signatures.into_iter().enumerate() {
            let host = ThreadBound((Rc::clone(&imports), Rc::clone(&active), Rc::clone(&interrupt_requested)));
            let (module_name_, name_) = (module_name.clone(), name.clone());
            linker
                .func_new(&module_name, &name, func_type, move |mut caller, params, results| {
                    // The import's time is not the guest's (CPU time and its limit), and a
                    // profile shows it as a frame of its own.
                    let name = || format!("{module_name_}.{name_}");
                    observe::in_host(&mut caller, name, |caller| {
                        // During an async call the guest runs on a pool thread: the import runs
                        // on the JS thread, and nothing thread-bound is touched here.
                        if let Some(link) = caller.data().remote.clone() {
                            return link.import(index, caller, params, results);
                        }
                        let (imports, active, interrupt_requested) = host.get();
                        let caller_ptr = std::ptr::from_mut(caller).cast::<Caller<'static, HostState>>();
                        let _restore = RestoreCaller(active, active.caller.replace(Some(caller_ptr)));
                        imports[index].call(params, results).map_err(wasmtime::Error::new)?;
                        if interrupt_requested.get() {
                            return Err(Interrupted.into());
                        }
                        Ok(())
                    })
                })
                .map_err(|error| SandboxError::Link(format!("{error:#}")))?;
        }
        // Modules compiled for snapshots (`expose_state`) have their start function as a hidden
        // export instead, called below: a fork must not run it again. Their data segments are
        // copied in by compiled code (not mapped copy-on-write), which a fuel budget would pay
        // for: instantiation runs unmetered, and the budget is set afterwards.
        let exposed = kind.takes_snapshots() && module.exports().any(|export| is_hidden_export(export.name()));
        let instance = if exposed && let Some(fuel) = limits.fuel {
            let unmetered = |error: wasmtime::Error| SandboxError::Internal(format!("{error:#}"));
            store.set_fuel(u64::MAX).map_err(unmetered)?;
            let instance = linker.instantiate(&mut store, &module);
            store.set_fuel(fuel).map_err(unmetered)?;
            instance
        } else {
            linker.instantiate(&mut store, &module)
        };
        let instance = instance.map_err(|error| instantiation_error(error, limits))?;
        let start = if exposed {
            instance.get_func(&mut store, HIDDEN_START)
        } else {
            None
        };
        let ticker = match (limits.needs_ticker(), watched) {
            (true, _) => Some(TickerGuard::timed()?),
            (false, true) => Some(TickerGuard::watched()?),
            (false, false) => None,
        };
        let sandbox = Self {
            _ticker: ticker,
            watched,
            wasi: has_wasi,
            output_streams,
            imports,
            import_results,
            interrupt_requested,
            stop_probe,
            ..Self::finish(store, instance, active, limits)
        };
        let mut sandbox = Self {
            source: kind.takes_snapshots().then(|| source.clone()),
            ..sandbox
        };
        if let Some(origin) = origin {
            // A fork: the snapshot's state replaces what instantiation made (the start function
            // and `_initialize` ran before the snapshot was taken).
            sandbox.restore_state(&origin)?;
            sandbox.started.set(origin.started);
            sandbox.initial = RefCell::new(Some(Initial::Imaged(origin)));
            return Ok(sandbox);
        }
        if let Some(start) = start {
            sandbox.enter(|context| start.call(context, &[], &mut []))?;
        }
        if has_wasi {
            sandbox.initialize_reactor()?;
        }
        if let Some(source) = &sandbox.source {
            // What `reset()` goes back to: the pages holding data (usually a few) copied here,
            // made an image on the first reset; from then on the memory maps that image
            // copy-on-write, and a reset drops only the pages written since.
            let initial = sandbox.with_context(|mut context| {
                snapshot::capture_initial(&mut context, &sandbox.instance, source, &sandbox.referable)
            })??;
            sandbox.initial = RefCell::new(Some(Initial::Copied(initial)));
        }
        Ok(sandbox)
    }

    /// The guest's state: its memories, globals and tables (see `store::snapshot`). A sandbox
    /// in the middle of a call, or with state in the host a snapshot cannot hold, is refused.
    pub fn snapshot(&self) -> SandboxResult<Rc<StateSnapshot>> {
        let source = self.check_snapshots()?;
        let mut snapshot =
            self.with_context(|mut context| snapshot::capture(&mut context, &self.instance, source, &self.referable))??;
        snapshot.started = self.started.get();
        Ok(Rc::new(snapshot))
    }

    /// Runs `action` with the store and the instance (pre-initialization reads the state).
    pub fn with_instance<R>(
        &self,
        action: impl FnOnce(StoreContextMut<'_, HostState>, &Instance) -> R,
    ) -> SandboxResult<R> {
        self.with_context(|context| action(context, &self.instance))
    }

    /// Puts `snapshot` (of this sandbox's module) back; a memory may come back smaller, so the
    /// embedder detaches views past its new size.
    pub fn restore(&self, snapshot: &StateSnapshot) -> SandboxResult<()> {
        self.check_snapshots()?;
        self.restore_state(snapshot)?;
        self.started.set(snapshot.started);
        Ok(())
    }

    fn restore_state(&self, snapshot: &StateSnapshot) -> SandboxResult<()> {
        let Some(source) = &self.source else {
            return Err(self.cannot_snapshot());
        };
        self.with_context(|mut context| {
            snapshot::restore(
                &mut context,
                &self.instance,
                source,
                &self.referable,
                snapshot,
                self.limits.max_memory_bytes,
            )?;
            let bytes = memory_bytes_of(&mut context, &self.instance);
            context.data_mut().observer.memory_replaced(bytes);
            Ok(())
        })?
    }

    /// Puts the state right after instantiation back (for a fork, the snapshot it started from).
    pub fn reset(&self) -> SandboxResult<()> {
        self.check_snapshots()?;
        let snapshot = match &*self.initial.borrow() {
            Some(Initial::Imaged(snapshot)) => Rc::clone(snapshot),
            Some(Initial::Copied(state)) => Rc::new(state.to_snapshot()?),
            None => return Err(self.cannot_snapshot()),
        };
        self.restore_state(&snapshot)?;
        self.started.set(snapshot.started);
        *self.initial.borrow_mut() = Some(Initial::Imaged(snapshot));
        Ok(())
    }

    /// Refuses what a snapshot cannot cover: a call in progress, files or sockets WASI opened,
    /// an engine without snapshot memories. Gives the module's source.
    fn check_snapshots(&self) -> SandboxResult<&ModuleSource> {
        if self.active.caller.get().is_some() || self.away.borrow().is_some() {
            return Err(SandboxError::Snapshot(
                "a call is in progress on this sandbox: snapshots are taken and restored between calls".to_owned(),
            ));
        }
        let Some(source) = &self.source else {
            return Err(self.cannot_snapshot());
        };
        if self.wasi {
            let open =
                self.with_context(|mut context| context.data_mut().wasi.as_mut().and_then(WasiState::uncapturable))?;
            if let Some(open) = open {
                return Err(SandboxError::Snapshot(format!(
                    "the guest has {open} open through WASI, whose descriptors and positions live in the host, \
                     outside the guest's memory: close them before a snapshot, restore or reset"
                )));
            }
        }
        Ok(source)
    }

    #[cold]
    fn cannot_snapshot(&self) -> SandboxError {
        SandboxError::Snapshot("this sandbox cannot take snapshots: its engine does not keep its memories".to_owned())
    }

    /// Calls `_initialize` of a WASI reactor (a module exporting it and no `_start`), once, under
    /// the sandbox's limits.
    fn initialize_reactor(&self) -> SandboxResult<()> {
        let initialize = self.with_context(|mut context| {
            if self.instance.get_export(&mut context, "_start").is_some() {
                return None;
            }
            self.instance.get_typed_func::<(), ()>(&mut context, "_initialize").ok()
        })?;
        match initialize {
            Some(initialize) => self.enter(|context| initialize.call(context, ())),
            None => Ok(()),
        }
    }

    /// Runs a WASI command: calls its `_start` and returns its exit code (0 when `_start`
    /// returns, the code given to `proc_exit` when the guest exits). A trap, a timeout or running
    /// out of fuel is an error as in `call`. The exports stay callable afterwards.
    pub fn run(&self) -> SandboxResult<u32> {
        let start = self.start_function()?;
        self.enter(|context| match start.call(context, &[], &mut []) {
            Ok(()) => Ok(0),
            Err(error) => match error.downcast_ref::<wasmtime_wasi::I32Exit>() {
                Some(exit) => Ok(exit.0 as u32),
                None => Err(error),
            },
        })
    }

    /// Takes what the guest wrote to its captured stdout and stderr since the last `run()` or
    /// `take_output()`.
    pub fn take_output(&self) -> SandboxResult<Output> {
        if !self.wasi {
            return Err(SandboxError::WasiNotEnabled);
        }
        self.with_context(|context| take_output_of(context.data().wasi.as_ref()))
    }

    fn finish(mut store: Store<HostState>, instance: Instance, active: Rc<ActiveCaller>, limits: Limits) -> Self {
        let memory = instance.get_memory(&mut store, "memory").or_else(|| {
            // Guests that name their memory differently still get a default view.
            instance
                .exports(&mut store)
                .filter(|export| !is_hidden_export(export.name()))
                .find_map(|export| export.into_memory())
        });
        Self::with_parts(store, instance, memory, active, limits)
    }

    fn with_parts(
        mut store: Store<HostState>,
        instance: Instance,
        memory: Option<Memory>,
        active: Rc<ActiveCaller>,
        limits: Limits,
    ) -> Self {
        let watches_calls = store.data_mut().observer.watches_calls(limits.fuel.is_some());
        Self {
            store: RefCell::new(Some(store)),
            active,
            imports: Rc::default(),
            import_results: Vec::new(),
            away: RefCell::new(None),
            pending_import: RefCell::new(None),
            interrupt_requested: Rc::default(),
            stop_probe: None,
            instance,
            memory,
            functions: OnceCell::new(),
            limits,
            _ticker: None,
            stack_bottom: crate::stack::thread_stack_bottom(),
            watched: false,
            watches_calls: Cell::new(watches_calls),
            running_calls: crate::engine::running_calls_here(),
            wasi: false,
            output_streams: None,
            started: Cell::new(false),
            source: None,
            referable: OnceCell::new(),
            initial: RefCell::new(None),
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Whether the sandbox was given a WASI context.
    pub fn output_streams(&self) -> Option<&OutputStreams> {
        self.output_streams.as_ref()
    }

    pub fn has_wasi(&self) -> bool {
        self.wasi
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
        match store.as_mut() {
            Some(store) => Ok(action(store.as_context_mut())),
            None => Err(self.missing_store()),
        }
    }

    /// Why the store is not here: an async call has it, or it was released.
    #[cold]
    fn missing_store(&self) -> SandboxError {
        if self.away.borrow().is_some() {
            SandboxError::Busy
        } else {
            SandboxError::Disposed
        }
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
            let Some(store) = store.as_mut() else {
                return Err(self.missing_store());
            };
            self.interrupt_requested.set(false);
            let mut context = store.as_context_mut();
            if self.watches_calls.get() {
                return self.enter_watched(&mut context, run);
            }
            context.data_mut().observer.count_call();
            if let Some(timeout) = self.limits.timeout {
                context.set_epoch_deadline(deadline_ticks(timeout));
                // Held until the call returns: the ticker ticks while a limited call runs.
                let _timed = TimedCall::begin(self.running_calls);
                run(&mut context)
            } else {
                if self.watched {
                    context.set_epoch_deadline(1);
                }
                run(&mut context)
            }
        };
        outcome.map_err(|error| self.call_failed(error))
    }

    /// `enter` for a store whose calls are timed, metered, limited in CPU time or profiled.
    #[inline(never)]
    fn enter_watched<R>(
        &self,
        context: &mut StoreContextMut<'_, HostState>,
        run: impl FnOnce(&mut StoreContextMut<'_, HostState>) -> wasmtime::Result<R>,
    ) -> SandboxResult<R> {
        let _timed = crate::store::begin_call(context, self.limits, self.running_calls);
        if self.watched {
            // A watched sandbox has no time limit (its probe is dropped when it has one): its
            // deadline is the next tick, where the stop probe is asked.
            context.set_epoch_deadline(1);
        }
        let outcome = run(context);
        crate::store::end_call(context, self.limits);
        outcome.map_err(|error| self.call_failed(error))
    }

    #[cold]
    #[inline(never)]
    fn call_failed(&self, error: wasmtime::Error) -> SandboxError {
        self.explain(SandboxError::from_call(error))
    }

    /// Calls `func` with `params`, writing `results`.
    pub fn call(&self, func: &Func, params: &[Val], results: &mut [Val]) -> SandboxResult<()> {
        if self.active.caller.get().is_some() && self.away.borrow().is_some() {
            return self.call_on_guest_thread(func, params, results);
        }
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
        if self.active.caller.get().is_some() && self.away.borrow().is_some() {
            return self.call_unchecked_on_guest_thread(func, params_and_results);
        }
        // SAFETY: forwarded from this function's contract.
        self.enter(|context| unsafe { func.call_unchecked(context, params_and_results) })
    }

    /// The guest's `_start`, for `run()` and `runAsync()`: checks that this is a WASI command
    /// that has not started yet, and marks it started.
    pub fn start_function(&self) -> SandboxResult<Func> {
        if !self.wasi {
            return Err(SandboxError::WasiNotEnabled);
        }
        if self.started.get() {
            return Err(SandboxError::AlreadyStarted);
        }
        let start = self.with_context(|mut context| {
            let is_reactor = self.instance.get_export(&mut context, "_initialize").is_some();
            self.instance
                .get_typed_func::<(), ()>(&mut context, "_start")
                .map(|start| *start.func())
                .map_err(|error| SandboxError::BadExport {
                    name: "_start".to_owned(),
                    expected: "function of type () -> ()",
                    reason: if is_reactor {
                        "this module is a WASI reactor (it exports _initialize): it was initialised when the \
                         sandbox was made; use call() on its exports"
                            .to_owned()
                    } else {
                        format!("a WASI command exports `_start` ({error:#})")
                    },
                })
        })??;
        self.started.set(true);
        Ok(start)
    }

    /// Hands the store to an async call: until `end_async`, the guest runs on another thread,
    /// its imports come back through `link`, and the sandbox is busy (but for the imports).
    pub fn begin_async(&self, link: Arc<RemoteLink>) -> SandboxResult<AwayStore> {
        if self.active.caller.get().is_some() {
            // From inside an import the store is lent to the running call.
            return Err(SandboxError::Busy);
        }
        let mut slot = self.store.try_borrow_mut().map_err(|_| SandboxError::Busy)?;
        let Some(mut store) = slot.take() else {
            return Err(self.missing_store());
        };
        store.data_mut().remote = Some(Arc::clone(&link));
        if let Some(streams) = &self.output_streams {
            streams.attach(Arc::clone(&link) as Arc<dyn Drain>);
        }
        // The worker stop probe cannot run on the guest's thread: the link's checks replace it.
        async_epochs(&mut store);
        self.interrupt_requested.set(false);
        *self.away.borrow_mut() = Some(link);
        let may_start_on_js_thread =
            self.imports.is_empty() && !self.wasi && self.output_streams.is_none() && !store.data().observer.timing();
        Ok(AwayStore {
            store,
            metered: self.limits.fuel.is_some(),
            may_start_on_js_thread,
        })
    }

    /// Takes the store back from an async call that has returned.
    pub fn end_async(&self, away: AwayStore) {
        let mut store = away.store;
        store.data_mut().remote = None;
        if let Some(streams) = &self.output_streams {
            streams.detach();
        }
        self.sync_epochs(&mut store);
        if let Some(pending) = self.pending_import.borrow_mut().take() {
            pending.live.set(false);
        }
        self.active.caller.set(None);
        *self.away.borrow_mut() = None;
        *self.store.borrow_mut() = Some(store);
    }

    /// Restores the epoch behaviour of synchronous calls (see `new_store`).
    fn sync_epochs(&self, store: &mut Store<HostState>) {
        install_sync_epochs(store, self.limits, self.stop_probe.as_ref());
        self.watches_calls
            .set(store.data_mut().observer.watches_calls(self.limits.fuel.is_some()));
    }

    /// What the sandbox's calls cost so far, the last call's figures, and the bytes of linear
    /// memory it holds now.
    pub fn figures(&self) -> SandboxResult<(CallFigures, Option<CallFigures>, u64)> {
        self.with_context(|mut context| {
            let memory_bytes = memory_bytes_of(&mut context, &self.instance);
            let observer = &context.data_mut().observer;
            (observer.totals(), observer.last(), memory_bytes)
        })
    }

    /// Starts the sampling profiler (see `store::observe`); refused while a call runs.
    pub fn start_profiling(&self, interval: std::time::Duration) -> SandboxResult<()> {
        self.with_own_store(|store| {
            store.data_mut().observer.start_profiling(interval)?;
            self.sync_epochs(store);
            Ok(())
        })
    }

    /// Stops the profiler and returns its samples; `None` if it was not running.
    pub fn stop_profiling(&self) -> SandboxResult<Option<Profile>> {
        self.with_own_store(|store| {
            let profile = store.data_mut().observer.stop_profiling();
            self.sync_epochs(store);
            Ok(profile)
        })
    }

    /// Runs `action` on the store itself, which no call may hold (not from inside an import).
    fn with_own_store<R>(&self, action: impl FnOnce(&mut Store<HostState>) -> SandboxResult<R>) -> SandboxResult<R> {
        if self.active.caller.get().is_some() {
            return Err(SandboxError::Busy);
        }
        let mut store = self.store.try_borrow_mut().map_err(|_| SandboxError::Busy)?;
        match store.as_mut() {
            Some(store) => action(store),
            None => Err(self.missing_store()),
        }
    }

    /// Interrupts the running async call, if any (`dispose()`): a synchronous call running an
    /// import that disposes its sandbox finishes instead.
    pub fn interrupt_async(&self) -> bool {
        self.away.borrow().is_some() && self.interrupt()
    }

    /// The error an async call failed with, in the sandbox's terms.
    pub fn async_error(&self, error: wasmtime::Error) -> SandboxError {
        if error.downcast_ref::<Interrupted>().is_some() {
            return SandboxError::Interrupted;
        }
        self.call_failed(error)
    }

    /// Stops the running call: an async one at its next epoch tick (or at once, if it waits for
    /// an import); a synchronous one (from inside one of its imports) when the import returns.
    /// Returns whether a call was running.
    pub fn interrupt(&self) -> bool {
        let link = self.away.borrow().clone();
        if let Some(link) = link {
            link.interrupt();
            if let Some(pending) = self.pending_import.borrow_mut().take() {
                pending.live.set(false);
                self.active.caller.set(None);
                link.send_to_pool(ToPool::ImportDone(Err(Interrupted.into())));
            }
            return true;
        }
        if self.active.caller.get().is_some() {
            self.interrupt_requested.set(true);
            return true;
        }
        false
    }

    /// JS thread, the event loop free: handles one message of the running async call. Returns
    /// `Some(outcome)` when the call is over (`ToJs::Finished`).
    pub fn serve(&self, message: ToJs) -> Option<Box<dyn std::any::Any + Send>> {
        let link = self.away.borrow().clone()?;
        match message {
            ToJs::Import { index, params, caller } => self.serve_import(&link, index, params, caller),
            ToJs::Abandon => {
                if let Some(pending) = self.pending_import.borrow_mut().take() {
                    pending.live.set(false);
                }
                self.active.caller.set(None);
                link.send_to_pool(ToPool::Released);
            }
            // Core sandboxes send no requests of their own.
            ToJs::CallDone(_) | ToJs::Request(_) | ToJs::Event(_) => {}
            // Delivered by the glue, which holds the callbacks.
            ToJs::Output => {}
            ToJs::Finished(outcome) => return Some(outcome),
        }
        None
    }

    /// Runs import `index` for the guest waiting on its thread; the answer goes back when the
    /// import is done, which may be after a Promise settles. Meanwhile the store is reachable
    /// through the guest's `Caller`, as inside any import.
    fn serve_import(&self, link: &Arc<RemoteLink>, index: usize, params: Vec<Val>, caller: CallerPtr) {
        let live = Rc::new(Cell::new(true));
        *self.pending_import.borrow_mut() = Some(PendingImport { live: Rc::clone(&live) });
        self.active.caller.set(Some(caller.0));
        let results = self.result_count(index);
        let done: ImportDone = {
            let link = Arc::clone(link);
            let active = Rc::clone(&self.active);
            let live = Rc::clone(&live);
            Box::new(move |outcome| {
                if !live.replace(false) {
                    return; // interrupted or abandoned meanwhile: the guest has moved on
                }
                active.caller.set(None);
                let answer = if link.is_interrupted() {
                    Err(Interrupted.into())
                } else {
                    outcome.map_err(wasmtime::Error::new)
                };
                link.send_to_pool(ToPool::ImportDone(answer));
            })
        };
        match self.imports.get(index) {
            Some(import) => import.call_async(&params, results, done),
            None => done(Err(HostFunctionError {
                import: format!("#{index}"),
                message: "no such import".to_owned(),
            })),
        }
        if !live.get() {
            // Answered already (no Promise): forget the pending state if it is still ours.
            let mut pending = self.pending_import.borrow_mut();
            if pending.as_ref().is_some_and(|pending| Rc::ptr_eq(&pending.live, &live)) {
                pending.take();
            }
        }
    }

    fn result_count(&self, index: usize) -> usize {
        self.import_results.get(index).copied().unwrap_or(0)
    }

    /// JS thread, inside an import of an async call: a re-entrant call runs on the guest's thread
    /// (where the outer call's stack and `Caller` are); imports it calls meanwhile run here, at
    /// once, as in a synchronous call.
    fn call_on_guest_thread(&self, func: &Func, params: &[Val], results: &mut [Val]) -> SandboxResult<()> {
        let Some(link) = self.away.borrow().clone() else {
            return Err(SandboxError::Busy);
        };
        let outer = self.active.caller.get();
        link.send_to_pool(ToPool::Call {
            func: *func,
            params: params.to_vec(),
            results: results.len(),
        });
        loop {
            match link.wait_to_js() {
                ToJs::CallDone(outcome) => {
                    self.active.caller.set(outer);
                    let values = outcome.map_err(|error| self.async_error(error))?;
                    for (slot, value) in results.iter_mut().zip(values) {
                        *slot = value;
                    }
                    return Ok(());
                }
                ToJs::Import { index, params, caller } => {
                    self.active.caller.set(Some(caller.0));
                    let mut values = vec![Val::I32(0); self.result_count(index)];
                    let outcome = match self.imports.get(index) {
                        Some(import) => import.call(&params, &mut values).map(|()| values),
                        None => Err(HostFunctionError {
                            import: format!("#{index}"),
                            message: "no such import".to_owned(),
                        }),
                    };
                    self.active.caller.set(outer);
                    link.send_to_pool(ToPool::ImportDone(outcome.map_err(wasmtime::Error::new)));
                }
                ToJs::Abandon => link.send_to_pool(ToPool::Released),
                ToJs::Request(_) | ToJs::Event(_) => {}
                // Delivered once this call returns; meanwhile the guest need not wait for it.
                ToJs::Output => {
                    if let Some(streams) = &self.output_streams {
                        streams.js_busy();
                    }
                }
                ToJs::Finished(outcome) => {
                    // Cannot happen while the guest serves this call; keep it from being lost.
                    std::mem::forget(outcome);
                    return Err(SandboxError::Internal(
                        "the async call ended during a re-entrant call".to_owned(),
                    ));
                }
            }
        }
    }

    /// `call_on_guest_thread` for the raw-slot calling convention of `call_unchecked`.
    fn call_unchecked_on_guest_thread(&self, func: &Func, slots: &mut [wasmtime::ValRaw]) -> SandboxResult<()> {
        let ty = self.with_context(|context| func.ty(&context))?;
        let params: Vec<Val> = ty
            .params()
            .zip(slots.iter())
            .map(|(ty, raw)| numeric_from_raw(&ty, raw))
            .collect();
        let mut results = vec![Val::I32(0); ty.results().len()];
        self.call_on_guest_thread(func, &params, &mut results)?;
        for (slot, value) in slots.iter_mut().zip(&results) {
            *slot = numeric_to_raw(value);
        }
        Ok(())
    }

    /// Says which limit a limit trap hit, in the sandbox's own terms.
    fn explain(&self, error: SandboxError) -> SandboxError {
        error.explain_limits(
            self.limits.timeout,
            "the guest was stopped because its thread is being terminated",
            "the guest used up its fuel (set sandbox.fuel to refill it)",
        )
    }

    /// The memory exported as `name`, or the default memory (`memory`, else the first exported).
    pub fn memory(&self, name: Option<&str>) -> SandboxResult<Memory> {
        match name {
            None => self.memory.ok_or_else(|| SandboxError::NoMemory("memory".to_owned())),
            Some(name) if !is_hidden_export(name) => self
                .with_context(|mut context| self.instance.get_memory(&mut context, name))?
                .ok_or_else(|| SandboxError::NoMemory(name.to_owned())),
            Some(name) => Err(SandboxError::NoMemory(name.to_owned())),
        }
    }

    /// The place and size of every memory the guest exports.
    pub fn memory_regions(&self) -> SandboxResult<Vec<MemoryRegion>> {
        self.with_context(|mut context| {
            let memories: Vec<Memory> = self
                .instance
                .exports(&mut context)
                .filter(|export| !is_hidden_export(export.name()))
                .filter_map(|export| export.into_memory())
                .collect();
            memories
                .into_iter()
                .map(|memory| MemoryRegion {
                    base: memory.data_ptr(&context),
                    length: memory.data_size(&context),
                })
                .collect()
        })
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

/// A linker with WASI preview 1 and preview 0 for `kind`'s engine, for a sandbox to add its own
/// imports to. Defining the ~90 WASI functions took ~140 us per sandbox; they are defined once
/// per engine and the linker cloned (a copy of its name table; the functions are shared).
fn wasi_linker(kind: EngineKind, compiler: Compiler) -> SandboxResult<Linker<HostState>> {
    static LINKERS: PerWasiEngine<Linker<HostState>> = PerWasiEngine::new();
    LINKERS.get(kind, compiler, |engine| {
        let mut linker = Linker::new(engine);
        link_wasi(&mut linker)?;
        Ok(linker)
    })
}

/// Adds WASI preview 1 and preview 0 to `linker`.
fn link_wasi(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p1::add_to_linker_sync(linker, wasi_ctx)?;
    wasmtime_wasi::p0::add_to_linker_sync(linker, wasi_ctx)?;
    // wasmtime-wasi turns an exit code of 126 or more (a Unix shell's reserved range) into a
    // trap. A guest here is no process: every code is an exit code, as in node:wasi (an
    // AssemblyScript abort exits with 255).
    linker.allow_shadowing(true);
    for module in crate::wasi::WASI_MODULES {
        linker.func_wrap(module, "proc_exit", |code: i32| -> wasmtime::Result<()> {
            Err(wasmtime_wasi::I32Exit(code).into())
        })?;
    }
    linker.allow_shadowing(false);
    Ok(())
}

/// The epoch behaviour of synchronous calls: `store::sync_epochs`, with the stop probe of a
/// guest in a worker asked at every tick.
fn install_sync_epochs(store: &mut Store<HostState>, limits: Limits, probe: Option<&Rc<StopProbe>>) {
    crate::store::sync_epochs(store, limits);
    let Some(probe) = probe else {
        return;
    };
    let probe = ThreadBound(Rc::clone(probe));
    let ticks = store.data_mut().observer.needs_ticks();
    store.epoch_deadline_callback(move |mut context| {
        if (probe.get())() {
            Ok(UpdateDeadline::Interrupt)
        } else if ticks {
            observe::tick(&mut context)
        } else {
            Ok(UpdateDeadline::Continue(1))
        }
    });
}

/// Bytes of linear memory `instance` holds (each memory once, exported or hidden).
fn memory_bytes_of(context: &mut StoreContextMut<'_, HostState>, instance: &Instance) -> u64 {
    let memories: Vec<Memory> = instance
        .exports(&mut *context)
        .filter_map(|export| export.into_memory())
        .collect();
    let mut seen = Vec::with_capacity(memories.len());
    let mut total = 0;
    for memory in memories {
        let base = memory.data_ptr(&*context);
        if !seen.contains(&base) {
            seen.push(base);
            total += memory.data_size(&*context) as u64;
        }
    }
    total
}

/// Clears (restores) the active caller when a host function returns or unwinds.
struct RestoreCaller<'a>(&'a ActiveCaller, Option<*mut Caller<'static, HostState>>);

impl Drop for RestoreCaller<'_> {
    fn drop(&mut self) {
        self.0.caller.set(self.1);
    }
}

fn numeric_from_raw(ty: &ValType, raw: &wasmtime::ValRaw) -> Val {
    match ty {
        ValType::I64 => Val::I64(raw.get_i64()),
        ValType::F32 => Val::F32(raw.get_f32()),
        ValType::F64 => Val::F64(raw.get_f64()),
        _ => Val::I32(raw.get_i32()),
    }
}

fn numeric_to_raw(value: &Val) -> wasmtime::ValRaw {
    match value {
        Val::I64(value) => wasmtime::ValRaw::i64(*value),
        Val::F32(bits) => wasmtime::ValRaw::f32(*bits),
        Val::F64(bits) => wasmtime::ValRaw::f64(*bits),
        Val::I32(value) => wasmtime::ValRaw::i32(*value),
        _ => wasmtime::ValRaw::i32(0),
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
    let state = HostState {
        observer: limits.observer(StoreLimitsBuilder::new().instances(1)),
        wasi: None,
        remote: None,
    };
    let mut store = Store::new(engine, state);
    apply_limits(&mut store, limits, epochs)?;
    Ok(store)
}

/// Classifies a failed instantiation: a trap or failing import in the start function, a memory
/// over `maxMemoryBytes`, an exhausted pool or address space, or a linking problem.
pub(crate) fn instantiation_error(error: wasmtime::Error, limits: Limits) -> SandboxError {
    if error.downcast_ref::<Trap>().is_some()
        || error.downcast_ref::<HostFunctionError>().is_some()
        || error.downcast_ref::<wasmtime_wasi::I32Exit>().is_some()
        || error.is::<wasmtime::ThrownException>()
    {
        return SandboxError::from_call(error);
    }
    let message = format!("{error:#}");
    // Only the engine of served requests pools instances (BufferSandbox slots are counted by
    // `buffer_guest::slots`); its requests overflow to on-demand instances, so this is a new
    // handler's first instance finding every slot taken.
    if error.downcast_ref::<PoolConcurrencyLimitError>().is_some() {
        return SandboxError::SandboxLimit(format!(
            "all {} pooled instance slots for served requests are in use ({message}): raise the limit \
             with the environment variable {}=<count> before the first handler starts",
            service_slots(),
            SERVICE_SLOTS_VARIABLE
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
