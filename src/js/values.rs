//! Validation of JS arguments. napi-rs's own integer conversion truncates and wraps (256 becomes
//! 0, 1.5 becomes 1), so numbers arrive raw and are checked here, with Node-style messages.

use napi::bindgen_prelude::{FromNapiValue, JsValue, Unknown};
use napi::{Env, ValueType};

use crate::error::SandboxError;

/// Reads `value` as an integer in `min..=max`: a `TypeError` for a non-number, a `RangeError`
/// for NaN, infinities, fractions and out-of-range numbers.
pub fn integer_in_range(env: &Env, value: &Unknown, name: &str, min: f64, max: f64) -> Result<f64, SandboxError> {
    let expected = format!("an integer from {min} to {max}");
    if value.get_type().ok() != Some(ValueType::Number) {
        return Err(SandboxError::InvalidArgType(format!(
            "The \"{name}\" argument must be of type number ({expected}). Received {}",
            describe(env, value)
        )));
    }
    // SAFETY: the value was just checked to be a number of this env.
    let number = unsafe { f64::from_napi_value(env.raw(), value.raw()) }
        .map_err(|error| SandboxError::Internal(error.to_string()))?;
    if number.fract() != 0.0 || !(min..=max).contains(&number) {
        return Err(SandboxError::OutOfRange(format!(
            "The value of \"{name}\" is out of range. It must be {expected}. Received {}",
            format_number(number)
        )));
    }
    Ok(number)
}

/// Renders a number the way JS prints it (`1.5`, `NaN`, `-Infinity`, `256`).
pub fn format_number(number: f64) -> String {
    match number {
        n if n.is_nan() => "NaN".to_owned(),
        n if n == f64::INFINITY => "Infinity".to_owned(),
        n if n == f64::NEG_INFINITY => "-Infinity".to_owned(),
        // JS switches to exponent notation outside [1e-6, 1e21).
        n if n != 0.0 && !(1e-6..1e21).contains(&n.abs()) => {
            let exponent_form = format!("{n:e}");
            match exponent_form.split_once('e') {
                Some((mantissa, exponent)) if !exponent.starts_with('-') => format!("{mantissa}e+{exponent}"),
                _ => exponent_form,
            }
        }
        n => n.to_string(),
    }
}

/// Says what a wrong-typed argument was, without running any of the caller's code.
pub fn describe(env: &Env, value: &Unknown) -> String {
    match value.get_type() {
        Ok(ValueType::Undefined) => "undefined".to_owned(),
        Ok(ValueType::Null) => "null".to_owned(),
        Ok(ValueType::String) => {
            // SAFETY: checked to be a string of this env.
            let text = unsafe { String::from_napi_value(env.raw(), value.raw()) }.unwrap_or_default();
            let shown: String = text.chars().take(25).collect();
            let ellipsis = if shown.len() < text.len() { "..." } else { "" };
            format!("type string ('{shown}'{ellipsis})")
        }
        Ok(ValueType::Boolean) => {
            // SAFETY: checked to be a boolean of this env.
            let flag = unsafe { bool::from_napi_value(env.raw(), value.raw()) }.unwrap_or_default();
            format!("type boolean ({flag})")
        }
        Ok(ValueType::Number) => {
            // SAFETY: checked to be a number of this env.
            let number = unsafe { f64::from_napi_value(env.raw(), value.raw()) }.unwrap_or(f64::NAN);
            format!("type number ({})", format_number(number))
        }
        Ok(ValueType::BigInt) => "type bigint".to_owned(),
        Ok(ValueType::Symbol) => "type symbol".to_owned(),
        Ok(ValueType::Function) => "type function".to_owned(),
        Ok(ValueType::Object | ValueType::External) => "type object".to_owned(),
        _ => "a value of unknown type".to_owned(),
    }
}

/// A raw JS value of the current call.
pub type RawValue = napi::sys::napi_value;

/// The `typeof` of a raw value.
pub fn type_of(env: &Env, value: RawValue) -> ValueType {
    // SAFETY: `value` belongs to this env and call.
    unsafe { Unknown::from_raw_unchecked(env.raw(), value) }
        .get_type()
        .unwrap_or(ValueType::Unknown)
}

/// `describe` for a raw value.
pub fn describe_raw(env: &Env, value: RawValue) -> String {
    // SAFETY: `value` belongs to this env and call.
    describe(env, &unsafe { Unknown::from_raw_unchecked(env.raw(), value) })
}

/// The i32 a JS number stands for: an integer from -2**31 to 2**32 - 1 (unsigned inputs above
/// i32::MAX are the same 32 bits, as wasm sees them); `None` for anything else, NaN included.
#[inline(always)]
pub fn i32_from_number(number: f64) -> Option<i32> {
    // The range test (false for NaN) comes first so the conversion needs no saturation, and the
    // round trip holds for integers only (and -0): cheaper than `fract()`, a libm call.
    if !(-2_147_483_648.0..=4_294_967_295.0).contains(&number) {
        return None;
    }
    // SAFETY: `number` is finite and within i64's range, checked just above.
    let integer = unsafe { number.to_int_unchecked::<i64>() };
    (integer as f64 == number).then_some(integer as u32 as i32)
}

/// Converts a JS value to a wasm value of type `ty`: i32, f32 and f64 from a number, i64 from a
/// bigint. `Err` says what was wrong, for the caller to put in context; the bool is whether it
/// is a type error (else a range error).
pub fn to_wasm(env: &Env, value: RawValue, ty: &wasmtime::ValType) -> Result<wasmtime::Val, (bool, String)> {
    use wasmtime::{Val, ValType};
    let raw_env = env.raw();
    match ty {
        ValType::I32 | ValType::F32 | ValType::F64 => {
            let mut number = 0.0;
            // SAFETY: `value` belongs to this env; a non-number gives `napi_number_expected`.
            if unsafe { napi::sys::napi_get_value_double(raw_env, value, &mut number) } != napi::sys::Status::napi_ok {
                return Err((
                    true,
                    format!(
                        "must be of type number ({}); received {}",
                        crate::module::type_name(ty),
                        describe_raw(env, value)
                    ),
                ));
            }
            Ok(match ty {
                ValType::I32 => Val::I32(i32_from_number(number).ok_or_else(|| {
                    (
                        false,
                        format!(
                            "must be an integer from -2147483648 to 4294967295 (i32); received {}",
                            format_number(number)
                        ),
                    )
                })?),
                ValType::F32 => Val::F32((number as f32).to_bits()),
                _ => Val::F64(number.to_bits()),
            })
        }
        ValType::I64 => {
            let (mut signed, mut lossless) = (0i64, false);
            // SAFETY: `value` belongs to this env; a non-bigint gives `napi_bigint_expected`.
            let status = unsafe { napi::sys::napi_get_value_bigint_int64(raw_env, value, &mut signed, &mut lossless) };
            if status != napi::sys::Status::napi_ok {
                return Err((
                    true,
                    format!("must be of type bigint (i64); received {}", describe_raw(env, value)),
                ));
            }
            if lossless {
                return Ok(Val::I64(signed));
            }
            let mut unsigned = 0u64;
            // SAFETY: checked to be a bigint of this env.
            unsafe { napi::sys::napi_get_value_bigint_uint64(raw_env, value, &mut unsigned, &mut lossless) };
            if lossless {
                return Ok(Val::I64(unsigned as i64));
            }
            Err((
                false,
                "must be a bigint from -(2n ** 63n) to 2n ** 64n - 1n (i64)".to_owned(),
            ))
        }
        other => Err((
            true,
            format!(
                "has type {}, which cannot be passed from JavaScript",
                crate::module::type_name(other)
            ),
        )),
    }
}

/// Converts a wasm value to JS: i32, f32, f64 to a number, i64 to a bigint.
pub fn from_wasm(env: &Env, value: &wasmtime::Val) -> crate::error::SandboxResult<RawValue> {
    use wasmtime::Val;
    let raw_env = env.raw();
    let mut result = std::ptr::null_mut();
    // SAFETY: creating primitives in the live env of this call.
    let status = unsafe {
        match value {
            Val::I32(number) => napi::sys::napi_create_int32(raw_env, *number, &mut result),
            Val::I64(number) => napi::sys::napi_create_bigint_int64(raw_env, *number, &mut result),
            Val::F32(bits) => napi::sys::napi_create_double(raw_env, f64::from(f32::from_bits(*bits)), &mut result),
            Val::F64(bits) => napi::sys::napi_create_double(raw_env, f64::from_bits(*bits), &mut result),
            Val::FuncRef(None) | Val::ExternRef(None) | Val::AnyRef(None) | Val::ExnRef(None) | Val::ContRef(None) => {
                napi::sys::napi_get_null(raw_env, &mut result)
            }
            other => {
                return Err(SandboxError::InvalidArgType(format!(
                    "a wasm value of type {:?} cannot be passed to JavaScript",
                    other
                )));
            }
        }
    };
    if status != napi::sys::Status::napi_ok {
        return Err(SandboxError::Internal(format!(
            "creating a JS value failed with status {status}"
        )));
    }
    Ok(result)
}

/// Bytes from a `Uint8Array`/`Buffer`/`ArrayBuffer` (copied), or a string's UTF-8 (wasm text).
pub fn bytes_or_text(env: &Env, value: &Unknown, name: &str) -> crate::error::SandboxResult<Vec<u8>> {
    if value.get_type().ok() == Some(ValueType::String) {
        // SAFETY: checked to be a string of this env.
        let text = unsafe { String::from_napi_value(env.raw(), value.raw()) }
            .map_err(|error| SandboxError::Internal(error.to_string()))?;
        return Ok(text.into_bytes());
    }
    uint8_bytes(env, value.raw()).map(<[u8]>::to_vec).ok_or_else(|| {
        SandboxError::InvalidArgType(format!(
            "The \"{name}\" argument must be a Uint8Array, an ArrayBuffer or a string. Received {}",
            describe(env, value)
        ))
    })
}

/// The bytes of a `Uint8Array`/`Buffer` (or `ArrayBuffer`), borrowed for the current call.
pub fn uint8_bytes<'a>(env: &Env, value: RawValue) -> Option<&'a [u8]> {
    let raw_env = env.raw();
    let (mut is_typed_array, mut is_array_buffer) = (false, false);
    // SAFETY: `value` belongs to this env; the bytes are read before JS can run again.
    unsafe {
        napi::sys::napi_is_typedarray(raw_env, value, &mut is_typed_array);
        napi::sys::napi_is_arraybuffer(raw_env, value, &mut is_array_buffer);
    }
    let mut data = std::ptr::null_mut();
    let mut length = 0usize;
    if is_typed_array {
        let mut kind = 0;
        let mut array_buffer = std::ptr::null_mut();
        let mut offset = 0;
        // SAFETY: checked to be a typed array.
        let status = unsafe {
            napi::sys::napi_get_typedarray_info(
                raw_env,
                value,
                &mut kind,
                &mut length,
                &mut data,
                &mut array_buffer,
                &mut offset,
            )
        };
        let is_bytes = kind == napi::sys::TypedarrayType::uint8_array
            || kind == napi::sys::TypedarrayType::uint8_clamped_array
            || kind == napi::sys::TypedarrayType::int8_array;
        if status != napi::sys::Status::napi_ok || !is_bytes {
            return None;
        }
    } else if is_array_buffer {
        // SAFETY: checked to be an array buffer.
        let status = unsafe { napi::sys::napi_get_arraybuffer_info(raw_env, value, &mut data, &mut length) };
        if status != napi::sys::Status::napi_ok {
            return None;
        }
    } else {
        return None;
    }
    if length == 0 || data.is_null() {
        return Some(&[]);
    }
    // SAFETY: Node-API reported `length` readable bytes at `data`, alive for this call.
    Some(unsafe { std::slice::from_raw_parts(data.cast::<u8>(), length) })
}

/// The native object of a napi-rs class instance, checked by the class's type tag first so an
/// object of another class (or a spoofed prototype) is refused. Borrowed for the current call.
///
/// # Safety
/// `value` must belong to `env`, and the returned reference must not outlive the current call.
pub unsafe fn unwrap_class<'a, T: napi::bindgen_prelude::TypeTag>(env: &Env, value: RawValue) -> Option<&'a T> {
    let tag = T::type_tag();
    let mut matches = false;
    // SAFETY: forwarded from the caller; a non-object gives a non-ok status.
    let status = unsafe { napi::sys::napi_check_object_type_tag(env.raw(), value, &tag, &mut matches) };
    if status != napi::sys::Status::napi_ok || !matches {
        return None;
    }
    let mut wrapped = std::ptr::null_mut();
    // SAFETY: tagged as a `T`, so napi-rs wrapped a `T` in it.
    let status = unsafe { napi::sys::napi_unwrap(env.raw(), value, &mut wrapped) };
    // SAFETY: the wrapped pointer is the class's native object, alive while `value` is.
    (status == napi::sys::Status::napi_ok && !wrapped.is_null()).then(|| unsafe { &*wrapped.cast::<T>() })
}
