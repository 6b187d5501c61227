//! Streamed WASI output (`wasi.stdout` / `wasi.stderr` given as functions): the callbacks,
//! called on the JS thread with the guest's chunks as `Buffer`s, in the order it wrote them.
//!
//! The callbacks are referenced weakly, as imports are (the facade keeps them alive with the
//! sandbox), and strongly while an async call runs, so output still arrives when nothing else
//! holds the sandbox.

use std::cell::RefCell;
use std::ptr;
use std::rc::Rc;

use napi::{Env, sys};

use crate::js::errors::throw_with_cause;

use crate::error::SandboxError;
use crate::js::imports::{SendlessRef, exception_message, held_value, hold_any};
use crate::js::values::RawValue;
use crate::wasi::{IN_FLIGHT_BYTES, OutputStreams, StreamKind};

/// The functions the `wasi` option gave for stdout and stderr.
#[derive(Default, Clone, Copy)]
pub struct OutputCallbacks {
    pub stdout: Option<RawValue>,
    pub stderr: Option<RawValue>,
}

/// A guest's streamed output and the callbacks it goes to.
pub struct OutputDelivery {
    streams: OutputStreams,
    /// stdout's and stderr's callbacks, by `StreamKind`.
    callbacks: [Option<SendlessRef>; 2],
    /// What a callback threw, until the call reports it.
    failure: RefCell<Option<(SandboxError, SendlessRef)>>,
    /// The bytes of one delivery, kept allocated between deliveries.
    scratch: RefCell<Vec<u8>>,
}

impl OutputDelivery {
    /// The delivery of a guest whose `streams` exist (a stream was given a callback).
    pub fn new(env: &Env, streams: Option<&OutputStreams>, callbacks: OutputCallbacks) -> Option<Rc<Self>> {
        let streams = streams?.clone();
        let reference = |callback: Option<RawValue>| {
            // SAFETY: a function of this env; the delivery lives and drops on this thread.
            callback.and_then(|function| unsafe { SendlessRef::weak(env.raw(), function) })
        };
        Some(Rc::new(Self {
            streams,
            callbacks: [reference(callbacks.stdout), reference(callbacks.stderr)],
            failure: RefCell::new(None),
            scratch: RefCell::new(Vec::new()),
        }))
    }

    /// The callbacks, for the facade to keep alive with the sandbox.
    pub fn functions(&self) -> Vec<RawValue> {
        self.callbacks.iter().flatten().filter_map(SendlessRef::value).collect()
    }

    /// An async call starts (`true`) or ends (`false`, once for each start): the callbacks are
    /// held strongly meanwhile.
    pub fn hold(&self, held: bool) {
        for callback in self.callbacks.iter().flatten() {
            callback.set_held(held);
        }
    }

    /// JS thread: hands every queued chunk to its callback (consecutive chunks of one stream
    /// together). A callback that throws breaks the pipe: the guest's later writes fail, and
    /// the call reports the exception (`take_failure`).
    pub fn deliver(&self, env: &Env) {
        if !self.streams.has_pending() {
            return;
        }
        // Taken out while the callbacks run: one may call into the sandbox, which delivers again.
        let mut scratch = std::mem::take(&mut *self.scratch.borrow_mut());
        let runs = self.streams.take_into(&mut scratch);
        let mut offset = 0;
        for (kind, length) in runs {
            if !self.call(env, kind, &scratch[offset..offset + length]) {
                break;
            }
            offset += length;
        }
        // A synchronous call's large delivery is not kept allocated.
        if scratch.capacity() <= 4 * IN_FLIGHT_BYTES {
            *self.scratch.borrow_mut() = scratch;
        }
    }

    /// Calls `kind`'s callback with `bytes` as a new `Buffer`; `false` if it threw.
    fn call(&self, env: &Env, kind: StreamKind, bytes: &[u8]) -> bool {
        if bytes.is_empty() || self.failure.borrow().is_some() {
            return true;
        }
        // Collected only if the sandbox itself was: nobody can see the output then.
        let Some(function) = self.callbacks[kind as usize].as_ref().and_then(SendlessRef::value) else {
            return true;
        };
        let raw = env.raw();
        // Each chunk's Buffer in a scope of its own: one delivery may hand over many megabytes,
        // which the callback's caller must be able to collect as soon as it lets go of them.
        let mut scope = ptr::null_mut();
        // SAFETY: the JS thread of this env.
        if unsafe { sys::napi_open_handle_scope(raw, &mut scope) } != sys::Status::napi_ok {
            return true;
        }
        let delivered = self.call_in_scope(env, kind, function, bytes);
        // SAFETY: the scope opened above, innermost.
        unsafe { sys::napi_close_handle_scope(raw, scope) };
        delivered
    }

    fn call_in_scope(&self, env: &Env, kind: StreamKind, function: RawValue, bytes: &[u8]) -> bool {
        let raw = env.raw();
        let mut buffer = ptr::null_mut();
        let mut data = ptr::null_mut();
        let mut global = ptr::null_mut();
        let mut returned = ptr::null_mut();
        // SAFETY: values of this env, on its thread; `bytes` is copied into the new Buffer.
        let status = unsafe {
            sys::napi_get_global(raw, &mut global);
            let created = sys::napi_create_buffer_copy(raw, bytes.len(), bytes.as_ptr().cast(), &mut data, &mut buffer);
            if created != sys::Status::napi_ok {
                return true;
            }
            sys::napi_call_function(raw, global, function, 1, &buffer, &mut returned)
        };
        if status == sys::Status::napi_ok {
            return true;
        }
        let mut exception = ptr::null_mut();
        // SAFETY: the call above failed in this env.
        unsafe { sys::napi_get_and_clear_last_exception(raw, &mut exception) };
        self.streams.break_pipe();
        let stream = match kind {
            StreamKind::Stdout => "stdout",
            StreamKind::Stderr => "stderr",
        };
        let message = if exception.is_null() {
            "JavaScript can no longer run".to_owned()
        } else {
            exception_message(env, exception)
        };
        if let Some(held) = (!exception.is_null()).then(|| hold_any(raw, exception)).flatten() {
            *self.failure.borrow_mut() = Some((SandboxError::OutputCallback { stream, message }, held));
        }
        false
    }

    /// The end of a synchronous call: what the guest wrote goes to its callbacks now (JS could
    /// not run while it ran); a callback that threw is thrown as the call's error.
    pub fn deliver_after_call(&self, env: &Env) -> napi::Result<()> {
        self.deliver(env);
        match self.take_failure() {
            Some((error, cause)) => Err(throw_with_cause(env, &error, cause)),
            None => Ok(()),
        }
    }

    /// The error of a callback that threw during the last call, with the exception.
    pub fn take_failure(&self) -> Option<(SandboxError, Option<RawValue>)> {
        let (error, held) = self.failure.borrow_mut().take()?;
        Some((error, held_value(&held)))
    }
}
