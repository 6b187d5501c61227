//! The one layer under every front end (`Sandbox`, the WebAssembly namespace, components): the
//! limits a store enforces (memory cap, fuel, wall-clock deadline) and how a new store is set up
//! for them. Each front end keeps its own store data; it only says where its `StoreLimits` are.

use std::time::Duration;

use wasmtime::{Store, StoreLimits, StoreLimitsBuilder, UpdateDeadline};

use crate::error::{SandboxError, SandboxResult};

/// An epoch deadline that is never reached: used while no deadline applies.
pub const NO_DEADLINE: u64 = 1 << 62;

/// Limits a store enforces on its guest.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    /// Cap on each linear memory, in bytes.
    pub max_memory_bytes: Option<u64>,
    /// Wall-clock limit for each outermost call.
    pub timeout: Option<Duration>,
    /// Initial fuel budget; selects the metered engine.
    pub fuel: Option<u64>,
}

impl Limits {
    /// wasmtime's resource limiter for these limits, on top of `builder`'s counts (instances,
    /// memories, tables a store may hold).
    pub fn store_limits(&self, mut builder: StoreLimitsBuilder) -> StoreLimits {
        if let Some(bytes) = self.max_memory_bytes {
            builder = builder.memory_size(usize::try_from(bytes).unwrap_or(usize::MAX));
        }
        builder.build()
    }
}

/// Store data that carries a `StoreLimits` for wasmtime's resource limiter.
pub trait LimitedState: 'static {
    fn store_limits(&mut self) -> &mut StoreLimits;
}

/// The epoch behaviour of synchronous calls: until a timed call sets a real deadline, none is
/// ever reached (an untimed store just pushes it out again should the epoch get there).
pub fn sync_epochs<T: 'static>(store: &mut Store<T>, limits: Limits) {
    store.set_epoch_deadline(NO_DEADLINE);
    if limits.timeout.is_some() {
        store.epoch_deadline_trap();
    } else {
        store.epoch_deadline_callback(|_| Ok(UpdateDeadline::Continue(NO_DEADLINE)));
    }
}

/// Sets up a new store for `limits`: the resource limiter, the epoch behaviour (`epochs`: the
/// engine interrupts on epochs, so every store needs a deadline) and the fuel budget.
pub fn apply_limits<T: LimitedState>(store: &mut Store<T>, limits: Limits, epochs: bool) -> SandboxResult<()> {
    store.limiter(|state| state.store_limits());
    if epochs {
        sync_epochs(store, limits);
    }
    if let Some(fuel) = limits.fuel {
        store
            .set_fuel(fuel)
            .map_err(|error| SandboxError::Internal(format!("{error:#}")))?;
    }
    Ok(())
}
