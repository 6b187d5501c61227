//! Zero-copy `Buffer` views of guest memory, and the bookkeeping that keeps them safe.
//!
//! A view is an external `Buffer` over the guest's bytes. Its finalizer owns a keep-alive (an
//! `Rc` of whatever owns the store), so the memory outlives every view even after the sandbox
//! object is collected. The registry remembers each view it made, so `dispose()` can detach them
//! all (length 0) before the memory is freed, and `memory()` can return the same view again
//! while the memory has not grown.

use std::any::Any;
use std::ffi::c_void;
use std::ptr;
use std::rc::Rc;

use napi::sys;

use crate::error::SandboxError;
use crate::sandbox::MemoryRegion;

/// What a view covers; each kind has one cached view at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViewKind {
    /// The guest's default linear memory, whole.
    Memory,
    /// A memory export named explicitly, whole.
    NamedMemory(String),
    /// The buffer guest's own 2-byte buffer inside linear memory.
    GuestBuffer,
}

/// Whatever must stay alive for a view's bytes to stay mapped.
pub type KeepAlive = Rc<dyn Any>;

struct CachedView {
    kind: ViewKind,
    region: MemoryRegion,
    /// A strong reference: the sandbox keeps its current views alive to hand them out again.
    reference: sys::napi_ref,
}

/// The views one sandbox has handed out.
#[derive(Default)]
pub struct ViewRegistry {
    current: Vec<CachedView>,
    /// Weak references to views replaced after growth; they still need detaching on dispose.
    retired: Vec<sys::napi_ref>,
}

impl ViewRegistry {
    /// Returns the view of `region`, reusing the cached one if it still covers exactly that.
    ///
    /// # Safety
    /// `env` must be the live env of the current call, and `region` must stay mapped for as long
    /// as `keep_alive` lives and the sandbox has not detached its views.
    pub unsafe fn view(
        &mut self,
        env: sys::napi_env,
        kind: ViewKind,
        region: MemoryRegion,
        keep_alive: &KeepAlive,
    ) -> Result<sys::napi_value, SandboxError> {
        if let Some(index) = self.current.iter().position(|view| view.kind == kind) {
            let cached = &self.current[index];
            if cached.region == region {
                // SAFETY: the reference belongs to this env and is strong, so the value is alive.
                let value = unsafe { reference_value(env, cached.reference) };
                if let Some(value) = value.filter(|&value| unsafe { is_attached(env, value, region.length) }) {
                    return Ok(value);
                }
            }
            let stale = self.current.swap_remove(index);
            // SAFETY: as above; a failed unref leaves a strong reference that only delays collection.
            unsafe { sys::napi_reference_unref(env, stale.reference, &mut 0) };
            self.retire(env, stale.reference);
        }
        // SAFETY: forwarded from this function's contract.
        let value = unsafe { new_view(env, region, keep_alive)? };
        let mut reference = ptr::null_mut();
        // SAFETY: `value` was just created in `env`.
        check(unsafe { sys::napi_create_reference(env, value, 1, &mut reference) })?;
        self.current.push(CachedView {
            kind,
            region,
            reference,
        });
        Ok(value)
    }

    /// Keeps a weak reference to a replaced view, first forgetting those already collected so
    /// the list stays as short as the number of old views JS still holds.
    fn retire(&mut self, env: sys::napi_env, reference: sys::napi_ref) {
        self.retired.retain(|&old| {
            // SAFETY: every retired reference belongs to this env.
            let alive = unsafe { reference_value(env, old) }.is_some();
            if !alive {
                unsafe { sys::napi_delete_reference(env, old) };
            }
            alive
        });
        self.retired.push(reference);
    }

    /// Detaches every view still attached (its length becomes 0) and forgets them all. Returns
    /// how many it detached: each of those no longer reaches guest memory, even though Node runs
    /// its finalizer (which drops its keep-alive) only on a later turn of the event loop.
    ///
    /// # Safety
    /// `env` must be the live env the views were made in.
    pub unsafe fn detach_all(&mut self, env: sys::napi_env) -> usize {
        let mut detached = 0;
        for reference in self.drain() {
            // SAFETY: the reference belongs to `env`.
            if let Some(view) = unsafe { reference_value(env, reference) }
                && unsafe { detach(env, view) }
            {
                detached += 1;
            }
            unsafe { sys::napi_delete_reference(env, reference) };
        }
        detached
    }

    /// Detaches the views that reach past the first `length` bytes of the memory at `base`
    /// (a restore made it smaller: those bytes are no longer mapped). Views within it, and views
    /// of other memories, keep working. Returns how many it detached.
    ///
    /// # Safety
    /// `env` must be the live env the views were made in.
    pub unsafe fn detach_beyond(&mut self, env: sys::napi_env, base: *mut u8, length: usize) -> usize {
        let mut detached = 0;
        let references = self
            .current
            .iter()
            .map(|view| view.reference)
            .chain(self.retired.iter().copied());
        for reference in references {
            // SAFETY: the reference belongs to `env`; its value is a view `new_view` made.
            let Some(view) = (unsafe { reference_value(env, reference) }) else {
                continue;
            };
            let (data, view_length) = unsafe { buffer_span(env, view) };
            let start = data as usize;
            let reaches_past = start >= base as usize
                && start.saturating_sub(base as usize).saturating_add(view_length) > length
                && start < (base as usize).saturating_add(crate::sandbox::MAX_WASM32_MEMORY_BYTES as usize);
            if reaches_past && unsafe { detach(env, view) } {
                detached += 1;
            }
        }
        detached
    }

    /// Forgets every view without detaching it: they keep the memory alive by themselves. Called
    /// when the sandbox object is collected.
    ///
    /// # Safety
    /// `env` must be the live env the views were made in.
    pub unsafe fn release(&mut self, env: sys::napi_env) {
        for reference in self.drain() {
            // SAFETY: the reference belongs to `env`.
            unsafe { sys::napi_delete_reference(env, reference) };
        }
    }

    fn drain(&mut self) -> Vec<sys::napi_ref> {
        let mut references: Vec<_> = self.current.drain(..).map(|view| view.reference).collect();
        references.append(&mut self.retired);
        references
    }
}

fn check(status: sys::napi_status) -> Result<(), SandboxError> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(SandboxError::Internal(format!(
            "Node-API call failed with status {status}"
        )))
    }
}

unsafe fn reference_value(env: sys::napi_env, reference: sys::napi_ref) -> Option<sys::napi_value> {
    let mut value = ptr::null_mut();
    let status = unsafe { sys::napi_get_reference_value(env, reference, &mut value) };
    (status == sys::Status::napi_ok && !value.is_null()).then_some(value)
}

/// Whether a cached view still has its bytes (JS may have detached or transferred its buffer).
unsafe fn is_attached(env: sys::napi_env, view: sys::napi_value, expected_length: usize) -> bool {
    let mut data = ptr::null_mut();
    let mut length = 0;
    let status = unsafe { sys::napi_get_buffer_info(env, view, &mut data, &mut length) };
    status == sys::Status::napi_ok && length == expected_length
}

/// Where a view's bytes start and how many there are (`(null, 0)` once detached).
unsafe fn buffer_span(env: sys::napi_env, view: sys::napi_value) -> (*mut u8, usize) {
    let mut data = ptr::null_mut();
    let mut length = 0;
    // SAFETY: `view` is a Buffer made in this env.
    let status = unsafe { sys::napi_get_buffer_info(env, view, &mut data, &mut length) };
    if status == sys::Status::napi_ok && !data.is_null() {
        (data.cast(), length)
    } else {
        (ptr::null_mut(), 0)
    }
}

/// Detaches an attached view; returns whether it was attached (and external) before.
unsafe fn detach(env: sys::napi_env, view: sys::napi_value) -> bool {
    let mut array_type = 0;
    let mut length = 0;
    let mut data = ptr::null_mut();
    let mut array_buffer = ptr::null_mut();
    let mut byte_offset = 0;
    // SAFETY: `view` is a Buffer (a Uint8Array) made by `new_view` in this env.
    let status = unsafe {
        sys::napi_get_typedarray_info(
            env,
            view,
            &mut array_type,
            &mut length,
            &mut data,
            &mut array_buffer,
            &mut byte_offset,
        )
    };
    // An empty view (zero-length memory) is a plain Buffer with nothing to detach.
    status == sys::Status::napi_ok
        && length > 0
        // SAFETY: external array buffers are detachable.
        && unsafe { sys::napi_detach_arraybuffer(env, array_buffer) } == sys::Status::napi_ok
}

/// Makes an external `Buffer` over `region` whose finalizer drops a clone of `keep_alive`.
unsafe fn new_view(
    env: sys::napi_env,
    region: MemoryRegion,
    keep_alive: &KeepAlive,
) -> Result<sys::napi_value, SandboxError> {
    let mut value = ptr::null_mut();
    if region.length == 0 {
        // A zero-length memory has no valid pointer to share: an empty Buffer shows the same bytes.
        let mut data = ptr::null_mut();
        check(unsafe { sys::napi_create_buffer(env, 0, &mut data, &mut value) })?;
        return Ok(value);
    }
    let hint = Box::into_raw(Box::new(Rc::clone(keep_alive)));
    // SAFETY: `region` stays mapped while `keep_alive` lives (the caller's contract), and the
    // finalizer is what drops this clone of it, after V8 has let go of the bytes.
    let status = unsafe {
        sys::napi_create_external_buffer(
            env,
            region.length,
            region.base.cast::<c_void>(),
            Some(release_keep_alive),
            hint.cast::<c_void>(),
            &mut value,
        )
    };
    if status != sys::Status::napi_ok {
        // SAFETY: Node-API did not take the hint, so it is still ours to drop.
        drop(unsafe { Box::from_raw(hint) });
        return Err(match status {
            sys::Status::napi_no_external_buffers_allowed => SandboxError::ExternalBuffersForbidden,
            _ if region.length > u32::MAX as usize => SandboxError::ViewTooLarge { length: region.length },
            _ => SandboxError::Internal(format!(
                "could not create a view of {} bytes (Node-API status {status})",
                region.length
            )),
        });
    }
    Ok(value)
}

unsafe extern "C" fn release_keep_alive(_env: sys::napi_env, _data: *mut c_void, hint: *mut c_void) {
    // SAFETY: `hint` is the `Box<KeepAlive>` leaked in `new_view`, finalized exactly once.
    drop(unsafe { Box::from_raw(hint.cast::<KeepAlive>()) });
}

/// Whether this runtime lets Node-API wrap outside memory in a `Buffer` (Electron's memory cage
/// does not): probed once with a one-byte external buffer over a static byte.
///
/// # Safety
/// `env` must be the live env of the current call.
pub unsafe fn external_buffers_allowed(env: sys::napi_env) -> bool {
    static PROBE_BYTE: u8 = 0;
    let mut value = ptr::null_mut();
    // SAFETY: the static byte outlives any buffer; no finalizer is needed for it.
    let status = unsafe {
        sys::napi_create_external_buffer(
            env,
            1,
            ptr::from_ref(&PROBE_BYTE).cast_mut().cast(),
            None,
            ptr::null_mut(),
            &mut value,
        )
    };
    status == sys::Status::napi_ok
}
