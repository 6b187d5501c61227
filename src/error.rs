//! The one error type of the core. `js::errors` turns it into a JS error in one place.

use wasmtime::{Trap, WasmBacktrace};

/// The result of every fallible core operation.
pub type SandboxResult<T> = Result<T, SandboxError>;

/// The value of a sandbox that is still alive, or `Disposed` (a `match`, not `ok_or`: dropping an
/// unused error value costs a call on the hottest paths).
pub fn alive<T>(value: Option<T>) -> SandboxResult<T> {
    match value {
        Some(value) => Ok(value),
        None => Err(SandboxError::Disposed),
    }
}

/// Everything that can go wrong in a sandbox, with the stable code JS sees.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The sandbox was disposed; nothing in it can be reached any more.
    #[error("the sandbox has been disposed: create a new one")]
    Disposed,
    /// A JS argument has the wrong type (becomes a `TypeError`).
    #[error("{0}")]
    InvalidArgType(String),
    /// A JS argument has the right type but is outside the allowed range (a `RangeError`).
    #[error("{0}")]
    OutOfRange(String),
    /// A JS argument has the right type but a value that cannot be used (a `TypeError`): a
    /// relative host path, a preopen that is not a directory, a NUL inside a WASI string.
    #[error("{0}")]
    InvalidArgValue(String),
    /// wasmtime rejected the module's bytes or text.
    #[error("the WebAssembly module failed to compile: {0}")]
    Compile(String),
    /// A component given where a core module is expected, or the other way round.
    #[error("{0}")]
    WrongKind(String),
    /// A component instance trapped earlier: the component model forbids entering it again.
    #[error(
        "this component instance trapped earlier and cannot be entered again (the component model \
         forbids it): instantiate the component anew"
    )]
    Poisoned,
    /// The module could not be instantiated (a missing or mistyped import, a failed start).
    #[error("the WebAssembly module could not be instantiated: {0}")]
    Link(String),
    /// A host function (a JS import) failed; the glue attaches the original exception as `cause`.
    #[error("{0}")]
    Import(String),
    /// The guest trapped.
    #[error("{message}")]
    Trap {
        kind: TrapKind,
        message: String,
        backtrace: Option<Backtrace>,
    },
    /// The guest threw a WebAssembly exception (`throw`) that no handler caught. In a
    /// WebAssembly namespace, `registry` names it so JS gets its `WebAssembly.Exception` object.
    #[error("the guest threw a WebAssembly exception that no handler caught")]
    UncaughtException { registry: Option<u32> },
    /// Linear memory could not grow as asked.
    #[error("{0}")]
    MemoryLimit(String),
    /// The guest has no memory export to view.
    #[error("the guest exports no memory named `{0}`")]
    NoMemory(String),
    /// A guest export the host needs is missing or has another signature.
    #[error("the guest's export `{name}` is missing or is not a {expected}: {reason}")]
    BadExport {
        name: String,
        expected: &'static str,
        reason: String,
    },
    /// The runtime refuses external buffers (Electron's memory cage), so no zero-copy view can exist.
    #[error(
        "this runtime forbids external buffers, so a zero-copy view of guest memory cannot be made; \
         use read() and write() to copy bytes instead"
    )]
    ExternalBuffersForbidden,
    /// A memory larger than Node's largest `Buffer`.
    #[error("a view of {length} bytes exceeds the largest Buffer this runtime can make")]
    ViewTooLarge { length: usize },
    /// A method was called with a `this` that is not an instance of its class.
    #[error("{0}")]
    WrongReceiver(String),
    /// A module file could not be read.
    #[error("could not read the module file {path}: {reason}")]
    ReadFile { path: String, reason: String },
    /// No more sandboxes fit: the pool is full or the address space is exhausted.
    #[error("{0}")]
    SandboxLimit(String),
    /// `fuel` was read or set on a sandbox created without a fuel budget.
    #[error("this sandbox has no fuel budget: create it with the `fuel` option to meter it")]
    FuelNotEnabled,
    /// The store is in use by a call further up this thread's stack and cannot be reached.
    #[error(
        "the sandbox is busy: an async call is running on it (only its imports can use the sandbox \
         until it settles), or a call further up the stack holds it"
    )]
    Busy,
    /// `interrupt()` or `dispose()` stopped the running call.
    #[error("the guest call was interrupted by interrupt() or dispose()")]
    Interrupted,
    /// The pool could not take an async call.
    #[error("{0}")]
    Pool(String),
    /// The guest called WASI's `proc_exit` during a `call()` or its initialisation (in `run()`
    /// an exit is the result, not an error).
    #[error("the guest exited with code {0} (WASI proc_exit)")]
    Exit(u32),
    /// `run()` or `takeOutput()` on a sandbox created without the `wasi` option.
    #[error("this sandbox has no WASI context: create it with the `wasi` option to run a WASI command")]
    WasiNotEnabled,
    /// `run()` called a second time.
    #[error(
        "run() was already called on this sandbox: a WASI command runs once (create a new sandbox to run it again)"
    )]
    AlreadyStarted,
    /// A `wasi.stdout` / `wasi.stderr` callback threw (its exception is the `cause`).
    #[error("the wasi.{stream} callback threw: {message}")]
    OutputCallback { stream: &'static str, message: String },
    /// A synchronous call of a component that only runs through wasmtime's async API while JS
    /// imports could be called (V8 cannot run them there).
    #[error("{0}")]
    AsyncRequired(String),
    /// State a snapshot cannot capture or put back (a host reference, a snapshot of another
    /// module, a table that grew).
    #[error("{0}")]
    Snapshot(String),
    /// A method called in a state that does not allow it (a TypeError, as Node throws
    /// `ERR_INVALID_STATE`).
    #[error("{0}")]
    InvalidState(String),
    /// An option combination or feature this platform or compiler does not support.
    #[error("{0}")]
    Unsupported(String),
    /// A failure of the runtime itself (Node-API or the engine), never a user error.
    #[error("internal error: {0}")]
    Internal(String),
}

impl SandboxError {
    /// The stable `code` property of the JS error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Disposed => "ERR_SANDBOX_DISPOSED",
            Self::InvalidArgType(_) => "ERR_INVALID_ARG_TYPE",
            Self::OutOfRange(_) => "ERR_OUT_OF_RANGE",
            Self::InvalidArgValue(_) => "ERR_INVALID_ARG_VALUE",
            Self::Exit(_) => "ERR_WASI_EXIT",
            Self::WasiNotEnabled => "ERR_WASI_NOT_ENABLED",
            Self::AlreadyStarted => "ERR_WASI_ALREADY_STARTED",
            Self::OutputCallback { .. } => "ERR_WASI_OUTPUT_CALLBACK",
            Self::AsyncRequired(_) => "ERR_WASM_ASYNC_REQUIRED",
            Self::Compile(_) => "ERR_WASM_COMPILE",
            Self::WrongKind(_) => "ERR_WASM_KIND",
            Self::Poisoned => "ERR_WASM_INSTANCE_POISONED",
            Self::Import(_) => "ERR_WASM_IMPORT",
            Self::SandboxLimit(_) => "ERR_SANDBOX_LIMIT",
            Self::WrongReceiver(_) => "ERR_INVALID_THIS",
            Self::ReadFile { .. } => "ERR_WASM_READ_FILE",
            Self::FuelNotEnabled => "ERR_WASM_FUEL_NOT_ENABLED",
            Self::Busy => "ERR_SANDBOX_BUSY",
            Self::Interrupted => "ERR_WASM_INTERRUPTED",
            Self::Pool(_) => "ERR_SANDBOX_INTERNAL",
            Self::Link(_) => "ERR_WASM_LINK",
            Self::Trap { kind, .. } => match kind {
                TrapKind::Interrupt => "ERR_WASM_TIMEOUT",
                TrapKind::OutOfFuel => "ERR_WASM_OUT_OF_FUEL",
                TrapKind::CpuLimit => "ERR_WASM_CPU_LIMIT",
                _ => "ERR_WASM_TRAP",
            },
            Self::UncaughtException { .. } => "ERR_WASM_EXCEPTION",
            Self::MemoryLimit(_) => "ERR_WASM_MEMORY_LIMIT",
            Self::NoMemory(_) => "ERR_WASM_NO_MEMORY",
            Self::BadExport { .. } => "ERR_WASM_EXPORT",
            Self::ExternalBuffersForbidden => "ERR_EXTERNAL_BUFFERS_FORBIDDEN",
            Self::ViewTooLarge { .. } => "ERR_VIEW_TOO_LARGE",
            Self::Snapshot(_) => "ERR_WASM_SNAPSHOT",
            Self::Unsupported(_) => "ERR_WASM_UNSUPPORTED",
            Self::InvalidState(_) => "ERR_INVALID_STATE",
            Self::Internal(_) => "ERR_SANDBOX_INTERNAL",
        }
    }

    /// Classifies an error out of a wasmtime call: a trap with its kind and backtrace, or else
    /// a plain trap-like failure carrying wasmtime's message.
    pub fn from_call(error: wasmtime::Error) -> Self {
        if error.downcast_ref::<crate::remote::Interrupted>().is_some() {
            return Self::Interrupted;
        }
        if let Some(host) = error.downcast_ref::<crate::sandbox::HostFunctionError>() {
            return Self::Import(host.to_string());
        }
        if let Some(exit) = error.downcast_ref::<wasmtime_wasi::I32Exit>() {
            return Self::Exit(exit.0 as u32);
        }
        if error.is::<wasmtime::ThrownException>() {
            return Self::UncaughtException { registry: None };
        }
        let backtrace = error.downcast_ref::<WasmBacktrace>().and_then(Backtrace::of);
        let (kind, message) = match (
            error.downcast_ref::<Trap>(),
            crate::store::observe::cpu_limit_of(&error),
        ) {
            (Some(trap), _) => (TrapKind::from(*trap), trap.to_string()),
            (None, Some(stop)) => (TrapKind::CpuLimit, stop.to_string()),
            (None, None) => (TrapKind::Host, format!("{error:#}")),
        };
        Self::Trap {
            kind,
            message,
            backtrace,
        }
    }
}

impl SandboxError {
    /// Says which limit a limit trap hit, in the caller's own terms: the time limit (`timeout`),
    /// `interrupted` for an interrupt with no time limit, `out_of_fuel` for fuel.
    pub fn explain_limits(self, timeout: Option<std::time::Duration>, interrupted: &str, out_of_fuel: &str) -> Self {
        match self {
            Self::Trap {
                kind: kind @ TrapKind::Interrupt,
                backtrace,
                ..
            } => Self::Trap {
                kind,
                message: match timeout {
                    Some(timeout) => format!(
                        "the guest ran past its time limit (timeoutMs: {}) and was stopped",
                        timeout.as_millis()
                    ),
                    None => interrupted.to_owned(),
                },
                backtrace,
            },
            Self::Trap {
                kind: kind @ TrapKind::OutOfFuel,
                backtrace,
                ..
            } => Self::Trap {
                kind,
                message: out_of_fuel.to_owned(),
                backtrace,
            },
            other => other,
        }
    }
}

/// What made the guest trap, as the stable `kind` string JS sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrapKind {
    StackOverflow,
    MemoryOutOfBounds,
    HeapMisaligned,
    TableOutOfBounds,
    IndirectCallToNull,
    BadSignature,
    IntegerOverflow,
    IntegerDivisionByZero,
    BadConversionToInteger,
    Unreachable,
    Interrupt,
    OutOfFuel,
    /// The call used up its CPU time (`cpuTimeMs`).
    CpuLimit,
    /// A failure raised by the host while the guest ran (for example a host function's error).
    Host,
    /// A trap code this version does not name (future wasmtime codes, GC or component traps).
    Other,
}

impl TrapKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StackOverflow => "stack_overflow",
            Self::MemoryOutOfBounds => "memory_out_of_bounds",
            Self::HeapMisaligned => "heap_misaligned",
            Self::TableOutOfBounds => "table_out_of_bounds",
            Self::IndirectCallToNull => "indirect_call_to_null",
            Self::BadSignature => "bad_signature",
            Self::IntegerOverflow => "integer_overflow",
            Self::IntegerDivisionByZero => "integer_divide_by_zero",
            Self::BadConversionToInteger => "bad_conversion_to_integer",
            Self::Unreachable => "unreachable",
            Self::Interrupt => "interrupt",
            Self::OutOfFuel => "out_of_fuel",
            Self::CpuLimit => "cpu_limit",
            Self::Host => "host",
            Self::Other => "other",
        }
    }
}

impl From<Trap> for TrapKind {
    fn from(trap: Trap) -> Self {
        match trap {
            Trap::StackOverflow => Self::StackOverflow,
            Trap::MemoryOutOfBounds => Self::MemoryOutOfBounds,
            Trap::HeapMisaligned => Self::HeapMisaligned,
            Trap::TableOutOfBounds => Self::TableOutOfBounds,
            Trap::IndirectCallToNull => Self::IndirectCallToNull,
            Trap::BadSignature => Self::BadSignature,
            Trap::IntegerOverflow => Self::IntegerOverflow,
            Trap::IntegerDivisionByZero => Self::IntegerDivisionByZero,
            Trap::BadConversionToInteger => Self::BadConversionToInteger,
            Trap::UnreachableCodeReached => Self::Unreachable,
            Trap::Interrupt => Self::Interrupt,
            Trap::OutOfFuel => Self::OutOfFuel,
            _ => Self::Other,
        }
    }
}

/// A function name as wasmtime's own backtrace text shows it: Rust symbols demangled, without
/// their hash.
pub fn demangled(name: &str) -> String {
    format!("{:#}", rustc_demangle::demangle(name))
}

/// A trap's wasm backtrace: wasmtime's text, and its frames as data.
#[derive(Debug, Clone)]
pub struct Backtrace {
    /// The frames as wasmtime prints them (with source lines where the module has DWARF).
    pub text: String,
    /// Innermost first; a function inlined into another is a frame of its own.
    pub frames: Vec<TraceFrame>,
}

/// A frame of a trap's backtrace; `file`, `line` and `column` come from the module's DWARF.
#[derive(Debug, Clone)]
pub struct TraceFrame {
    pub function: Option<String>,
    pub module: Option<String>,
    pub func_index: u32,
    /// Byte offset of the instruction in the module.
    pub offset: Option<usize>,
    pub file: Option<String>,
    pub line: Option<u32>,
    pub column: Option<u32>,
}

impl Backtrace {
    /// `None` for an empty backtrace.
    pub fn of(trace: &WasmBacktrace) -> Option<Self> {
        let text = trace.to_string();
        // Drop wasmtime's header line; keep the frames.
        let text = text
            .strip_prefix("error while executing at wasm backtrace:")
            .unwrap_or(&text)
            .trim_matches('\n')
            .to_owned();
        if text.is_empty() {
            return None;
        }
        let mut frames = Vec::new();
        for frame in trace.frames() {
            let function = frame.func_name().map(demangled);
            let base = TraceFrame {
                function,
                module: frame.module().name().map(str::to_owned),
                func_index: frame.func_index(),
                offset: frame.module_offset(),
                file: None,
                line: None,
                column: None,
            };
            if frame.symbols().is_empty() {
                frames.push(base);
                continue;
            }
            for symbol in frame.symbols() {
                frames.push(TraceFrame {
                    function: symbol.name().map(demangled).or_else(|| base.function.clone()),
                    file: symbol.file().map(str::to_owned),
                    line: symbol.line(),
                    column: symbol.column(),
                    ..base.clone()
                });
            }
        }
        Some(Self { text, frames })
    }

    /// Whether any frame has a source location (the module has DWARF).
    pub fn has_source_lines(&self) -> bool {
        self.frames.iter().any(|frame| frame.file.is_some())
    }
}
