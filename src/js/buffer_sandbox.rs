//! `BufferSandbox`: the tutorial's guest as a JS class.
//!
//! `BufferSandboxState` holds everything; the `#[napi]` class declares the TypeScript API over
//! it, and the JS facade (`facade.js`, through `raw.rs`) is what the package exports: it owns a
//! state directly through an External, so construction skips napi-rs's object wrapping and every
//! call skips the lookup of `this`.

use std::cell::RefCell;
use std::rc::Rc;

use napi::bindgen_prelude::{JsValue, ObjectFinalize, Unknown};
use napi::{Env, Result};
use napi_derive::napi;

use crate::buffer_guest::{BUFFER_SIZE, BufferGuest};
use crate::error::{SandboxError, SandboxResult, alive};
use crate::js::errors::OrThrow;
use crate::js::snapshot::Snapshot;
use crate::js::values::{RawValue, describe, integer_in_range, unwrap_class};
use crate::js::views::{KeepAlive, ViewKind, ViewRegistry};
use crate::sandbox::{MemoryRegion, WASM_PAGE_SIZE};

/// The guest, shared with every view handed out: each view's finalizer holds an `Rc`, so the
/// memory outlives the sandbox object and lives until no view can reach it. `dispose()` frees
/// it at once when it can prove no view still reaches it.
type SharedGuest = Rc<BufferGuest>;

/// One buffer sandbox: its guest (until disposed) and the views it handed out.
pub struct BufferSandboxState {
    /// `None` once disposed.
    guest: RefCell<Option<SharedGuest>>,
    views: RefCell<ViewRegistry>,
}

impl BufferSandboxState {
    // No native-memory report to V8 here (unlike `Sandbox`): it costs about a fifth of a
    // construction, and a pool slot is small and capped; `dispose()` frees it at once anyway.
    pub fn new() -> SandboxResult<Self> {
        Ok(Self {
            guest: RefCell::new(Some(Rc::new(BufferGuest::new()?))),
            views: RefCell::new(ViewRegistry::default()),
        })
    }

    fn with_guest<T>(&self, env: &Env, action: impl FnOnce(&SharedGuest) -> SandboxResult<T>) -> Result<T> {
        let guest = self.guest.borrow();
        let guest = alive(guest.as_ref()).or_throw(env)?;
        action(guest).or_throw(env)
    }

    pub fn pointer(&self, env: &Env) -> Result<u32> {
        self.with_guest(env, |guest| guest.buffer_pointer())
    }

    /// `storeValueInWasmMemoryBufferIndexZero` on a raw argument. napi-rs's integer conversion
    /// would wrap 256 to 0, so the number is read raw and checked.
    pub fn store(&self, env: &Env, value: RawValue) -> Result<()> {
        let mut number = f64::NAN;
        // SAFETY: `value` belongs to this env; a non-number leaves `number` NaN.
        unsafe { napi::sys::napi_get_value_double(env.raw(), value, &mut number) };
        // `as u8` saturates and maps NaN to 0, so the round trip holds for exactly 0..=255
        // (and -0); cheaper than `fract()`, which is a libm call.
        let byte = if f64::from(number as u8) == number {
            number as u8
        } else {
            // SAFETY: `value` belongs to this env and call.
            let value = unsafe { Unknown::from_raw_unchecked(env.raw(), value) };
            integer_in_range(env, &value, "value", 0.0, 255.0).or_throw(env)? as u8
        };
        self.with_guest(env, |guest| guest.store_index_zero(byte))
    }

    pub fn read(&self, env: &Env) -> Result<u32> {
        self.with_guest(env, |guest| guest.read_index_one().map(u32::from))
    }

    pub fn memory(&self, env: &Env) -> Result<RawValue> {
        self.view(env, ViewKind::Memory, BufferGuest::memory_region)
    }

    pub fn buffer(&self, env: &Env) -> Result<RawValue> {
        self.view(env, ViewKind::GuestBuffer, BufferGuest::buffer_region)
    }

    fn view(
        &self,
        env: &Env,
        kind: ViewKind,
        region: impl FnOnce(&BufferGuest) -> SandboxResult<MemoryRegion>,
    ) -> Result<RawValue> {
        self.with_guest(env, |guest| {
            let region = region(guest)?;
            let keep_alive: KeepAlive = guest.clone();
            // SAFETY: `region` lies in the guest's memory, which never moves and stays mapped
            // while the guest's store lives; every view holds an `Rc` of the guest, and
            // `dispose()` frees the store early only after detaching every view that holds one.
            unsafe { self.views.borrow_mut().view(env.raw(), kind, region, &keep_alive) }
        })
    }

    pub fn grow(&self, env: &Env, pages: RawValue) -> Result<f64> {
        // SAFETY: `pages` belongs to this env and call.
        let pages = unsafe { Unknown::from_raw_unchecked(env.raw(), pages) };
        let pages = integer_in_range(env, &pages, "pages", 0.0, 65_536.0).or_throw(env)? as u64;
        self.with_guest(env, |guest| guest.grow(pages))
            .map(|previous| previous as f64)
    }

    pub fn memory_size(&self, env: &Env) -> Result<f64> {
        self.with_guest(env, |guest| guest.memory_size())
            .map(|bytes| bytes as f64)
    }

    pub fn disposed(&self) -> bool {
        self.guest.borrow().is_none()
    }

    pub fn snapshot(&self, env: &Env) -> Result<Snapshot> {
        self.with_guest(env, |guest| guest.snapshot())
            .map(|state| Snapshot::new(Rc::new(state)))
    }

    pub fn restore(&self, env: &Env, snapshot: RawValue) -> Result<()> {
        // SAFETY: the value belongs to this env and call.
        let Some(snapshot) = (unsafe { unwrap_class::<Snapshot>(env, snapshot) }) else {
            // SAFETY: as above.
            let value = unsafe { Unknown::from_raw_unchecked(env.raw(), snapshot) };
            return Err(SandboxError::InvalidArgType(format!(
                "The \"snapshot\" argument must be a Snapshot. Received {}",
                describe(env, &value)
            )))
            .or_throw(env);
        };
        let state = Rc::clone(snapshot.state().or_throw(env)?);
        self.with_guest(env, |guest| guest.restore(&state))
    }

    pub fn reset(&self, env: &Env) -> Result<()> {
        self.with_guest(env, |guest| guest.reset())
    }

    pub fn dispose(&self, env: &Env) {
        let Some(guest) = self.guest.borrow_mut().take() else {
            return;
        };
        // SAFETY: the views were made in this env.
        let detached = unsafe { self.views.borrow_mut().detach_all(env.raw()) };
        // Each view's finalizer holds one `Rc`, and Node runs finalizers only on a later turn.
        // If every holder besides us is a view just detached, no JS object reaches the memory:
        // free it now. Otherwise a holder is unaccounted for (a view collected but not yet
        // finalized), so the memory lives until it lets go; either way the sandbox is unusable.
        if Rc::strong_count(&guest) == 1 + detached {
            guest.release();
        }
    }

    pub fn inspect(&self) -> String {
        let guest = self.guest.borrow();
        let Some(guest) = guest.as_ref() else {
            return "BufferSandbox { disposed: true }".to_owned();
        };
        let memory_bytes = guest.memory_size().unwrap_or(0);
        let pointer = match guest.buffer_pointer() {
            Ok(pointer) => pointer.to_string(),
            Err(error) => format!("<{error}>"),
        };
        format!(
            "BufferSandbox {{ memorySize: {memory_bytes} ({} pages), bufferPointer: {pointer}, bufferSize: {BUFFER_SIZE} }}",
            memory_bytes as u64 / WASM_PAGE_SIZE,
        )
    }

    /// Forgets the views without detaching them (they keep the memory alive by themselves).
    /// Called when the owning JS object is collected.
    pub fn release_views(&self, env: &Env) {
        // SAFETY: the references were made in this env.
        unsafe { self.views.borrow_mut().release(env.raw()) };
    }
}

/// A sandbox running the tutorial's buffer guest (the embedded `guest/` module): two bytes of
/// linear memory shared with JavaScript, and the tutorial's three exports.
///
/// Each instance has its own wasmtime store and linear memory (one fixed 64 KiB page, a slot of
/// a dense pool); the engine and the compiled guest are shared by the whole process, so
/// construction is cheap.
#[napi(custom_finalize)]
pub struct BufferSandbox {
    state: BufferSandboxState,
}

#[napi]
impl BufferSandbox {
    /// Instantiates the buffer guest in a new store. Throws `ERR_SANDBOX_LIMIT` when every slot
    /// of the pool is in use.
    #[napi(constructor, catch_unwind)]
    pub fn new(env: &Env) -> Result<Self> {
        Ok(Self {
            state: BufferSandboxState::new().or_throw(env)?,
        })
    }

    /// Calls the guest's `getWasmMemoryBufferPointer()`: the offset of its buffer in linear memory.
    #[napi(catch_unwind)]
    pub fn get_wasm_memory_buffer_pointer(&self, env: &Env) -> Result<u32> {
        self.state.pointer(env)
    }

    /// Calls the guest's `storeValueInWasmMemoryBufferIndexZero(value)`, which writes `value` at
    /// index 0 of its buffer.
    ///
    /// @param value - an integer from 0 to 255; anything else throws a `TypeError` (not a
    /// number) or a `RangeError` (NaN, a fraction, out of range) and changes nothing.
    #[napi(catch_unwind, ts_args_type = "value: number")]
    pub fn store_value_in_wasm_memory_buffer_index_zero(&self, env: &Env, value: Unknown) -> Result<()> {
        self.state.store(env, value.raw())
    }

    /// Calls the guest's `readWasmMemoryBufferAndReturnIndexOne()`: the byte at index 1 of its buffer.
    #[napi(catch_unwind)]
    pub fn read_wasm_memory_buffer_and_return_index_one(&self, env: &Env) -> Result<u32> {
        self.state.read(env)
    }

    /// A zero-copy view of the guest's whole linear memory: writes on either side are seen on the
    /// other with nothing copied.
    ///
    /// Every call returns the same `Buffer` while the memory is not detached. Views keep the
    /// memory alive after the sandbox is garbage-collected, and are detached (length 0) by
    /// `dispose()`.
    #[napi(catch_unwind, ts_return_type = "Buffer")]
    pub fn memory<'env>(&self, env: &'env Env) -> Result<Unknown<'env>> {
        let value = self.state.memory(env)?;
        // SAFETY: created in this env during this call.
        Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), value) })
    }

    /// A zero-copy view of just the guest's 2-byte buffer (`getWasmMemoryBufferPointer()` and the
    /// next byte), with the same lifetime rules as `memory()`.
    #[napi(catch_unwind, ts_return_type = "Buffer")]
    pub fn buffer<'env>(&self, env: &'env Env) -> Result<Unknown<'env>> {
        let value = self.state.buffer(env)?;
        // SAFETY: created in this env during this call.
        Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), value) })
    }

    /// Grows linear memory by `pages` pages of 64 KiB and returns the previous size in pages, like
    /// `WebAssembly.Memory.prototype.grow`. A `BufferSandbox`'s memory is one fixed page (a slot
    /// of a dense pool), so only `grow(0)` succeeds; anything more throws `ERR_WASM_MEMORY_LIMIT`
    /// and changes nothing. `new Sandbox(bufferGuestWasm())` runs the same guest with a growable
    /// memory.
    #[napi(catch_unwind, ts_args_type = "pages: number")]
    pub fn grow(&self, env: &Env, pages: Unknown) -> Result<f64> {
        self.state.grow(env, pages.raw())
    }

    /// The current size of linear memory in bytes.
    #[napi(getter, catch_unwind)]
    pub fn memory_size(&self, env: &Env) -> Result<f64> {
        self.state.memory_size(env)
    }

    /// Whether `dispose()` has been called.
    #[napi(getter)]
    pub fn disposed(&self) -> bool {
        self.state.disposed()
    }

    /// The guest's state (its one page of memory) as a `Snapshot`. `restore()` puts it back
    /// here or into another `BufferSandbox`; `snapshot.instantiate()` forks it into a `Sandbox`
    /// of the same module (`bufferGuestWasm()`), with a growable memory and `Sandbox`'s options.
    #[napi(catch_unwind)]
    pub fn snapshot(&self, env: &Env) -> Result<Snapshot> {
        self.state.snapshot(env)
    }

    /// Puts `snapshot` back (taken of a `BufferSandbox`, or of a `Sandbox` of the buffer guest
    /// whose memory is one page): a copy of one page; views see the restored bytes.
    #[napi(catch_unwind, ts_args_type = "snapshot: Snapshot")]
    pub fn restore(&self, env: &Env, snapshot: Unknown) -> Result<()> {
        self.state.restore(env, snapshot.raw())
    }

    /// Puts the memory of a new instance back.
    #[napi(catch_unwind)]
    pub fn reset(&self, env: &Env) -> Result<()> {
        self.state.reset(env)
    }

    /// Releases the instance and its memory now, returning its pool slot. Every view handed out
    /// is detached first (its length becomes 0), so freed memory is never reachable; later calls
    /// throw `ERR_SANDBOX_DISPOSED`. A second call does nothing.
    #[napi(catch_unwind)]
    pub fn dispose(&self, env: &Env) {
        self.state.dispose(env);
    }

    /// Same as `dispose()`, for `using sandbox = new BufferSandbox()`.
    #[napi(catch_unwind, well_known_symbol = "dispose")]
    pub fn symbol_dispose(&self, env: &Env) {
        self.state.dispose(env);
    }

    /// What `util.inspect()` and `console.log()` show.
    #[napi(catch_unwind, symbol_for = "nodejs.util.inspect.custom")]
    pub fn inspect(&self) -> String {
        self.state.inspect()
    }
}

impl ObjectFinalize for BufferSandbox {
    fn finalize(self, env: Env) -> Result<()> {
        self.state.release_views(&env);
        Ok(())
    }
}

/// The embedded buffer guest's wasm bytes (a copy): to inspect it, or to run the very same module
/// elsewhere (in `new Sandbox(bufferGuestWasm())` with a growable memory, or in Node's own
/// `WebAssembly`, as the benchmark does).
#[napi]
#[cfg_attr(test, allow(dead_code))] // registered with Node only outside `cfg(test)`
pub fn buffer_guest_wasm() -> napi::bindgen_prelude::Buffer {
    crate::module::BUFFER_GUEST_WASM.to_vec().into()
}

/// Whether views of guest memory are zero-copy here: `true` in Node, where external buffers are
/// allowed. `false` in a runtime that forbids them (Electron's memory cage); there `memory()` and
/// `buffer()` throw `ERR_EXTERNAL_BUFFERS_FORBIDDEN` rather than hand out a copy pretending to
/// be a view, and `Sandbox.read()` / `write()` still copy bytes in and out.
#[napi]
#[cfg_attr(test, allow(dead_code))] // registered with Node only outside `cfg(test)`
pub fn zero_copy_views(env: &Env) -> bool {
    // SAFETY: the live env of this call.
    unsafe { crate::js::views::external_buffers_allowed(env.raw()) }
}
