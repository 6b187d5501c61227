//! The napi glue: JS classes, argument validation, views and error conversion.
//! Nothing here knows how sandboxes work; it only translates between JS and the core.

mod async_calls;
mod buffer_sandbox;
mod component;
mod errors;
mod gc_pressure;
mod imports;
mod module;
mod observe;
mod output;
mod promises;
mod raw;
mod sandbox;
mod snapshot;
mod termination;
mod values;
mod views;
mod wasi;
mod webassembly;
