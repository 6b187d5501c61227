//! A sandbox: one wasmtime `Store` with one instance, and access to its linear memory.

use wasmtime::{Instance, InstancePre, Memory, Store, TypedFunc, WasmParams, WasmResults};

use crate::engine::engine;
use crate::error::SandboxError;

/// Size of a wasm page, the unit of `memory.grow`.
pub const WASM_PAGE_SIZE: u64 = 65_536;

/// Per-store data the host keeps for the guest.
#[derive(Default)]
pub struct HostState {}

/// One instantiated guest with its own store.
pub struct Sandbox {
    store: Store<HostState>,
    instance: Instance,
    memory: Option<Memory>,
}

/// Where a memory lives in the host's address space. `base` stays fixed for the memory's whole
/// life (the engine forbids moving memories), so a view over `base..base + length` stays valid
/// as long as the store that owns it is alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryRegion {
    pub base: *mut u8,
    pub length: usize,
}

impl Sandbox {
    /// Instantiates a pre-linked module in a new store. `memory_export` names the memory that
    /// views and copies use, if the guest has it.
    pub fn instantiate(pre: &InstancePre<HostState>, memory_export: &str) -> Result<Self, SandboxError> {
        let mut store = Store::new(engine()?, HostState::default());
        let instance = pre.instantiate(&mut store).map_err(|error| {
            // A start function that traps is a trap; anything else is a linking failure.
            if error.downcast_ref::<wasmtime::Trap>().is_some() {
                SandboxError::from_call(error)
            } else {
                SandboxError::Link(format!("{error:#}"))
            }
        })?;
        let memory = instance.get_memory(&mut store, memory_export);
        Ok(Self {
            store,
            instance,
            memory,
        })
    }

    /// Looks an export up as a typed function, so later calls skip all dynamic checks.
    pub fn typed_func<Params, Results>(&mut self, name: &str) -> Result<TypedFunc<Params, Results>, SandboxError>
    where
        Params: WasmParams,
        Results: WasmResults,
    {
        let func = self
            .instance
            .get_func(&mut self.store, name)
            .ok_or_else(|| SandboxError::BadExport {
                name: name.to_owned(),
                expected: "function",
                reason: "no function by that name".to_owned(),
            })?;
        func.typed(&self.store).map_err(|error| SandboxError::BadExport {
            name: name.to_owned(),
            expected: "function of the expected type",
            reason: format!("{error:#}"),
        })
    }

    /// Calls a typed export, turning traps into coded errors.
    pub fn call<Params, Results>(
        &mut self,
        func: &TypedFunc<Params, Results>,
        params: Params,
    ) -> Result<Results, SandboxError>
    where
        Params: WasmParams,
        Results: WasmResults,
    {
        func.call(&mut self.store, params).map_err(SandboxError::from_call)
    }

    fn memory(&self) -> Result<Memory, SandboxError> {
        self.memory.ok_or_else(|| SandboxError::NoMemory("memory".to_owned()))
    }

    /// The memory's current place and size.
    pub fn memory_region(&self) -> Result<MemoryRegion, SandboxError> {
        let memory = self.memory()?;
        Ok(MemoryRegion {
            base: memory.data_ptr(&self.store),
            length: memory.data_size(&self.store),
        })
    }

    /// The memory's size in bytes.
    pub fn memory_size(&self) -> Result<usize, SandboxError> {
        Ok(self.memory()?.data_size(&self.store))
    }

    /// Grows the memory by `pages` wasm pages; returns the previous size in pages.
    pub fn grow(&mut self, pages: u64) -> Result<u64, SandboxError> {
        let memory = self.memory()?;
        let current_pages = memory.size(&self.store);
        let maximum_pages = memory.ty(&self.store).maximum().unwrap_or(1 << 16);
        memory.grow(&mut self.store, pages).map_err(|error| {
            SandboxError::MemoryLimit(format!(
                "cannot grow memory by {pages} pages from {current_pages} pages (maximum {maximum_pages} pages \
                 of {WASM_PAGE_SIZE} bytes): {error:#}"
            ))
        })
    }
}
