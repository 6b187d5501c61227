//! The buffer guest: the Rust twin of the "WebAssembly Linear Memory" tutorial.
//!
//! It holds a `BUFFER_SIZE`-byte buffer in linear memory and exports the tutorial's three
//! functions, so the host can write from wasm and read from JS, and the other way round.
#![no_std]

use core::cell::UnsafeCell;

/// Size of the shared buffer, as in the tutorial.
pub const BUFFER_SIZE: usize = 2;

/// The shared buffer. `UnsafeCell` because the host writes it through linear memory
/// behind the compiler's back; a wasm32 guest without threads has a single accessor at a time.
struct SharedBuffer(UnsafeCell<[u8; BUFFER_SIZE]>);

// SAFETY: wasm32-unknown-unknown without the threads proposal runs one thread per instance.
unsafe impl Sync for SharedBuffer {}

static BUFFER: SharedBuffer = SharedBuffer(UnsafeCell::new([0; BUFFER_SIZE]));

/// Returns a pointer (an index into linear memory) to the buffer.
#[unsafe(no_mangle)]
pub extern "C" fn getWasmMemoryBufferPointer() -> *mut u8 {
    BUFFER.0.get().cast()
}

/// Stores `value` at index 0 of the buffer.
#[unsafe(no_mangle)]
pub extern "C" fn storeValueInWasmMemoryBufferIndexZero(value: u8) {
    // SAFETY: single-threaded guest; volatile because the host reads this byte from outside.
    unsafe { BUFFER.0.get().cast::<u8>().write_volatile(value) }
}

/// Reads index 1 of the buffer and returns it.
#[unsafe(no_mangle)]
pub extern "C" fn readWasmMemoryBufferAndReturnIndexOne() -> u8 {
    // SAFETY: single-threaded guest; volatile because the host writes this byte from outside.
    unsafe { BUFFER.0.get().cast::<u8>().add(1).read_volatile() }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}
