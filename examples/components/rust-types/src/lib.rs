//! The demo:types component (examples/components/wit): an identity function for every WIT type,
//! a resource, functions that call the host's imports, a `through-*` function for every type that
//! passes its value through the host's `mirror-*` import, and guests for the limits tests.
//! Built for wasm32-wasip2 by scripts/build-guests.mjs into types.rust.component.wasm.
//!
//! `no_std` (with dlmalloc as the allocator and a panic handler that traps), so the component
//! imports only the demo:types interfaces and `host-name`: Rust's std would add WASI imports.
#![no_std]

extern crate alloc;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};

#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}

/// The canonical ABI's allocator (std provides it on wasm32-wasip2; without std this does):
/// the host calls it to place arguments, and a failed allocation traps.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cabi_realloc(old_ptr: *mut u8, old_len: usize, align: usize, new_len: usize) -> *mut u8 {
    use alloc::alloc::{Layout, alloc as allocate, realloc};
    if new_len == 0 {
        return align as *mut u8;
    }
    // SAFETY: the canonical ABI passes a power-of-two alignment and, for a reallocation, the
    // pointer and size this function returned before.
    let ptr = unsafe {
        if old_len == 0 {
            allocate(Layout::from_size_align_unchecked(new_len, align))
        } else {
            realloc(old_ptr, Layout::from_size_align_unchecked(old_len, align), new_len)
        }
    };
    if ptr.is_null() {
        core::arch::wasm32::unreachable()
    }
    ptr
}

wit_bindgen::generate!({
    path: "../wit",
    world: "types-demo",
});

use demo::types::host;
use demo::types::logger;
use demo::types::mirror;
use demo::types::types::{KebabRecord, Permissions, Point, Shape, TrafficLight};
use exports::demo::types::api::{self, GuestCounter};
use exports::demo::types::limits;

struct Component;

export!(Component);

impl Guest for Component {
    fn hello(name: String) -> String {
        format!("Hello, {name}!")
    }

    fn hello_host() -> String {
        format!("Hello, {}!", host_name())
    }
}

/// The counter resource: a value behind a Cell (methods take &self).
pub struct Counter {
    value: Cell<u32>,
}

impl GuestCounter for Counter {
    fn new(start: u32) -> Self {
        Counter {
            value: Cell::new(start),
        }
    }

    fn increment(&self, by: u32) {
        self.value.set(self.value.get().wrapping_add(by));
    }

    fn get(&self) -> u32 {
        self.value.get()
    }

    fn merge(a: api::CounterBorrow<'_>, b: api::CounterBorrow<'_>) -> api::Counter {
        let a = a.get::<Counter>().get();
        let b = b.get::<Counter>().get();
        api::Counter::new(Counter::new(a.wrapping_add(b)))
    }
}

/// Counters handed to `stash`, kept until the instance goes away.
struct Stash(RefCell<Vec<api::Counter>>);

// SAFETY: a wasm32-wasip2 instance runs on one thread.
unsafe impl Sync for Stash {}

static STASH: Stash = Stash(RefCell::new(Vec::new()));

impl api::Guest for Component {
    type Counter = Counter;

    fn echo_bool(v: bool) -> bool {
        v
    }
    fn echo_s8(v: i8) -> i8 {
        v
    }
    fn echo_u8(v: u8) -> u8 {
        v
    }
    fn echo_s16(v: i16) -> i16 {
        v
    }
    fn echo_u16(v: u16) -> u16 {
        v
    }
    fn echo_s32(v: i32) -> i32 {
        v
    }
    fn echo_u32(v: u32) -> u32 {
        v
    }
    fn echo_s64(v: i64) -> i64 {
        v
    }
    fn echo_u64(v: u64) -> u64 {
        v
    }
    fn echo_f32(v: f32) -> f32 {
        v
    }
    fn echo_f64(v: f64) -> f64 {
        v
    }
    fn echo_char(v: char) -> char {
        v
    }
    fn echo_string(v: String) -> String {
        v
    }

    fn echo_list_u8(v: Vec<u8>) -> Vec<u8> {
        v
    }
    fn echo_list_s8(v: Vec<i8>) -> Vec<i8> {
        v
    }
    fn echo_list_u16(v: Vec<u16>) -> Vec<u16> {
        v
    }
    fn echo_list_s16(v: Vec<i16>) -> Vec<i16> {
        v
    }
    fn echo_list_u32(v: Vec<u32>) -> Vec<u32> {
        v
    }
    fn echo_list_s32(v: Vec<i32>) -> Vec<i32> {
        v
    }
    fn echo_list_u64(v: Vec<u64>) -> Vec<u64> {
        v
    }
    fn echo_list_s64(v: Vec<i64>) -> Vec<i64> {
        v
    }
    fn echo_list_f32(v: Vec<f32>) -> Vec<f32> {
        v
    }
    fn echo_list_f64(v: Vec<f64>) -> Vec<f64> {
        v
    }
    fn echo_list_string(v: Vec<String>) -> Vec<String> {
        v
    }
    fn echo_list_record(v: Vec<Point>) -> Vec<Point> {
        v
    }

    fn echo_tuple(v: (u8, String, f64)) -> (u8, String, f64) {
        v
    }
    fn echo_point(v: Point) -> Point {
        v
    }
    fn echo_record(v: KebabRecord) -> KebabRecord {
        v
    }
    fn echo_variant(v: Shape) -> Shape {
        v
    }
    fn echo_enum(v: TrafficLight) -> TrafficLight {
        v
    }
    fn echo_flags(v: Permissions) -> Permissions {
        v
    }

    fn echo_option_u32(v: Option<u32>) -> Option<u32> {
        v
    }
    fn echo_option_option_u32(v: Option<Option<u32>>) -> Option<Option<u32>> {
        v
    }
    fn echo_option_string(v: Option<String>) -> Option<String> {
        v
    }
    fn echo_result(v: Result<u32, String>) -> Result<u32, String> {
        v
    }
    fn echo_result_unit(v: Result<(), String>) -> Result<(), String> {
        v
    }
    fn echo_list_result(v: Vec<Result<u32, String>>) -> Vec<Result<u32, String>> {
        v
    }

    // through-<type>: the value goes to the host's mirror-<type> import and its answer comes back.
    fn through_bool(v: bool) -> bool {
        mirror::mirror_bool(v)
    }
    fn through_s8(v: i8) -> i8 {
        mirror::mirror_s8(v)
    }
    fn through_u8(v: u8) -> u8 {
        mirror::mirror_u8(v)
    }
    fn through_s16(v: i16) -> i16 {
        mirror::mirror_s16(v)
    }
    fn through_u16(v: u16) -> u16 {
        mirror::mirror_u16(v)
    }
    fn through_s32(v: i32) -> i32 {
        mirror::mirror_s32(v)
    }
    fn through_u32(v: u32) -> u32 {
        mirror::mirror_u32(v)
    }
    fn through_s64(v: i64) -> i64 {
        mirror::mirror_s64(v)
    }
    fn through_u64(v: u64) -> u64 {
        mirror::mirror_u64(v)
    }
    fn through_f32(v: f32) -> f32 {
        mirror::mirror_f32(v)
    }
    fn through_f64(v: f64) -> f64 {
        mirror::mirror_f64(v)
    }
    fn through_char(v: char) -> char {
        mirror::mirror_char(v)
    }
    fn through_string(v: String) -> String {
        mirror::mirror_string(&v)
    }
    fn through_list_u8(v: Vec<u8>) -> Vec<u8> {
        mirror::mirror_list_u8(&v)
    }
    fn through_list_s8(v: Vec<i8>) -> Vec<i8> {
        mirror::mirror_list_s8(&v)
    }
    fn through_list_u16(v: Vec<u16>) -> Vec<u16> {
        mirror::mirror_list_u16(&v)
    }
    fn through_list_s16(v: Vec<i16>) -> Vec<i16> {
        mirror::mirror_list_s16(&v)
    }
    fn through_list_u32(v: Vec<u32>) -> Vec<u32> {
        mirror::mirror_list_u32(&v)
    }
    fn through_list_s32(v: Vec<i32>) -> Vec<i32> {
        mirror::mirror_list_s32(&v)
    }
    fn through_list_u64(v: Vec<u64>) -> Vec<u64> {
        mirror::mirror_list_u64(&v)
    }
    fn through_list_s64(v: Vec<i64>) -> Vec<i64> {
        mirror::mirror_list_s64(&v)
    }
    fn through_list_f32(v: Vec<f32>) -> Vec<f32> {
        mirror::mirror_list_f32(&v)
    }
    fn through_list_f64(v: Vec<f64>) -> Vec<f64> {
        mirror::mirror_list_f64(&v)
    }
    fn through_list_string(v: Vec<String>) -> Vec<String> {
        mirror::mirror_list_string(&v)
    }
    fn through_list_record(v: Vec<Point>) -> Vec<Point> {
        mirror::mirror_list_record(&v)
    }
    fn through_tuple(v: (u8, String, f64)) -> (u8, String, f64) {
        mirror::mirror_tuple((v.0, &v.1, v.2))
    }
    fn through_point(v: Point) -> Point {
        mirror::mirror_point(v)
    }
    fn through_record(v: KebabRecord) -> KebabRecord {
        mirror::mirror_record(&v)
    }
    fn through_variant(v: Shape) -> Shape {
        mirror::mirror_variant(&v)
    }
    fn through_enum(v: TrafficLight) -> TrafficLight {
        mirror::mirror_enum(v)
    }
    fn through_flags(v: Permissions) -> Permissions {
        mirror::mirror_flags(v)
    }
    fn through_option_u32(v: Option<u32>) -> Option<u32> {
        mirror::mirror_option_u32(v)
    }
    fn through_option_option_u32(v: Option<Option<u32>>) -> Option<Option<u32>> {
        mirror::mirror_option_option_u32(v)
    }
    fn through_option_string(v: Option<String>) -> Option<String> {
        mirror::mirror_option_string(v.as_deref())
    }
    fn through_result(v: Result<u32, String>) -> Result<u32, String> {
        mirror::mirror_result(v.as_ref().copied().map_err(String::as_str))
    }
    fn through_result_unit(v: Result<(), String>) -> Result<(), String> {
        mirror::mirror_result_unit(v.as_ref().copied().map_err(String::as_str))
    }
    fn through_list_result(v: Vec<Result<u32, String>>) -> Vec<Result<u32, String>> {
        mirror::mirror_list_result(&v)
    }

    fn checked_div(a: u32, b: u32) -> Result<u32, String> {
        if b == 0 {
            Err("division by zero".to_string())
        } else {
            Ok(a / b)
        }
    }

    fn maybe_fail(fail: bool, message: String) -> Result<(), String> {
        if fail { Err(message) } else { Ok(()) }
    }

    fn stash(c: api::Counter) {
        STASH.0.borrow_mut().push(c);
    }

    fn stashed_total() -> u32 {
        STASH
            .0
            .borrow()
            .iter()
            .map(|c| c.get::<Counter>().get())
            .fold(0, u32::wrapping_add)
    }

    fn call_logger(message: String) {
        logger::log(&message);
    }

    fn call_log_point(p: Point) {
        logger::log_point(p);
    }

    fn kv_roundtrip(key: String, value: String) -> Option<String> {
        let kv = host::Kv::new();
        kv.set(&key, &value);
        kv.get(&key)
    }

    fn host_number(key: String) -> Result<u32, String> {
        host::fetch_number(&key)
    }

    fn host_number_or(key: String, fallback: u32) -> u32 {
        host::fetch_number(&key).unwrap_or(fallback)
    }
}

impl limits::Guest for Component {
    fn spin() {
        let mut x: u64 = 1;
        loop {
            // A volatile store the optimizer has to keep: the loop cannot be removed.
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            unsafe { core::ptr::write_volatile(&raw mut SINK, x) };
        }
    }

    fn burn(iterations: u64) -> u64 {
        let mut x: u64 = 0;
        for i in 0..iterations {
            x = core::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        x
    }

    fn grow(pages: u32) -> i32 {
        core::arch::wasm32::memory_grow(0, pages as usize) as i32
    }

    fn trap() {
        core::arch::wasm32::unreachable()
    }

    fn bytes(n: u32) -> Vec<u8> {
        (0..n).map(|i| (i.wrapping_mul(31).wrapping_add(7)) as u8).collect()
    }

    fn sum_bytes(data: Vec<u8>) -> u64 {
        data.iter().map(|&b| b as u64).sum()
    }

    fn make_blob(name: String, n: u32) -> Result<limits::Blob, String> {
        if n == 0 {
            return Err(format!("{name}: no bytes"));
        }
        Ok(limits::Blob {
            name,
            data: Self::bytes(n),
            samples: vec![f64::from(n), f64::from(n) / 2.0],
        })
    }

    fn sum_blobs(first: limits::Blob, blobs: Vec<limits::Blob>) -> (String, u64, f64) {
        let mut bytes = Self::sum_bytes(first.data);
        let mut samples: f64 = first.samples.iter().sum();
        for blob in blobs {
            bytes += Self::sum_bytes(blob.data);
            samples += blob.samples.iter().sum::<f64>();
        }
        (first.name, bytes, samples)
    }

    fn through_blob(b: limits::Blob) -> limits::Blob {
        limits::Blob {
            data: mirror::mirror_list_u8(&b.data),
            ..b
        }
    }
}

static mut SINK: u64 = 0;
