//! The single place where a core `SandboxError` becomes a thrown JS error.

use std::ffi::c_char;
use std::ptr;

use napi::{Env, Status, sys};

use crate::error::{Backtrace, SandboxError};

/// Which JS constructor an error is thrown as.
enum JsErrorClass {
    Error,
    TypeError,
    RangeError,
}

fn class_of(error: &SandboxError) -> JsErrorClass {
    match error {
        SandboxError::InvalidArgType(_) | SandboxError::InvalidArgValue(_) => JsErrorClass::TypeError,
        SandboxError::OutOfRange(_) | SandboxError::ViewTooLarge { .. } => JsErrorClass::RangeError,
        SandboxError::WrongReceiver(_) | SandboxError::InvalidState(_) => JsErrorClass::TypeError,
        _ => JsErrorClass::Error,
    }
}

/// Converts core results into napi results, throwing the JS error on the way.
pub trait OrThrow<T> {
    fn or_throw(self, env: &Env) -> napi::Result<T>;
}

impl<T> OrThrow<T> for Result<T, SandboxError> {
    fn or_throw(self, env: &Env) -> napi::Result<T> {
        self.map_err(|error| throw(env, &error))
    }
}

/// Makes `error` the pending JS exception, unless it says one already is (see `throw`).
pub fn raise(env: sys::napi_env, error: napi::Error) {
    if error.status != Status::PendingException {
        // SAFETY: throwing in the env of the running callback.
        unsafe { napi::JsError::from(error).throw_into(env) };
    }
}

/// Throws `error` as a JS error with `code` (and, for traps, `kind` and `wasmBacktrace`), and
/// returns the napi error that tells napi-rs an exception is already pending.
pub fn throw(env: &Env, error: &SandboxError) -> napi::Error {
    throw_with_cause(env, error, None)
}

/// `throw`, with `cause` set on the JS error (the exception a JS import threw).
pub fn throw_with_cause(env: &Env, error: &SandboxError, cause: Option<sys::napi_value>) -> napi::Error {
    let raw_env = env.raw();
    // SAFETY: `raw_env` is the live env of the current call; every value is created in it.
    let thrown = unsafe {
        error_value(raw_env, error, cause)
            .is_some_and(|js_error| sys::napi_throw(raw_env, js_error) == sys::Status::napi_ok)
    };
    if thrown {
        napi::Error::from_status(Status::PendingException)
    } else {
        // The env could not build an error object (it is shutting down): let napi-rs try its own.
        napi::Error::new(Status::GenericFailure, format!("{}: {error}", error.code()))
    }
}

/// The JS error for `error` (with `cause` if given), not thrown: for rejecting a Promise.
///
/// # Safety
/// `env` must be the live env of the current thread, inside a handle scope.
pub unsafe fn error_value(
    env: sys::napi_env,
    error: &SandboxError,
    cause: Option<sys::napi_value>,
) -> Option<sys::napi_value> {
    // SAFETY: forwarded from the caller.
    let js_error = unsafe { build_js_error(env, error)? };
    if let Some(cause) = cause {
        // SAFETY: as above.
        unsafe { sys::napi_set_named_property(env, js_error, c"cause".as_ptr(), cause) };
    }
    Some(js_error)
}

/// The JS error for `error` as a napi error that carries it (to reject a promise with): the
/// same `code` and class as a thrown one.
pub fn rejection(env: &Env, error: &SandboxError) -> napi::Error {
    // SAFETY: `env` is the live env of the current callback; the value is created in it.
    match unsafe { build_js_error(env.raw(), error) } {
        Some(value) => {
            // SAFETY: just created in this env.
            let value = unsafe { napi::bindgen_prelude::Unknown::from_raw_unchecked(env.raw(), value) };
            napi::Error::from_unknown_without_coercion(value)
        }
        None => napi::Error::new(Status::GenericFailure, format!("{}: {error}", error.code())),
    }
}

unsafe fn build_js_error(env: sys::napi_env, error: &SandboxError) -> Option<sys::napi_value> {
    let code = unsafe { js_string(env, error.code())? };
    let message = unsafe { js_string(env, &error.to_string())? };
    let create = match class_of(error) {
        JsErrorClass::Error => sys::napi_create_error,
        JsErrorClass::TypeError => sys::napi_create_type_error,
        JsErrorClass::RangeError => sys::napi_create_range_error,
    };
    let mut js_error = ptr::null_mut();
    if unsafe { create(env, code, message, &mut js_error) } != sys::Status::napi_ok {
        return None;
    }
    if let SandboxError::Exit(code) = error {
        let mut value = ptr::null_mut();
        unsafe {
            if sys::napi_create_uint32(env, *code, &mut value) == sys::Status::napi_ok {
                sys::napi_set_named_property(env, js_error, c"exitCode".as_ptr(), value);
            }
        }
    }
    if let SandboxError::Trap { kind, backtrace, .. } = error {
        unsafe {
            set_string(env, js_error, c"kind", kind.as_str());
            if let Some(backtrace) = backtrace {
                set_string(env, js_error, c"wasmBacktrace", &backtrace.text);
                set_frames(env, js_error, backtrace);
                if backtrace.has_source_lines() {
                    add_to_stack(env, js_error, backtrace);
                }
            }
        }
    }
    Some(js_error)
}

/// `error.wasmFrames`: the backtrace as data, innermost first.
unsafe fn set_frames(env: sys::napi_env, error: sys::napi_value, backtrace: &Backtrace) {
    let mut array = ptr::null_mut();
    if unsafe { sys::napi_create_array_with_length(env, backtrace.frames.len(), &mut array) } != sys::Status::napi_ok {
        return;
    }
    for (index, frame) in backtrace.frames.iter().enumerate() {
        let mut object = ptr::null_mut();
        unsafe {
            sys::napi_create_object(env, &mut object);
            set_optional_string(env, object, c"function", frame.function.as_deref());
            set_optional_string(env, object, c"module", frame.module.as_deref());
            set_optional_number(env, object, c"functionIndex", Some(f64::from(frame.func_index)));
            set_optional_number(env, object, c"offset", frame.offset.map(|offset| offset as f64));
            set_optional_string(env, object, c"file", frame.file.as_deref());
            set_optional_number(env, object, c"line", frame.line.map(f64::from));
            set_optional_number(env, object, c"column", frame.column.map(f64::from));
            sys::napi_set_element(env, array, index as u32, object);
        }
    }
    unsafe { sys::napi_set_named_property(env, error, c"wasmFrames".as_ptr(), array) };
}

/// Puts the wasm frames into `error.stack`, above the JS frames, as V8 writes frames:
/// `at function (file:line:column)`, or `at function (wasm-function[index]:0xoffset)` for a
/// frame without a source location.
unsafe fn add_to_stack(env: sys::napi_env, error: sys::napi_value, backtrace: &Backtrace) {
    let mut stack = ptr::null_mut();
    let mut message = ptr::null_mut();
    let Some(stack) = (unsafe {
        (sys::napi_get_named_property(env, error, c"stack".as_ptr(), &mut stack) == sys::Status::napi_ok)
            .then(|| read_string(env, stack))
            .flatten()
    }) else {
        return;
    };
    let Some(message) = (unsafe {
        (sys::napi_get_named_property(env, error, c"message".as_ptr(), &mut message) == sys::Status::napi_ok)
            .then(|| read_string(env, message))
            .flatten()
    }) else {
        return;
    };
    // The stack starts with `Error: message` (the message may span lines); the frames follow.
    let header = format!("Error: {message}");
    let Some(rest) = stack.strip_prefix(&header) else {
        return;
    };
    let mut frames = String::new();
    for frame in &backtrace.frames {
        let function = frame
            .function
            .clone()
            .unwrap_or_else(|| format!("wasm-function[{}]", frame.func_index));
        let place = match (&frame.file, frame.line) {
            (Some(file), Some(line)) => format!("{file}:{line}:{}", frame.column.unwrap_or(0)),
            (Some(file), None) => file.clone(),
            _ => format!(
                "wasm-function[{}]:0x{:x}",
                frame.func_index,
                frame.offset.unwrap_or_default()
            ),
        };
        frames.push_str(&format!("\n    at {function} ({place})"));
    }
    unsafe { set_string(env, error, c"stack", &format!("{header}{frames}{rest}")) };
}

unsafe fn read_string(env: sys::napi_env, value: sys::napi_value) -> Option<String> {
    let mut length = 0;
    if unsafe { sys::napi_get_value_string_utf8(env, value, ptr::null_mut(), 0, &mut length) } != sys::Status::napi_ok {
        return None;
    }
    let mut buffer = vec![0u8; length + 1];
    let mut written = 0;
    unsafe { sys::napi_get_value_string_utf8(env, value, buffer.as_mut_ptr().cast(), buffer.len(), &mut written) };
    buffer.truncate(written);
    String::from_utf8(buffer).ok()
}

unsafe fn set_optional_string(env: sys::napi_env, object: sys::napi_value, key: &std::ffi::CStr, text: Option<&str>) {
    match text {
        Some(text) => unsafe { set_string(env, object, key, text) },
        None => unsafe { set_null(env, object, key) },
    }
}

unsafe fn set_optional_number(env: sys::napi_env, object: sys::napi_value, key: &std::ffi::CStr, number: Option<f64>) {
    match number {
        Some(number) => {
            let mut value = ptr::null_mut();
            unsafe {
                sys::napi_create_double(env, number, &mut value);
                sys::napi_set_named_property(env, object, key.as_ptr(), value);
            }
        }
        None => unsafe { set_null(env, object, key) },
    }
}

unsafe fn set_null(env: sys::napi_env, object: sys::napi_value, key: &std::ffi::CStr) {
    let mut null = ptr::null_mut();
    unsafe {
        sys::napi_get_null(env, &mut null);
        sys::napi_set_named_property(env, object, key.as_ptr(), null);
    }
}

unsafe fn js_string(env: sys::napi_env, text: &str) -> Option<sys::napi_value> {
    let mut value = ptr::null_mut();
    let status =
        unsafe { sys::napi_create_string_utf8(env, text.as_ptr().cast::<c_char>(), text.len() as isize, &mut value) };
    (status == sys::Status::napi_ok).then_some(value)
}

/// Best effort: an error still reaches JS without an extra property if setting it fails.
unsafe fn set_string(env: sys::napi_env, object: sys::napi_value, key: &std::ffi::CStr, text: &str) {
    if let Some(value) = unsafe { js_string(env, text) } {
        unsafe { sys::napi_set_named_property(env, object, key.as_ptr(), value) };
    }
}
