//! A no_std Rust guest (wasm32-unknown-unknown) built optimised but with full DWARF debug info,
//! for the profiler and source-level backtraces. Its inner functions are `#[inline(never)]`, so
//! each keeps a frame and a name in the name section:
//!
//! - `hot(iterations)` spends about 95% of its steps in `hot_loop` and 5% in `cold_loop`;
//! - `trap_here()` traps (`unreachable`) in `fail_at_known_line`, on the one line of this file
//!   whose comment is the marker the tests search for (so no test hard-codes its number);
//! - `spin()` never returns (CPU-time limits);
//! - `call_import(times)` calls the import `env.host_work` `times` times and sums its results;
//! - `grow(pages)` grows memory 0 by `pages` pages: the old size in pages, or -1.

#![no_std]

use core::hint::black_box;

#[link(wasm_import_module = "env")]
unsafe extern "C" {
    /// Work the host does for the guest; `call_import` sums the results.
    safe fn host_work(i: i32) -> i32;
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}

/// `steps` rounds of xorshift and a multiply: a chain with no closed form, each step through
/// `black_box`, so the optimiser can neither fold nor shorten it.
#[inline(never)]
fn hot_loop(seed: u32, steps: u32) -> u32 {
    let mut x = seed | 1;
    for _ in 0..steps {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x = black_box(x).wrapping_mul(0x9E37_79B9);
    }
    x
}

/// The same work as `hot_loop` per step (other constants, so the two are not merged).
#[inline(never)]
fn cold_loop(seed: u32, steps: u32) -> u32 {
    let mut x = seed | 1;
    for _ in 0..steps {
        x ^= x << 7;
        x ^= x >> 9;
        x ^= x << 8;
        x = black_box(x).wrapping_mul(0x85EB_CA6B);
    }
    x
}

/// `iterations` steps of mixing: 19 in 20 in `hot_loop`, the rest in `cold_loop`.
#[unsafe(no_mangle)]
pub extern "C" fn hot(iterations: i32) -> i32 {
    let steps = iterations.max(0) as u32;
    let cold_steps = steps / 20;
    let a = hot_loop(black_box(0x1234_5678), black_box(steps - cold_steps));
    let b = cold_loop(black_box(a), black_box(cold_steps));
    (a ^ b) as i32
}

#[inline(never)]
fn fail_at_known_line() -> ! {
    core::arch::wasm32::unreachable() // TRAP LINE
}

/// Traps with `unreachable` in `fail_at_known_line`, on the marked line.
#[unsafe(no_mangle)]
pub extern "C" fn trap_here() -> i32 {
    fail_at_known_line()
}

/// Counts forever: never returns.
#[unsafe(no_mangle)]
pub extern "C" fn spin() -> i32 {
    let mut counter = 0u32;
    loop {
        counter = black_box(counter).wrapping_add(1);
    }
}

/// Calls `env.host_work(i)` for `i` in `0..times` and returns the (wrapping) sum.
#[unsafe(no_mangle)]
pub extern "C" fn call_import(times: i32) -> i32 {
    let mut sum = 0i32;
    for i in 0..times {
        sum = sum.wrapping_add(host_work(i));
    }
    sum
}

/// Grows memory 0 by `pages` 64 KiB pages: the previous size in pages, or -1 if it cannot.
#[unsafe(no_mangle)]
pub extern "C" fn grow(pages: i32) -> i32 {
    core::arch::wasm32::memory_grow(0, pages as usize) as i32
}
