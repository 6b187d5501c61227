//! An async call's line between the pool thread running the guest and the JS thread.
//!
//! V8 runs JS only on the JS thread's own stack, so a guest running on a pool thread cannot call
//! its JS imports itself. It sends them to the JS thread (`ToJs::Import`) and waits; the JS thread
//! runs the import, perhaps awaiting a Promise, and answers (`ToPool::ImportDone`). While the
//! guest waits, the JS thread may use the store through the guest's `Caller` (the guest's thread
//! is parked, so nothing else touches it): memory reads and writes directly, and re-entrant calls
//! by sending them back to the guest's thread (`ToPool::Call`), which runs them on its own stack.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant;

use wasmtime::{Caller, Func, Val};

use crate::sandbox::HostState;
use crate::wasi::Drain;

/// The `Caller` of the import a guest on a pool thread is waiting in.
#[derive(Clone, Copy)]
pub struct CallerPtr(pub *mut Caller<'static, HostState>);

// SAFETY: the pointer is only dereferenced on the JS thread while the guest's thread is parked in
// `RemoteLink::import`, waiting for the answer (the queue's mutex orders the two), and never after
// that thread has been told the import is over (`ImportDone`, `Released`).
unsafe impl Send for CallerPtr {}

/// From the guest's thread to the JS thread.
pub enum ToJs {
    /// The guest called import `index` with `params`; answer with `ToPool::ImportDone`.
    Import {
        index: usize,
        params: Vec<Val>,
        caller: CallerPtr,
    },
    /// The re-entrant call sent with `ToPool::Call` returned.
    CallDone(wasmtime::Result<Vec<Val>>),
    /// The guest stopped waiting for its import (its time ran out): drop the `Caller` and
    /// answer `ToPool::Released`.
    Abandon,
    /// The async call is over: its outcome (the glue's own type, with the store in it).
    Finished(Box<dyn std::any::Any + Send>),
    /// A front end's own request to the JS thread (a component's import call); answer with
    /// `ToPool::Answer`.
    Request(Box<dyn std::any::Any + Send>),
    /// The guest wrote streamed output (`wasi.stdout` as a function): deliver it.
    Output,
    /// A front end's own notice to the JS thread, not answered (`wasi:http`'s head and body
    /// events).
    Event(Box<dyn std::any::Any + Send>),
}

/// From the JS thread to the guest's thread.
pub enum ToPool {
    ImportDone(Result<Vec<Val>, wasmtime::Error>),
    /// The answer to a `ToJs::Request`.
    Answer(wasmtime::Result<Box<dyn std::any::Any + Send>>),
    Call {
        func: Func,
        params: Vec<Val>,
        results: usize,
    },
    Released,
}

#[derive(Default)]
struct Queues {
    to_js: VecDeque<ToJs>,
    to_pool: VecDeque<ToPool>,
    /// The JS thread's environment is gone (worker terminated, process exiting).
    js_gone: bool,
    /// The JS thread is blocked in `wait_to_js`: only then is `js_wake` worth its system call.
    js_waiting: bool,
}

/// Why the guest's thread stopped waiting.
pub enum Stop {
    TimedOut,
    /// `interrupt()` (or `dispose()`): also while the JS thread has yet to see the request.
    Interrupted,
    JsGone,
}

/// Raised inside the guest when `interrupt()` (or `dispose()`, or the JS environment going away)
/// stops an async call; becomes `ERR_WASM_INTERRUPTED`.
#[derive(Debug, thiserror::Error)]
#[error("the guest call was interrupted")]
pub struct Interrupted;

pub struct RemoteLink {
    queues: Mutex<Queues>,
    pool_wake: Condvar,
    js_wake: Condvar,
    /// Wakes the JS thread's event loop to drain `to_js`; `false` once it cannot (gone).
    kick: Box<dyn Fn() -> bool + Send + Sync>,
    interrupted: AtomicBool,
    /// Messages ever queued for the JS thread: what a JS thread watching for them reads, without
    /// taking the lock the guest's thread needs to send them.
    sent_to_js: AtomicUsize,
    /// The guest runs on the JS thread, on a fiber, until its next epoch tick: then it yields,
    /// and a pool thread takes it over (see `js::async_calls`).
    on_js_thread: AtomicBool,
    /// When the call must end (`timeoutMs`), time spent waiting for imports included.
    pub deadline: Option<Instant>,
}

impl RemoteLink {
    pub fn new(deadline: Option<Instant>, kick: Box<dyn Fn() -> bool + Send + Sync>) -> Self {
        Self {
            queues: Mutex::default(),
            pool_wake: Condvar::new(),
            js_wake: Condvar::new(),
            kick,
            interrupted: AtomicBool::new(false),
            sent_to_js: AtomicUsize::new(0),
            on_js_thread: AtomicBool::new(false),
            deadline,
        }
    }

    /// Makes a link nobody else holds (hence `&mut`) new again for the next call, with that
    /// call's deadline: the JS thread's quick calls reuse one link instead of allocating one.
    pub fn reuse(&mut self, deadline: Option<Instant>) {
        let queues = self.queues.get_mut().unwrap_or_else(|poisoned| poisoned.into_inner());
        queues.to_js.clear();
        queues.to_pool.clear();
        queues.js_gone = false;
        queues.js_waiting = false;
        *self.interrupted.get_mut() = false;
        *self.sent_to_js.get_mut() = 0;
        *self.on_js_thread.get_mut() = false;
        self.deadline = deadline;
    }

    /// Whether the guest runs on the JS thread's fiber (its epoch ticks then yield).
    pub fn on_js_thread(&self) -> bool {
        self.on_js_thread.load(Ordering::Relaxed)
    }

    pub fn set_on_js_thread(&self, on_js_thread: bool) {
        self.on_js_thread.store(on_js_thread, Ordering::Relaxed);
    }

    fn lock(&self) -> MutexGuard<'_, Queues> {
        // Every critical section leaves the queues consistent.
        self.queues.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn interrupt(&self) {
        self.interrupted.store(true, Ordering::SeqCst);
        // A guest waiting for the JS thread stops waiting (taken under the lock, so a guest
        // between its check and its wait cannot miss it).
        drop(self.lock());
        self.pool_wake.notify_all();
    }

    pub fn is_interrupted(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }

    /// Whether the guest must stop now (checked at each epoch tick on the guest's thread).
    pub fn must_stop(&self) -> Option<wasmtime::Error> {
        if self.is_interrupted() {
            return Some(Interrupted.into());
        }
        if self.deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            return Some(wasmtime::Trap::Interrupt.into());
        }
        None
    }

    /// Guest's thread: queues `message` for the JS thread and wakes it. A message the JS thread
    /// will never read is forgotten, not dropped: it may own JS references (the store's host
    /// functions) that must not be released off the JS thread.
    pub fn send_to_js(&self, message: ToJs) {
        let mut queues = self.lock();
        if queues.js_gone {
            std::mem::forget(message);
            return;
        }
        // The JS thread drains the whole queue when woken: one wake-up for a queue that was
        // empty is enough (a wake-up per message would let a fast guest stream keep the event
        // loop in its callbacks, timers starved).
        let was_empty = queues.to_js.is_empty();
        queues.to_js.push_back(message);
        let js_waiting = queues.js_waiting;
        drop(queues);
        self.sent_to_js.fetch_add(1, Ordering::Release);
        if js_waiting {
            self.js_wake.notify_all();
        }
        if was_empty && !(self.kick)() {
            self.close_js();
        }
    }

    /// JS thread: the next message, if any.
    /// How many messages were ever sent to the JS thread (it changes when one is).
    pub fn sent_to_js(&self) -> usize {
        self.sent_to_js.load(Ordering::Acquire)
    }

    pub fn take_to_js(&self) -> Option<ToJs> {
        self.lock().to_js.pop_front()
    }

    /// JS thread: the next message if `wanted` takes it (events that can go to JS together).
    pub fn take_to_js_if(&self, wanted: impl FnOnce(&ToJs) -> bool) -> Option<ToJs> {
        let mut queues = self.lock();
        if wanted(queues.to_js.front()?) {
            queues.to_js.pop_front()
        } else {
            None
        }
    }

    /// JS thread, blocked in a re-entrant call: waits for the next message.
    pub fn wait_to_js(&self) -> ToJs {
        let mut queues = self.lock();
        loop {
            if let Some(message) = queues.to_js.pop_front() {
                return message;
            }
            queues.js_waiting = true;
            queues = self
                .js_wake
                .wait(queues)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            queues.js_waiting = false;
        }
    }

    /// JS thread: queues `message` for the guest's thread.
    pub fn send_to_pool(&self, message: ToPool) {
        self.lock().to_pool.push_back(message);
        self.pool_wake.notify_all();
    }

    /// JS thread: its environment is going away; the guest's thread stops waiting for it.
    pub fn close_js(&self) {
        self.interrupt();
        self.lock().js_gone = true;
        self.pool_wake.notify_all();
    }

    /// Guest's thread: waits for the JS thread's next message, until `deadline` if given, or
    /// until `interrupt()` if `interruptible`.
    fn wait_to_pool(&self, deadline: Option<Instant>, interruptible: bool) -> Result<ToPool, Stop> {
        let mut queues = self.lock();
        loop {
            if let Some(message) = queues.to_pool.pop_front() {
                return Ok(message);
            }
            if queues.js_gone {
                return Err(Stop::JsGone);
            }
            if interruptible && self.is_interrupted() {
                return Err(Stop::Interrupted);
            }
            queues = match deadline {
                None => self
                    .pool_wake
                    .wait(queues)
                    .unwrap_or_else(|poisoned| poisoned.into_inner()),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(Stop::TimedOut);
                    }
                    self.pool_wake
                        .wait_timeout(queues, deadline - now)
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .0
                }
            };
        }
    }

    /// Guest's thread, inside a host function: has the JS thread run import `index`, serving
    /// re-entrant calls meanwhile, and returns its results.
    pub fn import(
        &self,
        index: usize,
        caller: &mut Caller<'_, HostState>,
        params: &[Val],
        results: &mut [Val],
    ) -> wasmtime::Result<()> {
        let pointer = CallerPtr((caller as *mut Caller<'_, HostState>).cast());
        self.send_to_js(ToJs::Import {
            index,
            params: params.to_vec(),
            caller: pointer,
        });
        loop {
            match self.wait_to_pool(self.deadline, true) {
                Ok(ToPool::ImportDone(Ok(values))) => {
                    for (slot, value) in results.iter_mut().zip(values) {
                        *slot = value;
                    }
                    return Ok(());
                }
                Ok(ToPool::ImportDone(Err(error))) => return Err(error),
                Ok(ToPool::Call {
                    func,
                    params,
                    results: count,
                }) => {
                    let mut values = vec![Val::I32(0); count];
                    let outcome = func.call(&mut *caller, &params, &mut values).map(|()| values);
                    self.send_to_js(ToJs::CallDone(outcome));
                }
                Ok(ToPool::Released) => {}
                Ok(ToPool::Answer(_)) => {}
                Err(stop) => return Err(self.stopped(stop)),
            }
        }
    }

    /// Guest's thread, inside a host function: sends `request` to the JS thread
    /// (`ToJs::Request`) and waits for its answer, until the call's deadline.
    pub fn request(&self, request: Box<dyn std::any::Any + Send>) -> wasmtime::Result<Box<dyn std::any::Any + Send>> {
        self.send_to_js(ToJs::Request(request));
        loop {
            match self.wait_to_pool(self.deadline, true) {
                Ok(ToPool::Answer(answer)) => return answer,
                Ok(_) => {}
                Err(stop) => return Err(self.stopped(stop)),
            }
        }
    }

    /// Why waiting for the JS thread ended early, as the guest's error. On a timeout or an
    /// interrupt, the JS thread may still hold the waiting frame's store for a pending Promise
    /// (or be about to run the import): it lets go (`ToJs::Abandon`, answered `Released`)
    /// before that frame goes away.
    fn stopped(&self, stop: Stop) -> wasmtime::Error {
        let error = match stop {
            Stop::JsGone => return Interrupted.into(),
            Stop::Interrupted => Interrupted.into(),
            Stop::TimedOut => wasmtime::Trap::Interrupt.into(),
        };
        self.send_to_js(ToJs::Abandon);
        loop {
            match self.wait_to_pool(None, false) {
                Ok(ToPool::Released) | Err(_) => break,
                Ok(_) => {}
            }
        }
        error
    }
}

impl Drain for RemoteLink {
    fn wake(&self) {
        self.send_to_js(ToJs::Output);
    }

    fn stopping(&self) -> bool {
        self.must_stop().is_some() || self.lock().js_gone
    }
}

impl Drop for RemoteLink {
    fn drop(&mut self) {
        // A message never read (its JS side went away) may hold the store and its JS references:
        // leaked, never released off the JS thread.
        let queues = self.queues.get_mut().unwrap_or_else(|poisoned| poisoned.into_inner());
        for message in queues.to_js.drain(..) {
            std::mem::forget(message);
        }
    }
}
