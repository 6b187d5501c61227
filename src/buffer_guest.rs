//! The tutorial's guest over the general sandbox: its three exports, looked up once and typed.

use wasmtime::{Memory, TypedFunc};

use crate::error::{SandboxError, SandboxResult};
use crate::module;
use crate::sandbox::{MemoryRegion, Sandbox};

/// Size of the guest's shared buffer (`BUFFER_SIZE` in `guest/src/lib.rs`).
pub const BUFFER_SIZE: usize = 2;

/// An instance of the buffer guest.
pub struct BufferGuest {
    sandbox: Sandbox,
    memory: Memory,
    get_pointer: TypedFunc<(), u32>,
    store_index_zero: TypedFunc<u32, ()>,
    read_index_one: TypedFunc<(), u32>,
}

impl BufferGuest {
    pub fn new() -> SandboxResult<Self> {
        let guest = module::buffer_guest()?;
        let sandbox = Sandbox::instantiate_pre(&guest.pre, &guest.memory)?;
        // SAFETY: `module::buffer_guest` checked each export's signature against these types.
        unsafe {
            Ok(Self {
                memory: sandbox.memory(None)?,
                get_pointer: sandbox.typed_func_unchecked(&guest.get_pointer)?,
                store_index_zero: sandbox.typed_func_unchecked(&guest.store_index_zero)?,
                read_index_one: sandbox.typed_func_unchecked(&guest.read_index_one)?,
                sandbox,
            })
        }
    }

    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    pub fn memory(&self) -> Memory {
        self.memory
    }

    /// `getWasmMemoryBufferPointer()`: the buffer's offset in linear memory.
    pub fn buffer_pointer(&self) -> SandboxResult<u32> {
        self.sandbox.call_typed(&self.get_pointer, ())
    }

    /// `storeValueInWasmMemoryBufferIndexZero(value)`.
    pub fn store_index_zero(&self, value: u8) -> SandboxResult<()> {
        self.sandbox.call_typed(&self.store_index_zero, u32::from(value))
    }

    /// `readWasmMemoryBufferAndReturnIndexOne()`.
    pub fn read_index_one(&self) -> SandboxResult<u8> {
        let value = self.sandbox.call_typed(&self.read_index_one, ())?;
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
