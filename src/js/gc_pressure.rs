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
