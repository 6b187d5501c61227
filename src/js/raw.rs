//! Methods installed as raw Node-API callbacks when the addon loads.
//!
//! napi-rs methods take a fixed number of arguments and spend most of a call's time on their
//! generic dispatch (borrow tracking, references to `this`, conversions). The hot methods, and
//! the variadic `Sandbox.prototype.call`, are therefore raw callbacks placed on the prototypes
//! over the generated ones; the `#[napi]` methods stay as their typed declarations and share the
//! same implementation. Each raw method checks its receiver's class by type tag before use.

use std::ffi::CStr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;

use napi::bindgen_prelude::{JsValue, JsValuesTuple, Object, TypeTag};
use napi::{Env, Result, sys};
use napi_derive::napi;

use crate::error::SandboxError;
use crate::js::buffer_sandbox::BufferSandbox;
use crate::js::errors::throw;
use crate::js::sandbox::Sandbox;
use crate::js::values::{RawValue, unwrap_class};

/// The most arguments a fixed-arity raw method reads.
const MAX_FIXED_ARGS: usize = 2;

/// Runs a raw method body: reads `this` and the arguments, checks the receiver is a `T`, and
/// turns errors and panics into JS exceptions.
///
/// # Safety
/// `env` and `info` must be the ones Node-API passed to the running callback.
unsafe fn run_method<T: TypeTag + 'static>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
    class_name: &str,
    method: &str,
    body: impl FnOnce(&Env, &T, &[RawValue]) -> Result<RawValue>,
) -> RawValue {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let wrapped_env = Env::from(env);
        let mut argc = MAX_FIXED_ARGS;
        let mut args = [ptr::null_mut(); MAX_FIXED_ARGS];
        let mut this = ptr::null_mut();
        // SAFETY: `info` is this callback's; `args` has room for `argc` values.
        unsafe { sys::napi_get_cb_info(env, info, &mut argc, args.as_mut_ptr(), &mut this, ptr::null_mut()) };
        // SAFETY: `this` belongs to this env and call; the reference does not outlive it.
        let Some(receiver) = (unsafe { unwrap_class::<T>(&wrapped_env, this) }) else {
            return Err(wrong_receiver(&wrapped_env, class_name, method));
        };
        // Missing arguments read as `undefined`, as in any JS function.
        let present = argc.min(MAX_FIXED_ARGS);
        body(&wrapped_env, receiver, &args[..present])
    }));
    // SAFETY: forwarded from this function's contract.
    unsafe { finish(env, outcome) }
}

fn wrong_receiver(env: &Env, class_name: &str, method: &str) -> napi::Error {
    throw(
        env,
        &SandboxError::WrongReceiver(format!(
            "{class_name}.prototype.{method} was called on something that is not a {class_name}"
        )),
    )
}

/// Returns the value, or throws the error (unless already thrown) and returns null.
unsafe fn finish(env: sys::napi_env, outcome: std::thread::Result<Result<RawValue>>) -> RawValue {
    match outcome {
        Ok(Ok(value)) => value,
        Ok(Err(error)) => {
            if error.status != napi::Status::PendingException {
                // SAFETY: throwing in the env of the running callback.
                unsafe { napi::JsError::from(error).throw_into(env) };
            }
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

/// The `undefined` value, or `undefined` argument placeholder.
pub fn undefined(env: &Env) -> RawValue {
    let mut value = ptr::null_mut();
    // SAFETY: the live env of the running callback.
    unsafe { sys::napi_get_undefined(env.raw(), &mut value) };
    value
}

fn arg(env: &Env, args: &[RawValue], index: usize) -> RawValue {
    args.get(index).copied().unwrap_or_else(|| undefined(env))
}

fn number(env: &Env, value: f64) -> RawValue {
    let mut result = ptr::null_mut();
    // SAFETY: the live env of the running callback.
    unsafe { sys::napi_create_double(env.raw(), value, &mut result) };
    result
}

unsafe extern "C" fn buffer_store(env: sys::napi_env, info: sys::napi_callback_info) -> RawValue {
    // SAFETY: called by Node-API with this callback's env and info.
    unsafe {
        run_method::<BufferSandbox>(
            env,
            info,
            "BufferSandbox",
            "storeValueInWasmMemoryBufferIndexZero",
            |env, sandbox, args| sandbox.store_raw(env, arg(env, args, 0)).map(|()| undefined(env)),
        )
    }
}

unsafe extern "C" fn buffer_read(env: sys::napi_env, info: sys::napi_callback_info) -> RawValue {
    // SAFETY: called by Node-API with this callback's env and info.
    unsafe {
        run_method::<BufferSandbox>(
            env,
            info,
            "BufferSandbox",
            "readWasmMemoryBufferAndReturnIndexOne",
            |env, sandbox, _| {
                sandbox
                    .read_wasm_memory_buffer_and_return_index_one(env)
                    .map(|byte| number(env, f64::from(byte)))
            },
        )
    }
}

unsafe extern "C" fn buffer_pointer(env: sys::napi_env, info: sys::napi_callback_info) -> RawValue {
    // SAFETY: called by Node-API with this callback's env and info.
    unsafe {
        run_method::<BufferSandbox>(
            env,
            info,
            "BufferSandbox",
            "getWasmMemoryBufferPointer",
            |env, sandbox, _| {
                sandbox
                    .get_wasm_memory_buffer_pointer(env)
                    .map(|pointer| number(env, f64::from(pointer)))
            },
        )
    }
}

unsafe extern "C" fn buffer_memory(env: sys::napi_env, info: sys::napi_callback_info) -> RawValue {
    // SAFETY: called by Node-API with this callback's env and info.
    unsafe {
        run_method::<BufferSandbox>(env, info, "BufferSandbox", "memory", |env, sandbox, _| {
            sandbox.memory_raw(env)
        })
    }
}

unsafe extern "C" fn sandbox_call(env: sys::napi_env, info: sys::napi_callback_info) -> RawValue {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let wrapped_env = Env::from(env);
        let mut argc = 0usize;
        let mut this = ptr::null_mut();
        // SAFETY: `info` is this callback's; first ask only for the count and `this`.
        unsafe { sys::napi_get_cb_info(env, info, &mut argc, ptr::null_mut(), &mut this, ptr::null_mut()) };
        let mut args = [ptr::null_mut(); 8];
        let mut heap_args = Vec::new();
        let slots: &mut [RawValue] = if argc <= args.len() {
            &mut args[..argc]
        } else {
            heap_args.resize(argc, ptr::null_mut());
            &mut heap_args
        };
        // SAFETY: `slots` has room for `argc` values.
        unsafe { sys::napi_get_cb_info(env, info, &mut argc, slots.as_mut_ptr(), &mut this, ptr::null_mut()) };
        // SAFETY: `this` belongs to this env and call.
        let Some(sandbox) = (unsafe { unwrap_class::<Sandbox>(&wrapped_env, this) }) else {
            return Err(wrong_receiver(&wrapped_env, "Sandbox", "call"));
        };
        sandbox.call_with(&wrapped_env, slots)
    }));
    // SAFETY: called by Node-API with this callback's env.
    unsafe { finish(env, outcome) }
}

/// An empty raw Node-API function: the floor the benchmark compares against.
unsafe extern "C" fn raw_floor(env: sys::napi_env, _info: sys::napi_callback_info) -> RawValue {
    undefined(&Env::from(env))
}

/// An empty napi-rs function: the other floor the benchmark compares against.
#[napi(js_name = "__napiFloor", skip_typescript)]
pub fn napi_floor() {}

type RawCallback = unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> RawValue;

/// Defines `target[name] = callback` as a method (writable, configurable, not enumerable).
unsafe fn define_method(env: sys::napi_env, target: RawValue, name: &CStr, callback: RawCallback) -> sys::napi_status {
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
    unsafe { sys::napi_define_properties(env, target, 1, &descriptor) }
}

unsafe fn prototype_of(env: sys::napi_env, exports: RawValue, class: &CStr) -> Option<RawValue> {
    let (mut constructor, mut prototype) = (ptr::null_mut(), ptr::null_mut());
    // SAFETY: `exports` is the module's exports object.
    unsafe {
        (sys::napi_get_named_property(env, exports, class.as_ptr(), &mut constructor) == sys::Status::napi_ok
            && sys::napi_get_named_property(env, constructor, c"prototype".as_ptr(), &mut prototype)
                == sys::Status::napi_ok)
            .then_some(prototype)
    }
}

/// Installs the raw methods once napi-rs has registered the classes.
#[napi(module_exports)]
#[cfg_attr(test, allow(dead_code))] // napi-rs registers module hooks only outside `cfg(test)`.
pub fn install_raw_methods(exports: Object) -> Result<()> {
    let env = exports.env();
    let exports = exports.raw();
    let methods: [(&CStr, &[(&CStr, RawCallback)]); 2] = [
        (
            c"BufferSandbox",
            &[
                (c"storeValueInWasmMemoryBufferIndexZero", buffer_store),
                (c"readWasmMemoryBufferAndReturnIndexOne", buffer_read),
                (c"getWasmMemoryBufferPointer", buffer_pointer),
                (c"memory", buffer_memory),
            ],
        ),
        (c"Sandbox", &[(c"call", sandbox_call)]),
    ];
    for (class, class_methods) in methods {
        // SAFETY: module initialization on the env's thread.
        let prototype = unsafe { prototype_of(env, exports, class) }
            .ok_or_else(|| napi::Error::from_reason(format!("{class:?} is not exported")))?;
        for &(name, callback) in class_methods {
            // SAFETY: as above.
            let status = unsafe { define_method(env, prototype, name, callback) };
            if status != sys::Status::napi_ok {
                return Err(napi::Error::from_reason(format!(
                    "installing {class:?}.{name:?} failed ({status})"
                )));
            }
        }
    }
    // SAFETY: as above.
    match unsafe { define_method(env, exports, c"__rawFloor", raw_floor) } {
        sys::Status::napi_ok => Ok(()),
        status => Err(napi::Error::from_reason(format!(
            "installing __rawFloor failed ({status})"
        ))),
    }
}
