//! `wasi:http` for components (WASI 0.2 and 0.3, through wasmtime-wasi-http): which outgoing
//! requests a guest may make, the byte streams between the guest's thread and the JS thread, and
//! serving one incoming request with a `wasi:http` service component.
//!
//! Bytes never cross as JS calls from the guest's thread: the guest's side sends events over the
//! async call's link (`ToJs::Event`), the JS side pushes bytes into `HttpStreams` directly. Both
//! directions hold a bounded number of bytes in flight, so a guest or a peer that does not read
//! stops the writer instead of growing the host's memory.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use tokio::sync::{Semaphore, oneshot};
use wasmtime::component::Instance;
use wasmtime::{AsContextMut, Store};
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpCtx, WasiHttpHooks, WasiHttpView};

use super::instance::ComponentState;
use crate::error::{SandboxError, SandboxResult};
use crate::remote::{RemoteLink, ToJs};

/// A header section as it crosses to JS: names in lower case, values as bytes.
pub type Headers = Vec<(String, Bytes)>;

/// The stream of a served request's body and of its response's body.
pub const SERVED: u32 = 0;

/// Bytes written toward JS and not yet consumed there (per stream).
const OUTBOUND_IN_FLIGHT: usize = 1 << 20;
/// Bytes JS pushed toward the guest that the guest has not read: above this, JS pauses its
/// source; it resumes once the guest has read down to half.
const INBOUND_HIGH_WATER: usize = 256 << 10;

/// What the guest's side tells the JS side of an async call.
pub enum HttpEvent {
    /// The served request's response head.
    Response { status: u16, headers: Headers },
    /// The guest sends a request (stream `id` carries its body, and its response's body back).
    Outgoing {
        id: u32,
        method: String,
        url: String,
        headers: Headers,
    },
    /// Body bytes toward JS; JS gives `credit` back (`HttpStreams::credit`) once it has
    /// consumed them.
    Data { stream: u32, bytes: Bytes, credit: u32 },
    /// The body toward JS ended, with its trailers.
    End { stream: u32, trailers: Option<Headers> },
    /// The body toward JS failed.
    Failed { stream: u32, message: String },
    /// The guest read a paused body below its low-water mark: JS may push again.
    Resume { stream: u32 },
}

/// Which hosts the guest's outgoing requests may reach (`http.allowedHosts`).
#[derive(Clone, Debug, Default)]
pub struct HostRules(Vec<HostRule>);

#[derive(Clone, Debug)]
enum HostRule {
    Any,
    Host { host: String, port: Option<u16> },
}

impl HostRules {
    /// Parses `'*'`, `'api.example.com'` (any port), `'127.0.0.1:8080'`, `'[::1]:80'`,
    /// `'host:*'`.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> SandboxResult<Self> {
        let mut rules = Vec::new();
        for entry in entries {
            let entry = entry.as_ref().trim();
            let invalid = |reason: &str| {
                SandboxError::InvalidArgValue(format!(
                    "http.allowedHosts: {entry:?} is not a host rule ({reason}); write 'api.example.com', \
                     'api.example.com:8080', '127.0.0.1:*', '[::1]:80' or '*'"
                ))
            };
            if entry == "*" {
                rules.push(HostRule::Any);
                continue;
            }
            let (host, port) = split_host_port(entry).ok_or_else(|| invalid("malformed"))?;
            if host.is_empty() || host.contains(['/', '?', '#', '@', ' ']) {
                return Err(invalid("not a host name"));
            }
            let port = match port {
                None | Some("*") => None,
                Some(port) => Some(port.parse::<u16>().map_err(|_| invalid("the port is not 0-65535"))?),
            };
            rules.push(HostRule::Host {
                host: host.to_ascii_lowercase(),
                port,
            });
        }
        Ok(Self(rules))
    }

    /// Whether a request to `host` on `port` is allowed.
    pub fn allows(&self, host: &str, port: u16) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.0.iter().any(|rule| match rule {
            HostRule::Any => true,
            HostRule::Host {
                host: allowed,
                port: allowed_port,
            } => {
                allowed
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .eq_ignore_ascii_case(host)
                    && allowed_port.is_none_or(|allowed| allowed == port)
            }
        })
    }
}

/// `host[:port]`, with `[v6]` brackets.
fn split_host_port(entry: &str) -> Option<(&str, Option<&str>)> {
    if let Some(rest) = entry.strip_prefix('[') {
        let close = rest.find(']')?;
        let host = &entry[..close + 2];
        return match &rest[close + 1..] {
            "" => Some((host, None)),
            port => port.strip_prefix(':').map(|port| (host, Some(port))),
        };
    }
    match entry.rsplit_once(':') {
        Some((host, _)) if host.contains(':') => None,
        Some((host, port)) => Some((host, Some(port))),
        None => Some((entry, None)),
    }
}

/// The per-store state of `wasi:http`.
pub struct HttpState {
    ctx: WasiHttpCtx,
    hooks: HttpHooks,
}

impl HttpState {
    /// `allowed`: `None` denies every outgoing request.
    pub fn new(allowed: Option<HostRules>, streams: Arc<HttpStreams>) -> Self {
        Self {
            ctx: WasiHttpCtx::new(),
            hooks: HttpHooks {
                allowed,
                streams,
                link: None,
            },
        }
    }

    /// The async call's link, while one runs (outgoing requests go to JS through it).
    pub fn set_link(&mut self, link: Option<Arc<RemoteLink>>) {
        self.hooks.link = link;
    }
}

impl WasiHttpView for ComponentState {
    fn http(&mut self) -> wasmtime_wasi_http::WasiHttpCtxView<'_> {
        let (http, table) = self.http_parts();
        wasmtime_wasi_http::WasiHttpCtxView {
            hooks: &mut http.hooks,
            table,
            ctx: &mut http.ctx,
        }
    }
}

struct HttpHooks {
    allowed: Option<HostRules>,
    streams: Arc<HttpStreams>,
    link: Option<Arc<RemoteLink>>,
}

type SendResult = Result<
    (
        http::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ),
    HttpError,
>;

impl WasiHttpHooks for HttpHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        let decision = self.admit(&request);
        let streams = Arc::clone(&self.streams);
        Box::new(async move {
            let link = decision?;
            let (response, pump) = send_through_js(&streams, &link, request).await?;
            let body = response.map(|mut body| {
                body.pump = Some(pump);
                body.boxed_unsync()
            });
            Ok((body, Box::new(async { Ok(()) }) as Box<dyn Future<Output = _> + Send>))
        })
    }
}

impl HttpHooks {
    /// Whether `request` may leave: its host must be allowed, and JS must be reachable.
    fn admit(&self, request: &http::Request<WasiBody>) -> Result<Arc<RemoteLink>, HttpError> {
        let Some(allowed) = &self.allowed else {
            return Err(HttpError::HttpRequestDenied);
        };
        let uri = request.uri();
        let host = uri.host().ok_or(HttpError::HttpRequestUriInvalid)?;
        let https = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        if !allowed.allows(host, port) {
            return Err(HttpError::HttpRequestDenied);
        }
        self.link.clone().ok_or_else(|| {
            HttpError::InternalError(Some(
                "outgoing HTTP requests are sent by Node, which the guest reaches only in callAsync(), runAsync() \
                 and httpHandler()"
                    .to_owned(),
            ))
        })
    }
}

/// Has JS send `request` (Node's HTTP client, or the embedder's `fetch`) and waits for the
/// response's head; the request's body is pumped to JS meanwhile.
async fn send_through_js(
    streams: &Arc<HttpStreams>,
    link: &Arc<RemoteLink>,
    request: http::Request<WasiBody>,
) -> Result<
    (
        http::Response<InboundBody>,
        wasmtime_wasi::runtime::AbortOnDropJoinHandle<()>,
    ),
    HttpError,
> {
    let id = streams.open_exchange();
    let (parts, body) = request.into_parts();
    let (head_sender, head) = oneshot::channel();
    streams.lock().responses.insert(id, head_sender);
    let inbound = InboundBody::open(streams, link, id);
    link.send_to_js(ToJs::Event(Box::new(HttpEvent::Outgoing {
        id,
        method: parts.method.to_string(),
        url: parts.uri.to_string(),
        headers: headers_of(&parts.headers),
    })));
    let credit = streams.open_outbound(id);
    let pump_link = Arc::clone(link);
    let pump = wasmtime_wasi::runtime::spawn(async move {
        // A body the guest fails is reported to JS, which aborts the request.
        let _ = pump_to_js(body, id, &pump_link, &credit).await;
    });
    let (status, headers) = match head.await {
        Ok(head) => head?,
        Err(_) => return Err(HttpError::ConnectionTerminated),
    };
    let mut response = http::Response::new(inbound);
    *response.status_mut() = http::StatusCode::from_u16(status).map_err(|_| HttpError::HttpProtocolError)?;
    *response.headers_mut() = headers;
    Ok((response, pump))
}

/// The streams of one instance's exchanges with JS, shared by its store and its JS glue.
#[derive(Default)]
pub struct HttpStreams {
    inner: Mutex<Streams>,
}

type Head = Result<(u16, HeaderMap), HttpError>;

#[derive(Default)]
struct Streams {
    next_id: u32,
    inbound: HashMap<u32, Arc<Mutex<Inbound>>>,
    outbound: HashMap<u32, Arc<Semaphore>>,
    responses: HashMap<u32, oneshot::Sender<Head>>,
}

/// A body JS pushes toward the guest.
#[derive(Default)]
struct Inbound {
    chunks: VecDeque<Bytes>,
    queued: usize,
    /// How it ended: trailers, or an error; `None` while open.
    ended: Option<Result<Option<HeaderMap>, HttpError>>,
    /// Delivered its end to the guest.
    done: bool,
    waker: Option<Waker>,
    paused: bool,
}

impl HttpStreams {
    fn lock(&self) -> MutexGuard<'_, Streams> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn open_exchange(&self) -> u32 {
        let mut streams = self.lock();
        streams.next_id = streams.next_id.wrapping_add(1).max(1);
        streams.next_id
    }

    fn open_outbound(&self, stream: u32) -> Arc<Semaphore> {
        let credit = Arc::new(Semaphore::new(OUTBOUND_IN_FLIGHT));
        self.lock().outbound.insert(stream, Arc::clone(&credit));
        credit
    }

    /// JS thread: body bytes toward the guest. `false`: JS should pause its source until a
    /// `Resume` event.
    pub fn push(&self, stream: u32, bytes: Bytes) -> bool {
        let Some(inbound) = self.lock().inbound.get(&stream).cloned() else {
            return true; // the guest stopped reading: the bytes are dropped
        };
        let mut inbound = lock(&inbound);
        if inbound.ended.is_some() {
            return true;
        }
        inbound.queued += bytes.len();
        inbound.chunks.push_back(bytes);
        if let Some(waker) = inbound.waker.take() {
            waker.wake();
        }
        inbound.paused = inbound.queued > INBOUND_HIGH_WATER;
        !inbound.paused
    }

    /// JS thread: the body toward the guest ends (`Ok` with trailers) or fails.
    pub fn end(&self, stream: u32, end: Result<Option<HeaderMap>, HttpError>) {
        let Some(inbound) = self.lock().inbound.get(&stream).cloned() else {
            return;
        };
        let mut inbound = lock(&inbound);
        if inbound.ended.is_none() {
            inbound.ended = Some(end);
        }
        if let Some(waker) = inbound.waker.take() {
            waker.wake();
        }
    }

    /// JS thread: the head of the response to outgoing request `id`, or why there is none.
    pub fn respond(&self, id: u32, head: Head) {
        let failed = head.as_ref().err().map(|error| error.to_string());
        if let Some(sender) = self.lock().responses.remove(&id) {
            let _ = sender.send(head);
        }
        if let Some(message) = failed {
            self.end(id, Err(HttpError::InternalError(Some(message))));
        }
    }

    /// JS thread: it consumed `credit` bytes of stream `stream` toward it.
    pub fn credit(&self, stream: u32, credit: u32) {
        if let Some(semaphore) = self.lock().outbound.get(&stream) {
            semaphore.add_permits(credit as usize);
        }
    }

    /// JS thread, before a request is served: its body's stream is open from here (JS pushes
    /// to it before the guest's thread gets to it).
    pub fn open_served(&self) {
        self.lock().inbound.insert(SERVED, Arc::default());
        self.open_outbound(SERVED);
    }

    /// The served request's streams, as `open_served` opened them.
    fn served(&self) -> Option<(Arc<Mutex<Inbound>>, Arc<Semaphore>)> {
        let streams = self.lock();
        Some((
            Arc::clone(streams.inbound.get(&SERVED)?),
            Arc::clone(streams.outbound.get(&SERVED)?),
        ))
    }
}

fn lock(inbound: &Mutex<Inbound>) -> MutexGuard<'_, Inbound> {
    inbound.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The guest's side of a body JS pushes.
pub struct InboundBody {
    inbound: Arc<Mutex<Inbound>>,
    streams: Arc<HttpStreams>,
    link: Arc<RemoteLink>,
    stream: u32,
    /// The task pumping the request's body to JS, for a response's body: it ends with it.
    pump: Option<wasmtime_wasi::runtime::AbortOnDropJoinHandle<()>>,
}

impl InboundBody {
    fn open(streams: &Arc<HttpStreams>, link: &Arc<RemoteLink>, stream: u32) -> Self {
        let inbound = Arc::new(Mutex::new(Inbound::default()));
        streams.lock().inbound.insert(stream, Arc::clone(&inbound));
        Self::attach(streams, link, stream, inbound)
    }

    fn attach(streams: &Arc<HttpStreams>, link: &Arc<RemoteLink>, stream: u32, inbound: Arc<Mutex<Inbound>>) -> Self {
        Self {
            inbound,
            streams: Arc::clone(streams),
            link: Arc::clone(link),
            stream,
            pump: None,
        }
    }
}

impl Drop for InboundBody {
    fn drop(&mut self) {
        let mut streams = self.streams.lock();
        if streams
            .inbound
            .get(&self.stream)
            .is_some_and(|inbound| Arc::ptr_eq(inbound, &self.inbound))
        {
            streams.inbound.remove(&self.stream);
        }
    }
}

impl Body for InboundBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let this = self.get_mut();
        let mut inbound = lock(&this.inbound);
        if let Some(chunk) = inbound.chunks.pop_front() {
            inbound.queued -= chunk.len();
            let resume = inbound.paused && inbound.queued <= INBOUND_HIGH_WATER / 2;
            if resume {
                inbound.paused = false;
            }
            drop(inbound);
            if resume {
                this.link
                    .send_to_js(ToJs::Event(Box::new(HttpEvent::Resume { stream: this.stream })));
            }
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        if inbound.done {
            return Poll::Ready(None);
        }
        match inbound.ended.take() {
            Some(Ok(trailers)) => {
                inbound.done = true;
                Poll::Ready(trailers.map(|trailers| Ok(Frame::trailers(trailers))))
            }
            Some(Err(error)) => {
                inbound.done = true;
                Poll::Ready(Some(Err(error)))
            }
            None => {
                inbound.waker = Some(context.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// Sends `body`'s frames to JS as stream `stream`, holding at most `OUTBOUND_IN_FLIGHT` bytes
/// JS has not consumed.
async fn pump_to_js<B>(body: B, stream: u32, link: &RemoteLink, credit: &Semaphore) -> Result<(), String>
where
    B: Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    let mut body = std::pin::pin!(body);
    let mut trailers = None;
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(frame) => frame,
            Err(error) => {
                let message = error.to_string();
                link.send_to_js(ToJs::Event(Box::new(HttpEvent::Failed {
                    stream,
                    message: message.clone(),
                })));
                return Err(message);
            }
        };
        match frame.into_data() {
            Ok(bytes) if bytes.is_empty() => {}
            Ok(bytes) => {
                let wanted = bytes.len().min(OUTBOUND_IN_FLIGHT) as u32;
                match credit.acquire_many(wanted).await {
                    Ok(permit) => permit.forget(),
                    Err(_) => return Err("the stream was closed".to_owned()),
                }
                link.send_to_js(ToJs::Event(Box::new(HttpEvent::Data {
                    stream,
                    bytes,
                    credit: wanted,
                })));
            }
            Err(frame) => {
                if let Ok(found) = frame.into_trailers() {
                    trailers = Some(headers_of(&found));
                }
            }
        }
    }
    link.send_to_js(ToJs::Event(Box::new(HttpEvent::End { stream, trailers })));
    Ok(())
}

fn headers_of(headers: &HeaderMap) -> Headers {
    headers
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), Bytes::copy_from_slice(value.as_bytes())))
        .collect()
}

/// Builds a header map from JS's `[name, value]` pairs; an invalid pair is a `RangeError`.
pub fn header_map(pairs: Vec<(String, Vec<u8>)>) -> SandboxResult<HeaderMap> {
    let mut headers = HeaderMap::with_capacity(pairs.len());
    for (name, value) in pairs {
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| SandboxError::InvalidArgValue(format!("{name:?} is not a valid HTTP header name")))?;
        let value = HeaderValue::from_bytes(&value)
            .map_err(|_| SandboxError::InvalidArgValue(format!("the value of header {name:?} is not valid")))?;
        headers.append(header, value);
    }
    Ok(headers)
}

/// Which `wasi:http` handler a component exports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceKind {
    /// `wasi:http/incoming-handler@0.2.x`
    P2,
    /// `wasi:http/handler@0.3.x`
    P3,
}

impl ServiceKind {
    /// The handler among a component's exports, if any (WASI 0.3's first).
    pub fn of_export(name: &str) -> Option<Self> {
        if name.starts_with("wasi:http/handler@0.3") {
            Some(Self::P3)
        } else if name.starts_with("wasi:http/incoming-handler@0.2") {
            Some(Self::P2)
        } else {
            None
        }
    }
}

/// A request to serve, as Node's server parsed it.
pub struct ServedRequest {
    pub method: String,
    /// The request target (`/path?query`).
    pub target: String,
    /// `Host`, or the server's own address.
    pub authority: String,
    pub headers: HeaderMap,
}

/// Serves `request` with the service `instance` exports, on this (the guest's) thread, inside
/// the tokio runtime: the response's head and body go to JS over `link` as they come.
pub async fn serve(
    store: &mut Store<ComponentState>,
    instance: &Instance,
    kind: ServiceKind,
    request: ServedRequest,
    link: &Arc<RemoteLink>,
) -> wasmtime::Result<()> {
    let streams = Arc::clone(store.data().http_streams());
    let (inbound, credit) = streams
        .served()
        .ok_or_else(|| wasmtime::Error::msg("a request to serve without its streams"))?;
    let body = InboundBody::attach(&streams, link, SERVED, inbound);
    let uri = http::Uri::builder()
        .scheme("http")
        .authority(request.authority.as_str())
        .path_and_query(request.target.as_str())
        .build()
        .map_err(|error| wasmtime::Error::msg(format!("the request's target is not a URI: {error}")))?;
    let method = http::Method::from_bytes(request.method.as_bytes())
        .map_err(|_| wasmtime::Error::msg(format!("{:?} is not an HTTP method", request.method)))?;
    let mut incoming = http::Request::new(body);
    *incoming.method_mut() = method;
    *incoming.uri_mut() = uri;
    *incoming.headers_mut() = request.headers;
    match kind {
        ServiceKind::P2 => serve_p2(store, instance, incoming, link, &credit).await,
        ServiceKind::P3 => serve_p3(store, instance, incoming, link, credit).await,
    }
}

/// The response head to JS, then its body.
async fn deliver<B>(response: http::Response<B>, link: &RemoteLink, credit: &Semaphore) -> wasmtime::Result<()>
where
    B: Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    let (parts, body) = response.into_parts();
    link.send_to_js(ToJs::Event(Box::new(HttpEvent::Response {
        status: parts.status.as_u16(),
        headers: headers_of(&parts.headers),
    })));
    pump_to_js(body, SERVED, link, credit)
        .await
        .map_err(|message| wasmtime::Error::msg(format!("the response body failed: {message}")))
}

async fn serve_p2(
    store: &mut Store<ComponentState>,
    instance: &Instance,
    request: http::Request<InboundBody>,
    link: &Arc<RemoteLink>,
    credit: &Semaphore,
) -> wasmtime::Result<()> {
    use wasmtime_wasi_http::p2::bindings::Proxy;
    use wasmtime_wasi_http::p2::bindings::http::types::Scheme;

    let proxy = Proxy::new(&mut *store, instance)?;
    let (sender, receiver) = oneshot::channel();
    let request = store.data_mut().http().new_incoming_request(Scheme::Http, request)?;
    let outparam = store.data_mut().http().new_response_outparam(sender)?;
    let call = proxy
        .wasi_http_incoming_handler()
        .call_handle(store.as_context_mut(), request, outparam);
    let head_seen = std::sync::atomic::AtomicBool::new(false);
    let respond = async {
        let head = receiver.await;
        head_seen.store(true, std::sync::atomic::Ordering::Relaxed);
        match head {
            Ok(Ok(response)) => deliver(response, link, credit).await,
            Ok(Err(code)) => Err(wasmtime::Error::msg(format!(
                "the guest answered with the error {code:?}"
            ))),
            Err(_) => Err(wasmtime::Error::msg(NO_RESPONSE)),
        }
    };
    let mut call = std::pin::pin!(call);
    let mut respond = std::pin::pin!(respond);
    let mut called = false;
    std::future::poll_fn(|context| {
        if !called && let Poll::Ready(outcome) = call.as_mut().poll(context) {
            outcome?;
            called = true;
        }
        match respond.as_mut().poll(context) {
            Poll::Ready(outcome) => Poll::Ready(outcome),
            // The guest returned without setting the response (its outparam is in the store,
            // so the channel stays open): it never will.
            Poll::Pending if called && !head_seen.load(std::sync::atomic::Ordering::Relaxed) => {
                Poll::Ready(Err(wasmtime::Error::msg(NO_RESPONSE)))
            }
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

const NO_RESPONSE: &str = "the guest returned without setting a response";

async fn serve_p3(
    store: &mut Store<ComponentState>,
    instance: &Instance,
    request: http::Request<InboundBody>,
    link: &Arc<RemoteLink>,
    credit: Arc<Semaphore>,
) -> wasmtime::Result<()> {
    use wasmtime_wasi_http::p3::bindings::Service;

    let service = Service::new(&mut *store, instance)?;
    let link = Arc::clone(link);
    store
        .run_concurrent(async move |accessor| -> wasmtime::Result<()> {
            let (parts, body) = request.into_parts();
            let headers = accessor.with(|mut access| {
                wasmtime_wasi_http::FieldMap::new_immutable(access.get().http().hooks, parts.headers)
            });
            let uri = parts.uri.into_parts();
            let (request, io) = wasmtime_wasi_http::p3::Request::new(
                parts.method,
                uri.scheme,
                uri.authority,
                uri.path_and_query,
                headers,
                None,
                body,
            );
            let response = service
                .handle(accessor, request)
                .await?
                .map_err(|code| wasmtime::Error::msg(format!("the guest answered with the error {code:?}")))?;
            let response = accessor.with(|mut access| response.into_http(&mut access, io))?;
            deliver(response, &link, &credit).await
        })
        .await?
}
