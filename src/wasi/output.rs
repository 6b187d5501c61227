//! A guest's stdout or stderr as wasmtime-wasi sees it (`GuestOutput`, written once for every
//! kind of sink), and the bounded in-memory capture behind `'pipe'`.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

/// Where a guest's output goes: `append` takes one guest write (on the guest's thread) and may
/// refuse it, which fails the write in the guest.
pub trait Sink: Clone + Send + Sync + 'static {
    fn append(&self, bytes: &[u8]) -> io::Result<()>;
}

/// A sink as a WASI output stream (preview 1, WASI 0.2 and the async form of WASI 0.3).
#[derive(Clone)]
pub struct GuestOutput<S>(pub S);

/// What `check_write` allows per write: the size of one guest write, as `wasmtime_wasi`'s own
/// streams allow (it also bounds `write_zeroes` allocations).
const WRITE_PERMIT: usize = 64 * 1024;

impl<S: Sink> IsTerminal for GuestOutput<S> {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl<S: Sink> StdoutStream for GuestOutput<S> {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl<S: Sink> Pollable for GuestOutput<S> {
    async fn ready(&mut self) {}
}

impl<S: Sink> OutputStream for GuestOutput<S> {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.0
            .append(&bytes)
            .map_err(|error| StreamError::LastOperationFailed(error.into()))
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        // Always ready: whether the bytes are taken is decided by `write`, so a write that
        // exactly fills a capture succeeds and only one that loses bytes fails.
        Ok(WRITE_PERMIT)
    }
}

impl<S: Sink> tokio::io::AsyncWrite for GuestOutput<S> {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, bytes: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(self.0.append(bytes).map(|()| bytes.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// A guest output stream kept in memory, never holding more than `limit` bytes.
///
/// A write that does not fit keeps what fits, marks the capture truncated and fails in the guest
/// with `ENOSPC`; so does every later write while the capture is full. Nothing is ever buffered
/// beyond the limit: the guest's bytes are copied straight into the capture, whose allocation
/// grows at most to `limit`.
#[derive(Clone)]
pub struct Capture(Arc<Mutex<CaptureState>>);

struct CaptureState {
    bytes: Vec<u8>,
    limit: usize,
    truncated: bool,
}

impl Capture {
    pub fn new(limit: usize) -> Self {
        Self(Arc::new(Mutex::new(CaptureState {
            bytes: Vec::new(),
            limit,
            truncated: false,
        })))
    }

    fn state(&self) -> MutexGuard<'_, CaptureState> {
        // A panic while holding the lock cannot leave the state inconsistent (only appends).
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn take(&self) -> (Vec<u8>, bool) {
        let mut state = self.state();
        let truncated = std::mem::take(&mut state.truncated);
        (std::mem::take(&mut state.bytes), truncated)
    }
}

impl Sink for Capture {
    /// Appends what fits of `bytes`; fails (and marks the capture truncated) if not all did.
    fn append(&self, bytes: &[u8]) -> io::Result<()> {
        let mut state = self.state();
        let room = state.limit - state.bytes.len();
        let kept = bytes.len().min(room);
        if kept > 0 {
            let needed = state.bytes.len() + kept;
            if needed > state.bytes.capacity() {
                // Grow geometrically, but never past the limit.
                let target = needed.max(state.bytes.capacity().saturating_mul(2)).min(state.limit);
                let additional = target - state.bytes.len();
                state.bytes.reserve_exact(additional);
            }
            state.bytes.extend_from_slice(&bytes[..kept]);
        }
        if kept < bytes.len() {
            state.truncated = true;
            return Err(output_full());
        }
        Ok(())
    }
}

/// The error a write into a full capture fails with: `ENOSPC` in the guest.
pub fn output_full() -> io::Error {
    #[cfg(unix)]
    {
        io::Error::from_raw_os_error(libc::ENOSPC)
    }
    #[cfg(not(unix))]
    {
        io::Error::other("the guest's output reached maxOutputBytes")
    }
}

/// The error of a write to a stream whose reader is gone: `EPIPE` in the guest.
pub fn broken_pipe() -> io::Error {
    #[cfg(unix)]
    {
        io::Error::from_raw_os_error(libc::EPIPE)
    }
    #[cfg(not(unix))]
    {
        io::Error::other("the output callback failed")
    }
}
