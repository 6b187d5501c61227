//! Pre-initialization, Wizer's technique with its engine (`wasmtime-wizer`): a module is
//! instrumented (its memories and globals exported), instantiated as a sandbox with the caller's
//! imports and limits, its `init` export run once, and the state it left is written back into
//! the module as data segments and global initial values. Instantiating the result runs no
//! initializer.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use wasmparser::{Encoding, Parser, Payload, TypeRef};
use wasmtime::{Instance, StoreContextMut, Val};
use wasmtime_wizer::{InstanceState, SnapshotVal, ValType, Wizer};

use crate::engine::EngineKind;
use crate::error::{SandboxError, SandboxResult};
use crate::sandbox::{HostState, Sandbox};

/// Runs `init` of binary module `wasm` once in the sandbox `instantiate` makes of the
/// instrumented bytes, and returns the module with the state it left as its initial state.
pub fn preinitialize(
    wasm: &[u8],
    init: &str,
    instantiate: impl FnOnce(&[u8]) -> SandboxResult<Sandbox>,
) -> SandboxResult<Vec<u8>> {
    // Malformed bytes are a compile error, as for `new Module` (not a refusal by Wizer).
    wasmtime::Module::validate(crate::engine::engine(EngineKind::Standard)?, wasm)
        .map_err(|error| SandboxError::Compile(format!("{error:#}")))?;
    refuse_what_wizer_panics_on(wasm)?;
    let mut wizer = Wizer::new();
    wizer.init_func(init).keep_init_func(false);
    let (context, instrumented) = wizer.instrument(wasm).map_err(|error| cannot(format!("{error:#}")))?;
    // The start function (a hidden export, see `expose_state`) and, with WASI, a reactor's
    // `_initialize` run here.
    let sandbox = instantiate(&instrumented)?;
    if !sandbox.has_wasi() && init != "_initialize" {
        // The output has no `_initialize` export (wizer drops it): what it does must be done now.
        call_nullary(&sandbox, "_initialize", false)?;
    }
    call_nullary(&sandbox, init, true)?;
    sandbox.with_instance(|store, instance| {
        let mut state = SandboxState { store, instance };
        poll_ready(wizer.snapshot(&context, &mut state)).map_err(|error| cannot(format!("{error:#}")))
    })?
}

fn cannot(reason: String) -> SandboxError {
    SandboxError::Snapshot(format!("this module cannot be pre-initialized: {reason}"))
}

/// Calls export `name`, a function of no parameters and results (or errs if `required` and
/// there is none).
fn call_nullary(sandbox: &Sandbox, name: &str, required: bool) -> SandboxResult<()> {
    let Some(index) = sandbox.function_index(name)? else {
        return match required {
            true => Err(SandboxError::BadExport {
                name: name.to_owned(),
                expected: "function of type () -> ()",
                reason: "the module exports no function of that name".to_owned(),
            }),
            false => Ok(()),
        };
    };
    let function = sandbox
        .function_at(index)?
        .ok_or_else(|| SandboxError::Internal(format!("no exported function at index {index}")))?;
    if function.ty.params().len() != 0 || function.ty.results().len() != 0 {
        return Err(SandboxError::BadExport {
            name: name.to_owned(),
            expected: "function of type () -> ()",
            reason: format!("its type is {}", function.ty),
        });
    }
    sandbox.call(&function.func, &[], &mut [])
}

/// wasmtime-wizer 48 panics (instead of erring) on an imported tag and on a shared memory.
fn refuse_what_wizer_panics_on(wasm: &[u8]) -> SandboxResult<()> {
    for payload in Parser::new(0).parse_all(wasm) {
        // Malformed input is left to wizer's own validation, which errs.
        let Ok(payload) = payload else { return Ok(()) };
        match payload {
            Payload::Version {
                encoding: Encoding::Component,
                ..
            } => return Err(cannot("it is a component, not a core module".to_owned())),
            Payload::ImportSection(imports) => {
                for import in imports.into_imports() {
                    let Ok(import) = import else { return Ok(()) };
                    if let TypeRef::Tag(_) | TypeRef::FuncExact(_) = import.ty {
                        return Err(cannot(format!(
                            "it imports \"{}.{}\", a tag or exact function",
                            import.module, import.name
                        )));
                    }
                }
            }
            Payload::MemorySection(memories) => {
                for memory in memories {
                    let Ok(memory) = memory else { return Ok(()) };
                    if memory.shared {
                        return Err(cannot("it defines a shared memory".to_owned()));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The instrumented instance's state, read from its store; every future is ready at once.
struct SandboxState<'a> {
    store: StoreContextMut<'a, HostState>,
    instance: &'a Instance,
}

impl InstanceState for SandboxState<'_> {
    fn global_get(&mut self, name: &str, _: ValType) -> impl Future<Output = SnapshotVal> + Send {
        let value = match self
            .instance
            .get_global(&mut self.store, name)
            .map(|global| global.get(&mut self.store))
        {
            Some(Val::I32(value)) => SnapshotVal::I32(value),
            Some(Val::I64(value)) => SnapshotVal::I64(value),
            Some(Val::F32(value)) => SnapshotVal::F32(value),
            Some(Val::F64(value)) => SnapshotVal::F64(value),
            Some(Val::V128(value)) => SnapshotVal::V128(value.as_u128()),
            // `instrument` refuses mutable reference-typed globals and exports every global it
            // asks for here.
            other => unreachable!("wizer asked for global {name:?}: {other:?}"),
        };
        std::future::ready(value)
    }

    fn memory_contents(&mut self, name: &str, contents: impl FnOnce(&[u8]) + Send) -> impl Future<Output = ()> + Send {
        match self.instance.get_memory(&mut self.store, name) {
            Some(memory) => contents(memory.data(&self.store)),
            None => unreachable!("wizer asked for memory {name:?}, which it exported"),
        }
        std::future::ready(())
    }
}

/// Drives a future that never suspends.
fn poll_ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => unreachable!("the snapshot's InstanceState never suspends"),
    }
}
