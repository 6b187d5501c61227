//! `Snapshot`: a sandbox's state taken by `sandbox.snapshot()`, put back with `restore()`, forked
//! with `instantiate()`.

use std::rc::Rc;

use napi::bindgen_prelude::Unknown;
use napi::{Env, Result};
use napi_derive::napi;

use crate::error::{SandboxError, SandboxResult};
use crate::js::errors::OrThrow;
use crate::js::sandbox::Sandbox;
use crate::store::snapshot::StateSnapshot;

/// A guest's memories, globals and tables at one moment. Its memory is a copy-on-write image:
/// restoring it rewrites only the pages written since.
#[napi]
pub struct Snapshot {
    state: Option<Rc<StateSnapshot>>,
}

impl Snapshot {
    pub(crate) fn new(state: Rc<StateSnapshot>) -> Self {
        Self { state: Some(state) }
    }

    /// The state, or `ERR_SANDBOX_DISPOSED` once disposed.
    pub(crate) fn state(&self) -> SandboxResult<&Rc<StateSnapshot>> {
        self.state.as_ref().ok_or(SandboxError::Disposed)
    }
}

#[napi]
impl Snapshot {
    /// Bytes of memory it holds (pages never written hold nothing).
    #[napi(getter, catch_unwind)]
    pub fn memory_bytes(&self, env: &Env) -> Result<f64> {
        Ok(self.state().or_throw(env)?.memory_bytes() as f64)
    }

    /// Whether `dispose()` has been called.
    #[napi(getter)]
    pub fn disposed(&self) -> bool {
        self.state.is_none()
    }

    /// A new, independent `Sandbox` of the snapshot's module that starts from this state (a
    /// fork), with `Sandbox`'s options; the same as `new Sandbox(snapshot, options)`. Its
    /// memories share the snapshot's pages copy-on-write, so a fork costs what instantiating the
    /// module costs, whatever the size of its memory. The start function and `_initialize` are
    /// not run again.
    #[napi(catch_unwind, ts_args_type = "options?: SandboxOptions")]
    pub fn instantiate(&self, env: &Env, options: Option<Unknown>) -> Result<Sandbox> {
        // Replaced by the JS facade (which makes its own `Sandbox` subclass); kept for the types.
        let state = Rc::clone(self.state().or_throw(env)?);
        Sandbox::fork(env, state, options)
    }

    /// Releases its memory images now (sandboxes restored from it keep the pages they map);
    /// later use throws `ERR_SANDBOX_DISPOSED`.
    #[napi]
    pub fn dispose(&mut self) {
        self.state = None;
    }
}
