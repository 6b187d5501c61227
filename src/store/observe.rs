//! Seeing inside a guest: per-call figures (calls, wall and CPU time, fuel, memory), the CPU-time
//! limit and the sampling profiler. Every front end's store data holds an `Observer`, which is
//! also the store's resource limiter (so it sees every memory growth); the front ends mark where
//! a call begins and ends and where it leaves wasm for a host function, and the epoch callback
//! enforces the CPU limit and takes the profiler's samples.
//!
//! Reading a thread's CPU clock is a system call (about 0.2 us), four times a hot call's cost,
//! so calls are timed only where asked: the `metrics` option, a CPU limit, or a running profiler.
//! Counting calls, fuel and memory costs nothing measurable and is always on.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use wasmtime::{AsContextMut, ResourceLimiter, StoreContextMut, StoreLimits, Trap, UpdateDeadline, WasmBacktrace};

use crate::engine::TickerGuard;
use crate::error::{SandboxError, SandboxResult};

/// The calling thread's CPU time (user and system), in nanoseconds.
pub fn thread_cpu_ns() -> u64 {
    let mut time = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid out pointer; the clock exists on every platform the addon is built for.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut time) };
    (time.tv_sec as u64).saturating_mul(1_000_000_000) + time.tv_nsec as u64
}

/// Now on the monotonic clock, in microseconds: the clock of `process.hrtime()` and of the
/// `startTime` Node writes in a `.cpuprofile`.
pub fn monotonic_us() -> f64 {
    let mut time = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid out pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut time) };
    time.tv_sec as f64 * 1e6 + time.tv_nsec as f64 / 1e3
}

/// What calls cost: one call's figures, or a sandbox's so far.
#[derive(Debug, Clone, Copy, Default)]
pub struct CallFigures {
    pub calls: u64,
    /// `None` when the calls were not timed.
    pub wall: Option<Duration>,
    pub cpu: Option<Duration>,
    /// Fuel the guest burned; `None` without a fuel budget.
    pub fuel: Option<u64>,
    /// The most linear memory held at once, in bytes.
    pub peak_memory_bytes: u64,
}

/// The running outermost call.
struct Running {
    wall_start: Option<Instant>,
    /// CPU time used before the current stretch of wasm, and when that stretch began (`None`
    /// while a host function runs).
    cpu_used: u64,
    cpu_since: Option<u64>,
    /// Depth of host functions running (a host function may call back into the guest).
    in_host: u32,
    fuel_before: Option<u64>,
    peak_memory_bytes: u64,
    /// Wall-clock end of a timed call whose epoch ticks go to the callback (`tick`).
    deadline: Option<Instant>,
}

impl Running {
    /// The guest's CPU time in this call so far: the stretches of wasm that ended, and the one
    /// running (if the call is timed and not in a host function).
    fn cpu_so_far(&self) -> Duration {
        let now = self.cpu_since.map_or(0, |since| thread_cpu_ns().saturating_sub(since));
        Duration::from_nanos(self.cpu_used + now)
    }
}

/// Raised from the epoch callback when a call used up its CPU time.
#[derive(Debug, thiserror::Error)]
#[error("the guest used up its CPU time (cpuTimeMs: {})", .limit.as_millis())]
pub struct CpuLimitExceeded {
    pub limit: Duration,
}

/// A store's observer and resource limiter.
pub struct Observer {
    limits: StoreLimits,
    /// Time every call (the `metrics` option).
    timed: bool,
    cpu_limit: Option<Duration>,
    totals: CallFigures,
    /// The last watched call's number (its count in `totals.calls`) and figures.
    last: Option<(u64, CallFigures)>,
    running: Option<Running>,
    /// Bytes of linear memory the store holds now (every growth passes the limiter).
    memory_bytes: u64,
    profiler: Option<Profiler>,
}

impl Observer {
    pub fn new(limits: StoreLimits, timed: bool, cpu_limit: Option<Duration>) -> Self {
        Self {
            limits,
            timed,
            cpu_limit,
            totals: CallFigures::default(),
            last: None,
            running: None,
            memory_bytes: 0,
            profiler: None,
        }
    }

    /// Whether calls need more than counting: timing, or fuel to account for.
    pub fn watches_calls(&self, fuel: bool) -> bool {
        fuel || self.timing()
    }

    /// Whether every epoch tick must reach `tick` (a CPU limit or a profiler).
    pub fn needs_ticks(&self) -> bool {
        self.cpu_limit.is_some() || self.profiler.is_some()
    }

    /// Whether calls are timed: asked for, or needed by a CPU limit or a profiler.
    pub fn timing(&self) -> bool {
        self.timed || self.needs_ticks()
    }

    /// Counts a call that needs nothing else (the hot path: one increment; `last` tells such a
    /// call from a watched one by its number).
    #[inline]
    pub fn count_call(&mut self) {
        self.totals.calls += 1;
    }

    /// An outermost call begins, on the thread that runs the guest. `fuel` is the fuel left;
    /// `timeout` the wall-clock limit when its ticks go to `tick`.
    pub fn begin(&mut self, fuel: Option<u64>, timeout: Option<Duration>) {
        let timing = self.timing();
        let now = (timing || timeout.is_some()).then(Instant::now);
        self.running = Some(Running {
            wall_start: now.filter(|_| timing),
            cpu_used: 0,
            cpu_since: timing.then(thread_cpu_ns),
            in_host: 0,
            fuel_before: fuel,
            peak_memory_bytes: self.memory_bytes,
            deadline: timeout.and_then(|timeout| now.map(|now| now + timeout)),
        });
        if let Some(profiler) = &mut self.profiler {
            profiler.call_began();
        }
    }

    /// The outermost call ended (returned or failed). `fuel` is the fuel left.
    pub fn end(&mut self, fuel: Option<u64>) {
        let Some(running) = self.running.take() else {
            return;
        };
        let cpu = running.wall_start.is_some().then(|| running.cpu_so_far());
        let figures = CallFigures {
            calls: 1,
            wall: running.wall_start.map(|start| start.elapsed()),
            cpu,
            fuel: running
                .fuel_before
                .zip(fuel)
                .map(|(before, after)| before.saturating_sub(after)),
            peak_memory_bytes: running.peak_memory_bytes,
        };
        let totals = &mut self.totals;
        totals.calls += 1;
        totals.wall = add(totals.wall, figures.wall);
        totals.cpu = add(totals.cpu, figures.cpu);
        totals.fuel = add(totals.fuel, figures.fuel);
        self.last = Some((totals.calls, figures));
        if let Some(profiler) = &mut self.profiler {
            profiler.call_ended();
        }
    }

    /// The guest calls a host function: its time is not the guest's.
    pub fn enter_host(&mut self) {
        if let Some(running) = &mut self.running {
            running.in_host += 1;
            if let Some(since) = running.cpu_since.take() {
                running.cpu_used += thread_cpu_ns().saturating_sub(since);
            }
        }
    }

    /// The host function returned to the guest.
    pub fn leave_host(&mut self) {
        if let Some(running) = &mut self.running {
            running.in_host = running.in_host.saturating_sub(1);
            if running.in_host == 0 && running.wall_start.is_some() {
                running.cpu_since = Some(thread_cpu_ns());
            }
        }
    }

    /// CPU time the running call's guest has used so far.
    fn cpu_used(&self) -> Option<Duration> {
        self.running.as_ref().map(Running::cpu_so_far)
    }

    /// The figures of every call so far (`memoryBytes` comes from the front end, which knows the
    /// memories).
    pub fn totals(&self) -> CallFigures {
        CallFigures {
            peak_memory_bytes: self.peak_memory_bytes(),
            ..self.totals
        }
    }

    pub fn peak_memory_bytes(&self) -> u64 {
        self.totals.peak_memory_bytes.max(self.memory_bytes)
    }

    /// The figures of the last call, if any.
    pub fn last(&self) -> Option<CallFigures> {
        match self.last {
            _ if self.totals.calls == 0 => None,
            Some((number, figures)) if number == self.totals.calls => Some(figures),
            // A counted call: memory grows only during calls, so what it holds now is the call's
            // peak (a restore, which may shrink it, keeps the figures first).
            _ => Some(CallFigures {
                calls: 1,
                peak_memory_bytes: self.memory_bytes,
                ..CallFigures::default()
            }),
        }
    }

    /// The memories were replaced (a snapshot restored): `bytes` is what they hold now.
    pub fn memory_replaced(&mut self, bytes: u64) {
        // The last call's peak is what memory held before (see `last`): kept now.
        if let Some(last) = self.last() {
            self.last = Some((self.totals.calls, last));
        }
        self.memory_bytes = bytes;
        self.note_memory();
    }

    fn note_memory(&mut self) {
        let bytes = self.memory_bytes;
        self.totals.peak_memory_bytes = self.totals.peak_memory_bytes.max(bytes);
        if let Some(running) = &mut self.running {
            running.peak_memory_bytes = running.peak_memory_bytes.max(bytes);
        }
    }

    pub fn profiling(&self) -> bool {
        self.profiler.is_some()
    }

    /// Starts sampling every `interval` (rounded up to the epoch tick).
    pub fn start_profiling(&mut self, interval: Duration) -> SandboxResult<()> {
        if self.profiler.is_some() {
            return Err(SandboxError::InvalidState(
                "startProfiling() was called while the profiler is running: call stopProfiling() first".to_owned(),
            ));
        }
        self.profiler = Some(Profiler::new(interval)?);
        Ok(())
    }

    /// Stops sampling and hands over what was sampled.
    pub fn stop_profiling(&mut self) -> Option<Profile> {
        self.profiler.take().map(Profiler::finish)
    }
}

fn add<T: std::ops::Add<Output = T>>(total: Option<T>, more: Option<T>) -> Option<T> {
    match (total, more) {
        (Some(total), Some(more)) => Some(total + more),
        (total, None) => total,
        (None, more) => more,
    }
}

/// Store data that carries an `Observer` (which is also its resource limiter).
pub trait LimitedState: 'static {
    fn observer(&mut self) -> &mut Observer;
}

impl ResourceLimiter for Observer {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum)?;
        if allowed {
            self.memory_bytes = (self.memory_bytes + desired as u64).saturating_sub(current as u64);
            self.note_memory();
        }
        Ok(allowed)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.memory_grow_failed(error)
    }

    fn table_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

/// Every epoch tick of a store with a CPU limit or a profiler: ends a call past its wall-clock
/// deadline or its CPU time, and takes a profiler sample when one is due.
pub fn tick<T: LimitedState>(context: &mut StoreContextMut<'_, T>) -> wasmtime::Result<UpdateDeadline> {
    let observer = context.data_mut().observer();
    if let Some(deadline) = observer.running.as_ref().and_then(|running| running.deadline)
        && Instant::now() >= deadline
    {
        return Err(Trap::Interrupt.into());
    }
    if let Some(limit) = observer.cpu_limit
        && observer.cpu_used().is_some_and(|used| used >= limit)
    {
        return Err(CpuLimitExceeded { limit }.into());
    }
    if observer.profiler.as_ref().is_some_and(Profiler::due) {
        sample(context, None);
    }
    Ok(UpdateDeadline::Continue(1))
}

/// The CPU-limit stop `error` is, if it is one.
pub fn cpu_limit_of(error: &wasmtime::Error) -> Option<&CpuLimitExceeded> {
    error.downcast_ref::<CpuLimitExceeded>()
}

/// A frame of a profile: a wasm function or a JS import.
#[derive(Debug, Clone)]
pub struct ProfileFrame {
    pub name: String,
    pub import: bool,
    pub module: Option<String>,
    pub url: Option<String>,
    pub line: Option<u32>,
    pub column: Option<u32>,
    pub offset: Option<u32>,
    pub func_index: Option<u32>,
}

/// A sample: the frames on the stack (outermost first; none between calls) and when.
#[derive(Debug, Clone)]
pub struct Sample {
    pub stack: Vec<u32>,
    pub time_us: f64,
}

/// What `stopProfiling()` returns, before JS turns it into a file format.
#[derive(Debug, Clone)]
pub struct Profile {
    pub start_us: f64,
    pub end_us: f64,
    pub interval: Duration,
    pub frames: Vec<ProfileFrame>,
    pub samples: Vec<Sample>,
}

/// How a frame is told apart: the compiled module's code address and the function index, or
/// the import's name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum FrameKey {
    Wasm(usize, u32),
    Import(String),
}

/// Samples the guest's stack from the epoch tick.
pub struct Profiler {
    interval: Duration,
    start_us: f64,
    next_due: Instant,
    frames: Vec<ProfileFrame>,
    frame_ids: HashMap<FrameKey, u32>,
    samples: Vec<Sample>,
    /// Keeps the epoch ticking every millisecond while profiling.
    _ticker: TickerGuard,
}

/// Samples kept at most (about 17 minutes of guest time at 1 kHz, some 100 MB at worst); later
/// ones are dropped, so a profiler left running cannot take the process's memory.
pub const MAX_SAMPLES: usize = 1_000_000;

impl Profiler {
    fn new(interval: Duration) -> SandboxResult<Self> {
        Ok(Self {
            interval,
            start_us: monotonic_us(),
            next_due: Instant::now(),
            frames: Vec::new(),
            frame_ids: HashMap::new(),
            samples: Vec::new(),
            _ticker: TickerGuard::active()?,
        })
    }

    fn due(&self) -> bool {
        Instant::now() >= self.next_due
    }

    fn call_began(&mut self) {
        // The first tick of a call samples it.
        self.next_due = Instant::now();
    }

    fn call_ended(&mut self) {
        // Between calls the guest does not run: an empty sample ends the last one's time.
        self.push(Vec::new());
    }

    fn push(&mut self, stack: Vec<u32>) {
        if self.samples.len() < MAX_SAMPLES {
            self.samples.push(Sample {
                stack,
                time_us: monotonic_us(),
            });
        }
    }

    /// The frames of `backtrace`, outermost first.
    fn stack_of(&mut self, backtrace: &WasmBacktrace) -> Vec<u32> {
        backtrace
            .frames()
            .iter()
            .rev()
            .map(|frame| self.wasm_frame(frame))
            .collect()
    }

    /// A sample of `stack` for each interval that passed since `since_us` (its last sample).
    fn fill(&mut self, stack: &[u32], since_us: f64) {
        let step = self.interval.as_secs_f64() * 1e6;
        let now = monotonic_us();
        let mut time = since_us + step;
        while time < now && self.samples.len() < MAX_SAMPLES {
            self.samples.push(Sample {
                stack: stack.to_vec(),
                time_us: time,
            });
            time += step;
        }
    }

    /// Records a sample of `stack`.
    fn record(&mut self, stack: Vec<u32>) {
        // The sample after this one is due an interval from now; a tick a little early (the
        // ticker's sleep is not exact) still takes it.
        self.next_due = Instant::now() + self.interval.saturating_sub(Duration::from_micros(200));
        self.push(stack);
    }

    fn wasm_frame(&mut self, frame: &wasmtime::FrameInfo) -> u32 {
        let key = FrameKey::Wasm(frame.module().image_range().start as usize, frame.func_index());
        // The function itself is the outermost symbol (the others were inlined into it); DWARF
        // line 0 is code of no line.
        let symbols = frame.symbols();
        let symbol = symbols
            .iter()
            .rev()
            .find(|symbol| symbol.line().is_some_and(|line| line > 0))
            .or(symbols.last());
        let line = symbol.and_then(|symbol| symbol.line()).filter(|&line| line > 0);
        if let Some(&id) = self.frame_ids.get(&key) {
            // A function's line is the first of its lines any sample saw.
            let known = &mut self.frames[id as usize];
            if let Some(line) = line
                && known.line.is_none_or(|known_line| line < known_line)
            {
                known.line = Some(line);
                known.column = symbol.and_then(|symbol| symbol.column());
                if known.url.is_none() {
                    known.url = symbol.and_then(|symbol| symbol.file()).map(str::to_owned);
                }
            }
            return id;
        }
        let name = frame.func_name().map_or_else(
            || format!("wasm-function[{}]", frame.func_index()),
            crate::error::demangled,
        );
        let id = self.frames.len() as u32;
        self.frames.push(ProfileFrame {
            name,
            import: false,
            module: frame.module().name().map(str::to_owned),
            url: symbol.and_then(|symbol| symbol.file()).map(str::to_owned),
            line,
            column: symbol.and_then(|symbol| symbol.column()),
            offset: frame.func_offset().and_then(|offset| {
                frame
                    .module_offset()
                    .and_then(|at| u32::try_from(at.saturating_sub(offset)).ok())
            }),
            func_index: Some(frame.func_index()),
        });
        self.frame_ids.insert(key, id);
        id
    }

    fn import_frame(&mut self, name: &str) -> u32 {
        let key = FrameKey::Import(name.to_owned());
        if let Some(&id) = self.frame_ids.get(&key) {
            return id;
        }
        let id = self.frames.len() as u32;
        self.frames.push(ProfileFrame {
            name: name.to_owned(),
            import: true,
            module: None,
            url: None,
            line: None,
            column: None,
            offset: None,
            func_index: None,
        });
        self.frame_ids.insert(key, id);
        id
    }

    fn finish(self) -> Profile {
        Profile {
            start_us: self.start_us,
            end_us: monotonic_us(),
            interval: self.interval,
            frames: self.frames,
            samples: self.samples,
        }
    }
}

/// Samples the guest's stack now, with the import `import` on top when it runs; returns the
/// guest's frames (outermost first) and the sample (those with the import on top).
fn sample<C>(caller: &mut C, import: Option<&str>) -> (Vec<u32>, Vec<u32>)
where
    C: AsContextMut,
    C::Data: LimitedState,
{
    let backtrace = WasmBacktrace::capture(&*caller);
    let mut context = caller.as_context_mut();
    let Some(profiler) = &mut context.data_mut().observer().profiler else {
        return (Vec::new(), Vec::new());
    };
    let stack = profiler.stack_of(&backtrace);
    let mut sampled = stack.clone();
    if let Some(import) = import {
        sampled.push(profiler.import_frame(import));
    }
    profiler.record(sampled.clone());
    (stack, sampled)
}

/// Calls `run` inside a host function, leaving the guest's CPU time and profile aside while it
/// runs. `name` is the import's name, for the profile.
pub fn in_host<C, R>(caller: &mut C, name: impl FnOnce() -> String, run: impl FnOnce(&mut C) -> R) -> R
where
    C: AsContextMut,
    C::Data: LimitedState,
{
    let mut context = caller.as_context_mut();
    let observer = context.data_mut().observer();
    if observer.running.is_none() {
        return run(caller);
    }
    // While profiling, the import's time is a frame of its own on top of the guest's stack: a
    // sample as it is entered, and one of the same guest stack as it returns.
    let entry = observer.profiling().then(|| {
        let (guest, with_import) = sample(caller, Some(&name()));
        let recorded = caller
            .as_context_mut()
            .data_mut()
            .observer()
            .profiler
            .as_ref()
            .map_or(0, |profiler| profiler.samples.len());
        (guest, with_import, monotonic_us(), recorded)
    });
    caller.as_context_mut().data_mut().observer().enter_host();
    let result = run(caller);
    let mut context = caller.as_context_mut();
    let observer = context.data_mut().observer();
    observer.leave_host();
    if let (Some((guest, with_import, entered_us, recorded)), Some(profiler)) = (entry, &mut observer.profiler) {
        // Ticks cannot interrupt JS: the import gets the samples they would have taken while it
        // ran (unless a call back into the guest sampled meanwhile: times stay in order).
        if profiler.samples.len() == recorded {
            profiler.fill(&with_import, entered_us);
        }
        profiler.record(guest);
    }
    result
}
