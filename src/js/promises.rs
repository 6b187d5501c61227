//! Waiting for a JS Promise (any thenable) from native code: `then` calls a Rust callback with
//! its value or its rejection reason, on the JS thread, once.

use std::cell::RefCell;
use std::ffi::c_void;
use std::ptr;
use std::rc::Rc;

use napi::sys;

use crate::js::values::RawValue;

/// What to do when the thenable settles: `Ok(value)` or `Err(reason)`.
pub type Settle = Box<dyn FnOnce(sys::napi_env, Result<RawValue, RawValue>)>;

type SettleCell = RefCell<Option<Settle>>;

/// Whether `value` is an object or function with a callable `then`.
pub fn is_thenable(env: sys::napi_env, value: RawValue) -> bool {
    let mut kind = 0;
    // SAFETY: `value` belongs to `env`, on its thread.
    unsafe { sys::napi_typeof(env, value, &mut kind) };
    if kind != sys::ValueType::napi_object && kind != sys::ValueType::napi_function {
        return false;
    }
    then_function(env, value).is_some()
}

fn then_function(env: sys::napi_env, value: RawValue) -> Option<RawValue> {
    let mut then = ptr::null_mut();
    let mut kind = 0;
    // SAFETY: reads a property of an object of `env`; a throwing getter leaves an exception,
    // cleared below.
    let status = unsafe { sys::napi_get_named_property(env, value, c"then".as_ptr(), &mut then) };
    if status != sys::Status::napi_ok {
        let mut exception = ptr::null_mut();
        // SAFETY: clears what the getter threw.
        unsafe { sys::napi_get_and_clear_last_exception(env, &mut exception) };
        return None;
    }
    // SAFETY: as above.
    unsafe { sys::napi_typeof(env, then, &mut kind) };
    (kind == sys::ValueType::napi_function).then_some(then)
}

/// Calls `thenable.then(onFulfilled, onRejected)` with callbacks that run `settle` (once).
/// Returns `false` (and drops `settle`) if that could not be done.
pub fn then(env: sys::napi_env, thenable: RawValue, settle: Settle) -> bool {
    let Some(then) = then_function(env, thenable) else {
        return false;
    };
    let cell: Rc<SettleCell> = Rc::new(RefCell::new(Some(settle)));
    let mut callbacks = [ptr::null_mut(); 2];
    for (slot, (callback, name)) in callbacks.iter_mut().zip([
        (on_fulfilled as unsafe extern "C" fn(_, _) -> _, c"onFulfilled"),
        (on_rejected, c"onRejected"),
    ]) {
        let data = Rc::into_raw(Rc::clone(&cell)).cast_mut().cast::<c_void>();
        // SAFETY: the function owns one count of the cell, released by its finalizer.
        let created = unsafe {
            sys::napi_create_function(env, name.as_ptr(), -1, Some(callback), data, slot) == sys::Status::napi_ok
                && sys::napi_add_finalizer(env, *slot, data, Some(drop_cell), ptr::null_mut(), ptr::null_mut())
                    == sys::Status::napi_ok
        };
        if !created {
            // SAFETY: the count handed to the failed function.
            drop(unsafe { Rc::from_raw(data.cast::<SettleCell>()) });
            return false;
        }
    }
    let mut returned = ptr::null_mut();
    // SAFETY: calls `then` on the thenable with the two callbacks, all of `env`.
    let status = unsafe { sys::napi_call_function(env, thenable, then, 2, callbacks.as_ptr(), &mut returned) };
    if status != sys::Status::napi_ok {
        let mut exception = ptr::null_mut();
        // SAFETY: clears what `then` threw.
        unsafe { sys::napi_get_and_clear_last_exception(env, &mut exception) };
        return false;
    }
    true
}

unsafe extern "C" fn on_fulfilled(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY: called by Node-API with the data given at creation.
    unsafe { settled(env, info, true) }
}

unsafe extern "C" fn on_rejected(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY: as above.
    unsafe { settled(env, info, false) }
}

unsafe fn settled(env: sys::napi_env, info: sys::napi_callback_info, fulfilled: bool) -> sys::napi_value {
    let mut argc = 1usize;
    let mut argv = [ptr::null_mut(); 1];
    let mut data = ptr::null_mut();
    let mut undefined = ptr::null_mut();
    // SAFETY: the callback info of this call; creates a value in the live env.
    unsafe {
        sys::napi_get_cb_info(env, info, &mut argc, argv.as_mut_ptr(), ptr::null_mut(), &mut data);
        sys::napi_get_undefined(env, &mut undefined);
    }
    if data.is_null() {
        return undefined;
    }
    // SAFETY: `data` is a count of the cell, kept by this function's finalizer.
    let cell = unsafe { &*data.cast::<SettleCell>() };
    let Some(settle) = cell.try_borrow_mut().ok().and_then(|mut slot| slot.take()) else {
        return undefined;
    };
    let value = if argc >= 1 { argv[0] } else { undefined };
    let outcome = if fulfilled { Ok(value) } else { Err(value) };
    // A panic must not unwind into V8.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| settle(env, outcome)));
    undefined
}

unsafe extern "C" fn drop_cell(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    // SAFETY: one of the counts handed to the callbacks at creation.
    drop(unsafe { Rc::from_raw(data.cast::<SettleCell>()) });
}
