//! The `wasi` option of `new Sandbox()`: validated key by key into the core's `WasiOptions`
//! before anything runs, and the result of `run()` / `takeOutput()` as a JS object.

use std::path::PathBuf;
use std::ptr;
use std::sync::Arc;

use napi::bindgen_prelude::{FromNapiValue, Unknown};
use napi::{Env, ValueType, sys};
use napi_derive::napi;

use crate::error::{SandboxError, SandboxResult};
use crate::js::output::OutputCallbacks;
use crate::js::sandbox::own_keys;
use crate::js::values::{RawValue, describe_raw, integer_in_range, type_of, uint8_bytes};
use crate::wasi::{DEFAULT_MAX_OUTPUT_BYTES, NetworkPolicy, NetworkRule, OutputMode, Preopen, WasiOptions};

// Like `SandboxOptions`, these structs only declare the TypeScript interfaces: the values arrive
// raw and are checked by `parse_wasi_options`.
/// The `wasi` option: what a WASI guest is granted. Nothing is granted that is not listed here:
/// no preopen means no file system. The clocks and random numbers are the host's.
#[napi(object, js_name = "WasiOptions")]
#[allow(dead_code)]
pub struct JsWasiOptions {
    /// `argv`, `argv[0]` included (as `node:wasi`). Default: none.
    pub args: Option<Vec<String>>,
    /// The environment, as `{ NAME: 'value' }`. Default: empty (nothing of the host's).
    pub env: Option<std::collections::HashMap<String, String>>,
    /// Directories the guest can reach: `{ [guestPath]: hostPath }`, or
    /// `{ [guestPath]: { path: hostPath, readonly: true } }` for a directory the guest may read
    /// but never change. Host paths must be absolute paths to existing directories. Paths that
    /// lead out of a preopen (`..`, absolute paths, symlinks, hard links, renames) are refused
    /// with a WASI errno.
    #[napi(ts_type = "Record<string, string | WasiPreopen>")]
    pub preopens: Option<std::collections::HashMap<String, String>>,
    /// The guest's stdin: a string (as UTF-8) or bytes. Default: empty.
    #[napi(ts_type = "string | Uint8Array")]
    pub stdin: Option<String>,
    /// `'pipe'` (default) captures stdout for `run()` to return; `'inherit'` writes it to this
    /// process's stdout; `'ignore'` discards it. A function is called on the JS thread with each
    /// chunk the guest writes, as a `Buffer`, in order (stdout and stderr chunks interleaved as
    /// written): during `runAsync()`/`callAsync()` while the guest runs (a guest more than 1 MiB
    /// ahead of its callbacks waits for them), after a synchronous call just before it returns
    /// (holding at most `maxOutputBytes` meanwhile). If the callback throws, the guest's later
    /// writes fail (`EPIPE`) and the call fails with `ERR_WASI_OUTPUT_CALLBACK`, the exception
    /// as `cause`.
    #[napi(ts_type = "'pipe' | 'inherit' | 'ignore' | ((chunk: Buffer) => void)")]
    pub stdout: Option<String>,
    /// As `stdout`, for stderr.
    #[napi(ts_type = "'pipe' | 'inherit' | 'ignore' | ((chunk: Buffer) => void)")]
    pub stderr: Option<String>,
    /// What the guest may reach through `wasi:sockets` (components; preview 1 has no way to open
    /// a socket). Default: nothing. `true`: the host's whole network. `{ allow: ['host:port'] }`:
    /// connect and bind only there, where `host` is an IP address (`[::1]` for IPv6), a name
    /// (allowing the addresses it resolves to on the host) or `*`, and `port` a number or `*`;
    /// the guest may look up only the names listed (or any, under a `*` host).
    #[napi(ts_type = "boolean | { allow: string[] }")]
    pub network: Option<bool>,
    /// Cap, in bytes, on what each captured stream holds (default 16 MiB, at most 2 GiB - 1).
    /// A write past it keeps what fits and fails in the guest (`ENOSPC`), and the result says
    /// `stdoutTruncated` / `stderrTruncated`.
    pub max_output_bytes: Option<f64>,
}

/// A preopened directory with its access mode.
#[napi(object)]
#[allow(dead_code)]
pub struct WasiPreopen {
    /// Absolute path of the host directory.
    pub path: String,
    /// `true`: the guest may read but never create, write, truncate, rename, delete or touch
    /// anything under it.
    pub readonly: Option<bool>,
}

/// What a WASI command did: its exit code and what it wrote to captured streams.
#[napi(object)]
#[allow(dead_code)]
pub struct WasiRunResult {
    /// 0 when `_start` returned; the code the guest gave `proc_exit` otherwise (any 32-bit
    /// unsigned value: 255 after an AssemblyScript abort).
    pub exit_code: u32,
    /// What the guest wrote to stdout (empty unless `stdout` is `'pipe'`).
    #[napi(ts_type = "Buffer")]
    pub stdout: String,
    /// What the guest wrote to stderr (empty unless `stderr` is `'pipe'`).
    #[napi(ts_type = "Buffer")]
    pub stderr: String,
    /// Whether stdout bytes were dropped at `maxOutputBytes`.
    pub stdout_truncated: bool,
    /// Whether stderr bytes were dropped at `maxOutputBytes`.
    pub stderr_truncated: bool,
}

/// What `takeOutput()` returns: the captured output since the last `run()` or `takeOutput()`.
#[napi(object)]
#[allow(dead_code)]
pub struct WasiOutput {
    #[napi(ts_type = "Buffer")]
    pub stdout: String,
    #[napi(ts_type = "Buffer")]
    pub stderr: String,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
}

const WASI_OPTION_NAMES: [&str; 8] = [
    "args",
    "env",
    "preopens",
    "stdin",
    "stdout",
    "stderr",
    "maxOutputBytes",
    "network",
];

/// Largest `maxOutputBytes`: the captured bytes become one `Buffer`.
const MAX_OUTPUT_BYTES_LIMIT: f64 = 2_147_483_647.0;

/// Reads and checks the `wasi` option (an object; `undefined` means no WASI).
pub fn parse_wasi_options(env: &Env, value: RawValue) -> SandboxResult<Option<(WasiOptions, OutputCallbacks)>> {
    match type_of(env, value) {
        ValueType::Undefined => return Ok(None),
        ValueType::Object if !is_array(env, value) => {}
        _ => return Err(wrong_type(env, "options.wasi", "of type object", value)),
    }
    for key in own_keys(env, value)? {
        if !WASI_OPTION_NAMES.contains(&key.as_str()) {
            return Err(SandboxError::InvalidArgType(format!(
                "Unknown option \"wasi.{key}\": the wasi options are {}",
                WASI_OPTION_NAMES.join(", ")
            )));
        }
    }
    let mut options = WasiOptions::default();
    if let Some(args) = defined(env, value, "args", "options.wasi")? {
        if !is_array(env, args) {
            return Err(wrong_type(env, "options.wasi.args", "an array of strings", args));
        }
        options.args = array_elements(env, args)?
            .into_iter()
            .enumerate()
            .map(|(index, arg)| string(env, arg, &format!("options.wasi.args[{index}]")))
            .collect::<SandboxResult<_>>()?;
    }
    if let Some(variables) = defined(env, value, "env", "options.wasi")? {
        if type_of(env, variables) != ValueType::Object || is_array(env, variables) {
            return Err(wrong_type(
                env,
                "options.wasi.env",
                "an object of strings ({ NAME: 'value' })",
                variables,
            ));
        }
        for key in own_keys(env, variables)? {
            let name = format!("options.wasi.env.{key}");
            let variable = property(env, variables, &key, "options.wasi.env")?;
            options.env.push((key, string(env, variable, &name)?));
        }
    }
    if let Some(preopens) = defined(env, value, "preopens", "options.wasi")? {
        if type_of(env, preopens) != ValueType::Object || is_array(env, preopens) {
            return Err(wrong_type(
                env,
                "options.wasi.preopens",
                "an object ({ [guestPath]: hostPath })",
                preopens,
            ));
        }
        for guest_path in own_keys(env, preopens)? {
            let entry = property(env, preopens, &guest_path, "options.wasi.preopens")?;
            options.preopens.push(preopen(env, guest_path, entry)?);
        }
    }
    if let Some(stdin) = defined(env, value, "stdin", "options.wasi")? {
        options.stdin = if type_of(env, stdin) == ValueType::String {
            string(env, stdin, "options.wasi.stdin")?.into_bytes()
        } else {
            uint8_bytes(env, stdin)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| wrong_type(env, "options.wasi.stdin", "a string or a Uint8Array", stdin))?
        };
    }
    let mut callbacks = OutputCallbacks::default();
    if let Some(mode) = defined(env, value, "stdout", "options.wasi")? {
        options.stdout = output_mode(env, mode, "options.wasi.stdout")?;
        callbacks.stdout = (options.stdout == OutputMode::Stream).then_some(mode);
    }
    if let Some(mode) = defined(env, value, "stderr", "options.wasi")? {
        options.stderr = output_mode(env, mode, "options.wasi.stderr")?;
        callbacks.stderr = (options.stderr == OutputMode::Stream).then_some(mode);
    }
    options.max_output_bytes = match defined(env, value, "maxOutputBytes", "options.wasi")? {
        None => DEFAULT_MAX_OUTPUT_BYTES,
        Some(bytes) => {
            // SAFETY: the value belongs to this env and call.
            let bytes = unsafe { Unknown::from_raw_unchecked(env.raw(), bytes) };
            integer_in_range(env, &bytes, "options.wasi.maxOutputBytes", 0.0, MAX_OUTPUT_BYTES_LIMIT)? as usize
        }
    };
    if let Some(network) = defined(env, value, "network", "options.wasi")? {
        options.network = Arc::new(network_policy(env, network)?);
    }
    options.validate()?;
    Ok(Some((options, callbacks)))
}

/// `network: true | false | { allow: ['host:port', ...] }`.
fn network_policy(env: &Env, value: RawValue) -> SandboxResult<NetworkPolicy> {
    const NAME: &str = "options.wasi.network";
    const EXPECTED: &str = "a boolean or { allow: ['host:port', ...] }";
    match type_of(env, value) {
        ValueType::Boolean => {
            // SAFETY: checked to be a boolean of this env.
            let enabled = unsafe { bool::from_napi_value(env.raw(), value) }
                .map_err(|error| SandboxError::Internal(error.to_string()))?;
            return Ok(if enabled {
                NetworkPolicy::Any
            } else {
                NetworkPolicy::Off
            });
        }
        ValueType::Object if !is_array(env, value) => {}
        _ => return Err(wrong_type(env, NAME, EXPECTED, value)),
    }
    for key in own_keys(env, value)? {
        if key != "allow" {
            return Err(SandboxError::InvalidArgType(format!(
                "Unknown property \"{key}\" in {NAME}: it is {EXPECTED}"
            )));
        }
    }
    let allow = property(env, value, "allow", NAME)?;
    if !is_array(env, allow) {
        return Err(wrong_type(
            env,
            &format!("{NAME}.allow"),
            "an array of 'host:port' strings",
            allow,
        ));
    }
    let rules = array_elements(env, allow)?
        .into_iter()
        .enumerate()
        .map(|(index, rule)| {
            let name = format!("{NAME}.allow[{index}]");
            let text = string(env, rule, &name)?;
            NetworkRule::parse(&text).map_err(|problem| {
                SandboxError::InvalidArgValue(format!(
                    "The property '{name}' is not a rule: {problem}. Received {text:?}"
                ))
            })
        })
        .collect::<SandboxResult<_>>()?;
    Ok(NetworkPolicy::Allow(rules))
}

fn preopen(env: &Env, guest_path: String, entry: RawValue) -> SandboxResult<Preopen> {
    let name = format!("options.wasi.preopens[{guest_path:?}]");
    let (host_path, readonly) = match type_of(env, entry) {
        ValueType::String => (string(env, entry, &name)?, false),
        ValueType::Object if !is_array(env, entry) => {
            for key in own_keys(env, entry)? {
                if key != "path" && key != "readonly" {
                    return Err(SandboxError::InvalidArgType(format!(
                        "Unknown property \"{key}\" in {name}: a preopen is a host path or {{ path, readonly }}"
                    )));
                }
            }
            let path = property(env, entry, "path", &name)?;
            let path = string(env, path, &format!("{name}.path"))?;
            let readonly = match defined(env, entry, "readonly", &name)? {
                None => false,
                Some(flag) if type_of(env, flag) == ValueType::Boolean => {
                    // SAFETY: checked to be a boolean of this env.
                    unsafe { bool::from_napi_value(env.raw(), flag) }
                        .map_err(|error| SandboxError::Internal(error.to_string()))?
                }
                Some(flag) => return Err(wrong_type(env, &format!("{name}.readonly"), "of type boolean", flag)),
            };
            (path, readonly)
        }
        _ => {
            return Err(wrong_type(
                env,
                &name,
                "a host path (string) or { path, readonly }",
                entry,
            ));
        }
    };
    Ok(Preopen {
        guest_path,
        host_path: PathBuf::from(host_path),
        readonly,
    })
}

fn output_mode(env: &Env, value: RawValue, name: &str) -> SandboxResult<OutputMode> {
    match type_of(env, value) {
        ValueType::Function => return Ok(OutputMode::Stream),
        ValueType::String => {}
        _ => {
            return Err(wrong_type(
                env,
                name,
                "one of 'pipe', 'inherit', 'ignore' or a function",
                value,
            ));
        }
    }
    match string(env, value, name)?.as_str() {
        "pipe" => Ok(OutputMode::Pipe),
        "inherit" => Ok(OutputMode::Inherit),
        "ignore" => Ok(OutputMode::Ignore),
        other => Err(SandboxError::InvalidArgValue(format!(
            "The property '{name}' must be one of 'pipe', 'inherit', 'ignore' or a function. Received {other:?}"
        ))),
    }
}

fn wrong_type(env: &Env, name: &str, expected: &str, value: RawValue) -> SandboxError {
    SandboxError::InvalidArgType(format!(
        "The \"{name}\" property must be {expected}. Received {}",
        describe_raw(env, value)
    ))
}

fn string(env: &Env, value: RawValue, name: &str) -> SandboxResult<String> {
    if type_of(env, value) != ValueType::String {
        return Err(wrong_type(env, name, "of type string", value));
    }
    // SAFETY: checked to be a string of this env.
    unsafe { String::from_napi_value(env.raw(), value) }.map_err(|error| SandboxError::Internal(error.to_string()))
}

fn is_array(env: &Env, value: RawValue) -> bool {
    let mut result = false;
    // SAFETY: `value` belongs to this env.
    unsafe { sys::napi_is_array(env.raw(), value, &mut result) };
    result
}

fn array_elements(env: &Env, array: RawValue) -> SandboxResult<Vec<RawValue>> {
    let mut length = 0;
    // SAFETY: checked to be an array of this env.
    unsafe { sys::napi_get_array_length(env.raw(), array, &mut length) };
    (0..length)
        .map(|index| {
            let mut element = ptr::null_mut();
            // SAFETY: `index < length`; a throwing getter gives a non-ok status.
            let status = unsafe { sys::napi_get_element(env.raw(), array, index, &mut element) };
            checked(env, status, element, &format!("options.wasi.args[{index}]"))
        })
        .collect()
}

/// `object[key]`; a throwing getter or proxy becomes a `TypeError` naming the property.
fn property(env: &Env, object: RawValue, key: &str, owner: &str) -> SandboxResult<RawValue> {
    crate::js::imports::get_property(env, object, key)
        .map_err(|_| SandboxError::InvalidArgType(format!("reading \"{owner}.{key}\" threw")))
}

/// `object[key]` unless it is `undefined`.
fn defined(env: &Env, object: RawValue, key: &str, owner: &str) -> SandboxResult<Option<RawValue>> {
    let value = property(env, object, key, owner)?;
    Ok((type_of(env, value) != ValueType::Undefined).then_some(value))
}

fn checked(env: &Env, status: sys::napi_status, value: RawValue, name: &str) -> SandboxResult<RawValue> {
    if status == sys::Status::napi_ok {
        return Ok(value);
    }
    let mut exception = ptr::null_mut();
    // SAFETY: clears what the failed read left pending.
    unsafe { sys::napi_get_and_clear_last_exception(env.raw(), &mut exception) };
    Err(SandboxError::InvalidArgType(format!("reading \"{name}\" threw")))
}

/// `{ exitCode?, stdout, stderr, stdoutTruncated, stderrTruncated }` as a JS object.
pub fn output_object(env: &Env, exit_code: Option<u32>, output: crate::wasi::Output) -> SandboxResult<RawValue> {
    let raw_env = env.raw();
    let failed = || SandboxError::Internal("could not build the result object".to_owned());
    let mut object = ptr::null_mut();
    // SAFETY: values created in the live env of this call.
    unsafe {
        if sys::napi_create_object(raw_env, &mut object) != sys::Status::napi_ok {
            return Err(failed());
        }
        if let Some(code) = exit_code {
            let mut value = ptr::null_mut();
            sys::napi_create_uint32(raw_env, code, &mut value);
            sys::napi_set_named_property(raw_env, object, c"exitCode".as_ptr(), value);
        }
        for (key, bytes) in [(c"stdout", output.stdout), (c"stderr", output.stderr)] {
            let buffer = buffer(env, bytes)?;
            sys::napi_set_named_property(raw_env, object, key.as_ptr(), buffer);
        }
        for (key, flag) in [
            (c"stdoutTruncated", output.stdout_truncated),
            (c"stderrTruncated", output.stderr_truncated),
        ] {
            let mut value = ptr::null_mut();
            sys::napi_get_boolean(raw_env, flag, &mut value);
            sys::napi_set_named_property(raw_env, object, key.as_ptr(), value);
        }
    }
    Ok(object)
}

/// A new `Buffer` holding `bytes` (a copy: the capture's memory is not kept).
fn buffer(env: &Env, bytes: Vec<u8>) -> SandboxResult<RawValue> {
    let mut data = ptr::null_mut();
    let mut value = ptr::null_mut();
    // SAFETY: Node-API allocates `bytes.len()` writable bytes at `data` for the new buffer.
    let status = unsafe { sys::napi_create_buffer(env.raw(), bytes.len(), &mut data, &mut value) };
    if status != sys::Status::napi_ok {
        return Err(SandboxError::Internal(format!(
            "could not allocate a Buffer of {} bytes for the guest's output",
            bytes.len()
        )));
    }
    if !bytes.is_empty() {
        // SAFETY: `data` has room for `bytes.len()` bytes and does not overlap `bytes`.
        unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), data.cast::<u8>(), bytes.len()) };
    }
    Ok(value)
}
