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
fn format_number(number: f64) -> String {
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
fn describe(env: &Env, value: &Unknown) -> String {
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
        Ok(ValueType::BigInt) => "type bigint".to_owned(),
        Ok(ValueType::Symbol) => "type symbol".to_owned(),
        Ok(ValueType::Function) => "type function".to_owned(),
        Ok(ValueType::Object | ValueType::External) => "type object".to_owned(),
        _ => "a value of unknown type".to_owned(),
    }
}
