//! A Rust guest (std, wasm32-unknown-unknown) for `Module.preinitialize`: `init()` builds state in
//! linear memory from two host imports (`env.seed`, `env.work_iterations`): a lookup table of
//! 65,536 u32 from a xorshift sequence, a dispatch table of boxed closures and functions (called
//! through the module's funcref table with `call_indirect`), after a loop of `work_iterations()`
//! steps whose result seeds the table. A pre-initialized copy answers the same without `init`.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

#[link(wasm_import_module = "env")]
unsafe extern "C" {
    /// A seed for the lookup table; called once, by `init`.
    safe fn seed() -> u32;
    /// How many steps of busy work `init` does first (the benchmark makes init take ~100 ms).
    safe fn work_iterations() -> u32;
}

const LOOKUP_LEN: usize = 65_536;

type Handler = Box<dyn Fn(u32) -> u32 + Send + Sync>;

struct State {
    lookup: Vec<u32>,
    dispatch: Vec<Handler>,
}

static STATE: OnceLock<State> = OnceLock::new();
static COUNTER: AtomicU32 = AtomicU32::new(0);

fn xorshift(mut x: u32) -> u32 {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    x
}

fn rotate(x: u32) -> u32 {
    x.rotate_left(13)
}

fn build() -> State {
    let seed = seed();
    // Busy work whose result feeds the table (a xorshift chain has no closed form to fold away).
    let mut x = seed | 1;
    for _ in 0..work_iterations() {
        x = xorshift(x);
    }
    let mut lookup = Vec::with_capacity(LOOKUP_LEN);
    for _ in 0..LOOKUP_LEN {
        x = xorshift(x);
        lookup.push(x);
    }
    let salt = lookup[7];
    let dispatch: Vec<Handler> = vec![
        Box::new(move |v| v.wrapping_add(seed)),
        Box::new(|v| v.wrapping_mul(2_654_435_761)),
        Box::new(move |v| v ^ salt),
        Box::new(rotate),
    ];
    State { lookup, dispatch }
}

fn state() -> &'static State {
    match STATE.get() {
        Some(state) => state,
        // Called before `init`.
        None => core::arch::wasm32::unreachable(),
    }
}

/// Builds the state once (later calls do nothing).
#[unsafe(no_mangle)]
pub extern "C" fn init() {
    STATE.get_or_init(build);
}

/// 1 once `init` has run, else 0.
#[unsafe(no_mangle)]
pub extern "C" fn initialized() -> u32 {
    STATE.get().is_some() as u32
}

/// Entry `i` (mod 65,536) of the lookup table; traps before `init`.
#[unsafe(no_mangle)]
pub extern "C" fn lookup(i: u32) -> u32 {
    let lookup = &state().lookup;
    lookup.get(i as usize % LOOKUP_LEN).copied().unwrap_or(0)
}

/// Calls entry `which` of the dispatch table with `x`: 0 adds the seed, 1 multiplies by
/// 2654435761, 2 xors with lookup(7), 3 rotates left by 13; traps for another `which` or before
/// `init`.
#[unsafe(no_mangle)]
pub extern "C" fn dispatch(which: u32, x: u32) -> u32 {
    match state().dispatch.get(which as usize) {
        Some(handler) => handler(x),
        None => core::arch::wasm32::unreachable(),
    }
}

/// A checksum of the lookup table; traps before `init`.
#[unsafe(no_mangle)]
pub extern "C" fn checksum() -> u32 {
    state().lookup.iter().fold(0u32, |sum, &v| sum.rotate_left(5) ^ v)
}

/// Increments a counter in linear memory and returns it (1 on the first call).
#[unsafe(no_mangle)]
pub extern "C" fn bump() -> u32 {
    COUNTER.fetch_add(1, Ordering::Relaxed) + 1
}
