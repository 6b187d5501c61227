//! The one layer under every front end (`Sandbox`, the WebAssembly namespace, components): the
//! limits a store enforces (memory cap, fuel, wall-clock deadline, CPU time), what it observes
//! (`observe`) and how a new store is set up for them. Each front end keeps its own store data;
//! it only says where its `Observer` is.

pub mod expose_state;
pub mod observe;
pub mod preinit;
pub mod snapshot;
pub mod snapshot_memory;

use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use wasmtime::{Store, StoreContextMut, StoreLimits, StoreLimitsBuilder, UpdateDeadline};

use crate::engine::{EngineKind, TimedCall, deadline_ticks};
use crate::error::{SandboxError, SandboxResult};
use crate::remote::RemoteLink;
pub use observe::{LimitedState, Observer};

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
    /// CPU-time limit for each outermost call (the guest's own CPU time, see `observe`).
    pub cpu_time: Option<Duration>,
    /// Time every call (`stats()`), not only count it.
    pub metrics: bool,
}

impl Limits {
    /// The engine a sandbox or component with these limits runs on: fuel metering is compiled
    /// in only where a budget asks for it.
    pub fn engine_kind(&self) -> EngineKind {
        if self.fuel.is_some() {
            EngineKind::Metered
        } else {
            EngineKind::Standard
        }
    }

    /// The engine a component with these limits runs on.
    pub fn component_engine_kind(&self) -> EngineKind {
        if self.fuel.is_some() {
            EngineKind::ComponentMetered
        } else {
            EngineKind::Component
        }
    }

    /// wasmtime's resource limiter for these limits, on top of `builder`'s counts (instances,
    /// memories, tables a store may hold).
    pub fn store_limits(&self, mut builder: StoreLimitsBuilder) -> StoreLimits {
        if let Some(bytes) = self.max_memory_bytes {
            builder = builder.memory_size(usize::try_from(bytes).unwrap_or(usize::MAX));
        }
        builder.build()
    }

    /// The observer (and resource limiter) of a store with these limits, on top of `builder`'s
    /// counts.
    pub fn observer(&self, builder: StoreLimitsBuilder) -> Observer {
        Observer::new(self.store_limits(builder), self.metrics, self.cpu_time)
    }

    /// Whether calls have a time or CPU limit: the epoch ticker must run for them.
    pub fn needs_ticker(&self) -> bool {
        self.timeout.is_some() || self.cpu_time.is_some()
    }
}

/// The epoch behaviour of synchronous calls: until a timed call sets a real deadline, none is
/// ever reached (an untimed store just pushes it out again should the epoch get there). A store
/// with a CPU limit or a profiler sees every tick (`observe::tick`).
pub fn sync_epochs<T: LimitedState>(store: &mut Store<T>, limits: Limits) {
    store.set_epoch_deadline(NO_DEADLINE);
    if store.data_mut().observer().needs_ticks() {
        store.epoch_deadline_callback(|mut context| observe::tick(&mut context));
    } else if limits.timeout.is_some() {
        store.epoch_deadline_trap();
    } else {
        store.epoch_deadline_callback(|_| Ok(UpdateDeadline::Continue(NO_DEADLINE)));
    }
}

/// Sets up a new store for `limits`: the resource limiter, the epoch behaviour (`epochs`: the
/// engine interrupts on epochs, so every store needs a deadline) and the fuel budget.
pub fn apply_limits<T: LimitedState>(store: &mut Store<T>, limits: Limits, epochs: bool) -> SandboxResult<()> {
    store.limiter(|state| state.observer());
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

/// Store data that carries the link of the async call running it, if any.
pub trait RemoteState: 'static {
    fn remote(&self) -> Option<&Arc<RemoteLink>>;
}

/// The epoch behaviour of a store handed to an async call: on the guest's thread, each tick
/// checks `interrupt()` and the call's deadline (time spent waiting for imports counts). A
/// guest started on the JS thread's fiber yields at its first tick, to go on on a pool thread.
pub fn async_epochs<T: RemoteState + LimitedState>(store: &mut Store<T>) {
    store.epoch_deadline_callback(|mut context| {
        let (stop, on_js_thread) = match context.data().remote() {
            Some(link) => (link.must_stop(), link.on_js_thread()),
            None => (None, false),
        };
        match stop {
            Some(stop) => Err(stop),
            None if on_js_thread => Ok(UpdateDeadline::Yield(1)),
            None => observe::tick(&mut context),
        }
    });
    store.set_epoch_deadline(1);
}

/// Arms an outermost synchronous call on the thread whose count of limited calls is
/// `running_calls` (`engine::running_calls_here`): its wall-clock deadline and, where the observer
/// watches calls (timing, fuel, a CPU limit, a profiler), its figures; `end_call` closes them.
pub fn begin_call<T: LimitedState>(
    context: &mut StoreContextMut<'_, T>,
    limits: Limits,
    running_calls: &'static AtomicU32,
) -> Option<TimedCall> {
    // Held by the caller until the call returns: the ticker ticks while a limited call runs.
    let timed = limits.needs_ticker().then(|| TimedCall::begin(running_calls));
    let observer = context.data_mut().observer();
    let ticks = observer.needs_ticks();
    if observer.watches_calls(limits.fuel.is_some()) {
        let fuel = limits.fuel.and_then(|_| context.get_fuel().ok());
        // Where the callback sees every tick it also keeps the wall-clock deadline.
        let timeout = limits.timeout.filter(|_| ticks);
        context.data_mut().observer().begin(fuel, timeout);
    }
    if ticks {
        context.set_epoch_deadline(1);
    } else if let Some(timeout) = limits.timeout {
        context.set_epoch_deadline(deadline_ticks(timeout));
    }
    timed
}

/// Closes what `begin_call` opened.
pub fn end_call<T: LimitedState>(context: &mut StoreContextMut<'_, T>, limits: Limits) {
    let fuel = limits.fuel.and_then(|_| context.get_fuel().ok());
    context.data_mut().observer().end(fuel);
}
