//! Telling V8 how much native memory a JS object holds, so the garbage collector runs when
//! sandboxes dropped without `dispose()` pile up (a sandbox's JS object is a few bytes; its store
//! and memory are tens of KiB V8 would otherwise not see).

use std::cell::Cell;

use napi::{Env, sys};

/// Native memory held on behalf of one JS object; reported on creation, withdrawn by `release()`
/// (at `dispose()`, so a create/dispose loop adds no pressure) or on drop.
pub struct ExternalMemory {
    env: sys::napi_env,
    bytes: Cell<i64>,
}

impl ExternalMemory {
    pub fn report(env: &Env, bytes: usize) -> Self {
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        let mut total = 0;
        // SAFETY: the live env of the current call; only a counter is adjusted.
        unsafe { sys::napi_adjust_external_memory(env.raw(), bytes, &mut total) };
        Self {
            env: env.raw(),
            bytes: Cell::new(bytes),
        }
    }

    /// Changes the report to `bytes` (the native memory held now).
    pub fn set(&self, bytes: usize) {
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        let change = bytes - self.bytes.replace(bytes);
        if change != 0 {
            let mut total = 0;
            // SAFETY: called on the env's thread; only a counter is adjusted.
            unsafe { sys::napi_adjust_external_memory(self.env, change, &mut total) };
        }
    }

    /// Withdraws the report now (once).
    pub fn release(&self) {
        let bytes = self.bytes.replace(0);
        if bytes != 0 {
            let mut total = 0;
            // SAFETY: called on the env's thread (by `dispose()` or the object's finalizer).
            unsafe { sys::napi_adjust_external_memory(self.env, -bytes, &mut total) };
        }
    }
}

impl Drop for ExternalMemory {
    fn drop(&mut self) {
        self.release();
    }
}

/// Bytes an external `ArrayBuffer` owns, with their report to V8.
struct ExternalBytes {
    _bytes: Vec<u8>,
    _report: ExternalMemory,
}

unsafe extern "C" fn release_bytes(_env: sys::napi_env, _data: *mut std::ffi::c_void, hint: *mut std::ffi::c_void) {
    // SAFETY: `hint` is the box `external_arraybuffer` gave V8, released once, here.
    drop(unsafe { Box::from_raw(hint.cast::<ExternalBytes>()) });
}

/// An `ArrayBuffer` whose memory is `bytes` itself (no copy), reported to V8 until it is
/// collected; a copy where Node forbids external buffers.
pub fn external_arraybuffer(env: sys::napi_env, mut bytes: Vec<u8>) -> crate::error::SandboxResult<sys::napi_value> {
    let data = bytes.as_mut_ptr();
    let length = bytes.len();
    let hint = Box::into_raw(Box::new(ExternalBytes {
        _report: ExternalMemory::report(&Env::from(env), length),
        _bytes: bytes,
    }));
    let mut buffer = std::ptr::null_mut();
    // SAFETY: `data` stays valid (the Vec inside `hint` is not touched) until V8 calls
    // `release_bytes`, which frees it.
    let status = unsafe {
        sys::napi_create_external_arraybuffer(env, data.cast(), length, Some(release_bytes), hint.cast(), &mut buffer)
    };
    if status == sys::Status::napi_ok {
        return Ok(buffer);
    }
    // SAFETY: V8 did not take the hint.
    let owned = unsafe { Box::from_raw(hint) };
    let mut copy = std::ptr::null_mut();
    // SAFETY: a new ArrayBuffer of `length` bytes in `env`, then filled.
    let status = unsafe { sys::napi_create_arraybuffer(env, length, &mut copy, &mut buffer) };
    if status != sys::Status::napi_ok {
        return Err(crate::error::SandboxError::Internal(format!("napi_create_arraybuffer failed ({status})")));
    }
    // SAFETY: `copy` points at `length` fresh bytes.
    unsafe { std::ptr::copy_nonoverlapping(owned._bytes.as_ptr(), copy.cast::<u8>(), length) };
    Ok(buffer)
}
