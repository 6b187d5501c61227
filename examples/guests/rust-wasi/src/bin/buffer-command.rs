//! The tutorial's buffer guest as a WASI command: the same 2-byte buffer and the same three
//! exports as `guest/` (the host calls them after `run()`, the TinyGo pattern), and a `main`
//! that does the tutorial's wasm half itself: it writes 24 at index 0 and prints it.

use std::cell::UnsafeCell;

/// Size of the shared buffer, as in the tutorial.
const BUFFER_SIZE: usize = 2;

struct SharedBuffer(UnsafeCell<[u8; BUFFER_SIZE]>);

// SAFETY: wasm32-wasip1 without threads runs one thread per instance.
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

fn main() {
    storeValueInWasmMemoryBufferIndexZero(24);
    println!("Write in Wasm, Read in JS, Index 0:");
    // SAFETY: as above.
    println!("{}", unsafe { BUFFER.0.get().cast::<u8>().read_volatile() });
}
