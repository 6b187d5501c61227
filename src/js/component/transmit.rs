//! The napi glue of `stream<u8>` and `future<T>` values (see `component/transmit.rs`): the JS
//! side of each channel is the facade's (`lib/component/transmit.js`), which this glue reaches
//! through one hook function, `hook(op, id, value, message)`:
//!
//! - `'source'` (value): whether `value` can feed a stream (a `ReadableStream`, an async or sync
//!   iterable of byte chunks, a `Uint8Array`);
//! - `'feed'` (id, value): start feeding stream `id` toward the guest from `value`, through
//!   `transmitPush`/`transmitEnd`, pausing when a push returns `false` until `'resume'`;
//! - `'await'` (id, value): settle future `id` toward the guest with `value` once it settles
//!   (`transmitSettle`);
//! - `'readable'` (id) and `'promise'` (id): the JS objects of stream and future `id` toward
//!   JS, fed by `'data'`, `'end'` and `'resolve'` and read through `transmitCredit` and
//!   `transmitCancel`;
//! - `'cancel'` (id): the guest let go of stream or future `id`; `'close'` (id, message): the
//!   call that owned it is over;
//! - `'returned'` (value, message): the running call's value, before its streams end.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ptr;
use std::sync::Arc;

use napi::bindgen_prelude::{BufferSlice, JsValue, Unknown};
use napi::{Env, Result, ValueType, sys};
use napi_derive::napi;
use wasmtime::component::Type;

use super::values::{Cx, Path, describe, get_string, lift, lower, string, undefined};
use super::{AsyncGlue, ComponentInstanceCore, call_js, lift_results};
use crate::component::{Channels, ComponentInstance, TransmitEvent, Value};
use crate::error::{SandboxError, SandboxResult};
use crate::js::errors::OrThrow;
use crate::js::imports::SendlessRef;
use crate::js::values::RawValue;

/// An instance's channels as JS sees them.
pub struct Transmits {
    env: sys::napi_env,
    channels: Arc<Channels>,
    hook: RefCell<Option<SendlessRef>>,
    /// The value types of the futures open, by channel.
    future_types: RefCell<HashMap<u32, Type>>,
    /// Outcomes of futures toward JS that came before the value holding them was lifted.
    early: RefCell<HashMap<u32, std::result::Result<Value, String>>>,
}

impl Transmits {
    pub fn new(env: sys::napi_env, channels: Arc<Channels>) -> Self {
        Self {
            env,
            channels,
            hook: RefCell::new(None),
            future_types: RefCell::default(),
            early: RefCell::default(),
        }
    }

    pub fn channels(&self) -> &Arc<Channels> {
        &self.channels
    }

    /// Calls the facade's hook: its value, or an error if there is no hook or it threw.
    fn call(&self, op: &str, id: u32, value: Option<RawValue>, message: Option<&str>) -> SandboxResult<RawValue> {
        let env = self.env;
        let hook = self.hook.borrow().as_ref().and_then(SendlessRef::value);
        let Some(hook) = hook else {
            return Err(SandboxError::Internal(
                "streams and futures need the facade's hook".to_owned(),
            ));
        };
        let mut id_value = ptr::null_mut();
        // SAFETY: the JS thread of `env`.
        unsafe { sys::napi_create_uint32(env, id, &mut id_value) };
        let message = match message {
            Some(message) => string(env, message)?,
            None => undefined(env),
        };
        let args = [
            string(env, op)?,
            id_value,
            value.unwrap_or_else(|| undefined(env)),
            message,
        ];
        call_js(env, hook, &args)
            .map_err(|_| SandboxError::Internal(format!("the facade's stream hook threw on '{op}'")))
    }

    fn truthy(&self, value: RawValue) -> bool {
        let mut result = false;
        // SAFETY: a value of this env.
        unsafe { sys::napi_get_value_bool(self.env, value, &mut result) };
        result
    }

    /// Lowers a JS stream source into a `stream<u8>` toward the guest.
    pub fn lower_stream(&self, cx: &mut Cx, value: RawValue, path: &Path) -> SandboxResult<Value> {
        if !self.truthy(self.call("source", 0, Some(value), None)?) {
            return Err(SandboxError::InvalidArgType(format!(
                "{path} must be a stream<u8> source: a ReadableStream, an async or sync iterable of Uint8Array \
                 chunks (a Node Readable is one), or a Uint8Array. Received {}",
                describe(self.env, value)
            )));
        }
        let (id, stream) = self
            .channels
            .stream_to_guest(cx.store()?)
            .map_err(|error| SandboxError::Internal(format!("{path}: {error:#}")))?;
        self.call("feed", id, Some(value), None)?;
        Ok(Value::Stream(crate::component::Transmit::Wasm(stream)))
    }

    /// Lowers a value or a Promise of it into a `future<T>` toward the guest.
    pub fn lower_future(&self, cx: &mut Cx, value: RawValue, payload: Type) -> SandboxResult<Value> {
        let (id, future) = self
            .channels
            .future_to_guest(cx.store()?)
            .map_err(|error| SandboxError::Internal(format!("{error:#}")))?;
        self.future_types.borrow_mut().insert(id, payload);
        self.call("await", id, Some(value), None)?;
        Ok(Value::Future(crate::component::Transmit::Wasm(future)))
    }

    /// The `ReadableStream` of stream `id` toward JS.
    pub fn lift_stream(&self, id: u32) -> SandboxResult<RawValue> {
        self.call("readable", id, None, None)
    }

    /// The Promise of future `id` toward JS.
    pub fn lift_future(&self, cx: &mut Cx, id: u32, payload: Type) -> SandboxResult<RawValue> {
        let promise = self.call("promise", id, None, None)?;
        match self.early.borrow_mut().remove(&id) {
            Some(outcome) => self.settle_promise(cx, id, &payload, outcome),
            None => {
                self.future_types.borrow_mut().insert(id, payload);
            }
        }
        Ok(promise)
    }

    /// Settles the Promise of future `id` with its outcome, lifted to JS.
    fn settle_promise(&self, cx: &mut Cx, id: u32, payload: &Type, outcome: std::result::Result<Value, String>) {
        let lifted =
            outcome.and_then(|value| lift(cx, value, payload, &Path::Value).map_err(|error| error.to_string()));
        let _ = match lifted {
            Ok(value) => self.call("resolve", id, Some(value), None),
            Err(message) => self.call("reject", id, None, Some(&message)),
        };
    }

    /// A future toward JS settled: its Promise settles, or will once it exists.
    fn future_settled(&self, env: &Env, glue: &AsyncGlue, id: u32, outcome: std::result::Result<Value, String>) {
        let ty = self.future_types.borrow_mut().remove(&id);
        match ty {
            Some(ty) => {
                let mut cx = Cx::detached(env.raw(), &glue.resources, Some(self));
                self.settle_promise(&mut cx, id, &ty, outcome);
            }
            None => {
                self.early.borrow_mut().insert(id, outcome);
            }
        }
    }

    /// Hands one of the guest's channel events to the facade (a hook that fails is the facade's
    /// bug: the event is dropped).
    fn deliver(&self, env: &Env, glue: &AsyncGlue, core: &ComponentInstance, event: TransmitEvent) {
        match event {
            TransmitEvent::Data { id, bytes } => {
                if let Ok(chunk) = BufferSlice::copy_from(env, &bytes) {
                    let _ = self.call("data", id, Some(chunk.raw()), None);
                }
            }
            TransmitEvent::End { id, error } => {
                let _ = self.call("end", id, None, error.as_deref());
            }
            TransmitEvent::Rejected { id, error } => self.future_settled(env, glue, id, Err(error)),
            TransmitEvent::Resolved { id, value } => self.future_settled(env, glue, id, Ok(value)),
            TransmitEvent::Cancel { id } => {
                self.future_types.borrow_mut().remove(&id);
                let _ = self.call("cancel", id, None, None);
            }
            TransmitEvent::Resume { id } => {
                let _ = self.call("resume", id, None, None);
            }
            TransmitEvent::Returned { index, value } => {
                let lifted = core
                    .functions()
                    .get(index)
                    .ok_or_else(|| SandboxError::Internal(format!("no exported function #{index}")))
                    .and_then(|function| lift_results(env.raw(), &glue.resources, function, None, Some(self), value));
                match lifted {
                    Ok(value) => {
                        let _ = self.call("returned", 0, Some(value), None);
                    }
                    Err(error) => {
                        // Nobody can read the call's streams: they end, and so does the call.
                        let _ = self.call("returned", 0, None, Some(&error.to_string()));
                        self.close_all(&error);
                    }
                }
            }
        }
    }

    /// The end of a call: its channels still open are closed, on both sides; JS's ends fail
    /// with `error` (its message and code).
    pub fn close_all(&self, error: &SandboxError) {
        let ids = self.channels.close_all();
        if ids.is_empty() {
            return;
        }
        let message = error.to_string();
        let code = string(self.env, error.code()).ok();
        for id in ids {
            self.future_types.borrow_mut().remove(&id);
            self.early.borrow_mut().remove(&id);
            let _ = self.call("close", id, code, Some(&message));
        }
    }
}

impl AsyncGlue {
    /// Hands one of the guest's channel events to the facade (in a handle scope of its own).
    pub(super) fn deliver_transmit(&self, env: sys::napi_env, core: &ComponentInstance, event: TransmitEvent) {
        let mut scope = ptr::null_mut();
        // SAFETY: the JS thread, serving its event loop.
        if unsafe { sys::napi_open_handle_scope(env, &mut scope) } != sys::Status::napi_ok {
            return;
        }
        self.transmits.deliver(&Env::from(env), self, core, event);
        // SAFETY: closes the scope opened above.
        unsafe { sys::napi_close_handle_scope(env, scope) };
    }
}

#[napi]
impl ComponentInstanceCore {
    /// Sets the facade's stream and future hook (see `transmit.rs`).
    #[napi(catch_unwind)]
    pub fn set_transmit_hook(&self, env: &Env, hook: Unknown) -> Result<()> {
        if hook.get_type()? != ValueType::Function {
            return Err(SandboxError::Internal(
                "the transmit hook must be a function".to_owned(),
            ))
            .or_throw(env);
        }
        // SAFETY: a function of this env, released on this thread with the instance. Weak: the
        // hook holds the instance, and the facade keeps the hook with the instance object.
        let hook = unsafe { SendlessRef::weak(env.raw(), hook.raw()) }
            .ok_or_else(|| SandboxError::Internal("could not reference the transmit hook".to_owned()))
            .or_throw(env)?;
        *self.glue.transmits.hook.borrow_mut() = Some(hook);
        Ok(())
    }

    /// The call indexes of the exported functions that pass streams or futures (called async).
    #[napi]
    pub fn transmitting(&self) -> Vec<u32> {
        self.core.as_ref().map_or_else(Vec::new, |core| {
            (0u32..)
                .zip(core.functions())
                .filter_map(|(index, function)| function.transmits.then_some(index))
                .collect()
        })
    }

    /// Whether streams or futures can cross between this instance and JS: only then does the
    /// facade set up their hook and its path for calls whose value may come early.
    #[napi(getter)]
    pub fn passes_transmits(&self) -> bool {
        self.core.as_ref().is_some_and(|core| core.passes_transmits())
    }

    /// Bytes from JS for stream `id` toward the guest; `false`: pause until `'resume'`.
    #[napi]
    pub fn transmit_push(&self, id: u32, chunk: BufferSlice) -> bool {
        self.glue.transmits.channels.push(id, chunk.to_vec())
    }

    /// JS's source of stream `id` ended.
    #[napi]
    pub fn transmit_end(&self, id: u32) {
        self.glue.transmits.channels.end(id);
    }

    /// JS read `bytes` of stream `id`.
    #[napi]
    pub fn transmit_credit(&self, id: u32, bytes: u32) {
        self.glue.transmits.channels.credit(id, bytes as usize);
    }

    /// JS cancelled its reader of stream `id`.
    #[napi]
    pub fn transmit_cancel(&self, id: u32) {
        self.glue.transmits.channels.cancel(id);
    }

    /// JS's value for future `id` toward the guest settled: `ok` with `value`, or rejected with
    /// `value` the reason's message (the guest reading it traps with it).
    #[napi(catch_unwind)]
    pub fn transmit_settle(&self, env: &Env, id: u32, value: Unknown, ok: bool) -> Result<()> {
        let transmits = &self.glue.transmits;
        let Some(ty) = transmits.future_types.borrow_mut().remove(&id) else {
            return Ok(()); // the guest let go of it, or its call is over
        };
        let outcome = if ok {
            let mut cx = Cx::detached(env.raw(), &self.glue.resources, None);
            lower(&mut cx, value.raw(), &ty, &Path::Value).map_err(|error| error.to_string())
        } else {
            Err(format!(
                "its Promise rejected: {}",
                get_string(env.raw(), value.raw()).unwrap_or_default()
            ))
        };
        transmits.channels.settle(id, outcome);
        Ok(())
    }
}
