//! Compiling and caching modules, describing their imports and exports, and the embedded
//! buffer guest.

use std::sync::OnceLock;

use wasmtime::{ExternType, FuncType, InstancePre, Linker, Module, ModuleExport, ValType};

use crate::cache::CompiledSource;
use crate::engine::{Compiler, EngineKind, engine};
use crate::error::{SandboxError, SandboxResult};

/// The buffer guest (`guest/`), built for wasm32 by `build.rs`.
pub const BUFFER_GUEST_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/buffer_guest.wasm"));

/// A module's source with its compiled code (see `CompiledSource`).
pub type ModuleSource = CompiledSource<Module>;

impl ModuleSource {
    /// Compiles `bytes` (binary wasm, or text: wasmtime tells them apart by the `\0asm` magic)
    /// for the standard engine with the process's default compiler, reusing earlier
    /// compilations of the same bytes (in this process, or in the disk cache).
    pub fn compile(bytes: &[u8]) -> SandboxResult<Self> {
        Self::compile_with(Compiler::process_default(), bytes)
    }

    /// Every export with its kind and, for functions, its signature.
    pub fn exports(&self) -> Vec<EntryDescriptor> {
        self.compiled()
            .exports()
            .filter(|export| !crate::store::expose_state::is_hidden_export(export.name()))
            .map(|export| EntryDescriptor::new(None, export.name(), export.ty()))
            .collect()
    }

    /// Every import with its kind and, for functions, its signature.
    pub fn imports(&self) -> Vec<EntryDescriptor> {
        self.compiled()
            .imports()
            .map(|import| EntryDescriptor::new(Some(import.module()), import.name(), import.ty()))
            .collect()
    }
}

/// The buffer guest, compiled once per process for the dense pooled engine and pre-linked (it
/// imports nothing), so instantiating it is only taking a pool slot; with its exports resolved
/// to indexes and their types checked once, so each instance skips the name lookups and checks.
pub struct BufferGuestModule {
    /// The module (for snapshots: a snapshot restores only into instances of the same bytes).
    pub source: ModuleSource,
    /// The memory of a new instance, for `reset()` (taken on first use).
    pub initial_memory: OnceLock<Box<[u8]>>,
    pub pre: InstancePre<()>,
    pub memory: ModuleExport,
    pub get_pointer: ModuleExport,
    pub store_index_zero: ModuleExport,
    pub read_index_one: ModuleExport,
}

pub fn buffer_guest() -> SandboxResult<&'static BufferGuestModule> {
    static BUFFER_GUEST: OnceLock<SandboxResult<BufferGuestModule>> = OnceLock::new();
    BUFFER_GUEST
        .get_or_init(|| {
            let source = ModuleSource::compile_for(EngineKind::Dense, Compiler::Cranelift, BUFFER_GUEST_WASM)?;
            let module = &source.compiled().clone();
            let export = |name: &str, expected: &str| -> SandboxResult<ModuleExport> {
                let signature = match module.get_export(name) {
                    Some(ExternType::Func(func)) => describe_signature(name, &func),
                    Some(ExternType::Memory(_)) => name.to_owned(),
                    _ => String::new(),
                };
                if signature != expected {
                    return Err(SandboxError::BadExport {
                        name: name.to_owned(),
                        expected: "the tutorial's export",
                        reason: format!("expected {expected}, found {signature:?}"),
                    });
                }
                module.get_export_index(name).ok_or_else(|| SandboxError::BadExport {
                    name: name.to_owned(),
                    expected: "export",
                    reason: "missing".to_owned(),
                })
            };
            Ok(BufferGuestModule {
                memory: export("memory", "memory")?,
                get_pointer: export("getWasmMemoryBufferPointer", "getWasmMemoryBufferPointer() -> i32")?,
                store_index_zero: export(
                    "storeValueInWasmMemoryBufferIndexZero",
                    "storeValueInWasmMemoryBufferIndexZero(i32) -> ()",
                )?,
                read_index_one: export(
                    "readWasmMemoryBufferAndReturnIndexOne",
                    "readWasmMemoryBufferAndReturnIndexOne() -> i32",
                )?,
                pre: Linker::<()>::new(engine(EngineKind::Dense)?)
                    .instantiate_pre(module)
                    .map_err(|error| SandboxError::Link(format!("{error:#}")))?,
                initial_memory: OnceLock::new(),
                source,
            })
        })
        .as_ref()
        .map_err(|error| SandboxError::Internal(format!("the embedded buffer guest failed to load: {error}")))
}

/// One import or export of a module.
#[derive(Debug, Clone)]
pub struct EntryDescriptor {
    /// The import's module name; `None` for exports.
    pub module: Option<String>,
    pub name: String,
    /// `function`, `memory`, `table`, `global` or `tag`.
    pub kind: &'static str,
    /// For functions: parameter and result types (`i32`, `i64`, `f32`, `f64`, `v128`, `funcref`, ...).
    pub signature: Option<(Vec<&'static str>, Vec<&'static str>)>,
}

impl EntryDescriptor {
    fn new(module: Option<&str>, name: &str, ty: ExternType) -> Self {
        let (kind, signature) = match &ty {
            ExternType::Func(func) => ("function", Some(signature(func))),
            ExternType::Memory(_) => ("memory", None),
            ExternType::Table(_) => ("table", None),
            ExternType::Global(_) => ("global", None),
            ExternType::Tag(_) => ("tag", None),
        };
        Self {
            module: module.map(str::to_owned),
            name: name.to_owned(),
            kind,
            signature,
        }
    }
}

fn signature(func: &FuncType) -> (Vec<&'static str>, Vec<&'static str>) {
    (
        func.params().map(|ty| type_name(&ty)).collect(),
        func.results().map(|ty| type_name(&ty)).collect(),
    )
}

/// The text-format name of a value type.
pub fn type_name(ty: &ValType) -> &'static str {
    match ty {
        ValType::I32 => "i32",
        ValType::I64 => "i64",
        ValType::F32 => "f32",
        ValType::F64 => "f64",
        ValType::V128 => "v128",
        ValType::Ref(reference) if reference.heap_type().is_func() => "funcref",
        ValType::Ref(reference) if reference.heap_type().is_extern() => "externref",
        ValType::Ref(_) => "anyref",
    }
}

/// `name(i32, i64) -> f64`, the way signatures appear in error messages.
pub fn describe_signature(name: &str, func: &FuncType) -> String {
    let (params, results) = signature(func);
    let results = match results.len() {
        0 => "()".to_owned(),
        1 => results[0].to_owned(),
        _ => format!("({})", results.join(", ")),
    };
    format!("{name}({}) -> {results}", params.join(", "))
}
