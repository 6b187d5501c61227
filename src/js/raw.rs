//! The hot paths as raw Node-API functions, for the JS facade (`lib/facade.js`) that calls them.
//!
//! napi-rs methods take a fixed number of arguments and spend most of a call's time finding the
//! Rust object behind `this` (`napi_unwrap` and a type-tag check, each a property lookup in C++).
//! The facade's subclasses find it once, at construction, and keep it as an External in a
//! private field; the raw functions here take that External first. The `#[napi]` methods stay as
//! the typed declarations (and the base classes) and share the same implementation. The raw
//! functions are handed to the facade only, never exported.

use std::ffi::CStr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;

use napi::bindgen_prelude::{JsValue, JsValuesTuple, Object, TypeTag};
use napi::{Env, Result, sys};
use napi_derive::napi;

use crate::error::SandboxError;
use crate::js::buffer_sandbox::BufferSandboxState;
use crate::js::errors::OrThrow;
use crate::js::errors::{raise, throw};
use crate::js::sandbox::{ExportCaller, Sandbox};
use crate::js::snapshot::Snapshot;
use crate::js::values::{RawValue, unwrap_class};

/// Reads a raw function's arguments: up to `N` of them (missing ones are `undefined`) and how
/// many were passed.
///
/// # Safety
/// `env` and `info` must be the ones Node-API passed to the running callback.
unsafe fn arguments<const N: usize>(env: sys::napi_env, info: sys::napi_callback_info) -> ([RawValue; N], usize) {
    let mut argc = N;
    let mut args = [ptr::null_mut(); N];
    // SAFETY: `args` has room for `argc` values; Node-API fills missing ones with `undefined`.
    unsafe {
        sys::napi_get_cb_info(
            env,
            info,
            &mut argc,
            args.as_mut_ptr(),
            ptr::null_mut(),
            ptr::null_mut(),
        )
    };
    (args, argc)
}

/// All of a raw function's arguments (up to 8 without allocating), its `this` and its data.
pub(crate) struct VarArgs {
    inline: [RawValue; 8],
    spilled: Vec<RawValue>,
    count: usize,
    this: RawValue,
    data: *mut std::ffi::c_void,
}

impl AsRef<[RawValue]> for VarArgs {
    fn as_ref(&self) -> &[RawValue] {
        self.as_slice()
    }
}

impl VarArgs {
    /// # Safety
    /// `env` and `info` must be the ones Node-API passed to the running callback.
    pub(crate) unsafe fn read(env: sys::napi_env, info: sys::napi_callback_info) -> Self {
        let mut args = Self {
            inline: [ptr::null_mut(); 8],
            spilled: Vec::new(),
            count: 8,
            this: ptr::null_mut(),
            data: ptr::null_mut(),
        };
        // SAFETY: `inline` has room for `count` values; Node-API reports the real count.
        unsafe {
            sys::napi_get_cb_info(
                env,
                info,
                &mut args.count,
                args.inline.as_mut_ptr(),
                &mut args.this,
                &mut args.data,
            )
        };
        if args.count > args.inline.len() {
            args.spilled.resize(args.count, ptr::null_mut());
            // SAFETY: `spilled` has room for `count` values.
            unsafe {
                sys::napi_get_cb_info(
                    env,
                    info,
                    &mut args.count,
                    args.spilled.as_mut_ptr(),
                    ptr::null_mut(),
                    ptr::null_mut(),
                )
            };
        }
        args
    }

    pub(crate) fn as_slice(&self) -> &[RawValue] {
        if self.count > self.inline.len() {
            &self.spilled
        } else {
            &self.inline[..self.count]
        }
    }

    /// Argument `index`, or a null value past the last one.
    pub(crate) fn get(&self, index: usize) -> RawValue {
        self.as_slice().get(index).copied().unwrap_or(ptr::null_mut())
    }
}

/// The object behind a handle made by `make_handle::<T>`.
///
/// # Safety
/// `handle` must be an External made by `make_handle::<T>` for an object that is alive for the
/// current call. The facade guarantees it: handles live only in the private field of the object
/// they point into, and a method reads its own object's field while that object is `this`.
unsafe fn from_handle<'a, T>(env: sys::napi_env, handle: RawValue) -> Option<&'a T> {
    let mut data = ptr::null_mut();
    // SAFETY: a non-External gives a non-ok status.
    let status = unsafe { sys::napi_get_value_external(env, handle, &mut data) };
    // SAFETY: per the contract, `data` points at a live `T`.
    (status == sys::Status::napi_ok && !data.is_null()).then(|| unsafe { &*data.cast::<T>() })
}

/// Runs a body over the object behind the first argument (a handle), catching panics and
/// throwing errors.
///
/// # Safety
/// `env` and `info` must be the ones Node-API passed to the running callback, and the function
/// must be called by the facade only (see `from_handle`).
unsafe fn with_handle<T: 'static, const N: usize>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
    body: impl FnOnce(&Env, &T, &[RawValue]) -> Result<RawValue>,
) -> RawValue {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let wrapped_env = Env::from(env);
        // SAFETY: forwarded from this function's contract.
        let (args, _) = unsafe { arguments::<N>(env, info) };
        // SAFETY: the facade passes its own object's handle first.
        let Some(object) = (unsafe { from_handle::<T>(env, args[0]) }) else {
            return Err(throw(
                &wrapped_env,
                &SandboxError::WrongReceiver("not a handle of this addon".to_owned()),
            ));
        };
        body(&wrapped_env, object, &args[1..])
    }));
    // SAFETY: forwarded from this function's contract.
    unsafe { finish(env, outcome) }
}

/// Returns the value, or throws the error (unless already thrown) and returns null.
unsafe fn finish(env: sys::napi_env, outcome: std::thread::Result<Result<RawValue>>) -> RawValue {
    match outcome {
        Ok(Ok(value)) => value,
        Ok(Err(error)) => {
            raise(env, error);
            ptr::null_mut()
        }
        Err(_) => {
            throw(
                &Env::from(env),
                &SandboxError::Internal("a Rust panic was caught".to_owned()),
            );
            ptr::null_mut()
        }
    }
}

/// What a raw function returns for `undefined`: Node-API turns a null result into `undefined`,
/// which saves a call on the hot path.
const VOID: RawValue = ptr::null_mut();

/// A JS number from a `u32`: unlike `number`, free of V8's slow path for small integers.
fn unsigned(env: &Env, value: u32) -> RawValue {
    let mut result = ptr::null_mut();
    // SAFETY: the live env of the running callback.
    unsafe { sys::napi_create_uint32(env.raw(), value, &mut result) };
    result
}

fn number(env: &Env, value: f64) -> RawValue {
    let mut result = ptr::null_mut();
    // SAFETY: the live env of the running callback.
    unsafe { sys::napi_create_double(env.raw(), value, &mut result) };
    result
}

/// `handle(object)`: an External pointing at the `T` wrapped in `object`, checked by type tag.
unsafe fn make_handle<T: TypeTag + 'static>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
    class_name: &str,
) -> RawValue {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let wrapped_env = Env::from(env);
        // SAFETY: this callback's env and info.
        let ([object], _) = unsafe { arguments::<1>(env, info) };
        // SAFETY: `object` belongs to this env and call.
        let Some(native) = (unsafe { unwrap_class::<T>(&wrapped_env, object) }) else {
            return Err(throw(
                &wrapped_env,
                &SandboxError::WrongReceiver(format!("not a {class_name}")),
            ));
        };
        let mut handle = ptr::null_mut();
        // SAFETY: the External borrows the object's native part; it is kept only in that
        // object's private field (see `from_handle`), so it never outlives it.
        let status = unsafe {
            sys::napi_create_external(
                env,
                ptr::from_ref(native).cast_mut().cast(),
                None,
                ptr::null_mut(),
                &mut handle,
            )
        };
        if status == sys::Status::napi_ok {
            Ok(handle)
        } else {
            Err(throw(
                &wrapped_env,
                &SandboxError::Internal(format!("napi_create_external failed ({status})")),
            ))
        }
    }));
    // SAFETY: this callback's env.
    unsafe { finish(env, outcome) }
}

unsafe extern "C" fn sandbox_handle(env: sys::napi_env, info: sys::napi_callback_info) -> RawValue {
    // SAFETY: called by Node-API with this callback's env and info.
    unsafe { make_handle::<Sandbox>(env, info, "Sandbox") }
}

/// `bufferCreate()`: a new buffer sandbox, owned by the External returned (the facade keeps it
/// in its object's private field, so it is dropped when that object is collected).
unsafe extern "C" fn buffer_create(env: sys::napi_env, _info: sys::napi_callback_info) -> RawValue {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let wrapped_env = Env::from(env);
        let state = Box::new(BufferSandboxState::new().or_throw(&wrapped_env)?);
        let data = Box::into_raw(state);
        let mut handle = ptr::null_mut();
        // SAFETY: the External owns `data`; `drop_buffer_state` frees it exactly once.
        let status = unsafe {
            sys::napi_create_external(env, data.cast(), Some(drop_buffer_state), ptr::null_mut(), &mut handle)
        };
        if status != sys::Status::napi_ok {
            // SAFETY: Node-API did not take ownership.
            drop(unsafe { Box::from_raw(data) });
            return Err(throw(
                &wrapped_env,
                &SandboxError::Internal(format!("napi_create_external failed ({status})")),
            ));
        }
        Ok(handle)
    }));
    // SAFETY: called by Node-API with this callback's env.
    unsafe { finish(env, outcome) }
}

unsafe extern "C" fn drop_buffer_state(env: sys::napi_env, data: *mut std::ffi::c_void, _hint: *mut std::ffi::c_void) {
    // SAFETY: `data` is the `Box<BufferSandboxState>` leaked in `buffer_create`.
    let state = unsafe { Box::from_raw(data.cast::<BufferSandboxState>()) };
    state.release_views(&Env::from(env));
}

/// Defines a raw function `$name(handle, ...)` over a `BufferSandboxState` that reads `$arity`
/// arguments (the handle included) and runs `$body`.
macro_rules! buffer_function {
    ($name:ident, $arity:literal, |$env:ident, $state:ident, $args:ident| $body:expr) => {
        unsafe extern "C" fn $name(env: sys::napi_env, info: sys::napi_callback_info) -> RawValue {
            let body = |$env: &Env, $state: &BufferSandboxState, $args: &[RawValue]| -> Result<RawValue> {
                let _ = $args;
                $body
            };
            // SAFETY: called by the facade with this callback's env and info.
            unsafe { with_handle::<BufferSandboxState, $arity>(env, info, body) }
        }
    };
}

buffer_function!(buffer_pointer, 1, |env, state, args| state
    .pointer(env)
    .map(|pointer| unsigned(env, pointer)));
buffer_function!(buffer_store, 2, |env, state, args| state
    .store(env, args[0])
    .map(|()| VOID));
buffer_function!(buffer_read, 1, |env, state, args| state
    .read(env)
    .map(|byte| unsigned(env, byte)));
buffer_function!(buffer_memory, 1, |env, state, args| state.memory(env));
buffer_function!(buffer_view, 1, |env, state, args| state.buffer(env));
buffer_function!(buffer_grow, 2, |env, state, args| state
    .grow(env, args[0])
    .map(|previous| number(env, previous)));
buffer_function!(buffer_memory_size, 1, |env, state, args| state
    .memory_size(env)
    .map(|bytes| number(env, bytes)));
buffer_function!(buffer_disposed, 1, |env, state, args| Ok(boolean(
    env,
    state.disposed()
)));
buffer_function!(buffer_snapshot, 1, |env, state, args| {
    let snapshot = state.snapshot(env)?;
    // SAFETY: a class instance made in the live env of this call.
    unsafe { <Snapshot as napi::bindgen_prelude::ToNapiValue>::to_napi_value(env.raw(), snapshot) }
});
buffer_function!(buffer_restore, 2, |env, state, args| state
    .restore(env, args[0])
    .map(|()| VOID));
buffer_function!(buffer_reset, 1, |env, state, args| state.reset(env).map(|()| VOID));
buffer_function!(buffer_dispose, 1, |env, state, args| {
    state.dispose(env);
    Ok(VOID)
});
buffer_function!(buffer_inspect, 1, |env, state, args| {
    let text = state.inspect();
    let mut value = ptr::null_mut();
    // SAFETY: creating a string in the live env of this call.
    unsafe { sys::napi_create_string_utf8(env.raw(), text.as_ptr().cast(), text.len() as isize, &mut value) };
    Ok(value)
});

fn boolean(env: &Env, value: bool) -> RawValue {
    let mut result = ptr::null_mut();
    // SAFETY: the live env of the running callback.
    unsafe { sys::napi_get_boolean(env.raw(), value, &mut result) };
    result
}

/// `sandboxCaller(handle, name)`: a handle (an External) on the export `name` of the sandbox,
/// which the facade caches per name in the sandbox's private map and passes to `callExportN`.
unsafe extern "C" fn sandbox_caller(env: sys::napi_env, info: sys::napi_callback_info) -> RawValue {
    let body = |env: &Env, sandbox: &Sandbox, args: &[RawValue]| -> Result<RawValue> {
        let target = sandbox.caller(env, args[0])?;
        let mut handle = ptr::null_mut();
        // SAFETY: `target` lives as long as the sandbox; the handle is kept only in that
        // sandbox's private map and passed from its `call()`, while it is alive.
        let status = unsafe {
            sys::napi_create_external(env.raw(), target.cast_mut().cast(), None, ptr::null_mut(), &mut handle)
        };
        if status == sys::Status::napi_ok {
            Ok(handle)
        } else {
            Err(throw(
                env,
                &SandboxError::Internal(format!("napi_create_external failed ({status})")),
            ))
        }
    };
    // SAFETY: called by the facade with this callback's env and info.
    unsafe { with_handle::<Sandbox, 2>(env, info, body) }
}

/// `sandboxImports(handle)`: the sandbox's JS import functions, which the facade keeps alive.
unsafe extern "C" fn sandbox_imports(env: sys::napi_env, info: sys::napi_callback_info) -> RawValue {
    let body = |env: &Env, sandbox: &Sandbox, _: &[RawValue]| sandbox.import_functions(env);
    // SAFETY: called by the facade with this callback's env and info.
    unsafe { with_handle::<Sandbox, 1>(env, info, body) }
}

/// Runs `body` with the sandbox and export behind a `sandboxCaller` handle (the first of the
/// arguments `read` returns) and the other arguments, catching panics and throwing errors.
///
/// # Safety
/// `env` must be the one Node-API passed to the running callback, called by the facade with a
/// handle made by `sandbox_caller` for a live sandbox.
unsafe fn with_export_caller<Args: AsRef<[RawValue]>>(
    env: sys::napi_env,
    read: impl FnOnce() -> Args,
    body: impl FnOnce(&Env, &Sandbox, &ExportCaller, &[RawValue]) -> Result<RawValue>,
) -> RawValue {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let wrapped_env = Env::from(env);
        let args = read();
        let Some((&target, wasm_args)) = args.as_ref().split_first() else {
            return Err(not_a_handle(&wrapped_env));
        };
        // SAFETY: the facade passes a handle made by `sandbox_caller` for a live sandbox.
        let caller = unsafe { from_handle::<ExportCaller>(env, target) }.ok_or_else(|| not_a_handle(&wrapped_env))?;
        // SAFETY: the sandbox outlives its callers (see `sandbox_caller`).
        let sandbox = unsafe { &*caller.sandbox };
        body(&wrapped_env, sandbox, caller, wasm_args)
    }));
    // SAFETY: called by Node-API with this callback's env.
    unsafe { finish(env, outcome) }
}

/// `callExport(target, ...args)`: calls the export behind a `sandboxCaller` handle with any
/// number of arguments, by the general path.
unsafe extern "C" fn call_export(env: sys::napi_env, info: sys::napi_callback_info) -> RawValue {
    // SAFETY: called by the facade with this callback's env and info.
    unsafe {
        with_export_caller(
            env,
            || VarArgs::read(env, info),
            |env, sandbox, caller, args| sandbox.call_index(env, caller.index, args),
        )
    }
}

/// `callAsyncExport(target, ...args)`: `callAsync` of the export behind a `sandboxCaller` handle,
/// without finding the sandbox behind `this` and the export by name on each call. Returns the
/// value of a call that settled at once, else its Promise: the facade passes either through
/// `Promise.resolve`.
unsafe extern "C" fn call_async_export(env: sys::napi_env, info: sys::napi_callback_info) -> RawValue {
    // SAFETY: called by the facade with this callback's env and info.
    unsafe {
        with_export_caller(
            env,
            || VarArgs::read(env, info),
            |env, sandbox, caller, args| sandbox.call_async_export(env, caller, args),
        )
    }
}

/// `callAsyncExportN(target, a1, ..., aN)` for `COUNT - 1` = N arguments: `callAsyncExport`
/// with its arguments read onto the stack, for the same reason as `callExportN`.
unsafe extern "C" fn call_async_export_fixed<const COUNT: usize>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> RawValue {
    // SAFETY: called by the facade with this callback's env and info, passing `COUNT` arguments.
    unsafe {
        with_export_caller(
            env,
            || arguments::<COUNT>(env, info).0,
            |env, sandbox, caller, args| sandbox.call_async_export(env, caller, args),
        )
    }
}

/// `callExportN(target, a1, ..., aN)` for `N` = `ARITY` = `COUNT - 1` (stable Rust cannot write
/// `ARITY + 1` as an array length): one native function per arity, shared by every sandbox and
/// export, so the facade's call sites stay monomorphic however many exports a program calls (a
/// function per export made them polymorphic, and V8's generic call path cost ~15 ns a call).
/// An export of a `NumericSignature` with that arity takes `Sandbox::call_numeric`; any other
/// export, and anything `call_numeric` declines, takes the general path with the same arguments.
unsafe extern "C" fn call_export_fixed<const COUNT: usize, const ARITY: usize>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> RawValue {
    // The closure returns a bare value (errors already thrown): a `Result` of napi-rs's large
    // error type, moved out of it, cost a store-forwarding stall per call (seen with perf).
    let outcome = catch_unwind(AssertUnwindSafe(|| -> RawValue {
        let wrapped_env = Env::from(env);
        // SAFETY: this callback's env and info; the facade passes exactly `COUNT` arguments.
        let (args, _) = unsafe { arguments::<COUNT>(env, info) };
        // SAFETY: as in `call_export`.
        let Some(caller) = (unsafe { from_handle::<ExportCaller>(env, args[0]) }) else {
            raise(env, not_a_handle(&wrapped_env));
            return ptr::null_mut();
        };
        // SAFETY: as in `call_export`.
        let sandbox = unsafe { &*caller.sandbox };
        let wasm_args: [RawValue; ARITY] = std::array::from_fn(|index| args[index + 1]);
        if let Some((func, signature)) = &caller.numeric
            && signature.arity == ARITY
            && let Some(value) = sandbox.call_numeric(&wrapped_env, func, signature, &wasm_args)
        {
            return value;
        }
        sandbox
            .call_index(&wrapped_env, caller.index, &wasm_args)
            .unwrap_or_else(|error| {
                raise(env, error);
                ptr::null_mut()
            })
    }));
    match outcome {
        Ok(value) => value,
        // SAFETY: called by Node-API with this callback's env.
        Err(panic) => unsafe { finish(env, Err(panic)) },
    }
}

fn not_a_handle(env: &Env) -> napi::Error {
    throw(
        env,
        &SandboxError::WrongReceiver("not a handle of this addon".to_owned()),
    )
}

/// `Sandbox.prototype.call` of the napi-rs base class, made variadic (instances of the facade
/// call through `sandboxCaller` handles and `callExport*` instead).
unsafe extern "C" fn base_sandbox_call(env: sys::napi_env, info: sys::napi_callback_info) -> RawValue {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let wrapped_env = Env::from(env);
        // SAFETY: this callback's env and info.
        let args = unsafe { VarArgs::read(env, info) };
        // SAFETY: `this` belongs to this env and call.
        let Some(sandbox) = (unsafe { unwrap_class::<Sandbox>(&wrapped_env, args.this) }) else {
            return Err(throw(
                &wrapped_env,
                &SandboxError::WrongReceiver(
                    "Sandbox.prototype.call was called on something that is not a Sandbox".to_owned(),
                ),
            ));
        };
        sandbox.call_with(&wrapped_env, args.as_slice())
    }));
    // SAFETY: called by Node-API with this callback's env.
    unsafe { finish(env, outcome) }
}

/// An empty raw Node-API function: the floor the benchmark compares against.
unsafe extern "C" fn raw_floor(_env: sys::napi_env, _info: sys::napi_callback_info) -> RawValue {
    VOID
}

/// An empty napi-rs function: the other floor the benchmark compares against.
#[napi(js_name = "__napiFloor", skip_typescript)]
#[cfg_attr(test, allow(dead_code))] // registered with Node only outside `cfg(test)`
pub fn napi_floor() {}

type RawCallback = unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> RawValue;

/// Defines `target[name] = callback` as a method (writable, configurable, not enumerable).
unsafe fn define_method(env: sys::napi_env, target: RawValue, name: &CStr, callback: RawCallback) -> Result<()> {
    let descriptor = sys::napi_property_descriptor {
        utf8name: name.as_ptr(),
        name: ptr::null_mut(),
        method: Some(callback),
        getter: None,
        setter: None,
        value: ptr::null_mut(),
        attributes: sys::PropertyAttributes::writable | sys::PropertyAttributes::configurable,
        data: ptr::null_mut(),
    };
    // SAFETY: `target` is an object of `env`.
    match unsafe { sys::napi_define_properties(env, target, 1, &descriptor) } {
        sys::Status::napi_ok => Ok(()),
        status => Err(napi::Error::from_reason(format!("defining {name:?} failed ({status})"))),
    }
}

unsafe fn get_named(env: sys::napi_env, object: RawValue, name: &CStr) -> Result<RawValue> {
    let mut value = ptr::null_mut();
    // SAFETY: `object` is an object of `env`.
    match unsafe { sys::napi_get_named_property(env, object, name.as_ptr(), &mut value) } {
        sys::Status::napi_ok => Ok(value),
        status => Err(napi::Error::from_reason(format!("reading {name:?} failed ({status})"))),
    }
}

/// Once napi-rs has registered the classes: makes `Sandbox.prototype.call` variadic, adds the
/// benchmark floor, and exports the raw functions as `__native` for `lib/facade.js`, which
/// replaces the exported `BufferSandbox` and `Sandbox` with subclasses that use them.
#[napi(module_exports)]
#[cfg_attr(test, allow(dead_code))] // napi-rs registers module hooks only outside `cfg(test)`.
pub fn install_raw_methods(exports: Object) -> Result<()> {
    let env = exports.env();
    let exports = exports.raw();
    // SAFETY: module initialization, on the env's thread; every value belongs to `env`.
    unsafe {
        let sandbox_prototype = get_named(env, get_named(env, exports, c"Sandbox")?, c"prototype")?;
        define_method(env, sandbox_prototype, c"call", base_sandbox_call)?;
        define_method(env, exports, c"__rawFloor", raw_floor)?;

        let mut native = ptr::null_mut();
        sys::napi_create_object(env, &mut native);
        let functions: [(&CStr, RawCallback); _] = [
            (c"bufferCreate", buffer_create),
            (c"bufferPointer", buffer_pointer),
            (c"bufferStore", buffer_store),
            (c"bufferRead", buffer_read),
            (c"bufferMemory", buffer_memory),
            (c"bufferView", buffer_view),
            (c"bufferGrow", buffer_grow),
            (c"bufferMemorySize", buffer_memory_size),
            (c"bufferDisposed", buffer_disposed),
            (c"bufferDispose", buffer_dispose),
            (c"bufferSnapshot", buffer_snapshot),
            (c"bufferRestore", buffer_restore),
            (c"bufferReset", buffer_reset),
            (c"bufferInspect", buffer_inspect),
            (c"sandboxHandle", sandbox_handle),
            (c"sandboxCaller", sandbox_caller),
            (c"callExport", call_export),
            (c"callExport0", call_export_fixed::<1, 0>),
            (c"callExport1", call_export_fixed::<2, 1>),
            (c"callExport2", call_export_fixed::<3, 2>),
            (c"callExport3", call_export_fixed::<4, 3>),
            (c"callExport4", call_export_fixed::<5, 4>),
            (c"callAsyncExport", call_async_export),
            (c"callAsyncExport0", call_async_export_fixed::<1>),
            (c"callAsyncExport1", call_async_export_fixed::<2>),
            (c"callAsyncExport2", call_async_export_fixed::<3>),
            (c"callAsyncExport3", call_async_export_fixed::<4>),
            (c"callAsyncExport4", call_async_export_fixed::<5>),
            (c"sandboxImports", sandbox_imports),
        ];
        for (name, callback) in functions {
            define_method(env, native, name, callback)?;
        }

        // The WebAssembly JS API namespace's native side, for lib/webassembly (not a public API).
        let mut webassembly = ptr::null_mut();
        sys::napi_create_object(env, &mut webassembly);
        crate::js::webassembly::define_functions(env, webassembly)?;
        sys::napi_set_named_property(env, exports, c"__webassembly".as_ptr(), webassembly);

        // `lib/native.js` hands these to `lib/facade.js` (a file, so stack traces name it).
        match sys::napi_set_named_property(env, exports, c"__native".as_ptr(), native) {
            sys::Status::napi_ok => Ok(()),
            status => Err(napi::Error::from_reason(format!(
                "exporting the raw functions failed ({status})"
            ))),
        }
    }
}
