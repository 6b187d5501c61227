//! The napi glue of `wasi:http`: serving one request on an instance (`serveAsync`), the byte
//! streams JS pushes toward the guest, and the guest's events (response heads, body bytes,
//! outgoing requests) handed to the facade's sink function (`lib/component/http.js`).

use std::rc::Rc;

use bytes::Bytes;
use napi::bindgen_prelude::{BufferSlice, JsValue, Object, Unknown};
use napi::{Env, Result, ValueType, sys};
use napi_derive::napi;

use super::{AsyncGlue, ComponentInstanceCore, QueuedCall, call_js};
use crate::component::{Headers, HttpEvent, HttpStreams, ServedRequest, header_map};
use crate::error::SandboxError;
use crate::js::async_calls;
use crate::js::errors::OrThrow;
use crate::js::imports::SendlessRef;

#[napi]
impl ComponentInstanceCore {
    /// Sets the function the guest's HTTP events go to (the facade's dispatcher).
    #[napi(catch_unwind)]
    pub fn set_http_sink(&self, env: &Env, sink: Unknown) -> Result<()> {
        *self.glue.http_sink.borrow_mut() = Some(new_sink(env, sink)?);
        Ok(())
    }

    /// Serves one request with the component's `wasi:http` handler in a task of the addon's
    /// tokio runtime: a Promise that settles when the guest is done. `headers` are Node's `rawHeaders`.
    #[napi(catch_unwind)]
    pub fn serve_async<'env>(
        &self,
        env: &'env Env,
        method: String,
        target: String,
        authority: String,
        headers: Vec<String>,
    ) -> Result<Unknown<'env>> {
        let promise = match self.core.as_ref() {
            Some(core) => match served_request(method, target, authority, headers) {
                Ok(request) => {
                    core.http_streams().open_served();
                    async_calls::call_async(
                        env,
                        &self.async_context(Rc::clone(core)),
                        Box::new(QueuedCall::Serve(request)),
                    )?
                }
                Err(error) => async_calls::rejected(env, &error)?,
            },
            None => async_calls::rejected(env, &SandboxError::Disposed)?,
        };
        // SAFETY: created in this env during this call.
        Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), promise) })
    }

    /// Body bytes toward the guest on `stream`; `false` when JS should pause its source until a
    /// `resume` event.
    #[napi]
    pub fn http_push(&self, stream: u32, chunk: BufferSlice) -> bool {
        match &self.core {
            Some(core) => core.http_streams().push(stream, Bytes::copy_from_slice(&chunk)),
            None => true,
        }
    }

    /// The body toward the guest on `stream` ends, with `trailers` (`rawTrailers`), or fails
    /// with `error`.
    #[napi(catch_unwind)]
    pub fn http_end(&self, env: &Env, stream: u32, trailers: Option<Vec<String>>, error: Option<String>) -> Result<()> {
        match &self.core {
            Some(core) => end_stream(env, core.http_streams(), stream, trailers, error),
            None => Ok(()),
        }
    }

    /// The response to the guest's outgoing request `id`: its status and `rawHeaders`.
    #[napi(catch_unwind)]
    pub fn http_respond(&self, env: &Env, id: u32, status: u32, headers: Vec<String>) -> Result<()> {
        match &self.core {
            Some(core) => respond(env, core.http_streams(), id, status, headers),
            None => Ok(()),
        }
    }

    /// The guest's outgoing request `id` failed: `code` names the `wasi:http` error-code.
    #[napi]
    pub fn http_reject(&self, id: u32, code: String, message: String) {
        if let Some(core) = &self.core {
            core.http_streams().respond(id, Err(error_of_code(&code, message)));
        }
    }

    /// JS consumed `credit` bytes of the guest's body on `stream`.
    #[napi]
    pub fn http_credit(&self, stream: u32, credit: u32) {
        if let Some(core) = &self.core {
            core.http_streams().credit(stream, credit);
        }
    }
}

/// The sink of a guest's HTTP events, referenced weakly: it references the JS object of what
/// holds it, which keeps it alive (a strong reference would be a cycle the GC cannot see
/// through); held strongly during calls (`SendlessRef::set_held`).
pub(super) fn new_sink(env: &Env, sink: Unknown) -> Result<Rc<SendlessRef>> {
    if sink.get_type()? != ValueType::Function {
        return Err(SandboxError::Internal("the HTTP sink must be a function".to_owned())).or_throw(env);
    }
    // SAFETY: a function of this env, released on this thread with its holder.
    let sink = unsafe { SendlessRef::weak(env.raw(), sink.raw()) }
        .ok_or_else(|| SandboxError::Internal("could not reference the HTTP sink".to_owned()))
        .or_throw(env)?;
    Ok(Rc::new(sink))
}

/// A request as Node's server parsed it (`headers` are its `rawHeaders`).
pub(super) fn served_request(
    method: String,
    target: String,
    authority: String,
    headers: Vec<String>,
) -> crate::error::SandboxResult<ServedRequest> {
    pairs(headers).and_then(header_map).map(|headers| ServedRequest {
        method,
        target,
        authority,
        headers,
    })
}

/// Ends the body toward the guest on `stream`: with `trailers`, or failed with `error`.
pub(super) fn end_stream(
    env: &Env,
    streams: &HttpStreams,
    stream: u32,
    trailers: Option<Vec<String>>,
    error: Option<String>,
) -> Result<()> {
    let end = match (error, trailers) {
        (Some(message), _) => Err(http_error(&message)),
        (None, Some(trailers)) if !trailers.is_empty() => Ok(Some(pairs(trailers).and_then(header_map).or_throw(env)?)),
        (None, _) => Ok(None),
    };
    streams.end(stream, end);
    Ok(())
}

/// The head of the response to the guest's outgoing request `id`.
pub(super) fn respond(env: &Env, streams: &HttpStreams, id: u32, status: u32, headers: Vec<String>) -> Result<()> {
    let headers = pairs(headers).and_then(header_map).or_throw(env)?;
    streams.respond(id, Ok((u16::try_from(status).unwrap_or(0), headers)));
    Ok(())
}

/// Node's flat `[name, value, name, value, ...]` as pairs.
fn pairs(flat: Vec<String>) -> crate::error::SandboxResult<Vec<(String, Vec<u8>)>> {
    if !flat.len().is_multiple_of(2) {
        return Err(SandboxError::InvalidArgValue(
            "headers must be a flat list of names and values".to_owned(),
        ));
    }
    let mut pairs = Vec::with_capacity(flat.len() / 2);
    let mut items = flat.into_iter();
    while let (Some(name), Some(value)) = (items.next(), items.next()) {
        pairs.push((name.to_ascii_lowercase(), value.into_bytes()));
    }
    Ok(pairs)
}

fn http_error(message: &str) -> wasmtime_wasi_http::Error {
    if message == "body-size" {
        wasmtime_wasi_http::Error::HttpRequestBodySize(None)
    } else {
        wasmtime_wasi_http::Error::InternalError(Some(message.to_owned()))
    }
}

/// The `wasi:http` error for a failure Node reported (`code` is the facade's classification).
pub(super) fn error_of_code(code: &str, message: String) -> wasmtime_wasi_http::Error {
    use wasmtime_wasi_http::Error;
    match code {
        "denied" => Error::HttpRequestDenied,
        "connection-refused" => Error::ConnectionRefused,
        "connection-terminated" => Error::ConnectionTerminated,
        "connection-timeout" => Error::ConnectionTimeout,
        "dns" => Error::DnsError {
            rcode: Some(message),
            info_code: None,
        },
        "destination-not-found" => Error::DestinationNotFound,
        "destination-unavailable" => Error::DestinationUnavailable,
        "tls-certificate" => Error::TlsCertificateError,
        "tls" => Error::TlsProtocolError,
        "uri-invalid" => Error::HttpRequestUriInvalid,
        "protocol" => Error::HttpProtocolError,
        _ => Error::InternalError(Some(message)),
    }
}

impl AsyncGlue {
    /// Holds the sink strongly while an async call runs, weakly otherwise.
    pub(super) fn hold_http_sink(&self, held: bool) {
        if let Some(sink) = self.http_sink.borrow().as_ref() {
            sink.set_held(held);
        }
    }

    /// Hands one of the guest's HTTP events to the facade's sink.
    pub(super) fn deliver_http(&self, env: sys::napi_env, event: HttpEvent) {
        if let Some(sink) = self.http_sink.borrow().clone() {
            deliver_event(env, &sink, vec![event]);
        }
    }
}

/// Hands the guest's HTTP events to `sink`: one, or a response head with the body events that
/// came with it (`data`, `end`), merged into the `response` event's object.
pub(super) fn deliver_event(env: sys::napi_env, sink: &SendlessRef, events: Vec<HttpEvent>) {
    let handle = Env::from(env);
    let mut scope = std::ptr::null_mut();
    // SAFETY: the JS thread, serving its event loop.
    if unsafe { sys::napi_open_handle_scope(env, &mut scope) } != sys::Status::napi_ok {
        return;
    }
    if let (Ok(object), Some(function)) = (batch_object(&handle, events), sink.value()) {
        // A throwing sink is the facade's bug: its exception is dropped, not left pending.
        let _ = call_js(env, function, &[object]);
    }
    // SAFETY: closes the scope opened above.
    unsafe { sys::napi_close_handle_scope(env, scope) };
}

fn batch_object(env: &Env, events: Vec<HttpEvent>) -> Result<sys::napi_value> {
    let mut object = Object::new(env)?;
    for (index, event) in events.into_iter().enumerate() {
        match event {
            HttpEvent::Data { bytes, credit, .. } if index > 0 => {
                object.set("chunk", &BufferSlice::copy_from(env, &bytes)?)?;
                object.set("credit", credit)?;
            }
            HttpEvent::End { trailers, .. } if index > 0 => {
                object.set("end", true)?;
                object.set("trailers", trailers.map(flat))?;
            }
            event => fill_event(env, &mut object, event)?,
        }
    }
    Ok(object.raw())
}

fn fill_event(env: &Env, object: &mut Object, event: HttpEvent) -> Result<()> {
    match event {
        HttpEvent::Response { status, headers } => {
            object.set("type", "response")?;
            object.set("status", status)?;
            object.set("headers", flat(headers))?;
        }
        HttpEvent::Outgoing {
            id,
            method,
            url,
            headers,
        } => {
            object.set("type", "outgoing")?;
            object.set("id", id)?;
            object.set("method", method)?;
            object.set("url", url)?;
            object.set("headers", flat(headers))?;
        }
        HttpEvent::Data { stream, bytes, credit } => {
            object.set("type", "data")?;
            object.set("stream", stream)?;
            object.set("chunk", &BufferSlice::copy_from(env, &bytes)?)?;
            object.set("credit", credit)?;
        }
        HttpEvent::End { stream, trailers } => {
            object.set("type", "end")?;
            object.set("stream", stream)?;
            object.set("trailers", trailers.map(flat))?;
        }
        HttpEvent::Failed { stream, message } => {
            object.set("type", "failed")?;
            object.set("stream", stream)?;
            object.set("message", message)?;
        }
        HttpEvent::Resume { stream } => {
            object.set("type", "resume")?;
            object.set("stream", stream)?;
        }
    }
    Ok(())
}

/// Header pairs as Node's flat `rawHeaders` (values that are not UTF-8 are decoded lossily).
fn flat(headers: Headers) -> Vec<String> {
    headers
        .into_iter()
        .flat_map(|(name, value)| [name, String::from_utf8_lossy(&value).into_owned()])
        .collect()
}
