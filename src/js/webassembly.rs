//! The napi glue of the WebAssembly JS API namespace: raw Node-API functions over the core's
//! `SharedStore` (`src/webassembly`), called only by `lib/webassembly/*.js`, which does the JS
//! API's argument conversions and keeps one JS object per extern.
//!
//! Every function takes the namespace's External first. Values arrive already converted by the
//! JS side to their raw encoding (i32 and f32/f64 as numbers, i64 as a bigint, a reference as a
//! registry index or -1 for null) and leave the same way.

use std::cell::RefCell;
use std::ffi::{CStr, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;
use std::rc::Rc;
use std::time::Duration;

use napi::sys;
use wasmtime::{Func, FuncType, RefType, Val, ValRaw, ValType};

use crate::error::{SandboxError, SandboxResult};
use crate::js::gc_pressure::ExternalMemory;
use crate::js::imports::SendlessRef;
use crate::js::raw::VarArgs;
use crate::js::values::RawValue;
use crate::sandbox::{HostFunctionError, Limits};
use crate::webassembly::{
    CompiledModule, ExternKind, HostFailure, RawVal, SharedStore, raw_of, raw_of_ref, signature_codes, type_code,
    type_of_code,
};

type RawCallback = unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> RawValue;

/// What a raw function returns for `undefined`.
const VOID: RawValue = ptr::null_mut();

/// A namespace: its store, and what the glue keeps beside it.
pub struct Namespace {
    store: SharedStore,
    env: sys::napi_env,
    /// The JS side's hooks object (`{ error, exception, thrown }`), held weakly: the JS
    /// namespace keeps it.
    hooks: SendlessRef,
    /// The current ArrayBuffer of each memory JS has asked for, held weakly: each buffer keeps
    /// the namespace alive (its finalizer holds an `Rc`), so a strong reference here would be a
    /// cycle through a GC root and no namespace whose memory was viewed could ever be freed. The
    /// `Memory` object keeps its current buffer alive from JS.
    buffers: RefCell<Vec<MemoryBuffer>>,
    /// Functions the JS side calls, boxed so the Externs naming them stay valid.
    #[allow(clippy::vec_box)]
    callers: RefCell<Vec<Box<FuncCaller>>>,
    /// The registered exceptions, as external memory V8 is told of: each `WebAssembly.Exception`
    /// is a small JS object holding a guest exception V8 cannot see, and without the pressure a
    /// loop that throws would pile them up between collections.
    exception_memory: ExternalMemory,
}

/// The native memory one registered exception stands for, as told to V8 (its root, its object
/// in the store's GC heap, the registry's entry), measured at about 350 bytes and rounded up.
const EXCEPTION_EXTERNAL_BYTES: usize = 1024;

impl Namespace {
    /// Tells V8 how many exceptions the registry now holds.
    fn account_exceptions(&self) {
        self.exception_memory
            .set(self.store.live_exceptions() * EXCEPTION_EXTERNAL_BYTES);
    }
}

struct MemoryBuffer {
    memory: u32,
    length: usize,
    reference: SendlessRef,
}

/// What a function's caller External names: the function, and its signature when numbers only.
pub struct FuncCaller {
    namespace: *const Namespace,
    func: Func,
    params: Vec<ValType>,
    results: Vec<ValType>,
    numeric: bool,
}

/// A strong reference kept in an External: the namespace stays alive while JS holds it (and
/// while any memory buffer made from it lives).
type NamespaceHandle = Rc<Namespace>;

// ---- argument helpers -----------------------------------------------------------------------

fn internal(what: &str) -> SandboxError {
    SandboxError::Internal(format!("bad argument from the namespace's JS side: {what}"))
}

/// The value types of a string of `type_code` letters (a signature or a tag's payload).
fn value_types(codes: &str) -> SandboxResult<Vec<ValType>> {
    codes
        .chars()
        .map(|code| type_of_code(code).ok_or_else(|| internal("type code")))
        .collect()
}

unsafe fn get_f64(env: sys::napi_env, value: RawValue) -> SandboxResult<f64> {
    let mut number = 0.0;
    // SAFETY: a non-number gives a non-ok status.
    match unsafe { sys::napi_get_value_double(env, value, &mut number) } {
        sys::Status::napi_ok => Ok(number),
        _ => Err(internal("a number was expected")),
    }
}

unsafe fn get_i32(env: sys::napi_env, value: RawValue) -> SandboxResult<i32> {
    let mut number = 0;
    // SAFETY: a non-number gives a non-ok status.
    match unsafe { sys::napi_get_value_int32(env, value, &mut number) } {
        sys::Status::napi_ok => Ok(number),
        _ => Err(internal("a number was expected")),
    }
}

unsafe fn get_i64(env: sys::napi_env, value: RawValue) -> SandboxResult<i64> {
    let (mut number, mut lossless) = (0i64, false);
    // SAFETY: a non-bigint gives a non-ok status.
    match unsafe { sys::napi_get_value_bigint_int64(env, value, &mut number, &mut lossless) } {
        sys::Status::napi_ok => Ok(number),
        _ => Err(internal("a bigint was expected")),
    }
}

/// A reference index: -1 (or any negative number) is null.
unsafe fn get_ref(env: sys::napi_env, value: RawValue) -> SandboxResult<Option<u32>> {
    let index = unsafe { get_i32(env, value)? };
    Ok(u32::try_from(index).ok())
}

/// Reads a raw value of type `ty`.
unsafe fn get_raw(env: sys::napi_env, value: RawValue, ty: &ValType) -> SandboxResult<RawVal> {
    unsafe {
        Ok(match type_code(ty) {
            'i' => RawVal::I32(get_i32(env, value)?),
            'I' => RawVal::I64(get_i64(env, value)?),
            'f' => RawVal::F32(get_f64(env, value)? as f32),
            'F' => RawVal::F64(get_f64(env, value)?),
            'r' => RawVal::FuncRef(get_ref(env, value)?),
            'e' => RawVal::ExternRef(get_ref(env, value)?),
            _ => {
                return Err(SandboxError::InvalidArgType(format!(
                    "type incompatibility when transforming from/to JS ({})",
                    crate::module::type_name(ty)
                )));
            }
        })
    }
}

unsafe fn get_string(env: sys::napi_env, value: RawValue) -> SandboxResult<String> {
    let mut length = 0;
    // SAFETY: a non-string gives a non-ok status.
    if unsafe { sys::napi_get_value_string_utf8(env, value, ptr::null_mut(), 0, &mut length) } != sys::Status::napi_ok {
        return Err(internal("a string was expected"));
    }
    let mut buffer = vec![0u8; length + 1];
    unsafe { sys::napi_get_value_string_utf8(env, value, buffer.as_mut_ptr().cast(), buffer.len(), &mut length) };
    buffer.truncate(length);
    String::from_utf8(buffer).map_err(|_| internal("a UTF-8 string was expected"))
}

/// The bytes of a Uint8Array (read before JS runs again).
unsafe fn get_bytes<'a>(env: sys::napi_env, value: RawValue) -> SandboxResult<&'a [u8]> {
    let (mut kind, mut length, mut data, mut buffer, mut offset) = (0, 0, ptr::null_mut(), ptr::null_mut(), 0);
    // SAFETY: a non-typed-array gives a non-ok status.
    let status = unsafe {
        sys::napi_get_typedarray_info(env, value, &mut kind, &mut length, &mut data, &mut buffer, &mut offset)
    };
    if status != sys::Status::napi_ok {
        return Err(internal("a Uint8Array was expected"));
    }
    if length == 0 || data.is_null() {
        return Ok(&[]);
    }
    // SAFETY: the typed array's bytes, alive for this call.
    Ok(unsafe { std::slice::from_raw_parts(data.cast::<u8>(), length) })
}

fn create_f64(env: sys::napi_env, value: f64) -> RawValue {
    let mut result = ptr::null_mut();
    // SAFETY: the live env of the running callback.
    unsafe { sys::napi_create_double(env, value, &mut result) };
    result
}

fn create_i32(env: sys::napi_env, value: i32) -> RawValue {
    let mut result = ptr::null_mut();
    // SAFETY: the live env of the running callback.
    unsafe { sys::napi_create_int32(env, value, &mut result) };
    result
}

fn create_bool(env: sys::napi_env, value: bool) -> RawValue {
    let mut result = ptr::null_mut();
    // SAFETY: the live env of the running callback.
    unsafe { sys::napi_get_boolean(env, value, &mut result) };
    result
}

fn create_string(env: sys::napi_env, value: &str) -> RawValue {
    let mut result = ptr::null_mut();
    // SAFETY: the live env of the running callback.
    unsafe { sys::napi_create_string_utf8(env, value.as_ptr().cast(), value.len() as isize, &mut result) };
    result
}

fn create_array(env: sys::napi_env, items: &[RawValue]) -> RawValue {
    let mut array = ptr::null_mut();
    // SAFETY: the live env of the running callback.
    unsafe {
        sys::napi_create_array_with_length(env, items.len(), &mut array);
        for (index, &item) in items.iter().enumerate() {
            sys::napi_set_element(env, array, index as u32, item);
        }
    }
    array
}

fn undefined(env: sys::napi_env) -> RawValue {
    let mut result = ptr::null_mut();
    // SAFETY: the live env of the running callback.
    unsafe { sys::napi_get_undefined(env, &mut result) };
    result
}

/// The raw JS encoding of a raw value.
fn create_raw(env: sys::napi_env, value: RawVal) -> RawValue {
    match value {
        RawVal::I32(value) => create_i32(env, value),
        RawVal::I64(value) => {
            let mut result = ptr::null_mut();
            // SAFETY: the live env of the running callback.
            unsafe { sys::napi_create_bigint_int64(env, value, &mut result) };
            result
        }
        RawVal::F32(value) => create_f64(env, f64::from(value)),
        RawVal::F64(value) => create_f64(env, value),
        RawVal::FuncRef(index) | RawVal::ExternRef(index) => create_i32(env, index.map_or(-1, |index| index as i32)),
    }
}

// ---- the namespace --------------------------------------------------------------------------

impl Namespace {
    /// Calls the JS side's hook `name` with `args`; its result, or None if it threw (the
    /// exception is left pending) or the hooks are gone.
    fn call_hook(&self, env: sys::napi_env, name: &CStr, args: &[RawValue]) -> Option<RawValue> {
        let hooks = self.hooks.value()?;
        let mut hook = ptr::null_mut();
        let mut result = ptr::null_mut();
        // SAFETY: values of this env, on its thread.
        unsafe {
            (sys::napi_get_named_property(env, hooks, name.as_ptr(), &mut hook) == sys::Status::napi_ok
                && sys::napi_call_function(env, hooks, hook, args.len(), args.as_ptr(), &mut result)
                    == sys::Status::napi_ok)
                .then_some(result)
        }
    }

    /// Throws `error` as the namespace's own error class (through the JS side's `error` hook),
    /// or, for an uncaught wasm exception, what JS knows it as: its `WebAssembly.Exception`, or
    /// the JS value a JS-tag exception carries (the very value a JS import threw).
    fn throw(&self, env: sys::napi_env, error: &SandboxError) {
        if let SandboxError::UncaughtException { registry: Some(index) } = error {
            let value = self.call_hook(env, c"exception", &[create_f64(env, f64::from(*index))]);
            self.account_exceptions();
            if let Some(value) = value {
                // SAFETY: a value of this env.
                unsafe { sys::napi_throw(env, value) };
            }
            return;
        }
        let class = match error {
            SandboxError::Compile(_) => "CompileError",
            SandboxError::Link(_) => "LinkError",
            SandboxError::Trap { .. } | SandboxError::Import(_) | SandboxError::UncaughtException { .. } => {
                "RuntimeError"
            }
            SandboxError::InvalidArgType(_) | SandboxError::WrongReceiver(_) => "TypeError",
            SandboxError::OutOfRange(_) | SandboxError::MemoryLimit(_) | SandboxError::SandboxLimit(_) => "RangeError",
            _ => "Error",
        };
        let (kind, backtrace) = match error {
            SandboxError::Trap { kind, backtrace, .. } => {
                (Some(kind.as_str()), backtrace.as_ref().map(|trace| trace.text.as_str()))
            }
            _ => (None, None),
        };
        let message = error.to_string();
        let args = [
            create_string(env, class),
            create_string(env, &message),
            create_string(env, error.code()),
            kind.map_or_else(|| undefined(env), |kind| create_string(env, kind)),
            backtrace.map_or_else(|| undefined(env), |trace| create_string(env, trace)),
        ];
        let thrown = self.call_hook(env, c"error", &args).is_some_and(|made| {
            // SAFETY: a value of this env.
            unsafe { sys::napi_throw(env, made) == sys::Status::napi_ok }
        });
        if !thrown {
            crate::js::errors::throw(&napi::Env::from(env), error);
        }
    }

    /// Detaches every handed-out buffer whose memory changed size (grown by wasm, by JS, or by
    /// another instance sharing it), as the JS API requires of growth.
    fn refresh_buffers(&self, env: sys::napi_env) {
        let Ok(mut buffers) = self.buffers.try_borrow_mut() else {
            return;
        };
        if buffers.is_empty() {
            return;
        }
        buffers.retain(|buffer| {
            let Ok(memory) = self.store.memory(buffer.memory) else {
                return false;
            };
            if self.store.memory_size(memory).ok() == Some(buffer.length) {
                return true;
            }
            if let Some(array_buffer) = buffer.reference.value() {
                // SAFETY: an external ArrayBuffer of this env.
                unsafe { sys::napi_detach_arraybuffer(env, array_buffer) };
            }
            false
        });
    }

    /// The current ArrayBuffer of memory `index`: the cached one while the memory keeps its
    /// size, else a new external one over the memory itself (the old one detached).
    fn memory_buffer(self: &Rc<Self>, env: sys::napi_env, index: u32) -> SandboxResult<RawValue> {
        self.refresh_buffers(env);
        if let Some(buffer) = self.buffers.borrow().iter().find(|buffer| buffer.memory == index)
            && let Some(value) = buffer.reference.value()
        {
            return Ok(value);
        }
        let memory = self.store.memory(index)?;
        let (base, length) = self.store.memory_region(memory)?;
        let mut value = ptr::null_mut();
        if length == 0 {
            let mut data = ptr::null_mut();
            // SAFETY: the live env of the running callback.
            unsafe { sys::napi_create_arraybuffer(env, 0, &mut data, &mut value) };
        } else {
            let hint = Box::into_raw(Box::new(Rc::clone(self)));
            // SAFETY: the memory stays mapped while the store lives, which the hint keeps alive
            // until V8 lets go of the bytes; the memory never moves (memory_may_move(false)).
            let status = unsafe {
                sys::napi_create_external_arraybuffer(
                    env,
                    base.cast::<c_void>(),
                    length,
                    Some(release_namespace),
                    hint.cast::<c_void>(),
                    &mut value,
                )
            };
            if status != sys::Status::napi_ok {
                // SAFETY: Node-API did not take the hint.
                drop(unsafe { Box::from_raw(hint) });
                return Err(if status == sys::Status::napi_no_external_buffers_allowed {
                    SandboxError::ExternalBuffersForbidden
                } else {
                    SandboxError::Internal(format!("could not create an ArrayBuffer over the memory ({status})"))
                });
            }
        }
        // SAFETY: `value` was just made in this env.
        let reference = unsafe { SendlessRef::weak(env, value) }
            .ok_or_else(|| SandboxError::Internal("napi_create_reference".into()))?;
        self.buffers.borrow_mut().push(MemoryBuffer {
            memory: index,
            length,
            reference,
        });
        Ok(value)
    }

    /// An External naming function `index`, for the JS side's exported-function wrapper.
    fn caller(self: &Rc<Self>, env: sys::napi_env, index: u32) -> SandboxResult<RawValue> {
        let func = self.store.func(index)?;
        let ty = self.store.func_type(index)?;
        let params: Vec<ValType> = ty.params().collect();
        let results: Vec<ValType> = ty.results().collect();
        let is_number = |ty: &ValType| matches!(ty, ValType::I32 | ValType::I64 | ValType::F32 | ValType::F64);
        let numeric = params.iter().all(is_number) && results.len() <= 1 && results.iter().all(is_number);
        let caller = Box::new(FuncCaller {
            namespace: Rc::as_ptr(self),
            func,
            params,
            results,
            numeric,
        });
        let pointer: *const FuncCaller = &*caller;
        self.callers.borrow_mut().push(caller);
        let mut external = ptr::null_mut();
        // SAFETY: the External points into a box the namespace owns; the JS side keeps the
        // External only in the wrapper it made, which also holds the namespace alive.
        unsafe { sys::napi_create_external(env, pointer.cast_mut().cast(), None, ptr::null_mut(), &mut external) };
        Ok(external)
    }
}

unsafe extern "C" fn release_namespace(_env: sys::napi_env, _data: *mut c_void, hint: *mut c_void) {
    // SAFETY: the `Box<NamespaceHandle>` leaked when the buffer or External was made.
    drop(unsafe { Box::from_raw(hint.cast::<NamespaceHandle>()) });
}

/// Runs `body` over the namespace named by the first argument, catching panics and throwing
/// errors as the namespace's own.
unsafe fn with_namespace(
    env: sys::napi_env,
    info: sys::napi_callback_info,
    body: impl FnOnce(&Rc<Namespace>, &VarArgs) -> SandboxResult<RawValue>,
) -> RawValue {
    // SAFETY: this callback's env and info.
    let args = unsafe { VarArgs::read(env, info) };
    let mut data = ptr::null_mut();
    // SAFETY: a non-External gives a non-ok status.
    if unsafe { sys::napi_get_value_external(env, args.get(0), &mut data) } != sys::Status::napi_ok || data.is_null() {
        crate::js::errors::throw(&napi::Env::from(env), &internal("not a namespace"));
        return VOID;
    }
    // SAFETY: namespace Externs are made by `wa_namespace` only and own a `NamespaceHandle`.
    let namespace = unsafe { &*data.cast::<NamespaceHandle>() };
    match catch_unwind(AssertUnwindSafe(|| body(namespace, &args))) {
        Ok(Ok(value)) => value,
        Ok(Err(error)) => {
            namespace.throw(env, &error);
            VOID
        }
        Err(_) => {
            namespace.throw(env, &SandboxError::Internal("a Rust panic was caught".to_owned()));
            VOID
        }
    }
}

// ---- raw functions --------------------------------------------------------------------------

/// `waNamespace(maxMemoryBytes, timeoutMs, fuel, cpuTimeMs, hooks)`: a new store (limits -1 when
/// unset).
unsafe extern "C" fn wa_namespace(env: sys::napi_env, info: sys::napi_callback_info) -> RawValue {
    let outcome = catch_unwind(AssertUnwindSafe(|| -> SandboxResult<RawValue> {
        // SAFETY: this callback's env and info.
        let args = unsafe { VarArgs::read(env, info) };
        let limit = |index: usize| -> SandboxResult<Option<f64>> {
            // SAFETY: an argument of this call.
            let value = unsafe { get_f64(env, args.get(index))? };
            Ok((value >= 0.0).then_some(value))
        };
        let limits = Limits {
            max_memory_bytes: limit(0)?.map(|bytes| bytes as u64),
            timeout: limit(1)?.map(|ms| Duration::from_millis(ms as u64)),
            fuel: limit(2)?.map(|fuel| fuel as u64),
            cpu_time: limit(3)?.map(|ms| Duration::from_millis(ms as u64)),
            metrics: false,
        };
        let store = SharedStore::new(limits)?;
        // SAFETY: the hooks object of this call.
        let hooks = unsafe { SendlessRef::weak(env, args.get(4)) }.ok_or_else(|| internal("hooks"))?;
        let namespace = Rc::new(Namespace {
            store,
            env,
            hooks,
            buffers: RefCell::new(Vec::new()),
            callers: RefCell::new(Vec::new()),
            exception_memory: ExternalMemory::report(&napi::Env::from(env), 0),
        });
        let hint = Box::into_raw(Box::new(namespace));
        let mut external = ptr::null_mut();
        // SAFETY: the External owns the handle; its finalizer drops it.
        unsafe { sys::napi_create_external(env, hint.cast(), Some(release_namespace), hint.cast(), &mut external) };
        Ok(external)
    }));
    match outcome {
        Ok(Ok(value)) => value,
        Ok(Err(error)) => {
            crate::js::errors::throw(&napi::Env::from(env), &error);
            VOID
        }
        Err(_) => {
            crate::js::errors::throw(
                &napi::Env::from(env),
                &SandboxError::Internal("a Rust panic was caught".into()),
            );
            VOID
        }
    }
}

/// `waValidate(ns, bytes)`.
unsafe extern "C" fn wa_validate(env: sys::napi_env, info: sys::napi_callback_info) -> RawValue {
    unsafe {
        with_namespace(env, info, |namespace, args| {
            Ok(create_bool(
                env,
                namespace.store.validate(get_bytes(env, args.get(1))?)?,
            ))
        })
    }
}

/// `waCompile(ns, bytes)`: an External owning the compiled module.
unsafe extern "C" fn wa_compile(env: sys::napi_env, info: sys::napi_callback_info) -> RawValue {
    unsafe {
        with_namespace(env, info, |namespace, args| {
            let module = namespace.store.compile(get_bytes(env, args.get(1))?)?;
            Ok(module_external(env, module))
        })
    }
}

/// What settles `waCompileAsync`'s promise: `[module External]`, or `[undefined, message]`.
struct CompileOutcome(SandboxResult<CompiledModule>);

impl napi::bindgen_prelude::ToNapiValue for CompileOutcome {
    unsafe fn to_napi_value(env: sys::napi_env, outcome: Self) -> napi::Result<sys::napi_value> {
        let items = match outcome.0 {
            Ok(module) => vec![module_external(env, module)],
            Err(error) => vec![undefined(env), create_string(env, &error.to_string())],
        };
        Ok(create_array(env, &items))
    }
}

/// `waCompileAsync(ns, bytes)`: compiles on a thread of its own (as `Module.compile` does), so
/// the event loop runs on meanwhile; a promise of what `CompileOutcome` says.
unsafe extern "C" fn wa_compile_async(env: sys::napi_env, info: sys::napi_callback_info) -> RawValue {
    unsafe {
        with_namespace(env, info, |namespace, args| {
            let bytes = get_bytes(env, args.get(1))?.to_vec();
            let kind = namespace.store.kind();
            let napi_env = napi::Env::from(env);
            let (deferred, promise) = napi_env
                .create_deferred()
                .map_err(|error| SandboxError::Internal(error.to_string()))?;
            std::thread::Builder::new()
                .name("wasm-sandbox-compile".to_owned())
                .stack_size(crate::js::module::COMPILE_THREAD_STACK)
                .spawn(move || {
                    let compiled = catch_unwind(AssertUnwindSafe(|| crate::webassembly::compile_for(kind, &bytes)))
                        .unwrap_or_else(|_| Err(SandboxError::Internal("compiling the module panicked".to_owned())));
                    deferred.resolve(move |_env| Ok(CompileOutcome(compiled)));
                })
                .map_err(|error| SandboxError::Internal(format!("could not start a compile thread: {error}")))?;
            Ok(napi::bindgen_prelude::JsValue::raw(&promise))
        })
    }
}

/// A compiled module as the External the JS side keeps it in (its finalizer drops the module).
fn module_external(env: sys::napi_env, module: CompiledModule) -> RawValue {
    let hint = Box::into_raw(Box::new(module));
    let mut external = ptr::null_mut();
    // SAFETY: the External owns the module; `release_module` drops it.
    unsafe { sys::napi_create_external(env, hint.cast(), Some(release_module), hint.cast(), &mut external) };
    external
}

unsafe extern "C" fn release_module(_env: sys::napi_env, _data: *mut c_void, hint: *mut c_void) {
    // SAFETY: the `Box<CompiledModule>` leaked in `module_external`.
    drop(unsafe { Box::from_raw(hint.cast::<CompiledModule>()) });
}

unsafe fn get_module<'a>(env: sys::napi_env, value: RawValue) -> SandboxResult<&'a CompiledModule> {
    let mut data = ptr::null_mut();
    // SAFETY: a non-External gives a non-ok status; module Externs come from `wa_compile` only.
    if unsafe { sys::napi_get_value_external(env, value, &mut data) } != sys::Status::napi_ok || data.is_null() {
        return Err(internal("not a module"));
    }
    Ok(unsafe { &*data.cast::<CompiledModule>() })
}

fn kind_name(kind: ExternKind) -> &'static str {
    match kind {
        ExternKind::Function => "function",
        ExternKind::Table => "table",
        ExternKind::Memory => "memory",
        ExternKind::Global => "global",
        ExternKind::Tag => "tag",
    }
}

/// A description of an extern type for the JS side: `[kind, ...details]`; functions give their
/// signature codes, globals their value type and mutability, tables their element type,
/// memories and tables their limits.
fn describe_type(env: sys::napi_env, ty: &wasmtime::ExternType) -> RawValue {
    let kind = create_string(env, kind_name(ExternKind::of(ty)));
    let limit = |value: Option<u64>| value.map_or_else(|| create_i32(env, -1), |value| create_f64(env, value as f64));
    match ty {
        wasmtime::ExternType::Func(func) => {
            let (params, results) = signature_codes(func);
            create_array(env, &[kind, create_string(env, &params), create_string(env, &results)])
        }
        wasmtime::ExternType::Global(global) => create_array(
            env,
            &[
                kind,
                create_string(env, &type_code(global.content()).to_string()),
                create_bool(env, global.mutability() == wasmtime::Mutability::Var),
            ],
        ),
        wasmtime::ExternType::Table(table) => create_array(
            env,
            &[
                kind,
                create_string(env, &type_code(&ValType::Ref(table.element().clone())).to_string()),
                create_f64(env, table.minimum() as f64),
                limit(table.maximum()),
            ],
        ),
        wasmtime::ExternType::Memory(memory) => create_array(
            env,
            &[
                kind,
                create_f64(env, memory.minimum() as f64),
                limit(memory.maximum()),
                create_bool(env, memory.is_shared()),
                create_bool(env, memory.is_64()),
            ],
        ),
        wasmtime::ExternType::Tag(_) => create_array(env, &[kind]),
    }
}

/// `waModuleImports(ns, module)`: `[[module, name, type], ...]` in the module's import order.
unsafe extern "C" fn wa_module_imports(env: sys::napi_env, info: sys::napi_callback_info) -> RawValue {
    unsafe {
        with_namespace(env, info, |_, args| {
            let module = get_module(env, args.get(1))?;
            let items: Vec<RawValue> = module
                .module
                .imports()
                .map(|import| {
                    create_array(
                        env,
                        &[
                            create_string(env, import.module()),
                            create_string(env, import.name()),
                            describe_type(env, &import.ty()),
                        ],
                    )
                })
                .collect();
            Ok(create_array(env, &items))
        })
    }
}

/// `waModuleExports(ns, module)`: `[[name, type], ...]`.
unsafe extern "C" fn wa_module_exports(env: sys::napi_env, info: sys::napi_callback_info) -> RawValue {
    unsafe {
        with_namespace(env, info, |_, args| {
            let module = get_module(env, args.get(1))?;
            let items: Vec<RawValue> = module
                .module
                .exports()
                .map(|export| {
                    create_array(
                        env,
                        &[create_string(env, export.name()), describe_type(env, &export.ty())],
                    )
                })
                .collect();
            Ok(create_array(env, &items))
        })
    }
}

/// `waInstantiate(ns, module, [kind, index, kind, index, ...])`: `[name, kind, index, ...]`.
unsafe extern "C" fn wa_instantiate(env: sys::napi_env, info: sys::napi_callback_info) -> RawValue {
    unsafe {
        with_namespace(env, info, |namespace, args| {
            let module = get_module(env, args.get(1))?;
            let list = args.get(2);
            let mut length = 0;
            sys::napi_get_array_length(env, list, &mut length);
            let mut imports = Vec::with_capacity(length as usize / 2);
            for pair in 0..length / 2 {
                let mut kind = ptr::null_mut();
                let mut index = ptr::null_mut();
                sys::napi_get_element(env, list, pair * 2, &mut kind);
                sys::napi_get_element(env, list, pair * 2 + 1, &mut index);
                let kind = ExternKind::from_code(get_i32(env, kind)? as u32).ok_or_else(|| internal("kind"))?;
                imports.push((kind, get_i32(env, index)? as u32));
            }
            let outcome = namespace.store.instantiate(module, &imports);
            namespace.refresh_buffers(env);
            let exports = outcome?;
            let mut items = Vec::with_capacity(exports.len() * 3);
            for (name, kind, index) in exports {
                items.push(create_string(env, &name));
                items.push(create_i32(env, kind as i32));
                items.push(create_f64(env, f64::from(index)));
            }
            Ok(create_array(env, &items))
        })
    }
}

/// `waHostFunc(ns, adapter, params, results)`: registers a JS function (the JS side's adapter,
/// which decodes the raw arguments and encodes the results) as a wasm function.
unsafe extern "C" fn wa_host_func(env: sys::napi_env, info: sys::napi_callback_info) -> RawValue {
    unsafe {
        with_namespace(env, info, |namespace, args| {
            let params = value_types(&get_string(env, args.get(2))?)?;
            let results = value_types(&get_string(env, args.get(3))?)?;
            let ty = FuncType::new(
                &crate::engine::engine(crate::engine::EngineKind::api(namespace.store.limits().fuel.is_some()))?
                    .clone(),
                params,
                results,
            );
            let adapter = SendlessRef::weak(env, args.get(1)).ok_or_else(|| internal("adapter"))?;
            let weak_namespace = Rc::downgrade(namespace);
            let host_env = namespace.env;
            let result_types: Vec<ValType> = ty.results().collect();
            let index = namespace.store.host_function(
                ty,
                Box::new(
                    move |caller: &mut wasmtime::Caller<'_, crate::webassembly::StoreState>,
                          params: &[Val],
                          results: &mut [Val]| {
                        let Some(namespace) = weak_namespace.upgrade() else {
                            return Err(host_error("its namespace is gone"));
                        };
                        invoke_host(&namespace, host_env, &adapter, caller, params, &result_types, results)
                    },
                ),
            )?;
            Ok(create_f64(env, f64::from(index)))
        })
    }
}

fn host_error(message: &str) -> HostFailure {
    HostFailure::Error(HostFunctionError {
        import: "a JavaScript function".to_owned(),
        message: message.to_owned(),
    })
}

fn invoke_host(
    namespace: &Rc<Namespace>,
    env: sys::napi_env,
    adapter: &SendlessRef,
    caller: &mut wasmtime::Caller<'_, crate::webassembly::StoreState>,
    params: &[Val],
    result_types: &[ValType],
    results: &mut [Val],
) -> Result<(), HostFailure> {
    use wasmtime::AsContextMut;
    let mut scope = ptr::null_mut();
    // SAFETY: host functions run inside the JS call that entered the guest, on the env's thread.
    if unsafe { sys::napi_open_handle_scope(env, &mut scope) } != sys::Status::napi_ok {
        return Err(host_error("JavaScript cannot run here"));
    }
    let outcome = catch_unwind(AssertUnwindSafe(|| -> Result<(), HostFailure> {
        // Growth by the guest so far detaches old buffers before JS can see them.
        namespace.refresh_buffers(env);
        let mut context = caller.as_context_mut();
        let mut arguments = Vec::with_capacity(params.len());
        for param in params {
            let raw = raw_of(&mut context, param).map_err(|error| host_error(&error.to_string()))?;
            arguments.push(create_raw(env, raw));
        }
        let function = adapter
            .value()
            .ok_or_else(|| host_error("the function was garbage-collected"))?;
        let mut returned = ptr::null_mut();
        // SAFETY: values of this env, in the open scope.
        let status = unsafe {
            sys::napi_call_function(
                env,
                undefined(env),
                function,
                arguments.len(),
                arguments.as_ptr(),
                &mut returned,
            )
        };
        if status != sys::Status::napi_ok {
            // The JS exception is thrown into the guest as a wasm exception: a
            // `WebAssembly.Exception` of this namespace as itself, any other value under the JS
            // tag (the `thrown` hook tells which: an exception's index, or -2 - an externref's raw
            // encoding, -1 for null).
            let mut exception = ptr::null_mut();
            // SAFETY: right after a failed call in this env.
            unsafe { sys::napi_get_and_clear_last_exception(env, &mut exception) };
            let code = namespace
                .call_hook(env, c"thrown", &[exception])
                // SAFETY: the hook returns a number.
                .and_then(|code| unsafe { get_f64(env, code) }.ok())
                .ok_or_else(|| host_error("its exception could not be passed on"))?;
            return Err(if code >= 0.0 {
                HostFailure::Throw(code as u32)
            } else {
                let raw = -2.0 - code;
                HostFailure::ThrowJsValue((raw >= 0.0).then_some(raw as u32))
            });
        }
        let values: Vec<RawValue> = match result_types.len() {
            0 => Vec::new(),
            1 => vec![returned],
            count => (0..count as u32)
                .map(|index| {
                    let mut element = ptr::null_mut();
                    // SAFETY: the adapter returns an array of `count` raw values.
                    unsafe { sys::napi_get_element(env, returned, index, &mut element) };
                    element
                })
                .collect(),
        };
        for ((slot, ty), value) in results.iter_mut().zip(result_types).zip(values) {
            // SAFETY: a value of this env.
            let raw = unsafe { get_raw(env, value, ty) }.map_err(|error| host_error(&error.to_string()))?;
            *slot = raw
                .into_val(&mut context)
                .map_err(|error| host_error(&error.to_string()))?;
        }
        Ok(())
    }))
    .unwrap_or_else(|_| Err(host_error("the host panicked")));
    // SAFETY: closes the scope opened above.
    unsafe { sys::napi_close_handle_scope(env, scope) };
    outcome
}

/// `waCaller(ns, funcIndex)`: `[caller External, params codes, results codes]`.
unsafe extern "C" fn wa_caller(env: sys::napi_env, info: sys::napi_callback_info) -> RawValue {
    unsafe {
        with_namespace(env, info, |namespace, args| {
            let index = get_i32(env, args.get(1))? as u32;
            let external = namespace.caller(env, index)?;
            let (params, results) = signature_codes(&namespace.store.func_type(index)?);
            Ok(create_array(
                env,
                &[external, create_string(env, &params), create_string(env, &results)],
            ))
        })
    }
}

/// `waCall(caller, ...rawArgs)`: calls an exported function with already converted arguments.
unsafe extern "C" fn wa_call(env: sys::napi_env, info: sys::napi_callback_info) -> RawValue {
    // The arguments are read into this frame's own array (not returned in a struct: copying one
    // right after Node-API wrote it costs a store-forwarding stall per call, seen with perf).
    let mut argv = [ptr::null_mut(); 9];
    let mut argc = argv.len();
    // SAFETY: `argv` has room for `argc` values; Node-API reports the real count.
    unsafe {
        sys::napi_get_cb_info(
            env,
            info,
            &mut argc,
            argv.as_mut_ptr(),
            ptr::null_mut(),
            ptr::null_mut(),
        )
    };
    let spilled;
    let values: &[RawValue] = if argc <= argv.len() {
        &argv[..argc]
    } else {
        // SAFETY: this callback's env and info.
        spilled = unsafe { VarArgs::read(env, info) };
        spilled.as_slice()
    };
    let mut data = ptr::null_mut();
    // SAFETY: a non-External gives a non-ok status.
    if unsafe { sys::napi_get_value_external(env, values.first().copied().unwrap_or(ptr::null_mut()), &mut data) }
        != sys::Status::napi_ok
        || data.is_null()
    {
        crate::js::errors::throw(&napi::Env::from(env), &internal("not a function caller"));
        return VOID;
    }
    // SAFETY: caller Externs come from `Namespace::caller`, pointing into a box the namespace
    // owns; the wrapper holding the External also holds the namespace.
    let caller = unsafe { &*data.cast::<FuncCaller>() };
    let namespace = unsafe { &*caller.namespace };
    let outcome = catch_unwind(AssertUnwindSafe(|| unsafe {
        call(env, namespace, caller, &values[1..])
    }));
    namespace.refresh_buffers(env);
    match outcome {
        Ok(Ok(value)) => value,
        Ok(Err(error)) => {
            namespace.throw(env, &error);
            VOID
        }
        Err(_) => {
            namespace.throw(env, &SandboxError::Internal("a Rust panic was caught".to_owned()));
            VOID
        }
    }
}

unsafe fn call(
    env: sys::napi_env,
    namespace: &Namespace,
    caller: &FuncCaller,
    args: &[RawValue],
) -> SandboxResult<RawValue> {
    if caller.numeric && args.len() == caller.params.len() && caller.params.len() <= 8 {
        let mut slots = [ValRaw::i32(0); 8];
        for (index, (ty, &value)) in caller.params.iter().zip(args).enumerate() {
            slots[index] = unsafe {
                match ty {
                    ValType::I32 => ValRaw::i32(get_i32(env, value)?),
                    ValType::I64 => ValRaw::i64(get_i64(env, value)?),
                    ValType::F32 => ValRaw::f32((get_f64(env, value)? as f32).to_bits()),
                    _ => ValRaw::f64(get_f64(env, value)?.to_bits()),
                }
            };
        }
        let length = caller.params.len().max(caller.results.len());
        // SAFETY: the slots hold values of the parameter types, numbers only.
        unsafe { namespace.store.call_unchecked(&caller.func, &mut slots[..length])? };
        return Ok(match caller.results.first() {
            None => VOID,
            Some(ValType::I32) => create_i32(env, slots[0].get_i32()),
            Some(ValType::I64) => create_raw(env, RawVal::I64(slots[0].get_i64())),
            Some(ValType::F32) => create_f64(env, f64::from(f32::from_bits(slots[0].get_f32()))),
            Some(_) => create_f64(env, f64::from_bits(slots[0].get_f64())),
        });
    }
    let mut params = Vec::with_capacity(caller.params.len());
    for (ty, &value) in caller.params.iter().zip(args) {
        params.push(unsafe { get_raw(env, value, ty)? });
    }
    if params.len() != caller.params.len() {
        return Err(internal("argument count"));
    }
    for ty in &caller.results {
        if !matches!(type_code(ty), 'i' | 'I' | 'f' | 'F' | 'r' | 'e') {
            return Err(SandboxError::InvalidArgType(
                "type incompatibility when transforming from/to JS".to_owned(),
            ));
        }
    }
    namespace
        .store
        .call(caller.func, &params, caller.results.len(), |context, results| {
            let mut values = Vec::with_capacity(results.len());
            for result in results {
                values.push(create_raw(env, raw_of(context, result)?));
            }
            Ok(match values.len() {
                0 => VOID,
                1 => values[0],
                _ => create_array(env, &values),
            })
        })
}

/// `waMemoryNew(ns, initial, maximum, is64)` (maximum -1 when unset): the memory's index.
unsafe extern "C" fn wa_memory_new(env: sys::napi_env, info: sys::napi_callback_info) -> RawValue {
    unsafe {
        with_namespace(env, info, |namespace, args| {
            let initial = get_f64(env, args.get(1))? as u64;
            let maximum = get_f64(env, args.get(2))?;
            let mut is64 = false;
            sys::napi_get_value_bool(env, args.get(3), &mut is64);
            let index = namespace
                .store
                .memory_new(initial, (maximum >= 0.0).then_some(maximum as u64), is64)?;
            Ok(create_f64(env, f64::from(index)))
        })
    }
}

/// `waMemoryBuffer(ns, index)`: the memory's current ArrayBuffer.
unsafe extern "C" fn wa_memory_buffer(env: sys::napi_env, info: sys::napi_callback_info) -> RawValue {
    unsafe {
        with_namespace(env, info, |namespace, args| {
            namespace.memory_buffer(env, get_i32(env, args.get(1))? as u32)
        })
    }
}

/// `waMemoryGrow(ns, index, delta)`: the old size in pages.
unsafe extern "C" fn wa_memory_grow(env: sys::napi_env, info: sys::napi_callback_info) -> RawValue {
    unsafe {
        with_namespace(env, info, |namespace, args| {
            let memory = namespace.store.memory(get_i32(env, args.get(1))? as u32)?;
            let delta = get_f64(env, args.get(2))? as u64;
            let old = namespace.store.memory_grow(memory, delta)?;
            // Even growth by 0 pages replaces the buffer (the JS API detaches it).
            let index = get_i32(env, args.get(1))? as u32;
            if let Ok(mut buffers) = namespace.buffers.try_borrow_mut() {
                buffers.retain(|buffer| {
                    if buffer.memory != index {
                        return true;
                    }
                    if let Some(array_buffer) = buffer.reference.value() {
                        sys::napi_detach_arraybuffer(env, array_buffer);
                    }
                    false
                });
            }
            namespace.refresh_buffers(env);
            Ok(create_f64(env, old as f64))
        })
    }
}

/// `waMemoryType(ns, index)`: `[minimum, maximum or -1, size in bytes, is64]`.
unsafe extern "C" fn wa_memory_type(env: sys::napi_env, info: sys::napi_callback_info) -> RawValue {
    unsafe {
        with_namespace(env, info, |namespace, args| {
            let memory = namespace.store.memory(get_i32(env, args.get(1))? as u32)?;
            let (minimum, maximum, is64) = namespace.store.memory_type(memory)?;
            let size = namespace.store.memory_size(memory)?;
            Ok(create_array(
                env,
                &[
                    create_f64(env, minimum as f64),
                    create_f64(env, maximum.map_or(-1.0, |maximum| maximum as f64)),
                    create_f64(env, size as f64),
                    create_bool(env, is64),
                ],
            ))
        })
    }
}

fn ref_type(code: &str) -> SandboxResult<RefType> {
    match code {
        "r" => Ok(RefType::FUNCREF),
        "e" => Ok(RefType::EXTERNREF),
        _ => Err(internal("element type")),
    }
}

/// `waTableNew(ns, element code, initial, maximum, init, is64)`: the table's index.
unsafe extern "C" fn wa_table_new(env: sys::napi_env, info: sys::napi_callback_info) -> RawValue {
    unsafe {
        with_namespace(env, info, |namespace, args| {
            let code = get_string(env, args.get(1))?;
            let element = ref_type(&code)?;
            let initial = get_f64(env, args.get(2))? as u64;
            let maximum = get_f64(env, args.get(3))?;
            let init = get_raw(env, args.get(4), &ValType::Ref(element.clone()))?;
            let mut is64 = false;
            sys::napi_get_value_bool(env, args.get(5), &mut is64);
            let maximum = (maximum >= 0.0).then_some(maximum as u64);
            let index = namespace.store.table_new(element, initial, maximum, is64, &init)?;
            Ok(create_f64(env, f64::from(index)))
        })
    }
}

/// `waTableType(ns, index)`: `[element code, minimum, maximum or -1, length, is64]`.
unsafe extern "C" fn wa_table_type(env: sys::napi_env, info: sys::napi_callback_info) -> RawValue {
    unsafe {
        with_namespace(env, info, |namespace, args| {
            let table = namespace.store.table(get_i32(env, args.get(1))? as u32)?;
            let (code, minimum, maximum, is64) = namespace.store.table_type(table)?;
            let size = namespace.store.table_size(table)?;
            Ok(create_array(
                env,
                &[
                    create_string(env, &code.to_string()),
                    create_f64(env, minimum as f64),
                    create_f64(env, maximum.map_or(-1.0, |maximum| maximum as f64)),
                    create_f64(env, size as f64),
                    create_bool(env, is64),
                ],
            ))
        })
    }
}

/// `waTableLength(ns, index)`.
unsafe extern "C" fn wa_table_length(env: sys::napi_env, info: sys::napi_callback_info) -> RawValue {
    unsafe {
        with_namespace(env, info, |namespace, args| {
            let table = namespace.store.table(get_i32(env, args.get(1))? as u32)?;
            Ok(create_f64(env, namespace.store.table_size(table)? as f64))
        })
    }
}

/// `waTableGet(ns, index, element)`: the raw element.
unsafe extern "C" fn wa_table_get(env: sys::napi_env, info: sys::napi_callback_info) -> RawValue {
    unsafe {
        with_namespace(env, info, |namespace, args| {
            let table = namespace.store.table(get_i32(env, args.get(1))? as u32)?;
            let element = get_f64(env, args.get(2))? as u64;
            namespace.store.table_get(table, element, |context, value| {
                Ok(create_raw(env, raw_of_ref(context, &value)?))
            })
        })
    }
}

/// `waTableSet(ns, index, element, raw value)`.
unsafe extern "C" fn wa_table_set(env: sys::napi_env, info: sys::napi_callback_info) -> RawValue {
    unsafe {
        with_namespace(env, info, |namespace, args| {
            let table = namespace.store.table(get_i32(env, args.get(1))? as u32)?;
            let element = get_f64(env, args.get(2))? as u64;
            let (code, ..) = namespace.store.table_type(table)?;
            let value = get_raw(env, args.get(3), &ValType::Ref(ref_type(&code.to_string())?))?;
            namespace.store.table_set(table, element, &value)?;
            Ok(VOID)
        })
    }
}

/// `waTableGrow(ns, index, delta, raw init)`: the old length.
unsafe extern "C" fn wa_table_grow(env: sys::napi_env, info: sys::napi_callback_info) -> RawValue {
    unsafe {
        with_namespace(env, info, |namespace, args| {
            let table = namespace.store.table(get_i32(env, args.get(1))? as u32)?;
            let delta = get_f64(env, args.get(2))? as u64;
            let (code, ..) = namespace.store.table_type(table)?;
            let init = get_raw(env, args.get(3), &ValType::Ref(ref_type(&code.to_string())?))?;
            Ok(create_f64(env, namespace.store.table_grow(table, delta, &init)? as f64))
        })
    }
}

/// `waGlobalNew(ns, type code, mutable, raw value)`: the global's index.
unsafe extern "C" fn wa_global_new(env: sys::napi_env, info: sys::napi_callback_info) -> RawValue {
    unsafe {
        with_namespace(env, info, |namespace, args| {
            let code = get_string(env, args.get(1))?;
            let ty = code
                .chars()
                .next()
                .and_then(type_of_code)
                .ok_or_else(|| internal("value type"))?;
            let mut mutable = false;
            sys::napi_get_value_bool(env, args.get(2), &mut mutable);
            let value = get_raw(env, args.get(3), &ty)?;
            Ok(create_f64(
                env,
                f64::from(namespace.store.global_new(ty, mutable, &value)?),
            ))
        })
    }
}

/// `waGlobalType(ns, index)`: `[type code, mutable]`.
unsafe extern "C" fn wa_global_type(env: sys::napi_env, info: sys::napi_callback_info) -> RawValue {
    unsafe {
        with_namespace(env, info, |namespace, args| {
            let global = namespace.store.global(get_i32(env, args.get(1))? as u32)?;
            let (code, mutable) = namespace.store.global_type(global)?;
            Ok(create_array(
                env,
                &[create_string(env, &code.to_string()), create_bool(env, mutable)],
            ))
        })
    }
}

/// `waGlobalGet(ns, index)`: the raw value.
unsafe extern "C" fn wa_global_get(env: sys::napi_env, info: sys::napi_callback_info) -> RawValue {
    unsafe {
        with_namespace(env, info, |namespace, args| {
            let global = namespace.store.global(get_i32(env, args.get(1))? as u32)?;
            namespace
                .store
                .global_get(global, |context, value| Ok(create_raw(env, raw_of(context, &value)?)))
        })
    }
}

/// `waGlobalSet(ns, index, raw value)`.
unsafe extern "C" fn wa_global_set(env: sys::napi_env, info: sys::napi_callback_info) -> RawValue {
    unsafe {
        with_namespace(env, info, |namespace, args| {
            let global = namespace.store.global(get_i32(env, args.get(1))? as u32)?;
            let (code, _) = namespace.store.global_type(global)?;
            let ty = type_of_code(code).ok_or_else(|| internal("value type"))?;
            let value = get_raw(env, args.get(2), &ty)?;
            namespace.store.global_set(global, &value)?;
            Ok(VOID)
        })
    }
}

/// `waTagNew(ns, param codes)`: the tag's index.
unsafe extern "C" fn wa_tag_new(env: sys::napi_env, info: sys::napi_callback_info) -> RawValue {
    unsafe {
        with_namespace(env, info, |namespace, args| {
            let params = value_types(&get_string(env, args.get(1))?)?;
            Ok(create_f64(env, f64::from(namespace.store.tag_new(params)?)))
        })
    }
}

/// `waTagType(ns, index)`: the tag's param codes.
unsafe extern "C" fn wa_tag_type(env: sys::napi_env, info: sys::napi_callback_info) -> RawValue {
    unsafe {
        with_namespace(env, info, |namespace, args| {
            Ok(create_string(
                env,
                &namespace.store.tag_type(get_i32(env, args.get(1))? as u32)?,
            ))
        })
    }
}

/// `waExceptionNew(ns, tag index, ...raw payload)`: the exception's index.
unsafe extern "C" fn wa_exception_new(env: sys::napi_env, info: sys::napi_callback_info) -> RawValue {
    unsafe {
        with_namespace(env, info, |namespace, args| {
            let tag = get_i32(env, args.get(1))? as u32;
            let types = value_types(&namespace.store.tag_type(tag)?)?;
            let values = args.as_slice();
            if values.len() != 2 + types.len() {
                return Err(internal("payload length"));
            }
            let mut payload = Vec::with_capacity(types.len());
            for (ty, &value) in types.iter().zip(&values[2..]) {
                payload.push(get_raw(env, value, ty)?);
            }
            let index = namespace.store.exception_new(tag, &payload)?;
            namespace.account_exceptions();
            Ok(create_f64(env, f64::from(index)))
        })
    }
}

/// `waExceptionTag(ns, index)`: the index of the exception's tag.
unsafe extern "C" fn wa_exception_tag(env: sys::napi_env, info: sys::napi_callback_info) -> RawValue {
    unsafe {
        with_namespace(env, info, |namespace, args| {
            Ok(create_f64(
                env,
                f64::from(namespace.store.exception_tag(get_i32(env, args.get(1))? as u32)?),
            ))
        })
    }
}

/// `waExceptionArg(ns, index, field)`: the raw value of a payload field.
unsafe extern "C" fn wa_exception_arg(env: sys::napi_env, info: sys::napi_callback_info) -> RawValue {
    unsafe {
        with_namespace(env, info, |namespace, args| {
            let index = get_i32(env, args.get(1))? as u32;
            let field = get_i32(env, args.get(2))? as usize;
            namespace.store.exception_field(index, field, |context, value| {
                Ok(create_raw(env, raw_of(context, &value)?))
            })
        })
    }
}

/// `waExceptionRelease(ns, index)`: JS no longer holds the exception.
unsafe extern "C" fn wa_exception_release(env: sys::napi_env, info: sys::napi_callback_info) -> RawValue {
    unsafe {
        with_namespace(env, info, |namespace, args| {
            namespace.store.exception_release(get_i32(env, args.get(1))? as u32)?;
            namespace.account_exceptions();
            Ok(VOID)
        })
    }
}

/// `waExternReleased(ns)`: the slots of JS values no externref holds any more.
unsafe extern "C" fn wa_extern_released(env: sys::napi_env, info: sys::napi_callback_info) -> RawValue {
    unsafe {
        with_namespace(env, info, |namespace, _| {
            let slots = namespace.store.take_released_externs()?;
            let items: Vec<RawValue> = slots.into_iter().map(|slot| create_f64(env, f64::from(slot))).collect();
            Ok(create_array(env, &items))
        })
    }
}

/// `waFuel(ns)` / `waSetFuel(ns, fuel)`.
unsafe extern "C" fn wa_fuel(env: sys::napi_env, info: sys::napi_callback_info) -> RawValue {
    unsafe {
        with_namespace(env, info, |namespace, args| {
            if args.as_slice().len() > 1 {
                namespace.store.set_fuel(get_f64(env, args.get(1))? as u64)?;
                return Ok(VOID);
            }
            Ok(create_f64(env, namespace.store.fuel()? as f64))
        })
    }
}

/// Defines the namespace's raw functions on `target`.
///
/// # Safety
/// `target` must be an object of `env`, during module initialization.
pub unsafe fn define_functions(env: sys::napi_env, target: RawValue) -> napi::Result<()> {
    let functions: [(&CStr, RawCallback); _] = [
        (c"namespace", wa_namespace),
        (c"validate", wa_validate),
        (c"compile", wa_compile),
        (c"compileAsync", wa_compile_async),
        (c"moduleImports", wa_module_imports),
        (c"moduleExports", wa_module_exports),
        (c"instantiate", wa_instantiate),
        (c"hostFunc", wa_host_func),
        (c"caller", wa_caller),
        (c"call", wa_call),
        (c"memoryNew", wa_memory_new),
        (c"memoryBuffer", wa_memory_buffer),
        (c"memoryGrow", wa_memory_grow),
        (c"memoryType", wa_memory_type),
        (c"tableNew", wa_table_new),
        (c"tableType", wa_table_type),
        (c"tableLength", wa_table_length),
        (c"tableGet", wa_table_get),
        (c"tableSet", wa_table_set),
        (c"tableGrow", wa_table_grow),
        (c"globalNew", wa_global_new),
        (c"globalType", wa_global_type),
        (c"globalGet", wa_global_get),
        (c"globalSet", wa_global_set),
        (c"fuel", wa_fuel),
        (c"tagNew", wa_tag_new),
        (c"tagType", wa_tag_type),
        (c"exceptionNew", wa_exception_new),
        (c"exceptionTag", wa_exception_tag),
        (c"exceptionArg", wa_exception_arg),
        (c"exceptionRelease", wa_exception_release),
        (c"externReleased", wa_extern_released),
    ];
    for (name, callback) in functions {
        let descriptor = sys::napi_property_descriptor {
            utf8name: name.as_ptr(),
            name: ptr::null_mut(),
            method: Some(callback),
            getter: None,
            setter: None,
            value: ptr::null_mut(),
            attributes: sys::PropertyAttributes::writable | sys::PropertyAttributes::configurable,
            data: ptr::null_mut(),
        };
        // SAFETY: forwarded from the caller.
        if unsafe { sys::napi_define_properties(env, target, 1, &descriptor) } != sys::Status::napi_ok {
            return Err(napi::Error::from_reason(format!("defining {name:?} failed")));
        }
    }
    Ok(())
}
