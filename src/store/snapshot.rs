//! Snapshots of a core instance's state: its memories (copy-on-write images, see
//! `snapshot_memory`), globals and tables, reached through the hidden exports `expose_state`
//! adds to every module compiled for the general engines. Putting one back rewrites only what
//! changed since: the pages written since the image was mapped, the globals, the table slots.

use std::cell::OnceCell;
use std::collections::HashMap;
use std::sync::Arc;

use wasmtime::{AsContextMut, Extern, ExternType, Func, Instance, Module, Ref, Val};

use super::expose_state::{HIDDEN_EXPORT_PREFIX, HIDDEN_FUNCTION_PREFIX, hidden_memory, is_hidden_export};
use super::snapshot_memory::{self, MemoryImage, PageCopy, SnapshotMemory};
use crate::error::{SandboxError, SandboxResult};
use crate::module::ModuleSource;

/// A guest's state at one moment, its memories as `M`. Function references (in tables and
/// globals) are kept as function indices of the module, so the state can be put into any
/// instance of it: the one it was taken of, another sandbox of the same module, a fork.
pub struct Captured<M> {
    source: ModuleSource,
    memories: Vec<(String, M)>,
    globals: Vec<(String, GlobalValue)>,
    tables: Vec<CapturedTable>,
    /// Whether the WASI command had been run (`run()` refuses to run it twice).
    pub started: bool,
}

#[derive(Clone)]
enum GlobalValue {
    Value(Val),
    /// A `funcref`: the index of a function of the module, or null.
    Function(Option<u32>),
}

#[derive(Clone)]
struct CapturedTable {
    name: String,
    /// The table's null reference (of its element type).
    null: Ref,
    /// Each slot: the index of a function of the module, or null.
    slots: Vec<Option<u32>>,
}

/// A snapshot: memories as shared copy-on-write images.
pub type StateSnapshot = Captured<Arc<MemoryImage>>;

/// The state right after instantiation, its memories copied to the heap: most sandboxes are
/// never reset, so the images (a memfd each, and its system calls) are made on the first reset.
pub type InitialState = Captured<PageCopy>;

impl InitialState {
    /// The snapshot of this state.
    pub fn to_snapshot(&self) -> SandboxResult<StateSnapshot> {
        let memories = self
            .memories
            .iter()
            .map(|(name, copy)| {
                MemoryImage::from_page_copy(copy)
                    .map(|image| (name.clone(), Arc::new(image)))
                    .map_err(|error| SandboxError::Internal(format!("imaging {}: {error}", describe(name))))
            })
            .collect::<SandboxResult<_>>()?;
        Ok(Captured {
            source: self.source.clone(),
            memories,
            globals: self.globals.clone(),
            tables: self.tables.clone(),
            started: self.started,
        })
    }
}

impl StateSnapshot {
    /// Bytes of memory the snapshot holds (pages that were never written are not stored).
    pub fn memory_bytes(&self) -> usize {
        self.memories.iter().map(|(_, image)| image.stored_bytes()).sum()
    }

    /// Whether this snapshot was taken of an instance of `source` (the same bytes, whatever
    /// engine or compiler ran it).
    pub fn is_of(&self, source: &ModuleSource) -> bool {
        self.source.same_bytes(source)
    }

    /// A snapshot of an instance of `source` whose only state is one memory, `bytes` (the
    /// buffer guest: its stack pointer is the same between calls).
    pub fn of_memory(source: &ModuleSource, bytes: &[u8]) -> SandboxResult<Self> {
        let image = MemoryImage::from_bytes(bytes)
            .map_err(|error| SandboxError::Internal(format!("imaging a memory: {error}")))?;
        Ok(Captured {
            source: source.clone(),
            memories: vec![(hidden_memory(0), Arc::new(image))],
            globals: Vec::new(),
            tables: Vec::new(),
            started: false,
        })
    }

    /// Copies the snapshot's memory into `memory`, the one memory of an instance of `source`
    /// (see `of_memory`). Refused, with nothing changed, unless the snapshot is of that module
    /// and its memory is as long.
    pub fn copy_memory_into(&self, source: &ModuleSource, memory: &mut [u8]) -> SandboxResult<()> {
        if !self.is_of(source) {
            return Err(another_module());
        }
        let [(_, image)] = self.memories.as_slice() else {
            return Err(SandboxError::Snapshot(format!(
                "this snapshot holds {} memories; a BufferSandbox has one",
                self.memories.len()
            )));
        };
        if image.len() != memory.len() {
            return Err(SandboxError::MemoryLimit(format!(
                "the snapshot's memory is {} bytes; a BufferSandbox's is fixed at {}",
                image.len(),
                memory.len()
            )));
        }
        image
            .read_at(0, memory)
            .map_err(|error| SandboxError::Internal(format!("reading a memory image: {error}")))
    }

    /// The module it was taken of (what a fork instantiates).
    pub fn source(&self) -> &ModuleSource {
        &self.source
    }
}

/// The functions of an instance that a table or global can refer to (the hidden exports
/// `\0snapshot:func:N`), by index and by the address wasmtime gives their references.
pub struct Functions {
    by_index: HashMap<u32, (Func, usize)>,
    by_address: HashMap<usize, u32>,
}

impl Functions {
    pub fn of(mut store: impl AsContextMut, instance: &Instance) -> Self {
        let mut store = store.as_context_mut();
        let module = instance.module(&store).clone();
        let mut by_index = HashMap::new();
        let mut by_address = HashMap::new();
        for name in hidden_exports(&module) {
            let Some(index) = name
                .strip_prefix(HIDDEN_FUNCTION_PREFIX)
                .and_then(|index| index.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(func) = instance.get_func(&mut store, name) {
                let address = func.to_raw(&mut store).addr();
                by_index.insert(index, (func, address));
                by_address.insert(address, index);
            }
        }
        Functions { by_index, by_address }
    }

    fn index_of(&self, store: impl AsContextMut, func: &Func) -> Option<u32> {
        self.by_address.get(&func.to_raw(store).addr()).copied()
    }

    fn func(&self, index: u32) -> SandboxResult<&(Func, usize)> {
        self.by_index
            .get(&index)
            .ok_or_else(|| SandboxError::Internal(format!("function {index} is not exported for snapshots")))
    }
}

fn another_module() -> SandboxError {
    SandboxError::Snapshot(
        "this snapshot was taken of another module: a snapshot restores only into sandboxes of the module it was \
         taken of"
            .to_owned(),
    )
}

/// The hidden export names of `module`'s own state (`expose_state`).
fn hidden_exports(module: &Module) -> impl Iterator<Item = &str> {
    module
        .exports()
        .map(|export| export.name())
        .filter(|name| is_hidden_export(name))
}

/// The hidden exports of `module`'s memories, globals and tables (not its functions).
fn hidden_state_exports(module: &Module) -> impl Iterator<Item = &str> {
    module
        .exports()
        .filter(|export| is_hidden_export(export.name()) && !matches!(export.ty(), ExternType::Func(_)))
        .map(|export| export.name())
}

/// What a hidden export name says, for messages: `global 3`.
fn describe(name: &str) -> String {
    name.trim_start_matches(HIDDEN_EXPORT_PREFIX).replace(':', " ")
}

/// Captures `instance`'s state (of `source`) as a snapshot. `functions` is the instance's
/// function map, made here the first time a function reference needs it.
pub fn capture(
    store: impl AsContextMut,
    instance: &Instance,
    source: &ModuleSource,
    functions: &OnceCell<Functions>,
) -> SandboxResult<StateSnapshot> {
    capture_with(store, instance, source, functions, |memory| memory.capture())
}

/// Captures `instance`'s state with its memories' pages copied to the heap.
pub fn capture_initial(
    store: impl AsContextMut,
    instance: &Instance,
    source: &ModuleSource,
    functions: &OnceCell<Functions>,
) -> SandboxResult<InitialState> {
    capture_with(store, instance, source, functions, |memory| memory.copy_pages())
}

fn capture_with<M>(
    mut store: impl AsContextMut,
    instance: &Instance,
    source: &ModuleSource,
    functions: &OnceCell<Functions>,
    take: impl Fn(&mut SnapshotMemory) -> std::io::Result<M>,
) -> SandboxResult<Captured<M>> {
    let mut store = store.as_context_mut();
    let module = instance.module(&store).clone();
    let mut memories = Vec::new();
    let mut globals = Vec::new();
    let mut tables = Vec::new();
    for name in hidden_state_exports(&module) {
        let Some(export) = instance.get_export(&mut store, name) else {
            continue;
        };
        match export {
            Extern::Memory(memory) => {
                let base = memory.data_ptr(&store);
                let cell = snapshot_memory::find(base).ok_or_else(|| {
                    SandboxError::Snapshot(format!(
                        "{} cannot be captured: it is not a memory this sandbox created",
                        describe(name)
                    ))
                })?;
                let mut owned = snapshot_memory::lock(&cell);
                let image = take(&mut owned)
                    .map_err(|error| SandboxError::Internal(format!("capturing {}: {error}", describe(name))))?;
                memories.push((name.to_owned(), image));
            }
            Extern::Global(global) => {
                let value = match global.get(&mut store) {
                    Val::FuncRef(None) => GlobalValue::Function(None),
                    Val::FuncRef(Some(func)) => {
                        let functions = functions.get_or_init(|| Functions::of(&mut store, instance));
                        let index = functions.index_of(&mut store, &func).ok_or_else(|| {
                            SandboxError::Snapshot(format!(
                                "{} holds a function that is not the module's own, which a snapshot cannot capture",
                                describe(name)
                            ))
                        })?;
                        GlobalValue::Function(Some(index))
                    }
                    Val::ExternRef(Some(_)) | Val::AnyRef(Some(_)) | Val::ExnRef(Some(_)) => {
                        return Err(SandboxError::Snapshot(format!(
                            "{} holds a host reference (externref), which a snapshot cannot capture",
                            describe(name)
                        )));
                    }
                    value => GlobalValue::Value(value),
                };
                globals.push((name.to_owned(), value));
            }
            Extern::Table(table) => {
                let size = table.size(&store);
                let null = Ref::null(table.ty(&store).element().heap_type());
                let mut slots = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
                for index in 0..size {
                    let slot = match table.get(&mut store, index) {
                        None | Some(Ref::Func(None) | Ref::Extern(None) | Ref::Any(None) | Ref::Exn(None)) => None,
                        Some(Ref::Func(Some(func))) => {
                            let functions = functions.get_or_init(|| Functions::of(&mut store, instance));
                            Some(functions.index_of(&mut store, &func).ok_or_else(|| {
                                SandboxError::Snapshot(format!(
                                    "{} holds a function that is not the module's own at index {index}, which a \
                                     snapshot cannot capture",
                                    describe(name)
                                ))
                            })?)
                        }
                        Some(_) => {
                            return Err(SandboxError::Snapshot(format!(
                                "{} holds a host reference (externref) at index {index}, which a snapshot cannot \
                                 capture",
                                describe(name)
                            )));
                        }
                    };
                    slots.push(slot);
                }
                tables.push(CapturedTable {
                    name: name.to_owned(),
                    null,
                    slots,
                });
            }
            _ => {}
        }
    }
    Ok(Captured {
        source: source.clone(),
        memories,
        globals,
        tables,
        started: false,
    })
}

/// Puts `snapshot` back into `instance` (of `source`). Everything is checked before anything
/// changes: a snapshot of another module, one whose memory is larger than `max_memory_bytes`,
/// or one whose tables cannot be put back changes nothing.
pub fn restore(
    mut store: impl AsContextMut,
    instance: &Instance,
    source: &ModuleSource,
    functions: &OnceCell<Functions>,
    snapshot: &StateSnapshot,
    max_memory_bytes: Option<u64>,
) -> SandboxResult<()> {
    let mut store = store.as_context_mut();
    if !snapshot.is_of(source) {
        return Err(another_module());
    }
    if let Some(limit) = max_memory_bytes
        && let Some((name, image)) = snapshot.memories.iter().find(|(_, image)| image.len() as u64 > limit)
    {
        return Err(SandboxError::MemoryLimit(format!(
            "the snapshot's {} is {} bytes, more than this sandbox's maxMemoryBytes ({limit})",
            describe(name),
            image.len()
        )));
    }
    let mut memories = Vec::with_capacity(snapshot.memories.len());
    for (name, image) in &snapshot.memories {
        let memory = instance
            .get_memory(&mut store, name)
            .ok_or_else(|| SandboxError::Internal(format!("{} is missing", describe(name))))?;
        let cell = snapshot_memory::find(memory.data_ptr(&store))
            .ok_or_else(|| SandboxError::Internal(format!("{} is not a snapshot memory", describe(name))))?;
        if image.len() > snapshot_memory::lock(&cell).byte_capacity() {
            return Err(SandboxError::MemoryLimit(format!(
                "the snapshot's {} ({} bytes) does not fit this sandbox's memory reservation",
                describe(name),
                image.len()
            )));
        }
        memories.push((memory, cell, image));
    }
    let mut tables = Vec::with_capacity(snapshot.tables.len());
    for captured in &snapshot.tables {
        let table = instance
            .get_table(&mut store, &captured.name)
            .ok_or_else(|| SandboxError::Internal(format!("{} is missing", describe(&captured.name))))?;
        let size = table.size(&store);
        if size > captured.slots.len() as u64 {
            return Err(SandboxError::Snapshot(format!(
                "{} grew from {} to {size} elements since the snapshot, and a table cannot shrink",
                describe(&captured.name),
                captured.slots.len()
            )));
        }
        tables.push((table, size, captured));
    }
    let needs_functions = snapshot
        .tables
        .iter()
        .any(|table| table.slots.iter().any(Option::is_some))
        || (snapshot.globals.iter()).any(|(_, value)| matches!(value, GlobalValue::Function(Some(_))));
    let functions = if needs_functions {
        Some(functions.get_or_init(|| Functions::of(&mut store, instance)))
    } else {
        None
    };
    let function = |index: u32| match functions {
        Some(functions) => functions.func(index),
        None => Err(SandboxError::Internal("no function map".to_owned())),
    };
    // From here on nothing is refused.
    for (memory, cell, image) in memories {
        snapshot_memory::lock(&cell)
            .restore(image)
            .map_err(|error| SandboxError::Internal(format!("restoring a memory: {error}")))?;
        // wasmtime reads a memory's size from the memory after any grow, also of 0 pages: this
        // is how the guest learns the restored size (which may be smaller).
        memory
            .grow(&mut store, 0)
            .map_err(|error| SandboxError::Internal(format!("{error:#}")))?;
    }
    for (name, value) in &snapshot.globals {
        let Some(global) = instance.get_global(&mut store, name) else {
            continue;
        };
        if !global.ty(&store).mutability().is_var() {
            continue;
        }
        let value = match value {
            GlobalValue::Value(value) => *value,
            GlobalValue::Function(None) => Val::FuncRef(None),
            GlobalValue::Function(Some(index)) => Val::FuncRef(Some(function(*index)?.0)),
        };
        global
            .set(&mut store, value)
            .map_err(|error| SandboxError::Internal(format!("{error:#}")))?;
    }
    let internal = |error: wasmtime::Error| SandboxError::Internal(format!("{error:#}"));
    for (table, size, captured) in tables {
        if (size as usize) < captured.slots.len() {
            table
                .grow(&mut store, captured.slots.len() as u64 - size, captured.null.clone())
                .map_err(internal)?;
        }
        // Only slots that differ are written: most tables never change after instantiation.
        for (index, slot) in captured.slots.iter().enumerate() {
            let index = index as u64;
            let current = match table.get(&mut store, index) {
                Some(Ref::Func(Some(func))) => Some(func.to_raw(&mut store).addr()),
                // A host reference (the guest stored an externref argument): never a function.
                Some(other) if !other.is_null() => Some(0),
                _ => None,
            };
            match slot {
                None if current.is_some() => table.set(&mut store, index, captured.null.clone()).map_err(internal)?,
                Some(function_index) => {
                    let (func, address) = function(*function_index)?;
                    if current != Some(*address) {
                        table.set(&mut store, index, Ref::Func(Some(*func))).map_err(internal)?;
                    }
                }
                None => {}
            }
        }
    }
    Ok(())
}
