//! The one process-wide wasmtime `Engine`, shared by every sandbox on every thread.

use std::sync::OnceLock;

use wasmtime::{Config, Engine};

use crate::error::SandboxError;

/// Returns the process-wide engine, creating it on first use.
pub fn engine() -> Result<&'static Engine, SandboxError> {
    static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();
    ENGINE
        .get_or_init(|| Engine::new(&config()).map_err(|error| format!("{error:#}")))
        .as_ref()
        .map_err(|reason| SandboxError::Internal(format!("the wasmtime engine failed to start: {reason}")))
}

fn config() -> Config {
    let mut config = Config::new();
    // Views handed to JS point at the memory's base: it must never move, so growth happens in
    // place inside the memory's address-space reservation (or fails, never relocates).
    config.memory_may_move(false);
    config
}
