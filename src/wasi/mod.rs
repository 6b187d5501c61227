//! WASI for guests that ask for it: a `wasmtime_wasi` preview 1 context built from plain
//! options (arguments, environment, preopened directories, stdin bytes, what becomes of stdout
//! and stderr), and the bounded in-memory capture of a guest's output.
//!
//! The guest gets exactly what the options grant: no preopen means no file system at all; the
//! clocks and random numbers are real. Everything a path can reach is resolved by
//! `wasmtime_wasi` (through `cap-std`) relative to a preopened directory handle: `..`, absolute
//! paths and symlinks that lead outside it are refused with a WASI errno before any host call.

mod network;
mod output;
mod streamed;

use std::path::PathBuf;
use std::sync::Arc;

use wasmtime_wasi::cli::StdoutStream;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryInputPipe;
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

pub use self::network::{NetworkPolicy, NetworkRule};
use self::output::{Capture, GuestOutput};
pub use self::streamed::{Drain, IN_FLIGHT_BYTES, OutputStreams};
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
    /// Handed to the host as it is written, through the guest's `OutputStreams`.
    Stream,
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
    /// What the guest may reach through `wasi:sockets`.
    pub network: Arc<NetworkPolicy>,
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
            network: Arc::default(),
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
    /// The queue of streamed output, when a stream is `OutputMode::Stream`.
    streams: Option<OutputStreams>,
    /// What the guest may reach over the network (its name lookups are checked against it).
    pub network: Arc<NetworkPolicy>,
    /// How many directories were preopened.
    preopens: usize,
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

impl WasiState {
    /// What a snapshot of the guest cannot capture in this context, if anything: a file,
    /// directory or socket opened since instantiation (its descriptor and position live in the
    /// host). The standard streams and the preopened directories are the context's own and
    /// come with every sandbox made with the same options.
    pub fn uncapturable(&mut self) -> Option<String> {
        use wasmtime_wasi::WasiView;
        use wasmtime_wasi::filesystem::Descriptor;
        let (mut files, mut directories, mut sockets) = (0usize, 0usize, 0usize);
        for entry in self.ctx.ctx().table.iter_mut() {
            match entry.downcast_ref::<Descriptor>() {
                Some(Descriptor::File(_)) => files += 1,
                Some(Descriptor::Dir(_)) => directories += 1,
                None if entry.is::<wasmtime_wasi::sockets::TcpSocket>()
                    || entry.is::<wasmtime_wasi::sockets::UdpSocket>() =>
                {
                    sockets += 1
                }
                None => {}
            }
        }
        let opened = directories.saturating_sub(self.preopens);
        let what = [
            (files, "file", "files"),
            (opened, "directory", "directories"),
            (sockets, "socket", "sockets"),
        ]
        .into_iter()
        .filter(|(count, _, _)| *count > 0)
        .map(|(count, one, many)| format!("{count} {}", if count == 1 { one } else { many }))
        .collect::<Vec<_>>();
        (!what.is_empty()).then(|| what.join(", "))
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
        match &*options.network {
            NetworkPolicy::Off => {}
            NetworkPolicy::Any => {
                builder.inherit_network();
            }
            NetworkPolicy::Allow(_) => {
                let policy = Arc::clone(&options.network);
                builder.socket_addr_check(move |address, used| {
                    let allowed = match used {
                        // The ephemeral bind on every interface that connecting and sending
                        // make implicitly: the connect, send or listen that follows is checked.
                        SocketAddrUse::TcpBind | SocketAddrUse::UdpBind
                            if address.ip().is_unspecified() && address.port() == 0 =>
                        {
                            true
                        }
                        // A listener the rules allowed takes its clients.
                        SocketAddrUse::TcpAccept => true,
                        // A name in a rule is looked up here, blocking the guest's call as its
                        // own WASI calls do.
                        _ => policy.allows_address(address),
                    };
                    Box::pin(async move { allowed })
                });
            }
        }
        // Sockets can be made and configured (as under the wasmtime CLI); every address they
        // would bind, connect or send to is checked above, and without a policy none passes.
        builder
            .allow_tcp(true)
            .allow_udp(true)
            .allow_ip_name_lookup(options.network.may_look_up());
        let streams = [options.stdout, options.stderr]
            .contains(&OutputMode::Stream)
            .then(|| OutputStreams::new(options.max_output_bytes));
        let mut output = |mode, kind| output(&mut builder, mode, options.max_output_bytes, kind, streams.as_ref());
        let stdout = output(options.stdout, StreamKind::Stdout);
        let stderr = output(options.stderr, StreamKind::Stderr);
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
            streams,
            network: Arc::clone(&options.network),
            preopens: options.preopens.len(),
        })
    }

    /// The queue of the guest's streamed output, if a stream is `OutputMode::Stream`.
    pub fn streams(&self) -> Option<&OutputStreams> {
        self.streams.as_ref()
    }

    /// Takes what was captured so far (emptying the captures, which frees their room again).
    pub fn take_output(&self) -> Output {
        let (stdout, stdout_truncated) = self.stdout.as_ref().map(Capture::take).unwrap_or_default();
        let (stderr, stderr_truncated) = self.stderr.as_ref().map(Capture::take).unwrap_or_default();
        let [stdout_dropped, stderr_dropped] = self
            .streams
            .as_ref()
            .map(OutputStreams::take_truncated)
            .unwrap_or_default();
        Output {
            stdout,
            stderr,
            stdout_truncated: stdout_truncated || stdout_dropped,
            stderr_truncated: stderr_truncated || stderr_dropped,
        }
    }
}

/// One of a guest's two output streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamKind {
    Stdout = 0,
    Stderr = 1,
}

/// Sets up one output stream of `builder`; returns its capture when it is piped.
fn output(
    builder: &mut WasiCtxBuilder,
    mode: OutputMode,
    limit: usize,
    kind: StreamKind,
    streams: Option<&OutputStreams>,
) -> Option<Capture> {
    fn set(builder: &mut WasiCtxBuilder, kind: StreamKind, stream: impl StdoutStream + 'static) {
        match kind {
            StreamKind::Stdout => builder.stdout(stream),
            StreamKind::Stderr => builder.stderr(stream),
        };
    }
    match mode {
        OutputMode::Pipe => {
            let capture = Capture::new(limit);
            set(builder, kind, GuestOutput(capture.clone()));
            Some(capture)
        }
        OutputMode::Stream => {
            if let Some(streams) = streams {
                set(builder, kind, GuestOutput(streams.sink(kind)));
            }
            None
        }
        OutputMode::Inherit => {
            match kind {
                StreamKind::Stdout => builder.inherit_stdout(),
                StreamKind::Stderr => builder.inherit_stderr(),
            };
            None
        }
        // The context's default streams discard what is written.
        OutputMode::Ignore => None,
    }
}
