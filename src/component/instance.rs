//! A component instance: its own store (the store layer's limits), its linker (WASI 0.2 when
//! granted, the embedder's host functions and host resources otherwise), and calls into its
//! exported functions with dynamically typed values.

use std::cell::{Cell, RefCell};
use std::sync::Arc;

use wasmtime::component::types::{ComponentFunc, ComponentItem, Type};
use wasmtime::component::{Func, Instance, Linker, ResourceAny, ResourceTable, ResourceType, Val};
use wasmtime::{AsContextMut, Store, StoreContextMut, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtxView, WasiView};

use super::ComponentSource;
use crate::engine::{Compiler, EngineKind, PerWasiEngine, TickerGuard, deadline_ticks, engine_with};
use crate::error::{SandboxError, SandboxResult};
use crate::remote::RemoteLink;
use crate::sandbox::{HostFunctionError, ThreadBound};
use crate::store::{LimitedState, Limits, apply_limits};
use crate::wasi::{ComponentWasiState, Drain, Output, OutputStreams, WasiOptions, take_output_of};

/// The interface a WASI 0.2 command exports (any 0.2.x version).
pub const RUN_INTERFACE: &str = "wasi:cli/run@0.2";

/// How many resource handles one instance may hold at once.
const MAX_COMPONENT_HANDLES: usize = 10_000_000;

/// Per-store data of a component instance.
pub struct ComponentState {
    limits: StoreLimits,
    table: ResourceTable,
    wasi: Option<ComponentWasiState>,
    /// While an async call runs the instance on a pool thread: the way to the JS thread, which
    /// its imports take.
    remote: Option<Arc<RemoteLink>>,
}

/// What a component's host function asks of the JS thread during an async call.
pub enum HostRequest {
    /// Call import `index` (in the order of `instantiate`'s `imports`) with `params`; the
    /// answer is a `Vec<Val>` of its results.
    Import {
        index: usize,
        ty: ComponentFunc,
        params: Vec<Val>,
    },
    /// The guest dropped its handle `rep` to host resource `type_id`; the answer is `()`.
    Drop { type_id: u32, rep: u32 },
}

/// A request with the store of the guest waiting for it, which the JS thread may use until it
/// answers (the guest's thread is parked meanwhile).
pub struct RemoteRequest {
    pub request: HostRequest,
    pub store: StorePtr,
}

/// The store of a guest waiting on its pool thread for the JS thread.
#[derive(Clone, Copy)]
pub struct StorePtr(pub *mut StoreContextMut<'static, ComponentState>);

// SAFETY: dereferenced only on the JS thread while the guest's thread is parked in
// `RemoteLink::request` waiting for the answer (the link's mutex orders the two), and never after
// that thread was told it is over (`Answer`, `Released`).
unsafe impl Send for StorePtr {}

/// Asks the JS thread to serve `request` for the guest waiting with `store`.
fn forward(
    link: &RemoteLink,
    store: &mut StoreContextMut<'_, ComponentState>,
    request: HostRequest,
) -> wasmtime::Result<Box<dyn std::any::Any + Send>> {
    let store = StorePtr((store as *mut StoreContextMut<'_, ComponentState>).cast());
    link.request(Box::new(RemoteRequest { request, store }))
}

impl crate::store::RemoteState for ComponentState {
    fn remote(&self) -> Option<&Arc<RemoteLink>> {
        self.remote.as_ref()
    }
}

impl LimitedState for ComponentState {
    fn store_limits(&mut self) -> &mut StoreLimits {
        &mut self.limits
    }
}

impl WasiView for ComponentState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self
                .wasi
                .as_mut()
                .expect("WASI is linked only into stores with a WASI context")
                .ctx,
            table: &mut self.table,
        }
    }
}

/// A host function supplied by the embedder (a JS import), called with the store so it can
/// convert resources.
pub trait ComponentHost {
    fn call(
        &self,
        store: StoreContextMut<'_, ComponentState>,
        ty: &ComponentFunc,
        params: &[Val],
        results: &mut [Val],
    ) -> Result<(), HostFunctionError>;
}

/// A function import to define: `interface` is `None` for a world-level function.
pub struct ImportBinding {
    pub interface: Option<String>,
    pub name: String,
    pub host: Box<dyn ComponentHost>,
}

/// A resource type the host implements (an imported resource), told apart by `type_id`; `drop`
/// runs when the guest drops a handle it owns (with the handle's representation).
pub struct HostResource {
    pub interface: Option<String>,
    pub name: String,
    pub type_id: u32,
    pub drop: Box<dyn Fn(u32) -> Result<(), HostFunctionError>>,
}

/// An exported function, with its types resolved once.
pub struct ExportedFunction {
    /// The exported interface it belongs to; `None` for a world-level function.
    pub interface: Option<String>,
    /// Its name in that interface (`echo`, `[method]counter.get`).
    pub name: String,
    pub func: Func,
    pub ty: ComponentFunc,
    pub params: Vec<Type>,
    pub result: Option<Type>,
}

/// A resource type the component exports, as the instance knows it.
pub struct ExportedResource {
    pub interface: Option<String>,
    pub name: String,
    pub ty: ResourceType,
}

/// What an async call runs.
pub enum ComponentCall {
    /// The exported function at `index` with its lowered arguments.
    Export { index: usize, params: Vec<Val> },
    /// The `wasi:cli/run` export.
    Run,
}

/// What an async call returned: the function's results, or a command's exit code.
pub enum AsyncResult {
    Values(Vec<Val>),
    Exit(CommandExit),
}

/// How a command's `run` ended: its exit code, and whether it ended by `exit` (which leaves the
/// instance unusable, as a trap does).
pub struct CommandExit {
    pub code: u32,
    pub exited: bool,
}

/// Calls a command's `wasi:cli/run` `run` function.
fn run_command(func: &Func, store: impl AsContextMut<Data = ComponentState>) -> wasmtime::Result<CommandExit> {
    let mut results = vec![Val::Bool(false)];
    match func.call(store, &[], &mut results) {
        Ok(()) => Ok(CommandExit {
            code: exit_code(&results),
            exited: false,
        }),
        Err(error) => match error.downcast_ref::<wasmtime_wasi::I32Exit>() {
            Some(exit) => Ok(CommandExit {
                code: exit.0 as u32,
                exited: true,
            }),
            None => Err(error),
        },
    }
}

/// A store on a pool thread for an async call (see `ComponentInstance::begin_async`).
pub struct AwayComponent {
    store: Store<ComponentState>,
    func: Func,
    call: ComponentCall,
    results: usize,
}

impl AwayComponent {
    /// The exported function called, for an export's call.
    pub fn index(&self) -> Option<usize> {
        match self.call {
            ComponentCall::Export { index, .. } => Some(index),
            ComponentCall::Run => None,
        }
    }

    /// Guest's thread: runs the call.
    pub fn run(&mut self) -> wasmtime::Result<AsyncResult> {
        if let Err(error) = crate::stack::ensure_room_for_wasm(crate::stack::thread_stack_bottom()) {
            return Err(wasmtime::Error::msg(error.to_string()));
        }
        let params = match &mut self.call {
            ComponentCall::Export { params, .. } => std::mem::take(params),
            ComponentCall::Run => return run_command(&self.func, &mut self.store).map(AsyncResult::Exit),
        };
        let mut results = vec![Val::Bool(false); self.results];
        self.func
            .call(&mut self.store, &params, &mut results)
            .map(|()| AsyncResult::Values(results))
    }
}

/// The exit code of `wasi:cli/run`'s `result`: 0 for ok, 1 for err.
fn exit_code(results: &[Val]) -> u32 {
    match results.first() {
        Some(Val::Result(Err(_))) => 1,
        _ => 0,
    }
}

/// One instantiated component with its own store.
pub struct ComponentInstance {
    store: RefCell<Option<Store<ComponentState>>>,
    /// The running async call's link, while the store is on a pool thread.
    away: RefCell<Option<Arc<RemoteLink>>>,
    functions: Vec<ExportedFunction>,
    resources: Vec<ExportedResource>,
    limits: Limits,
    /// A call trapped: the component model forbids entering the instance again.
    poisoned: Cell<bool>,
    has_wasi: bool,
    /// The queue of the guest's streamed stdout and stderr, if one is a callback.
    output_streams: Option<OutputStreams>,
    started: Cell<bool>,
    stack_bottom: usize,
    _ticker: Option<TickerGuard>,
}

impl ComponentInstance {
    /// Instantiates `source` in a new store under `limits`, with WASI 0.2 if `wasi` is given,
    /// and the embedder's `imports` and `host_resources`.
    pub fn instantiate(
        source: &ComponentSource,
        limits: Limits,
        wasi: Option<&WasiOptions>,
        imports: Vec<ImportBinding>,
        host_resources: Vec<HostResource>,
    ) -> SandboxResult<Self> {
        crate::stack::ensure_room_for_wasm(crate::stack::thread_stack_bottom())?;
        let kind = limits.engine_kind();
        let engine = engine_with(kind, source.compiler())?;
        let component = source.for_engine(kind)?;
        let wasi = wasi.map(ComponentWasiState::new).transpose()?;
        let has_wasi = wasi.is_some();
        let output_streams = wasi.as_ref().and_then(|wasi| wasi.streams().cloned());
        let state = ComponentState {
            // A component is made of several core instances, each with its own memories and
            // tables: the cap holds for each memory, the counts stay wasmtime's defaults.
            limits: limits.store_limits(StoreLimitsBuilder::new()),
            table: ResourceTable::new(),
            wasi,
            remote: None,
        };
        let mut store = Store::new(engine, state);
        apply_limits(&mut store, limits, true)?;
        // What a guest's values may make the host allocate per call: its lists can hold at most
        // its memory's bytes, each a dynamic value of at most 40 bytes here.
        let memory_cap = limits
            .max_memory_bytes
            .unwrap_or(crate::sandbox::MAX_WASM32_MEMORY_BYTES);
        store.set_hostcall_fuel(usize::try_from(memory_cap.saturating_mul(40)).unwrap_or(usize::MAX));
        // Handles JS holds are dropped when it lets go of them, which V8 decides; the count is
        // bounded by the memory V8 is told each costs (see `resources.rs`).
        store.set_max_component_handles(MAX_COMPONENT_HANDLES);
        let mut linker = if has_wasi {
            wasi_linker(kind, source.compiler())?
        } else {
            Linker::new(engine)
        };
        // The embedder's definitions override WASI's where both name an item.
        linker.allow_shadowing(true);
        let link_error = |error: wasmtime::Error| SandboxError::Link(format!("{error:#}"));
        // An imported interface of types only has nothing to define, but must exist. (Only
        // those: an empty instance under an exact name would shadow WASI's newer 0.2.x one.)
        for (name, item) in component.component_type().imports(engine) {
            if let ComponentItem::ComponentInstance(instance) = item.ty
                && instance
                    .exports(engine)
                    .all(|(_, export)| matches!(export.ty, ComponentItem::Type(_)))
            {
                linker.instance(name).map_err(link_error)?;
            }
        }
        for resource in host_resources {
            let drop = ThreadBound::new(resource.drop);
            let type_id = resource.type_id;
            let definition = move |mut store: StoreContextMut<'_, ComponentState>, rep: u32| {
                // During an async call the guest runs on a pool thread: the JS thread drops it.
                if let Some(link) = store.data().remote.clone() {
                    return forward(&link, &mut store, HostRequest::Drop { type_id, rep }).map(|_| ());
                }
                (drop.get())(rep).map_err(wasmtime::Error::new)
            };
            let ty = ResourceType::host_dynamic(resource.type_id);
            match &resource.interface {
                Some(interface) => linker
                    .instance(interface)
                    .and_then(|mut instance| instance.resource(&resource.name, ty, definition)),
                None => linker.root().resource(&resource.name, ty, definition),
            }
            .map_err(link_error)?;
        }
        for (index, import) in imports.into_iter().enumerate() {
            let host = ThreadBound::new(import.host);
            let definition = move |mut store: StoreContextMut<'_, ComponentState>,
                                   ty: ComponentFunc,
                                   params: &[Val],
                                   results: &mut [Val]| {
                // During an async call the guest runs on a pool thread: the import runs on the
                // JS thread, and nothing thread-bound is touched here.
                if let Some(link) = store.data().remote.clone() {
                    let request = HostRequest::Import {
                        index,
                        ty,
                        params: params.to_vec(),
                    };
                    let answer = forward(&link, &mut store, request)?;
                    let values = answer
                        .downcast::<Vec<Val>>()
                        .map_err(|_| wasmtime::Error::msg("an import answered with an unknown value"))?;
                    for (slot, value) in results.iter_mut().zip(*values) {
                        *slot = value;
                    }
                    return Ok(());
                }
                host.get()
                    .call(store, &ty, params, results)
                    .map_err(wasmtime::Error::new)
            };
            match &import.interface {
                Some(interface) => linker
                    .instance(interface)
                    .and_then(|mut instance| instance.func_new(&import.name, definition)),
                None => linker.root().func_new(&import.name, definition),
            }
            .map_err(link_error)?;
        }
        let instance = linker
            .instantiate(&mut store, &component)
            .map_err(|error| crate::sandbox::instantiation_error(error, limits))?;
        let (functions, resources) = exported_items(&mut store, &instance, &component);
        let ticker = match limits.timeout {
            Some(_) => Some(TickerGuard::timed()?),
            None => None,
        };
        Ok(Self {
            store: RefCell::new(Some(store)),
            away: RefCell::new(None),
            functions,
            resources,
            limits,
            poisoned: Cell::new(false),
            has_wasi,
            output_streams,
            started: Cell::new(false),
            stack_bottom: crate::stack::thread_stack_bottom(),
            _ticker: ticker,
        })
    }

    pub fn output_streams(&self) -> Option<&OutputStreams> {
        self.output_streams.as_ref()
    }

    /// Every exported function (interface functions, resource constructors, methods and
    /// statics, world-level functions), by the index calls use.
    pub fn functions(&self) -> &[ExportedFunction] {
        &self.functions
    }

    /// The resource types the component exports.
    pub fn resources(&self) -> &[ExportedResource] {
        &self.resources
    }

    /// Runs `action` on the store, outside any call.
    pub fn with_store<R>(&self, action: impl FnOnce(StoreContextMut<'_, ComponentState>) -> R) -> SandboxResult<R> {
        let mut store = self.store.try_borrow_mut().map_err(|_| SandboxError::Busy)?;
        match store.as_mut() {
            Some(store) => Ok(action(store.as_context_mut())),
            None => Err(self.missing_store()),
        }
    }

    /// Why the store is not here: an async call has it, or it was released.
    fn missing_store(&self) -> SandboxError {
        if self.away.borrow().is_some() {
            SandboxError::Busy
        } else {
            SandboxError::Disposed
        }
    }

    /// Calls the exported function at `index`: `lower` makes its arguments (with the store, for
    /// resources), `lift` turns its results into the caller's values.
    pub fn call<R>(
        &self,
        index: usize,
        lower: impl FnOnce(&ExportedFunction, &mut StoreContextMut<'_, ComponentState>) -> SandboxResult<Vec<Val>>,
        lift: impl FnOnce(&ExportedFunction, &mut StoreContextMut<'_, ComponentState>, Vec<Val>) -> SandboxResult<R>,
    ) -> SandboxResult<R> {
        let function = self
            .functions
            .get(index)
            .ok_or_else(|| SandboxError::Internal(format!("no exported function #{index}")))?;
        self.enter(|context| {
            let params = lower(function, context)?;
            let mut results = vec![Val::Bool(false); function.ty.results().len()];
            self.guard(function.func.call(&mut *context, &params, &mut results))?;
            lift(function, context, results)
        })
    }

    /// Calls the exported function at `index` through `run`, which calls it with static types
    /// (the typed fast path for bytes and strings), under the same limits as `call`.
    pub fn call_typed<R>(
        &self,
        index: usize,
        run: impl FnOnce(&Func, &mut StoreContextMut<'_, ComponentState>) -> wasmtime::Result<R>,
    ) -> SandboxResult<R> {
        let function = self
            .functions
            .get(index)
            .ok_or_else(|| SandboxError::Internal(format!("no exported function #{index}")))?;
        self.enter(|context| self.guard(run(&function.func, context)))
    }

    /// Hands the store to an async call of `call`: until `end_async`, the guest runs on a pool
    /// thread, its imports come back through `link`, and the instance is busy.
    pub fn begin_async(&self, link: Arc<RemoteLink>, call: ComponentCall) -> SandboxResult<AwayComponent> {
        if self.poisoned.get() {
            return Err(SandboxError::Poisoned);
        }
        let function = match &call {
            ComponentCall::Export { index, .. } => self
                .functions
                .get(*index)
                .ok_or_else(|| SandboxError::Internal(format!("no exported function #{index}")))?,
            ComponentCall::Run => &self.functions[self.run_index()?],
        };
        let func = function.func;
        let results = function.ty.results().len();
        if matches!(call, ComponentCall::Run) && self.started.replace(true) {
            return Err(SandboxError::AlreadyStarted);
        }
        let mut slot = self.store.try_borrow_mut().map_err(|_| SandboxError::Busy)?;
        let Some(mut store) = slot.take() else {
            return Err(if self.away.borrow().is_some() {
                SandboxError::Busy
            } else {
                SandboxError::Disposed
            });
        };
        store.data_mut().remote = Some(Arc::clone(&link));
        if let Some(streams) = &self.output_streams {
            streams.attach(Arc::clone(&link) as Arc<dyn Drain>);
        }
        crate::store::async_epochs(&mut store);
        *self.away.borrow_mut() = Some(link);
        Ok(AwayComponent {
            store,
            func,
            call,
            results,
        })
    }

    /// Takes the store back from an async call that has returned, and classifies its outcome.
    pub fn end_async(&self, away: AwayComponent, outcome: wasmtime::Result<AsyncResult>) -> SandboxResult<AsyncResult> {
        let mut store = away.store;
        store.data_mut().remote = None;
        if let Some(streams) = &self.output_streams {
            streams.detach();
        }
        crate::store::sync_epochs(&mut store, self.limits);
        *self.away.borrow_mut() = None;
        *self.store.borrow_mut() = Some(store);
        if let Ok(AsyncResult::Exit(CommandExit { exited: true, .. })) = &outcome {
            self.poisoned.set(true);
        }
        outcome.map_err(|error| {
            if error.downcast_ref::<crate::remote::Interrupted>().is_some() {
                self.poisoned.set(true);
                return SandboxError::Interrupted;
            }
            match self.guard::<()>(Err(error)) {
                Err(error) => error,
                Ok(()) => SandboxError::Internal("an async call failed without an error".to_owned()),
            }
        })
    }

    /// The running async call's link, if any.
    pub fn away_link(&self) -> Option<Arc<RemoteLink>> {
        self.away.borrow().clone()
    }

    /// Interrupts the running async call, if any (`dispose()`).
    pub fn interrupt_async(&self) -> bool {
        match self.away.borrow().as_ref() {
            Some(link) => {
                link.interrupt();
                true
            }
            None => false,
        }
    }

    /// The index of the `wasi:cli/run` export.
    fn run_index(&self) -> SandboxResult<usize> {
        if !self.has_wasi {
            return Err(SandboxError::WasiNotEnabled);
        }
        self.functions
            .iter()
            .position(|function| {
                function.name == "run"
                    && function
                        .interface
                        .as_deref()
                        .is_some_and(|interface| interface.starts_with(RUN_INTERFACE))
            })
            .ok_or_else(|| SandboxError::BadExport {
                name: "wasi:cli/run@0.2.x".to_owned(),
                expected: "WASI 0.2 command",
                reason: "the component does not export wasi:cli/run, so it is not a command; call its exports instead"
                    .to_owned(),
            })
    }

    /// Drops a handle to a resource the guest exported (the guest's destructor runs).
    pub fn drop_resource(&self, resource: ResourceAny) -> SandboxResult<()> {
        self.enter(|context| self.guard(resource.resource_drop(&mut *context)))
    }

    /// Runs a WASI 0.2 command's `wasi:cli/run` export; returns its exit code.
    pub fn run(&self) -> SandboxResult<u32> {
        let index = self.run_index()?;
        if self.started.replace(true) {
            return Err(SandboxError::AlreadyStarted);
        }
        let function = &self.functions[index];
        self.enter(|context| {
            let exit = self.guard(run_command(&function.func, &mut *context))?;
            self.poisoned.set(exit.exited);
            Ok(exit.code)
        })
    }

    /// What the guest wrote to its captured stdout and stderr since it was last taken.
    pub fn take_output(&self) -> SandboxResult<Output> {
        if !self.has_wasi {
            return Err(SandboxError::WasiNotEnabled);
        }
        self.with_store(|context| take_output_of(context.data().wasi.as_ref()))
    }

    pub fn limits(&self) -> Limits {
        self.limits
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

    /// Enters the instance for one outermost call, under a fresh deadline.
    fn enter<R>(
        &self,
        run: impl FnOnce(&mut StoreContextMut<'_, ComponentState>) -> SandboxResult<R>,
    ) -> SandboxResult<R> {
        if self.poisoned.get() {
            return Err(SandboxError::Poisoned);
        }
        crate::stack::ensure_room_for_wasm(self.stack_bottom)?;
        let mut store = self.store.try_borrow_mut().map_err(|_| SandboxError::Busy)?;
        let Some(store) = store.as_mut() else {
            return Err(self.missing_store());
        };
        let mut context = store.as_context_mut();
        if let Some(timeout) = self.limits.timeout {
            context.set_epoch_deadline(deadline_ticks(timeout));
        }
        run(&mut context)
    }

    /// Classifies a failed guest call; any failure inside the guest poisons the instance.
    fn guard<T>(&self, outcome: wasmtime::Result<T>) -> SandboxResult<T> {
        outcome.map_err(|error| {
            self.poisoned.set(true);
            SandboxError::from_call(error).explain_limits(
                self.limits.timeout,
                "the guest was interrupted",
                "the guest used up its fuel (instantiate the component anew with more)",
            )
        })
    }
}

/// The exported functions and resources of `instance`, in the order of the component's exports.
fn exported_items(
    store: &mut Store<ComponentState>,
    instance: &Instance,
    component: &wasmtime::component::Component,
) -> (Vec<ExportedFunction>, Vec<ExportedResource>) {
    let engine = store.engine().clone();
    let ty = component.component_type();
    let mut functions = Vec::new();
    let mut resources = Vec::new();
    let mut add_function = |store: &mut Store<ComponentState>, interface: Option<&str>, name: &str| {
        let parent = interface.and_then(|interface| instance.get_export_index(&mut *store, None, interface));
        let Some(index) = instance.get_export_index(&mut *store, parent.as_ref(), name) else {
            return;
        };
        let Some(func) = instance.get_func(&mut *store, index) else {
            return;
        };
        let ty = func.ty(&*store);
        let params = ty.params().map(|(_, ty)| ty).collect();
        let result = ty.results().next();
        functions.push(ExportedFunction {
            interface: interface.map(str::to_owned),
            name: name.to_owned(),
            func,
            ty,
            params,
            result,
        });
    };
    for (name, export) in ty.exports(&engine) {
        match export.ty {
            ComponentItem::ComponentFunc(_) => add_function(store, None, name),
            ComponentItem::ComponentInstance(interface) => {
                for (member, item) in interface.exports(&engine) {
                    match item.ty {
                        ComponentItem::ComponentFunc(_) => add_function(store, Some(name), member),
                        ComponentItem::Resource(_) => {
                            let parent = instance.get_export_index(&mut *store, None, name);
                            if let Some(ty) = instance
                                .get_export_index(&mut *store, parent.as_ref(), member)
                                .and_then(|index| instance.get_resource(&mut *store, index))
                            {
                                resources.push(ExportedResource {
                                    interface: Some(name.to_owned()),
                                    name: member.to_owned(),
                                    ty,
                                });
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    (functions, resources)
}

/// A linker with WASI 0.2 for `kind`'s engine, defined once per engine and cloned.
fn wasi_linker(kind: EngineKind, compiler: Compiler) -> SandboxResult<Linker<ComponentState>> {
    static LINKERS: PerWasiEngine<Linker<ComponentState>> = PerWasiEngine::new();
    LINKERS.get(kind, compiler, |engine| {
        let mut linker = Linker::new(engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        Ok(linker)
    })
}
