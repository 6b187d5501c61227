//! How much native stack the current thread has left, so a wasm call is never started where it
//! could run off the end of the thread's stack.
//!
//! wasmtime lets a guest use up to `MAX_WASM_STACK` below the point where it is entered, and
//! traps with a stack overflow there. A Node worker can have a much smaller stack
//! (`resourceLimits.stackSizeMb`), and JS may call in from deep recursion: entering wasm then
//! would overflow the thread's real stack, a crash. Each outermost call checks first.

use std::cell::Cell;

use crate::error::{SandboxError, SandboxResult, TrapKind};

/// The most native stack a guest may use below its entry point (wasmtime's `max_wasm_stack`):
/// half its default, so that a Node worker with `resourceLimits.stackSizeMb: 0.5` can still run
/// guests.
pub const MAX_WASM_STACK: usize = 256 * 1024;

/// Stack kept free below the guest's allowance for host frames (JS imports, signal handling).
const HOST_MARGIN: usize = 64 * 1024;

thread_local! {
    /// The lowest address of this thread's stack (it grows down), or 0 if unknown.
    static STACK_BOTTOM: Cell<Option<usize>> = const { Cell::new(None) };
}

/// The lowest address of the current thread's stack, or 0 if unknown (then no check is made).
/// Looked up once per thread (a `/proc` read on the main thread) and kept by each sandbox: a
/// sandbox only ever runs on the thread that made it, and a TLS access per call costs more than
/// the check itself in a shared library.
pub fn thread_stack_bottom() -> usize {
    STACK_BOTTOM.with(|bottom| {
        if let Some(known) = bottom.get() {
            return known;
        }
        let found = query_stack_bottom().unwrap_or(0);
        bottom.set(Some(found));
        found
    })
}

#[cfg(target_os = "linux")]
fn query_stack_bottom() -> Option<usize> {
    // SAFETY: plain libc calls on an attribute object initialised by `pthread_getattr_np` and
    // destroyed before returning.
    unsafe {
        let mut attributes: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attributes) != 0 {
            return None;
        }
        let mut address = std::ptr::null_mut();
        let mut size = 0;
        let status = libc::pthread_attr_getstack(&attributes, &mut address, &mut size);
        libc::pthread_attr_destroy(&mut attributes);
        (status == 0).then_some(address as usize)
    }
}

#[cfg(not(target_os = "linux"))]
fn query_stack_bottom() -> Option<usize> {
    None
}

/// Fails with a `stack_overflow` trap, before anything runs, if the current thread (whose stack
/// ends at `bottom`, from `thread_stack_bottom`) has too little stack left for a guest to use its
/// whole allowance.
#[inline]
pub fn ensure_room_for_wasm(bottom: usize) -> SandboxResult<()> {
    if bottom == 0 {
        return Ok(());
    }
    let marker = 0u8;
    let here = std::ptr::from_ref(&marker) as usize;
    let left = here.saturating_sub(bottom);
    if left >= MAX_WASM_STACK + HOST_MARGIN {
        return Ok(());
    }
    Err(SandboxError::Trap {
        kind: TrapKind::StackOverflow,
        message: format!(
            "call stack exhausted: this thread has {} KiB of native stack left, and a wasm call may \
             use {} KiB (raise the worker's resourceLimits.stackSizeMb, or call from less deep)",
            left / 1024,
            (MAX_WASM_STACK + HOST_MARGIN) / 1024
        ),
        backtrace: None,
    })
}
