//! The tutorial's guest: its three exports, typed once per process and resolved in each instance
//! on first use; instances share stores (`SharedStore`) and take their memory from `slots`.

pub mod slots;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use wasmtime::{Extern, Func, Instance, Memory, ModuleExport, Store, ValRaw};

use crate::error::{SandboxError, SandboxResult};
use crate::module::{self, BufferGuestModule};
use crate::sandbox::MemoryRegion;
use crate::store::snapshot::StateSnapshot;
use slots::SlotGrant;

/// Size of the guest's shared buffer (`BUFFER_SIZE` in `guest/src/lib.rs`).
pub const BUFFER_SIZE: usize = 2;

/// How many buffer guests one store holds in its life. A wasmtime store is the largest part of a
/// sandbox (about 2.6 KiB, more than the page of memory a guest writes), and the buffer guest
/// needs none of its own: it imports nothing, has no limits, and its instances cannot reach each
/// other. An instance stays in its store until the store goes (when every guest it held is gone),
/// but its memory slot is given back at once (`slots`), so a store pins at most this many dead
/// instances' few hundred bytes, never memory.
const GUESTS_PER_STORE: u32 = 32;

/// A store shared by up to `GUESTS_PER_STORE` buffer guests of one thread.
struct SharedStore {
    store: RefCell<Store<()>>,
    /// Guests instantiated in it so far.
    instantiated: Cell<u32>,
    /// The end of the native stack of its thread (see `stack.rs`).
    stack_bottom: usize,
}

thread_local! {
    /// The store this thread's next buffer guest goes into.
    static CURRENT_STORE: RefCell<Option<Rc<SharedStore>>> = const { RefCell::new(None) };
}

/// The store for this thread's next guest: the current one, or a new one once it is full.
fn store_for_next_guest(module: &BufferGuestModule) -> Rc<SharedStore> {
    CURRENT_STORE.with(|current| {
        let mut current = current.borrow_mut();
        match current.as_ref() {
            Some(store) if store.instantiated.get() < GUESTS_PER_STORE => Rc::clone(store),
            _ => {
                let store = Rc::new(SharedStore {
                    store: RefCell::new(Store::new(module.pre.module().engine(), ())),
                    instantiated: Cell::new(0),
                    stack_bottom: crate::stack::thread_stack_bottom(),
                });
                *current = Some(Rc::clone(&store));
                store
            }
        }
    })
}

/// An instance of the buffer guest.
///
/// Its functions are looked up on first use rather than at instantiation: the lookups were a
/// tenth of `new BufferSandbox()` + `dispose()` (perf), and a sandbox that never calls one pays
/// nothing. They are called through raw value slots, so no per-instance type handles are built
/// (`TypedFunc` registers its type with the engine on creation and unregisters it on drop).
pub struct BufferGuest {
    store: Rc<SharedStore>,
    instance: Instance,
    memory: Memory,
    /// The memory's slot; `None` once given back (`release`).
    slot: Cell<Option<SlotGrant>>,
    module: &'static BufferGuestModule,
    get_pointer: Cell<Option<Func>>,
    store_index_zero: Cell<Option<Func>>,
    read_index_one: Cell<Option<Func>>,
}

impl BufferGuest {
    pub fn new() -> SandboxResult<Self> {
        let module = module::buffer_guest()?;
        let shared = store_for_next_guest(module);
        let (instance, memory, slot) = {
            let mut store = shared.store.try_borrow_mut().map_err(|_| SandboxError::Busy)?;
            shared.instantiated.set(shared.instantiated.get() + 1);
            let instance = module.pre.instantiate(&mut *store).map_err(instantiation_error)?;
            let slot = slots::take_last_grant();
            let memory = instance
                .get_module_export(&mut *store, &module.memory)
                .and_then(Extern::into_memory);
            match (memory, slot) {
                (Some(memory), Some(slot)) if slot.base() == memory.data_ptr(&*store) => (instance, memory, slot),
                _ => {
                    return Err(SandboxError::Internal(
                        "the buffer guest's memory is not in a slot".to_owned(),
                    ));
                }
            }
        };
        Ok(Self {
            store: shared,
            instance,
            memory,
            slot: Cell::new(Some(slot)),
            module,
            get_pointer: Cell::new(None),
            store_index_zero: Cell::new(None),
            read_index_one: Cell::new(None),
        })
    }

    /// Gives the memory's slot back now (zeroed, for the next sandbox) and makes every later
    /// call fail with `ERR_SANDBOX_DISPOSED`. The caller guarantees no view reaches the memory.
    pub fn release(&self) {
        if let Some(slot) = self.slot.take() {
            slots::release(slot);
        }
    }

    /// The shared store, for one operation (the buffer guest imports nothing, so no call is ever
    /// running on it while the host is here).
    fn store_mut(&self) -> SandboxResult<std::cell::RefMut<'_, Store<()>>> {
        self.store.store.try_borrow_mut().map_err(|_| SandboxError::Busy)
    }

    fn live_slot(&self) -> SandboxResult<SlotGrant> {
        self.slot.get().ok_or(SandboxError::Disposed)
    }

    /// The function behind `export`, looked up once per instance.
    fn function(&self, cached: &Cell<Option<Func>>, export: &ModuleExport) -> SandboxResult<Func> {
        if let Some(func) = cached.get() {
            return Ok(func);
        }
        let mut store = self.store_mut()?;
        let func = self
            .instance
            .get_module_export(&mut *store, export)
            .and_then(Extern::into_func)
            .ok_or_else(|| SandboxError::BadExport {
                name: "(by index)".to_owned(),
                expected: "function",
                reason: "missing".to_owned(),
            })?;
        cached.set(Some(func));
        Ok(func)
    }

    /// Calls an export of the buffer guest with `slots` (arguments in, the result out).
    fn call(&self, cached: &Cell<Option<Func>>, export: &ModuleExport, slots: &mut [ValRaw; 1]) -> SandboxResult<()> {
        self.live_slot()?;
        let func = self.function(cached, export)?;
        crate::stack::ensure_room_for_wasm(self.store.stack_bottom)?;
        let mut store = self.store_mut()?;
        // SAFETY: `module::buffer_guest` checked each export's signature once per process:
        // `getWasmMemoryBufferPointer` and `readWasmMemoryBufferAndReturnIndexOne` are
        // `() -> i32`, `storeValueInWasmMemoryBufferIndexZero` is `(i32) -> ()`; one slot holds
        // the parameter or the result.
        unsafe { func.call_unchecked(&mut *store, slots) }.map_err(call_failed)
    }

    /// The memory's size in bytes.
    pub fn memory_size(&self) -> SandboxResult<usize> {
        self.live_slot()?;
        let store = self.store.store.try_borrow().map_err(|_| SandboxError::Busy)?;
        Ok(self.memory.data_size(&*store))
    }

    /// `getWasmMemoryBufferPointer()`: the buffer's offset in linear memory.
    pub fn buffer_pointer(&self) -> SandboxResult<u32> {
        let mut slots = [ValRaw::i32(0)];
        self.call(&self.get_pointer, &self.module.get_pointer, &mut slots)?;
        Ok(slots[0].get_u32())
    }

    /// `storeValueInWasmMemoryBufferIndexZero(value)`.
    pub fn store_index_zero(&self, value: u8) -> SandboxResult<()> {
        let mut slots = [ValRaw::u32(u32::from(value))];
        self.call(&self.store_index_zero, &self.module.store_index_zero, &mut slots)
    }

    /// `readWasmMemoryBufferAndReturnIndexOne()`.
    pub fn read_index_one(&self) -> SandboxResult<u8> {
        let mut slots = [ValRaw::i32(0)];
        self.call(&self.read_index_one, &self.module.read_index_one, &mut slots)?;
        let value = slots[0].get_u32();
        // The guest returns a `u8` widened to i32; anything wider means the guest is not ours.
        u8::try_from(value).map_err(|_| SandboxError::BadExport {
            name: "readWasmMemoryBufferAndReturnIndexOne".to_owned(),
            expected: "function returning a byte",
            reason: format!("it returned {value}"),
        })
    }

    /// Grows linear memory by `pages`; only `0` succeeds, since a buffer guest's memory is one
    /// fixed page of the dense pool (see `engine::DENSE_MEMORY_BYTES`).
    pub fn grow(&self, pages: u64) -> SandboxResult<u64> {
        self.live_slot()?;
        let mut store = self.store_mut()?;
        self.memory.grow(&mut *store, pages).map_err(|error| {
            SandboxError::MemoryLimit(format!(
                "cannot grow a BufferSandbox's memory by {pages} pages: it is fixed at one 64 KiB page, a slot \
                 side by side with the other sandboxes' ({error:#}); for the same guest with a growable memory, \
                 use new Sandbox(bufferGuestWasm())"
            ))
        })
    }

    /// The whole linear memory.
    pub fn memory_region(&self) -> SandboxResult<MemoryRegion> {
        let slot = self.live_slot()?;
        Ok(MemoryRegion {
            base: slot.base(),
            length: self.memory_size()?,
        })
    }

    /// The guest's state: its one page of memory (its only other state, the stack pointer, is the
    /// same between calls). A snapshot of a `Sandbox` of the same module restores here too.
    pub fn snapshot(&self) -> SandboxResult<StateSnapshot> {
        let region = self.memory_region()?;
        // SAFETY: the region is this instance's accessible memory, and no call is running (the
        // buffer guest imports nothing, so nothing runs while the host is here).
        let bytes = unsafe { std::slice::from_raw_parts(region.base, region.length) };
        StateSnapshot::of_memory(&self.module.source, bytes)
    }

    /// Puts `snapshot` back: a copy of one page.
    pub fn restore(&self, snapshot: &StateSnapshot) -> SandboxResult<()> {
        let region = self.memory_region()?;
        // SAFETY: as in `snapshot`; views of this memory are plain byte views, never borrowed
        // across this call.
        let memory = unsafe { std::slice::from_raw_parts_mut(region.base, region.length) };
        snapshot.copy_memory_into(&self.module.source, memory)
    }

    /// Puts the memory of a new instance back.
    pub fn reset(&self) -> SandboxResult<()> {
        let initial = match self.module.initial_memory.get() {
            Some(initial) => initial,
            None => {
                let fresh = BufferGuest::new()?;
                let region = fresh.memory_region()?;
                // SAFETY: as in `snapshot`, of the new instance.
                let bytes = unsafe { std::slice::from_raw_parts(region.base, region.length) };
                self.module.initial_memory.get_or_init(|| Box::from(bytes))
            }
        };
        let region = self.memory_region()?;
        // SAFETY: as in `restore`; the lengths are both one page (checked by the slice copy).
        let memory = unsafe { std::slice::from_raw_parts_mut(region.base, region.length) };
        if memory.len() != initial.len() {
            return Err(SandboxError::Internal(
                "the buffer guest's memory changed size".to_owned(),
            ));
        }
        memory.copy_from_slice(initial);
        Ok(())
    }

    /// Where the guest's buffer lives, checked to lie inside linear memory.
    pub fn buffer_region(&self) -> SandboxResult<MemoryRegion> {
        let pointer = self.buffer_pointer()? as usize;
        let memory = self.memory_region()?;
        if pointer.checked_add(BUFFER_SIZE).is_none_or(|end| end > memory.length) {
            return Err(SandboxError::BadExport {
                name: "getWasmMemoryBufferPointer".to_owned(),
                expected: "pointer inside linear memory",
                reason: format!("{pointer} + {BUFFER_SIZE} is past the memory's {} bytes", memory.length),
            });
        }
        Ok(MemoryRegion {
            // SAFETY: `pointer + BUFFER_SIZE <= memory.length`, checked just above.
            base: unsafe { memory.base.add(pointer) },
            length: BUFFER_SIZE,
        })
    }
}

impl Drop for BufferGuest {
    fn drop(&mut self) {
        // The instance stays in the shared store (freed with it); its slot goes back now.
        self.release();
    }
}

/// A failed instantiation: a full slot pool is `ERR_SANDBOX_LIMIT`.
#[cold]
fn instantiation_error(error: wasmtime::Error) -> SandboxError {
    // The slot's holder is gone with the failed instance; forget it.
    slots::take_last_grant();
    let message = format!("{error:#}");
    if message.contains("BufferSandbox slots are in use") {
        SandboxError::SandboxLimit(
            slots::SlotError::Full {
                limit: crate::engine::dense_slots() as usize,
            }
            .to_string(),
        )
    } else if message.contains("could not reserve memory") {
        SandboxError::SandboxLimit(message)
    } else {
        SandboxError::Internal(format!("the buffer guest failed to instantiate: {message}"))
    }
}

#[cold]
#[inline(never)]
fn call_failed(error: wasmtime::Error) -> SandboxError {
    SandboxError::from_call(error)
}
