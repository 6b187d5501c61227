//! The typed fast path: a function whose parameters and result are among a few shapes (bytes,
//! strings, 32-bit integers) is called through wasmtime's statically typed API, so a `list<u8>`
//! crosses with one copy (JS bytes straight into guest memory, guest memory straight into a new
//! `Uint8Array`) instead of one dynamically typed value per byte.

use std::ptr;

use napi::sys;
use wasmtime::component::types::Type;
use wasmtime::component::{ComponentNamedList, Lower, WasmList};

use super::values::{check_status, get_string, undefined};
use crate::component::{ComponentInstance, ExportedFunction};
use crate::error::SandboxResult;
use crate::js::values::RawValue;

/// A parameter list the fast path takes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Params {
    None,
    Bytes,
    Text,
    U32,
}

/// A result the fast path gives.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Results {
    None,
    Bytes,
    Text,
    U32,
    U64,
}

/// The fast-path shape of `function`, if it has one.
pub fn shape(function: &ExportedFunction) -> Option<(Params, Results)> {
    let params = match function.params.as_slice() {
        [] => Params::None,
        [Type::String] => Params::Text,
        [Type::U32] => Params::U32,
        [Type::List(list)] if list.ty() == Type::U8 => Params::Bytes,
        _ => return None,
    };
    let results = match &function.result {
        None => Results::None,
        Some(Type::String) => Results::Text,
        Some(Type::U32) => Results::U32,
        Some(Type::U64) => Results::U64,
        Some(Type::List(list)) if list.ty() == Type::U8 => Results::Bytes,
        Some(_) => return None,
    };
    // A u32 alone goes the general way (as cheap), unless bytes or text come back.
    let worth_it = match params {
        Params::None | Params::U32 => matches!(results, Results::Bytes | Results::Text),
        Params::Bytes | Params::Text => true,
    };
    worth_it.then_some((params, results))
}

/// Calls through the fast path. `None` when the arguments do not fit it exactly (a plain array for
/// bytes, a non-string): the caller takes the general path, which explains what is wrong.
pub fn call(
    env: sys::napi_env,
    core: &ComponentInstance,
    index: usize,
    (params, results): (Params, Results),
    args: RawValue,
) -> Option<SandboxResult<RawValue>> {
    let mut first = ptr::null_mut();
    if params != Params::None {
        // SAFETY: `args` is the facade's array of this call.
        unsafe { sys::napi_get_element(env, args, 0, &mut first) };
    }
    match params {
        Params::None => Some(call_with(env, core, index, (), results)),
        Params::Bytes => {
            let bytes = super::values::uint8_array_bytes(env, first)?;
            Some(call_with(env, core, index, (bytes,), results))
        }
        Params::Text => {
            let text = get_string(env, first)?;
            Some(call_with(env, core, index, (text.as_str(),), results))
        }
        Params::U32 => {
            let mut number = 0.0;
            // SAFETY: `first` belongs to `env`; a non-number fails without side effects.
            let is_number = unsafe { sys::napi_get_value_double(env, first, &mut number) } == sys::Status::napi_ok;
            if !is_number || number.fract() != 0.0 || !(0.0..=4_294_967_295.0).contains(&number) {
                return None;
            }
            Some(call_with(env, core, index, (number as u32,), results))
        }
    }
}

fn call_with<P: ComponentNamedList + Lower>(
    env: sys::napi_env,
    core: &ComponentInstance,
    index: usize,
    params: P,
    results: Results,
) -> SandboxResult<RawValue> {
    let value = match results {
        Results::None => {
            core.call_typed(index, |func, store| {
                func.typed::<P, ()>(&*store)?.call(&mut *store, params)
            })?;
            undefined(env)
        }
        Results::U32 => {
            let (number,) = core.call_typed(index, |func, store| {
                func.typed::<P, (u32,)>(&*store)?.call(&mut *store, params)
            })?;
            let mut value = ptr::null_mut();
            // SAFETY: creates a number in `env`.
            check_status(unsafe { sys::napi_create_uint32(env, number, &mut value) })?;
            value
        }
        Results::U64 => {
            let (number,) = core.call_typed(index, |func, store| {
                func.typed::<P, (u64,)>(&*store)?.call(&mut *store, params)
            })?;
            let mut value = ptr::null_mut();
            // SAFETY: creates a bigint in `env`.
            check_status(unsafe { sys::napi_create_bigint_uint64(env, number, &mut value) })?;
            value
        }
        Results::Text => {
            let (text,) = core.call_typed(index, |func, store| {
                func.typed::<P, (String,)>(&*store)?.call(&mut *store, params)
            })?;
            super::values::string(env, &text)?
        }
        Results::Bytes => core.call_typed(index, |func, store| {
            let (list,) = func.typed::<P, (WasmList<u8>,)>(&*store)?.call(&mut *store, params)?;
            // Straight from guest memory into the new Uint8Array's buffer: one copy.
            let bytes = list.as_le_slice(&*store);
            super::values::new_uint8_array(env, bytes).map_err(wasmtime::Error::new)
        })?,
    };
    Ok(value)
}
