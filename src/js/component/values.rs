//! JS values <-> component values (`crate::component::Value`), by WIT type, as `jco transpile`
//! maps them. A JS value that does not fit its type is a `TypeError` or `RangeError` naming the
//! function, the parameter (with the path inside it) and the expected type, raised before the
//! guest runs.

use std::fmt;
use std::ptr;

use napi::sys;
use wasmtime::component::types::Type;
use wasmtime::component::{ResourceAny, ResourceDynamic};

use super::resources::Resources;
use super::transmit::Transmits;
use crate::component::{BorrowedBytes, Bytes, ComponentState, Numeric, Transmit, Value, js_name};
use crate::error::{SandboxError, SandboxResult};
use crate::js::values::{RawValue, format_number};

/// Where a value sits, for messages: `"p".name[2]`.
#[derive(Clone, Copy)]
pub enum Path<'a> {
    Root {
        function: &'a str,
        param: &'a str,
    },
    Result {
        function: &'a str,
    },
    Field(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
    /// The value a future carries.
    Value,
}

impl Path<'_> {
    fn function(&self) -> &str {
        match self {
            Path::Root { function, .. } | Path::Result { function } => function,
            Path::Field(parent, _) | Path::Index(parent, _) => parent.function(),
            Path::Value => "future",
        }
    }

    fn write_inner(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root { param, .. } => write!(out, "{param}"),
            Path::Result { .. } => write!(out, "result"),
            Path::Value => write!(out, "value"),
            Path::Field(parent, field) => {
                parent.write_inner(out)?;
                write!(out, ".{field}")
            }
            Path::Index(parent, index) => {
                parent.write_inner(out)?;
                write!(out, "[{index}]")
            }
        }
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Path::Value = self {
            return write!(out, "the value given for a future");
        }
        let what = match self.root() {
            Path::Result { .. } => "the value returned for",
            Path::Value => "the value given for a",
            _ => "the argument",
        };
        write!(out, "{}: {what} \"", self.function())?;
        self.write_inner(out)?;
        write!(out, "\"")
    }
}

impl Path<'_> {
    fn root(&self) -> &Path<'_> {
        match self {
            Path::Field(parent, _) | Path::Index(parent, _) => parent.root(),
            root => root,
        }
    }
}

/// What lowering and lifting need: the env, the instance's resources, and its store.
pub struct Cx<'a, 's> {
    pub env: sys::napi_env,
    pub resources: &'a Resources,
    /// The store, unless it is away running the call (a value delivered before the call ended
    /// cannot hold resources).
    pub store: Option<&'a mut wasmtime::StoreContextMut<'s, ComponentState>>,
    /// Typed arrays are lowered in place (a synchronous call on this thread, which reads them
    /// before any JS runs), else copied (an async call reads them later, elsewhere).
    pub borrow_bytes: bool,
    /// The instance's streams and futures, in an async call (a synchronous one cannot pass them).
    pub transmits: Option<&'a Transmits>,
}

impl<'a> Cx<'a, '_> {
    /// A context without the store, for values that cross while the call runs elsewhere.
    pub fn detached(env: sys::napi_env, resources: &'a Resources, transmits: Option<&'a Transmits>) -> Self {
        Self {
            env,
            resources,
            store: None,
            borrow_bytes: false,
            transmits,
        }
    }
}

impl<'a, 's> Cx<'a, 's> {
    pub fn store(&mut self) -> SandboxResult<&mut wasmtime::StoreContextMut<'s, ComponentState>> {
        self.store.as_deref_mut().ok_or_else(|| {
            SandboxError::Unsupported(
                "a resource or stream inside a value that crosses while the call runs cannot cross to JavaScript"
                    .to_owned(),
            )
        })
    }

    fn transmits(&self, path: &Path) -> SandboxResult<&'a Transmits> {
        self.transmits.ok_or_else(|| {
            SandboxError::AsyncRequired(format!(
                "{path} is a stream or future, which crosses only in an async call (callAsync(), or the Promise \
                 instance.exports gives), not in a synchronous call or inside a future's value"
            ))
        })
    }
}

fn wrong_type(cx: &Cx, path: &Path, expected: &str, value: RawValue) -> SandboxError {
    SandboxError::InvalidArgType(format!(
        "{path} must be {expected}. Received {}",
        describe(cx.env, value)
    ))
}

fn out_of_range(path: &Path, expected: &str, received: String) -> SandboxError {
    SandboxError::OutOfRange(format!(
        "{path} is out of range. It must be {expected}. Received {received}"
    ))
}

fn internal(status: sys::napi_status) -> SandboxError {
    SandboxError::Internal(format!("a Node-API call failed with status {status}"))
}

pub fn check_status(status: sys::napi_status) -> SandboxResult<()> {
    check(status)
}

/// The bytes of a `Uint8Array` (or `Buffer`), borrowed until JS runs again.
pub fn uint8_array_bytes<'v>(env: sys::napi_env, value: RawValue) -> Option<&'v [u8]> {
    let mut is_typed_array = false;
    // SAFETY: `value` belongs to `env`.
    unsafe { sys::napi_is_typedarray(env, value, &mut is_typed_array) };
    if !is_typed_array {
        return None;
    }
    typed_array_bytes(env, value, sys::TypedarrayType::uint8_array)
}

fn check(status: sys::napi_status) -> SandboxResult<()> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(internal(status))
    }
}

/// Describes a value for a message without running any of its code.
pub fn describe(env: sys::napi_env, value: RawValue) -> String {
    crate::js::values::describe_raw(&napi::Env::from(env), value)
}

pub fn type_of(env: sys::napi_env, value: RawValue) -> sys::napi_valuetype {
    let mut kind = 0;
    // SAFETY: `value` belongs to `env`, on its thread.
    unsafe { sys::napi_typeof(env, value, &mut kind) };
    kind
}

/// `object[key]`: a getter that throws is reported as a value that does not fit.
pub fn get(env: sys::napi_env, object: RawValue, key: &str) -> SandboxResult<RawValue> {
    let mut name = ptr::null_mut();
    let mut value = ptr::null_mut();
    // SAFETY: `object` belongs to `env`; the key is created in it.
    let status = unsafe {
        match sys::napi_create_string_utf8(env, key.as_ptr().cast(), key.len() as isize, &mut name) {
            sys::Status::napi_ok => sys::napi_get_property(env, object, name, &mut value),
            failed => failed,
        }
    };
    if status == sys::Status::napi_ok {
        return Ok(value);
    }
    let mut exception = ptr::null_mut();
    // SAFETY: clears what the throwing getter left pending.
    unsafe { sys::napi_get_and_clear_last_exception(env, &mut exception) };
    Err(SandboxError::InvalidArgValue(format!(
        "reading the property {key:?} threw"
    )))
}

pub fn set(env: sys::napi_env, object: RawValue, key: &str, value: RawValue) -> SandboxResult<()> {
    let name = string(env, key)?;
    // SAFETY: all values belong to `env`.
    check(unsafe { sys::napi_set_property(env, object, name, value) })
}

pub fn string(env: sys::napi_env, text: &str) -> SandboxResult<RawValue> {
    let mut value = ptr::null_mut();
    // SAFETY: creates a string in `env`.
    check(unsafe { sys::napi_create_string_utf8(env, text.as_ptr().cast(), text.len() as isize, &mut value) })?;
    Ok(value)
}

pub fn undefined(env: sys::napi_env) -> RawValue {
    let mut value = ptr::null_mut();
    // SAFETY: reads a singleton of `env`.
    unsafe { sys::napi_get_undefined(env, &mut value) };
    value
}

fn object(env: sys::napi_env) -> SandboxResult<RawValue> {
    let mut value = ptr::null_mut();
    // SAFETY: creates an object in `env`.
    check(unsafe { sys::napi_create_object(env, &mut value) })?;
    Ok(value)
}

fn get_number(env: sys::napi_env, value: RawValue) -> Option<f64> {
    let mut number = 0.0;
    // SAFETY: `value` belongs to `env`; a non-number fails without side effects.
    (unsafe { sys::napi_get_value_double(env, value, &mut number) } == sys::Status::napi_ok).then_some(number)
}

/// A JS string's contents (lone surrogates become U+FFFD, as `TextEncoder` does).
pub fn get_string(env: sys::napi_env, value: RawValue) -> Option<String> {
    if type_of(env, value) != sys::ValueType::napi_string {
        return None;
    }
    let mut length = 0;
    // SAFETY: a string of `env`: first its UTF-8 length, then its bytes.
    unsafe { sys::napi_get_value_string_utf8(env, value, ptr::null_mut(), 0, &mut length) };
    let mut bytes = vec![0u8; length + 1];
    let mut written = 0;
    // SAFETY: `bytes` has room for the string and its terminator.
    unsafe { sys::napi_get_value_string_utf8(env, value, bytes.as_mut_ptr().cast(), bytes.len(), &mut written) };
    bytes.truncate(written);
    String::from_utf8(bytes).ok()
}

fn is_array(env: sys::napi_env, value: RawValue) -> bool {
    let mut result = false;
    // SAFETY: `value` belongs to `env`.
    unsafe { sys::napi_is_array(env, value, &mut result) };
    result
}

fn array_items(env: sys::napi_env, value: RawValue) -> SandboxResult<Vec<RawValue>> {
    let mut length = 0;
    // SAFETY: checked to be an array of `env`.
    check(unsafe { sys::napi_get_array_length(env, value, &mut length) })?;
    (0..length)
        .map(|index| {
            let mut item = ptr::null_mut();
            // SAFETY: as above.
            check(unsafe { sys::napi_get_element(env, value, index, &mut item) })?;
            Ok(item)
        })
        .collect()
}

fn array(env: sys::napi_env, items: Vec<RawValue>) -> SandboxResult<RawValue> {
    let mut value = ptr::null_mut();
    // SAFETY: creates an array in `env` and fills it with values of `env`.
    check(unsafe { sys::napi_create_array_with_length(env, items.len(), &mut value) })?;
    for (index, item) in items.into_iter().enumerate() {
        // SAFETY: as above.
        check(unsafe { sys::napi_set_element(env, value, index as u32, item) })?;
    }
    Ok(value)
}

/// The typed array kind jco uses for a list of this element type, with its element size.
fn typed_array_kind(element: &Type) -> Option<(sys::napi_typedarray_type, usize, &'static str)> {
    Some(match element {
        Type::U8 => (sys::TypedarrayType::uint8_array, 1, "Uint8Array"),
        Type::S8 => (sys::TypedarrayType::int8_array, 1, "Int8Array"),
        Type::U16 => (sys::TypedarrayType::uint16_array, 2, "Uint16Array"),
        Type::S16 => (sys::TypedarrayType::int16_array, 2, "Int16Array"),
        Type::U32 => (sys::TypedarrayType::uint32_array, 4, "Uint32Array"),
        Type::S32 => (sys::TypedarrayType::int32_array, 4, "Int32Array"),
        Type::U64 => (sys::TypedarrayType::biguint64_array, 8, "BigUint64Array"),
        Type::S64 => (sys::TypedarrayType::bigint64_array, 8, "BigInt64Array"),
        Type::Float32 => (sys::TypedarrayType::float32_array, 4, "Float32Array"),
        Type::Float64 => (sys::TypedarrayType::float64_array, 8, "Float64Array"),
        _ => return None,
    })
}

/// The bytes of a typed array of `kind` (or, for `Uint8Array`, an `ArrayBuffer`), borrowed
/// until JS runs again.
fn typed_array_bytes<'v>(env: sys::napi_env, value: RawValue, kind: sys::napi_typedarray_type) -> Option<&'v [u8]> {
    let mut is_typed_array = false;
    // SAFETY: `value` belongs to `env`.
    unsafe { sys::napi_is_typedarray(env, value, &mut is_typed_array) };
    if is_typed_array {
        let (mut actual, mut length, mut data) = (0, 0usize, ptr::null_mut());
        // SAFETY: checked to be a typed array.
        unsafe {
            sys::napi_get_typedarray_info(
                env,
                value,
                &mut actual,
                &mut length,
                &mut data,
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        if actual != kind {
            return None;
        }
        let size = typed_array_element_size(kind);
        if length == 0 || data.is_null() {
            return Some(&[]);
        }
        // SAFETY: the typed array's live bytes, read before JS runs again.
        return Some(unsafe { std::slice::from_raw_parts(data.cast::<u8>(), length * size) });
    }
    if kind == sys::TypedarrayType::uint8_array {
        return crate::js::values::uint8_bytes(&napi::Env::from(env), value);
    }
    None
}

fn typed_array_element_size(kind: sys::napi_typedarray_type) -> usize {
    match kind {
        sys::TypedarrayType::int8_array | sys::TypedarrayType::uint8_array => 1,
        sys::TypedarrayType::int16_array | sys::TypedarrayType::uint16_array => 2,
        sys::TypedarrayType::int32_array | sys::TypedarrayType::uint32_array | sys::TypedarrayType::float32_array => 4,
        _ => 8,
    }
}

/// Integer bounds of the WIT integer types that JS numbers carry.
fn integer_bounds(ty: &Type) -> Option<(f64, f64, &'static str)> {
    Some(match ty {
        Type::U8 => (0.0, 255.0, "u8"),
        Type::S8 => (-128.0, 127.0, "s8"),
        Type::U16 => (0.0, 65_535.0, "u16"),
        Type::S16 => (-32_768.0, 32_767.0, "s16"),
        Type::U32 => (0.0, 4_294_967_295.0, "u32"),
        Type::S32 => (-2_147_483_648.0, 2_147_483_647.0, "s32"),
        _ => return None,
    })
}

/// Lowers a JS value to a component value of type `ty`.
pub fn lower(cx: &mut Cx, value: RawValue, ty: &Type, path: &Path) -> SandboxResult<Value> {
    let env = cx.env;
    if let Some((min, max, name)) = integer_bounds(ty) {
        let expected = format!("an integer from {min} to {max} ({name})");
        let Some(number) = get_number(env, value) else {
            return Err(wrong_type(cx, path, &format!("of type number ({expected})"), value));
        };
        if number.fract() != 0.0 || !(min..=max).contains(&number) {
            return Err(out_of_range(path, &expected, format_number(number)));
        }
        return Ok(match ty {
            Type::U8 => Value::U8(number as u8),
            Type::S8 => Value::S8(number as i8),
            Type::U16 => Value::U16(number as u16),
            Type::S16 => Value::S16(number as i16),
            Type::U32 => Value::U32(number as u32),
            _ => Value::S32(number as i32),
        });
    }
    match ty {
        Type::Bool => {
            let mut result = false;
            // SAFETY: `value` belongs to `env`; a non-boolean fails.
            if unsafe { sys::napi_get_value_bool(env, value, &mut result) } != sys::Status::napi_ok {
                return Err(wrong_type(cx, path, "of type boolean (bool)", value));
            }
            Ok(Value::Bool(result))
        }
        Type::Float32 | Type::Float64 => {
            let Some(number) = get_number(env, value) else {
                let name = if matches!(ty, Type::Float32) { "f32" } else { "f64" };
                return Err(wrong_type(cx, path, &format!("of type number ({name})"), value));
            };
            Ok(if matches!(ty, Type::Float32) {
                Value::Float32(number as f32)
            } else {
                Value::Float64(number)
            })
        }
        Type::S64 | Type::U64 => lower_64(cx, value, ty, path),
        Type::Char => {
            let text = get_string(env, value)
                .ok_or_else(|| wrong_type(cx, path, "a string of one character (char)", value))?;
            let mut chars = text.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Ok(Value::Char(c)),
                _ => Err(SandboxError::InvalidArgValue(format!(
                    "{path} must be a string of exactly one Unicode code point (char). Received {}",
                    describe(env, value)
                ))),
            }
        }
        Type::String => get_string(env, value)
            .map(Value::String)
            .ok_or_else(|| wrong_type(cx, path, "of type string", value)),
        Type::List(list) => lower_list(cx, value, &list.ty(), path),
        Type::Record(record) => {
            if type_of(env, value) != sys::ValueType::napi_object {
                return Err(wrong_type(cx, path, "an object (a WIT record)", value));
            }
            let mut fields = Vec::with_capacity(record.fields().len());
            for field in record.fields() {
                let key = js_name(field.name);
                let item = get(env, value, &key)?;
                let missing = matches!(type_of(env, item), sys::ValueType::napi_undefined);
                if missing && !matches!(field.ty, Type::Option(_)) {
                    return Err(SandboxError::InvalidArgType(format!(
                        "{path} is missing the record field \"{key}\""
                    )));
                }
                let lowered = lower(cx, item, &field.ty, &Path::Field(path, &key))?;
                fields.push((field.name.to_owned(), lowered));
            }
            Ok(Value::Record(fields))
        }
        Type::Tuple(tuple) => {
            let count = tuple.types().len();
            if !is_array(env, value) {
                return Err(wrong_type(
                    cx,
                    path,
                    &format!("an array of {count} elements (a WIT tuple)"),
                    value,
                ));
            }
            let items = array_items(env, value)?;
            if items.len() != count {
                return Err(SandboxError::InvalidArgValue(format!(
                    "{path} must be an array of {count} elements (a WIT tuple). Received {} elements",
                    items.len()
                )));
            }
            let mut values = Vec::with_capacity(count);
            for (index, (item, ty)) in items.into_iter().zip(tuple.types()).enumerate() {
                values.push(lower(cx, item, &ty, &Path::Index(path, index))?);
            }
            Ok(Value::Tuple(values))
        }
        Type::Variant(variant) => {
            let (tag, payload) = tagged(cx, value, path, "a WIT variant")?;
            let case = variant.cases().find(|case| case.name == tag).ok_or_else(|| {
                let cases: Vec<String> = variant.cases().map(|case| format!("'{}'", case.name)).collect();
                SandboxError::InvalidArgValue(format!(
                    "{path} has the unknown variant tag '{tag}': the cases are {}",
                    cases.join(", ")
                ))
            })?;
            let payload = match &case.ty {
                Some(ty) => Some(Box::new(lower(cx, payload, ty, &Path::Field(path, "val"))?)),
                None => None,
            };
            Ok(Value::Variant(tag, payload))
        }
        Type::Enum(enumeration) => {
            let name =
                get_string(env, value).ok_or_else(|| wrong_type(cx, path, "a string (a WIT enum case)", value))?;
            if enumeration.names().any(|case| case == name) {
                Ok(Value::Enum(name))
            } else {
                let cases: Vec<String> = enumeration.names().map(|case| format!("'{case}'")).collect();
                Err(SandboxError::InvalidArgValue(format!(
                    "{path} is the unknown enum case '{name}': the cases are {}",
                    cases.join(", ")
                )))
            }
        }
        Type::Flags(flags) => {
            if matches!(
                type_of(env, value),
                sys::ValueType::napi_undefined | sys::ValueType::napi_null
            ) {
                return Ok(Value::Flags(Vec::new()));
            }
            if type_of(env, value) != sys::ValueType::napi_object {
                return Err(wrong_type(cx, path, "an object of booleans (WIT flags)", value));
            }
            let mut set = Vec::new();
            for flag in flags.names() {
                let item = get(env, value, &js_name(flag))?;
                let mut truthy = false;
                // SAFETY: coerces a value of `env` to a boolean (no user code runs).
                let mut coerced = ptr::null_mut();
                unsafe {
                    sys::napi_coerce_to_bool(env, item, &mut coerced);
                    sys::napi_get_value_bool(env, coerced, &mut truthy);
                }
                if truthy {
                    set.push(flag.to_owned());
                }
            }
            Ok(Value::Flags(set))
        }
        Type::Option(option) => {
            let inner = option.ty();
            if matches!(inner, Type::Option(_)) {
                // jco writes an option of an option as `{ tag: 'none' }` or `{ tag: 'some', val }`.
                let (tag, payload) = tagged(
                    cx,
                    value,
                    path,
                    "an object { tag: 'none' | 'some', val } (a nested WIT option)",
                )?;
                return match tag.as_str() {
                    "none" => Ok(Value::Option(None)),
                    "some" => Ok(Value::Option(Some(Box::new(lower(
                        cx,
                        payload,
                        &inner,
                        &Path::Field(path, "val"),
                    )?)))),
                    other => Err(SandboxError::InvalidArgValue(format!(
                        "{path} has the tag '{other}': a nested option's tag is 'none' or 'some'"
                    ))),
                };
            }
            match type_of(env, value) {
                sys::ValueType::napi_undefined | sys::ValueType::napi_null => Ok(Value::Option(None)),
                _ => Ok(Value::Option(Some(Box::new(lower(cx, value, &inner, path)?)))),
            }
        }
        Type::Result(result) => {
            let (tag, payload) = tagged(cx, value, path, "an object { tag: 'ok' | 'err', val } (a WIT result)")?;
            let (ty, ok) = match tag.as_str() {
                "ok" => (result.ok(), true),
                "err" => (result.err(), false),
                other => {
                    return Err(SandboxError::InvalidArgValue(format!(
                        "{path} has the tag '{other}': a result's tag is 'ok' or 'err'"
                    )));
                }
            };
            let payload = match ty {
                Some(ty) => Some(Box::new(lower(cx, payload, &ty, &Path::Field(path, "val"))?)),
                None => None,
            };
            Ok(Value::Result(if ok { Ok(payload) } else { Err(payload) }))
        }
        Type::Own(resource) | Type::Borrow(resource) => {
            let owned = matches!(ty, Type::Own(_));
            let resources = cx.resources;
            resources.lower(cx, value, resource, owned, path)
        }
        Type::Stream(stream) => {
            if !matches!(stream.ty(), Some(Type::U8)) {
                return Err(SandboxError::Unsupported(format!(
                    "{path} has the WIT type {}: only stream<u8> crosses to JavaScript",
                    crate::component::wit_type(ty)
                )));
            }
            let transmits = cx.transmits(path)?;
            transmits.lower_stream(cx, value, path)
        }
        Type::Future(future) => {
            let Some(payload) = future.ty() else {
                return Err(SandboxError::Unsupported(format!(
                    "{path} is a future without a value type, which cannot cross to JavaScript yet"
                )));
            };
            let transmits = cx.transmits(path)?;
            transmits.lower_future(cx, value, payload)
        }
        Type::Map(_) | Type::FixedLengthList(_) | Type::ErrorContext => Err(SandboxError::Unsupported(format!(
            "{path} has the WIT type {}, which cannot cross to JavaScript yet",
            crate::component::wit_type(ty)
        ))),
        _ => unreachable!("integers are handled above"),
    }
}

/// `{ tag, val }` of a variant, result or nested option.
fn tagged(cx: &Cx, value: RawValue, path: &Path, expected: &str) -> SandboxResult<(String, RawValue)> {
    if type_of(cx.env, value) != sys::ValueType::napi_object {
        return Err(wrong_type(cx, path, expected, value));
    }
    let tag = get(cx.env, value, "tag")?;
    let tag = get_string(cx.env, tag)
        .ok_or_else(|| SandboxError::InvalidArgType(format!("{path} must have a string `tag` ({expected})")))?;
    Ok((tag, get(cx.env, value, "val")?))
}

fn lower_64(cx: &Cx, value: RawValue, ty: &Type, path: &Path) -> SandboxResult<Value> {
    let env = cx.env;
    let signed = matches!(ty, Type::S64);
    let expected = if signed {
        "a bigint from -(2n ** 63n) to 2n ** 63n - 1n (s64)"
    } else {
        "a bigint from 0n to 2n ** 64n - 1n (u64)"
    };
    if let Some(number) = get_number(env, value) {
        // A safe integer number is taken as the bigint it equals.
        let safe = number.fract() == 0.0 && number.abs() <= 9_007_199_254_740_991.0;
        if !safe || (!signed && number < 0.0) {
            return Err(out_of_range(path, expected, format_number(number)));
        }
        return Ok(if signed {
            Value::S64(number as i64)
        } else {
            Value::U64(number as u64)
        });
    }
    let mut lossless = false;
    if signed {
        let mut result = 0i64;
        // SAFETY: `value` belongs to `env`; a non-bigint fails.
        if unsafe { sys::napi_get_value_bigint_int64(env, value, &mut result, &mut lossless) } != sys::Status::napi_ok {
            return Err(wrong_type(cx, path, &format!("of type bigint ({expected})"), value));
        }
        if !lossless {
            return Err(out_of_range(path, expected, "a bigint outside it".to_owned()));
        }
        Ok(Value::S64(result))
    } else {
        let mut result = 0u64;
        // SAFETY: as above.
        if unsafe { sys::napi_get_value_bigint_uint64(env, value, &mut result, &mut lossless) } != sys::Status::napi_ok
        {
            return Err(wrong_type(cx, path, &format!("of type bigint ({expected})"), value));
        }
        if !lossless {
            return Err(out_of_range(path, expected, "a bigint outside it".to_owned()));
        }
        Ok(Value::U64(result))
    }
}

fn lower_list(cx: &mut Cx, value: RawValue, element: &Type, path: &Path) -> SandboxResult<Value> {
    let env = cx.env;
    if let Some((kind, _, _)) = typed_array_kind(element)
        && let Some(numeric) = Numeric::of(element)
        && let Some(bytes) = typed_array_bytes(env, value, kind)
    {
        let bytes = if cx.borrow_bytes {
            // SAFETY: `borrow_bytes` is set only for a synchronous call on this thread, which
            // lowers the value before JS runs again.
            Bytes::Borrowed(unsafe { BorrowedBytes::new(bytes) })
        } else {
            Bytes::Owned(bytes.to_vec())
        };
        return Ok(Value::Numbers(numeric, bytes));
    }
    if !is_array(env, value) {
        let expected = match typed_array_kind(element) {
            Some((_, _, name)) => format!("a {name} or an array (a WIT list)"),
            None => "an array (a WIT list)".to_owned(),
        };
        return Err(wrong_type(cx, path, &expected, value));
    }
    let items = array_items(env, value)?;
    if let Some(numeric) = Numeric::of(element) {
        // An array of numbers for a numeric list: checked one by one, kept as bytes.
        let mut bytes = Vec::with_capacity(items.len() * numeric.size());
        for (index, item) in items.into_iter().enumerate() {
            let lowered = lower(cx, item, element, &Path::Index(path, index))?;
            numeric_bytes(&lowered, &mut bytes);
        }
        return Ok(Value::Numbers(numeric, Bytes::Owned(bytes)));
    }
    let mut values = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        values.push(lower(cx, item, element, &Path::Index(path, index))?);
    }
    Ok(Value::List(values))
}

/// Appends the little-endian bytes of the number `value` to `bytes`.
fn numeric_bytes(value: &Value, bytes: &mut Vec<u8>) {
    match value {
        Value::U8(n) => bytes.push(*n),
        Value::S8(n) => bytes.push(*n as u8),
        Value::U16(n) => bytes.extend_from_slice(&n.to_le_bytes()),
        Value::S16(n) => bytes.extend_from_slice(&n.to_le_bytes()),
        Value::U32(n) => bytes.extend_from_slice(&n.to_le_bytes()),
        Value::S32(n) => bytes.extend_from_slice(&n.to_le_bytes()),
        Value::U64(n) => bytes.extend_from_slice(&n.to_le_bytes()),
        Value::S64(n) => bytes.extend_from_slice(&n.to_le_bytes()),
        Value::Float32(n) => bytes.extend_from_slice(&n.to_le_bytes()),
        Value::Float64(n) => bytes.extend_from_slice(&n.to_le_bytes()),
        _ => {}
    }
}

/// Lifts a component value of type `ty` to JS.
pub fn lift(cx: &mut Cx, value: Value, ty: &Type, path: &Path) -> SandboxResult<RawValue> {
    let env = cx.env;
    let mut result = ptr::null_mut();
    // SAFETY: every value below is created in `env`, on its thread.
    let status = unsafe {
        match &value {
            Value::Bool(b) => sys::napi_get_boolean(env, *b, &mut result),
            Value::S8(n) => sys::napi_create_int32(env, i32::from(*n), &mut result),
            Value::U8(n) => sys::napi_create_uint32(env, u32::from(*n), &mut result),
            Value::S16(n) => sys::napi_create_int32(env, i32::from(*n), &mut result),
            Value::U16(n) => sys::napi_create_uint32(env, u32::from(*n), &mut result),
            Value::S32(n) => sys::napi_create_int32(env, *n, &mut result),
            Value::U32(n) => sys::napi_create_uint32(env, *n, &mut result),
            Value::S64(n) => sys::napi_create_bigint_int64(env, *n, &mut result),
            Value::U64(n) => sys::napi_create_bigint_uint64(env, *n, &mut result),
            Value::Float32(n) => sys::napi_create_double(env, f64::from(*n), &mut result),
            Value::Float64(n) => sys::napi_create_double(env, *n, &mut result),
            Value::Char(c) => {
                let mut utf8 = [0u8; 4];
                let text = c.encode_utf8(&mut utf8);
                sys::napi_create_string_utf8(env, text.as_ptr().cast(), text.len() as isize, &mut result)
            }
            Value::String(text) => {
                sys::napi_create_string_utf8(env, text.as_ptr().cast(), text.len() as isize, &mut result)
            }
            _ => sys::Status::napi_ok,
        }
    };
    check(status)?;
    if !result.is_null() {
        return Ok(result);
    }
    match (value, ty) {
        (Value::Numbers(_, bytes), Type::List(list)) => {
            let element = list.ty();
            let Some((kind, size, _)) = typed_array_kind(&element) else {
                return Err(SandboxError::Internal(format!(
                    "{path}: numbers for a list of {element:?}"
                )));
            };
            typed_array(env, kind, size, bytes)
        }
        (Value::List(items), Type::List(list)) => {
            let element = list.ty();
            let mut lifted = Vec::with_capacity(items.len());
            for (index, item) in items.into_iter().enumerate() {
                lifted.push(lift(cx, item, &element, &Path::Index(path, index))?);
            }
            array(env, lifted)
        }
        (Value::Record(fields), Type::Record(record)) => {
            let out = object(env)?;
            for ((name, item), field) in fields.into_iter().zip(record.fields()) {
                let key = js_name(&name);
                let lifted = lift(cx, item, &field.ty, &Path::Field(path, &key))?;
                set(env, out, &key, lifted)?;
            }
            Ok(out)
        }
        (Value::Tuple(items), Type::Tuple(tuple)) => {
            let mut lifted = Vec::with_capacity(items.len());
            for (index, (item, ty)) in items.into_iter().zip(tuple.types()).enumerate() {
                lifted.push(lift(cx, item, &ty, &Path::Index(path, index))?);
            }
            array(env, lifted)
        }
        (Value::Variant(tag, payload), Type::Variant(variant)) => {
            let case_ty = variant.cases().find(|case| case.name == tag).and_then(|case| case.ty);
            let payload = match (payload, case_ty) {
                (Some(payload), Some(ty)) => Some(lift(cx, *payload, &ty, &Path::Field(path, "val"))?),
                _ => None,
            };
            tagged_object(env, &tag, payload)
        }
        (Value::Enum(name), _) => string(env, &name),
        (Value::Flags(set_flags), Type::Flags(flags)) => {
            let out = object(env)?;
            for flag in flags.names() {
                let mut boolean = ptr::null_mut();
                // SAFETY: creates a boolean in `env`.
                unsafe { sys::napi_get_boolean(env, set_flags.iter().any(|set| set == flag), &mut boolean) };
                set(env, out, &js_name(flag), boolean)?;
            }
            Ok(out)
        }
        (Value::Option(payload), Type::Option(option)) => {
            let inner = option.ty();
            let nested = matches!(inner, Type::Option(_));
            match payload {
                None if nested => tagged_object(env, "none", None),
                None => Ok(undefined(env)),
                Some(payload) => {
                    let lifted = lift(cx, *payload, &inner, path)?;
                    if nested {
                        tagged_object(env, "some", Some(lifted))
                    } else {
                        Ok(lifted)
                    }
                }
            }
        }
        (Value::Result(outcome), Type::Result(result)) => {
            let (tag, payload, ty) = match outcome {
                Ok(payload) => ("ok", payload, result.ok()),
                Err(payload) => ("err", payload, result.err()),
            };
            let lifted = match (payload, ty) {
                (Some(payload), Some(ty)) => lift(cx, *payload, &ty, &Path::Field(path, "val"))?,
                _ => undefined(env),
            };
            tagged_object(env, tag, Some(lifted))
        }
        (Value::Resource(resource), Type::Own(_) | Type::Borrow(_)) => {
            let owned = matches!(ty, Type::Own(_));
            let resources = cx.resources;
            resources.lift(cx, resource, owned)
        }
        (Value::Stream(Transmit::Js(id)), Type::Stream(_)) => cx.transmits(path)?.lift_stream(id),
        (Value::Future(Transmit::Js(id)), Type::Future(future)) => {
            let payload = future
                .ty()
                .ok_or_else(|| SandboxError::Unsupported(format!("{path} is a future without a value type")))?;
            cx.transmits(path)?.lift_future(cx, id, payload)
        }
        (value, ty) => Err(SandboxError::Unsupported(format!(
            "{path} is a {} ({value:?}), which cannot cross to JavaScript yet",
            crate::component::wit_type(ty)
        ))),
    }
}

fn tagged_object(env: sys::napi_env, tag: &str, payload: Option<RawValue>) -> SandboxResult<RawValue> {
    let out = object(env)?;
    set(env, out, "tag", string(env, tag)?)?;
    if let Some(payload) = payload {
        set(env, out, "val", payload)?;
    }
    Ok(out)
}

/// A new typed array of `kind` over `bytes` (little-endian elements of `size` bytes): the buffer a
/// `JsListSink` placed them in, else a copy.
fn typed_array(
    env: sys::napi_env,
    kind: sys::napi_typedarray_type,
    size: usize,
    bytes: Bytes,
) -> SandboxResult<RawValue> {
    let length = bytes.len() / size;
    let buffer = match bytes {
        // The sink's token is the ArrayBuffer it made in this env, during this call.
        Bytes::Placed { token, .. } => token as RawValue,
        other => new_arraybuffer(env, other.as_slice())?,
    };
    let mut array = ptr::null_mut();
    // SAFETY: a view of the whole buffer.
    check(unsafe { sys::napi_create_typedarray(env, kind, length, buffer, 0, &mut array) })?;
    Ok(array)
}

/// A new `ArrayBuffer` holding a copy of `bytes`.
fn new_arraybuffer(env: sys::napi_env, bytes: &[u8]) -> SandboxResult<RawValue> {
    let mut data = ptr::null_mut();
    let mut buffer = ptr::null_mut();
    // SAFETY: creates an ArrayBuffer of the right size in `env`, then fills it.
    check(unsafe { sys::napi_create_arraybuffer(env, bytes.len(), &mut data, &mut buffer) })?;
    if !bytes.is_empty() {
        // SAFETY: `data` points at `bytes.len()` fresh bytes.
        unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), data.cast::<u8>(), bytes.len()) };
    }
    Ok(buffer)
}

/// Places the numeric lists a synchronous call lifts straight into new `ArrayBuffer`s: guest
/// memory to JS memory in one copy. Only for calls on the JS thread's own stack (not a fiber's).
pub struct JsListSink {
    pub env: sys::napi_env,
}

impl crate::component::ListSink for JsListSink {
    fn place(&self, bytes: &[u8]) -> Option<usize> {
        new_arraybuffer(self.env, bytes).ok().map(|buffer| buffer as usize)
    }
}

/// Converts a host resource into the `ResourceAny` a `Val` carries.
pub fn host_resource_any(
    store: &mut wasmtime::StoreContextMut<'_, ComponentState>,
    rep: u32,
    type_id: u32,
    owned: bool,
) -> SandboxResult<ResourceAny> {
    let dynamic = if owned {
        ResourceDynamic::new_own(rep, type_id)
    } else {
        ResourceDynamic::new_borrow(rep, type_id)
    };
    dynamic
        .try_into_resource_any(&mut *store)
        .map_err(|error| SandboxError::Internal(format!("{error:#}")))
}
