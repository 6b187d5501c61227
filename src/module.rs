//! Compiled modules: the embedded buffer guest, compiled once per process.

use std::sync::OnceLock;

use wasmtime::{InstancePre, Linker, Module};

use crate::engine::engine;
use crate::error::SandboxError;
use crate::sandbox::HostState;

/// The buffer guest (`guest/`), built for wasm32 by `build.rs`.
pub const BUFFER_GUEST_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/buffer_guest.wasm"));

/// The buffer guest, compiled and pre-linked once: instantiating it is then only allocation.
pub fn buffer_guest() -> Result<&'static InstancePre<HostState>, SandboxError> {
    static BUFFER_GUEST: OnceLock<Result<InstancePre<HostState>, SandboxError>> = OnceLock::new();
    let prepared = BUFFER_GUEST.get_or_init(|| {
        let engine = engine()?;
        let module =
            Module::new(engine, BUFFER_GUEST_WASM).map_err(|error| SandboxError::Compile(format!("{error:#}")))?;
        Linker::new(engine)
            .instantiate_pre(&module)
            .map_err(|error| SandboxError::Link(format!("{error:#}")))
    });
    prepared
        .as_ref()
        .map_err(|error| SandboxError::Internal(error.to_string()))
}
