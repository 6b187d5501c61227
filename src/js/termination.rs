//! Stopping a guest whose worker thread is being terminated.
//!
//! `worker.terminate()` asks V8 to stop running JS on the worker, but a guest busy in wasm never
//! returns to V8, so the worker (and `terminate()`'s promise) would hang. A sandbox made in a
//! worker therefore gets a stop probe: while its guest runs, every epoch tick wasmtime asks the
//! probe, which calls an empty JS function; V8 refuses once the thread is terminating, and the
//! guest is stopped.

use std::ptr;

use napi::{Env, sys};

use crate::js::imports::SendlessRef;
use crate::sandbox::StopProbe;

/// A probe for sandboxes made on a worker thread; `None` on the main thread.
pub fn stop_probe(env: &Env) -> Option<StopProbe> {
    if !on_worker_thread() {
        return None;
    }
    let mut function = ptr::null_mut();
    // SAFETY: creating a function in the live env of the current call.
    let status = unsafe {
        sys::napi_create_function(
            env.raw(),
            c"probe".as_ptr(),
            5,
            Some(empty),
            ptr::null_mut(),
            &mut function,
        )
    };
    if status != sys::Status::napi_ok {
        return None;
    }
    // SAFETY: `function` belongs to this env; the probe lives in a store used on this thread only.
    let function = unsafe { SendlessRef::new(env.raw(), function) }?;
    let env = env.raw();
    Some(Box::new(move || {
        let mut scope = ptr::null_mut();
        // SAFETY: called by wasmtime on the env's thread while its guest runs inside a JS call.
        if unsafe { sys::napi_open_handle_scope(env, &mut scope) } != sys::Status::napi_ok {
            return true;
        }
        let Some(value) = function.value() else {
            // SAFETY: closes the scope opened above.
            unsafe { sys::napi_close_handle_scope(env, scope) };
            return true;
        };
        let (mut receiver, mut result) = (ptr::null_mut(), ptr::null_mut());
        // SAFETY: values of this env, inside the open scope.
        let status = unsafe {
            sys::napi_get_undefined(env, &mut receiver);
            sys::napi_call_function(env, receiver, value, 0, ptr::null(), &mut result)
        };
        // SAFETY: closes the scope opened above.
        unsafe { sys::napi_close_handle_scope(env, scope) };
        status != sys::Status::napi_ok
    }))
}

unsafe extern "C" fn empty(_env: sys::napi_env, _info: sys::napi_callback_info) -> sys::napi_value {
    ptr::null_mut()
}

#[cfg(target_os = "linux")]
fn on_worker_thread() -> bool {
    // SAFETY: plain system calls without arguments. The main thread's id is the process id.
    unsafe { libc::gettid() != libc::getpid() }
}

#[cfg(not(target_os = "linux"))]
fn on_worker_thread() -> bool {
    false
}
