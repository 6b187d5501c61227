//! JS functions as wasm host functions: argument and result conversion by signature, and the
//! JS exception an import threw, kept aside to become the `cause` of the caller's error.

use std::cell::Cell;
use std::ptr;
use std::rc::Rc;

use napi::{Env, ValueType, sys};
use wasmtime::{FuncType, ImportType, Val};

use crate::error::{SandboxError, SandboxResult};
use crate::js::values::{RawValue, describe_raw, from_wasm, to_wasm, type_of};
use crate::sandbox::{HostFunction, HostFunctionError};

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
    env: sys::napi_env,
    reference: sys::napi_ref,
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
        let holder = self.pending_exception.take()?;
        let holder_array = holder.value()?;
        let mut exception = ptr::null_mut();
        // SAFETY: the holder is the one-element array made in `keep_exception`.
        let status = unsafe { sys::napi_get_element(holder.env, holder_array, 0, &mut exception) };
        (status == sys::Status::napi_ok).then_some(exception)
    }
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
    let import = JsImport {
        env: env.raw(),
        function,
        label,
        ty: ty.clone(),
        bridge: Rc::clone(bridge),
    };
    Ok(Box::new(move |params, results| import.invoke(params, results)))
}

struct JsImport {
    env: sys::napi_env,
    function: Rc<SendlessRef>,
    label: String,
    ty: FuncType,
    bridge: Rc<ImportBridge>,
}

impl JsImport {
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
        let arguments = params
            .iter()
            .map(|value| from_wasm(&env, value))
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
            return Err(self.fail(self.keep_exception(&env)));
        }
        self.convert_results(&env, returned, results)
    }

    /// Clears the pending JS exception, keeps it for the caller's `cause`, and describes it.
    fn keep_exception(&self, env: &Env) -> String {
        let mut exception = ptr::null_mut();
        // SAFETY: called right after a failed call in this env.
        let status = unsafe { sys::napi_get_and_clear_last_exception(self.env, &mut exception) };
        if status != sys::Status::napi_ok || exception.is_null() {
            return "it could not run (JavaScript execution is no longer possible)".to_owned();
        }
        let message = exception_message(env, exception);
        // Node-API before v10 references objects only, and a JS import may throw anything: the
        // exception is kept inside a one-element array.
        let mut holder = ptr::null_mut();
        // SAFETY: values of this env, on its thread; the bridge lives on this thread too.
        unsafe {
            if sys::napi_create_array_with_length(self.env, 1, &mut holder) == sys::Status::napi_ok
                && sys::napi_set_element(self.env, holder, 0, exception) == sys::Status::napi_ok
            {
                self.bridge.pending_exception.set(SendlessRef::new(self.env, holder));
            }
        }
        format!("it threw: {message}")
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
fn exception_message(env: &Env, exception: RawValue) -> String {
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
