//! The napi glue of components: `ComponentCore` (a compiled component, described as data) and
//! `ComponentInstanceCore` (an instance, called by index). The JS facade (`lib/component/`)
//! builds `Component`, `instance.exports` with jco's names, resource classes and link errors on
//! top of them.

mod http;
mod resources;
mod service;
mod transmit;
mod typed;
mod values;

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;
use std::rc::Rc;
use std::sync::Arc;

use napi::bindgen_prelude::{JsValue, Object, Unknown};
use napi::{Env, Result, ValueType, sys};
use napi_derive::napi;
use wasmtime::StoreContextMut;
use wasmtime::component::types::ComponentFunc;

use self::resources::Resources;
use self::transmit::Transmits;
use self::values::{Cx, JsListSink, Path, get, get_string, lift, lower, undefined};
use crate::component::{
    AsyncResult, AwayComponent, ComponentCall, ComponentHost, ComponentInstance, ComponentSource, ComponentState,
    ExportedFunction, HostRequest, HostResource, ImportBinding, PreparedInstances, RemoteRequest, StorePtr, Value,
    with_list_sink,
};
use crate::error::{SandboxError, SandboxResult};
use crate::js::async_calls::{self, AsyncContext, AsyncHost, AsyncQueue, Job};
use crate::js::errors::{OrThrow, throw, throw_with_cause};
use crate::js::imports::SendlessRef;
use crate::js::output::OutputDelivery;
use crate::js::promises;
use crate::js::values::{RawValue, bytes_or_text, describe};
use crate::js::wasi::output_object;
use crate::remote::{Interrupted, RemoteLink, ToJs, ToPool};
use crate::sandbox::HostFunctionError;

/// A compiled component (the facade's `Component` wraps it).
#[napi]
pub struct ComponentCore {
    source: ComponentSource,
    /// Instantiations without JS imports, linked once (`httpHandler()`'s fresh instances).
    prepared: Arc<PreparedInstances>,
}

#[napi]
impl ComponentCore {
    /// Compiles a component's bytes or text on the calling thread.
    #[napi(constructor, catch_unwind)]
    pub fn new(env: &Env, source: Unknown, options: Option<Unknown>) -> Result<Self> {
        let bytes = bytes_or_text(env, &source, "source").or_throw(env)?;
        let compiler = crate::js::module::parse_module_options(env, options).or_throw(env)?;
        Ok(Self {
            source: ComponentSource::compile_with(compiler, &bytes).or_throw(env)?,
            prepared: Arc::default(),
        })
    }

    /// Compiles on a thread of its own; a Promise of the `ComponentCore`.
    #[napi(catch_unwind, ts_return_type = "Promise<ComponentCore>")]
    pub fn compile<'env>(env: &'env Env, source: Unknown, options: Option<Unknown>) -> Result<Object<'env>> {
        crate::js::module::compile_off_thread(env, source, options, |source| ComponentCore {
            source,
            prepared: Arc::default(),
        })
    }

    /// `[exportsJson, importsJson]`: the world as data (see `ComponentItems` in index.d.ts).
    #[napi(catch_unwind)]
    pub fn describe(&self, env: &Env) -> Result<Vec<String>> {
        let (exports, imports) = self.source.describe().or_throw(env)?;
        Ok(vec![exports, imports])
    }

    #[napi(getter, ts_return_type = "'cranelift' | 'winch'")]
    pub fn compiler(&self) -> &'static str {
        self.source.compiler().name()
    }

    /// Instantiates with the user's `options` (limits and `wasi`; `imports` are resolved by the
    /// facade into `bindings`: `[interface | null, name, function]` per function import, and
    /// `resources`: `[interface | null, name, dropFunction]` per imported resource;
    /// `allowedHosts`: where the guest's outgoing `wasi:http` requests may go, `null` for nowhere).
    #[napi(catch_unwind)]
    pub fn instantiate(
        &self,
        env: &Env,
        options: Option<Unknown>,
        bindings: Vec<Unknown>,
        resources: Vec<Unknown>,
        allowed_hosts: Option<Vec<String>>,
    ) -> Result<ComponentInstanceCore> {
        self.instantiate_inner(env, options, bindings, resources, allowed_hosts)
            .or_throw(env)
    }
}

impl ComponentCore {
    fn instantiate_inner(
        &self,
        env: &Env,
        options: Option<Unknown>,
        bindings: Vec<Unknown>,
        host_resources: Vec<Unknown>,
        allowed_hosts: Option<Vec<String>>,
    ) -> SandboxResult<ComponentInstanceCore> {
        let (limits, _, wasi, output) = crate::js::sandbox::parse_options(env, options)?;
        let allowed_hosts = allowed_hosts
            .map(|hosts| crate::component::HostRules::parse(&hosts))
            .transpose()?;
        let raw = env.raw();
        let triple = |entry: &Unknown| -> SandboxResult<(Option<String>, String, RawValue)> {
            let interface = get(raw, entry.raw(), "0")?;
            let name = get(raw, entry.raw(), "1")?;
            let function = get(raw, entry.raw(), "2")?;
            let name =
                get_string(raw, name).ok_or_else(|| SandboxError::Internal("a binding without a name".into()))?;
            Ok((get_string(raw, interface), name, function))
        };
        let mut host_types = Vec::new();
        let mut drops = Vec::new();
        for (index, entry) in host_resources.iter().enumerate() {
            let (interface, name, drop_function) = triple(entry)?;
            host_types.push((index as u32, name.clone()));
            drops.push((interface, name, drop_function));
        }
        let shared = Resources::new(raw, host_types);
        let transmits = Rc::new(Transmits::new(raw, Arc::default()));
        let mut kept = Vec::new();
        let mut imports = Vec::new();
        let mut js_imports = Vec::new();
        let mut host_drops = Vec::new();
        for entry in &bindings {
            let (interface, name, function) = triple(entry)?;
            // SAFETY: a function of this env; the store holding it stays on this thread.
            let function = unsafe { SendlessRef::weak(raw, function) }
                .ok_or_else(|| SandboxError::Internal("could not reference an import".to_owned()))?;
            let function = Rc::new(function);
            kept.push(Rc::clone(&function));
            let label = match &interface {
                Some(interface) => format!("{interface}#{name}"),
                None => name.clone(),
            };
            let import = Rc::new(JsComponentImport {
                env: raw,
                function,
                label,
                resources: Rc::clone(&shared),
                transmits: Rc::clone(&transmits),
            });
            js_imports.push(Rc::clone(&import));
            let ty = self.source.imported_function(interface.as_deref(), &name)?;
            imports.push(ImportBinding {
                interface,
                name,
                ty,
                host: Box::new(Rc::clone(&import)),
            });
        }
        let mut resource_bindings = Vec::new();
        for (type_id, (interface, name, drop_function)) in drops.into_iter().enumerate() {
            // SAFETY: as above.
            let drop_function = Rc::new(
                unsafe { SendlessRef::weak(raw, drop_function) }
                    .ok_or_else(|| SandboxError::Internal("could not reference a resource".to_owned()))?,
            );
            kept.push(Rc::clone(&drop_function));
            let host_drop = Rc::new(HostDrop {
                env: raw,
                function: drop_function,
                label: name.clone(),
                resources: Rc::clone(&shared),
                type_id: type_id as u32,
            });
            host_drops.push(Rc::clone(&host_drop));
            resource_bindings.push(HostResource {
                interface,
                name,
                type_id: type_id as u32,
                drop: Box::new(move |rep| host_drop.run(rep)),
            });
        }
        let core = ComponentInstance::instantiate(
            &self.source,
            limits,
            wasi.as_ref(),
            allowed_hosts.as_ref(),
            &self.prepared,
            crate::component::Embedding {
                imports,
                host_resources: resource_bindings,
                channels: Arc::clone(transmits.channels()),
            },
        )
        .map_err(|error| match error {
            // An import that threw during the start function: a link-time failure whose
            // cause is kept for the message.
            SandboxError::Import(message) => SandboxError::Import(message),
            other => other,
        })?;
        for resource in core.resources() {
            shared.add_exported(resource.ty, resource.name.clone());
        }
        let output = OutputDelivery::new(env, core.output_streams(), output);
        Ok(ComponentInstanceCore {
            output,
            core: Some(Rc::new(core)),
            glue: Rc::new(AsyncGlue {
                resources: Rc::clone(&shared),
                imports: js_imports,
                drops: host_drops,
                pending: RefCell::new(None),
                http_sink: RefCell::new(None),
                transmits,
            }),
            queue: Rc::default(),
            resources: shared,
            _functions: kept,
        })
    }
}

/// An instance (the facade's instance object wraps it).
#[napi]
pub struct ComponentInstanceCore {
    core: Option<Rc<ComponentInstance>>,
    /// What async calls need on the JS thread.
    glue: Rc<AsyncGlue>,
    queue: Rc<AsyncQueue>,
    resources: Rc<Resources>,
    /// The import functions, referenced weakly by the store: the facade keeps them alive.
    _functions: Vec<Rc<SendlessRef>>,
    /// Where streamed WASI output goes (`wasi.stdout` / `wasi.stderr` as functions).
    output: Option<Rc<OutputDelivery>>,
}

#[napi]
impl ComponentInstanceCore {
    /// `[interface | null, name]` of every exported function, by call index.
    #[napi]
    pub fn functions(&self, env: &Env) -> Result<Vec<Vec<Option<String>>>> {
        let core = self.core(env)?;
        Ok(core
            .functions()
            .iter()
            .map(|function| vec![function.interface.clone(), Some(function.name.clone())])
            .collect())
    }

    /// `[interface | null, name]` of every exported resource, by index for `setResourceClass`.
    #[napi]
    pub fn resources(&self, env: &Env) -> Result<Vec<Vec<Option<String>>>> {
        let core = self.core(env)?;
        Ok(core
            .resources()
            .iter()
            .map(|resource| vec![resource.interface.clone(), Some(resource.name.clone())])
            .collect())
    }

    /// Sets the JS class of exported resource `index` (the facade keeps the class alive).
    #[napi]
    pub fn set_resource_class(&self, env: &Env, index: u32, resource_class: Unknown) -> Result<bool> {
        if resource_class.get_type()? != ValueType::Function {
            return Err(SandboxError::Internal("a resource class must be a function".to_owned())).or_throw(env);
        }
        // SAFETY: a function of this env.
        Ok(unsafe { self.resources.set_class(index as usize, resource_class.raw()) })
    }

    /// Calls exported function `index` with `args` (an array); its result, lifted (a result type
    /// comes back as `{ tag, val }`, which the facade unwraps).
    #[napi(catch_unwind)]
    pub fn call<'env>(&self, env: &'env Env, index: u32, args: Unknown) -> Result<Unknown<'env>> {
        let core = Rc::clone(self.core(env)?);
        let raw = env.raw();
        self.drop_collected(&core);
        // The fast path calls synchronously, which an instance on the async API cannot take.
        let shape = (!core.needs_async())
            .then(|| core.functions().get(index as usize).and_then(typed::shape))
            .flatten();
        let typed = shape.and_then(|shape| typed::call(raw, &core, index as usize, shape, args.raw()));
        let outcome = typed.unwrap_or_else(|| {
            let resources = &*self.resources;
            let call = || {
                core.call(
                    index as usize,
                    |function, store| lower_params(raw, resources, None, function, store, args.raw(), true),
                    |function, store, results| lift_results(raw, resources, function, Some(store), None, results),
                )
            };
            // On wasmtime's fibers JS memory cannot be made: lifted lists are copied twice there.
            match core.needs_async() {
                true => call(),
                false => with_list_sink(&JsListSink { env: raw }, call),
            }
        });
        let value = self.settle(env, outcome)?;
        // SAFETY: created in this env during this call.
        Ok(unsafe { Unknown::from_raw_unchecked(raw, value) })
    }

    /// Drops the guest handle behind an exported resource object (`[Symbol.dispose]()`): the
    /// guest's destructor runs now. A second call does nothing.
    #[napi(catch_unwind)]
    pub fn drop_resource(&self, env: &Env, object: Unknown) -> Result<()> {
        let Some(resource) = resources::take_for_dispose(env.raw(), object.raw()) else {
            return Ok(());
        };
        let Some(core) = self.core.as_ref() else {
            return Ok(());
        };
        core.drop_resource(resource)
            .map_err(|error| throw_error(env, error, &self.resources))
    }

    /// Runs a WASI 0.2 command (`wasi:cli/run`): `{ exitCode, stdout, stderr, ... }`.
    #[napi(catch_unwind)]
    pub fn run<'env>(&self, env: &'env Env) -> Result<Unknown<'env>> {
        let core = Rc::clone(self.core(env)?);
        let exit_code = self.settle(env, core.run())?;
        let output = core.take_output().or_throw(env)?;
        let value = output_object(env, Some(exit_code), output).or_throw(env)?;
        // SAFETY: created in this env during this call.
        Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), value) })
    }

    /// What the guest wrote to its captured stdout and stderr since last taken.
    #[napi(catch_unwind)]
    pub fn take_output<'env>(&self, env: &'env Env) -> Result<Unknown<'env>> {
        let output = self.core(env)?.take_output().or_throw(env)?;
        let value = output_object(env, None, output).or_throw(env)?;
        // SAFETY: created in this env during this call.
        Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), value) })
    }

    /// Releases the instance now; later calls throw `ERR_SANDBOX_DISPOSED`.
    #[napi]
    pub fn dispose(&mut self, env: &Env) -> Result<()> {
        if let Some(core) = &self.core {
            // An async call running is interrupted (its Promise rejects with
            // ERR_SANDBOX_DISPOSED once it has returned); calls waiting reject now.
            self.queue.dispose(env, &self.async_host(Rc::clone(core)));
            if !core.release() {
                return Err(SandboxError::Busy).or_throw(env);
            }
        }
        self.core = None;
        Ok(())
    }

    /// Calls exported function `index` with `args` on a thread of the addon's pool: a Promise
    /// of its result (JS imports run on this thread meanwhile and may return Promises).
    #[napi(catch_unwind)]
    pub fn call_async<'env>(&self, env: &'env Env, index: u32, args: Unknown) -> Result<Unknown<'env>> {
        let raw = env.raw();
        // The arguments are lowered when the call starts (the store may be away for the call
        // running before it): kept until then.
        // SAFETY: the facade's array of this call, in this env.
        let args = unsafe { SendlessRef::new(raw, args.raw()) };
        let promise = match (self.core.as_ref(), args) {
            (Some(core), Some(args)) => {
                let call = QueuedCall::Export {
                    index: index as usize,
                    args,
                };
                async_calls::call_async(env, &self.async_context(Rc::clone(core)), Box::new(call))?
            }
            (None, _) => async_calls::rejected(env, &SandboxError::Disposed)?,
            (_, None) => async_calls::rejected(env, &SandboxError::Internal("could not keep the arguments".into()))?,
        };
        // SAFETY: created in this env during this call.
        Ok(unsafe { Unknown::from_raw_unchecked(raw, promise) })
    }

    /// Runs a WASI 0.2 command on a thread of the addon's pool: a Promise of `run()`'s result.
    #[napi(catch_unwind)]
    pub fn run_async<'env>(&self, env: &'env Env) -> Result<Unknown<'env>> {
        let promise = match self.core.as_ref() {
            Some(core) => {
                async_calls::call_async(env, &self.async_context(Rc::clone(core)), Box::new(QueuedCall::Run))?
            }
            None => async_calls::rejected(env, &SandboxError::Disposed)?,
        };
        // SAFETY: created in this env during this call.
        Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), promise) })
    }

    /// Stops the running async call; whether one was running.
    #[napi]
    pub fn interrupt(&self) -> bool {
        self.core
            .as_ref()
            .is_some_and(|core| self.async_host(Rc::clone(core)).interrupt())
    }

    #[napi(getter)]
    pub fn disposed(&self) -> bool {
        self.core.is_none()
    }
}

impl ComponentInstanceCore {
    fn async_host(&self, core: Rc<ComponentInstance>) -> ComponentAsync {
        ComponentAsync {
            core,
            glue: Rc::clone(&self.glue),
        }
    }

    fn async_context(&self, core: Rc<ComponentInstance>) -> AsyncContext {
        AsyncContext {
            host: Rc::new(self.async_host(core)),
            queue: Rc::clone(&self.queue),
            output: self.output.clone(),
        }
    }

    /// The end of a synchronous call: streamed output goes to its callbacks (one that threw is
    /// the call's error), then the outcome is the JS value or a thrown error.
    fn settle<T>(&self, env: &Env, outcome: SandboxResult<T>) -> Result<T> {
        if let Some(output) = &self.output {
            output.deliver_after_call(env)?;
        }
        outcome.map_err(|error| throw_error(env, error, &self.resources))
    }

    fn core(&self, env: &Env) -> Result<&Rc<ComponentInstance>> {
        self.core.as_ref().ok_or_else(|| throw(env, &SandboxError::Disposed))
    }

    /// Drops the guest handles of resource objects JS let go of.
    fn drop_collected(&self, core: &ComponentInstance) {
        for resource in self.resources.take_collected() {
            let _ = core.drop_resource(resource);
        }
    }
}

/// Lowers a call's arguments (the facade's array `args`) to `function`'s parameters.
fn lower_params(
    raw: sys::napi_env,
    resources: &Resources,
    transmits: Option<&Transmits>,
    function: &ExportedFunction,
    store: &mut StoreContextMut<'_, ComponentState>,
    args: RawValue,
    borrow_bytes: bool,
) -> SandboxResult<Vec<Value>> {
    let function_name = function_label(function.interface.as_deref(), &function.name);
    let mut params = Vec::with_capacity(function.params.len());
    for (position, ((param, _), ty)) in function.ty.params().zip(&function.params).enumerate() {
        let mut value = undefined(raw);
        // SAFETY: `args` is the facade's array of this call.
        unsafe { sys::napi_get_element(raw, args, position as u32, &mut value) };
        let mut cx = Cx {
            env: raw,
            resources,
            store: Some(&mut *store),
            borrow_bytes,
            transmits,
        };
        let path = Path::Root {
            function: &function_name,
            param,
        };
        params.push(lower(&mut cx, value, ty, &path)?);
    }
    Ok(params)
}

/// Lifts a call's results (its one result, or `undefined`); without the store while the call
/// still runs (a value delivered before its streams end).
fn lift_results(
    raw: sys::napi_env,
    resources: &Resources,
    function: &ExportedFunction,
    store: Option<&mut StoreContextMut<'_, ComponentState>>,
    transmits: Option<&Transmits>,
    result: Option<Value>,
) -> SandboxResult<RawValue> {
    let function_name = function_label(function.interface.as_deref(), &function.name);
    match (result, &function.result) {
        (Some(value), Some(ty)) => {
            let mut cx = Cx {
                env: raw,
                resources,
                store,
                borrow_bytes: false,
                transmits,
            };
            lift(
                &mut cx,
                value,
                ty,
                &Path::Result {
                    function: &function_name,
                },
            )
        }
        _ => Ok(undefined(raw)),
    }
}

/// `api#echo` or `hello`, for messages.
fn function_label(interface: Option<&str>, name: &str) -> String {
    match interface {
        Some(interface) => format!("{interface}#{name}"),
        None => name.to_owned(),
    }
}

/// Throws `error`, with the exception a JS import threw as its `cause`.
fn throw_error(env: &Env, error: SandboxError, resources: &Resources) -> napi::Error {
    let cause = match &error {
        SandboxError::Import(_) | SandboxError::Link(_) => resources.take_exception(),
        _ => None,
    };
    throw_with_cause(env, &error, cause)
}

/// Calls a JS function with `args`; the value, or the exception it threw (`None` if the env
/// could not say).
fn call_js(
    env: sys::napi_env,
    function: RawValue,
    args: &[RawValue],
) -> std::result::Result<RawValue, Option<RawValue>> {
    let mut receiver = ptr::null_mut();
    let mut returned = ptr::null_mut();
    // SAFETY: every value belongs to `env`, the env of the JS call running the guest.
    let status = unsafe {
        sys::napi_get_undefined(env, &mut receiver);
        sys::napi_call_function(env, receiver, function, args.len(), args.as_ptr(), &mut returned)
    };
    if status == sys::Status::napi_ok {
        return Ok(returned);
    }
    let mut exception = ptr::null_mut();
    // SAFETY: takes the pending exception of the failed call.
    let taken = unsafe { sys::napi_get_and_clear_last_exception(env, &mut exception) };
    Err((taken == sys::Status::napi_ok && !exception.is_null()).then_some(exception))
}

/// Whether a function's result is a `future` (a Promise JS returns for it becomes the future).
fn returns_future(ty: &ComponentFunc) -> bool {
    matches!(ty.results().next(), Some(wasmtime::component::Type::Future(_)))
}

/// A JS function as a component import.
struct JsComponentImport {
    env: sys::napi_env,
    function: Rc<SendlessRef>,
    label: String,
    resources: Rc<Resources>,
    transmits: Rc<Transmits>,
}

impl JsComponentImport {
    fn fail(&self, message: String) -> HostFunctionError {
        // A conversion error names the function first; the import error names it already.
        let message = match message.strip_prefix(self.label.as_str()) {
            Some(rest) => rest.trim_start_matches(": ").to_owned(),
            None => message,
        };
        HostFunctionError {
            import: self.label.clone(),
            message,
        }
    }

    /// Lifts `params` and calls the JS function: what it returned, or why it failed (a thrown
    /// exception is kept as the call's `cause`).
    fn call_function(
        &self,
        store: &mut StoreContextMut<'_, ComponentState>,
        ty: &ComponentFunc,
        params: Vec<Value>,
    ) -> std::result::Result<RawValue, HostFunctionError> {
        let env = self.env;
        let mut args = Vec::with_capacity(params.len());
        for ((param, ty), value) in ty.params().zip(params) {
            let mut cx = Cx {
                env,
                resources: &self.resources,
                store: Some(&mut *store),
                borrow_bytes: false,
                transmits: Some(&self.transmits),
            };
            let path = Path::Root {
                function: &self.label,
                param,
            };
            let lifted = lift(&mut cx, value, &ty, &path).map_err(|error| self.fail(error.to_string()))?;
            args.push(lifted);
        }
        let function = self
            .function
            .value()
            .ok_or_else(|| self.fail("the function was garbage-collected with the objects holding it".to_owned()))?;
        call_js(env, function, &args).map_err(|exception| {
            if let Some(exception) = exception {
                self.resources.keep_exception(exception);
            }
            self.fail("it threw (the exception is the `cause`)".to_owned())
        })
    }

    /// Lowers what the JS function returned into its results.
    fn results(
        &self,
        store: &mut StoreContextMut<'_, ComponentState>,
        ty: &ComponentFunc,
        returned: RawValue,
    ) -> std::result::Result<Option<Value>, HostFunctionError> {
        let Some(result_ty) = ty.results().next() else {
            return Ok(None);
        };
        let mut cx = Cx {
            env: self.env,
            resources: &self.resources,
            store: Some(store),
            borrow_bytes: false,
            transmits: Some(&self.transmits),
        };
        let lowered = lower(&mut cx, returned, &result_ty, &Path::Result { function: &self.label })
            .map_err(|error| self.fail(error.to_string()))?;
        Ok(Some(lowered))
    }

    fn invoke(
        &self,
        mut store: StoreContextMut<'_, ComponentState>,
        ty: &ComponentFunc,
        params: Vec<Value>,
    ) -> std::result::Result<Option<Value>, HostFunctionError> {
        let returned = self.call_function(&mut store, ty, params)?;
        if promises::is_thenable(self.env, returned) && !returns_future(ty) {
            return Err(self.fail(
                "it returned a Promise, which a synchronous call cannot wait for (use callAsync() or runAsync())"
                    .to_owned(),
            ));
        }
        self.results(&mut store, ty, returned)
    }
}

impl ComponentHost for Rc<JsComponentImport> {
    fn call(
        &self,
        store: StoreContextMut<'_, ComponentState>,
        ty: &ComponentFunc,
        params: Vec<Value>,
    ) -> std::result::Result<Option<Value>, HostFunctionError> {
        let mut scope = ptr::null_mut();
        // SAFETY: host functions run inside the JS call that entered the guest, on the env's thread.
        if unsafe { sys::napi_open_handle_scope(self.env, &mut scope) } != sys::Status::napi_ok {
            return Err(self.fail("JavaScript cannot run here (the environment is shutting down)".to_owned()));
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| self.invoke(store, ty, params)))
            .unwrap_or_else(|_| Err(self.fail("the host panicked while calling it".to_owned())));
        // SAFETY: closes the scope opened above.
        unsafe { sys::napi_close_handle_scope(self.env, scope) };
        outcome
    }
}

/// Installs the facade's resource helpers (see `resources::set_helpers`).
#[cfg_attr(test, allow(dead_code))] // registered with Node only outside `cfg(test)`
#[napi(catch_unwind)]
pub fn component_setup(env: &Env, wrap: Unknown, handle_of: Unknown) -> Result<bool> {
    if wrap.get_type()? != ValueType::Function || handle_of.get_type()? != ValueType::Function {
        return Err(SandboxError::InvalidArgType(format!(
            "componentSetup takes two functions. Received {} and {}",
            describe(env, &wrap),
            describe(env, &handle_of)
        )))
        .or_throw(env);
    }
    // SAFETY: two functions of this env, on its thread.
    Ok(unsafe { resources::set_helpers(env.raw(), wrap.raw(), handle_of.raw()) })
}

/// The JS side of an imported resource's destructor: frees the guest's hold on the object and
/// calls its `[Symbol.dispose]()` (through the facade's function).
struct HostDrop {
    env: sys::napi_env,
    function: Rc<SendlessRef>,
    label: String,
    resources: Rc<Resources>,
    type_id: u32,
}

impl HostDrop {
    fn run(&self, rep: u32) -> std::result::Result<(), HostFunctionError> {
        let Some(object) = self.resources.release_host(self.type_id, rep) else {
            return Ok(());
        };
        let Some(function) = self.function.value() else {
            return Ok(());
        };
        call_js(self.env, function, &[object]).map(|_| ()).map_err(|exception| {
            if let Some(exception) = exception {
                self.resources.keep_exception(exception);
            }
            HostFunctionError {
                import: format!("[resource-drop]{}", self.label),
                message: "its [Symbol.dispose]() threw".to_owned(),
            }
        })
    }
}

/// What an instance's async calls use on the JS thread: its imports and resource destructors,
/// and the import waiting for a Promise, if any.
struct AsyncGlue {
    resources: Rc<Resources>,
    imports: Vec<Rc<JsComponentImport>>,
    drops: Vec<Rc<HostDrop>>,
    /// Cleared when the waiting import may no longer answer (interrupted, abandoned).
    pending: RefCell<Option<Rc<Cell<bool>>>>,
    /// Where the guest's `wasi:http` events go (the facade's dispatcher).
    http_sink: RefCell<Option<Rc<SendlessRef>>>,
    /// The streams and futures crossing between the guest and JS.
    transmits: Rc<Transmits>,
}

/// An async call as it waits its turn: its arguments are lowered when it starts.
enum QueuedCall {
    Export { index: usize, args: SendlessRef },
    Run,
    Serve(crate::component::ServedRequest),
}

/// What a served request's task hands back when the host panicked in it: its store was leaked
/// with it (it holds JS references, which must not be released off the JS thread).
struct LostStore;

/// What a component's async job hands back.
struct Finished {
    away: AwayComponent,
    outcome: wasmtime::Result<AsyncResult>,
}

/// A component instance as the host of async calls.
struct ComponentAsync {
    core: Rc<ComponentInstance>,
    glue: Rc<AsyncGlue>,
}

impl AsyncHost for ComponentAsync {
    fn timeout(&self) -> Option<std::time::Duration> {
        self.core.limits().timeout
    }

    fn begin(&self, link: &Arc<RemoteLink>, call: Box<dyn Any>) -> std::result::Result<Job, SandboxError> {
        let call = match *call
            .downcast::<QueuedCall>()
            .map_err(|_| SandboxError::Internal("an async call of another kind".to_owned()))?
        {
            QueuedCall::Run => ComponentCall::Run,
            QueuedCall::Serve(request) => ComponentCall::Serve(Some(request)),
            QueuedCall::Export { index, args } => {
                let function = self
                    .core
                    .functions()
                    .get(index)
                    .ok_or_else(|| SandboxError::Internal(format!("no exported function #{index}")))?;
                let resources = &*self.glue.resources;
                let args = args
                    .value()
                    .ok_or_else(|| SandboxError::Internal("the arguments were lost".to_owned()))?;
                let env = resources.env();
                let transmits = Some(&*self.glue.transmits);
                let params = self
                    .core
                    .with_store(|mut store| lower_params(env, resources, transmits, function, &mut store, args, false))
                    .and_then(|params| params);
                let params = params.inspect_err(|error| self.glue.transmits.close_all(error))?;
                ComponentCall::Export { index, params }
            }
        };
        let serving = matches!(call, ComponentCall::Serve(_));
        let mut away = self
            .core
            .begin_async(Arc::clone(link), call)
            .inspect_err(|error| self.glue.transmits.close_all(error))?;
        self.glue.hold_http_sink(true);
        if serving {
            return Ok(Job::Task(Box::pin(async move {
                match crate::component::Unwinding::new(away.serve()).await {
                    Some((away, outcome)) => Box::new(Finished { away, outcome }) as Box<dyn Any + Send>,
                    None => Box::new(LostStore),
                }
            })));
        }
        Ok(Job::Blocking(Box::new(move || {
            let outcome = catch_unwind(AssertUnwindSafe(|| away.run()))
                .unwrap_or_else(|_| Err(wasmtime::Error::msg("the host panicked while running the guest")));
            Box::new(Finished { away, outcome })
        })))
    }

    fn serve(&self, env: sys::napi_env, message: ToJs) -> Option<Box<dyn Any + Send>> {
        let link = self.core.away_link()?;
        match message {
            ToJs::Request(request) => match request.downcast::<RemoteRequest>() {
                Ok(request) => self.serve_request(env, &link, *request),
                Err(_) => link.send_to_pool(ToPool::Answer(Err(wasmtime::Error::msg("an unknown request")))),
            },
            ToJs::Abandon => {
                if let Some(pending) = self.glue.pending.borrow_mut().take() {
                    pending.set(false);
                }
                link.send_to_pool(ToPool::Released);
            }
            ToJs::Event(event) => match event.downcast::<crate::component::HttpEvent>() {
                Ok(event) => self.glue.deliver_http(env, *event),
                Err(event) => {
                    if let Ok(event) = event.downcast::<crate::component::TransmitEvent>() {
                        self.glue.deliver_transmit(env, &self.core, *event);
                    }
                }
            },
            ToJs::Finished(outcome) => return Some(outcome),
            ToJs::Import { .. } | ToJs::CallDone(_) | ToJs::Output => {}
        }
        None
    }

    fn finish(&self, env: &Env, finished: Box<dyn Any + Send>) -> async_calls::Settled {
        self.glue.hold_http_sink(false);
        let fail = |error: SandboxError| {
            let cause = match error {
                SandboxError::Import(_) => self.glue.resources.take_exception(),
                _ => None,
            };
            (error, cause)
        };
        let finished = match finished.downcast::<Finished>() {
            Ok(finished) => finished,
            Err(other) if other.is::<LostStore>() => {
                return Err(fail(SandboxError::Internal(
                    "the host panicked while serving the request; the instance is lost".to_owned(),
                )));
            }
            Err(_) => {
                return Err(fail(SandboxError::Internal(
                    "an async call finished with an unknown outcome".to_owned(),
                )));
            }
        };
        let Finished { away, outcome } = *finished;
        let index = away.index();
        let ended = self.core.end_async(away, outcome);
        // Streams and futures of the call still open end with it (only a failed call leaves any).
        match &ended {
            Err(error) => self.glue.transmits.close_all(error),
            Ok(_) => self.glue.transmits.close_all(&SandboxError::Internal(
                "the call ended with streams still open".to_owned(),
            )),
        }
        match ended.map_err(fail)? {
            AsyncResult::Value(values) => {
                let function = index
                    .and_then(|index| self.core.functions().get(index))
                    .ok_or_else(|| fail(SandboxError::Internal("an async call of no function".to_owned())))?;
                let resources = &*self.glue.resources;
                let transmits = Some(&*self.glue.transmits);
                self.core
                    .with_store(|mut store| {
                        lift_results(env.raw(), resources, function, Some(&mut store), transmits, values)
                    })
                    .and_then(|lifted| lifted)
                    .map_err(fail)
            }
            AsyncResult::Exit(exit) => self
                .core
                .take_output()
                .and_then(|output| output_object(env, Some(exit.code), output))
                .map_err(fail),
            AsyncResult::Served | AsyncResult::Returned => Ok(undefined(env.raw())),
        }
    }

    fn interrupt(&self) -> bool {
        if !self.core.interrupt_async() {
            return false;
        }
        // An import waiting for a Promise answers now: the guest stops at once.
        if let (Some(pending), Some(link)) = (self.glue.pending.borrow_mut().take(), self.core.away_link()) {
            pending.set(false);
            link.send_to_pool(ToPool::Answer(Err(Interrupted.into())));
        }
        true
    }
}

impl ComponentAsync {
    /// Serves a host function's request for the guest waiting on its thread; the answer goes
    /// back when it is done, which may be after a Promise settles.
    fn serve_request(&self, env: sys::napi_env, link: &Arc<RemoteLink>, request: RemoteRequest) {
        let RemoteRequest { request, store } = request;
        let mut scope = ptr::null_mut();
        // SAFETY: the JS thread, serving its event loop.
        if unsafe { sys::napi_open_handle_scope(env, &mut scope) } != sys::Status::napi_ok {
            link.send_to_pool(ToPool::Answer(Err(Interrupted.into())));
            return;
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| match request {
            HostRequest::Drop { type_id, rep } => {
                let answer = match self.glue.drops.get(type_id as usize) {
                    Some(host_drop) => host_drop.run(rep).map_err(wasmtime::Error::new),
                    None => Ok(()),
                };
                link.send_to_pool(ToPool::Answer(answer.map(|()| Box::new(()) as Box<dyn Any + Send>)));
            }
            HostRequest::Import { index, ty, params } => self.serve_import(env, link, index, ty, params, store),
        }));
        if outcome.is_err() {
            link.send_to_pool(ToPool::Answer(Err(wasmtime::Error::msg(
                "the host panicked in an import",
            ))));
        }
        // SAFETY: closes the scope opened above.
        unsafe { sys::napi_close_handle_scope(env, scope) };
    }

    fn serve_import(
        &self,
        env: sys::napi_env,
        link: &Arc<RemoteLink>,
        index: usize,
        ty: ComponentFunc,
        params: Vec<Value>,
        store: StorePtr,
    ) {
        let Some(import) = self.glue.imports.get(index).cloned() else {
            link.send_to_pool(ToPool::Answer(Err(wasmtime::Error::msg("no such import"))));
            return;
        };
        let answer = |values: std::result::Result<Option<Value>, HostFunctionError>| {
            ToPool::Answer(
                values
                    .map(|values| Box::new(values) as Box<dyn Any + Send>)
                    .map_err(wasmtime::Error::new),
            )
        };
        // SAFETY: the guest's thread is parked in `RemoteLink::request` until it is answered
        // (or abandons, which clears `live` before it lets go of the store).
        let returned = import.call_function(unsafe { &mut *store.0 }, &ty, params);
        let returned = match returned {
            Ok(returned) => returned,
            Err(error) => return link.send_to_pool(answer(Err(error))),
        };
        // A Promise for a `future` is the future's value, not the import's: the import returns now.
        if !promises::is_thenable(env, returned) || returns_future(&ty) {
            // SAFETY: as above.
            let values = import.results(unsafe { &mut *store.0 }, &ty, returned);
            return link.send_to_pool(answer(values));
        }
        let live = Rc::new(Cell::new(true));
        *self.glue.pending.borrow_mut() = Some(Rc::clone(&live));
        let link = Arc::clone(link);
        let glue = Rc::clone(&self.glue);
        let waiting = Rc::clone(&live);
        let settling = Rc::clone(&import);
        let settle = move |_env: sys::napi_env, outcome: std::result::Result<RawValue, RawValue>| {
            if !waiting.replace(false) {
                return; // interrupted or abandoned meanwhile: the guest has moved on
            }
            glue.pending.borrow_mut().take();
            let values = match outcome {
                // SAFETY: still waiting (`live`), so the guest's thread is parked.
                Ok(value) => settling.results(unsafe { &mut *store.0 }, &ty, value),
                Err(reason) => {
                    glue.resources.keep_exception(reason);
                    Err(settling.fail("its Promise rejected (the reason is the `cause`)".to_owned()))
                }
            };
            link.send_to_pool(answer(values));
        };
        if !promises::then(env, returned, Box::new(settle)) && live.replace(false) {
            self.glue.pending.borrow_mut().take();
            let failed = import.fail("its Promise could not be awaited".to_owned());
            if let Some(link) = self.core.away_link() {
                link.send_to_pool(answer(Err(failed)));
            }
        }
    }
}
