//! The napi glue of `httpHandler()` for a service without JS imports or output callbacks
//! (`ServiceTemplate`): per request an `HttpExchangeCore`, whose guest is instantiated, run and
//! dropped in a tokio task while the JS thread only moves the request's and response's bytes.

use std::any::Any;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use napi::bindgen_prelude::{BufferSlice, Unknown};
use napi::{Env, Result, sys};
use napi_derive::napi;

use super::ComponentCore;
use super::http::{deliver_event, end_stream, error_of_code, new_sink, respond, served_request};
use super::values::undefined;
use crate::component::{HttpEvent, HttpStreams, SERVED, ServedRequest, ServiceTemplate, Unwinding};
use crate::error::SandboxError;
use crate::js::async_calls::{self, AsyncContext, AsyncHost, AsyncQueue, Job, Settled};
use crate::js::errors::OrThrow;
use crate::js::imports::SendlessRef;
use crate::remote::{RemoteLink, ToJs, ToPool};

/// A `wasi:http` service with its instance options, ready to serve requests.
#[napi]
pub struct HttpServiceCore {
    template: Arc<ServiceTemplate>,
}

#[napi]
impl ComponentCore {
    /// The service `httpHandler()` serves requests with when there are no JS imports and no
    /// output callbacks; bad options and a component that is no service throw here.
    #[napi(catch_unwind)]
    pub fn http_service(
        &self,
        env: &Env,
        options: Option<Unknown>,
        allowed_hosts: Option<Vec<String>>,
    ) -> Result<HttpServiceCore> {
        let (limits, _, wasi, output) = crate::js::sandbox::parse_options(env, options).or_throw(env)?;
        if output.stdout.is_some() || output.stderr.is_some() {
            return Err(SandboxError::Internal(
                "streamed output needs an instance per request".to_owned(),
            ))
            .or_throw(env);
        }
        let http = allowed_hosts
            .map(|hosts| crate::component::HostRules::parse(&hosts))
            .transpose()
            .or_throw(env)?;
        let template = ServiceTemplate::new(
            &self.source,
            Arc::clone(&self.prepared),
            limits,
            wasi.unwrap_or_default(),
            http,
        )
        .or_throw(env)?;
        Ok(HttpServiceCore {
            template: Arc::new(template),
        })
    }
}

#[napi]
impl HttpServiceCore {
    /// A new exchange: one request, served by a fresh instance.
    #[napi]
    pub fn exchange(&self) -> HttpExchangeCore {
        HttpExchangeCore {
            host: Rc::new(ServeHost {
                template: Arc::clone(&self.template),
                streams: Arc::default(),
                sink: RefCell::new(None),
                link: RefCell::new(None),
            }),
            queue: Rc::default(),
        }
    }
}

/// One served request (the facade's `HttpLink` drives it as it drives an instance).
#[napi]
pub struct HttpExchangeCore {
    host: Rc<ServeHost>,
    queue: Rc<AsyncQueue>,
}

#[napi]
impl HttpExchangeCore {
    /// Sets the function the guest's HTTP events go to.
    #[napi(catch_unwind)]
    pub fn set_http_sink(&self, env: &Env, sink: Unknown) -> Result<()> {
        *self.host.sink.borrow_mut() = Some(new_sink(env, sink)?);
        Ok(())
    }

    /// Serves the request in a tokio task: a Promise that settles when the guest is done.
    #[napi(catch_unwind)]
    pub fn serve_async<'env>(
        &self,
        env: &'env Env,
        method: String,
        target: String,
        authority: String,
        headers: Vec<String>,
    ) -> Result<Unknown<'env>> {
        let promise = match served_request(method, target, authority, headers) {
            Ok(request) => {
                self.host.streams.open_served();
                let context = AsyncContext {
                    host: Rc::clone(&self.host) as Rc<dyn AsyncHost>,
                    queue: Rc::clone(&self.queue),
                    output: None,
                };
                async_calls::call_async(env, &context, Box::new(request))?
            }
            Err(error) => async_calls::rejected(env, &error)?,
        };
        // SAFETY: created in this env during this call.
        Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), promise) })
    }

    /// Body bytes toward the guest on `stream`; `false`: pause until a `resume` event.
    #[napi]
    pub fn http_push(&self, stream: u32, chunk: BufferSlice) -> bool {
        self.host.streams.push(stream, Bytes::copy_from_slice(&chunk))
    }

    /// The body toward the guest on `stream` ends, with `trailers`, or fails with `error`.
    #[napi(catch_unwind)]
    pub fn http_end(&self, env: &Env, stream: u32, trailers: Option<Vec<String>>, error: Option<String>) -> Result<()> {
        end_stream(env, &self.host.streams, stream, trailers, error)
    }

    /// The response to the guest's outgoing request `id`: its status and `rawHeaders`.
    #[napi(catch_unwind)]
    pub fn http_respond(&self, env: &Env, id: u32, status: u32, headers: Vec<String>) -> Result<()> {
        respond(env, &self.host.streams, id, status, headers)
    }

    /// The guest's outgoing request `id` failed: `code` names the `wasi:http` error-code.
    #[napi]
    pub fn http_reject(&self, id: u32, code: String, message: String) {
        self.host.streams.respond(id, Err(error_of_code(&code, message)));
    }

    /// JS consumed `credit` bytes of the guest's body on `stream`.
    #[napi]
    pub fn http_credit(&self, stream: u32, credit: u32) {
        self.host.streams.credit(stream, credit);
    }

    /// Stops the guest (its client went away, or its body was too large).
    #[napi]
    pub fn interrupt(&self) -> bool {
        self.host.interrupt()
    }

    /// Nothing to release: the guest's store goes with its task.
    #[napi]
    pub fn dispose(&self) {}
}

/// The async host of one exchange.
struct ServeHost {
    template: Arc<ServiceTemplate>,
    streams: Arc<HttpStreams>,
    sink: RefCell<Option<Rc<SendlessRef>>>,
    link: RefCell<Option<Arc<RemoteLink>>>,
}

/// A `data` event of the served response's body.
fn served_data(message: &ToJs) -> bool {
    matches!(message, ToJs::Event(event)
        if matches!(event.downcast_ref::<HttpEvent>(), Some(HttpEvent::Data { stream: SERVED, .. })))
}

/// The `end` event of the served response's body.
fn served_end(message: &ToJs) -> bool {
    matches!(message, ToJs::Event(event)
        if matches!(event.downcast_ref::<HttpEvent>(), Some(HttpEvent::End { stream: SERVED, .. })))
}

/// What a served request's task hands back.
struct Served(wasmtime::Result<()>);

impl AsyncHost for ServeHost {
    fn timeout(&self) -> Option<Duration> {
        self.template.limits().timeout
    }

    fn begin(&self, link: &Arc<RemoteLink>, call: Box<dyn Any>) -> std::result::Result<Job, SandboxError> {
        let request = call
            .downcast::<ServedRequest>()
            .map_err(|_| SandboxError::Internal("an async call of another kind".to_owned()))?;
        *self.link.borrow_mut() = Some(Arc::clone(link));
        if let Some(sink) = self.sink.borrow().as_ref() {
            sink.set_held(true);
        }
        let template = Arc::clone(&self.template);
        let streams = Arc::clone(&self.streams);
        let link = Arc::clone(link);
        Ok(Job::Task(Box::pin(async move {
            let outcome = Unwinding::new(template.serve(*request, link, streams))
                .await
                .unwrap_or_else(|| Err(wasmtime::Error::msg("the host panicked while serving the request")));
            Box::new(Served(outcome)) as Box<dyn Any + Send>
        })))
    }

    fn serve(&self, env: sys::napi_env, message: ToJs) -> Option<Box<dyn Any + Send>> {
        match message {
            ToJs::Event(event) => {
                if let (Ok(event), Some(sink)) = (event.downcast::<HttpEvent>(), self.sink.borrow().clone()) {
                    let mut batch = vec![*event];
                    if matches!(batch[0], HttpEvent::Response { .. })
                        && let Some(link) = self.link.borrow().as_ref()
                    {
                        // A small response's body and end usually follow its head in the same
                        // turn: one JS call for all three.
                        for wanted in [served_data as fn(&ToJs) -> bool, served_end] {
                            if let Some(ToJs::Event(next)) = link.take_to_js_if(wanted)
                                && let Ok(next) = next.downcast::<HttpEvent>()
                            {
                                batch.push(*next);
                            }
                        }
                    }
                    deliver_event(env, &sink, batch);
                }
            }
            ToJs::Finished(outcome) => return Some(outcome),
            // Such a guest has no JS imports; nothing else asks for an answer.
            ToJs::Abandon => {
                if let Some(link) = self.link.borrow().as_ref() {
                    link.send_to_pool(ToPool::Released);
                }
            }
            ToJs::Request(_) | ToJs::Import { .. } | ToJs::CallDone(_) | ToJs::Output => {}
        }
        None
    }

    fn finish(&self, env: &Env, finished: Box<dyn Any + Send>) -> Settled {
        if let Some(sink) = self.sink.borrow().as_ref() {
            sink.set_held(false);
        }
        self.link.borrow_mut().take();
        let outcome = match finished.downcast::<Served>() {
            Ok(served) => served.0,
            Err(_) => Err(wasmtime::Error::msg(
                "a served request finished with an unknown outcome",
            )),
        };
        outcome.map(|()| undefined(env.raw())).map_err(|error| {
            let error = SandboxError::from_call(error).explain_limits(
                self.template.limits().timeout,
                "the guest was interrupted",
                "the guest used up its fuel (give the handler more)",
            );
            (error, None)
        })
    }

    fn interrupt(&self) -> bool {
        match self.link.borrow().as_ref() {
            Some(link) => {
                link.interrupt();
                true
            }
            None => false,
        }
    }
}
