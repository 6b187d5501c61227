//! Output handed to JS callbacks as the guest writes it (`wasi.stdout: (chunk) => {}`).
//!
//! Both streams of a guest share one queue, so chunks reach JS in the order they were written.
//! While an async call runs, the guest's thread wakes the JS thread for each batch (`Drain`)
//! and waits while more than `IN_FLIGHT_BYTES` are not yet delivered: a guest writing gigabytes
//! to a slow callback does not grow the host's memory. A synchronous call runs on the JS thread
//! itself, which cannot deliver before it returns: then the queue holds at most
//! `maxOutputBytes`, as a capture does, and a write past that fails with `ENOSPC`.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use super::StreamKind;
use super::output::{Sink, broken_pipe, output_full};

/// Bytes written but not yet delivered past which the guest of an async call waits.
pub const IN_FLIGHT_BYTES: usize = 1024 * 1024;

/// How often a guest waiting for room checks whether its call must stop.
const STOP_CHECK: Duration = Duration::from_millis(10);

/// The JS side of an async call, as the guest's thread sees it.
pub trait Drain: Send + Sync {
    /// Asks the JS thread to deliver what is queued.
    fn wake(&self);
    /// Whether the guest must stop waiting (its call was interrupted, timed out, or JS is gone).
    fn stopping(&self) -> bool;
}

/// The queue of a guest's streamed stdout and stderr.
#[derive(Clone)]
pub struct OutputStreams(Arc<Shared>);

struct Shared {
    state: Mutex<State>,
    room: Condvar,
}

struct State {
    /// The bytes written and not yet delivered, in order; its allocation is kept between
    /// deliveries (no allocation per guest write).
    bytes: VecDeque<u8>,
    /// Which stream each run of `bytes` belongs to, and its length (consecutive writes to one
    /// stream form one run).
    runs: VecDeque<(StreamKind, usize)>,
    /// What a synchronous call may queue (`maxOutputBytes`).
    limit: usize,
    /// The running async call's JS side, if one runs.
    drain: Option<Arc<dyn Drain>>,
    /// The JS thread was asked to deliver and has not yet.
    woken: bool,
    /// The JS thread cannot deliver for now (it waits for a re-entrant call into this guest):
    /// writers queue up to `limit` instead of waiting for it.
    js_busy: bool,
    /// A callback threw: every later write fails with `EPIPE`.
    broken: bool,
    truncated: [bool; 2],
}

/// One stream of an `OutputStreams`, as a sink for wasmtime-wasi.
#[derive(Clone)]
pub struct StreamedSink {
    streams: OutputStreams,
    kind: StreamKind,
}

impl OutputStreams {
    pub fn new(limit: usize) -> Self {
        Self(Arc::new(Shared {
            state: Mutex::new(State {
                bytes: VecDeque::new(),
                runs: VecDeque::new(),
                limit,
                drain: None,
                woken: false,
                js_busy: false,
                broken: false,
                truncated: [false; 2],
            }),
            room: Condvar::new(),
        }))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every critical section leaves the state consistent.
        self.0.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn sink(&self, kind: StreamKind) -> StreamedSink {
        StreamedSink {
            streams: self.clone(),
            kind,
        }
    }

    /// An async call starts: from now on the JS thread delivers while the guest runs.
    pub fn attach(&self, drain: Arc<dyn Drain>) {
        let mut state = self.state();
        state.drain = Some(drain);
        state.woken = false;
        state.js_busy = false;
    }

    /// The async call is over.
    pub fn detach(&self) {
        self.state().drain = None;
    }

    /// JS thread: moves every queued byte into `out` (replacing its contents) and returns the
    /// runs they form, in order; lets waiting writers go on.
    pub fn take_into(&self, out: &mut Vec<u8>) -> Vec<(StreamKind, usize)> {
        let mut state = self.state();
        state.woken = false;
        state.js_busy = false;
        out.clear();
        let (front, back) = state.bytes.as_slices();
        out.extend_from_slice(front);
        out.extend_from_slice(back);
        state.bytes.clear();
        // What a synchronous call queued (up to `maxOutputBytes`) is not kept allocated.
        if state.bytes.capacity() > 4 * IN_FLIGHT_BYTES {
            state.bytes.shrink_to(IN_FLIGHT_BYTES);
        }
        let runs = state.runs.drain(..).collect();
        drop(state);
        self.0.room.notify_all();
        runs
    }

    /// Whether anything waits to be delivered.
    pub fn has_pending(&self) -> bool {
        !self.state().bytes.is_empty()
    }

    /// JS thread: it waits for a re-entrant call and cannot deliver until that returns.
    pub fn js_busy(&self) {
        self.state().js_busy = true;
        self.0.room.notify_all();
    }

    /// A callback threw: the guest's later writes fail.
    pub fn break_pipe(&self) {
        let mut state = self.state();
        state.broken = true;
        state.bytes.clear();
        state.runs.clear();
        drop(state);
        self.0.room.notify_all();
    }

    /// Whether bytes of each stream (stdout, stderr) were refused since last asked.
    pub fn take_truncated(&self) -> [bool; 2] {
        std::mem::take(&mut self.state().truncated)
    }

    fn append(&self, kind: StreamKind, bytes: &[u8]) -> io::Result<()> {
        let mut state = self.state();
        loop {
            if state.broken {
                return Err(broken_pipe());
            }
            let Some(drain) = state.drain.clone() else { break };
            if state.js_busy {
                break;
            }
            let queued = state.bytes.len();
            if queued == 0 || queued + bytes.len() <= IN_FLIGHT_BYTES {
                state.push(kind, bytes);
                let wake = !std::mem::replace(&mut state.woken, true);
                drop(state);
                if wake {
                    drain.wake();
                }
                return Ok(());
            }
            if drain.stopping() {
                return Err(io::Error::from(io::ErrorKind::Interrupted));
            }
            state = self
                .0
                .room
                .wait_timeout(state, STOP_CHECK)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
        // Nobody delivers until the call returns: keep what `limit` allows.
        let kept = bytes.len().min(state.limit.saturating_sub(state.bytes.len()));
        state.push(kind, &bytes[..kept]);
        if kept < bytes.len() {
            state.truncated[kind as usize] = true;
            return Err(output_full());
        }
        Ok(())
    }
}

impl State {
    fn push(&mut self, kind: StreamKind, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.bytes.extend(bytes);
        match self.runs.back_mut() {
            Some((last, length)) if *last == kind => *length += bytes.len(),
            _ => self.runs.push_back((kind, bytes.len())),
        }
    }
}

impl Sink for StreamedSink {
    fn append(&self, bytes: &[u8]) -> io::Result<()> {
        self.streams.append(self.kind, bytes)
    }
}
