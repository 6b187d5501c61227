//! Hidden exports of a core module's own state, so a snapshot can reach it.
//!
//! wasmtime's public API reaches only exported globals, memories, tables and functions, so before
//! a core module is compiled for an engine that takes snapshots, `expose_state` rewrites it (as
//! Wizer's instrumentation does) to also export under hidden names:
//!
//! - every *defined* (not imported) global, memory and table, so the host can read and write them;
//! - every function that can be a function reference (imported or defined: the functions named
//!   in element segments, in the constant expressions of globals, tables and segments, and in
//!   exports — the only ones a `ref.func` may name), so the host can map a function reference it
//!   reads from a table or global to a function index, and find that function again by index in
//!   another instance of the module;
//! - the start function, whose start section is removed: the host calls it after instantiation,
//!   so a fork of a snapshot (a new instance whose state the snapshot then overwrites) does not
//!   run it a second time.
//!
//! Nothing else changes: every other section (types, imports, code, data, custom sections such as
//! `name` and DWARF's `.debug_*`) is copied byte for byte and in the same order, so function
//! indices and the offsets inside the code section stay the same. Only the export section is
//! rewritten (the existing entries are kept as they are and the hidden ones appended), or inserted
//! where the binary format requires when the module has none, and the start section is left out.
//!
//! Function bodies are never parsed (the code section is skipped over as one range), so the
//! rewrite is a validation of the module-level sections plus one copy of the bytes.

use std::ops::Range;

use wasm_encoder::{Encode, ExportKind, SectionId};
use wasmparser::{
    BinaryReader, Chunk, ConstExpr, DataKind, ElementItems, ElementKind, Encoding, ExternalKind, Operator,
    OperatorsReader, OperatorsReaderAllocations, Parser, Payload, TableInit, TypeRef, Validator, WasmFeatures,
};

/// Prefix of the export names added by `expose_state` (never a valid name a user would type:
/// starts with a NUL character).
pub const HIDDEN_EXPORT_PREFIX: &str = "\u{0}snapshot:";

/// Whether an export name is one `expose_state` added.
pub fn is_hidden_export(name: &str) -> bool {
    name.starts_with(HIDDEN_EXPORT_PREFIX)
}

/// The hidden export name of defined global number `index` in the module's own index space
/// (imports first, as wasm numbers them): `"\0snapshot:global:3"`.
pub fn hidden_global(index: u32) -> String {
    format!("{HIDDEN_EXPORT_PREFIX}global:{index}")
}

/// The hidden export name of defined memory number `index` (imports first):
/// `"\0snapshot:memory:0"`.
pub fn hidden_memory(index: u32) -> String {
    format!("{HIDDEN_EXPORT_PREFIX}memory:{index}")
}

/// The hidden export name of defined table number `index` (imports first):
/// `"\0snapshot:table:0"`.
pub fn hidden_table(index: u32) -> String {
    format!("{HIDDEN_EXPORT_PREFIX}table:{index}")
}

/// Prefix of the hidden export names of functions (`hidden_func`).
pub const HIDDEN_FUNCTION_PREFIX: &str = "\u{0}snapshot:func:";

/// The hidden export name of function number `index` (imports first), one that can be a
/// function reference: `"\0snapshot:func:7"`.
pub fn hidden_func(index: u32) -> String {
    format!("{HIDDEN_FUNCTION_PREFIX}{index}")
}

/// The hidden export name of the start function, whose start section `expose_state` removes: the
/// host calls it once after instantiating the module (not after restoring a snapshot into a new
/// instance).
pub const HIDDEN_START: &str = "\u{0}snapshot:start";

/// What `expose_state` exported, in index order: for every defined global (index, mutable?),
/// memory index, table index; the functions that can be function references; the start
/// function. Enough for the host to enumerate the hidden exports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExposedState {
    pub globals: Vec<(u32, bool)>,
    pub memories: Vec<u32>,
    pub tables: Vec<u32>,
    /// Every function (imported or defined) that can be a function reference, sorted, each once:
    /// exported as `hidden_func(index)`.
    pub functions: Vec<u32>,
    /// The function of the module's start section, which the output no longer has: exported as
    /// `HIDDEN_START`, for the host to call after instantiation.
    pub start: Option<u32>,
}

impl ExposedState {
    /// How many hidden exports this state needs.
    fn len(&self) -> usize {
        self.globals.len()
            + self.memories.len()
            + self.tables.len()
            + self.functions.len()
            + usize::from(self.start.is_some())
    }

    /// The hidden exports, as (name, kind, index).
    fn exports(&self) -> impl Iterator<Item = (String, ExportKind, u32)> + '_ {
        let globals = self
            .globals
            .iter()
            .map(|&(index, _)| (hidden_global(index), ExportKind::Global, index));
        let memories = self
            .memories
            .iter()
            .map(|&index| (hidden_memory(index), ExportKind::Memory, index));
        let tables = self
            .tables
            .iter()
            .map(|&index| (hidden_table(index), ExportKind::Table, index));
        let functions = self
            .functions
            .iter()
            .map(|&index| (hidden_func(index), ExportKind::Func, index));
        let start = self
            .start
            .map(|index| (HIDDEN_START.to_owned(), ExportKind::Func, index));
        globals.chain(memories).chain(tables).chain(functions).chain(start)
    }
}

/// wasmparser's (and so wasmtime's) limit on the number of exports of a module.
const MAX_EXPORTS: usize = 1_000_000;

/// Rewrites binary module `wasm` so every defined global, memory and table and every function
/// that can be a function reference is exported under its hidden name (also when it already has
/// a user export, so the host needs only the hidden names), and its start function, if any, is
/// exported as `HIDDEN_START` instead of run by a start section. Returns the new bytes and what
/// it exposed. A module that is not valid wasm returns Err with wasmparser's message (the caller
/// then compiles the original bytes so that wasmtime reports the error as usual). A component
/// (the component-model binary) gives Ok(None): it is left as it is.
///
/// Every section but the code section is validated (with every wasm feature enabled); function
/// bodies are not parsed, so a module whose only fault is in a function body gives Ok and
/// wasmtime reports the fault when it compiles the rewritten bytes. A module that already
/// exports a name starting with `HIDDEN_EXPORT_PREFIX` gives Err. A module with nothing to add
/// (no defined global, memory or table, no function that can be a reference, no start section)
/// comes back byte for byte as given.
pub fn expose_state(wasm: &[u8]) -> Result<Option<(Vec<u8>, ExposedState)>, String> {
    let Some(layout) = scan(wasm)? else {
        return Ok(None);
    };
    let state = layout.state()?;
    if state.len() == 0 {
        return Ok(Some((wasm.to_vec(), state)));
    }

    let section = export_section(wasm, layout.exports.as_ref().map(|(_, range)| range), &state)?;
    // Where the export section goes: in place of the existing one, or right after the last
    // section the binary format puts before it (there is one in any valid module with something
    // to export: the import, function, table, memory or global section that declares it).
    let (position, replace) = match &layout.exports {
        Some((position, _)) => (*position, true),
        None => {
            let after = layout.sections.iter().rposition(|(id, _)| precedes_exports(*id));
            (after.map_or(0, |after| after + 1), false)
        }
    };
    let start_section = layout.start.map(|(number, _)| number);

    let mut out = Vec::with_capacity(wasm.len() + section.len());
    out.extend_from_slice(slice(wasm, &layout.header)?);
    for (number, (_, range)) in layout.sections.iter().enumerate() {
        if number == position {
            out.extend_from_slice(&section);
            if replace {
                continue;
            }
        }
        // The host calls the start function through its hidden export instead.
        if Some(number) == start_section {
            continue;
        }
        out.extend_from_slice(slice(wasm, range)?);
    }
    if position == layout.sections.len() {
        out.extend_from_slice(&section);
    }
    Ok(Some((out, state)))
}

/// The sections of a module and what it imports and defines.
struct Layout {
    /// The magic number and version.
    header: Range<usize>,
    /// Every section's id and whole byte range (id, size and contents), in order.
    sections: Vec<(u8, Range<usize>)>,
    /// The export section: its number in `sections` and the range of its contents.
    exports: Option<(usize, Range<usize>)>,
    imported_globals: u32,
    imported_memories: u32,
    imported_tables: u32,
    /// Whether each defined global is mutable.
    defined_globals: Vec<bool>,
    defined_memories: u32,
    defined_tables: u32,
    /// The start section: its number in `sections` and the function it names.
    start: Option<(usize, u32)>,
    /// The functions that can be function references, sorted and deduplicated once the scan
    /// is over.
    functions: Vec<u32>,
}

impl Layout {
    fn state(&self) -> Result<ExposedState, String> {
        let globals = indices(self.imported_globals, self.defined_globals.len())?
            .zip(self.defined_globals.iter().copied())
            .collect();
        let memories = indices(self.imported_memories, self.defined_memories as usize)?.collect();
        let tables = indices(self.imported_tables, self.defined_tables as usize)?.collect();
        Ok(ExposedState {
            globals,
            memories,
            tables,
            functions: self.functions.clone(),
            start: self.start.map(|(_, function)| function),
        })
    }
}

/// The indices of `defined` items after `imported` imported ones.
fn indices(imported: u32, defined: usize) -> Result<Range<u32>, String> {
    u32::try_from(defined)
        .ok()
        .and_then(|defined| imported.checked_add(defined))
        .map(|end| imported..end)
        .ok_or_else(|| "too many items in an index space".to_owned())
}

/// Whether the binary format puts section `id` before the export section.
fn precedes_exports(id: u8) -> bool {
    const BEFORE: [SectionId; 7] = [
        SectionId::Type,
        SectionId::Import,
        SectionId::Function,
        SectionId::Table,
        SectionId::Memory,
        SectionId::Tag,
        SectionId::Global,
    ];
    BEFORE.iter().any(|before| *before as u8 == id)
}

fn slice<'a>(wasm: &'a [u8], range: &Range<usize>) -> Result<&'a [u8], String> {
    wasm.get(range.clone())
        .ok_or_else(|| format!("unexpected end-of-file (at offset {:#x})", range.start))
}

fn message(error: wasmparser::BinaryReaderError) -> String {
    error.to_string()
}

/// Splits `wasm` into sections and validates its module-level sections (not the function
/// bodies). `None` for a component.
fn scan(wasm: &[u8]) -> Result<Option<Layout>, String> {
    let mut parser = Parser::new(0);
    let mut validator = Validator::new_with_features(WasmFeatures::all());
    let mut layout = Layout {
        header: 0..0,
        sections: Vec::new(),
        exports: None,
        imported_globals: 0,
        imported_memories: 0,
        imported_tables: 0,
        defined_globals: Vec::new(),
        defined_memories: 0,
        defined_tables: 0,
        start: None,
        functions: Vec::new(),
    };
    // The function references are collected from every module-level place a function index can
    // be named (all but function bodies and the start section): exactly the functions a
    // `ref.func` may name, so every function reference the instance can ever hold.
    let mut allocations = OperatorsReaderAllocations::default();
    let mut offset = 0usize;
    loop {
        let rest = wasm
            .get(offset..)
            .ok_or_else(|| format!("unexpected end-of-file (at offset {offset:#x})"))?;
        let (consumed, payload) = match parser.parse(rest, true).map_err(message)? {
            Chunk::Parsed { consumed, payload } => (consumed, payload),
            // Not returned when told the input is complete; treated as truncation all the same.
            Chunk::NeedMoreData(_) => {
                return Err(format!("unexpected end-of-file (at offset {:#x})", wasm.len()));
            }
        };
        if let Payload::Version {
            encoding: Encoding::Component,
            ..
        } = payload
        {
            return Ok(None);
        }
        validator.payload(&payload).map_err(message)?;

        let start = offset;
        offset += consumed;
        match &payload {
            Payload::Version { .. } => layout.header = start..offset,
            Payload::ImportSection(reader) => {
                for import in reader.clone().into_imports() {
                    let counter = match import.map_err(message)?.ty {
                        TypeRef::Global(_) => &mut layout.imported_globals,
                        TypeRef::Memory(_) => &mut layout.imported_memories,
                        TypeRef::Table(_) => &mut layout.imported_tables,
                        _ => continue,
                    };
                    *counter = counter.checked_add(1).ok_or_else(|| "too many imports".to_owned())?;
                }
            }
            Payload::TableSection(reader) => {
                layout.defined_tables = reader.count();
                for table in reader.clone() {
                    if let TableInit::Expr(init) = table.map_err(message)?.init {
                        references(&init, &mut allocations, &mut layout.functions)?;
                    }
                }
            }
            Payload::MemorySection(reader) => layout.defined_memories = reader.count(),
            Payload::GlobalSection(reader) => {
                for global in reader.clone() {
                    let global = global.map_err(message)?;
                    layout.defined_globals.push(global.ty.mutable);
                    references(&global.init_expr, &mut allocations, &mut layout.functions)?;
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader.clone() {
                    let export = export.map_err(message)?;
                    if is_hidden_export(export.name) {
                        return Err(format!(
                            "the module exports {:?}, a name reserved for the hidden exports of \
                             its state",
                            export.name
                        ));
                    }
                    if let ExternalKind::Func | ExternalKind::FuncExact = export.kind {
                        layout.functions.push(export.index);
                    }
                }
                layout.exports = Some((layout.sections.len(), reader.range()));
            }
            Payload::StartSection { func, .. } => layout.start = Some((layout.sections.len(), *func)),
            Payload::ElementSection(reader) => {
                for element in reader.clone() {
                    let element = element.map_err(message)?;
                    if let ElementKind::Active { offset_expr, .. } = &element.kind {
                        references(offset_expr, &mut allocations, &mut layout.functions)?;
                    }
                    match element.items {
                        ElementItems::Functions(indices) => {
                            for index in indices {
                                layout.functions.push(index.map_err(message)?);
                            }
                        }
                        ElementItems::Expressions(_, expressions) => {
                            for expression in expressions {
                                references(&expression.map_err(message)?, &mut allocations, &mut layout.functions)?;
                            }
                        }
                    }
                }
            }
            Payload::DataSection(reader) => {
                for data in reader.clone() {
                    if let DataKind::Active { offset_expr, .. } = data.map_err(message)?.kind {
                        references(&offset_expr, &mut allocations, &mut layout.functions)?;
                    }
                }
            }
            Payload::CodeSectionStart { size, .. } => {
                // The function bodies are copied as they are, never parsed.
                parser.skip_section();
                offset = offset
                    .checked_add(*size as usize)
                    .filter(|end| *end <= wasm.len())
                    .ok_or_else(|| format!("unexpected end-of-file in the code section (at offset {start:#x})"))?;
            }
            Payload::End(_) => {
                layout.functions.sort_unstable();
                layout.functions.dedup();
                return Ok(Some(layout));
            }
            _ => {}
        }
        if let Some((id, _)) = payload.as_section() {
            layout.sections.push((id, start..offset));
        }
    }
}

/// Adds the functions `ref.func` names in constant expression `expression` to `functions` (also
/// nested ones, as in `struct.new` operands). `allocations` is the operator reader's frame
/// stack, reused from one expression to the next.
fn references(
    expression: &ConstExpr,
    allocations: &mut OperatorsReaderAllocations,
    functions: &mut Vec<u32>,
) -> Result<(), String> {
    let mut reader = OperatorsReader::new_with_allocs(expression.get_binary_reader(), std::mem::take(allocations));
    while !reader.eof() {
        if let Operator::RefFunc { function_index } = reader.read().map_err(message)? {
            functions.push(function_index);
        }
    }
    *allocations = reader.into_allocations();
    Ok(())
}

/// The whole export section (id, size, contents): the existing entries as they are (`existing`
/// is the range of the existing section's contents), then the hidden ones.
fn export_section(wasm: &[u8], existing: Option<&Range<usize>>, state: &ExposedState) -> Result<Vec<u8>, String> {
    let (count, entries) = match existing {
        Some(range) => {
            let contents = slice(wasm, range)?;
            let mut reader = BinaryReader::new(contents, range.start);
            let count = reader.read_var_u32().map_err(message)?;
            let entries = contents
                .get(reader.current_position()..)
                .ok_or_else(|| "malformed export section".to_owned())?;
            (count as usize, entries)
        }
        None => (0, &[][..]),
    };
    let total = count + state.len();
    if total > MAX_EXPORTS {
        return Err(format!(
            "the module would have {total} exports with those of its state, more than the \
             {MAX_EXPORTS} allowed"
        ));
    }

    let mut contents = Vec::with_capacity(entries.len() + 5 + state.len() * 24);
    total.encode(&mut contents);
    contents.extend_from_slice(entries);
    for (name, kind, index) in state.exports() {
        name.as_str().encode(&mut contents);
        kind.encode(&mut contents);
        index.encode(&mut contents);
    }
    if u32::try_from(contents.len()).is_err() {
        return Err("the export section would be larger than 4 GiB".to_owned());
    }
    let mut section = Vec::with_capacity(contents.len() + 6);
    section.push(SectionId::Export as u8);
    contents.as_slice().encode(&mut section);
    Ok(section)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmparser::{ExternalKind, WasmFeatures};

    /// The output of `expose_state`, which must be a valid module.
    fn expose(wat: &str) -> (Vec<u8>, Vec<u8>, ExposedState) {
        let input = wat::parse_str(wat).expect("test module parses");
        let (output, state) = expose_state(&input)
            .expect("module is valid")
            .expect("module is not a component");
        validate(&output);
        (input, output, state)
    }

    fn validate(wasm: &[u8]) {
        Validator::new_with_features(WasmFeatures::all())
            .validate_all(wasm)
            .expect("output validates");
    }

    /// Every section as (id, custom section name, whole bytes).
    fn sections(wasm: &[u8]) -> Vec<(u8, String, Vec<u8>)> {
        let mut out = Vec::new();
        let mut parser = Parser::new(0);
        let mut offset = 0;
        loop {
            let Chunk::Parsed { consumed, payload } = parser.parse(&wasm[offset..], true).unwrap() else {
                panic!("complete input")
            };
            let start = offset;
            offset += consumed;
            if let Payload::CodeSectionStart { size, .. } = payload {
                parser.skip_section();
                offset += size as usize;
            }
            let name = match &payload {
                Payload::CustomSection(reader) => reader.name().to_owned(),
                _ => String::new(),
            };
            if let Payload::End(_) = payload {
                return out;
            }
            if let Some((id, _)) = payload.as_section() {
                out.push((id, name, wasm[start..offset].to_vec()));
            }
        }
    }

    fn exports(wasm: &[u8]) -> Vec<(String, ExternalKind, u32)> {
        let mut out = Vec::new();
        for payload in Parser::new(0).parse_all(wasm) {
            if let Payload::ExportSection(reader) = payload.unwrap() {
                for export in reader {
                    let export = export.unwrap();
                    out.push((export.name.to_owned(), export.kind, export.index));
                }
            }
        }
        out
    }

    fn owned(list: &[(&str, ExternalKind, u32)]) -> Vec<(String, ExternalKind, u32)> {
        list.iter()
            .map(|(name, kind, index)| ((*name).to_owned(), *kind, *index))
            .collect()
    }

    /// All sections but the export section and the start section (left out) are the same bytes
    /// in the same order, and the export section is at `position` among the output's sections.
    fn assert_preserved(input: &[u8], output: &[u8], position: usize) {
        let export = SectionId::Export as u8;
        let start = SectionId::Start as u8;
        let before: Vec<_> = sections(input)
            .into_iter()
            .filter(|(id, _, _)| *id != export && *id != start)
            .collect();
        let after = sections(output);
        assert!(after.iter().all(|(id, _, _)| *id != start));
        assert_eq!(after.iter().position(|(id, _, _)| *id == export), Some(position));
        assert_eq!(after.iter().filter(|(id, _, _)| *id == export).count(), 1);
        let after: Vec<_> = after.into_iter().filter(|(id, _, _)| *id != export).collect();
        assert_eq!(before, after);
        assert_eq!(&input[..8], &output[..8]);
    }

    #[test]
    fn names() {
        assert_eq!(hidden_global(3), "\u{0}snapshot:global:3");
        assert_eq!(hidden_memory(0), "\u{0}snapshot:memory:0");
        assert_eq!(hidden_table(12), "\u{0}snapshot:table:12");
        assert!(is_hidden_export(&hidden_global(3)));
        assert!(is_hidden_export(&hidden_table(1)));
        assert_eq!(hidden_func(7), "\u{0}snapshot:func:7");
        assert_eq!(HIDDEN_START, format!("{HIDDEN_EXPORT_PREFIX}start"));
        assert!(is_hidden_export(&hidden_func(0)));
        assert!(is_hidden_export(HIDDEN_START));
        assert!(!is_hidden_export("memory"));
        assert!(!is_hidden_export("snapshot:global:0"));
    }

    /// (a) No export section: one is inserted after the last section before it.
    #[test]
    fn no_export_section() {
        let (input, output, state) = expose(
            r#"(module
                (type (func))
                (memory 1)
                (global (mut i32) (i32.const 7))
                (global i64 (i64.const 1))
                (table 2 funcref)
                (func (type 0))
                (elem (i32.const 0) func 0)
                (data (i32.const 0) "hello"))"#,
        );
        assert_eq!(
            state,
            ExposedState {
                globals: vec![(0, true), (1, false)],
                memories: vec![0],
                tables: vec![0],
                functions: vec![0],
                start: None,
            }
        );
        assert_eq!(
            exports(&output),
            owned(&[
                ("\0snapshot:global:0", ExternalKind::Global, 0),
                ("\0snapshot:global:1", ExternalKind::Global, 1),
                ("\0snapshot:memory:0", ExternalKind::Memory, 0),
                ("\0snapshot:table:0", ExternalKind::Table, 0),
                ("\0snapshot:func:0", ExternalKind::Func, 0),
            ])
        );
        // type, function, table, memory, global, [export], element, code, data
        assert_preserved(&input, &output, 5);
    }

    /// (b) Existing exports, one of them a global: they stay first, byte for byte, and the
    /// hidden ones follow (the exported global and function get their hidden names too).
    #[test]
    fn existing_exports() {
        let (input, output, state) = expose(
            r#"(module
                (memory (export "memory") 1 2)
                (global $g (export "counter") (mut i32) (i32.const 0))
                (global f64 (f64.const 1.5))
                (func (export "run") (result i32) global.get $g))"#,
        );
        assert_eq!(
            state,
            ExposedState {
                globals: vec![(0, true), (1, false)],
                memories: vec![0],
                tables: vec![],
                functions: vec![0],
                start: None,
            }
        );
        assert_eq!(
            exports(&output),
            owned(&[
                ("memory", ExternalKind::Memory, 0),
                ("counter", ExternalKind::Global, 0),
                ("run", ExternalKind::Func, 0),
                ("\0snapshot:global:0", ExternalKind::Global, 0),
                ("\0snapshot:global:1", ExternalKind::Global, 1),
                ("\0snapshot:memory:0", ExternalKind::Memory, 0),
                ("\0snapshot:func:0", ExternalKind::Func, 0),
            ])
        );
        // type, function, memory, global, export, code
        assert_preserved(&input, &output, 4);
        // The existing entries are copied as they are.
        let old = sections(&input).into_iter().find(|s| s.0 == 7).unwrap().2;
        let new = sections(&output).into_iter().find(|s| s.0 == 7).unwrap().2;
        // id, 1-byte size, 1-byte count, then the entries.
        assert_eq!(&new[3..3 + old.len() - 3], &old[3..]);
    }

    /// (c) Imported globals, memories and tables are not exposed; defined ones are numbered
    /// after them. An exported imported function is a possible function reference: exposed.
    #[test]
    fn imports_count_first() {
        let (input, output, state) = expose(
            r#"(module
                (import "env" "g0" (global i32))
                (import "env" "f" (func))
                (import "env" "mem" (memory 1))
                (import "env" "g1" (global (mut i64)))
                (import "env" "tab" (table 1 funcref))
                (memory 1)
                (table 3 externref)
                (global (mut f32) (f32.const 0))
                (global (mut i32) (global.get 0))
                (export "f" (func 0)))"#,
        );
        assert_eq!(
            state,
            ExposedState {
                globals: vec![(2, true), (3, true)],
                memories: vec![1],
                tables: vec![1],
                functions: vec![0],
                start: None,
            }
        );
        assert_eq!(
            exports(&output),
            owned(&[
                ("f", ExternalKind::Func, 0),
                ("\0snapshot:global:2", ExternalKind::Global, 2),
                ("\0snapshot:global:3", ExternalKind::Global, 3),
                ("\0snapshot:memory:1", ExternalKind::Memory, 1),
                ("\0snapshot:table:1", ExternalKind::Table, 1),
                ("\0snapshot:func:0", ExternalKind::Func, 0),
            ])
        );
        // type, import, table, memory, global, export
        assert_preserved(&input, &output, 5);
    }

    /// Only imports (a module sharing an imported memory) and functions no reference can name:
    /// nothing to add, bytes unchanged. Exporting a function is enough to be rewritten.
    #[test]
    fn nothing_to_add() {
        let wat = r#"(module
            (import "env" "memory" (memory 1 1 shared))
            (import "env" "g" (global (mut i32)))
            (import "env" "h" (func))
            (func i32.const 0 global.set 0 call 0))"#;
        let (input, output, state) = expose(wat);
        assert_eq!(state, ExposedState::default());
        assert_eq!(input, output);

        let (input, output, state) = expose(&wat.replace("(func i32", "(func (export \"f\") i32"));
        assert_eq!(
            state,
            ExposedState {
                functions: vec![1],
                ..ExposedState::default()
            }
        );
        assert_eq!(
            exports(&output),
            owned(&[
                ("f", ExternalKind::Func, 1),
                ("\0snapshot:func:1", ExternalKind::Func, 1)
            ])
        );
        // type, import, function, export, code
        assert_preserved(&input, &output, 3);
        let empty = wat::parse_str("(module)").unwrap();
        let (output, state) = expose_state(&empty).unwrap().unwrap();
        assert_eq!(output, empty);
        assert_eq!(state, ExposedState::default());
    }

    /// (d) The name section and other custom sections (DWARF-like ones too) stay where they
    /// were, unchanged; the start section is left out and its function exported instead.
    #[test]
    fn start_name_and_custom_sections() {
        let (input, output, state) = expose(
            r#"(module $m
                (@custom "first" (before first) "\01\02")
                (@custom "after-global" (after global) "xyz")
                (@custom ".debug_info" (after code) "\00\01\02\03")
                (@custom ".debug_line" "line table")
                (global $g (mut i32) (i32.const 0))
                (func $init (local $x i32) i32.const 1 global.set $g)
                (start $init))"#,
        );
        assert_eq!(
            state,
            ExposedState {
                globals: vec![(0, true)],
                memories: vec![],
                tables: vec![],
                functions: vec![],
                start: Some(0),
            }
        );
        assert_eq!(
            exports(&output),
            owned(&[
                ("\0snapshot:global:0", ExternalKind::Global, 0),
                ("\0snapshot:start", ExternalKind::Func, 0)
            ])
        );
        let names: Vec<_> = sections(&output).into_iter().map(|(id, name, _)| (id, name)).collect();
        let custom = |name: &str| (0, name.to_owned());
        let plain = |id: SectionId| (id as u8, String::new());
        assert_eq!(
            names,
            vec![
                custom("first"),
                plain(SectionId::Type),
                plain(SectionId::Function),
                plain(SectionId::Global),
                plain(SectionId::Export),
                custom("after-global"),
                plain(SectionId::Code),
                custom(".debug_info"),
                custom(".debug_line"),
                custom("name"),
            ]
        );
        assert_preserved(&input, &output, 4);
    }

    /// Multiple memories (memory64, shared), tables of several reference types, globals of
    /// v128 and reference types, a tag section between memory and global.
    #[test]
    fn every_kind_of_state() {
        let (input, output, state) = expose(
            r#"(module
                (type $t (func))
                (import "env" "t" (table 1 funcref))
                (memory 1)
                (memory i64 1 10)
                (memory 1 2 shared)
                (table 1 funcref)
                (table 2 externref)
                (table 1 (ref null $t))
                (tag (param i32))
                (global v128 (v128.const i64x2 1 2))
                (global (mut externref) (ref.null extern))
                (global (mut funcref) (ref.func $f))
                (global (mut (ref null $t)) (ref.null $t))
                (func $f (type $t))
                (elem declare func $f)
                (data (memory 1) (i64.const 0) "x")
                (export "mem" (memory 1)))"#,
        );
        assert_eq!(
            state,
            ExposedState {
                globals: vec![(0, false), (1, true), (2, true), (3, true)],
                memories: vec![0, 1, 2],
                tables: vec![1, 2, 3],
                functions: vec![0],
                start: None,
            }
        );
        let hidden: Vec<_> = exports(&output)
            .into_iter()
            .filter(|(name, _, _)| is_hidden_export(name))
            .map(|(name, _, _)| name)
            .collect();
        assert_eq!(
            hidden,
            [
                "global:0", "global:1", "global:2", "global:3", "memory:0", "memory:1", "memory:2", "table:1",
                "table:2", "table:3", "func:0",
            ]
            .map(|name| format!("{HIDDEN_EXPORT_PREFIX}{name}"))
        );
        // type, import, function, table, memory, tag, global, export, ...
        assert_preserved(&input, &output, 7);
    }

    /// A tag section after the last defining section: the export section goes after it.
    #[test]
    fn tag_section_only_after_memory() {
        let (input, output, _) = expose(
            r#"(module
                (memory 1)
                (tag (param i32))
                (func unreachable))"#,
        );
        // type, function, memory, tag, export, code
        assert_preserved(&input, &output, 4);
    }

    /// The data count section (bulk memory) comes after the export section.
    #[test]
    fn data_count_section() {
        let (input, output, _) = expose(
            r#"(module
                (memory 1)
                (data $d "abc")
                (func i32.const 0 i32.const 0 i32.const 1 memory.init $d))"#,
        );
        // type, function, memory, export, datacount, code, data
        assert_preserved(&input, &output, 3);
    }

    /// (e) A component is returned unchanged (None), even one embedding a core module.
    #[test]
    fn component_is_left_alone() {
        let component = wat::parse_str(
            r#"(component
                (core module (memory 1) (global (mut i32) (i32.const 0))))"#,
        )
        .unwrap();
        assert_eq!(expose_state(&component), Ok(None));
        let empty = wat::parse_str("(component)").unwrap();
        assert_eq!(expose_state(&empty), Ok(None));
    }

    /// (f) Invalid bytes give wasmparser's message.
    #[test]
    fn invalid_bytes() {
        let error = expose_state(b"not wasm").unwrap_err();
        assert!(error.contains("magic header"), "{error}");
        assert!(expose_state(b"").is_err());
        assert!(expose_state(b"\0asm\x01\0\0\0\x05").is_err());
        // A code section claiming more bytes than there are.
        let error = expose_state(b"\0asm\x01\0\0\0\x0a\x7f\x00").unwrap_err();
        assert!(error.contains("end-of-file"), "{error}");

        // Valid structure but invalid module-level contents: a global's initializer of the
        // wrong type, a duplicate export, sections out of order.
        let mut module = wasm_encoder::Module::new();
        let mut globals = wasm_encoder::GlobalSection::new();
        globals.global(
            wasm_encoder::GlobalType {
                val_type: wasm_encoder::ValType::I32,
                mutable: false,
                shared: false,
            },
            &wasm_encoder::ConstExpr::i64_const(0),
        );
        module.section(&globals);
        let error = expose_state(&module.finish()).unwrap_err();
        assert!(error.contains("type mismatch"), "{error}");

        let mut module = wasm_encoder::Module::new();
        let mut memories = wasm_encoder::MemorySection::new();
        memories.memory(wasm_encoder::MemoryType {
            minimum: 1,
            maximum: None,
            memory64: false,
            shared: false,
            page_size_log2: None,
        });
        module.section(&memories);
        let mut exports = wasm_encoder::ExportSection::new();
        exports.export("a", ExportKind::Memory, 0);
        exports.export("a", ExportKind::Memory, 0);
        module.section(&exports);
        let error = expose_state(&module.finish()).unwrap_err();
        assert!(error.contains("duplicate export name"), "{error}");

        let mut module = wasm_encoder::Module::new();
        module.section(&wasm_encoder::MemorySection::new());
        module.section(&wasm_encoder::TableSection::new());
        let error = expose_state(&module.finish()).unwrap_err();
        assert!(error.contains("out of order"), "{error}");
    }

    /// A module that already uses the reserved prefix is refused.
    #[test]
    fn reserved_prefix_refused() {
        let input = wat::parse_str("(module (memory 1) (export \"\\00snapshot:memory:0\" (memory 0)))").unwrap();
        let error = expose_state(&input).unwrap_err();
        assert!(error.contains("reserved"), "{error}");
    }

    /// An invalid function body is not looked at: the rewrite succeeds and the fault stays for
    /// wasmtime to report.
    #[test]
    fn function_bodies_are_not_parsed() {
        let input = wat::parse_str("(module (memory 1) (func i64.const 0 drop drop))").unwrap();
        let (output, state) = expose_state(&input).unwrap().unwrap();
        assert_eq!(state.memories, vec![0]);
        assert!(
            Validator::new_with_features(WasmFeatures::all())
                .validate_all(&output)
                .is_err()
        );
    }

    /// A module that needs nothing but its start function exposed is rewritten: the start
    /// section is left out, and the function (numbered after the imported ones) exported.
    #[test]
    fn start_section() {
        let (input, output, state) = expose(
            r#"(module
                (import "env" "log" (func $log (param i32)))
                (func $init i32.const 1 call $log)
                (start $init))"#,
        );
        assert_eq!(
            state,
            ExposedState {
                start: Some(1),
                ..ExposedState::default()
            }
        );
        assert_eq!(exports(&output), owned(&[(HIDDEN_START, ExternalKind::Func, 1)]));
        // type, import, function, [export], code
        assert_preserved(&input, &output, 3);

        // The start function may be imported, and also be a function reference: two hidden names.
        let (input, output, state) = expose(
            r#"(module
                (import "env" "init" (func $init))
                (table 1 funcref)
                (elem (i32.const 0) $init)
                (start $init))"#,
        );
        assert_eq!(
            state,
            ExposedState {
                tables: vec![0],
                functions: vec![0],
                start: Some(0),
                ..ExposedState::default()
            }
        );
        assert_eq!(
            exports(&output),
            owned(&[
                ("\0snapshot:table:0", ExternalKind::Table, 0),
                ("\0snapshot:func:0", ExternalKind::Func, 0),
                (HIDDEN_START, ExternalKind::Func, 0),
            ])
        );
        // type, import, table, [export], element
        assert_preserved(&input, &output, 3);
    }

    /// Every place a function reference can be named: element segments of each form, a global's
    /// initializer (also nested in `struct.new`), a table's initializer, exports. Each function
    /// once, sorted; imported ones too. Functions only called (or `ref.func`'d in a body, which
    /// needs one of those places anyway) are not exposed.
    #[test]
    fn function_references() {
        let (input, output, state) = expose(
            r#"(module
                (type $v (func))
                (type $s (struct (field (ref null $v))))
                (import "env" "i0" (func $i0 (type $v)))
                (import "env" "i1" (func $i1 (type $v)))
                (import "env" "i2" (func $i2 (type $v)))
                (table $t 4 funcref)
                (table $u 2 (ref $v) (ref.func $table_init))
                (global $g funcref (ref.func $global_init))
                (global $n (ref $s) (struct.new $s (ref.func $nested)))
                (func $active_a (type $v))
                (func $active_b (type $v))
                (func $passive (type $v))
                (func $declared (type $v))
                (func $table_init (type $v))
                (func $global_init (type $v))
                (func $nested (type $v))
                (func $active_expr (type $v))
                (func $unreferenced (type $v) call $active_a ref.func $declared drop call $i2)
                (func $exported (export "run") (type $v))
                (elem (table $t) (i32.const 0) func $active_b $active_a $i1 $active_a)
                (elem (table $t) (i32.const 2) funcref (ref.func $active_expr) (ref.null func))
                (elem funcref (ref.func $passive) (ref.func $i0) (ref.null func))
                (elem declare func $declared $global_init $active_b))"#,
        );
        // Imports 0..=2; $active_a 3, ..., $active_expr 10, $unreferenced 11, $exported 12.
        let functions = vec![0, 1, 3, 4, 5, 6, 7, 8, 9, 10, 12];
        assert_eq!(
            state,
            ExposedState {
                globals: vec![(0, false), (1, false)],
                tables: vec![0, 1],
                functions: functions.clone(),
                ..ExposedState::default()
            }
        );
        let mut expected = owned(&[
            ("run", ExternalKind::Func, 12),
            ("\0snapshot:global:0", ExternalKind::Global, 0),
            ("\0snapshot:global:1", ExternalKind::Global, 1),
            ("\0snapshot:table:0", ExternalKind::Table, 0),
            ("\0snapshot:table:1", ExternalKind::Table, 1),
        ]);
        expected.extend(
            functions
                .iter()
                .map(|&index| (hidden_func(index), ExternalKind::Func, index)),
        );
        assert_eq!(exports(&output), expected);
        // type, import, function, table, global, export, element, code
        assert_preserved(&input, &output, 5);
    }

    /// An imported function in an element segment is exported (re-exporting an import is valid),
    /// and a function the module already exports gets its hidden name too.
    #[test]
    fn imported_and_exported_functions() {
        let (input, output, state) = expose(
            r#"(module
                (import "env" "f" (func $f (param i32)))
                (import "env" "g" (func $g))
                (import "env" "h" (func $h))
                (func $own (export "own") (export "also") (param i32))
                (table 2 funcref)
                (elem (i32.const 0) $g $f)
                (export "h" (func $h)))"#,
        );
        assert_eq!(state.functions, vec![0, 1, 2, 3]);
        assert_eq!(
            exports(&output),
            owned(&[
                ("own", ExternalKind::Func, 3),
                ("also", ExternalKind::Func, 3),
                ("h", ExternalKind::Func, 2),
                ("\0snapshot:table:0", ExternalKind::Table, 0),
                ("\0snapshot:func:0", ExternalKind::Func, 0),
                ("\0snapshot:func:1", ExternalKind::Func, 1),
                ("\0snapshot:func:2", ExternalKind::Func, 2),
                ("\0snapshot:func:3", ExternalKind::Func, 3),
            ])
        );
        // type, import, function, table, export, element, code
        assert_preserved(&input, &output, 4);
    }

    /// The hidden exports count towards wasmparser's limit on exports: a module whose functions,
    /// all referenced, and memory would need one export more than allowed is refused. Seconds
    /// unoptimised (a million functions): `cargo test --release -- --ignored too_many_exports`.
    #[test]
    #[ignore]
    fn too_many_exports() {
        use wasm_encoder::{
            CodeSection, ElementSection, Elements, FunctionSection, MemorySection, MemoryType, Module, TypeSection,
        };
        let module = |functions: u32| {
            let mut module = Module::new();
            let mut types = TypeSection::new();
            types.ty().function([], []);
            module.section(&types);
            let mut funcs = FunctionSection::new();
            let mut code = CodeSection::new();
            for _ in 0..functions {
                funcs.function(0);
                code.raw(&[0, 0x0b]);
            }
            module.section(&funcs);
            let mut memories = MemorySection::new();
            memories.memory(MemoryType {
                minimum: 1,
                maximum: None,
                memory64: false,
                shared: false,
                page_size_log2: None,
            });
            module.section(&memories);
            let mut elements = ElementSection::new();
            let all: Vec<u32> = (0..functions).collect();
            elements.declared(Elements::Functions(all.into()));
            module.section(&elements);
            module.section(&code);
            module.finish()
        };
        let limit = MAX_EXPORTS as u32;
        let (_, state) = expose_state(&module(limit - 1)).unwrap().unwrap();
        assert_eq!(state.len(), MAX_EXPORTS);
        let error = expose_state(&module(limit)).unwrap_err();
        assert!(error.contains("more than the 1000000 allowed"), "{error}");
    }

    /// What the host does with the output, in wasmtime: the start function does not run at
    /// instantiation but when called through `HIDDEN_START`, and a function reference read from
    /// a table has the same `Func::to_raw` as the hidden export of its index, for imported and
    /// defined functions alike, so the host can map one to the other.
    #[test]
    fn in_wasmtime() {
        use wasmtime::{Engine, Func, Instance, Module, Ref, Store};

        let (_, output, state) = expose(
            r#"(module
                (import "env" "host" (func $host))
                (table $t 3 funcref)
                (global $ran (export "ran") (mut i32) (i32.const 0))
                (func $a)
                (func $b)
                (func $init i32.const 1 global.set $ran)
                (elem (i32.const 0) func $b $host $a)
                (start $init))"#,
        );
        assert_eq!(state.functions, vec![0, 1, 2]);
        assert_eq!(state.start, Some(3));
        let engine = Engine::default();
        let module = Module::new(&engine, &output).unwrap();
        for _ in 0..2 {
            let mut store = Store::new(&engine, ());
            let host = Func::wrap(&mut store, || {});
            let instance = Instance::new(&mut store, &module, &[host.into()]).unwrap();
            let ran = instance.get_global(&mut store, "ran").unwrap();
            assert_eq!(ran.get(&mut store).i32(), Some(0));
            let start = instance.get_typed_func::<(), ()>(&mut store, HIDDEN_START).unwrap();
            start.call(&mut store, ()).unwrap();
            assert_eq!(ran.get(&mut store).i32(), Some(1));

            let table = instance.get_table(&mut store, &hidden_table(0)).unwrap();
            for (slot, index) in [(0, 2), (1, 0), (2, 1)] {
                let Some(Ref::Func(Some(element))) = table.get(&mut store, slot) else {
                    panic!("slot {slot} holds a function");
                };
                let export = instance.get_func(&mut store, &hidden_func(index)).unwrap();
                assert_eq!(element.to_raw(&mut store), export.to_raw(&mut store), "slot {slot}");
                let others = state.functions.iter().filter(|&&other| other != index);
                for &other in others {
                    let other = instance.get_func(&mut store, &hidden_func(other)).unwrap();
                    assert_ne!(element.to_raw(&mut store), other.to_raw(&mut store));
                }
            }
        }
    }

    /// A module of `functions` functions of about `body` bytes each, with state and a name
    /// section; every function is in one active element segment, as function indices or as
    /// `ref.func` expressions.
    fn big_module(functions: u32, body: usize, expressions: bool) -> Vec<u8> {
        use wasm_encoder::{
            CodeSection, ConstExpr, DataSection, ElementSection, Elements, FunctionSection, GlobalSection, GlobalType,
            Instruction, MemorySection, MemoryType, Module, NameMap, NameSection, RefType, TableSection, TableType,
            TypeSection, ValType,
        };
        let mut module = Module::new();
        let mut types = TypeSection::new();
        types.ty().function([ValType::I32], [ValType::I32]);
        module.section(&types);
        let mut funcs = FunctionSection::new();
        for _ in 0..functions {
            funcs.function(0);
        }
        module.section(&funcs);
        let mut tables = TableSection::new();
        tables.table(TableType {
            element_type: RefType::FUNCREF,
            table64: false,
            minimum: u64::from(functions),
            maximum: None,
            shared: false,
        });
        module.section(&tables);
        let mut memories = MemorySection::new();
        memories.memory(MemoryType {
            minimum: 17,
            maximum: None,
            memory64: false,
            shared: false,
            page_size_log2: None,
        });
        module.section(&memories);
        let mut globals = GlobalSection::new();
        for index in 0..100 {
            globals.global(
                GlobalType {
                    val_type: ValType::I32,
                    mutable: index % 2 == 0,
                    shared: false,
                },
                &ConstExpr::i32_const(index),
            );
        }
        module.section(&globals);
        let mut elements = ElementSection::new();
        let all = if expressions {
            let all: Vec<ConstExpr> = (0..functions).map(ConstExpr::ref_func).collect();
            Elements::Expressions(RefType::FUNCREF, all.into())
        } else {
            let all: Vec<u32> = (0..functions).collect();
            Elements::Functions(all.into())
        };
        elements.active(Some(0), &ConstExpr::i32_const(0), all);
        module.section(&elements);
        let mut code = CodeSection::new();
        for index in 0..functions {
            let mut function = wasm_encoder::Function::new([(2, ValType::I32)]);
            let mut size = 0;
            let mut step = 0i32;
            while size < body {
                function.instruction(&Instruction::LocalGet(0));
                function.instruction(&Instruction::I32Const(step.wrapping_mul(7919)));
                function.instruction(&Instruction::I32Add);
                function.instruction(&Instruction::GlobalSet(0));
                size += 9;
                step += 1;
            }
            function.instruction(&Instruction::I32Const(index as i32));
            function.instruction(&Instruction::End);
            code.function(&function);
        }
        module.section(&code);
        let mut data = DataSection::new();
        data.active(0, &ConstExpr::i32_const(0), vec![0xab; 1 << 20]);
        module.section(&data);
        let mut names = NameSection::new();
        let mut function_names = NameMap::new();
        for index in 0..functions {
            function_names.append(index, &format!("function_number_{index}"));
        }
        names.functions(&function_names);
        module.section(&names);
        module.finish()
    }

    /// Timing on a big module, its functions in an element segment in either form:
    /// `cargo test --release -- --ignored --nocapture big_module`.
    #[test]
    #[ignore]
    fn big_module_timing() {
        for expressions in [false, true] {
            let input = big_module(60_000, 150, expressions);
            let started = std::time::Instant::now();
            let (output, state) = expose_state(&input).unwrap().unwrap();
            let elapsed = started.elapsed();
            let mut best = elapsed;
            for _ in 0..10 {
                let started = std::time::Instant::now();
                let result = expose_state(&input).unwrap().unwrap();
                best = best.min(started.elapsed());
                assert_eq!(result.0.len(), output.len());
            }
            println!(
                "big module (element {}): {} bytes in, {} bytes out, {} hidden exports: first {elapsed:?}, best \
                 {best:?}",
                if expressions { "expressions" } else { "function indices" },
                input.len(),
                output.len(),
                state.len()
            );
            assert_eq!(state.globals.len(), 100);
            assert_eq!(state.functions.len(), 60_000);
            assert_preserved(&input, &output, 5);
            let started = std::time::Instant::now();
            validate(&output);
            println!("full validation of the output: {:?}", started.elapsed());
        }
    }

    /// A smaller big module, checked in every test run.
    #[test]
    fn many_functions() {
        let input = big_module(2_000, 40, false);
        let (output, state) = expose_state(&input).unwrap().unwrap();
        validate(&output);
        assert_eq!(state.globals.len(), 100);
        assert_eq!(state.memories, vec![0]);
        assert_eq!(state.tables, vec![0]);
        assert_eq!(state.functions, (0..2_000).collect::<Vec<_>>());
        assert_preserved(&input, &output, 5);
    }

    /// 5,000 functions all in one element segment, in either form: all of them exposed, and
    /// quickly. The bound is far above what it takes even unoptimised (milliseconds), so it
    /// catches only a rewrite that grew quadratic in the number of functions.
    #[test]
    fn many_referenced_functions() {
        for expressions in [false, true] {
            let input = big_module(5_000, 40, expressions);
            let started = std::time::Instant::now();
            let (output, state) = expose_state(&input).unwrap().unwrap();
            let elapsed = started.elapsed();
            println!("5,000 referenced functions (expressions: {expressions}): {elapsed:?}");
            assert!(elapsed < std::time::Duration::from_secs(1), "{elapsed:?}");
            assert_eq!(state.functions, (0..5_000).collect::<Vec<_>>());
            validate(&output);
            assert_preserved(&input, &output, 5);
        }
    }
}
