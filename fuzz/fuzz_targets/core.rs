//! Fuzzes the sandbox core's untrusted inputs: module bytes (raw, or seeds with edits), limits,
//! and sequences of memory reads, writes, growth and calls with arbitrary offsets, lengths and
//! arguments. Nothing may panic or crash; memory copies must agree with what was written.
//!
//! Run with `cargo fuzz run core -s none` in `fuzz/` (stable Rust: no sanitizer).
#![no_main]
#![allow(dead_code)] // the core's modules are compiled whole; the fuzzer uses part of them

#[path = "../../src/engine.rs"]
mod engine;
#[path = "../../src/error.rs"]
mod error;
#[path = "../../src/module.rs"]
mod module;
#[path = "../../src/sandbox.rs"]
mod sandbox;
#[path = "../../src/stack.rs"]
mod stack;
#[path = "../../src/wasi.rs"]
mod wasi;

use std::sync::OnceLock;
use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use wasmtime::{Val, ValType};

use crate::error::SandboxError;
use crate::module::ModuleSource;
use crate::sandbox::{HostFunction, HostFunctionError, Limits, Sandbox};

const SEED_TEXTS: [&str; 4] = [
    r#"(module (memory (export "memory") 1 8)
        (func (export "poke") (param i32 i32) (i32.store8 (local.get 0) (local.get 1)))
        (func (export "peek") (param i32) (result i32) (i32.load8_u (local.get 0)))
        (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))"#,
    r#"(module (import "env" "f" (func $f (param i64) (result f64)))
        (memory (export "memory") 1)
        (func (export "g") (param i64) (result f64) (call $f (local.get 0)))
        (func $r (export "r") (param i32) (result i32) (call $r (local.get 0)))
        (func (export "spin") (loop br 0)))"#,
    r#"(module (table 2 funcref) (elem (i32.const 0) $a)
        (type $t (func (param i32) (result i32)))
        (func $a (param i32) (result i32) (i32.div_s (i32.const 7) (local.get 0)))
        (func (export "ind") (param i32 i32) (result i32) (call_indirect (type $t) (local.get 0) (local.get 1)))
        (func (export "conv") (param f32) (result i32) (i32.trunc_f32_s (local.get 0))))"#,
    r#"(module (memory (export "memory") 0)
        (data (i32.const 0) "")
        (func (export "size") (result i32) (memory.size)))"#,
];

fn seeds() -> &'static [Vec<u8>] {
    static SEEDS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    SEEDS.get_or_init(|| SEED_TEXTS.iter().map(|text| wat::parse_str(text).expect("seed parses")).collect())
}

#[derive(Arbitrary, Debug)]
enum Source {
    Raw(Vec<u8>),
    Seed { seed: u8, edits: Vec<(u16, u8)>, cut: Option<u16> },
}

#[derive(Arbitrary, Debug)]
struct FuzzLimits {
    max_pages: Option<u8>,
    fuel: Option<u16>,
}

#[derive(Arbitrary, Debug)]
enum Op {
    Read { offset: u32, length: u16 },
    ReadFar { offset: u64, length: u64 },
    Write { offset: u32, bytes: Vec<u8> },
    Grow { pages: u8 },
    GrowFar { pages: u64 },
    Call { index: u8, args: Vec<i64> },
}

#[derive(Arbitrary, Debug)]
struct Input {
    source: Source,
    limits: FuzzLimits,
    ops: Vec<Op>,
}

fn module_bytes(source: &Source) -> Vec<u8> {
    match source {
        Source::Raw(bytes) => bytes.clone(),
        Source::Seed { seed, edits, cut } => {
            let seeds = seeds();
            let mut bytes = seeds[usize::from(*seed) % seeds.len()].clone();
            for &(at, value) in edits {
                if !bytes.is_empty() {
                    let index = usize::from(at) % bytes.len();
                    bytes[index] = value;
                }
            }
            if let Some(cut) = cut {
                bytes.truncate(usize::from(*cut));
            }
            bytes
        }
    }
}

/// A host function that returns zeros of its result types (or fails, for types without one).
fn zeros(results: Vec<ValType>) -> HostFunction {
    Box::new(move |_, slots| {
        for (slot, ty) in slots.iter_mut().zip(&results) {
            *slot = Val::default_for_ty(ty).ok_or_else(|| HostFunctionError {
                import: "fuzz".to_owned(),
                message: "no default value".to_owned(),
            })?;
        }
        Ok(())
    })
}

fn argument(ty: &ValType, value: i64) -> Option<Val> {
    Some(match ty {
        ValType::I32 => Val::I32(value as i32),
        ValType::I64 => Val::I64(value),
        ValType::F32 => Val::F32(value as u32),
        ValType::F64 => Val::F64(value as u64),
        _ => return None,
    })
}

fn run(input: Input) {
    let bytes = module_bytes(&input.source);
    let Ok(source) = ModuleSource::compile(&bytes) else {
        return;
    };
    let _ = source.exports();
    let _ = source.imports();
    let limits = Limits {
        max_memory_bytes: input.limits.max_pages.map(|pages| u64::from(pages) * 65_536),
        // Every call is bounded, so an infinite loop cannot stall the fuzzer.
        timeout: Some(Duration::from_millis(20)),
        fuel: input.limits.fuel.map(u64::from),
    };
    let Ok(sandbox) = Sandbox::instantiate(&source, limits, None, None, |_, ty| Ok(zeros(ty.results().collect()))) else {
        return;
    };
    let memory = sandbox.memory(None).ok();
    for op in input.ops.into_iter().take(64) {
        match (op, memory) {
            (Op::Read { offset, length }, Some(memory)) => check_read(&sandbox, memory, offset.into(), length.into()),
            (Op::ReadFar { offset, length }, Some(memory)) => check_read(&sandbox, memory, offset, length),
            (Op::Write { offset, bytes }, Some(memory)) => {
                let size = sandbox.memory_size(memory).expect("size") as u64;
                let offset = u64::from(offset);
                match sandbox.write(memory, offset, &bytes) {
                    Ok(()) => {
                        assert!(offset + bytes.len() as u64 <= size, "a write past the end succeeded");
                        let back = sandbox.read(memory, offset, bytes.len() as u64).expect("read back");
                        assert_eq!(back, bytes, "read differs from write");
                    }
                    Err(SandboxError::OutOfRange(_)) => {
                        assert!(offset + bytes.len() as u64 > size, "an in-range write failed")
                    }
                    Err(other) => panic!("unexpected write error: {other}"),
                }
            }
            (Op::Grow { pages }, Some(memory)) => check_grow(&sandbox, memory, pages.into()),
            (Op::GrowFar { pages }, Some(memory)) => check_grow(&sandbox, memory, pages),
            (Op::Call { index, args }, _) => {
                let Ok(Some(function)) = sandbox.function_at(usize::from(index)) else {
                    continue;
                };
                let params: Option<Vec<Val>> = function
                    .ty
                    .params()
                    .zip(args.iter().copied().chain(std::iter::repeat(0)))
                    .map(|(ty, value)| argument(&ty, value))
                    .collect();
                let Some(params) = params else { continue };
                let mut results: Vec<Val> = function.ty.results().map(|_| Val::I32(0)).collect();
                let func = function.func;
                match sandbox.call(&func, &params, &mut results) {
                    Ok(()) | Err(SandboxError::Trap { .. } | SandboxError::Import(_)) => {}
                    Err(other) => panic!("unexpected call error: {other}"),
                }
            }
            _ => {}
        }
    }
}

fn check_read(sandbox: &Sandbox, memory: wasmtime::Memory, offset: u64, length: u64) {
    let size = sandbox.memory_size(memory).expect("size") as u64;
    match sandbox.read(memory, offset, length) {
        Ok(bytes) => {
            assert!(offset.checked_add(length).is_some_and(|end| end <= size), "a read past the end succeeded");
            assert_eq!(bytes.len() as u64, length);
        }
        Err(SandboxError::OutOfRange(_)) => {
            assert!(offset.checked_add(length).is_none_or(|end| end > size), "an in-range read failed")
        }
        Err(other) => panic!("unexpected read error: {other}"),
    }
}

fn check_grow(sandbox: &Sandbox, memory: wasmtime::Memory, pages: u64) {
    let before = sandbox.memory_size(memory).expect("size") as u64;
    match sandbox.grow(memory, pages) {
        Ok(previous) => {
            assert_eq!(previous * 65_536, before, "grow reported the wrong previous size");
            assert_eq!(sandbox.memory_size(memory).expect("size") as u64, before + pages * 65_536);
        }
        Err(SandboxError::MemoryLimit(_)) => {
            assert_eq!(sandbox.memory_size(memory).expect("size") as u64, before, "a failed grow changed the size")
        }
        Err(other) => panic!("unexpected grow error: {other}"),
    }
}

fuzz_target!(|input: Input| run(input));
