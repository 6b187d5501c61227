//! Components: compiling and caching them, describing their worlds, and running their instances
//! (`instance`) under the same store layer and limits as core sandboxes.

mod abi;
mod describe;
mod http;
mod instance;
mod service;
mod transmit;

use wasmtime::component::Component;

use crate::cache::CompiledSource;
use crate::engine::engine_with;
use crate::error::SandboxResult;

pub use abi::{BorrowedBytes, Bytes, ListSink, Numeric, Transmit, Value, with_list_sink};
pub use describe::{describe_items, js_name, pascal_name, wit_type};
pub use http::{Headers, HostRules, HttpEvent, HttpStreams, SERVED, ServedRequest, header_map};
pub use instance::{
    AsyncResult, AwayComponent, ComponentCall, ComponentHost, ComponentInstance, ComponentState, Embedding,
    ExportedFunction, HostRequest, HostResource, ImportBinding, PreparedInstances, RemoteRequest, StorePtr, Unwinding,
};
pub use service::ServiceTemplate;
pub use transmit::{Channels, TransmitEvent};

/// The layer field of a binary component's preamble (`\0asm`, version 0x0d, layer 1).
const COMPONENT_PREAMBLE: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
const CORE_PREAMBLE: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];

/// Whether `bytes` are a component: a binary with the component preamble, or text whose first
/// form is `(component`.
pub fn is_component(bytes: &[u8]) -> bool {
    if bytes.starts_with(b"\0asm") {
        return bytes.starts_with(&COMPONENT_PREAMBLE);
    }
    first_text_form(bytes).is_some_and(|form| form == "component")
}

/// Whether `bytes` are a core module (binary, or text whose first form is `(module`, or text of
/// bare module fields, which the text format allows).
pub fn is_core_module(bytes: &[u8]) -> bool {
    if bytes.starts_with(b"\0asm") {
        return bytes.starts_with(&CORE_PREAMBLE);
    }
    first_text_form(bytes).is_some_and(|form| form != "component")
}

/// The keyword of the first form of WebAssembly text, skipping whitespace and comments.
fn first_text_form(bytes: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut rest = text;
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix(";;") {
            rest = after.split_once('\n').map_or("", |(_, tail)| tail);
        } else if rest.starts_with("(;") {
            rest = rest.split_once(";)").map_or("", |(_, tail)| tail);
        } else {
            break;
        }
    }
    let form = rest.strip_prefix('(')?.trim_start();
    let end = form
        .find(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == ';')
        .unwrap_or(form.len());
    Some(&form[..end])
}

/// A component's source with its compiled code (see `CompiledSource`).
pub type ComponentSource = CompiledSource<Component>;

impl ComponentSource {
    /// The component's exports and imports as JSON in the description format of `index.d.ts`
    /// (`ComponentItems`).
    pub fn describe(&self) -> SandboxResult<(String, String)> {
        let engine = engine_with(self.kind(), self.compiler())?;
        let ty = self.compiled().component_type();
        let exports = describe_items(engine, ty.exports(engine).map(|(name, item)| (name, item.ty)));
        let imports = describe_items(engine, ty.imports(engine).map(|(name, item)| (name, item.ty)));
        Ok((exports.to_string(), imports.to_string()))
    }

    /// The type of the function the component imports as `name` (in `interface`, or at the
    /// world's level).
    pub fn imported_function(
        &self,
        interface: Option<&str>,
        name: &str,
    ) -> SandboxResult<wasmtime::component::types::ComponentFunc> {
        let engine = engine_with(self.kind(), self.compiler())?;
        let found = instance::function_type(engine, &self.compiled().component_type(), interface, name);
        found.ok_or_else(|| {
            let label = interface.map_or_else(|| name.to_owned(), |interface| format!("{interface}#{name}"));
            crate::error::SandboxError::Link(format!("the component imports no function {label}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_components_from_modules() {
        assert!(is_component(b"(component)"));
        assert!(is_component(b";; a comment\n (; block ;) (component $c)"));
        assert!(!is_component(b"(module)"));
        assert!(is_core_module(b"(module)"));
        assert!(is_core_module(b"(func)"));
        assert!(!is_core_module(b"(component)"));
        assert!(is_component(&COMPONENT_PREAMBLE));
        assert!(is_core_module(&CORE_PREAMBLE));
    }
}
