//! wasm-memory-sandbox: WebAssembly guests in wasmtime sandboxes, with zero-copy views of their
//! linear memory for Node.
//!
//! The core (`engine`, `module`, `cache`, `sandbox`, `wasi`, `pool`, `remote`, `buffer_guest`, `error`,
//! and `webassembly`, the store shared by a WebAssembly JS API namespace's instances) knows
//! nothing of Node-API;
//! `js` is the thin napi glue that validates JS values, hands out views and converts errors.

mod buffer_guest;
mod cache;
mod component;
mod engine;
mod error;
mod js;
mod module;
mod pool;
mod remote;
mod sandbox;
mod stack;
mod store;
mod wasi;
mod webassembly;
