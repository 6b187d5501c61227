//! JS functions as wasm host functions: argument and result conversion by signature, and the
//! JS exception an import threw, kept aside to become the `cause` of the caller's error.

use std::cell::Cell;
use std::ptr;
use std::rc::Rc;

use napi::{Env, ValueType, sys};
use wasmtime::{FuncType, ImportType, Val};

use crate::error::{SandboxError, SandboxResult};
use crate::js::values::{RawValue, describe_raw, from_wasm, to_wasm, type_of};
use crate::sandbox::{HostFunction, HostFunctionError, HostImport, ImportDone};

/// Shared by a sandbox and its imports: the exception the last failing import threw, and the
/// import functions themselves.
///
/// The store holds only *weak* references to the functions: an import usually closes over its
/// sandbox (`log: (p, n) => sandbox.read(p, n)`), and a strong reference from native code would
/// make that cycle a GC root, so no such sandbox could ever be collected. The JS facade keeps the
/// functions alive instead (`functions()`), inside the JS heap where the cycle is collectable.
#[derive(Default)]
pub struct ImportBridge {
    pending_exception: Cell<Option<SendlessRef>>,
    functions: std::cell::RefCell<Vec<Rc<SendlessRef>>>,
}

/// A strong reference to a JS value, deleted when dropped on its env's thread.
pub struct SendlessRef {
    pub(crate) env: sys::napi_env,
    pub(crate) reference: sys::napi_ref,
}

impl SendlessRef {
    /// A strong reference.
    ///
    /// # Safety
    /// `value` must belong to `env`, and the reference must be dropped on `env`'s thread.
    pub(crate) unsafe fn new(env: sys::napi_env, value: RawValue) -> Option<Self> {
        // SAFETY: forwarded from the caller.
        unsafe { Self::with_count(env, value, 1) }
    }

    /// A weak reference (to an object).
    ///
    /// # Safety
    /// As for `new`.
    pub(crate) unsafe fn weak(env: sys::napi_env, value: RawValue) -> Option<Self> {
        // SAFETY: forwarded from the caller.
        unsafe { Self::with_count(env, value, 0) }
    }

    unsafe fn with_count(env: sys::napi_env, value: RawValue, count: u32) -> Option<Self> {
        let mut reference = ptr::null_mut();
        // SAFETY: forwarded from the callers.
        let status = unsafe { sys::napi_create_reference(env, value, count, &mut reference) };
        (status == sys::Status::napi_ok).then_some(Self { env, reference })
    }

    /// Holds the value strongly (`true`) or lets it go back to weak (`false`, once for each
    /// `true`): a weakly referenced callback kept alive while an async call may run it.
    pub(crate) fn set_held(&self, held: bool) {
        let mut count = 0;
        // SAFETY: the reference belongs to `self.env`, used on its thread; every unref follows
        // a ref.
        unsafe {
            if held {
                sys::napi_reference_ref(self.env, self.reference, &mut count);
            } else {
                sys::napi_reference_unref(self.env, self.reference, &mut count);
            }
        }
    }

    pub(crate) fn value(&self) -> Option<RawValue> {
        let mut value = ptr::null_mut();
        // SAFETY: the reference belongs to `self.env`, used on its thread.
        let status = unsafe { sys::napi_get_reference_value(self.env, self.reference, &mut value) };
        (status == sys::Status::napi_ok && !value.is_null()).then_some(value)
    }
}

impl Drop for SendlessRef {
    fn drop(&mut self) {
        // SAFETY: the reference belongs to `self.env`, dropped on its thread (stores never move).
        unsafe { sys::napi_delete_reference(self.env, self.reference) };
    }
}

impl ImportBridge {
    /// The import functions, for the facade to hold (see the type's documentation). Read right
    /// after instantiation, while the `imports` option still holds them.
    pub fn functions(&self) -> Vec<RawValue> {
        self.functions
            .borrow()
            .iter()
            .filter_map(|function| function.value())
            .collect()
    }

    /// Takes the exception an import threw during the call that just failed, if any.
    pub fn take_exception(&self) -> Option<RawValue> {
        held_value(&self.pending_exception.take()?)
    }
}

/// A strong reference to any JS value (an exception may be anything): Node-API before v10
/// references objects only, so the value is kept inside a one-element array.
pub(crate) fn hold_any(env: sys::napi_env, value: RawValue) -> Option<SendlessRef> {
    let mut holder = ptr::null_mut();
    // SAFETY: values of this env, on its thread; the reference is dropped on it too.
    unsafe {
        if sys::napi_create_array_with_length(env, 1, &mut holder) == sys::Status::napi_ok
            && sys::napi_set_element(env, holder, 0, value) == sys::Status::napi_ok
        {
            return SendlessRef::new(env, holder);
        }
    }
    None
}

/// The value a `hold_any` reference holds.
pub(crate) fn held_value(holder: &SendlessRef) -> Option<RawValue> {
    let holder_array = holder.value()?;
    let mut value = ptr::null_mut();
    // SAFETY: the holder is the one-element array made in `hold_any`.
    let status = unsafe { sys::napi_get_element(holder.env, holder_array, 0, &mut value) };
    (status == sys::Status::napi_ok).then_some(value)
}

/// Resolves one function import from the `imports` option (`{ [module]: { [name]: function } }`).
pub fn resolve(
    env: &Env,
    imports: Option<RawValue>,
    import: &ImportType,
    ty: &FuncType,
    bridge: &Rc<ImportBridge>,
) -> SandboxResult<HostFunction> {
    let label = format!("{}.{}", import.module(), import.name());
    let signature = crate::module::describe_signature(&label, ty);
    let missing = |what: String| SandboxError::Link(format!("the import \"{label}\" ({signature}) {what}"));
    let Some(imports) = imports else {
        return Err(missing("is missing: no `imports` option was given".to_owned()));
    };
    let namespace = get_property(env, imports, import.module())?;
    if !matches!(type_of(env, namespace), ValueType::Object | ValueType::Function) {
        return Err(missing(format!(
            "is missing: imports[\"{}\"] is {}",
            import.module(),
            describe_raw(env, namespace)
        )));
    }
    let function = get_property(env, namespace, import.name())?;
    if type_of(env, function) != ValueType::Function {
        return Err(missing(format!(
            "must be a function; got {}",
            describe_raw(env, function)
        )));
    }
    // SAFETY: `function` belongs to this env; the store holding the closure stays on this thread.
    let function = Rc::new(
        unsafe { SendlessRef::weak(env.raw(), function) }
            .ok_or_else(|| SandboxError::Internal("could not reference an import".to_owned()))?,
    );
    bridge.functions.borrow_mut().push(Rc::clone(&function));
    let import = JsImport(Rc::new(JsImportData {
        env: env.raw(),
        function,
        label,
        ty: ty.clone(),
        bridge: Rc::clone(bridge),
    }));
    Ok(Box::new(import))
}

/// A JS function as a wasm import (shared with the Promise callbacks of an async call).
#[derive(Clone)]
struct JsImport(Rc<JsImportData>);

impl std::ops::Deref for JsImport {
    type Target = JsImportData;
    fn deref(&self) -> &JsImportData {
        &self.0
    }
}

impl HostImport for JsImport {
    fn call(&self, params: &[Val], results: &mut [Val]) -> Result<(), HostFunctionError> {
        self.invoke(params, results)
    }

    fn call_async(&self, params: &[Val], results: usize, done: ImportDone) {
        let mut scope = ptr::null_mut();
        // SAFETY: called on the env's thread, from its event loop (or a Node-API call).
        if unsafe { sys::napi_open_handle_scope(self.env, &mut scope) } != sys::Status::napi_ok {
            done(Err(self.fail(
                "JavaScript cannot run here (the environment is shutting down)".to_owned(),
            )));
            return;
        }
        let mut done = Some(done);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let env = Env::from(self.env);
            let returned = self.call_function(&env, params)?;
            if is_thenable(&env, returned) {
                let done = done.take().expect("answered once");
                return match self.await_promise(&env, returned, results, done) {
                    Ok(()) => Ok(None),
                    Err(error) => Err(error),
                };
            }
            let mut values = vec![Val::I32(0); results];
            self.convert_results(&env, returned, &mut values)?;
            Ok(Some(values))
        }))
        .unwrap_or_else(|_| Err(self.fail("the host panicked while calling it".to_owned())));
        // SAFETY: closes the scope opened above.
        unsafe { sys::napi_close_handle_scope(self.env, scope) };
        if let Some(done) = done {
            match outcome {
                Ok(Some(values)) => done(Ok(values)),
                Ok(None) => {}
                Err(error) => done(Err(error)),
            }
        }
    }
}

/// Whether `value` is an object or function with a callable `then`.
fn is_thenable(env: &Env, value: RawValue) -> bool {
    if !matches!(type_of(env, value), ValueType::Object | ValueType::Function) {
        return false;
    }
    get_property(env, value, "then").is_ok_and(|then| type_of(env, then) == ValueType::Function)
}

/// What one of an awaited Promise's callbacks needs: taken by whichever runs (once).
struct Settle {
    import: JsImport,
    results: usize,
    done: Option<ImportDone>,
}

type SettleCell = std::cell::RefCell<Settle>;

unsafe extern "C" fn on_fulfilled(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY: called by Node-API with the data given at creation.
    unsafe { settle(env, info, true) }
}

unsafe extern "C" fn on_rejected(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY: as above.
    unsafe { settle(env, info, false) }
}

unsafe fn settle(env: sys::napi_env, info: sys::napi_callback_info, fulfilled: bool) -> sys::napi_value {
    let mut argc = 1usize;
    let mut argv = [ptr::null_mut(); 1];
    let mut data = ptr::null_mut();
    // SAFETY: the callback info of this call.
    unsafe {
        sys::napi_get_cb_info(env, info, &mut argc, argv.as_mut_ptr(), ptr::null_mut(), &mut data);
    }
    let mut undefined = ptr::null_mut();
    // SAFETY: creates a value in the live env.
    unsafe { sys::napi_get_undefined(env, &mut undefined) };
    if data.is_null() {
        return undefined;
    }
    // SAFETY: `data` is an `Rc<SettleCell>` kept alive by this function's finalizer.
    let cell = unsafe { &*data.cast::<SettleCell>() };
    let Ok(mut state) = cell.try_borrow_mut() else {
        return undefined;
    };
    let Some(done) = state.done.take() else {
        return undefined;
    };
    let import = state.import.clone();
    let results = state.results;
    drop(state);
    let value = if argc >= 1 { argv[0] } else { undefined };
    let env_handle = Env::from(env);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        if fulfilled {
            let mut values = vec![Val::I32(0); results];
            import.convert_results(&env_handle, value, &mut values).map(|()| values)
        } else {
            Err(import.fail(import.keep_value(&env_handle, value, "its Promise rejected")))
        }
    }))
    .unwrap_or_else(|_| Err(import.fail("the host panicked while settling it".to_owned())));
    done(outcome);
    undefined
}

unsafe extern "C" fn drop_settle(_env: sys::napi_env, data: *mut std::ffi::c_void, _hint: *mut std::ffi::c_void) {
    // SAFETY: one of the two strong counts handed to the callbacks at creation.
    drop(unsafe { Rc::from_raw(data.cast::<SettleCell>()) });
}

struct JsImportData {
    env: sys::napi_env,
    function: Rc<SendlessRef>,
    label: String,
    ty: FuncType,
    bridge: Rc<ImportBridge>,
}

impl JsImportData {
    fn fail(&self, message: String) -> HostFunctionError {
        HostFunctionError {
            import: self.label.clone(),
            message,
        }
    }

    fn invoke(&self, params: &[Val], results: &mut [Val]) -> Result<(), HostFunctionError> {
        let mut scope = ptr::null_mut();
        // SAFETY: host functions run inside the JS call that entered the guest, on the env's thread.
        if unsafe { sys::napi_open_handle_scope(self.env, &mut scope) } != sys::Status::napi_ok {
            return Err(self.fail("JavaScript cannot run here (the environment is shutting down)".to_owned()));
        }
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.invoke_in_scope(params, results)))
            .unwrap_or_else(|_| Err(self.fail("the host panicked while calling it".to_owned())));
        // SAFETY: closes the scope opened above.
        unsafe { sys::napi_close_handle_scope(self.env, scope) };
        outcome
    }

    fn invoke_in_scope(&self, params: &[Val], results: &mut [Val]) -> Result<(), HostFunctionError> {
        // `self.env` is the live env of the JS call running the guest.
        let env = Env::from(self.env);
        let returned = self.call_function(&env, params)?;
        if is_thenable(&env, returned) {
            return Err(self.fail(
                "it returned a Promise, which a synchronous call cannot wait for (use callAsync() or runAsync())"
                    .to_owned(),
            ));
        }
        self.convert_results(&env, returned, results)
    }

    /// Calls the JS function with `params`; its return value, or the error it threw (kept).
    fn call_function(&self, env: &Env, params: &[Val]) -> Result<RawValue, HostFunctionError> {
        let arguments = params
            .iter()
            .map(|value| from_wasm(env, value))
            .collect::<SandboxResult<Vec<_>>>()
            .map_err(|error| self.fail(error.to_string()))?;
        let function = self
            .function
            .value()
            .ok_or_else(|| self.fail("the function was garbage-collected with the objects holding it".to_owned()))?;
        let mut receiver = ptr::null_mut();
        let mut returned = ptr::null_mut();
        // SAFETY: all values belong to this env and the open handle scope.
        let status = unsafe {
            sys::napi_get_undefined(self.env, &mut receiver);
            sys::napi_call_function(
                self.env,
                receiver,
                function,
                arguments.len(),
                arguments.as_ptr(),
                &mut returned,
            )
        };
        if status != sys::Status::napi_ok {
            return Err(self.fail(self.keep_exception(env)));
        }
        Ok(returned)
    }

    /// Waits for the Promise (thenable) `promise`: `done` gets its converted value or its
    /// rejection (kept as the call's `cause`).
    fn await_promise(
        &self,
        env: &Env,
        promise: RawValue,
        results: usize,
        done: ImportDone,
    ) -> Result<(), HostFunctionError> {
        let import = JsImport(Rc::new(JsImportData {
            env: self.env,
            function: Rc::clone(&self.function),
            label: self.label.clone(),
            ty: self.ty.clone(),
            bridge: Rc::clone(&self.bridge),
        }));
        let cell = Rc::new(SettleCell::new(Settle {
            import,
            results,
            done: Some(done),
        }));
        let raw = env.raw();
        // `Promise.resolve(value).then(onFulfilled, onRejected)`: a native Promise calls one of
        // them, once, whatever the thenable does.
        // SAFETY: values of the live env; each callback owns one strong count of `cell`, released
        // by its finalizer.
        let attached = unsafe {
            let mut global = ptr::null_mut();
            sys::napi_get_global(raw, &mut global);
            let promise_class = get_property(env, global, "Promise").map_err(|error| self.fail(error.to_string()))?;
            let resolve = get_property(env, promise_class, "resolve").map_err(|error| self.fail(error.to_string()))?;
            let mut native_promise = ptr::null_mut();
            let mut ok = sys::napi_call_function(raw, promise_class, resolve, 1, &promise, &mut native_promise)
                == sys::Status::napi_ok;
            let mut callbacks = [ptr::null_mut(); 2];
            for (slot, callback) in callbacks.iter_mut().zip([
                on_fulfilled as unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> sys::napi_value,
                on_rejected,
            ]) {
                let data = Rc::into_raw(Rc::clone(&cell)).cast_mut().cast::<std::ffi::c_void>();
                ok = ok
                    && sys::napi_create_function(raw, ptr::null(), 0, Some(callback), data, slot)
                        == sys::Status::napi_ok
                    && sys::napi_add_finalizer(raw, *slot, data, Some(drop_settle), ptr::null_mut(), ptr::null_mut())
                        == sys::Status::napi_ok;
                if !ok {
                    drop(Rc::from_raw(data.cast::<SettleCell>()));
                }
            }
            if ok {
                let then = get_property(env, native_promise, "then").map_err(|error| self.fail(error.to_string()))?;
                let mut ignored = ptr::null_mut();
                ok = sys::napi_call_function(raw, native_promise, then, 2, callbacks.as_ptr(), &mut ignored)
                    == sys::Status::napi_ok;
            }
            ok
        };
        if attached {
            return Ok(());
        }
        let message = self.keep_exception(env);
        let done = cell.borrow_mut().done.take();
        if let Some(done) = done {
            done(Err(self.fail(format!("its Promise could not be awaited: {message}"))));
        }
        Ok(())
    }

    /// Keeps `value` (what an import threw, or its Promise's rejection reason) as the call's
    /// `cause`, and describes it.
    fn keep_value(&self, env: &Env, value: RawValue, what: &str) -> String {
        let message = exception_message(env, value);
        self.bridge.pending_exception.set(hold_any(self.env, value));
        format!("{what}: {message}")
    }

    /// Clears the pending JS exception, keeps it for the caller's `cause`, and describes it.
    fn keep_exception(&self, env: &Env) -> String {
        let mut exception = ptr::null_mut();
        // SAFETY: called right after a failed call in this env.
        let status = unsafe { sys::napi_get_and_clear_last_exception(self.env, &mut exception) };
        if status != sys::Status::napi_ok || exception.is_null() {
            return "it could not run (JavaScript execution is no longer possible)".to_owned();
        }
        self.keep_value(env, exception, "it threw")
    }

    fn convert_results(&self, env: &Env, returned: RawValue, results: &mut [Val]) -> Result<(), HostFunctionError> {
        let types: Vec<_> = self.ty.results().collect();
        match types.len() {
            0 => Ok(()),
            1 => {
                results[0] = to_wasm(env, returned, &types[0])
                    .map_err(|(_, problem)| self.fail(format!("its return value {problem}")))?;
                Ok(())
            }
            count => {
                let mut is_array = false;
                // SAFETY: `returned` belongs to this env.
                unsafe { sys::napi_is_array(self.env, returned, &mut is_array) };
                let mut length = 0;
                if is_array {
                    // SAFETY: checked to be an array.
                    unsafe { sys::napi_get_array_length(self.env, returned, &mut length) };
                }
                if !is_array || length as usize != count {
                    return Err(self.fail(format!(
                        "it must return an array of {count} values ({}); got {}",
                        types
                            .iter()
                            .map(crate::module::type_name)
                            .collect::<Vec<_>>()
                            .join(", "),
                        describe_raw(env, returned)
                    )));
                }
                for (index, ty) in types.iter().enumerate() {
                    let mut element = ptr::null_mut();
                    // SAFETY: `index < length` of this array.
                    unsafe { sys::napi_get_element(self.env, returned, index as u32, &mut element) };
                    results[index] = to_wasm(env, element, ty)
                        .map_err(|(_, problem)| self.fail(format!("its return value [{index}] {problem}")))?;
                }
                Ok(())
            }
        }
    }
}

/// `error.message` for an Error, the string itself for a string, else a description.
pub(crate) fn exception_message(env: &Env, exception: RawValue) -> String {
    let mut is_error = false;
    // SAFETY: `exception` belongs to this env.
    unsafe { sys::napi_is_error(env.raw(), exception, &mut is_error) };
    let text = if is_error {
        get_property(env, exception, "message").ok()
    } else {
        Some(exception)
    };
    match text.filter(|&text| type_of(env, text) == ValueType::String) {
        // SAFETY: checked to be a string.
        Some(text) => unsafe { <String as napi::bindgen_prelude::FromNapiValue>::from_napi_value(env.raw(), text) }
            .unwrap_or_default(),
        None => describe_raw(env, exception),
    }
}

/// `object[key]` for any string key (wasm names may hold any character, NUL included).
pub fn get_property(env: &Env, object: RawValue, key: &str) -> SandboxResult<RawValue> {
    let mut key_value = ptr::null_mut();
    let mut value = ptr::null_mut();
    // SAFETY: `object` belongs to this env; the key is created in it.
    let status = unsafe {
        match sys::napi_create_string_utf8(env.raw(), key.as_ptr().cast(), key.len() as isize, &mut key_value) {
            sys::Status::napi_ok => sys::napi_get_property(env.raw(), object, key_value, &mut value),
            failed => failed,
        }
    };
    if status == sys::Status::napi_ok {
        return Ok(value);
    }
    // A throwing getter or proxy trap: clear its exception and report where it happened.
    let mut exception = ptr::null_mut();
    // SAFETY: clears whatever the failed get left pending.
    unsafe { sys::napi_get_and_clear_last_exception(env.raw(), &mut exception) };
    Err(SandboxError::Link(format!("reading {key:?} from the imports threw")))
}
