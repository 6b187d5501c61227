//! WASI for guests that ask for it: a `wasmtime_wasi` preview 1 context built from plain
//! options (arguments, environment, preopened directories, stdin bytes, what becomes of stdout
//! and stderr), and the bounded in-memory capture of a guest's output.
//!
//! The guest gets exactly what the options grant: no preopen means no file system at all; the
//! clocks and random numbers are real. Everything a path can reach is resolved by
//! `wasmtime_wasi` (through `cap-std`) relative to a preopened directory handle: `..`, absolute
//! paths and symlinks that lead outside it are refused with a WASI errno before any host call.

use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryInputPipe;
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use crate::error::{SandboxError, SandboxResult};

/// The import modules WASI provides: preview 1 and its predecessor, preview 0.
pub const WASI_MODULES: [&str; 2] = ["wasi_snapshot_preview1", "wasi_unstable"];

/// Whether an import module is one that WASI provides.
pub fn is_wasi_module(module: &str) -> bool {
    WASI_MODULES.contains(&module)
}

/// Default cap on each captured stream: 16 MiB.
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 16 * 1024 * 1024;

/// What becomes of what the guest writes to stdout or stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputMode {
    /// Kept in memory, up to `max_output_bytes`, and handed back by `run()`.
    #[default]
    Pipe,
    /// Written to the host process's own stdout or stderr.
    Inherit,
    /// Discarded (the guest's writes succeed).
    Ignore,
}

/// A host directory the guest sees at `guest_path`.
#[derive(Debug, Clone)]
pub struct Preopen {
    pub guest_path: String,
    /// An absolute path to an existing directory (checked by `WasiOptions::validate`).
    pub host_path: PathBuf,
    pub readonly: bool,
}

/// Everything a WASI guest is granted.
#[derive(Debug, Clone)]
pub struct WasiOptions {
    /// `argv`, `argv[0]` included.
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub preopens: Vec<Preopen>,
    pub stdin: Vec<u8>,
    pub stdout: OutputMode,
    pub stderr: OutputMode,
    /// Cap on what each captured stream holds at once.
    pub max_output_bytes: usize,
}

impl Default for WasiOptions {
    fn default() -> Self {
        Self {
            args: Vec::new(),
            env: Vec::new(),
            preopens: Vec::new(),
            stdin: Vec::new(),
            stdout: OutputMode::Pipe,
            stderr: OutputMode::Pipe,
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
        }
    }
}

impl WasiOptions {
    /// Checks what the type system cannot: strings WASI cannot carry (a NUL, an `=` in an
    /// environment name), preopens that are not absolute paths to directories. Each problem is
    /// an `InvalidArgValue` naming the option.
    pub fn validate(&self) -> SandboxResult<()> {
        let invalid = |message: String| Err(SandboxError::InvalidArgValue(message));
        for (index, arg) in self.args.iter().enumerate() {
            if arg.contains('\0') {
                return invalid(format!(
                    "The property 'options.wasi.args[{index}]' must not contain a NUL character. Received {arg:?}"
                ));
            }
        }
        for (key, value) in &self.env {
            if key.is_empty() || key.contains(['=', '\0']) {
                return invalid(format!(
                    "The property 'options.wasi.env' has an invalid name {key:?}: a name must be non-empty and \
                     contain neither '=' nor a NUL character"
                ));
            }
            if value.contains('\0') {
                return invalid(format!(
                    "The property 'options.wasi.env.{key}' must not contain a NUL character. Received {value:?}"
                ));
            }
        }
        for preopen in &self.preopens {
            let name = &preopen.guest_path;
            if name.is_empty() || name.contains('\0') {
                return invalid(format!(
                    "The property 'options.wasi.preopens' has an invalid guest path {name:?}: it must be non-empty \
                     and contain no NUL character"
                ));
            }
            let host = &preopen.host_path;
            if !host.is_absolute() {
                return invalid(format!(
                    "The property 'options.wasi.preopens[{name:?}]' must be an absolute host path. Received {:?}",
                    host.display().to_string()
                ));
            }
            match std::fs::metadata(host) {
                Ok(metadata) if metadata.is_dir() => {}
                Ok(_) => {
                    return invalid(format!(
                        "The property 'options.wasi.preopens[{name:?}]' must name a directory; {:?} is not one",
                        host.display().to_string()
                    ));
                }
                Err(error) => {
                    return invalid(format!(
                        "The property 'options.wasi.preopens[{name:?}]' must name an existing directory; {:?} \
                         cannot be opened ({error})",
                        host.display().to_string()
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A guest's WASI state: its context (preview 1's, or WASI 0.2's for components), and the
/// captured streams.
pub struct Captured<C> {
    pub ctx: C,
    stdout: Option<Capture>,
    stderr: Option<Capture>,
}

/// What the guest of a store with `state` (if it has WASI) wrote to its captured streams since
/// they were last taken.
pub fn take_output_of<C>(state: Option<&Captured<C>>) -> Output {
    state.map(Captured::take_output).unwrap_or_default()
}

/// The WASI state of a core module (preview 1 and 0).
pub type WasiState = Captured<WasiP1Ctx>;

/// The WASI 0.2 state of a component.
pub type ComponentWasiState = Captured<wasmtime_wasi::WasiCtx>;

impl WasiState {
    /// Builds the preview 1 context `options` describe (validated first).
    pub fn new(options: &WasiOptions) -> SandboxResult<Self> {
        Self::build(options, WasiCtxBuilder::build_p1)
    }
}

impl ComponentWasiState {
    /// Builds the WASI 0.2 context `options` describe (validated first).
    pub fn new(options: &WasiOptions) -> SandboxResult<Self> {
        Self::build(options, WasiCtxBuilder::build)
    }
}

/// What a guest wrote to its captured streams since they were last taken.
#[derive(Debug, Default)]
pub struct Output {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Whether bytes written to stdout were dropped because the capture was full.
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
}

impl<C> Captured<C> {
    fn build(options: &WasiOptions, finish: impl FnOnce(&mut WasiCtxBuilder) -> C) -> SandboxResult<Self> {
        options.validate()?;
        let mut builder = WasiCtxBuilder::new();
        builder
            .args(&options.args)
            .envs(&options.env)
            // Files are opened, read and written on the calling thread: a WASI call blocks its
            // guest anyway, and this avoids a round trip through a thread pool for each.
            .allow_blocking_current_thread(true);
        builder.stdin(MemoryInputPipe::new(options.stdin.clone()));
        let stdout = output(&mut builder, options.stdout, options.max_output_bytes, Stream::Stdout);
        let stderr = output(&mut builder, options.stderr, options.max_output_bytes, Stream::Stderr);
        for preopen in &options.preopens {
            let perms = if preopen.readonly {
                FsPerms::ReadOnly
            } else {
                FsPerms::ReadWrite
            };
            builder
                .preopened_dir(&preopen.host_path, &preopen.guest_path, perms)
                .map_err(|error| {
                    SandboxError::InvalidArgValue(format!(
                        "The property 'options.wasi.preopens[{:?}]' names a directory that cannot be opened: {:?} \
                         ({error:#})",
                        preopen.guest_path,
                        preopen.host_path.display().to_string()
                    ))
                })?;
        }
        Ok(Self {
            ctx: finish(&mut builder),
            stdout,
            stderr,
        })
    }

    /// Takes what was captured so far (emptying the captures, which frees their room again).
    pub fn take_output(&self) -> Output {
        let (stdout, stdout_truncated) = self.stdout.as_ref().map(Capture::take).unwrap_or_default();
        let (stderr, stderr_truncated) = self.stderr.as_ref().map(Capture::take).unwrap_or_default();
        Output {
            stdout,
            stderr,
            stdout_truncated,
            stderr_truncated,
        }
    }
}

#[derive(Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

/// Sets up one output stream of `builder`; returns its capture when it is piped.
fn output(builder: &mut WasiCtxBuilder, mode: OutputMode, limit: usize, stream: Stream) -> Option<Capture> {
    match (mode, stream) {
        (OutputMode::Pipe, _) => {
            let capture = Capture::new(limit);
            match stream {
                Stream::Stdout => builder.stdout(capture.clone()),
                Stream::Stderr => builder.stderr(capture.clone()),
            };
            Some(capture)
        }
        (OutputMode::Inherit, Stream::Stdout) => {
            builder.inherit_stdout();
            None
        }
        (OutputMode::Inherit, Stream::Stderr) => {
            builder.inherit_stderr();
            None
        }
        // The context's default streams discard what is written.
        (OutputMode::Ignore, _) => None,
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

/// What `check_write` allows per write: the size of one guest write, as `wasmtime_wasi`'s own
/// streams allow (it also bounds `write_zeroes` allocations).
const WRITE_PERMIT: usize = 64 * 1024;

impl Capture {
    fn new(limit: usize) -> Self {
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

    fn take(&self) -> (Vec<u8>, bool) {
        let mut state = self.state();
        let truncated = std::mem::take(&mut state.truncated);
        (std::mem::take(&mut state.bytes), truncated)
    }
}

/// The error a write into a full capture fails with: `ENOSPC` in the guest.
fn output_full() -> io::Error {
    #[cfg(unix)]
    {
        io::Error::from_raw_os_error(libc::ENOSPC)
    }
    #[cfg(not(unix))]
    {
        io::Error::other("the captured output reached maxOutputBytes")
    }
}

impl IsTerminal for Capture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Capture {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Capture {
    async fn ready(&mut self) {}
}

impl OutputStream for Capture {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.append(&bytes)
            .map_err(|error| StreamError::LastOperationFailed(error.into()))
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        // Always ready: whether the bytes fit is decided by `write`, so a write that exactly
        // fills the capture succeeds and only one that loses bytes fails.
        Ok(WRITE_PERMIT)
    }
}

impl tokio::io::AsyncWrite for Capture {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, bytes: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(self.append(bytes).map(|()| bytes.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
