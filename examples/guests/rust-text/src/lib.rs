//! A Rust guest that edits text in place: the host writes bytes through the zero-copy view at a
//! place `alloc` gives it, calls an export, and reads the result through the same view.
#![no_std]

use core::cell::UnsafeCell;

const ARENA_SIZE: usize = 64 * 1024;

struct Arena {
    bytes: UnsafeCell<[u8; ARENA_SIZE]>,
    used: UnsafeCell<usize>,
}

// SAFETY: wasm32-unknown-unknown without threads runs one thread per instance.
unsafe impl Sync for Arena {}

static ARENA: Arena = Arena {
    bytes: UnsafeCell::new([0; ARENA_SIZE]),
    used: UnsafeCell::new(0),
};

/// Reserves `length` bytes in the arena; returns 0 when it is full.
#[unsafe(no_mangle)]
pub extern "C" fn alloc(length: u32) -> *mut u8 {
    // SAFETY: single-threaded guest; the arena is only touched here and through handed-out pointers.
    unsafe {
        let used = &mut *ARENA.used.get();
        let length = length as usize;
        if ARENA_SIZE - *used < length {
            return core::ptr::null_mut();
        }
        let pointer = ARENA.bytes.get().cast::<u8>().add(*used);
        *used += length;
        pointer
    }
}

/// Frees everything `alloc` handed out.
#[unsafe(no_mangle)]
pub extern "C" fn reset() {
    // SAFETY: single-threaded guest.
    unsafe { *ARENA.used.get() = 0 }
}

/// Upper-cases the ASCII letters of `length` bytes at `pointer`, in place.
#[unsafe(no_mangle)]
pub extern "C" fn to_upper(pointer: *mut u8, length: u32) {
    // SAFETY: the host passes a range inside linear memory (out-of-range access traps).
    let text = unsafe { core::slice::from_raw_parts_mut(pointer, length as usize) };
    text.make_ascii_uppercase();
}

/// Counts the words (runs of non-whitespace ASCII) in `length` bytes at `pointer`.
#[unsafe(no_mangle)]
pub extern "C" fn count_words(pointer: *const u8, length: u32) -> u32 {
    // SAFETY: as in `to_upper`.
    let text = unsafe { core::slice::from_raw_parts(pointer, length as usize) };
    text.split(u8::is_ascii_whitespace).filter(|word| !word.is_empty()).count() as u32
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}
