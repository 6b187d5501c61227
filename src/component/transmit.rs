//! `stream<u8>` and `future<T>` values between a guest and JS, through wasmtime's host ends of
//! streams and futures. Each value that crosses gets a channel, known to JS by a number:
//!
//! - toward the guest, JS pushes bytes (a stream) or settles a value (a future) from the JS
//!   thread; the guest takes them when its event loop reads (`Inflow`, `Promised`);
//! - toward JS, the guest's writes become events to the JS thread (`TransmitEvent`), a stream's
//!   bytes only as far as JS has granted credit by reading, so a guest writing to a stream nobody
//!   reads waits instead of growing the host's memory (`Outflow`, `Awaited`).
//!
//! A channel belongs to the async call that opened it: the call goes on (its store's event loop
//! runs) until every channel has ended, and channels still open when the call ends are failed.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use wasmtime::component::{
    Destination, FutureConsumer, FutureProducer, FutureReader, Source, StreamAny, StreamConsumer, StreamProducer,
    StreamReader, StreamResult, VecBuffer,
};
use wasmtime::{AsContextMut, StoreContextMut, format_err};

use super::abi::{Payload, Transmit, Value};
use super::instance::ComponentState;
use crate::remote::{RemoteLink, ToJs};

/// Bytes JS may push toward a guest that it has not read, before JS is asked to pause.
const INFLOW_HIGH_WATER: usize = 1 << 20;
/// Bytes of a guest's stream that may be on their way to JS before JS reads them: the credit a
/// stream toward JS starts with.
const OUTFLOW_WINDOW: usize = 1 << 20;

/// What the JS thread is told about channels.
pub enum TransmitEvent {
    /// Bytes of stream `id`, toward JS.
    Data { id: u32, bytes: Vec<u8> },
    /// Stream `id` toward JS ended; `error` says why it was cut short.
    End { id: u32, error: Option<String> },
    /// Future `id` toward JS ended without a value.
    Rejected { id: u32, error: String },
    /// Future `id` toward JS has its value.
    Resolved { id: u32, value: Value },
    /// The guest let go of stream or future `id` from JS: JS stops feeding it.
    Cancel { id: u32 },
    /// JS may push to stream `id` again.
    Resume { id: u32 },
    /// The call of export `index` returned `value`, which holds channels still open: the call
    /// goes on until they end, but its value is JS's now.
    Returned { index: usize, value: Option<Value> },
}

/// The channels of one instance, shared by its store (the guest's side) and its JS glue.
#[derive(Default)]
pub struct Channels {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    next_id: u32,
    open: HashMap<u32, Channel>,
    /// The running async call's way to the JS thread.
    link: Option<Arc<RemoteLink>>,
    /// Woken when the last channel ends (the end of a call waiting for its channels).
    idle: Option<Waker>,
}

enum Channel {
    Inflow(Arc<Mutex<Inflow>>),
    Outflow(Arc<Mutex<Outflow>>),
    Promised(Arc<Mutex<Promised>>),
    Awaited,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves its state consistent.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Channels {
    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    fn open(&self, channel: Channel) -> u32 {
        let mut state = self.state();
        loop {
            state.next_id = state.next_id.wrapping_add(1).max(1);
            let id = state.next_id;
            if let std::collections::hash_map::Entry::Vacant(slot) = state.open.entry(id) {
                slot.insert(channel);
                return id;
            }
        }
    }

    /// Ends channel `id` (if open), waking a call waiting for its last channel.
    fn close(&self, id: u32) -> bool {
        let mut state = self.state();
        let closed = state.open.remove(&id).is_some();
        if state.open.is_empty()
            && let Some(waker) = state.idle.take()
        {
            waker.wake();
        }
        closed
    }

    fn is_open(&self, id: u32) -> bool {
        self.state().open.contains_key(&id)
    }

    /// Sends `event` to the JS thread, if a call is running.
    pub fn send(&self, event: TransmitEvent) {
        let link = self.state().link.clone();
        if let Some(link) = link {
            link.send_to_js(ToJs::Event(Box::new(event)));
        }
    }

    /// The running async call's link (`None` between calls).
    pub fn set_link(&self, link: Option<Arc<RemoteLink>>) {
        self.state().link = link;
    }

    pub fn is_empty(&self) -> bool {
        self.state().open.is_empty()
    }

    /// Resolves when every channel has ended.
    pub async fn settled(&self) {
        std::future::poll_fn(|context| {
            let mut state = self.state();
            if state.open.is_empty() {
                return Poll::Ready(());
            }
            state.idle = Some(context.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// The end of a call: every channel still open is closed (its host end, if the guest still
    /// holds it, reports the stream ended); their numbers, for JS to fail them.
    pub fn close_all(&self) -> Vec<u32> {
        let (open, idle) = {
            let mut state = self.state();
            (std::mem::take(&mut state.open), state.idle.take())
        };
        // A call waiting for its last channel (`settled`) ends now, as `close` would end it.
        if let Some(waker) = idle {
            waker.wake();
        }
        let mut ids = Vec::with_capacity(open.len());
        for (id, channel) in open {
            ids.push(id);
            match channel {
                Channel::Inflow(flow) => {
                    let mut flow = lock(&flow);
                    flow.closed = true;
                    flow.wake();
                }
                Channel::Outflow(flow) => {
                    let mut flow = lock(&flow);
                    flow.cancelled = true;
                    if let Some(waker) = flow.waker.take() {
                        waker.wake();
                    }
                }
                Channel::Promised(promised) => {
                    let mut promised = lock(&promised);
                    promised.closed = true;
                    if let Some(waker) = promised.waker.take() {
                        waker.wake();
                    }
                }
                Channel::Awaited => {}
            }
        }
        ids
    }

    // The JS thread's side.

    /// A stream toward the guest, fed by JS: its number and the guest's readable end.
    pub fn stream_to_guest(
        self: &Arc<Self>,
        store: impl AsContextMut<Data = ComponentState>,
    ) -> wasmtime::Result<(u32, StreamAny)> {
        let flow = Arc::new(Mutex::new(Inflow::default()));
        let id = self.open(Channel::Inflow(Arc::clone(&flow)));
        let producer = InflowProducer {
            id,
            flow,
            channels: Arc::clone(self),
        };
        let mut store = store;
        let opened = StreamReader::<u8>::new(&mut store, producer)
            .and_then(|reader| StreamAny::try_from_stream_reader(&mut store, reader));
        if opened.is_err() {
            self.close(id);
        }
        opened.map(|stream| (id, stream))
    }

    /// A future toward the guest, settled by JS: its number and the guest's readable end.
    pub fn future_to_guest(
        self: &Arc<Self>,
        store: impl AsContextMut<Data = ComponentState>,
    ) -> wasmtime::Result<(u32, wasmtime::component::FutureAny)> {
        let promised = Arc::new(Mutex::new(Promised::default()));
        let id = self.open(Channel::Promised(Arc::clone(&promised)));
        let producer = PromisedProducer {
            id,
            promised,
            channels: Arc::clone(self),
        };
        let mut store = store;
        let opened = FutureReader::<Payload>::new(&mut store, producer)
            .and_then(|reader| wasmtime::component::FutureAny::try_from_future_reader(&mut store, reader));
        if opened.is_err() {
            self.close(id);
        }
        opened.map(|future| (id, future))
    }

    /// JS pushes `bytes` to stream `id`; `false`: pause until a `Resume` event.
    pub fn push(&self, id: u32, bytes: Vec<u8>) -> bool {
        let Some(Channel::Inflow(flow)) = self.state().open.get(&id).map(Channel::share) else {
            return true; // the guest let go of it: the bytes are dropped (JS was told to stop)
        };
        let mut flow = lock(&flow);
        if flow.ended || bytes.is_empty() {
            return !flow.paused;
        }
        flow.queued += bytes.len();
        flow.chunks.push_back(bytes);
        flow.wake();
        flow.paused = flow.queued > INFLOW_HIGH_WATER;
        !flow.paused
    }

    /// JS's source of stream `id` ended.
    pub fn end(&self, id: u32) {
        if let Some(Channel::Inflow(flow)) = self.state().open.get(&id).map(Channel::share) {
            let mut flow = lock(&flow);
            flow.ended = true;
            flow.wake();
        }
    }

    /// JS settled future `id`: its value, or why there is none (the guest reading it traps).
    pub fn settle(&self, id: u32, outcome: Result<Value, String>) {
        if let Some(Channel::Promised(promised)) = self.state().open.get(&id).map(Channel::share) {
            let mut promised = lock(&promised);
            promised.outcome = Some(outcome);
            if let Some(waker) = promised.waker.take() {
                waker.wake();
            }
        }
    }

    /// JS read `bytes` of stream `id` toward it: the guest may send that many more.
    pub fn credit(&self, id: u32, bytes: usize) {
        if let Some(Channel::Outflow(flow)) = self.state().open.get(&id).map(Channel::share) {
            let mut flow = lock(&flow);
            flow.credit = flow.credit.saturating_add(bytes);
            if let Some(waker) = flow.waker.take() {
                waker.wake();
            }
        }
    }

    /// JS let go of stream `id` toward it (cancelled its reader): the guest's writes end.
    pub fn cancel(&self, id: u32) {
        if let Some(Channel::Outflow(flow)) = self.state().open.get(&id).map(Channel::share) {
            let mut flow = lock(&flow);
            flow.cancelled = true;
            if let Some(waker) = flow.waker.take() {
                waker.wake();
            }
        }
    }

    // The guest's side.

    /// Pipes every stream and future the guest put in `value` to JS, each replaced by the number
    /// of its channel (a `stream` of another payload than `u8` is refused).
    pub fn pipe_to_js(
        self: &Arc<Self>,
        mut store: StoreContextMut<'_, ComponentState>,
        value: &mut Value,
    ) -> wasmtime::Result<()> {
        value.visit_transmits(&mut |value| {
            match value {
                Value::Stream(transmit @ Transmit::Wasm(_)) => {
                    let Transmit::Wasm(stream) = std::mem::replace(transmit, Transmit::Js(0)) else {
                        unreachable!("matched above")
                    };
                    let reader = stream.try_into_stream_reader::<u8>().map_err(|_| {
                        format_err!("only a stream<u8> crosses to JavaScript; this stream carries another type")
                    })?;
                    let flow = Arc::new(Mutex::new(Outflow {
                        credit: OUTFLOW_WINDOW,
                        ..Outflow::default()
                    }));
                    let id = self.open(Channel::Outflow(Arc::clone(&flow)));
                    *transmit = Transmit::Js(id);
                    reader.pipe(
                        &mut store,
                        OutflowConsumer {
                            id,
                            flow,
                            channels: Arc::clone(self),
                        },
                    )?;
                }
                Value::Future(transmit @ Transmit::Wasm(_)) => {
                    let Transmit::Wasm(future) = std::mem::replace(transmit, Transmit::Js(0)) else {
                        unreachable!("matched above")
                    };
                    let reader = future.try_into_future_reader::<Payload>().map_err(|_| {
                        format_err!("a future without a value type (`future`) cannot cross to JavaScript")
                    })?;
                    let id = self.open(Channel::Awaited);
                    *transmit = Transmit::Js(id);
                    reader.pipe(
                        &mut store,
                        AwaitedConsumer {
                            id,
                            delivered: false,
                            channels: Arc::clone(self),
                        },
                    )?;
                }
                _ => {}
            }
            Ok(())
        })
    }
}

impl Channel {
    fn share(&self) -> Channel {
        match self {
            Channel::Inflow(flow) => Channel::Inflow(Arc::clone(flow)),
            Channel::Outflow(flow) => Channel::Outflow(Arc::clone(flow)),
            Channel::Promised(promised) => Channel::Promised(Arc::clone(promised)),
            Channel::Awaited => Channel::Awaited,
        }
    }
}

/// A stream JS feeds toward the guest.
#[derive(Default)]
struct Inflow {
    chunks: VecDeque<Vec<u8>>,
    /// Bytes of the first chunk already given to the guest.
    taken: usize,
    queued: usize,
    /// JS's source ended.
    ended: bool,
    /// The call that opened it is over.
    closed: bool,
    paused: bool,
    waker: Option<Waker>,
}

impl Inflow {
    fn wake(&mut self) {
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }
}

struct InflowProducer {
    id: u32,
    flow: Arc<Mutex<Inflow>>,
    channels: Arc<Channels>,
}

impl StreamProducer<ComponentState> for InflowProducer {
    type Item = u8;
    type Buffer = VecBuffer<u8>;

    fn poll_produce<'a>(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        store: StoreContextMut<'a, ComponentState>,
        destination: Destination<'a, u8, VecBuffer<u8>>,
        finish: bool,
    ) -> Poll<wasmtime::Result<StreamResult>> {
        let this = self.get_mut();
        let mut flow = lock(&this.flow);
        if flow.closed {
            return Poll::Ready(Ok(StreamResult::Dropped));
        }
        let Some(first) = flow.chunks.front() else {
            if flow.ended {
                drop(flow);
                this.channels.close(this.id);
                return Poll::Ready(Ok(StreamResult::Dropped));
            }
            if finish {
                return Poll::Ready(Ok(StreamResult::Cancelled));
            }
            flow.waker = Some(context.waker().clone());
            return Poll::Pending;
        };
        let capacity = first.len() - flow.taken;
        let mut direct = destination.as_direct(store, capacity);
        let room = direct.remaining();
        let mut written = 0;
        while written < room.len() {
            let taken = flow.taken;
            let Some(chunk) = flow.chunks.front() else { break };
            let count = (chunk.len() - taken).min(room.len() - written);
            room[written..written + count].copy_from_slice(&chunk[taken..taken + count]);
            written += count;
            if taken + count == chunk.len() {
                flow.chunks.pop_front();
                flow.taken = 0;
            } else {
                flow.taken += count;
            }
        }
        direct.mark_written(written);
        flow.queued -= written;
        let resume = flow.paused && flow.queued <= INFLOW_HIGH_WATER / 2;
        if resume {
            flow.paused = false;
        }
        drop(flow);
        if resume {
            this.channels.send(TransmitEvent::Resume { id: this.id });
        }
        // A zero-length read (written 0) learns that bytes are ready.
        Poll::Ready(Ok(StreamResult::Completed))
    }
}

impl Drop for InflowProducer {
    fn drop(&mut self) {
        // The guest let go of the stream: JS stops feeding it (unless it had ended anyway).
        let ended = lock(&self.flow).ended;
        if self.channels.close(self.id) && !ended {
            self.channels.send(TransmitEvent::Cancel { id: self.id });
        }
    }
}

/// A stream toward JS.
#[derive(Default)]
struct Outflow {
    /// Bytes the guest may still send before JS reads.
    credit: usize,
    /// JS let go of it, or the call is over.
    cancelled: bool,
    waker: Option<Waker>,
}

struct OutflowConsumer {
    id: u32,
    flow: Arc<Mutex<Outflow>>,
    channels: Arc<Channels>,
}

impl StreamConsumer<ComponentState> for OutflowConsumer {
    type Item = u8;

    fn poll_consume(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        mut store: StoreContextMut<'_, ComponentState>,
        source: Source<'_, u8>,
        finish: bool,
    ) -> Poll<wasmtime::Result<StreamResult>> {
        let this = self.get_mut();
        let mut flow = lock(&this.flow);
        if flow.cancelled {
            return Poll::Ready(Ok(StreamResult::Dropped));
        }
        if flow.credit == 0 {
            if finish {
                return Poll::Ready(Ok(StreamResult::Cancelled));
            }
            flow.waker = Some(context.waker().clone());
            return Poll::Pending;
        }
        let available = source.remaining(&mut store);
        if available == 0 {
            return Poll::Ready(Ok(StreamResult::Completed));
        }
        let count = available.min(flow.credit);
        let mut direct = source.as_direct(store);
        let bytes = direct.remaining()[..count].to_vec();
        direct.mark_read(count);
        flow.credit -= count;
        drop(flow);
        this.channels.send(TransmitEvent::Data { id: this.id, bytes });
        Poll::Ready(Ok(StreamResult::Completed))
    }
}

impl Drop for OutflowConsumer {
    fn drop(&mut self) {
        // The guest closed its end (or the store let go of the stream): the stream ends.
        if self.channels.close(self.id) {
            self.channels.send(TransmitEvent::End {
                id: self.id,
                error: None,
            });
        }
    }
}

/// A future JS settles toward the guest.
#[derive(Default)]
struct Promised {
    outcome: Option<Result<Value, String>>,
    closed: bool,
    waker: Option<Waker>,
}

struct PromisedProducer {
    id: u32,
    promised: Arc<Mutex<Promised>>,
    channels: Arc<Channels>,
}

impl FutureProducer<ComponentState> for PromisedProducer {
    type Item = Payload;

    fn poll_produce(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        _store: StoreContextMut<'_, ComponentState>,
        finish: bool,
    ) -> Poll<wasmtime::Result<Option<Payload>>> {
        let this = self.get_mut();
        let mut promised = lock(&this.promised);
        let outcome = match promised.outcome.take() {
            Some(outcome) => outcome,
            None if promised.closed => {
                return Poll::Ready(Err(format_err!("the call ended before JavaScript settled the future")));
            }
            None if finish => return Poll::Ready(Ok(None)),
            None => {
                promised.waker = Some(context.waker().clone());
                return Poll::Pending;
            }
        };
        drop(promised);
        this.channels.close(this.id);
        Poll::Ready(match outcome {
            Ok(value) => Ok(Some(Payload(value))),
            // JS's failure, as a failing import's (`ERR_WASM_IMPORT`).
            Err(message) => Err(wasmtime::Error::new(crate::sandbox::HostFunctionError {
                import: "a future from JavaScript".to_owned(),
                message,
            })),
        })
    }
}

impl Drop for PromisedProducer {
    fn drop(&mut self) {
        if self.channels.close(self.id) {
            self.channels.send(TransmitEvent::Cancel { id: self.id });
        }
    }
}

/// A future toward JS.
struct AwaitedConsumer {
    id: u32,
    delivered: bool,
    channels: Arc<Channels>,
}

impl FutureConsumer<ComponentState> for AwaitedConsumer {
    type Item = Payload;

    fn poll_consume(
        self: Pin<&mut Self>,
        _context: &mut Context<'_>,
        store: StoreContextMut<'_, ComponentState>,
        mut source: Source<'_, Payload>,
        _finish: bool,
    ) -> Poll<wasmtime::Result<()>> {
        let this = self.get_mut();
        let mut slot: Option<Payload> = None;
        source.read(store, &mut slot)?;
        if let Some(Payload(value)) = slot
            && this.channels.is_open(this.id)
        {
            this.delivered = true;
            this.channels.send(TransmitEvent::Resolved { id: this.id, value });
            this.channels.close(this.id);
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for AwaitedConsumer {
    fn drop(&mut self) {
        if !self.delivered && self.channels.close(self.id) {
            self.channels.send(TransmitEvent::Rejected {
                id: self.id,
                error: "the guest dropped the future without writing its value".to_owned(),
            });
        }
    }
}

/// Whether a value of type `ty` holds a `stream` or a `future`.
pub fn has_transmits(ty: &wasmtime::component::Type) -> bool {
    use wasmtime::component::Type;
    match ty {
        Type::Stream(_) | Type::Future(_) => true,
        Type::List(list) => has_transmits(&list.ty()),
        Type::Record(record) => record.fields().any(|field| has_transmits(&field.ty)),
        Type::Tuple(tuple) => tuple.types().any(|ty| has_transmits(&ty)),
        Type::Variant(variant) => variant.cases().any(|case| case.ty.as_ref().is_some_and(has_transmits)),
        Type::Option(option) => has_transmits(&option.ty()),
        Type::Result(result) => {
            result.ok().as_ref().is_some_and(has_transmits) || result.err().as_ref().is_some_and(has_transmits)
        }
        _ => false,
    }
}

/// Whether a function's parameters or result hold a `stream` or a `future`.
pub fn signature_has_transmits(ty: &wasmtime::component::types::ComponentFunc) -> bool {
    ty.params().any(|(_, ty)| has_transmits(&ty)) || ty.results().any(|ty| has_transmits(&ty))
}
