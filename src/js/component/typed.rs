//! The typed fast path: a function whose parameters and result are among a few shapes (bytes,
//! strings, 32-bit integers) is called through wasmtime's statically typed API, without the
//! general path's `Value` tree (a string call takes about 0.5 us less). A byte-list result takes
//! the general path, which copies it out before the guest's `post-return` may free it (a
//! `WasmList` read after the call could see the guest's allocator reuse the block).

use std::ptr;

use napi::sys;
use wasmtime::component::types::Type;
use wasmtime::component::{ComponentNamedList, Lower};

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
        Some(_) => return None,
    };
    // A u32 alone goes the general way (as cheap), unless text comes back.
    let worth_it = match params {
        Params::None | Params::U32 => results == Results::Text,
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
    };
    Ok(value)
}
