//! The process-wide wasmtime engines, shared by every sandbox on every thread, and the epoch
//! ticker that enforces wall-clock limits.
//!
//! Two engines: fuel metering instruments every compiled function, so only sandboxes that ask
//! for a fuel budget pay for it. Both use epoch interruption, which costs a counter check on
//! function entry and loop back-edges and is what lets a timed call be stopped.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::{self, Thread};
use std::time::Duration;

use wasmtime::{Config, Engine};

use crate::error::{SandboxError, SandboxResult};

/// Which engine a module is compiled for and a sandbox runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EngineKind {
    /// Epoch interruption only.
    Standard,
    /// Epoch interruption and fuel metering.
    Metered,
}

/// How often the epoch advances while a timed call runs: the granularity of `timeoutMs`.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

static STANDARD: OnceLock<Result<Engine, String>> = OnceLock::new();
static METERED: OnceLock<Result<Engine, String>> = OnceLock::new();

/// Returns the process-wide engine of that kind, creating it on first use.
pub fn engine(kind: EngineKind) -> SandboxResult<&'static Engine> {
    let cell = match kind {
        EngineKind::Standard => &STANDARD,
        EngineKind::Metered => &METERED,
    };
    cell.get_or_init(|| Engine::new(&config(kind)).map_err(|error| format!("{error:#}")))
        .as_ref()
        .map_err(|reason| SandboxError::Internal(format!("the wasmtime engine failed to start: {reason}")))
}

fn config(kind: EngineKind) -> Config {
    let mut config = Config::new();
    // Views handed to JS point at the memory's base: it must never move, so growth happens in
    // place inside the memory's address-space reservation (or fails, never relocates).
    config.memory_may_move(false);
    config.epoch_interruption(true);
    config.consume_fuel(kind == EngineKind::Metered);
    config
}

/// Number of calls with a deadline running right now, in every thread.
static TIMED_CALLS: AtomicUsize = AtomicUsize::new(0);
static TICKER: OnceLock<Thread> = OnceLock::new();

/// Keeps the epoch ticking while alive; one per running call that has a deadline.
pub struct TimedCallGuard(());

impl TimedCallGuard {
    pub fn start() -> Self {
        let ticker = TICKER.get_or_init(|| {
            thread::Builder::new()
                .name("wasm-sandbox-epoch".to_owned())
                .spawn(tick_while_timed_calls_run)
                .expect("spawning the epoch ticker thread")
                .thread()
                .clone()
        });
        if TIMED_CALLS.fetch_add(1, Ordering::AcqRel) == 0 {
            ticker.unpark();
        }
        Self(())
    }
}

impl Drop for TimedCallGuard {
    fn drop(&mut self) {
        TIMED_CALLS.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The ticker sleeps (parked) while no timed call runs, so an idle process pays nothing.
fn tick_while_timed_calls_run() {
    loop {
        if TIMED_CALLS.load(Ordering::Acquire) == 0 {
            thread::park();
            continue;
        }
        thread::sleep(EPOCH_TICK);
        for cell in [&STANDARD, &METERED] {
            if let Some(Ok(engine)) = cell.get() {
                engine.increment_epoch();
            }
        }
    }
}
