//! A component instance: its own store (the store layer's limits), its linker (WASI 0.2 when
//! granted, the embedder's host functions and host resources otherwise), and calls into its
//! exported functions with dynamically typed values.

use std::cell::{Cell, RefCell};
use std::sync::Arc;

use wasmtime::component::types::{ComponentFunc, ComponentItem, Type};
use wasmtime::component::{Func, Instance, Linker, ResourceAny, ResourceTable, ResourceType, Val};
use wasmtime::{AsContextMut, Store, StoreContextMut, StoreLimitsBuilder};
use wasmtime_wasi::runtime::in_tokio;
use wasmtime_wasi::{WasiCtxView, WasiView};

use super::ComponentSource;
use super::abi::{Args, EXPORT_SLOTS, Results, Value, flat_params};
use super::http::{HostRules, HttpState, HttpStreams, ServedRequest, ServiceKind, serve};
use super::transmit::{Channels, TransmitEvent, signature_has_transmits};
use crate::engine::{Compiler, EngineKind, PerWasiEngine, TickerGuard, engine_with};
use crate::error::{SandboxError, SandboxResult};
use crate::remote::RemoteLink;
use crate::sandbox::{HostFunctionError, ThreadBound};
use crate::store::{LimitedState, Limits, Observer, apply_limits};
use crate::wasi::{ComponentWasiState, Drain, Output, OutputStreams, WasiOptions, take_output_of};

/// The interface a WASI 0.3 command exports, and a WASI 0.2 one (any 0.2.x version): a
/// component exporting both is run as WASI 0.3.
pub const RUN_INTERFACES: [&str; 2] = ["wasi:cli/run@0.3", "wasi:cli/run@0.2"];

/// Whether a component importing `name` needs wasmtime's async API to run: WASI 0.3's
/// interfaces are async host functions, which only a store driven by that API can call.
fn is_async_import(name: &str) -> bool {
    name.starts_with("wasi:") && name.contains("@0.3")
}

/// Whether a component importing `name` needs wasmtime's async API for `wasi:http`: its
/// requests and bodies are served by tokio tasks, which a synchronous store cannot wait for.
fn is_http_import(name: &str) -> bool {
    name.starts_with("wasi:http/")
}

/// Whether a function of the component's own imports or exports passes a `stream` or `future`:
/// those are driven by wasmtime's async API.
fn world_has_transmits(engine: &wasmtime::Engine, component: &wasmtime::component::Component) -> bool {
    fn item_has(engine: &wasmtime::Engine, item: &ComponentItem) -> bool {
        match item {
            ComponentItem::ComponentFunc(func) => signature_has_transmits(func),
            ComponentItem::ComponentInstance(instance) => {
                instance.exports(engine).any(|(_, item)| item_has(engine, &item.ty))
            }
            _ => false,
        }
    }
    let ty = component.component_type();
    ty.exports(engine).any(|(_, item)| item_has(engine, &item.ty))
        || ty
            .imports(engine)
            .any(|(name, item)| !name.starts_with("wasi:") && item_has(engine, &item.ty))
}

/// How many resource handles one instance may hold at once.
const MAX_COMPONENT_HANDLES: usize = 10_000_000;

/// Per-store data of a component instance.
pub struct ComponentState {
    observer: Observer,
    table: ResourceTable,
    wasi: Option<ComponentWasiState>,
    /// While an async call runs the instance on a pool thread: the way to the JS thread, which
    /// its imports take.
    remote: Option<Arc<RemoteLink>>,
    /// The store runs guests on wasmtime's fibers (it needs the async API): JS cannot run there,
    /// so a JS import is refused unless it goes through `remote`.
    on_fibers: bool,
    /// `wasi:http`, linked with WASI.
    http: Option<HttpState>,
    http_streams: Arc<HttpStreams>,
    /// The streams and futures crossing between the guest and JS.
    channels: Arc<Channels>,
}

impl ComponentState {
    /// A store for one instance under `limits`: WASI (and `wasi:http`, its outgoing requests
    /// allowed to `http`'s hosts) if `wasi` is given.
    pub(super) fn new_store(
        engine: &wasmtime::Engine,
        limits: Limits,
        wasi: Option<ComponentWasiState>,
        http: Option<HostRules>,
        http_streams: Arc<HttpStreams>,
        channels: Arc<Channels>,
        on_fibers: bool,
    ) -> SandboxResult<Store<Self>> {
        let http = wasi.is_some().then(|| HttpState::new(http, Arc::clone(&http_streams)));
        let state = ComponentState {
            // A component is made of several core instances, each with its own memories and
            // tables: the cap holds for each memory, the counts stay wasmtime's defaults.
            observer: limits.observer(StoreLimitsBuilder::new()),
            table: ResourceTable::new(),
            wasi,
            remote: None,
            on_fibers,
            http,
            http_streams,
            channels,
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
        Ok(store)
    }

    /// Runs the store's async calls through `link` (the served request's), with `interrupt()`
    /// and its deadline checked at each epoch tick.
    pub(super) fn attach_link(store: &mut Store<Self>, link: Arc<RemoteLink>) {
        if let Some(http) = &mut store.data_mut().http {
            http.set_link(Some(Arc::clone(&link)));
        }
        store.data_mut().remote = Some(link);
        crate::store::async_epochs(store);
    }

    /// `wasi:http`'s state and the resource table, for `WasiHttpView`.
    pub(super) fn http_parts(&mut self) -> (&mut HttpState, &mut ResourceTable) {
        (
            self.http
                .as_mut()
                .expect("wasi:http is linked only into stores with an HTTP state"),
            &mut self.table,
        )
    }

    /// The byte streams between this store's HTTP exchanges and JS.
    pub fn http_streams(&self) -> &Arc<HttpStreams> {
        &self.http_streams
    }
}

/// What a component's host function asks of the JS thread during an async call.
pub enum HostRequest {
    /// Call import `index` (in the order of `instantiate`'s `imports`) with `params`; the
    /// answer is an `Option<Value>`, its result.
    Import {
        index: usize,
        ty: ComponentFunc,
        params: Vec<Value>,
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
    fn observer(&mut self) -> &mut Observer {
        &mut self.observer
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
        params: Vec<Value>,
    ) -> Result<Option<Value>, HostFunctionError>;
}

/// A function import to define: `interface` is `None` for a world-level function.
pub struct ImportBinding {
    pub interface: Option<String>,
    pub name: String,
    /// Its type, as the component imports it.
    pub ty: ComponentFunc,
    pub host: Box<dyn ComponentHost>,
}

/// What the embedder brings to an instance: its host functions and host resources, and the
/// channels its streams and futures cross to JS by.
pub struct Embedding {
    pub imports: Vec<ImportBinding>,
    pub host_resources: Vec<HostResource>,
    pub channels: Arc<Channels>,
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
#[derive(Clone)]
pub struct ExportedFunction {
    /// The exported interface it belongs to; `None` for a world-level function.
    pub interface: Option<String>,
    /// Its name in that interface (`echo`, `[method]counter.get`).
    pub name: String,
    pub func: Func,
    pub ty: ComponentFunc,
    pub params: Vec<Type>,
    pub result: Option<Type>,
    /// Its parameters or result hold a `stream` or `future` (it is called async only).
    pub transmits: bool,
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
    Export { index: usize, params: Vec<Value> },
    /// The `wasi:cli/run` export.
    Run,
    /// The `wasi:http` handler export, with this request.
    Serve(Option<ServedRequest>),
}

/// What an async call returned: the function's results, or a command's exit code.
pub enum AsyncResult {
    Value(Option<Value>),
    Exit(CommandExit),
    /// The request was served (the response went to JS as it came).
    Served,
    /// The function's value went to JS before the call ended (`TransmitEvent::Returned`): it held
    /// streams or futures, which the call kept running for until they ended.
    Returned,
}

/// How a command's `run` ended: its exit code, and whether it ended by `exit` (which leaves the
/// instance unusable, as a trap does).
pub struct CommandExit {
    pub code: u32,
    pub exited: bool,
}

/// Calls `function`: directly, or through wasmtime's async API (driven to completion on this
/// thread) where the store needs it or the function is async.
fn call_func(
    (func, use_async): (&Func, bool),
    mut store: impl AsContextMut<Data = ComponentState>,
    params: &[Val],
    results: &mut [Val],
    stop: &dyn Fn() -> Option<wasmtime::Error>,
) -> wasmtime::Result<()> {
    if use_async {
        return drive(func.call_async(store.as_context_mut(), params, results), stop);
    }
    func.call(store, params, results)
}

/// Calls the exported `function` with `params`, lowered and lifted by `abi` (a numeric list in
/// one copy): its result, if it has one.
fn call_export(
    function: &ExportedFunction,
    (func, use_async): (&Func, bool),
    mut store: impl AsContextMut<Data = ComponentState>,
    params: Vec<Value>,
    stop: &dyn Fn() -> Option<wasmtime::Error>,
) -> wasmtime::Result<Option<Value>> {
    // An export lifted with the async ABI (which only an `async func` may be) returns up to 16
    // flat values through `task.return`, which `Results` (one slot, else memory) does not read:
    // wasmtime's `Val` path takes those.
    if function.ty.async_() {
        let params: Vec<Val> = params
            .into_iter()
            .map(Value::into_val)
            .collect::<Option<_>>()
            .ok_or_else(|| wasmtime::Error::msg("a stream or future already given to JavaScript"))?;
        let mut results = vec![Val::Bool(false); function.ty.results().len()];
        call_func((func, use_async), store, &params, &mut results, stop)?;
        return match (results.pop(), &function.result) {
            (Some(value), Some(ty)) => Value::from_val(value, ty)
                .map(Some)
                .ok_or_else(|| wasmtime::Error::msg(format!("a result of type {ty:?} that cannot cross to JS"))),
            _ => Ok(None),
        };
    }
    if function.result.is_none() {
        return call_typed::<Results<0>>(func, use_async, store.as_context_mut(), params, stop)
            .map(|Results(value)| value);
    }
    call_typed::<Results<1>>(func, use_async, store.as_context_mut(), params, stop).map(|Results(value)| value)
}

fn call_typed<R>(
    func: &Func,
    use_async: bool,
    mut store: StoreContextMut<'_, ComponentState>,
    params: Vec<Value>,
    stop: &dyn Fn() -> Option<wasmtime::Error>,
) -> wasmtime::Result<R>
where
    R: wasmtime::component::ComponentNamedList + wasmtime::component::Lift + Send + Sync + 'static,
{
    let typed = func.typed::<Args<EXPORT_SLOTS>, R>(&store)?;
    if use_async {
        return in_tokio(watch(typed.call_async(&mut store, Args(params)), stop));
    }
    typed.call(&mut store, Args(params))
}

/// How often a call driven by the async API checks whether it must stop.
const STOP_POLL: std::time::Duration = std::time::Duration::from_millis(5);

/// Drives `call` to completion on this thread, unless `stop` ends it first: a guest waiting for
/// a host future (a timer, a stream nobody writes) runs no wasm, so the epoch checks that stop
/// running guests never see it.
fn drive(
    call: impl std::future::Future<Output = wasmtime::Result<()>>,
    stop: &dyn Fn() -> Option<wasmtime::Error>,
) -> wasmtime::Result<()> {
    in_tokio(watch(call, stop))
}

/// `call`, unless `stop` ends it first (checked every `STOP_POLL`).
pub(super) async fn watch<T>(
    call: impl std::future::Future<Output = wasmtime::Result<T>>,
    stop: impl Fn() -> Option<wasmtime::Error>,
) -> wasmtime::Result<T> {
    use std::pin::pin;
    use std::task::Poll;
    let mut call = pin!(call);
    let mut watch = pin!(async {
        loop {
            if let Some(error) = stop() {
                return error;
            }
            tokio::time::sleep(STOP_POLL).await;
        }
    });
    std::future::poll_fn(|context| {
        if let Poll::Ready(outcome) = call.as_mut().poll(context) {
            return Poll::Ready(outcome);
        }
        watch.as_mut().poll(context).map(Err)
    })
    .await
}

/// A future whose panics are caught at each poll: it then ends with `None`, and what it owned
/// is leaked, not dropped (a store holds JS references, which only the JS thread may release).
pub struct Unwinding<F>(Option<std::pin::Pin<Box<F>>>);

impl<F: std::future::Future> Unwinding<F> {
    pub fn new(future: F) -> Self {
        Self(Some(Box::pin(future)))
    }
}

impl<F: std::future::Future> std::future::Future for Unwinding<F> {
    type Output = Option<F::Output>;

    fn poll(mut self: std::pin::Pin<&mut Self>, context: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        use std::task::Poll;
        let Some(inner) = self.0.as_mut() else {
            return Poll::Ready(None);
        };
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.as_mut().poll(context))) {
            Ok(Poll::Ready(output)) => {
                self.0 = None;
                Poll::Ready(Some(output))
            }
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => {
                std::mem::forget(self.0.take());
                Poll::Ready(None)
            }
        }
    }
}

/// What stops a call on the JS thread: its deadline.
fn deadline_stop(timeout: Option<std::time::Duration>) -> impl Fn() -> Option<wasmtime::Error> {
    let deadline = timeout.map(|timeout| std::time::Instant::now() + timeout);
    move || {
        deadline
            .filter(|deadline| std::time::Instant::now() >= *deadline)
            .map(|_| wasmtime::Trap::Interrupt.into())
    }
}

/// Calls a command's `wasi:cli/run` `run` function.
fn run_command(
    target: (&Func, bool),
    store: impl AsContextMut<Data = ComponentState>,
    stop: &dyn Fn() -> Option<wasmtime::Error>,
) -> wasmtime::Result<CommandExit> {
    let mut results = vec![Val::Bool(false)];
    match call_func(target, store, &[], &mut results, stop) {
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
    /// Whether `func` is called through wasmtime's async API.
    use_async: bool,
    call: ComponentCall,
    /// The function called, for an export's call.
    function: Option<ExportedFunction>,
    instance: Instance,
    service: Option<ServiceKind>,
}

impl AwayComponent {
    /// The exported function called, for an export's call.
    pub fn index(&self) -> Option<usize> {
        match self.call {
            ComponentCall::Export { index, .. } => Some(index),
            ComponentCall::Run | ComponentCall::Serve(_) => None,
        }
    }

    /// Guest's thread: runs the call (its CPU time counted here, on the guest's thread).
    pub fn run(&mut self) -> wasmtime::Result<AsyncResult> {
        if let Err(error) = crate::stack::ensure_room_for_wasm(crate::stack::thread_stack_bottom()) {
            return Err(wasmtime::Error::msg(error.to_string()));
        }
        let fuel = self.store.get_fuel().ok();
        self.store.data_mut().observer().begin(fuel, None);
        let outcome = self.run_call();
        let fuel = self.store.get_fuel().ok();
        self.store.data_mut().observer().end(fuel);
        outcome
    }

    fn run_call(&mut self) -> wasmtime::Result<AsyncResult> {
        let (index, params) = match &mut self.call {
            ComponentCall::Export { index, params } => (*index, std::mem::take(params)),
            ComponentCall::Run => {
                let stop = self.stop();
                return run_command((&self.func, self.use_async), &mut self.store, &stop).map(AsyncResult::Exit);
            }
            ComponentCall::Serve(_) => {
                return Err(wasmtime::Error::msg("a served request runs as a task (`serve`)"));
            }
        };
        let Some(function) = &self.function else {
            return Err(wasmtime::Error::msg("an export's call without its function"));
        };
        let stop = self.stop();
        let mut value = call_export(function, (&self.func, self.use_async), &mut self.store, params, &stop)?;
        let channels = Arc::clone(&self.store.data().channels);
        if let Some(value) = &mut value {
            channels.pipe_to_js(self.store.as_context_mut(), value)?;
        }
        if channels.is_empty() {
            return Ok(AsyncResult::Value(value));
        }
        // The value holds streams or futures still open: JS gets it now, and the guest's event
        // loop runs on (its tasks writing and reading them) until they have all ended.
        channels.send(TransmitEvent::Returned { index, value });
        let settled = self.store.run_concurrent(async |_| channels.settled().await);
        drive(settled, &stop)?;
        Ok(AsyncResult::Returned)
    }

    /// A served request's task: serves it (the response goes to JS as it comes), then hands the
    /// store back with the outcome.
    pub async fn serve(mut self) -> (Self, wasmtime::Result<AsyncResult>) {
        let outcome = self.serve_request().await;
        (self, outcome)
    }

    async fn serve_request(&mut self) -> wasmtime::Result<AsyncResult> {
        let ComponentCall::Serve(request) = &mut self.call else {
            return Err(wasmtime::Error::msg("not a request to serve"));
        };
        let (Some(request), Some(kind), Some(link)) = (request.take(), self.service, self.store.data().remote.clone())
        else {
            return Err(wasmtime::Error::msg("a request to serve without a handler"));
        };
        let stop = self.stop();
        let instance = self.instance;
        watch(serve(&mut self.store, &instance, kind, request, &link), stop)
            .await
            .map(|()| AsyncResult::Served)
    }

    /// What stops the call: `interrupt()`, `dispose()` and its deadline, through its link.
    fn stop(&self) -> impl Fn() -> Option<wasmtime::Error> + Send + Sync + use<> {
        let link = self.store.data().remote.clone();
        move || link.as_ref().and_then(|link| link.must_stop())
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
    instance: Instance,
    /// The `wasi:http` handler the component exports, if any.
    service: Option<ServiceKind>,
    http_streams: Arc<HttpStreams>,
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
    /// The store needs wasmtime's async API (the component imports WASI 0.3).
    needs_async: bool,
    /// A function of its own imports or exports passes a `stream` or `future`.
    passes_transmits: bool,
    /// The guest can reach JS (it has JS imports or imported resources).
    js_reachable: bool,
    started: Cell<bool>,
    stack_bottom: usize,
    /// This thread's count of running limited calls (see `engine::TimedCall`).
    running_calls: &'static std::sync::atomic::AtomicU32,
    _ticker: Option<TickerGuard>,
}

impl ComponentInstance {
    /// Instantiates `source` in a new store under `limits`, with WASI (and `wasi:http`, its
    /// outgoing requests allowed to `http`'s hosts) if `wasi` is given, and the embedder's
    /// `imports` and `host_resources`.
    pub fn instantiate(
        source: &ComponentSource,
        limits: Limits,
        wasi: Option<&WasiOptions>,
        http: Option<&HostRules>,
        prepared: &PreparedInstances,
        embedding: Embedding,
    ) -> SandboxResult<Self> {
        let Embedding {
            imports,
            host_resources,
            channels,
        } = embedding;
        crate::stack::ensure_room_for_wasm(crate::stack::thread_stack_bottom())?;
        let kind = limits.component_engine_kind();
        let engine = engine_with(kind, source.compiler())?;
        let component = source.for_engine(kind)?;
        let wasi = wasi.map(ComponentWasiState::new).transpose()?;
        let has_wasi = wasi.is_some();
        let output_streams = wasi.as_ref().and_then(|wasi| wasi.streams().cloned());
        let service = component
            .component_type()
            .exports(engine)
            .find_map(|(name, _)| ServiceKind::of_export(name));
        let passes_transmits = world_has_transmits(engine, &component);
        let needs_async = service.is_some()
            || component
                .component_type()
                .imports(engine)
                .any(|(name, _)| is_async_import(name) || is_http_import(name))
            || passes_transmits;
        let http_streams = Arc::new(HttpStreams::default());
        let js_reachable = !imports.is_empty() || !host_resources.is_empty();
        let mut store = ComponentState::new_store(
            engine,
            limits,
            wasi,
            http.cloned(),
            Arc::clone(&http_streams),
            channels,
            needs_async,
        )?;
        // Without JS imports the linker is the same for every instance: linked and type-checked
        // once per engine (an `InstancePre`), which is most of an instantiation's cost.
        let linking = Linking {
            kind,
            compiler: source.compiler(),
            has_wasi,
            needs_async,
        };
        let instance = if imports.is_empty() && host_resources.is_empty() {
            let pre = prepared.get(kind, has_wasi, || {
                instance_linker(engine, &component, linking, imports, host_resources)?
                    .instantiate_pre(&component)
                    .map_err(|error| crate::sandbox::instantiation_error(error, limits))
            })?;
            if needs_async {
                in_tokio(pre.instantiate_async(&mut store))
            } else {
                pre.instantiate(&mut store)
            }
        } else {
            let linker = instance_linker(engine, &component, linking, imports, host_resources)?;
            if needs_async {
                in_tokio(linker.instantiate_async(&mut store, &component))
            } else {
                linker.instantiate(&mut store, &component)
            }
        }
        .map_err(|error| crate::sandbox::instantiation_error(error, limits))?;
        let (functions, resources) = exported_items(&mut store, &instance, &component);
        let ticker = match limits.needs_ticker() {
            true => Some(TickerGuard::timed()?),
            false => None,
        };
        Ok(Self {
            store: RefCell::new(Some(store)),
            instance,
            service,
            http_streams,
            away: RefCell::new(None),
            functions,
            resources,
            limits,
            poisoned: Cell::new(false),
            has_wasi,
            output_streams,
            needs_async,
            passes_transmits,
            js_reachable,
            started: Cell::new(false),
            stack_bottom: crate::stack::thread_stack_bottom(),
            running_calls: crate::engine::running_calls_here(),
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
        lower: impl FnOnce(&ExportedFunction, &mut StoreContextMut<'_, ComponentState>) -> SandboxResult<Vec<Value>>,
        lift: impl FnOnce(&ExportedFunction, &mut StoreContextMut<'_, ComponentState>, Option<Value>) -> SandboxResult<R>,
    ) -> SandboxResult<R> {
        let function = self
            .functions
            .get(index)
            .ok_or_else(|| SandboxError::Internal(format!("no exported function #{index}")))?;
        self.check_sync(function)?;
        let target = self.target(function);
        self.enter(|context| {
            let params = lower(function, context)?;
            let stop = deadline_stop(self.limits.timeout);
            let result = self.guard(call_export(function, target, &mut *context, params, &stop))?;
            lift(function, context, result)
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
            ComponentCall::Serve(_) => &self.functions[self.service_index()?],
        };
        let (&func, use_async) = self.target(function);
        let exported = matches!(call, ComponentCall::Export { .. }).then(|| function.clone());
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
        if let Some(http) = &mut store.data_mut().http {
            http.set_link(Some(Arc::clone(&link)));
        }
        store.data().channels.set_link(Some(Arc::clone(&link)));
        if let Some(streams) = &self.output_streams {
            streams.attach(Arc::clone(&link) as Arc<dyn Drain>);
        }
        crate::store::async_epochs(&mut store);
        *self.away.borrow_mut() = Some(link);
        Ok(AwayComponent {
            store,
            func,
            use_async,
            call,
            function: exported,
            instance: self.instance,
            service: self.service,
        })
    }

    /// Takes the store back from an async call that has returned, and classifies its outcome.
    pub fn end_async(&self, away: AwayComponent, outcome: wasmtime::Result<AsyncResult>) -> SandboxResult<AsyncResult> {
        let mut store = away.store;
        store.data_mut().remote = None;
        if let Some(http) = &mut store.data_mut().http {
            http.set_link(None);
        }
        store.data().channels.set_link(None);
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

    /// The index of the `wasi:cli/run` export (WASI 0.3's if the component exports both).
    fn run_index(&self) -> SandboxResult<usize> {
        if !self.has_wasi {
            return Err(SandboxError::WasiNotEnabled);
        }
        RUN_INTERFACES
            .iter()
            .find_map(|run| {
                self.functions.iter().position(|function| {
                    function.name == "run" && function.interface.as_deref().is_some_and(|name| name.starts_with(run))
                })
            })
            .ok_or_else(|| SandboxError::BadExport {
                name: "wasi:cli/run@0.3.x or @0.2.x".to_owned(),
                expected: "WASI command",
                reason: "the component does not export wasi:cli/run, so it is not a command; call its exports instead"
                    .to_owned(),
            })
    }

    /// The index of the `wasi:http` handler's `handle` export.
    fn service_index(&self) -> SandboxResult<usize> {
        if !self.has_wasi {
            return Err(SandboxError::WasiNotEnabled);
        }
        self.service
            .and_then(|_| {
                self.functions.iter().position(|function| {
                    function.name == "handle"
                        && function
                            .interface
                            .as_deref()
                            .is_some_and(|name| ServiceKind::of_export(name).is_some())
                })
            })
            .ok_or_else(|| SandboxError::BadExport {
                name: "wasi:http/incoming-handler@0.2.x or wasi:http/handler@0.3.x".to_owned(),
                expected: "wasi:http service",
                reason: "the component does not export a wasi:http handler, so it cannot serve requests".to_owned(),
            })
    }

    /// The byte streams between the instance's HTTP exchanges and JS.
    pub fn http_streams(&self) -> &Arc<HttpStreams> {
        &self.http_streams
    }

    /// Drops a handle to a resource the guest exported (the guest's destructor runs).
    pub fn drop_resource(&self, resource: ResourceAny) -> SandboxResult<()> {
        if self.needs_async {
            return self.enter(|context| self.guard(in_tokio(resource.resource_drop_async(&mut *context))));
        }
        self.enter(|context| self.guard(resource.resource_drop(&mut *context)))
    }

    /// Runs a WASI 0.2 command's `wasi:cli/run` export; returns its exit code.
    pub fn run(&self) -> SandboxResult<u32> {
        let index = self.run_index()?;
        let function = &self.functions[index];
        self.check_sync(function)?;
        if self.started.replace(true) {
            return Err(SandboxError::AlreadyStarted);
        }
        let target = self.target(function);
        self.enter(|context| {
            let stop = deadline_stop(self.limits.timeout);
            let exit = self.guard(run_command(target, &mut *context, &stop))?;
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
        let _timed = crate::store::begin_call(&mut context, self.limits, self.running_calls);
        let outcome = run(&mut context);
        crate::store::end_call(&mut context, self.limits);
        outcome
    }

    /// Whether the fast path may call this instance's exports (it cannot drive the async API).
    pub fn needs_async(&self) -> bool {
        self.needs_async
    }

    /// Whether streams or futures can cross between this instance and JS (a function of its own
    /// imports or exports passes them).
    pub fn passes_transmits(&self) -> bool {
        self.passes_transmits
    }

    /// `function` and whether it is called through wasmtime's async API.
    fn target<'a>(&self, function: &'a ExportedFunction) -> (&'a Func, bool) {
        (&function.func, self.needs_async || function.ty.async_())
    }

    /// Refuses a synchronous call that would run the guest on a wasmtime fiber on the JS thread
    /// while it can call JS (which V8 cannot run there).
    fn check_sync(&self, function: &ExportedFunction) -> SandboxResult<()> {
        if function.transmits {
            return Err(SandboxError::AsyncRequired(format!(
                "`{}` passes a stream or future, which needs the guest's event loop to run on after it \
                 returns: call it with callAsync() (instance.exports gives a Promise for it)",
                function.name
            )));
        }
        if self.target(function).1 && self.js_reachable {
            return Err(SandboxError::AsyncRequired(format!(
                "`{}` runs on wasmtime's async API (the component uses WASI 0.3 or async functions) and the \
                 component has JS imports, which cannot run there synchronously: use callAsync() or runAsync()",
                function.name
            )));
        }
        Ok(())
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

/// What an instance's linker depends on, besides its imports.
#[derive(Clone, Copy)]
pub(super) struct Linking {
    pub(super) kind: EngineKind,
    pub(super) compiler: Compiler,
    pub(super) has_wasi: bool,
    pub(super) needs_async: bool,
}

/// The linker of one instance: WASI (when granted), the imported interfaces of types only, and
/// the embedder's host functions and host resources.
pub(super) fn instance_linker(
    engine: &wasmtime::Engine,
    component: &wasmtime::component::Component,
    linking: Linking,
    imports: Vec<ImportBinding>,
    host_resources: Vec<HostResource>,
) -> SandboxResult<Linker<ComponentState>> {
    let Linking {
        kind,
        compiler,
        has_wasi,
        needs_async,
    } = linking;
    let mut linker = if has_wasi {
        wasi_linker(kind, compiler, needs_async)?
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
    let defines_resources = !host_resources.is_empty();
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
    let mut resolved_types = Vec::new();
    for (index, import) in imports.into_iter().enumerate() {
        let host = ThreadBound::new(import.host);
        // The component's own type names its imported resources abstractly; the type with the
        // host's resources in their place is filled in below, once every import is defined.
        let resolved = Arc::new(std::sync::OnceLock::<ComponentFunc>::new());
        resolved_types.push((import.interface.clone(), import.name.clone(), Arc::clone(&resolved)));
        let declared = import.ty.clone();
        let call: Arc<ImportCall> = Arc::new(
            move |mut store: StoreContextMut<'_, ComponentState>, mut params: Vec<Value>| {
                let ty = resolved.get().unwrap_or(&declared);
                // During an async call the guest runs on a pool thread: the import runs on the
                // JS thread, and nothing thread-bound is touched here.
                if let Some(link) = store.data().remote.clone() {
                    let channels = Arc::clone(&store.data().channels);
                    for param in &mut params {
                        channels.pipe_to_js(store.as_context_mut(), param)?;
                    }
                    let request = HostRequest::Import {
                        index,
                        ty: ty.clone(),
                        params,
                    };
                    let answer = forward(&link, &mut store, request)?;
                    return answer
                        .downcast::<Option<Value>>()
                        .map(|value| *value)
                        .map_err(|_| wasmtime::Error::msg("an import answered with an unknown value"));
                }
                if store.data().on_fibers {
                    return Err(wasmtime::Error::msg(
                        "a WASI 0.3 component can call JS imports only in callAsync() and runAsync()",
                    ));
                }
                host.get().call(store, ty, params).map_err(wasmtime::Error::new)
            },
        );
        let slots = flat_params(import.ty.params().map(|(_, ty)| ty));
        let has_result = import.ty.results().len() > 0;
        match &import.interface {
            Some(interface) => linker
                .instance(interface)
                .and_then(|mut instance| define_import(&mut instance, &import.name, slots, has_result, call)),
            None => define_import(&mut linker.root(), &import.name, slots, has_result, call),
        }
        .map_err(link_error)?;
    }
    // Without host resources the declared types are the instance's already. With them, a
    // linker that cannot type-check the component fails at instantiation, which says why.
    if defines_resources
        && !resolved_types.is_empty()
        && let Ok(substituted) = linker.substituted_component_type(component)
    {
        for (interface, name, resolved) in resolved_types {
            if let Some(ty) = function_type(engine, &substituted, interface.as_deref(), &name) {
                let _ = resolved.set(ty);
            }
        }
    }
    Ok(linker)
}

/// The type of the function `component` imports as `name` (in `interface`, or at the world's
/// level).
pub(super) fn function_type(
    engine: &wasmtime::Engine,
    component: &wasmtime::component::types::Component,
    interface: Option<&str>,
    name: &str,
) -> Option<ComponentFunc> {
    component
        .imports(engine)
        .find_map(|(import, item)| match (interface, item.ty) {
            (None, ComponentItem::ComponentFunc(func)) if import == name => Some(func),
            (Some(interface), ComponentItem::ComponentInstance(instance)) if import == interface => {
                instance.exports(engine).find_map(|(member, item)| match item.ty {
                    ComponentItem::ComponentFunc(func) if member == name => Some(func),
                    _ => None,
                })
            }
            _ => None,
        })
}

/// A JS import as the linker calls it: arguments in, result out.
type ImportCall =
    dyn Fn(StoreContextMut<'_, ComponentState>, Vec<Value>) -> wasmtime::Result<Option<Value>> + Send + Sync;

/// Defines import `name` taking `slots` flat parameters, its values lowered and lifted by `abi`
/// (wasmtime's statically typed host functions need the flat layout as a type: `Args<N>` for
/// `N` up to 16, `Args<0>` for parameters passed in memory).
fn define_import(
    instance: &mut wasmtime::component::LinkerInstance<'_, ComponentState>,
    name: &str,
    slots: usize,
    has_result: bool,
    call: Arc<ImportCall>,
) -> wasmtime::Result<()> {
    fn wrap<const N: usize, const M: usize>(
        instance: &mut wasmtime::component::LinkerInstance<'_, ComponentState>,
        name: &str,
        call: Arc<ImportCall>,
    ) -> wasmtime::Result<()> {
        instance.func_wrap(
            name,
            move |store: StoreContextMut<'_, ComponentState>, Args(params): Args<N>| {
                call(store, params).map(Results::<M>)
            },
        )
    }
    macro_rules! by_slots {
        ($($n:literal)*) => {
            match (slots, has_result) {
                $(($n, false) => wrap::<$n, 0>(instance, name, call),)*
                $(($n, true) => wrap::<$n, 1>(instance, name, call),)*
                (_, false) => wrap::<0, 0>(instance, name, call),
                (_, true) => wrap::<0, 1>(instance, name, call),
            }
        };
    }
    by_slots!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16)
}

/// A component's instantiations prepared without JS imports (linked and type-checked), one per
/// engine and WASI choice, kept with the compiled component.
#[derive(Default)]
pub struct PreparedInstances(std::sync::Mutex<Vec<(PreparedKey, wasmtime::component::InstancePre<ComponentState>)>>);

/// The engine and whether WASI is linked.
type PreparedKey = (EngineKind, bool);

impl PreparedInstances {
    pub(super) fn get(
        &self,
        kind: EngineKind,
        has_wasi: bool,
        prepare: impl FnOnce() -> SandboxResult<wasmtime::component::InstancePre<ComponentState>>,
    ) -> SandboxResult<wasmtime::component::InstancePre<ComponentState>> {
        let mut prepared = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((_, pre)) = prepared.iter().find(|(key, _)| *key == (kind, has_wasi)) {
            return Ok(pre.clone());
        }
        let pre = prepare()?;
        prepared.push(((kind, has_wasi), pre.clone()));
        Ok(pre)
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
        let transmits = signature_has_transmits(&ty);
        functions.push(ExportedFunction {
            interface: interface.map(str::to_owned),
            name: name.to_owned(),
            func,
            ty,
            params,
            result,
            transmits,
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

/// Name lookups (`wasi:sockets/ip-name-lookup`) of names the `network` option does not list
/// are refused with `access-denied` before any query leaves the host; the rest go to
/// wasmtime-wasi's own lookup.
fn check_name_lookups(linker: &mut Linker<ComponentState>) -> wasmtime::Result<()> {
    use wasmtime::component::Resource;
    use wasmtime_wasi::p2::Network;
    use wasmtime_wasi::p2::bindings::sockets::ip_name_lookup::{Host, ResolveAddressStream};
    use wasmtime_wasi::p2::bindings::sockets::network::ErrorCode;
    use wasmtime_wasi::sockets::WasiSocketsView;

    type Lookup = Result<Resource<ResolveAddressStream>, ErrorCode>;
    linker.instance(IP_NAME_LOOKUP)?.func_wrap(
        "resolve-addresses",
        |mut store: StoreContextMut<'_, ComponentState>, (network, name): (Resource<Network>, String)| {
            let state = store.data_mut();
            let allowed = state
                .wasi
                .as_ref()
                .is_some_and(|wasi| wasi.network.allows_lookup(&name));
            if !allowed {
                return Ok((Lookup::Err(ErrorCode::AccessDenied),));
            }
            match Host::resolve_addresses(&mut state.sockets(), network, name) {
                Ok(stream) => Ok((Ok(stream),)),
                Err(error) => error.downcast().map(|code| (Lookup::Err(code),)),
            }
        },
    )?;
    Ok(())
}

/// The name-lookup interface as wasmtime-wasi defines it (guests' 0.2.x versions match it).
const IP_NAME_LOOKUP: &str = "wasi:sockets/ip-name-lookup@0.2.12";
/// WASI 0.3's.
const IP_NAME_LOOKUP_P3: &str = "wasi:sockets/ip-name-lookup@0.3.0";

/// `check_name_lookups` for WASI 0.3's async `resolve-addresses`: an allowed name is looked up
/// as wasmtime-wasi does (an IP literal is itself, a name goes to the host's resolver).
fn check_name_lookups_p3(linker: &mut Linker<ComponentState>) -> wasmtime::Result<()> {
    use std::net::IpAddr;
    use wasmtime_wasi::p3::bindings::sockets::ip_name_lookup::ErrorCode;
    use wasmtime_wasi::p3::bindings::sockets::types::IpAddress;

    type Lookup = Result<Vec<IpAddress>, ErrorCode>;
    linker.instance(IP_NAME_LOOKUP_P3)?.func_wrap_concurrent(
        "resolve-addresses",
        |accessor: &wasmtime::component::Accessor<ComponentState>, (name,): (String,)| {
            Box::pin(async move {
                let (allowed, enabled) = accessor.with(|mut store| {
                    let network = store.get().wasi.as_ref().map(|wasi| Arc::clone(&wasi.network));
                    network.map_or((false, false), |network| {
                        (network.allows_lookup(&name), network.may_look_up())
                    })
                });
                if !enabled {
                    return Ok((Lookup::Err(ErrorCode::PermanentResolverFailure),));
                }
                if !allowed {
                    return Ok((Lookup::Err(ErrorCode::AccessDenied),));
                }
                let literal = name.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>();
                let found: Lookup = match literal {
                    Ok(ip) => Ok(vec![ip.to_canonical().into()]),
                    Err(_) => match tokio::net::lookup_host((name.as_str(), 0)).await {
                        Ok(addresses) => {
                            let mut ips: Vec<IpAddr> = Vec::new();
                            for address in addresses {
                                let ip = address.ip().to_canonical();
                                if !ips.contains(&ip) {
                                    ips.push(ip);
                                }
                            }
                            if ips.is_empty() {
                                Err(ErrorCode::NameUnresolvable)
                            } else {
                                Ok(ips.into_iter().map(IpAddress::from).collect())
                            }
                        }
                        Err(_) => Err(ErrorCode::NameUnresolvable),
                    },
                };
                Ok((found,))
            })
        },
    )
}

/// A linker with WASI 0.2 (and WASI 0.3 for a store `on_fibers`) for `kind`'s engine, defined
/// once per engine and cloned.
fn wasi_linker(kind: EngineKind, compiler: Compiler, on_fibers: bool) -> SandboxResult<Linker<ComponentState>> {
    static SYNC: PerWasiEngine<Linker<ComponentState>> = PerWasiEngine::new();
    static ASYNC: PerWasiEngine<Linker<ComponentState>> = PerWasiEngine::new();
    // A store driven by the async API (a WASI 0.3 component) needs WASI 0.2's async host
    // functions too: the synchronous ones block on a runtime, which cannot happen inside one.
    let linkers = if on_fibers { &ASYNC } else { &SYNC };
    linkers.get(kind, compiler, |engine| {
        let mut linker = Linker::new(engine);
        if on_fibers {
            wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
            wasmtime_wasi::p3::add_to_linker(&mut linker)?;
            wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
            wasmtime_wasi_http::p3::add_to_linker(&mut linker)?;
        } else {
            wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        }
        linker.allow_shadowing(true);
        check_name_lookups(&mut linker)?;
        if on_fibers {
            check_name_lookups_p3(&mut linker)?;
        }
        linker.allow_shadowing(false);
        Ok(linker)
    })
}
