//! Snapshots of a core instance's state: its memories (copy-on-write images, see
//! `snapshot_memory`), globals and tables, reached through the hidden exports `expose_state`
//! adds to every module compiled for the general engines. Putting one back rewrites only what
//! changed since: the pages written since the image was mapped, the globals, the table slots.

use std::sync::Arc;

use wasmtime::{AsContextMut, Extern, Instance, Module, Ref, Val};

use super::expose_state::{HIDDEN_EXPORT_PREFIX, is_hidden_export};
use super::snapshot_memory::{self, MemoryImage, PageCopy, SnapshotMemory};
use crate::error::{SandboxError, SandboxResult};

/// A guest's state at one moment, its memories as `M`. Function references (in tables and
/// globals) belong to the store they were taken in (`store_id`).
pub struct Captured<M> {
    module: Module,
    store_id: u64,
    memories: Vec<(String, M)>,
    globals: Vec<(String, Val)>,
    tables: Vec<(String, Vec<Ref>)>,
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
            module: self.module.clone(),
            store_id: self.store_id,
            memories,
            globals: self.globals.clone(),
            tables: self.tables.clone(),
        })
    }
}

impl StateSnapshot {
    /// Bytes of memory the snapshot holds (pages that were never written are not stored).
    pub fn memory_bytes(&self) -> usize {
        self.memories.iter().map(|(_, image)| image.stored_bytes()).sum()
    }

    /// Whether this snapshot was taken of an instance of `module`.
    pub fn is_of(&self, module: &Module) -> bool {
        Module::same(&self.module, module)
    }
}

/// The hidden export names of `module`'s own state (`expose_state`).
fn hidden_exports(module: &Module) -> impl Iterator<Item = &str> {
    module
        .exports()
        .map(|export| export.name())
        .filter(|name| is_hidden_export(name))
}

/// What a hidden export name says, for messages: `global 3`.
fn describe(name: &str) -> String {
    name.trim_start_matches(HIDDEN_EXPORT_PREFIX).replace(':', " ")
}

/// Captures `instance`'s state as a snapshot. `store_id` identifies the store (function
/// references stay in it).
pub fn capture(
    store: impl AsContextMut,
    instance: &Instance,
    module: &Module,
    store_id: u64,
) -> SandboxResult<StateSnapshot> {
    capture_with(store, instance, module, store_id, |memory| memory.capture())
}

/// Captures `instance`'s state with its memories' pages copied to the heap.
pub fn capture_initial(
    store: impl AsContextMut,
    instance: &Instance,
    module: &Module,
    store_id: u64,
) -> SandboxResult<InitialState> {
    capture_with(store, instance, module, store_id, |memory| memory.copy_pages())
}

fn capture_with<M>(
    mut store: impl AsContextMut,
    instance: &Instance,
    module: &Module,
    store_id: u64,
    take: impl Fn(&mut SnapshotMemory) -> std::io::Result<M>,
) -> SandboxResult<Captured<M>> {
    let mut store = store.as_context_mut();
    let mut memories = Vec::new();
    let mut globals = Vec::new();
    let mut tables = Vec::new();
    for name in hidden_exports(module) {
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
                let value = global.get(&mut store);
                if let Some(reason) = uncapturable(&value) {
                    return Err(SandboxError::Snapshot(format!(
                        "{} holds {reason}, which a snapshot cannot capture",
                        describe(name)
                    )));
                }
                globals.push((name.to_owned(), value));
            }
            Extern::Table(table) => {
                let size = table.size(&store);
                let mut elements = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
                for index in 0..size {
                    let element = table.get(&mut store, index).unwrap_or(Ref::Func(None));
                    if let Ref::Extern(Some(_)) | Ref::Any(Some(_)) | Ref::Exn(Some(_)) = element {
                        return Err(SandboxError::Snapshot(format!(
                            "{} holds a host reference at index {index}, which a snapshot cannot capture",
                            describe(name)
                        )));
                    }
                    elements.push(element);
                }
                tables.push((name.to_owned(), elements));
            }
            _ => {}
        }
    }
    Ok(Captured {
        module: module.clone(),
        store_id,
        memories,
        globals,
        tables,
    })
}

/// Why a global's value cannot be captured, if it cannot.
fn uncapturable(value: &Val) -> Option<&'static str> {
    match value {
        Val::ExternRef(Some(_)) => Some("an externref"),
        Val::AnyRef(Some(_)) => Some("a GC reference"),
        Val::ExnRef(Some(_)) => Some("an exception reference"),
        _ => None,
    }
}

/// Puts `snapshot` back into `instance` (of `module`, in store `store_id`). Everything is checked
/// before anything changes: a snapshot of another module, one whose memory is larger than
/// `max_memory_bytes`, or one whose tables cannot be put back changes nothing.
pub fn restore(
    mut store: impl AsContextMut,
    instance: &Instance,
    module: &Module,
    store_id: u64,
    snapshot: &StateSnapshot,
    max_memory_bytes: Option<u64>,
) -> SandboxResult<()> {
    let mut store = store.as_context_mut();
    if !snapshot.is_of(module) {
        return Err(SandboxError::Snapshot(
            "this snapshot was taken of another module: a snapshot restores only into sandboxes of the module it \
             was taken of"
                .to_owned(),
        ));
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
    if snapshot.store_id != store_id
        && let Some((name, _)) = snapshot
            .globals
            .iter()
            .find(|(_, value)| matches!(value, Val::FuncRef(Some(_))))
    {
        return Err(SandboxError::Snapshot(format!(
            "{} holds a function reference of the sandbox the snapshot was taken in; it restores only there",
            describe(name)
        )));
    }
    let mut tables = Vec::with_capacity(snapshot.tables.len());
    for (name, elements) in &snapshot.tables {
        let table = instance
            .get_table(&mut store, name)
            .ok_or_else(|| SandboxError::Internal(format!("{} is missing", describe(name))))?;
        let size = table.size(&store);
        if size > elements.len() as u64 {
            return Err(SandboxError::Snapshot(format!(
                "{} grew from {} to {size} elements since the snapshot, and a table cannot shrink",
                describe(name),
                elements.len()
            )));
        }
        let holds_functions = elements.iter().any(|element| matches!(element, Ref::Func(Some(_))));
        if holds_functions && snapshot.store_id != store_id {
            return Err(SandboxError::Snapshot(format!(
                "{} holds function references of the sandbox the snapshot was taken in; it restores only there",
                describe(name)
            )));
        }
        tables.push((table, size, elements));
    }
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
        if let Some(global) = instance.get_global(&mut store, name)
            && global.ty(&store).mutability().is_var()
        {
            global
                .set(&mut store, *value)
                .map_err(|error| SandboxError::Internal(format!("{error:#}")))?;
        }
    }
    for (table, size, elements) in tables {
        if (size as usize) < elements.len() {
            table
                .grow(&mut store, elements.len() as u64 - size, Ref::Func(None))
                .map_err(|error| SandboxError::Internal(format!("{error:#}")))?;
        }
        for (index, element) in elements.iter().enumerate() {
            table
                .set(&mut store, index as u64, element.clone())
                .map_err(|error| SandboxError::Internal(format!("{error:#}")))?;
        }
    }
    Ok(())
}
