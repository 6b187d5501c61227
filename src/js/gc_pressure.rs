//! Telling V8 how much native memory a JS object holds, so the garbage collector runs when
//! sandboxes dropped without `dispose()` pile up (a sandbox's JS object is a few bytes; its store
//! and memory are tens of KiB V8 would otherwise not see).

use napi::{Env, sys};

/// Native memory held on behalf of one JS object; reported on creation, withdrawn on drop.
pub struct ExternalMemory {
    env: sys::napi_env,
    bytes: i64,
}

impl ExternalMemory {
    pub fn report(env: &Env, bytes: usize) -> Self {
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        let mut total = 0;
        // SAFETY: the live env of the current call; only a counter is adjusted.
        unsafe { sys::napi_adjust_external_memory(env.raw(), bytes, &mut total) };
        Self { env: env.raw(), bytes }
    }
}

impl Drop for ExternalMemory {
    fn drop(&mut self) {
        let mut total = 0;
        // SAFETY: dropped on the env's thread (by the object's finalizer or `dispose()`).
        unsafe { sys::napi_adjust_external_memory(self.env, -self.bytes, &mut total) };
    }
}
