//! `Snapshot`: a sandbox's state taken by `sandbox.snapshot()`, put back with `restore()`.

use std::rc::Rc;

use napi::Env;
use napi::Result;
use napi_derive::napi;

use crate::error::{SandboxError, SandboxResult};
use crate::js::errors::OrThrow;
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

    /// Releases its memory images now (sandboxes restored from it keep the pages they map);
    /// later use throws `ERR_SANDBOX_DISPOSED`.
    #[napi]
    pub fn dispose(&mut self) {
        self.state = None;
    }
}
