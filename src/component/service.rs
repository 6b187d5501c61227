//! `httpHandler()`'s requests to a service without JS imports or output callbacks: each
//! request's instance is made, run and dropped off the JS thread, in a tokio task, from an
//! instantiation linked once (`PreparedInstances`). Nothing in such a store belongs to JS, so it
//! may be dropped on any thread.

use std::sync::Arc;

use wasmtime::component::InstancePre;

use wasmtime_wasi::runtime::in_tokio;

use super::ComponentSource;
use super::http::{HostRules, HttpStreams, ServedRequest, ServiceKind, serve};
use super::instance::{ComponentState, Linking, PreparedInstances, instance_linker, watch};
use crate::engine::engine_with;
use crate::error::{SandboxError, SandboxResult};
use crate::remote::RemoteLink;
use crate::store::Limits;
use crate::wasi::{ComponentWasiState, WasiOptions};

/// What every request of one handler is served with.
pub struct ServiceTemplate {
    source: ComponentSource,
    /// The instantiation on the pooled engine, linked and type-checked once (shared with the
    /// component's other instances without JS imports).
    pre: InstancePre<ComponentState>,
    /// Where the same on the on-demand engine is kept, made when the pool is first full.
    prepared: Arc<PreparedInstances>,
    limits: Limits,
    wasi: WasiOptions,
    http: Option<HostRules>,
    kind: ServiceKind,
}

impl ServiceTemplate {
    /// Checks that `source` is a `wasi:http` service and that the options make a store (so bad
    /// options fail here, not per request), and prepares its instantiation.
    pub fn new(
        source: &ComponentSource,
        prepared: Arc<PreparedInstances>,
        limits: Limits,
        wasi: WasiOptions,
        http: Option<HostRules>,
    ) -> SandboxResult<Self> {
        let engine_kind = limits.component_engine_kind().pooled();
        let engine = engine_with(engine_kind, source.compiler())?;
        let kind = source
            .for_engine(engine_kind)?
            .component_type()
            .exports(engine)
            .find_map(|(name, _)| ServiceKind::of_export(name))
            .ok_or_else(|| SandboxError::BadExport {
                name: "wasi:http/incoming-handler@0.2.x or wasi:http/handler@0.3.x".to_owned(),
                expected: "wasi:http service",
                reason: "the component does not export a wasi:http handler, so it cannot serve requests".to_owned(),
            })?;
        let pre = prepare(source, &prepared, engine_kind, limits)?;
        let template = Self {
            source: source.clone(),
            pre,
            prepared,
            limits,
            wasi,
            http,
            kind,
        };
        // A first instance: link errors and bad options come up now.
        let mut store = template.store(Arc::new(HttpStreams::default()), true)?;
        in_tokio(template.pre.instantiate_async(&mut store))
            .map_err(|error| crate::sandbox::instantiation_error(error, limits))?;
        Ok(template)
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// A store for one request, on the pooled engine or the on-demand one.
    fn store(&self, streams: Arc<HttpStreams>, pooled: bool) -> SandboxResult<wasmtime::Store<ComponentState>> {
        let kind = match pooled {
            true => self.limits.component_engine_kind().pooled(),
            false => self.limits.component_engine_kind(),
        };
        let engine = engine_with(kind, self.source.compiler())?;
        let wasi = ComponentWasiState::new(&self.wasi)?;
        ComponentState::new_store(
            engine,
            self.limits,
            Some(wasi),
            self.http.clone(),
            streams,
            Arc::default(),
            true,
        )
    }

    /// Guest side (a tokio task): a fresh instance serves `request`; its response goes to JS
    /// over `link` as it comes, its body from `streams`.
    pub async fn serve(
        &self,
        request: ServedRequest,
        link: Arc<RemoteLink>,
        streams: Arc<HttpStreams>,
    ) -> wasmtime::Result<()> {
        let internal = |error: SandboxError| wasmtime::Error::msg(error.to_string());
        let stop = {
            let link = Arc::clone(&link);
            move || link.must_stop()
        };
        let mut store = self.store(Arc::clone(&streams), true).map_err(internal)?;
        ComponentState::attach_link(&mut store, Arc::clone(&link));
        let pooled = watch(async { self.pre.instantiate_async(&mut store).await }, &stop).await;
        let (mut store, instance) = match pooled {
            Ok(instance) => (store, instance),
            // Every slot of the pool is serving a request: this one gets its memories mapped
            // for it, as any other instance.
            Err(error) if error.downcast_ref::<wasmtime::PoolConcurrencyLimitError>().is_some() => {
                drop(store);
                let pre = self.overflow_pre().map_err(internal)?;
                let mut store = self.store(streams, false).map_err(internal)?;
                ComponentState::attach_link(&mut store, Arc::clone(&link));
                let instance = watch(async { pre.instantiate_async(&mut store).await }, &stop).await?;
                (store, instance)
            }
            Err(error) => return Err(error),
        };
        watch(serve(&mut store, &instance, self.kind, request, &link), stop).await
    }

    fn overflow_pre(&self) -> SandboxResult<InstancePre<ComponentState>> {
        prepare(
            &self.source,
            &self.prepared,
            self.limits.component_engine_kind(),
            self.limits,
        )
    }
}

/// The service's instantiation on engine `kind`, linked once (with WASI and `wasi:http`).
fn prepare(
    source: &ComponentSource,
    prepared: &PreparedInstances,
    kind: crate::engine::EngineKind,
    limits: Limits,
) -> SandboxResult<InstancePre<ComponentState>> {
    let engine = engine_with(kind, source.compiler())?;
    let component = source.for_engine(kind)?;
    prepared.get(kind, true, || {
        let linking = Linking {
            kind,
            compiler: source.compiler(),
            has_wasi: true,
            needs_async: true,
        };
        instance_linker(engine, &component, linking, Vec::new(), Vec::new())?
            .instantiate_pre(&component)
            .map_err(|error| crate::sandbox::instantiation_error(error, limits))
    })
}
