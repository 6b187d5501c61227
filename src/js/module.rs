//! `Module`: compiled wasm, shared by any number of sandboxes.

use napi::bindgen_prelude::{JsValue, Unknown};
use napi::{Env, Result, ValueType};
use napi_derive::napi;

use crate::error::SandboxError;
use crate::js::errors::OrThrow;
use crate::js::sandbox::Sandbox;
use crate::js::values::{bytes_or_text, describe};
use crate::module::{EntryDescriptor, ModuleSource};

/// A compiled WebAssembly module. Compiling the same bytes again anywhere in the process reuses
/// the compiled code.
#[napi]
pub struct Module {
    source: ModuleSource,
}

/// One import or export of a module.
#[napi(object)]
pub struct ModuleEntry {
    /// For imports: the module namespace (`env` in `env.log`).
    pub module: Option<String>,
    pub name: String,
    #[napi(ts_type = "'function' | 'memory' | 'table' | 'global' | 'tag'")]
    pub kind: String,
    /// For functions: parameter types.
    #[napi(ts_type = "Array<'i32' | 'i64' | 'f32' | 'f64' | 'v128' | 'funcref' | 'externref' | 'anyref'>")]
    pub params: Option<Vec<String>>,
    /// For functions: result types.
    #[napi(ts_type = "Array<'i32' | 'i64' | 'f32' | 'f64' | 'v128' | 'funcref' | 'externref' | 'anyref'>")]
    pub results: Option<Vec<String>>,
}

impl From<EntryDescriptor> for ModuleEntry {
    fn from(entry: EntryDescriptor) -> Self {
        let (params, results) = match entry.signature {
            Some((params, results)) => (
                Some(params.into_iter().map(str::to_owned).collect()),
                Some(results.into_iter().map(str::to_owned).collect()),
            ),
            None => (None, None),
        };
        Self {
            module: entry.module,
            name: entry.name,
            kind: entry.kind.to_owned(),
            params,
            results,
        }
    }
}

#[napi]
impl Module {
    /// Compiles wasm bytes (a `Uint8Array`, `Buffer` or `ArrayBuffer`) or WebAssembly text (a
    /// `string`). Throws `ERR_WASM_COMPILE` with wasmtime's reason if they are malformed.
    #[napi(
        constructor,
        catch_unwind,
        ts_args_type = "source: Uint8Array | ArrayBuffer | string"
    )]
    pub fn new(env: &Env, source: Unknown) -> Result<Self> {
        let bytes = bytes_or_text(env, &source, "source").or_throw(env)?;
        Ok(Self {
            source: ModuleSource::compile(&bytes).or_throw(env)?,
        })
    }

    /// Reads and compiles a `.wasm` (binary) or `.wat` (text) file.
    #[napi(factory, catch_unwind, ts_args_type = "path: string")]
    pub fn from_file(env: &Env, path: Unknown) -> Result<Self> {
        if path.get_type().ok() != Some(ValueType::String) {
            return Err(SandboxError::InvalidArgType(format!(
                "The \"path\" argument must be of type string. Received {}",
                describe(env, &path)
            )))
            .or_throw(env);
        }
        // SAFETY: checked to be a string of this env.
        let path: String = unsafe { napi::bindgen_prelude::FromNapiValue::from_napi_value(env.raw(), path.raw()) }?;
        let bytes = std::fs::read(&path)
            .map_err(|error| SandboxError::ReadFile {
                path: path.clone(),
                reason: error.to_string(),
            })
            .or_throw(env)?;
        Ok(Self {
            source: ModuleSource::compile(&bytes).or_throw(env)?,
        })
    }

    /// Every export: name, kind, and for functions the parameter and result types.
    #[napi(getter)]
    pub fn exports(&self) -> Vec<ModuleEntry> {
        self.source.exports().into_iter().map(ModuleEntry::from).collect()
    }

    /// Every import: module, name, kind, and for functions the parameter and result types.
    #[napi(getter)]
    pub fn imports(&self) -> Vec<ModuleEntry> {
        self.source.imports().into_iter().map(ModuleEntry::from).collect()
    }

    /// Same as `new Sandbox(module, options)`.
    #[napi(catch_unwind, ts_args_type = "options?: SandboxOptions")]
    pub fn instantiate(&self, env: &Env, options: Option<Unknown>) -> Result<Sandbox> {
        Sandbox::from_source(env, &self.source, options)
    }
}

impl Module {
    pub fn source(&self) -> &ModuleSource {
        &self.source
    }
}
