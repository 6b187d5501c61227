//! The process-wide wasmtime engines, shared by every sandbox on every thread, and the epoch
//! ticker that enforces wall-clock limits.
//!
//! The engines. The general sandboxes run on `Standard` or, when they ask for a fuel budget,
//! on `Metered` (fuel metering instruments every compiled function, so only those pay for it);
//! components on `Component` or `ComponentMetered`, the same without snapshot memories;
//! both use epoch interruption, which costs a counter check on function entry and loop
//! back-edges and is what lets a timed call be stopped. `BufferSandbox` runs on `Dense`: one
//! fixed 64 KiB memory per guest, taken from `buffer_guest::slots` (address space reserved in
//! chunks as needed), so that instantiation is only taking a slot and a million live sandboxes
//! fit in one process. Served requests run on `Service`, wasmtime's pooling allocator.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Strategy};

use crate::error::{SandboxError, SandboxResult};

/// Which engine a module is compiled for and a sandbox runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EngineKind {
    /// Epoch interruption only.
    Standard,
    /// Epoch interruption and fuel metering.
    Metered,
    /// `Standard` for components: wasmtime's own memories, data segments mapped copy-on-write
    /// (no snapshots, and a fuel budget pays nothing for a component's data at instantiation).
    Component,
    /// `Component` with fuel metering.
    ComponentMetered,
    /// The pooling allocator for the buffer guest: fixed one-page memories, no limits.
    Dense,
    /// `Standard` plus the features of the WebAssembly JS API namespaces (64-bit tables and
    /// memories), kept apart so `Sandbox` compiles exactly what it did.
    Api,
    /// `Api` with fuel metering.
    ApiMetered,
    /// `Standard` with the pooling allocator: `httpHandler()`'s instances, made and dropped per
    /// request, reuse memories, tables and stacks instead of mapping and unmapping them.
    Service,
    /// `Service` with fuel metering.
    ServiceMetered,
}

impl EngineKind {
    /// Whether sandboxes on this engine can be snapshotted: their memories are
    /// `SnapshotMemory`s and their modules export their state under hidden names.
    pub fn takes_snapshots(self) -> bool {
        matches!(self, Self::Standard | Self::Metered)
    }

    /// The engine of a WebAssembly namespace with, or without, a fuel budget.
    pub fn api(metered: bool) -> Self {
        if metered { Self::ApiMetered } else { Self::Api }
    }

    /// The pooled engine for per-request service instances of this kind.
    pub fn pooled(self) -> Self {
        match self {
            Self::Metered | Self::ComponentMetered | Self::ServiceMetered => Self::ServiceMetered,
            _ => Self::Service,
        }
    }
}

impl EngineKind {
    /// The name the code cache keys compiled code with.
    pub fn name(self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::Metered => "metered",
            Self::Component => "component",
            Self::ComponentMetered => "component-metered",
            Self::Dense => "dense",
            Self::Api => "api",
            Self::ApiMetered => "api-metered",
            Self::Service => "service",
            Self::ServiceMetered => "service-metered",
        }
    }
}

/// Which code generator compiles a module's functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compiler {
    /// The optimizing compiler: slower to compile, faster code. The default.
    #[default]
    Cranelift,
    /// The baseline compiler: compiles in one pass, several times faster, to slower code.
    Winch,
}

/// Environment variable that sets the compiler of modules compiled without a `compiler` option.
pub const COMPILER_VARIABLE: &str = "WASM_MEMORY_SANDBOX_COMPILER";

impl Compiler {
    /// The name JS uses for it (`'cranelift'`, `'winch'`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Cranelift => "cranelift",
            Self::Winch => "winch",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "cranelift" => Some(Self::Cranelift),
            "winch" => Some(Self::Winch),
            _ => None,
        }
    }

    /// The process-wide default: `WASM_MEMORY_SANDBOX_COMPILER` if it names a compiler (read
    /// once), else Cranelift.
    pub fn process_default() -> Self {
        static DEFAULT: OnceLock<Compiler> = OnceLock::new();
        *DEFAULT.get_or_init(|| {
            std::env::var(COMPILER_VARIABLE)
                .ok()
                .and_then(|name| Self::from_name(name.trim()))
                .unwrap_or_default()
        })
    }
}

/// The linear memory of every `Dense` sandbox: one wasm page, the buffer guest's whole need.
///
/// Memories that may grow need address space reserved beyond their size, kept inaccessible,
/// and each such boundary costs the process one memory mapping (Linux allows 65,530 by default,
/// about 32,000 sandboxes). Slots of exactly one page sit side by side in one mapping instead.
pub const DENSE_MEMORY_BYTES: usize = 65_536;

/// Environment variable that sets how many `Dense` slots (live `BufferSandbox`es) there may be.
pub const DENSE_SLOTS_VARIABLE: &str = "WASM_MEMORY_SANDBOX_BUFFER_SLOTS";

/// Default limit on `Dense` slots: 256 GiB of address space at most, reserved as sandboxes are
/// made (see `buffer_guest::slots`).
pub const DEFAULT_DENSE_SLOTS: u32 = 4 * 1024 * 1024;

/// How many `Dense` slots there may be (read once, when the first is taken).
pub fn dense_slots() -> u32 {
    static SLOTS: OnceLock<u32> = OnceLock::new();
    *SLOTS.get_or_init(|| slots_from_env(DENSE_SLOTS_VARIABLE, DEFAULT_DENSE_SLOTS))
}

/// The positive count `variable` holds, else `default`.
fn slots_from_env(variable: &str, default: u32) -> u32 {
    std::env::var(variable)
        .ok()
        .and_then(|value| value.trim().parse().ok())
        .filter(|&slots| slots > 0)
        .unwrap_or(default)
}

/// Environment variable that sets how many service instances each pooled engine holds.
pub const SERVICE_SLOTS_VARIABLE: &str = "WASM_MEMORY_SANDBOX_SERVICE_SLOTS";

/// How many service instances (requests in progress) a pooled engine holds at once by default;
/// requests beyond them get instances of the on-demand engine.
pub const DEFAULT_SERVICE_SLOTS: u32 = 1000;

/// How many service instances the pooled engines hold (read once, when the first one starts).
pub fn service_slots() -> u32 {
    static SLOTS: OnceLock<u32> = OnceLock::new();
    *SLOTS.get_or_init(|| slots_from_env(SERVICE_SLOTS_VARIABLE, DEFAULT_SERVICE_SLOTS))
}

/// How often the epoch advances while a timed call runs: the granularity of `timeoutMs`.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

type EngineCell = OnceLock<Result<Engine, String>>;

static STANDARD: EngineCell = OnceLock::new();
static METERED: EngineCell = OnceLock::new();
static DENSE: EngineCell = OnceLock::new();
static STANDARD_WINCH: EngineCell = OnceLock::new();
static METERED_WINCH: EngineCell = OnceLock::new();
static COMPONENT: EngineCell = OnceLock::new();
static COMPONENT_METERED: EngineCell = OnceLock::new();
static COMPONENT_WINCH: EngineCell = OnceLock::new();
static COMPONENT_METERED_WINCH: EngineCell = OnceLock::new();
static API: EngineCell = OnceLock::new();
static API_METERED: EngineCell = OnceLock::new();
static SERVICE: EngineCell = OnceLock::new();
static SERVICE_METERED: EngineCell = OnceLock::new();
static SERVICE_WINCH: EngineCell = OnceLock::new();
static SERVICE_METERED_WINCH: EngineCell = OnceLock::new();

/// Returns the process-wide engine of that kind, compiling with Cranelift, creating it on first use.
pub fn engine(kind: EngineKind) -> SandboxResult<&'static Engine> {
    engine_with(kind, Compiler::Cranelift)
}

/// Returns the process-wide engine of that kind and compiler, creating it on first use. The
/// dense engine (the embedded buffer guest's) always uses Cranelift.
pub fn engine_with(kind: EngineKind, compiler: Compiler) -> SandboxResult<&'static Engine> {
    let cell = match (kind, compiler) {
        (EngineKind::Standard, Compiler::Cranelift) => &STANDARD,
        (EngineKind::Metered, Compiler::Cranelift) => &METERED,
        (EngineKind::Standard, Compiler::Winch) => &STANDARD_WINCH,
        (EngineKind::Metered, Compiler::Winch) => &METERED_WINCH,
        (EngineKind::Component, Compiler::Cranelift) => &COMPONENT,
        (EngineKind::ComponentMetered, Compiler::Cranelift) => &COMPONENT_METERED,
        (EngineKind::Component, Compiler::Winch) => &COMPONENT_WINCH,
        (EngineKind::ComponentMetered, Compiler::Winch) => &COMPONENT_METERED_WINCH,
        (EngineKind::Dense, _) => &DENSE,
        // The JS API namespace compiles with Cranelift.
        (EngineKind::Api, _) => &API,
        (EngineKind::ApiMetered, _) => &API_METERED,
        (EngineKind::Service, Compiler::Cranelift) => &SERVICE,
        (EngineKind::ServiceMetered, Compiler::Cranelift) => &SERVICE_METERED,
        (EngineKind::Service, Compiler::Winch) => &SERVICE_WINCH,
        (EngineKind::ServiceMetered, Compiler::Winch) => &SERVICE_METERED_WINCH,
    };
    let compiler = if matches!(kind, EngineKind::Dense | EngineKind::Api | EngineKind::ApiMetered) {
        Compiler::Cranelift
    } else {
        compiler
    };
    cell.get_or_init(|| Engine::new(&config(kind, compiler)).map_err(|error| format!("{error:#}")))
        .as_ref()
        .map_err(|reason| SandboxError::Internal(format!("the wasmtime engine failed to start: {reason}")))
}

fn config(kind: EngineKind, compiler: Compiler) -> Config {
    let mut config = Config::new();
    config.strategy(match compiler {
        Compiler::Cranelift => Strategy::Cranelift,
        Compiler::Winch => Strategy::Winch,
    });
    // Views handed to JS point at the memory's base: it must never move, so growth happens in
    // place inside the memory's address-space reservation (or fails, never relocates).
    config.memory_may_move(false);
    config.max_wasm_stack(crate::stack::MAX_WASM_STACK);
    // Source lines in trap backtraces and profiles: a module's DWARF is kept with its code and
    // read only when a backtrace is made (the environment variable would otherwise decide).
    config.wasm_backtrace_details(wasmtime::WasmBacktraceDetails::Enable);
    config.epoch_interruption(kind != EngineKind::Dense);
    config.consume_fuel(matches!(
        kind,
        EngineKind::Metered | EngineKind::ComponentMetered | EngineKind::ApiMetered | EngineKind::ServiceMetered
    ));
    if matches!(kind, EngineKind::Api | EngineKind::ApiMetered) {
        config.wasm_memory64(true);
    }
    if kind.takes_snapshots() {
        // Memories a snapshot can be taken of and put back by remapping (wasmtime's own
        // copy-on-write images need its own memories, so data segments are copied in).
        config.with_host_memory(std::sync::Arc::new(
            crate::store::snapshot_memory::SnapshotMemoryCreator,
        ));
        config.memory_init_cow(false);
    }
    // Components run on the general engines: WASI 0.3's async functions, streams and futures.
    // The others never run components and keep the concurrency state out of their stores.
    if matches!(
        kind,
        EngineKind::Standard
            | EngineKind::Metered
            | EngineKind::Component
            | EngineKind::ComponentMetered
            | EngineKind::Service
            | EngineKind::ServiceMetered
    ) {
        config.wasm_component_model_async(true);
    } else {
        config.concurrency_support(false);
    }
    if matches!(kind, EngineKind::Service | EngineKind::ServiceMetered) {
        let slots = service_slots();
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(slots)
            .total_core_instances(slots.saturating_mul(8))
            .total_memories(slots.saturating_mul(2))
            .total_tables(slots.saturating_mul(8))
            .total_stacks(slots)
            .max_memory_size(crate::sandbox::MAX_WASM32_MEMORY_BYTES as usize)
            // Freed memories go back to the kernel 16 at a time: one madvise call (and one TLB
            // flush on every core) for many requests.
            .decommit_batch_size(16)
            // A request's first MiB of memory (and its tables and fiber stack's first 64 KiB)
            // stays resident in its slot: reset in place for the next request, not given back
            // and faulted in again. Where the kernel can say which pages were written (Linux 6.7
            // and later, PAGEMAP_SCAN) only those are reset.
            .linear_memory_keep_resident(1 << 20)
            .table_keep_resident(64 << 10)
            .async_stack_keep_resident(64 << 10)
            .pagemap_scan(wasmtime::Enabled::Auto);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    if kind == EngineKind::Dense {
        config
            .with_host_memory(std::sync::Arc::new(crate::buffer_guest::slots::SlotMemoryCreator))
            // No reservation or guard beyond the page: bounds are checked in code, and slots
            // stay contiguous read/write memory.
            .memory_reservation(DENSE_MEMORY_BYTES as u64)
            .memory_guard_size(0)
            .memory_reservation_for_growth(0)
            .memory_init_cow(false);
    }
    config
}

/// Number of live sandboxes with a time or CPU limit, in every thread. Where the ticker cannot
/// sleep safely (no `membarrier`, see `SleepBarrier`) the epoch ticks every `EPOCH_TICK` while
/// there is one; elsewhere it ticks only while a limited call runs (`TimedCall`).
static TIMED_SANDBOXES: AtomicUsize = AtomicUsize::new(0);
/// Number of running activities that need the epoch to tick: async calls (their deadline and
/// `interrupt()` are checked at each tick) and profilers.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);
/// Number of live sandboxes watched for their thread's termination (in worker threads): the
/// epoch ticks every `WATCH_TICK` while there is one and nothing needs faster ticks.
static WATCHED_SANDBOXES: AtomicUsize = AtomicUsize::new(0);
static TICKER: OnceLock<Thread> = OnceLock::new();

/// How often a running guest in a worker checks whether its thread is being terminated.
pub const WATCH_TICK: Duration = Duration::from_millis(20);

/// Keeps the ticker alive (and, for `active`, ticking) while held: one per live sandbox that has
/// a time or CPU limit (`timed`) or is watched, and one per running async call or profiler
/// (`active`). A process with none of them has no ticker thread at all.
pub struct TickerGuard(&'static AtomicUsize);

impl TickerGuard {
    /// For a sandbox with a time or CPU limit (its calls mark themselves with `TimedCall`).
    pub fn timed() -> SandboxResult<Self> {
        Self::start(&TIMED_SANDBOXES)
    }

    /// For something that needs ticks every `EPOCH_TICK` while it lasts: an async call, a
    /// profiler.
    pub fn active() -> SandboxResult<Self> {
        Self::start(&ACTIVE)
    }

    /// For a sandbox watched for its thread's termination.
    pub fn watched() -> SandboxResult<Self> {
        Self::start(&WATCHED_SANDBOXES)
    }

    fn start(counter: &'static AtomicUsize) -> SandboxResult<Self> {
        let ticker = match TICKER.get() {
            Some(ticker) => ticker,
            None => {
                let spawned = thread::Builder::new()
                    .name("wasm-sandbox-epoch".to_owned())
                    .spawn(tick_while_sandboxes_need_it)
                    .map_err(|error| SandboxError::Internal(format!("could not start the epoch ticker: {error}")))?;
                TICKER.get_or_init(|| spawned.thread().clone())
            }
        };
        // A read-modify-write: a full barrier, so this and the ticker's check before it sleeps
        // (`SLOWED` then the counters) cannot both miss each other.
        counter.fetch_add(1, Ordering::SeqCst);
        // A ticker already ticking fast is left alone: a wake-up costs a context switch (per
        // request of a busy server) and is also a tick, and ticks faster than `EPOCH_TICK`
        // would end timed calls early.
        if SLOWED.load(Ordering::SeqCst) {
            ticker.unpark();
        }
        Ok(Self(counter))
    }
}

impl Drop for TickerGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Epoch ticks a call with this time limit runs for: never less than the limit, at most about
/// two ticks more (the epoch may advance right after the deadline is set).
pub fn deadline_ticks(timeout: Duration) -> u64 {
    let ticks = timeout.as_nanos().div_ceil(EPOCH_TICK.as_nanos());
    u64::try_from(ticks).unwrap_or(u64::MAX / 2).saturating_add(1)
}

/// Whether the ticker is not ticking every `EPOCH_TICK` (sleeping, or ticking for watched
/// sandboxes only): a call that needs ticks wakes it.
static SLOWED: AtomicBool = AtomicBool::new(true);
/// How long the ticker keeps ticking fast after it last saw a call that needed it: a server whose
/// calls come and go keeps it running instead of waking it per call.
const FAST_TICKS_AFTER_LAST: Duration = Duration::from_millis(200);

/// Each thread's count of limited synchronous calls running on it (nested ones included).
/// Written by its own thread only, read by the ticker.
static RUNNING_CALLS: Mutex<Vec<&'static AtomicU32>> = Mutex::new(Vec::new());

thread_local! {
    // `const`: read without a lazy-initialisation check on the call path.
    static RUNNING_HERE: std::cell::Cell<Option<&'static AtomicU32>> = const { std::cell::Cell::new(None) };
}

/// This thread's counter, made on first use: one per thread that ever ran a limited call, kept
/// for the process's life (a few bytes per worker thread ever started).
#[cold]
fn register_thread() -> &'static AtomicU32 {
    let counter: &'static AtomicU32 = Box::leak(Box::new(AtomicU32::new(0)));
    RUNNING_CALLS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(counter);
    RUNNING_HERE.with(|here| here.set(Some(counter)));
    counter
}

/// A synchronous call with a time or CPU limit, running on this thread: the ticker ticks while
/// one exists. Costs the call two plain stores and a load (no atomic read-modify-write, no
/// fence): the ticker pays for the synchronisation, with `membarrier`, when it stops ticking.
pub struct TimedCall(&'static AtomicU32);

/// This thread's count of running limited calls, for `TimedCall::begin`. Sandboxes, which never
/// leave their thread, look it up once when made: in a shared library a thread-local costs a
/// call to `__tls_get_addr` each time, several nanoseconds on a hot call.
pub fn running_calls_here() -> &'static AtomicU32 {
    RUNNING_HERE.with(std::cell::Cell::get).unwrap_or_else(register_thread)
}

impl TimedCall {
    /// A limited call begins on the thread whose count is `counter` (`running_calls_here`).
    #[inline]
    pub fn begin(counter: &'static AtomicU32) -> Self {
        counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        // Orders the store before the load below for this thread; the ticker's `membarrier`
        // makes it a full barrier whenever it matters (see `SleepBarrier`).
        std::sync::atomic::compiler_fence(Ordering::SeqCst);
        if SLOWED.load(Ordering::Relaxed) {
            wake_ticker();
        }
        Self(counter)
    }
}

impl Drop for TimedCall {
    #[inline]
    fn drop(&mut self) {
        self.0
            .store(self.0.load(Ordering::Relaxed).saturating_sub(1), Ordering::Relaxed);
    }
}

#[cold]
fn wake_ticker() {
    if let Some(ticker) = TICKER.get()
        && SLOWED.swap(false, Ordering::SeqCst)
    {
        ticker.unpark();
    }
}

fn limited_calls_running() -> bool {
    RUNNING_CALLS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .any(|counter| counter.load(Ordering::Relaxed) > 0)
}

/// The asymmetric barrier that lets a `TimedCall` skip fences: before the ticker slows down it
/// has the kernel run a full memory barrier on every thread of the process
/// (`MEMBARRIER_CMD_PRIVATE_EXPEDITED`), then looks at the running calls. A call either is seen,
/// or sees `SLOWED` and wakes the ticker. Without `membarrier` (other systems, old kernels,
/// some emulators) the ticker never slows down while a limited sandbox lives.
struct SleepBarrier {
    available: bool,
}

impl SleepBarrier {
    fn new() -> Self {
        #[cfg(target_os = "linux")]
        {
            const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_long = 1 << 4;
            // SAFETY: a plain system call with constant arguments.
            let registered =
                unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) } == 0;
            Self { available: registered }
        }
        #[cfg(not(target_os = "linux"))]
        Self { available: false }
    }

    /// A full barrier on every thread of the process; false if it could not be made.
    fn run(&self) -> bool {
        #[cfg(target_os = "linux")]
        if self.available {
            const MEMBARRIER_CMD_PRIVATE_EXPEDITED: libc::c_long = 1 << 3;
            // SAFETY: a plain system call with constant arguments; registered in `new`.
            return unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) } == 0;
        }
        false
    }
}

/// Ticks every `EPOCH_TICK` while something needs it: a limited call running, an async call or a
/// profiler (and for `FAST_TICKS_AFTER_LAST` after); every `WATCH_TICK` while a watched sandbox
/// lives; otherwise sleeps (parked) until woken. An idle process holding limited sandboxes
/// uses no CPU.
fn tick_while_sandboxes_need_it() {
    let barrier = SleepBarrier::new();
    let mut last_busy = Instant::now();
    SLOWED.store(false, Ordering::SeqCst);
    loop {
        let must_tick = fast_ticks_needed(&barrier);
        if must_tick {
            last_busy = Instant::now();
        }
        let tick = if must_tick || last_busy.elapsed() < FAST_TICKS_AFTER_LAST {
            EPOCH_TICK
        } else {
            // Slowing down. After the barrier, a call or activity that began before it is seen
            // below, and one that begins after it sees `SLOWED` and wakes us.
            SLOWED.store(true, Ordering::SeqCst);
            if !barrier.run() || fast_ticks_needed(&barrier) {
                SLOWED.store(false, Ordering::SeqCst);
                last_busy = Instant::now();
                continue;
            }
            if WATCHED_SANDBOXES.load(Ordering::Acquire) > 0 {
                // A call that needs fast ticks unparks us, cutting the watch tick short.
                thread::park_timeout(WATCH_TICK);
                increment_epochs();
            } else {
                thread::park();
            }
            // Woken by a call (it cleared `SLOWED`): tick fast for a while, even if the call is
            // over before we look, so a loop of short calls wakes us once, not per call.
            if !SLOWED.swap(false, Ordering::SeqCst) {
                last_busy = Instant::now();
            }
            continue;
        };
        thread::park_timeout(tick);
        increment_epochs();
    }
}

/// Whether something needs a tick every `EPOCH_TICK` now: an async call or a profiler, a limited
/// call running, or (where the ticker cannot sleep safely) a limited sandbox alive.
fn fast_ticks_needed(barrier: &SleepBarrier) -> bool {
    ACTIVE.load(Ordering::SeqCst) > 0
        || limited_calls_running()
        || (!barrier.available && TIMED_SANDBOXES.load(Ordering::SeqCst) > 0)
}

fn increment_epochs() {
    for cell in [
        &STANDARD,
        &METERED,
        &STANDARD_WINCH,
        &METERED_WINCH,
        &COMPONENT,
        &COMPONENT_METERED,
        &COMPONENT_WINCH,
        &COMPONENT_METERED_WINCH,
        &API,
        &API_METERED,
        &SERVICE,
        &SERVICE_METERED,
        &SERVICE_WINCH,
        &SERVICE_METERED_WINCH,
    ] {
        if let Some(Ok(engine)) = cell.get() {
            engine.increment_epoch();
        }
    }
}

/// One value per engine that runs WASI guests (standard, metered and their pooled service
/// variants, with each compiler), made on
/// first use and cloned out: the WASI linkers of modules and of components.
pub struct PerWasiEngine<T>([OnceLock<Result<T, String>>; 12]);

impl<T: Clone> PerWasiEngine<T> {
    pub const fn new() -> Self {
        Self([const { OnceLock::new() }; 12])
    }

    /// The value for `kind` and `compiler`, made by `make` the first time.
    pub fn get(
        &self,
        kind: EngineKind,
        compiler: Compiler,
        make: impl FnOnce(&'static Engine) -> wasmtime::Result<T>,
    ) -> SandboxResult<T> {
        let index = match (kind, compiler) {
            (EngineKind::Standard, Compiler::Cranelift) => 0,
            (EngineKind::Metered, Compiler::Cranelift) => 1,
            (EngineKind::Standard, Compiler::Winch) => 2,
            (EngineKind::Metered, Compiler::Winch) => 3,
            (EngineKind::Service, Compiler::Cranelift) => 4,
            (EngineKind::ServiceMetered, Compiler::Cranelift) => 5,
            (EngineKind::Service, Compiler::Winch) => 6,
            (EngineKind::ServiceMetered, Compiler::Winch) => 7,
            (EngineKind::Component, Compiler::Cranelift) => 8,
            (EngineKind::ComponentMetered, Compiler::Cranelift) => 9,
            (EngineKind::Component, Compiler::Winch) => 10,
            (EngineKind::ComponentMetered, Compiler::Winch) => 11,
            (EngineKind::Dense | EngineKind::Api | EngineKind::ApiMetered, _) => {
                return Err(SandboxError::Internal(format!(
                    "the {} engine runs no WASI guests",
                    kind.name()
                )));
            }
        };
        let engine = engine_with(kind, compiler)?;
        self.0[index]
            .get_or_init(|| make(engine).map_err(|error| format!("{error:#}")))
            .clone()
            .map_err(|reason| SandboxError::Internal(format!("could not link WASI: {reason}")))
    }
}
