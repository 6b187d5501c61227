//! `callAsync()` and `runAsync()`: the guest runs on a thread of the addon's pool (`pool.rs`)
//! while the JS thread goes on; its imports come back to the JS thread (`remote.rs`), and the
//! outcome settles a Promise.
//!
//! Each call has a thread-safe function: the guest's thread calls it to wake the event loop,
//! which then drains the call's messages (`drain`). It also keeps the event loop alive while the
//! call runs, as pending I/O does. If the JS environment goes away first (a worker terminated,
//! the process exiting), its finalizer closes the line: the guest is interrupted and what it
//! sends afterwards is never touched off the JS thread.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::ffi::c_void;
use std::future::Future;
use std::pin::Pin;
use std::ptr;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use napi::{Env, sys};
use wasmtime::Val;

use crate::engine::TickerGuard;
use crate::error::SandboxError;
use crate::js::errors::error_value;
use crate::js::imports::ImportBridge;
use crate::js::output::OutputDelivery;
use crate::js::values::{RawValue, from_wasm};
use crate::pool;
use crate::remote::{RemoteLink, ToJs};
use crate::sandbox::{AsyncCall, AsyncOutcome, AwayStore, Sandbox as CoreSandbox};

/// What a JS `Sandbox` shares with its async calls: those waiting their turn, and whether it
/// was disposed.
#[derive(Default)]
pub struct AsyncQueue {
    waiting: RefCell<VecDeque<Waiting>>,
    pub disposed: Cell<bool>,
    /// An async call is running (its store is away).
    running: Cell<bool>,
    /// The last call started on the JS thread outlasted its first epoch tick: the next one
    /// starts on the pool (until a call settles within `SPIN_AFTER_START` again).
    long_calls: Cell<bool>,
    /// The line of the last call that settled on the JS thread, for the next call: nobody else
    /// holds it any more, and making a new one cost a fifth of such a call.
    spare_line: RefCell<Option<Line>>,
}

/// A call's line to the JS thread and what wakes the JS thread through it.
struct Line {
    link: Arc<RemoteLink>,
    wakeup: Arc<Wakeup>,
}

impl Line {
    fn new(deadline: Option<Instant>) -> Self {
        let wakeup = Arc::new(Wakeup(Mutex::new(WakeupState::Watching)));
        let link = Arc::new(RemoteLink::new(deadline, {
            let wakeup = Arc::clone(&wakeup);
            // Before the thread-safe function exists the JS thread is watching the queue itself.
            Box::new(move || wakeup.kick())
        }));
        Self { link, wakeup }
    }
}

impl AsyncQueue {
    /// A line for a new call: the spare one if there is one, else a new one.
    fn line(&self, deadline: Option<Instant>) -> Line {
        match self.spare_line.borrow_mut().take() {
            Some(mut line) => {
                // `keep_spare` kept it only while nothing else held the link.
                if let Some(link) = Arc::get_mut(&mut line.link) {
                    link.reuse(deadline);
                    line.wakeup.set(WakeupState::Watching);
                    return line;
                }
                Line::new(deadline)
            }
            None => Line::new(deadline),
        }
    }

    /// Keeps the line of a call that settled on the JS thread, if nothing else holds its link
    /// and its wakeup never got a thread-safe function.
    fn keep_spare(&self, mut line: Line) {
        if Arc::get_mut(&mut line.link).is_some() && line.wakeup.current().is_none() {
            *self.spare_line.borrow_mut() = Some(line);
        }
    }
}

/// An async call made while another ran on the same sandbox: it starts when that one ends.
struct Waiting {
    call: Box<dyn Any>,
    deferred: sys::napi_deferred,
}

/// What a finished call gives the Promise: its value, or the error with its `cause`.
pub type Settled = Result<RawValue, (SandboxError, Option<RawValue>)>;

/// What an async call runs: it returns what `AsyncHost::finish` takes.
pub enum Job {
    /// A guest call run on a thread of the addon's pool, which it holds until it returns.
    Blocking(Box<dyn FnOnce() -> Box<dyn Any + Send> + Send>),
    /// A guest that mostly waits (a served HTTP request: on its client, on upstream servers):
    /// a task of the tokio runtime, which holds no thread while it waits.
    Task(Fiber),
    /// A guest call on a fiber that starts on the JS thread: a short call ends there, with no
    /// thread hand-off (which costs more than the call); a longer one yields at its first epoch
    /// tick (at most `engine::EPOCH_TICK`) and a pool thread runs it to the end.
    StartsHere(Fiber),
}

/// A guest call as a future (wasmtime runs it on a fiber of its own).
pub type Fiber = Pin<Box<dyn Future<Output = Box<dyn Any + Send>> + Send>>;

/// What async calls run on (a `Sandbox`, a component instance): it hands its store to a pool
/// job, serves the job's messages on the JS thread, and takes the store back.
pub trait AsyncHost {
    /// Each call's time limit, waiting for imports included.
    fn timeout(&self) -> Option<Duration>;
    /// JS thread: hands the store to `call`, to run on the pool as the returned job.
    fn begin(&self, link: &Arc<RemoteLink>, call: Box<dyn Any>) -> Result<Job, SandboxError>;
    /// JS thread: handles one message of the running call; `Some` with the job's outcome when
    /// the call is over.
    fn serve(&self, env: sys::napi_env, message: ToJs) -> Option<Box<dyn Any + Send>>;
    /// JS thread: takes the store back from the job's outcome and settles it.
    fn finish(&self, env: &Env, finished: Box<dyn Any + Send>) -> Settled;
    /// Stops the running call (`dispose()`).
    fn interrupt(&self) -> bool;
}

/// Everything one sandbox's async calls need on the JS thread.
#[derive(Clone)]
pub struct AsyncContext {
    pub host: Rc<dyn AsyncHost>,
    pub queue: Rc<AsyncQueue>,
    /// The guest's streamed output, delivered while the call runs.
    pub output: Option<Rc<OutputDelivery>>,
}

impl AsyncQueue {
    /// `dispose()`: waiting calls reject now; the running one is interrupted and rejects when
    /// it returns.
    pub fn dispose(&self, env: &Env, host: &dyn AsyncHost) {
        self.disposed.set(true);
        host.interrupt();
        let waiting: Vec<Waiting> = self.waiting.borrow_mut().drain(..).collect();
        for call in waiting {
            reject(env.raw(), call.deferred, &disposed_during_call(), None);
        }
    }
}

fn disposed_during_call() -> SandboxError {
    SandboxError::Disposed
}

/// Starts `call` (or queues it behind the running one) and returns its Promise.
pub fn call_async(env: &Env, context: &AsyncContext, call: Box<dyn Any>) -> napi::Result<RawValue> {
    let (deferred, promise) = new_promise(env)?;
    if context.queue.running.get() {
        context.queue.waiting.borrow_mut().push_back(Waiting { call, deferred });
    } else {
        start(env, context, call, Some(deferred));
    }
    Ok(promise)
}

/// `call_async` for the facade, which passes what it returns through `Promise.resolve`: the
/// call's value itself when it settled on the JS thread before returning (no Node-API Promise
/// made and resolved, which cost more than the call), else its Promise.
pub fn call_async_value(env: &Env, context: &AsyncContext, call: Box<dyn Any>) -> napi::Result<RawValue> {
    if context.queue.running.get() {
        return call_async(env, context, call);
    }
    match start(env, context, call, None) {
        Started::Settled(Ok(value)) => Ok(value),
        Started::Settled(Err((error, cause))) => rejected_with_cause(env, &error, cause),
        Started::Pending(Some(promise)) => Ok(promise),
        Started::Pending(None) => Err(napi::Error::new(
            napi::Status::GenericFailure,
            "could not create a Promise",
        )),
    }
}

/// A Promise already rejected with `error`: how the async methods report bad arguments.
pub fn rejected(env: &Env, error: &SandboxError) -> napi::Result<RawValue> {
    rejected_with_cause(env, error, None)
}

fn rejected_with_cause(env: &Env, error: &SandboxError, cause: Option<RawValue>) -> napi::Result<RawValue> {
    let (deferred, promise) = new_promise(env)?;
    reject(env.raw(), deferred, error, cause);
    Ok(promise)
}

/// What `start` did with a call given no Promise.
enum Started {
    /// It settled before `start` returned: no Promise was made.
    Settled(Settled),
    /// It goes on: the Promise made for it (`None` if Node-API could not make one; the call
    /// then runs to its end unobserved).
    Pending(Option<RawValue>),
}

fn new_promise(env: &Env) -> napi::Result<(sys::napi_deferred, RawValue)> {
    let mut deferred = ptr::null_mut();
    let mut promise = ptr::null_mut();
    // SAFETY: creates a promise in the live env of this call.
    let status = unsafe { sys::napi_create_promise(env.raw(), &mut deferred, &mut promise) };
    if status != sys::Status::napi_ok {
        return Err(napi::Error::new(
            napi::Status::GenericFailure,
            "could not create a Promise",
        ));
    }
    Ok((deferred, promise))
}

fn reject(env: sys::napi_env, deferred: sys::napi_deferred, error: &SandboxError, cause: Option<RawValue>) {
    // SAFETY: `deferred` is unsettled and belongs to `env`, the live env of this thread.
    unsafe {
        if let Some(value) = error_value(env, error, cause) {
            sys::napi_reject_deferred(env, deferred, value);
        }
    }
}

/// The thread-safe function of a running call, shared with the guest's thread, which uses it to
/// wake the JS thread.
struct Wakeup(Mutex<WakeupState>);

enum WakeupState {
    /// Not made yet: the JS thread is still watching the queue itself.
    Watching,
    Live(TsfnHandle),
    /// Released or finalized.
    Gone,
}

#[derive(Clone, Copy)]
struct TsfnHandle(sys::napi_threadsafe_function);
// SAFETY: Node-API's thread-safe functions are made to be called from any thread; the handle is
// used only while the mutex says it is live.
unsafe impl Send for TsfnHandle {}

impl Wakeup {
    fn kick(&self) -> bool {
        let state = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match *state {
            WakeupState::Watching => true,
            // SAFETY: live (the state changes, under this lock, before it is released).
            WakeupState::Live(TsfnHandle(tsfn)) => unsafe {
                sys::napi_call_threadsafe_function(tsfn, ptr::null_mut(), sys::ThreadsafeFunctionCallMode::nonblocking)
                    == sys::Status::napi_ok
            },
            WakeupState::Gone => false,
        }
    }

    fn set(&self, state: WakeupState) -> WakeupState {
        std::mem::replace(
            &mut *self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()),
            state,
        )
    }

    /// The live thread-safe function, if any.
    fn current(&self) -> Option<TsfnHandle> {
        match *self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) {
            WakeupState::Live(handle) => Some(handle),
            _ => None,
        }
    }

    fn take(&self) -> Option<TsfnHandle> {
        match self.set(WakeupState::Gone) {
            WakeupState::Live(handle) => Some(handle),
            _ => None,
        }
    }
}

/// One running async call, owned by its thread-safe function (freed by its finalizer).
struct Running {
    context: AsyncContext,
    link: Arc<RemoteLink>,
    wakeup: Arc<Wakeup>,
    /// The call's Promise; `None` while `start` may still settle it before returning.
    deferred: Option<sys::napi_deferred>,
    /// How it settled, when it did with no Promise (see `call_async_value`).
    settled_here: Option<Settled>,
    settled: bool,
    /// A drain from `setImmediate` is pending (`drain_after_io`), holding the thread-safe
    /// function (and so this call) alive until it runs.
    immediate: Option<TsfnHandle>,
}

/// What a `Sandbox`'s job hands back.
struct Finished {
    away: AwayStore,
    outcome: wasmtime::Result<AsyncOutcome>,
}

/// A `Sandbox` as the host of async calls.
pub struct SandboxAsync {
    pub core: Rc<CoreSandbox>,
    pub bridge: Rc<ImportBridge>,
}

impl AsyncHost for SandboxAsync {
    fn timeout(&self) -> Option<Duration> {
        self.core.limits().timeout
    }

    fn begin(&self, link: &Arc<RemoteLink>, call: Box<dyn Any>) -> Result<Job, SandboxError> {
        let call = call
            .downcast::<AsyncCall>()
            .map_err(|_| SandboxError::Internal("an async call of another kind".to_owned()))?;
        let mut away = self.core.begin_async(Arc::clone(link))?;
        if away.may_start_on_js_thread {
            return Ok(Job::StartsHere(Box::pin(async move {
                let (away, outcome) = away.run_on_fiber(*call).await;
                Box::new(Finished { away, outcome }) as Box<dyn Any + Send>
            })));
        }
        Ok(Job::Blocking(Box::new(move || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| away.run(*call)))
                .unwrap_or_else(|_| Err(wasmtime::Error::msg("the host panicked while running the guest")));
            Box::new(Finished { away, outcome })
        })))
    }

    fn serve(&self, _env: sys::napi_env, message: ToJs) -> Option<Box<dyn Any + Send>> {
        self.core.serve(message)
    }

    fn finish(&self, env: &Env, finished: Box<dyn Any + Send>) -> Settled {
        let Ok(finished) = finished.downcast::<Finished>() else {
            return Err((
                SandboxError::Internal("an async call finished with an unknown outcome".to_owned()),
                None,
            ));
        };
        let Finished { away, outcome } = *finished;
        self.core.end_async(away);
        let settled = match outcome {
            Ok(AsyncOutcome::Values(values)) => results_to_js(env, &values),
            Ok(AsyncOutcome::Exit(code)) => self
                .core
                .take_output()
                .and_then(|output| crate::js::wasi::output_object(env, Some(code), output)),
            Err(error) => Err(self.core.async_error(error)),
        };
        settled.map_err(|error| {
            let cause = match error {
                SandboxError::Import(_) => self.bridge.take_exception(),
                _ => None,
            };
            (error, cause)
        })
    }

    fn interrupt(&self) -> bool {
        self.core.interrupt_async()
    }
}

/// How long the JS thread watches for a call's first messages before it returns to the event
/// loop: a short call settles (and a quick import runs) without waking the loop from another
/// thread, which costs more than the call itself.
const SPIN_AFTER_START: std::time::Duration = std::time::Duration::from_micros(30);

/// Starts `call`, settling `deferred` when it ends. Given none, a call that settles before this
/// returns makes no Promise (`Started::Settled`); one that goes on gets one (`Started::Pending`).
fn start(env: &Env, context: &AsyncContext, call: Box<dyn Any>, deferred: Option<sys::napi_deferred>) -> Started {
    let raw_env = env.raw();
    let fail = |error: SandboxError| match deferred {
        Some(deferred) => {
            reject(raw_env, deferred, &error, None);
            Started::Pending(None)
        }
        None => Started::Settled(Err((error, None))),
    };
    let deadline = context.host.timeout().map(|timeout| Instant::now() + timeout);
    let Line { link, wakeup } = context.queue.line(deadline);
    let ticker = match TickerGuard::active() {
        Ok(ticker) => ticker,
        Err(error) => return fail(error),
    };
    let job = match context.host.begin(&link, call) {
        Ok(job) => job,
        Err(error) => return fail(error),
    };
    if let Some(output) = &context.output {
        output.hold(true);
    }
    // On this stack while the call may settle here; boxed once it outlives `start`.
    let mut running = Running {
        context: context.clone(),
        link: Arc::clone(&link),
        wakeup: Arc::clone(&wakeup),
        deferred,
        settled_here: None,
        settled: false,
        immediate: None,
    };
    context.queue.running.set(true);
    let job = match job {
        Job::StartsHere(fiber) if !context.queue.long_calls.get() => match poll_on_js_thread(&link, fiber) {
            Ok(finished) => {
                drop(ticker);
                finish(raw_env, &mut running, finished);
                let started = match running.settled_here.take() {
                    Some(settled) => Started::Settled(settled),
                    None => Started::Pending(None),
                };
                drop(running);
                context.queue.keep_spare(Line { link, wakeup });
                return started;
            }
            Err(fiber) => {
                context.queue.long_calls.set(true);
                Job::StartsHere(fiber)
            }
        },
        job => job,
    };
    // From here the call outlives this function: it needs its Promise.
    let mut promise = None;
    if running.deferred.is_none() {
        promise = new_promise(env).ok().map(|(deferred, promise)| {
            running.deferred = Some(deferred);
            promise
        });
    }
    let job_link = Arc::clone(&link);
    // A task mostly waits (a served request waits for its client): not worth watching for.
    let spin = if matches!(job, Job::Task(_)) {
        std::time::Duration::ZERO
    } else {
        SPIN_AFTER_START
    };
    let spawned = match job {
        Job::StartsHere(fiber) => pool::spawn(move || {
            let _ticker = ticker;
            job_link.send_to_js(ToJs::Finished(block_on(fiber)));
        }),
        Job::Blocking(job) => pool::spawn(move || {
            // The epoch ticks while the guest runs: `interrupt()`, deadlines and the JS side
            // going away are checked at each tick, even after the JS side is gone.
            let _ticker = ticker;
            job_link.send_to_js(ToJs::Finished(job()));
        }),
        Job::Task(task) => {
            // Detached: the task ends by itself, as a pool job does.
            drop(wasmtime_wasi::runtime::with_ambient_tokio_runtime(|| {
                tokio::task::spawn(async move {
                    let _ticker = ticker;
                    job_link.send_to_js(ToJs::Finished(task.await));
                })
            }));
            Ok(())
        }
    };
    if let Err(reason) = spawned {
        // The job (and the store in it) is gone with the failed spawn; the sandbox cannot be used.
        context.queue.running.set(false);
        settle(raw_env, &mut running, Err((SandboxError::Pool(reason), None)));
        return Started::Pending(promise);
    }
    let until = Instant::now() + spin;
    let mut seen = 0;
    while Instant::now() < until {
        // The queue's lock is taken only when something was sent: the guest's thread needs it.
        let sent = link.sent_to_js();
        if sent != seen {
            seen = sent;
            match serve_waiting(raw_env, &mut running) {
                Served::Settled => {
                    // A short call: the next may start on the JS thread again.
                    context.queue.long_calls.set(false);
                    return Started::Pending(promise);
                }
                // The rest is served at the loop's next turn here: nobody will send it again.
                Served::Output => seen = usize::MAX,
                Served::Waiting => {}
            }
        }
        std::hint::spin_loop();
    }
    // A longer call: from here the guest's thread wakes the event loop when it needs it.
    let running = Box::into_raw(Box::new(running));
    let mut tsfn = ptr::null_mut();
    let mut name = ptr::null_mut();
    // SAFETY: the live env of this call; `running` is owned by the thread-safe function from
    // here on and freed by `finalize`.
    let created = unsafe {
        sys::napi_create_string_utf8(raw_env, c"wasm-memory-sandbox async call".as_ptr(), -1, &mut name);
        sys::napi_create_threadsafe_function(
            raw_env,
            ptr::null_mut(),
            ptr::null_mut(),
            name,
            0,
            1,
            running.cast::<c_void>(),
            Some(finalize),
            running.cast::<c_void>(),
            Some(drain),
            &mut tsfn,
        ) == sys::Status::napi_ok
    };
    if !created {
        // SAFETY: not handed to Node-API: still ours. The guest runs on; its messages are
        // never read, so it ends at its next epoch tick and what it holds is leaked, not freed
        // off the JS thread.
        let mut running = unsafe { Box::from_raw(running) };
        running.link.close_js();
        context.queue.running.set(false);
        let error = SandboxError::Internal("could not create a thread-safe function".to_owned());
        settle(raw_env, &mut running, Err((error, None)));
        return Started::Pending(promise);
    }
    wakeup.set(WakeupState::Live(TsfnHandle(tsfn)));
    // Messages sent before the line was up woke nobody: handle them now.
    // SAFETY: `running` lives until `finalize`, which cannot run during this call.
    serve_then_yield(raw_env, unsafe { &mut *running });
    Started::Pending(promise)
}

/// Polls a call's fiber once on the JS thread: its outcome if it ended, or the fiber, which
/// yielded at its first epoch tick and goes on elsewhere.
fn poll_on_js_thread(link: &RemoteLink, mut fiber: Fiber) -> Result<Box<dyn Any + Send>, Fiber> {
    link.set_on_js_thread(true);
    let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        fiber.as_mut().poll(&mut Context::from_waker(Waker::noop()))
    }));
    link.set_on_js_thread(false);
    match polled {
        Ok(Poll::Ready(finished)) => Ok(finished),
        Ok(Poll::Pending) => Err(fiber),
        // The store is lost with the fiber: the sandbox reports it missing from now on.
        Err(_) => Ok(Box::new(())),
    }
}

/// Pool thread: polls `fiber` until it ends (it yields only at epoch ticks, waking itself).
fn block_on(mut fiber: Fiber) -> Box<dyn Any + Send> {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut context = Context::from_waker(&waker);
    loop {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fiber.as_mut().poll(&mut context))) {
            Ok(Poll::Ready(finished)) => return finished,
            Ok(Poll::Pending) => std::thread::park(),
            Err(_) => return Box::new(()),
        }
    }
}

/// What `serve_waiting` left.
enum Served {
    Settled,
    /// Output was delivered: what came after it waits for the event loop's next turn.
    Output,
    /// Nothing is queued.
    Waiting,
}

/// Handles the call's queued messages up to the first output delivery. A guest writing faster
/// than its callback reads would otherwise keep the JS thread delivering in one go, timers and
/// I/O starved (its thread-safe function is called again as soon as it has room to write).
fn serve_waiting(env: sys::napi_env, running: &mut Running) -> Served {
    if running.settled {
        return Served::Settled;
    }
    while let Some(message) = running.link.take_to_js() {
        if let (ToJs::Output, Some(output)) = (&message, &running.context.output) {
            output.deliver(&Env::from(env));
            return Served::Output;
        }
        if let Some(finished) = running.context.host.serve(env, message) {
            finish(env, running, finished);
            return Served::Settled;
        }
    }
    Served::Waiting
}

/// `serve_waiting`, then, after output, the next messages from `setImmediate`: after the timers
/// and I/O of this turn of the event loop, as a readable stream's data events.
fn serve_then_yield(env: sys::napi_env, running: &mut Running) {
    if matches!(serve_waiting(env, running), Served::Output) && !drain_after_io(env, running) {
        // No `setImmediate` (a context without one): on the thread-safe function, as before.
        running.wakeup.kick();
    }
}

/// Releases a call's thread-safe function (its finalizer then frees the call).
fn release(wakeup: &Wakeup) {
    if let Some(TsfnHandle(tsfn)) = wakeup.take() {
        // SAFETY: live until this release, which is the only one.
        unsafe { sys::napi_release_threadsafe_function(tsfn, sys::ThreadsafeFunctionReleaseMode::release) };
    }
}

/// JS thread, woken by the guest's thread: handles the call's messages.
unsafe extern "C" fn drain(env: sys::napi_env, _callback: sys::napi_value, context: *mut c_void, _data: *mut c_void) {
    if env.is_null() || context.is_null() {
        return; // the environment is being torn down: `finalize` follows
    }
    // SAFETY: `context` is the call's `Running`, alive until `finalize`, used on this thread only.
    let running = unsafe { &mut *context.cast::<Running>() };
    // A pending immediate serves what woke this call, after the turn's timers and I/O.
    if running.settled || running.immediate.is_some() {
        return;
    }
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| serve_then_yield(env, running)));
    if outcome.is_err() {
        // Nothing can be done for this call any more; at least the process goes on.
        running.link.interrupt();
    }
}

/// Schedules `drain_immediate` with `setImmediate`; `false` if it could not be.
fn drain_after_io(env: sys::napi_env, running: &mut Running) -> bool {
    let Some(TsfnHandle(tsfn)) = running.wakeup.current() else {
        return false;
    };
    // SAFETY: the live env, on its thread; the thread-safe function is live (`current`), and the
    // hold taken here keeps it and `running` alive until `drain_immediate` or env teardown.
    unsafe {
        if sys::napi_acquire_threadsafe_function(tsfn) != sys::Status::napi_ok {
            return false;
        }
        let mut global = ptr::null_mut();
        let mut set_immediate = ptr::null_mut();
        let mut callback = ptr::null_mut();
        let mut ignored = ptr::null_mut();
        let data = ptr::from_mut(running).cast::<c_void>();
        let scheduled = sys::napi_get_global(env, &mut global) == sys::Status::napi_ok
            && sys::napi_get_named_property(env, global, c"setImmediate".as_ptr(), &mut set_immediate)
                == sys::Status::napi_ok
            && sys::napi_create_function(env, c"drain".as_ptr(), 5, Some(drain_immediate), data, &mut callback)
                == sys::Status::napi_ok
            && sys::napi_call_function(env, global, set_immediate, 1, &callback, &mut ignored) == sys::Status::napi_ok;
        if !scheduled {
            let mut exception = ptr::null_mut();
            sys::napi_get_and_clear_last_exception(env, &mut exception);
            sys::napi_release_threadsafe_function(tsfn, sys::ThreadsafeFunctionReleaseMode::release);
            return false;
        }
    }
    running.immediate = Some(TsfnHandle(tsfn));
    true
}

/// `setImmediate`'s callback: serves the call's messages, then lets its thread-safe function go.
unsafe extern "C" fn drain_immediate(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    let mut data = ptr::null_mut();
    // SAFETY: the callback's own info.
    unsafe { sys::napi_get_cb_info(env, info, ptr::null_mut(), ptr::null_mut(), ptr::null_mut(), &mut data) };
    // SAFETY: the `Running` given to `drain_after_io`, kept alive by the hold it took.
    let running = unsafe { &mut *data.cast::<Running>() };
    let Some(TsfnHandle(tsfn)) = running.immediate.take() else {
        return ptr::null_mut();
    };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| serve_then_yield(env, running)));
    if outcome.is_err() {
        running.link.interrupt();
    }
    // Last: the call (and `running`) may be freed once no hold is left.
    // SAFETY: the hold `drain_after_io` took.
    unsafe { sys::napi_release_threadsafe_function(tsfn, sys::ThreadsafeFunctionReleaseMode::release) };
    ptr::null_mut()
}

fn finish(env: sys::napi_env, running: &mut Running, finished: Box<dyn Any + Send>) {
    running.settled = true;
    let context = running.context.clone();
    let handle = Env::from(env);
    // Everything the guest wrote reaches its callbacks before the call settles.
    if let Some(output) = &context.output {
        output.deliver(&handle);
    }
    let mut settled = context.host.finish(&handle, finished);
    if let Some(output) = &context.output {
        output.hold(false);
        // A callback that threw is why the guest failed, if it did.
        if let Some(failure) = output.take_failure() {
            settled = Err(failure);
        }
    }
    context.queue.running.set(false);
    release(&running.wakeup);
    if context.queue.disposed.get() {
        settled = Err((disposed_during_call(), None));
    }
    settle(env, running, settled);
    // The next call waiting on this sandbox, if any.
    let next = context.queue.waiting.borrow_mut().pop_front();
    if let Some(Waiting { call, deferred }) = next {
        start(&handle, &context, call, Some(deferred));
    }
}

/// Settles the call's Promise, or keeps the outcome for `start` when it has none yet.
fn settle(env: sys::napi_env, running: &mut Running, settled: Settled) {
    match (running.deferred, settled) {
        // SAFETY: `deferred` is unsettled and belongs to this env.
        (Some(deferred), Ok(value)) => unsafe {
            sys::napi_resolve_deferred(env, deferred, value);
        },
        (Some(deferred), Err((error, cause))) => reject(env, deferred, &error, cause),
        (None, settled) => running.settled_here = Some(settled),
    }
}

/// The thread-safe function's finalizer: after the last release, or when the environment goes
/// away with the call still running (then the guest is interrupted and left to end alone).
unsafe extern "C" fn finalize(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    // SAFETY: the `Running` given at creation; this is its only release.
    let running = unsafe { Box::from_raw(data.cast::<Running>()) };
    running.wakeup.take();
    if !running.settled {
        running.link.close_js();
        running.context.queue.running.set(false);
    }
}

/// Results as JS returns them: `undefined` for none, the value for one, an array for several.
pub fn results_to_js(env: &Env, results: &[Val]) -> crate::error::SandboxResult<RawValue> {
    let mut value = ptr::null_mut();
    match results {
        // SAFETY: creating values in the live env.
        [] => unsafe { sys::napi_get_undefined(env.raw(), &mut value) },
        [single] => return from_wasm(env, single),
        several => {
            // SAFETY: as above.
            unsafe { sys::napi_create_array_with_length(env.raw(), several.len(), &mut value) };
            for (index, result) in several.iter().enumerate() {
                let element = from_wasm(env, result)?;
                // SAFETY: `value` is the array just created.
                unsafe { sys::napi_set_element(env.raw(), value, index as u32, element) };
            }
            sys::Status::napi_ok
        }
    };
    Ok(value)
}

/// How many guest calls run at once on the addon's pool (its threads): the machine's cores
/// unless `setAsyncThreads()` or the environment variable `WASM_MEMORY_SANDBOX_THREADS` said
/// otherwise.
#[napi_derive::napi]
#[cfg_attr(test, allow(dead_code))] // registered with Node only outside `cfg(test)`
pub fn async_threads() -> u32 {
    pool::size() as u32
}

/// Sets how many guest calls run at once on the addon's pool (1 to 256), for every thread of
/// the process: more threads start as calls need them, surplus ones end when idle.
#[napi_derive::napi(catch_unwind)]
#[cfg_attr(test, allow(dead_code))] // registered with Node only outside `cfg(test)`
pub fn set_async_threads(env: &Env, threads: napi::bindgen_prelude::Unknown) -> napi::Result<()> {
    use crate::js::errors::OrThrow;
    let threads =
        crate::js::values::integer_in_range(env, &threads, "threads", 1.0, pool::MAX_POOL_SIZE as f64).or_throw(env)?;
    pool::set_size(threads as usize);
    Ok(())
}
