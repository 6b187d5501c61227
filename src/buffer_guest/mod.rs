//! The tutorial's guest over the general sandbox: its three exports, typed once per process and
//! resolved in each instance on first use.

use std::cell::Cell;

use wasmtime::{Func, Memory, ModuleExport, ValRaw};

use crate::error::{SandboxError, SandboxResult};
use crate::module::{self, BufferGuestModule};
use crate::sandbox::{MemoryRegion, Sandbox};
use crate::store::snapshot::StateSnapshot;

/// Size of the guest's shared buffer (`BUFFER_SIZE` in `guest/src/lib.rs`).
pub const BUFFER_SIZE: usize = 2;

/// An instance of the buffer guest.
///
/// Its functions are looked up on first use rather than at instantiation: the lookups were a
/// tenth of `new BufferSandbox()` + `dispose()` (perf), and a sandbox that never calls one pays
/// nothing. They are called through raw value slots, so no per-instance type handles are built
/// (`TypedFunc` registers its type with the engine on creation and unregisters it on drop).
pub struct BufferGuest {
    sandbox: Sandbox,
    memory: Memory,
    module: &'static BufferGuestModule,
    get_pointer: Cell<Option<Func>>,
    store_index_zero: Cell<Option<Func>>,
    read_index_one: Cell<Option<Func>>,
}

impl BufferGuest {
    pub fn new() -> SandboxResult<Self> {
        let module = module::buffer_guest()?;
        let sandbox = Sandbox::instantiate_pre(&module.pre, &module.memory)?;
        Ok(Self {
            memory: sandbox.memory(None)?,
            module,
            get_pointer: Cell::new(None),
            store_index_zero: Cell::new(None),
            read_index_one: Cell::new(None),
            sandbox,
        })
    }

    /// The function behind `export`, looked up once per instance.
    fn function(&self, cached: &Cell<Option<Func>>, export: &ModuleExport) -> SandboxResult<Func> {
        if let Some(func) = cached.get() {
            return Ok(func);
        }
        let func = self.sandbox.func_by_export(export)?;
        cached.set(Some(func));
        Ok(func)
    }

    /// Calls an export of the buffer guest with `slots` (arguments in, the result out).
    fn call(&self, cached: &Cell<Option<Func>>, export: &ModuleExport, slots: &mut [ValRaw; 1]) -> SandboxResult<()> {
        let func = self.function(cached, export)?;
        // SAFETY: `module::buffer_guest` checked each export's signature once per process:
        // `getWasmMemoryBufferPointer` and `readWasmMemoryBufferAndReturnIndexOne` are
        // `() -> i32`, `storeValueInWasmMemoryBufferIndexZero` is `(i32) -> ()`; one slot holds
        // the parameter or the result.
        unsafe { self.sandbox.call_unchecked(&func, slots) }
    }

    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    pub fn memory(&self) -> Memory {
        self.memory
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
        self.sandbox.grow(self.memory, pages).map_err(|error| match error {
            SandboxError::MemoryLimit(_) => SandboxError::MemoryLimit(format!(
                "cannot grow a BufferSandbox's memory by {pages} pages: it is fixed at one 64 KiB page, a slot of \
                 a dense pool that holds 100,000 sandboxes; for the same guest with a growable memory, use \
                 new Sandbox(bufferGuestWasm())"
            )),
            other => other,
        })
    }

    /// The whole linear memory.
    pub fn memory_region(&self) -> SandboxResult<MemoryRegion> {
        self.sandbox.memory_region(self.memory)
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
