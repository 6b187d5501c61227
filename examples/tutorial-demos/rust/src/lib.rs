//! The tutorial's scenario ("WebAssembly Linear Memory") as its Rust variant is written: with
//! wasm-bindgen, snake_case exports, and a two-byte buffer in linear memory whose address JS
//! reads; wasm writes index 0, JS writes index 1 and wasm reads it back.

use std::cell::UnsafeCell;

use wasm_bindgen::prelude::*;

const BUFFER_SIZE: usize = 2;

/// The shared buffer. wasm32-unknown-unknown is single-threaded, and JS reaches the bytes only
/// through the address, so interior mutability without a lock is enough.
struct SharedBuffer(UnsafeCell<[u8; BUFFER_SIZE]>);

// SAFETY: the guest has one thread; nothing else can reach the cell concurrently.
unsafe impl Sync for SharedBuffer {}

static BUFFER: SharedBuffer = SharedBuffer(UnsafeCell::new([0; BUFFER_SIZE]));

/// Writes `value` at index 0 of the buffer.
#[wasm_bindgen]
pub fn store_value_in_wasm_memory_buffer_index_zero(value: u8) {
    // SAFETY: single-threaded guest; no reference to the buffer outlives this call.
    unsafe { (*BUFFER.0.get())[0] = value }
}

/// The buffer's address in linear memory, for `new Uint8Array(memory.buffer)[address + i]`.
#[wasm_bindgen]
pub fn get_wasm_memory_buffer_pointer() -> *const u8 {
    BUFFER.0.get().cast()
}

/// Reads index 1 of the buffer, which JS writes.
#[wasm_bindgen]
pub fn read_wasm_memory_buffer_and_return_index_one() -> u8 {
    // SAFETY: as above.
    unsafe { (*BUFFER.0.get())[1] }
}
