//! The linear memories of `BufferSandbox`es: one-page slots side by side in chunks of address
//! space the process reserves as it needs them, handed to wasmtime through a `MemoryCreator`.
//!
//! wasmtime's pooling allocator would do this too, but its pool has a fixed size with per-slot
//! bookkeeping made up front (22 MiB for 150,000 slots), and it frees a slot only when the store
//! holding the instance is dropped. Here a slot goes back the moment its sandbox is disposed
//! (`release`), even though the instance stays in its shared store until the store goes: the
//! slot is zeroed and reused, and the dead instance never runs again (its sandbox is gone).

use std::sync::{Mutex, MutexGuard, OnceLock};

use crate::engine::{DENSE_MEMORY_BYTES, DENSE_SLOTS_VARIABLE, dense_slots};

/// Slots in the first chunk; each later chunk doubles the slots reserved so far, up to
/// `MAX_CHUNK_SLOTS`. A process with one `BufferSandbox` reserves 256 MiB of address space (no
/// memory), and a million sandboxes take 20 chunks.
const FIRST_CHUNK_SLOTS: usize = 4096;
const MAX_CHUNK_SLOTS: usize = 65_536;

/// Slots made accessible at once: one `mprotect` (and commit charge) per batch, not per slot.
const ACCESS_BATCH_SLOTS: usize = 64;

/// A slot handed out: where it is, and which use of it this is (a stale `release` is ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotGrant {
    index: u32,
    generation: u32,
    base: usize,
}

impl SlotGrant {
    pub fn base(&self) -> *mut u8 {
        std::ptr::with_exposed_provenance_mut(self.base)
    }
}

/// A reserved range of address space: `slots` slots from global index `first`.
struct Chunk {
    base: usize,
    first: usize,
    slots: usize,
    /// Slots from the start made readable and writable so far.
    accessible: usize,
}

#[derive(Default)]
struct Slots {
    chunks: Vec<Chunk>,
    /// Slots reserved in all chunks.
    reserved: usize,
    /// Slots handed out at least once (`generations.len()`).
    generations: Vec<u32>,
    /// Released slots, zeroed, to hand out again.
    free: Vec<u32>,
}

fn slots() -> MutexGuard<'static, Slots> {
    static SLOTS: OnceLock<Mutex<Slots>> = OnceLock::new();
    SLOTS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Why no slot could be had.
#[derive(Debug)]
pub enum SlotError {
    /// Every slot the limit allows is in use.
    Full { limit: usize },
    /// The operating system refused address space or access.
    System(std::io::Error),
}

impl std::fmt::Display for SlotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Full { limit } => write!(
                f,
                "all {limit} BufferSandbox slots are in use: dispose() sandboxes you are done with (garbage \
                 collection alone frees them only between event-loop turns), or raise the limit with the \
                 environment variable {DENSE_SLOTS_VARIABLE}=<count> before the first BufferSandbox is made"
            ),
            Self::System(error) => write!(f, "could not reserve memory for another BufferSandbox: {error}"),
        }
    }
}

impl Slots {
    fn take(&mut self) -> Result<SlotGrant, SlotError> {
        if let Some(index) = self.free.pop() {
            let index_usize = index as usize;
            return Ok(SlotGrant {
                index,
                generation: self.generations[index_usize],
                base: self.base_of(index_usize),
            });
        }
        let limit = dense_slots() as usize;
        let index = self.generations.len();
        if index >= limit {
            return Err(SlotError::Full { limit });
        }
        if index == self.reserved {
            self.reserve_chunk(limit)?;
        }
        let chunk = self.chunks.last_mut().expect("a chunk was just reserved");
        let offset = index - chunk.first;
        if offset >= chunk.accessible {
            let batch = ACCESS_BATCH_SLOTS.min(chunk.slots - chunk.accessible);
            let start = chunk.base + chunk.accessible * DENSE_MEMORY_BYTES;
            // SAFETY: a range inside this chunk's reservation, which only this allocator maps.
            let status = unsafe {
                libc::mprotect(
                    std::ptr::with_exposed_provenance_mut(start),
                    batch * DENSE_MEMORY_BYTES,
                    libc::PROT_READ | libc::PROT_WRITE,
                )
            };
            if status != 0 {
                return Err(SlotError::System(std::io::Error::last_os_error()));
            }
            chunk.accessible += batch;
        }
        self.generations.push(0);
        Ok(SlotGrant {
            index: index as u32,
            generation: 0,
            base: chunk.base + offset * DENSE_MEMORY_BYTES,
        })
    }

    fn reserve_chunk(&mut self, limit: usize) -> Result<(), SlotError> {
        let slots = self
            .reserved
            .clamp(FIRST_CHUNK_SLOTS, MAX_CHUNK_SLOTS)
            .min(limit - self.reserved);
        // SAFETY: a fresh private reservation, inaccessible until slots are handed out.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                slots * DENSE_MEMORY_BYTES,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(SlotError::System(std::io::Error::last_os_error()));
        }
        self.chunks.push(Chunk {
            base: base.expose_provenance(),
            first: self.reserved,
            slots,
            accessible: 0,
        });
        self.reserved += slots;
        Ok(())
    }

    fn base_of(&self, index: usize) -> usize {
        let chunk = self
            .chunks
            .iter()
            .rev()
            .find(|chunk| chunk.first <= index)
            .expect("every handed-out slot lies in a chunk");
        chunk.base + (index - chunk.first) * DENSE_MEMORY_BYTES
    }
}

/// Takes a zeroed slot.
pub fn take() -> Result<SlotGrant, SlotError> {
    slots().take()
}

/// Gives `grant`'s slot back, zeroed. Returns `false` if it was already given back (by the
/// sandbox's `dispose()` before its instance's memory was dropped); then nothing happens.
pub fn release(grant: SlotGrant) -> bool {
    let mut slots = slots();
    let index = grant.index as usize;
    if slots.generations.get(index) != Some(&grant.generation) {
        return false;
    }
    slots.generations[index] = grant.generation.wrapping_add(1);
    // Back to zero pages: the next user sees zeros, and the memory is returned to the system.
    // SAFETY: the slot's page-aligned range, inside an accessible chunk; no live sandbox uses it.
    unsafe { libc::madvise(grant.base().cast(), DENSE_MEMORY_BYTES, libc::MADV_DONTNEED) };
    slots.free.push(grant.index);
    true
}

thread_local! {
    /// The slot of the memory this thread created last: how a new `BufferGuest` learns its own.
    static LAST_GRANT: std::cell::Cell<Option<SlotGrant>> = const { std::cell::Cell::new(None) };
}

/// The slot of the memory created last on this thread, once.
pub fn take_last_grant() -> Option<SlotGrant> {
    LAST_GRANT.with(std::cell::Cell::take)
}

/// Creates every linear memory of the dense engine in a slot.
#[derive(Debug, Clone, Copy, Default)]
pub struct SlotMemoryCreator;

// SAFETY: every memory is one slot of `DENSE_MEMORY_BYTES` readable and writable bytes, zeroed
// when handed out, whose base never moves; none is larger, and none has or needs a guard (the
// engine asks for none: its bounds are checked in code).
unsafe impl wasmtime::MemoryCreator for SlotMemoryCreator {
    fn new_memory(
        &self,
        ty: wasmtime::MemoryType,
        minimum: usize,
        _maximum: Option<usize>,
        reserved_size_in_bytes: Option<usize>,
        guard_size_in_bytes: usize,
    ) -> Result<Box<dyn wasmtime::LinearMemory>, String> {
        if ty.is_shared() || ty.is_64() {
            return Err("a BufferSandbox memory is a plain 32-bit memory".to_owned());
        }
        if minimum > DENSE_MEMORY_BYTES
            || reserved_size_in_bytes.is_some_and(|reserved| reserved > DENSE_MEMORY_BYTES)
            || guard_size_in_bytes != 0
        {
            return Err(format!(
                "a BufferSandbox memory is one fixed page of {DENSE_MEMORY_BYTES} bytes"
            ));
        }
        let grant = take().map_err(|error| error.to_string())?;
        LAST_GRANT.with(|last| last.set(Some(grant)));
        Ok(Box::new(SlotMemory { grant, size: minimum }))
    }
}

/// What wasmtime holds for a slot's memory. Dropping it gives the slot back unless its sandbox
/// already did.
struct SlotMemory {
    grant: SlotGrant,
    size: usize,
}

// SAFETY: `as_ptr` is the base of a slot of `byte_capacity()` accessible bytes that never moves;
// growth within it only changes the size (the bytes are already zero).
unsafe impl wasmtime::LinearMemory for SlotMemory {
    fn byte_size(&self) -> usize {
        self.size
    }

    fn byte_capacity(&self) -> usize {
        DENSE_MEMORY_BYTES
    }

    fn grow_to(&mut self, new_size: usize) -> wasmtime::Result<()> {
        if new_size > DENSE_MEMORY_BYTES {
            wasmtime::bail!("a BufferSandbox memory is one fixed page of {DENSE_MEMORY_BYTES} bytes");
        }
        self.size = new_size;
        Ok(())
    }

    fn as_ptr(&self) -> *mut u8 {
        self.grant.base()
    }
}

impl Drop for SlotMemory {
    fn drop(&mut self) {
        release(self.grant);
    }
}
