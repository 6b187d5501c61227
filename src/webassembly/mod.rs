//! The core of the WebAssembly JS API namespace (`createWebAssembly()`): one wasmtime store
//! shared by many instances, and the memories, tables, globals and functions they share.
//!
//! Everything a namespace makes lives in one `SharedStore`. Each extern the JS side can hold
//! (a function, memory, table or global, whether made from JS or exported by an instance) gets
//! a stable index in the store's registry, so the JS side keeps exactly one object per extern:
//! an export seen twice, or handed back as an import, is found by its index. Values cross the
//! boundary in a raw encoding the JS side converts (see `RawRef`): numbers as numbers, i64 as
//! `bigint`, references as registry indexes.
//!
//! Like `Sandbox`, every method takes `&self`, and a host function may re-enter the store
//! through the `Caller` wasmtime handed it (see `with_context`).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::hash::Hasher;

use wasmtime::{
    AsContextMut, Caller, ExnRef, ExnRefPre, ExnType, Extern, ExternRef, Func, FuncType, Global, GlobalType, Instance,
    Memory, MemoryType, Module, Mutability, OwnedRooted, Ref, RefType, RootScope, Rooted, Store, StoreContextMut,
    StoreLimitsBuilder, Table, TableType, Tag, TagType, ThrownException, Trap, Val, ValType,
};

use crate::engine::{EngineKind, TickerGuard, engine};
use crate::error::{SandboxError, SandboxResult};
use crate::sandbox::{HostFunctionError, Limits, ThreadBound};
use crate::store::{LimitedState, Observer, apply_limits};

/// The kinds of extern, as the JS side numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExternKind {
    Function = 0,
    Table = 1,
    Memory = 2,
    Global = 3,
    Tag = 4,
}

impl ExternKind {
    pub fn of(ty: &wasmtime::ExternType) -> Self {
        match ty {
            wasmtime::ExternType::Func(_) => Self::Function,
            wasmtime::ExternType::Table(_) => Self::Table,
            wasmtime::ExternType::Memory(_) => Self::Memory,
            wasmtime::ExternType::Global(_) => Self::Global,
            wasmtime::ExternType::Tag(_) => Self::Tag,
        }
    }

    pub fn from_code(code: u32) -> Option<Self> {
        Some(match code {
            0 => Self::Function,
            1 => Self::Table,
            2 => Self::Memory,
            3 => Self::Global,
            4 => Self::Tag,
            _ => return None,
        })
    }
}

/// One letter per value type, the JS side's signature encoding: `i` i32, `I` i64, `f` f32,
/// `F` f64, `v` v128, `r` funcref, `e` externref, `x` any other reference.
pub fn type_code(ty: &ValType) -> char {
    match ty {
        ValType::I32 => 'i',
        ValType::I64 => 'I',
        ValType::F32 => 'f',
        ValType::F64 => 'F',
        ValType::V128 => 'v',
        ValType::Ref(reference) if reference.heap_type().is_func() => 'r',
        ValType::Ref(reference) if reference.heap_type().is_extern() => 'e',
        ValType::Ref(_) => 'x',
    }
}

/// The value type of a letter from `type_code`.
pub fn type_of_code(code: char) -> Option<ValType> {
    Some(match code {
        'i' => ValType::I32,
        'I' => ValType::I64,
        'f' => ValType::F32,
        'F' => ValType::F64,
        'r' => ValType::FUNCREF,
        'e' => ValType::EXTERNREF,
        _ => return None,
    })
}

/// The signature of a function as two strings of `type_code` letters.
pub fn signature_codes(ty: &FuncType) -> (String, String) {
    (
        ty.params().map(|t| type_code(&t)).collect(),
        ty.results().map(|t| type_code(&t)).collect(),
    )
}

/// A reference as the JS side encodes it: a registry index (of a function, or of the JS value an
/// externref carries, in the JS side's own list), or `None` for null.
pub type RawRef = Option<u32>;

/// What an externref carries: the slot of its JS value in the namespace's list. Each crossing
/// of a JS value into wasm gets a slot of its own, so when wasmtime collects the externref the
/// slot is free: its drop says so, and the JS side lets go of the value (see
/// `SharedStore::take_released_externs`).
struct JsValueIndex {
    slot: u32,
    released: std::sync::Arc<std::sync::Mutex<Vec<u32>>>,
}

impl Drop for JsValueIndex {
    fn drop(&mut self) {
        self.released
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .push(self.slot);
    }
}

/// How a host function can fail: with an error (a trap), or by throwing a WebAssembly exception
/// into the guest, which its handlers can catch.
pub enum HostFailure {
    Error(HostFunctionError),
    /// Throw the exception at this index of the registry (a JS `WebAssembly.Exception`).
    Throw(u32),
    /// Throw a JS value (any other JS exception) as an exception of the namespace's JS tag,
    /// carrying the value's externref index (`None` for null): `catch_all` catches it, and out
    /// in JS it is the same value again.
    ThrowJsValue(RawRef),
}

/// A host function supplied by the embedder (a JS function): reads `params`, fills `results`.
pub type HostFunction = Box<dyn Fn(&mut Caller<'_, StoreState>, &[Val], &mut [Val]) -> Result<(), HostFailure>>;

/// The registry index of the namespace's JS tag (`WebAssembly.JSTag`), made with the store.
pub const JS_TAG: u32 = 0;

impl LimitedState for StoreState {
    fn observer(&mut self) -> &mut Observer {
        &mut self.observer
    }
}

/// Per-store data: limits and the registry of externs the JS side holds.
pub struct StoreState {
    observer: Observer,
    funcs: Vec<Func>,
    func_keys: HashMap<usize, u32>,
    memories: Vec<Memory>,
    memory_keys: HashMap<u64, u32>,
    tables: Vec<Table>,
    table_keys: HashMap<u64, u32>,
    globals: Vec<Global>,
    global_keys: HashMap<u64, u32>,
    tags: Vec<Tag>,
    /// Exceptions JS holds (`WebAssembly.Exception` objects), by registry index, each with the
    /// hash of the object it references (its key in `exception_buckets`); a slot is emptied when
    /// its JS object is collected, and reused.
    exceptions: Vec<Option<(OwnedRooted<ExnRef>, u64)>>,
    free_exceptions: Vec<u32>,
    /// The registry indexes of the exceptions by the hash of the object each references.
    exception_buckets: HashMap<u64, Vec<u32>>,
    /// Slots of JS values whose externref wasmtime has collected (pushed by `JsValueIndex`'s drop).
    released_externs: std::sync::Arc<std::sync::Mutex<Vec<u32>>>,
}

/// A module compiled for a namespace's engine.
pub struct CompiledModule {
    pub module: Module,
}

/// The store of one namespace, with every instance, memory, table and global made through it.
pub struct SharedStore {
    store: RefCell<Store<StoreState>>,
    /// The `Caller` of the host function now running on this store, if any.
    active: Cell<Option<*mut Caller<'static, StoreState>>>,
    limits: Limits,
    kind: EngineKind,
    stack_bottom: usize,
    /// This thread's count of running limited calls (see `engine::TimedCall`).
    running_calls: &'static std::sync::atomic::AtomicU32,
    _ticker: Option<TickerGuard>,
}

/// Clears (restores) the active caller when a host function returns or unwinds.
struct RestoreCaller<'a>(
    &'a Cell<Option<*mut Caller<'static, StoreState>>>,
    Option<*mut Caller<'static, StoreState>>,
);

impl Drop for RestoreCaller<'_> {
    fn drop(&mut self) {
        self.0.set(self.1);
    }
}

impl SharedStore {
    pub fn new(limits: Limits) -> SandboxResult<Self> {
        let kind = EngineKind::api(limits.fuel.is_some());
        let engine = engine(kind)?;
        let builder = StoreLimitsBuilder::new()
            .instances(100_000)
            .memories(100_000)
            .tables(100_000);
        let mut store = Store::new(
            engine,
            StoreState {
                observer: limits.observer(builder),
                funcs: Vec::new(),
                func_keys: HashMap::new(),
                memories: Vec::new(),
                memory_keys: HashMap::new(),
                tables: Vec::new(),
                table_keys: HashMap::new(),
                globals: Vec::new(),
                global_keys: HashMap::new(),
                tags: Vec::new(),
                exceptions: Vec::new(),
                free_exceptions: Vec::new(),
                exception_buckets: HashMap::new(),
                released_externs: Default::default(),
            },
        );
        // The JS tag (registry index JS_TAG): what a JS exception is inside the guest.
        let js_tag_type = TagType::new(FuncType::new(engine, [ValType::EXTERNREF], []));
        let js_tag =
            Tag::new(&mut store, &js_tag_type).map_err(|error| SandboxError::Internal(format!("{error:#}")))?;
        store.data_mut().tags.push(js_tag);
        apply_limits(&mut store, limits, true)?;
        let ticker = match limits.needs_ticker() {
            true => Some(TickerGuard::timed()?),
            false => None,
        };
        Ok(Self {
            store: RefCell::new(store),
            active: Cell::new(None),
            limits,
            kind,
            stack_bottom: crate::stack::thread_stack_bottom(),
            running_calls: crate::engine::running_calls_here(),
            _ticker: ticker,
        })
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Runs `action` on the store: through the running host function's `Caller` when re-entered
    /// from one, else through the owned store.
    pub fn with_context<R>(&self, action: impl FnOnce(StoreContextMut<'_, StoreState>) -> R) -> SandboxResult<R> {
        if let Some(caller) = self.active.get() {
            // SAFETY: set only while a host function of this store runs on this thread, blocked
            // in the embedder's code that called us; the `Caller` lives on its stack frame until
            // `RestoreCaller` clears the pointer.
            let caller = unsafe { &mut *caller };
            return Ok(action(caller.as_context_mut()));
        }
        let mut store = self.store.try_borrow_mut().map_err(|_| SandboxError::Busy)?;
        Ok(action(store.as_context_mut()))
    }

    // ---- modules ----------------------------------------------------------------------------

    /// The engine this store's modules are compiled for.
    pub fn kind(&self) -> EngineKind {
        self.kind
    }

    /// Compiles binary wasm (never text) for this store's engine.
    pub fn compile(&self, bytes: &[u8]) -> SandboxResult<CompiledModule> {
        compile_for(self.kind, bytes)
    }

    /// Whether `bytes` are a valid module for this store's engine.
    pub fn validate(&self, bytes: &[u8]) -> SandboxResult<bool> {
        Ok(Module::validate(engine(self.kind)?, bytes).is_ok())
    }

    /// Instantiates `module` with `imports` (registry entries, in the module's import order).
    /// Returns each export as its name, kind and registry index.
    pub fn instantiate(
        &self,
        module: &CompiledModule,
        imports: &[(ExternKind, u32)],
    ) -> SandboxResult<Vec<(String, ExternKind, u32)>> {
        crate::stack::ensure_room_for_wasm(self.stack_bottom)?;
        let outer = self.active.get().is_none();
        self.with_context(|mut context| -> SandboxResult<_> {
            let mut externs = Vec::with_capacity(imports.len());
            for &(kind, index) in imports {
                let state = context.data();
                let found: Option<Extern> = match kind {
                    ExternKind::Function => state.funcs.get(index as usize).map(|f| (*f).into()),
                    ExternKind::Memory => state.memories.get(index as usize).map(|m| (*m).into()),
                    ExternKind::Table => state.tables.get(index as usize).map(|t| (*t).into()),
                    ExternKind::Global => state.globals.get(index as usize).map(|g| (*g).into()),
                    ExternKind::Tag => state.tags.get(index as usize).map(|t| (*t).into()),
                };
                externs.push(found.ok_or_else(|| SandboxError::Link("an import is not of this namespace".to_owned()))?);
            }
            let timed = if outer { self.arm_deadline(&mut context) } else { None };
            let instance = Instance::new(&mut context, &module.module, &externs);
            if outer {
                self.disarm(&mut context);
            }
            drop(timed);
            let instance = instance.map_err(|error| {
                if error.downcast_ref::<Trap>().is_some()
                    || error.downcast_ref::<HostFunctionError>().is_some()
                    || error.is::<ThrownException>()
                {
                    self.call_failed(&mut context, error)
                } else {
                    let message = format!("{error:#}");
                    if message.contains("exceeds memory limits") || message.contains("memory minimum size") {
                        SandboxError::MemoryLimit(message)
                    } else if message.contains("Cannot allocate memory") || message.contains("mmap failed") {
                        SandboxError::SandboxLimit(message)
                    } else {
                        SandboxError::Link(message)
                    }
                }
            })?;
            let exports: Vec<(String, Extern)> = instance
                .exports(&mut context)
                .map(|export| (export.name().to_owned(), export.into_extern()))
                .collect();
            let mut described = Vec::with_capacity(exports.len());
            for (name, export) in exports {
                let (kind, index) = register(&mut context, export)?;
                described.push((name, kind, index));
            }
            Ok(described)
        })?
    }

    /// Arms an outermost call; hold what it returns until the call returns.
    #[must_use]
    fn arm_deadline(&self, context: &mut StoreContextMut<'_, StoreState>) -> Option<crate::engine::TimedCall> {
        crate::store::begin_call(context, self.limits, self.running_calls)
    }

    fn disarm(&self, context: &mut StoreContextMut<'_, StoreState>) {
        crate::store::end_call(context, self.limits);
    }

    // ---- functions --------------------------------------------------------------------------

    /// Registers a host function of type `ty`; returns its registry index.
    pub fn host_function(&self, ty: FuncType, host: HostFunction) -> SandboxResult<u32> {
        let active: *const Cell<Option<*mut Caller<'static, StoreState>>> = &self.active;
        let host = ThreadBound::new((host, active));
        self.with_context(|mut context| {
            let engine = context.engine().clone();
            let ty = FuncType::new(&engine, ty.params(), ty.results());
            let func = Func::new(&mut context, ty, move |mut caller, params, results| {
                let (function, active) = host.get();
                // SAFETY: the store (and so this function) never outlives the `SharedStore`
                // whose `active` cell this points at: the store is a field of it.
                let active = unsafe { &**active };
                // The import's time is not the guest's (the CPU limit).
                let outcome = crate::store::observe::in_host(&mut caller, String::new, |caller| {
                    let caller_ptr = std::ptr::from_mut(caller).cast::<Caller<'static, StoreState>>();
                    let _restore = RestoreCaller(active, active.replace(Some(caller_ptr)));
                    function(caller, params, results)
                });
                match outcome {
                    Ok(()) => Ok(()),
                    Err(HostFailure::Error(error)) => Err(wasmtime::Error::new(error)),
                    Err(HostFailure::Throw(index)) => {
                        let exception = exception_at(&mut caller.as_context_mut(), index)?;
                        caller.as_context_mut().throw(exception)
                    }
                    Err(HostFailure::ThrowJsValue(value)) => {
                        let mut context = caller.as_context_mut();
                        let js_tag = context.data().tags[JS_TAG as usize];
                        let payload = Val::ExternRef(extern_ref(&mut context, value)?);
                        let exception = new_exception(&mut context, &js_tag, &[payload])?;
                        context.throw(exception)
                    }
                }
            });
            register_func(&mut context, func)
        })?
    }

    /// The signature of a registered function.
    pub fn func_type(&self, index: u32) -> SandboxResult<FuncType> {
        self.with_context(|context| {
            let func = *context.data().funcs.get(index as usize).ok_or_else(bad_index)?;
            Ok(func.ty(&context))
        })?
    }

    /// The registered function at `index`.
    pub fn func(&self, index: u32) -> SandboxResult<Func> {
        self.with_context(|context| context.data().funcs.get(index as usize).copied().ok_or_else(bad_index))?
    }

    /// Calls a registered function. `params` are converted inside the store (references need
    /// it); `results` are handed to `finish` while the store is still reachable.
    pub fn call<R>(
        &self,
        func: Func,
        params: &[RawVal],
        result_count: usize,
        finish: impl FnOnce(&mut StoreContextMut<'_, StoreState>, &[Val]) -> SandboxResult<R>,
    ) -> SandboxResult<R> {
        let outer = self.active.get().is_none();
        if outer {
            crate::stack::ensure_room_for_wasm(self.stack_bottom)?;
        }
        self.with_context(|mut context| {
            let mut scope = RootScope::new(&mut context);
            let mut vals = Vec::with_capacity(params.len());
            for param in params {
                vals.push(param.into_val(&mut scope)?);
            }
            let mut results = vec![Val::I32(0); result_count];
            let mut context = scope.as_context_mut();
            let timed = if outer { self.arm_deadline(&mut context) } else { None };
            let outcome = func.call(&mut context, &vals, &mut results);
            if outer {
                self.disarm(&mut context);
            }
            drop(timed);
            if let Err(error) = outcome {
                return Err(self.call_failed(&mut context, error));
            }
            finish(&mut context, &results)
        })?
    }

    /// Calls a registered function whose signature is numbers only through raw slots.
    ///
    /// # Safety
    /// `slots` must hold values of `func`'s parameter types and be as long as the longer of its
    /// parameter and result lists; no reference types.
    #[inline]
    pub unsafe fn call_unchecked(&self, func: &Func, slots: &mut [wasmtime::ValRaw]) -> SandboxResult<()> {
        let mut store;
        let mut timed = None;
        let outer = self.active.get().is_none();
        let mut context = if let Some(caller) = self.active.get() {
            // SAFETY: as in `with_context`.
            unsafe { &mut *caller }.as_context_mut()
        } else {
            crate::stack::ensure_room_for_wasm(self.stack_bottom)?;
            store = self.store.try_borrow_mut().map_err(|_| SandboxError::Busy)?;
            let mut context = store.as_context_mut();
            timed = self.arm_deadline(&mut context);
            context
        };
        // SAFETY: forwarded from this function's contract.
        let outcome = unsafe { func.call_unchecked(&mut context, slots) };
        if outer {
            self.disarm(&mut context);
        }
        drop(timed);
        match outcome {
            Ok(()) => Ok(()),
            Err(error) => Err(self.call_failed(&mut context, error)),
        }
    }

    /// The error of a failed call: an uncaught wasm exception is taken out of the store and
    /// registered (JS gets its `WebAssembly.Exception`, or the JS value it carries); a limit trap
    /// says which limit.
    #[cold]
    #[inline(never)]
    fn call_failed(&self, context: &mut StoreContextMut<'_, StoreState>, error: wasmtime::Error) -> SandboxError {
        if error.is::<ThrownException>() {
            let mut scope = RootScope::new(&mut *context);
            let mut scoped = scope.as_context_mut();
            if let Some(exception) = scoped.take_pending_exception() {
                return match register_exception(&mut scoped, &exception) {
                    Ok(index) => SandboxError::UncaughtException { registry: Some(index) },
                    Err(error) => error,
                };
            }
        }
        self.explain(SandboxError::from_call(error))
    }

    /// Says which limit a limit trap hit.
    fn explain(&self, error: SandboxError) -> SandboxError {
        error.explain_limits(
            self.limits.timeout,
            "the guest was interrupted",
            "the guest ran out of fuel",
        )
    }

    // ---- memories ---------------------------------------------------------------------------

    /// A memory of `initial` pages; `is64` makes its address type i64 (the memory64 proposal).
    pub fn memory_new(&self, initial: u64, maximum: Option<u64>, is64: bool) -> SandboxResult<u32> {
        self.with_context(|mut context| {
            let ty = if is64 {
                MemoryType::new64(initial, maximum)
            } else {
                MemoryType::new(initial as u32, maximum.map(|m| m as u32))
            };
            let memory = Memory::new(&mut context, ty).map_err(|error| {
                SandboxError::OutOfRange(format!("WebAssembly.Memory(): could not allocate memory: {error:#}"))
            })?;
            Ok(register(&mut context, memory.into())?.1)
        })?
    }

    pub fn memory(&self, index: u32) -> SandboxResult<Memory> {
        self.with_context(|context| {
            context
                .data()
                .memories
                .get(index as usize)
                .copied()
                .ok_or_else(bad_index)
        })?
    }

    /// The base and byte length of a memory (its base never moves).
    pub fn memory_region(&self, memory: Memory) -> SandboxResult<(*mut u8, usize)> {
        self.with_context(|context| (memory.data_ptr(&context), memory.data_size(&context)))
    }

    pub fn memory_size(&self, memory: Memory) -> SandboxResult<usize> {
        self.with_context(|context| memory.data_size(&context))
    }

    /// `(initial, maximum, whether its address type is i64)`, in pages.
    pub fn memory_type(&self, memory: Memory) -> SandboxResult<(u64, Option<u64>, bool)> {
        self.with_context(|context| {
            let ty = memory.ty(&context);
            (ty.minimum(), ty.maximum(), ty.is_64())
        })
    }

    /// Grows a memory by `delta` pages; the old size in pages.
    pub fn memory_grow(&self, memory: Memory, delta: u64) -> SandboxResult<u64> {
        self.with_context(|mut context| {
            memory.grow(&mut context, delta).map_err(|error| {
                SandboxError::OutOfRange(format!(
                    "WebAssembly.Memory.grow(): Maximum memory size exceeded ({error})"
                ))
            })
        })?
    }

    // ---- tables -----------------------------------------------------------------------------

    /// A table of `element`s; `is64` makes its index type i64 (the table64 proposal).
    pub fn table_new(
        &self,
        element: RefType,
        initial: u64,
        maximum: Option<u64>,
        is64: bool,
        init: &RawVal,
    ) -> SandboxResult<u32> {
        self.with_context(|mut context| {
            let mut scope = RootScope::new(&mut context);
            let init = init.into_ref(&mut scope, &element)?;
            let table = Table::new(
                &mut scope,
                if is64 {
                    TableType::new64(element, initial, maximum)
                } else {
                    TableType::new(element, initial as u32, maximum.map(|m| m as u32))
                },
                init,
            )
            .map_err(|error| SandboxError::OutOfRange(format!("WebAssembly.Table(): {error:#}")))?;
            Ok(register(&mut scope.as_context_mut(), table.into())?.1)
        })?
    }

    pub fn table(&self, index: u32) -> SandboxResult<Table> {
        self.with_context(|context| context.data().tables.get(index as usize).copied().ok_or_else(bad_index))?
    }

    /// `(element type code, minimum, maximum, whether its index type is i64)`.
    pub fn table_type(&self, table: Table) -> SandboxResult<(char, u64, Option<u64>, bool)> {
        self.with_context(|context| {
            let ty = table.ty(&context);
            (
                type_code(&ValType::Ref(ty.element().clone())),
                ty.minimum(),
                ty.maximum(),
                ty.is_64(),
            )
        })
    }

    pub fn table_size(&self, table: Table) -> SandboxResult<u64> {
        self.with_context(|context| table.size(&context))
    }

    pub fn table_get<R>(
        &self,
        table: Table,
        index: u64,
        finish: impl FnOnce(&mut StoreContextMut<'_, StoreState>, Ref) -> SandboxResult<R>,
    ) -> SandboxResult<R> {
        self.with_context(|mut context| {
            let mut scope = RootScope::new(&mut context);
            let value = table
                .get(&mut scope, index)
                .ok_or_else(|| SandboxError::OutOfRange(format!("WebAssembly.Table.get(): invalid address {index}")))?;
            finish(&mut scope.as_context_mut(), value)
        })?
    }

    pub fn table_set(&self, table: Table, index: u64, value: &RawVal) -> SandboxResult<()> {
        self.with_context(|mut context| {
            let mut scope = RootScope::new(&mut context);
            let element = table.ty(&scope).element().clone();
            let value = value.into_ref(&mut scope, &element)?;
            table
                .set(&mut scope, index, value)
                .map_err(|_| SandboxError::OutOfRange(format!("WebAssembly.Table.set(): invalid address {index}")))
        })?
    }

    pub fn table_grow(&self, table: Table, delta: u64, init: &RawVal) -> SandboxResult<u64> {
        self.with_context(|mut context| {
            let mut scope = RootScope::new(&mut context);
            let element = table.ty(&scope).element().clone();
            let init = init.into_ref(&mut scope, &element)?;
            table.grow(&mut scope, delta, init).map_err(|error| {
                SandboxError::OutOfRange(format!(
                    "WebAssembly.Table.grow(): failed to grow table by {delta} ({error})"
                ))
            })
        })?
    }

    // ---- globals ----------------------------------------------------------------------------

    pub fn global_new(&self, ty: ValType, mutable: bool, value: &RawVal) -> SandboxResult<u32> {
        self.with_context(|mut context| {
            let mut scope = RootScope::new(&mut context);
            let value = value.into_val(&mut scope)?;
            let mutability = if mutable { Mutability::Var } else { Mutability::Const };
            let global = Global::new(&mut scope, GlobalType::new(ty, mutability), value)
                .map_err(|error| SandboxError::InvalidArgType(format!("WebAssembly.Global(): {error:#}")))?;
            Ok(register(&mut scope.as_context_mut(), global.into())?.1)
        })?
    }

    pub fn global(&self, index: u32) -> SandboxResult<Global> {
        self.with_context(|context| {
            context
                .data()
                .globals
                .get(index as usize)
                .copied()
                .ok_or_else(bad_index)
        })?
    }

    /// `(value type code, mutable)`.
    pub fn global_type(&self, global: Global) -> SandboxResult<(char, bool)> {
        self.with_context(|context| {
            let ty = global.ty(&context);
            (type_code(ty.content()), ty.mutability() == Mutability::Var)
        })
    }

    pub fn global_get<R>(
        &self,
        global: Global,
        finish: impl FnOnce(&mut StoreContextMut<'_, StoreState>, Val) -> SandboxResult<R>,
    ) -> SandboxResult<R> {
        self.with_context(|mut context| {
            let mut scope = RootScope::new(&mut context);
            let value = global.get(&mut scope);
            finish(&mut scope.as_context_mut(), value)
        })?
    }

    pub fn global_set(&self, global: Global, value: &RawVal) -> SandboxResult<()> {
        self.with_context(|mut context| {
            let mut scope = RootScope::new(&mut context);
            let value = value.into_val(&mut scope)?;
            global
                .set(&mut scope, value)
                .map_err(|error| SandboxError::InvalidArgType(format!("WebAssembly.Global: {error:#}")))
        })?
    }

    // ---- tags and exceptions -----------------------------------------------------------------

    /// A tag whose exceptions carry values of `params`; its registry index.
    pub fn tag_new(&self, params: Vec<ValType>) -> SandboxResult<u32> {
        self.with_context(|mut context| {
            let ty = TagType::new(FuncType::new(context.engine(), params, []));
            let tag = Tag::new(&mut context, &ty).map_err(|error| SandboxError::Internal(format!("{error:#}")))?;
            Ok(register_tag(&mut context, tag))
        })?
    }

    /// The payload types of a registered tag, as `type_code` letters.
    pub fn tag_type(&self, index: u32) -> SandboxResult<String> {
        self.with_context(|context| {
            let tag = *context.data().tags.get(index as usize).ok_or_else(bad_index)?;
            Ok(tag.ty(&context).ty().params().map(|ty| type_code(&ty)).collect())
        })?
    }

    /// A new exception of tag `tag` carrying `payload`; its registry index.
    pub fn exception_new(&self, tag: u32, payload: &[RawVal]) -> SandboxResult<u32> {
        self.with_context(|mut context| {
            let tag = *context.data().tags.get(tag as usize).ok_or_else(bad_index)?;
            let mut scope = RootScope::new(&mut context);
            let mut fields = Vec::with_capacity(payload.len());
            for value in payload {
                fields.push(value.into_val(&mut scope)?);
            }
            let exception = new_exception(&mut scope.as_context_mut(), &tag, &fields)
                .map_err(|error| SandboxError::InvalidArgType(format!("WebAssembly.Exception(): {error:#}")))?;
            register_exception(&mut scope.as_context_mut(), &exception)
        })?
    }

    /// The registry index of an exception's tag.
    pub fn exception_tag(&self, index: u32) -> SandboxResult<u32> {
        self.with_context(|mut context| {
            let mut scope = RootScope::new(&mut context);
            let exception = exception_at(&mut scope.as_context_mut(), index)?;
            let tag = exception
                .tag(&mut scope)
                .map_err(|error| SandboxError::Internal(format!("{error:#}")))?;
            Ok(register_tag(&mut scope.as_context_mut(), tag))
        })?
    }

    /// Field `field` of an exception's payload, handed to `finish` while the store is reachable.
    pub fn exception_field<R>(
        &self,
        index: u32,
        field: usize,
        finish: impl FnOnce(&mut StoreContextMut<'_, StoreState>, Val) -> SandboxResult<R>,
    ) -> SandboxResult<R> {
        self.with_context(|mut context| {
            let mut scope = RootScope::new(&mut context);
            let exception = exception_at(&mut scope.as_context_mut(), index)?;
            let value = exception
                .field(&mut scope, field)
                .map_err(|error| SandboxError::OutOfRange(format!("WebAssembly.Exception.getArg(): {error:#}")))?;
            finish(&mut scope.as_context_mut(), value)
        })?
    }

    /// Forgets an exception JS no longer holds (its `WebAssembly.Exception` was collected).
    pub fn exception_release(&self, index: u32) -> SandboxResult<()> {
        self.with_context(|mut context| {
            let state = context.data_mut();
            let Some(Some((_, hash))) = state.exceptions.get_mut(index as usize).map(Option::take) else {
                return;
            };
            if let Some(bucket) = state.exception_buckets.get_mut(&hash) {
                bucket.retain(|&known| known != index);
                if bucket.is_empty() {
                    state.exception_buckets.remove(&hash);
                }
            }
            state.free_exceptions.push(index);
        })
    }

    /// How many exceptions the registry holds for JS.
    pub fn live_exceptions(&self) -> usize {
        self.with_context(|context| {
            let state = context.data();
            state.exceptions.len() - state.free_exceptions.len()
        })
        .unwrap_or(0)
    }

    /// The slots of JS values no externref holds any more (wasmtime collected them): the JS side
    /// drops its reference to each and reuses the slot.
    pub fn take_released_externs(&self) -> SandboxResult<Vec<u32>> {
        self.with_context(|context| {
            std::mem::take(
                &mut *context
                    .data()
                    .released_externs
                    .lock()
                    .unwrap_or_else(|poison| poison.into_inner()),
            )
        })
    }

    /// Fuel left, for a store with a fuel budget.
    pub fn fuel(&self) -> SandboxResult<u64> {
        if self.limits.fuel.is_none() {
            return Err(SandboxError::FuelNotEnabled);
        }
        self.with_context(|context| {
            context
                .get_fuel()
                .map_err(|error| SandboxError::Internal(format!("{error:#}")))
        })?
    }

    /// Sets the fuel left.
    pub fn set_fuel(&self, fuel: u64) -> SandboxResult<()> {
        if self.limits.fuel.is_none() {
            return Err(SandboxError::FuelNotEnabled);
        }
        self.with_context(|mut context| {
            context
                .set_fuel(fuel)
                .map_err(|error| SandboxError::Internal(format!("{error:#}")))
        })?
    }
}

/// Compiles binary wasm for a namespace engine (on any thread), through the code caches that
/// `Module` uses: the same bytes compiled earlier in this process, or the cache on disk.
pub fn compile_for(kind: EngineKind, bytes: &[u8]) -> SandboxResult<CompiledModule> {
    if !bytes.starts_with(b"\0asm") {
        return Err(SandboxError::Compile("expected magic word 00 61 73 6d".to_owned()));
    }
    let source = crate::module::ModuleSource::compile_for(kind, crate::engine::Compiler::Cranelift, bytes)?;
    Ok(CompiledModule {
        module: source.for_engine(kind)?,
    })
}

fn bad_index() -> SandboxError {
    SandboxError::Internal("no such extern in this store".to_owned())
}

/// A value in the JS side's raw encoding, converted inside the store.
#[derive(Debug, Clone, Copy)]
pub enum RawVal {
    I32(i32),
    I64(i64),
    F32(f32),
    F64(f64),
    FuncRef(RawRef),
    /// The index of the JS value in the namespace's list, or `None` for null.
    ExternRef(RawRef),
}

impl RawVal {
    pub fn into_val(self, context: &mut impl AsContextMut<Data = StoreState>) -> SandboxResult<Val> {
        Ok(match self {
            Self::I32(value) => Val::I32(value),
            Self::I64(value) => Val::I64(value),
            Self::F32(value) => Val::F32(value.to_bits()),
            Self::F64(value) => Val::F64(value.to_bits()),
            Self::FuncRef(index) => Val::FuncRef(func_at(context, index)?),
            Self::ExternRef(index) => Val::ExternRef(extern_ref(context, index)?),
        })
    }

    fn into_ref(self, context: &mut impl AsContextMut<Data = StoreState>, element: &RefType) -> SandboxResult<Ref> {
        match (self, element.heap_type().is_func()) {
            (Self::FuncRef(index), true) => Ok(Ref::Func(func_at(context, index)?)),
            (Self::ExternRef(index), false) => Ok(Ref::Extern(extern_ref(context, index)?)),
            _ => Err(SandboxError::InvalidArgType("a reference of the wrong type".to_owned())),
        }
    }
}

fn func_at(context: &mut impl AsContextMut<Data = StoreState>, index: RawRef) -> SandboxResult<Option<Func>> {
    match index {
        None => Ok(None),
        Some(index) => Ok(Some(
            *context
                .as_context_mut()
                .data()
                .funcs
                .get(index as usize)
                .ok_or_else(bad_index)?,
        )),
    }
}

fn extern_ref(
    context: &mut impl AsContextMut<Data = StoreState>,
    index: RawRef,
) -> SandboxResult<Option<Rooted<ExternRef>>> {
    match index {
        None => Ok(None),
        Some(slot) => {
            let released = std::sync::Arc::clone(&context.as_context_mut().data().released_externs);
            ExternRef::new(context, JsValueIndex { slot, released })
        }
        .map(Some)
        .map_err(|error| SandboxError::Internal(format!("{error:#}"))),
    }
}

/// The raw encoding of a wasm value (registering functions it references).
pub fn raw_of(context: &mut StoreContextMut<'_, StoreState>, value: &Val) -> SandboxResult<RawVal> {
    Ok(match value {
        Val::I32(value) => RawVal::I32(*value),
        Val::I64(value) => RawVal::I64(*value),
        Val::F32(bits) => RawVal::F32(f32::from_bits(*bits)),
        Val::F64(bits) => RawVal::F64(f64::from_bits(*bits)),
        Val::FuncRef(func) => RawVal::FuncRef(match func {
            Some(func) => Some(register_func(context, *func)?),
            None => None,
        }),
        Val::ExternRef(reference) => RawVal::ExternRef(match reference {
            Some(reference) => Some(extern_index(context, reference)?),
            None => None,
        }),
        other => {
            return Err(SandboxError::InvalidArgType(format!(
                "a wasm value of type {other:?} cannot be passed to JavaScript"
            )));
        }
    })
}

/// The raw encoding of a table element.
pub fn raw_of_ref(context: &mut StoreContextMut<'_, StoreState>, value: &Ref) -> SandboxResult<RawVal> {
    Ok(match value {
        Ref::Func(func) => RawVal::FuncRef(match func {
            Some(func) => Some(register_func(context, *func)?),
            None => None,
        }),
        Ref::Extern(reference) => RawVal::ExternRef(match reference {
            Some(reference) => Some(extern_index(context, reference)?),
            None => None,
        }),
        _ => {
            return Err(SandboxError::InvalidArgType(
                "this reference type cannot be passed to JavaScript".to_owned(),
            ));
        }
    })
}

fn extern_index(context: &mut StoreContextMut<'_, StoreState>, reference: &Rooted<ExternRef>) -> SandboxResult<u32> {
    let data = reference
        .data(&*context)
        .map_err(|error| SandboxError::Internal(format!("{error:#}")))?;
    match data.and_then(|data| data.downcast_ref::<JsValueIndex>()) {
        Some(JsValueIndex { slot, .. }) => Ok(*slot),
        None => Err(SandboxError::InvalidArgType(
            "an externref not made by JavaScript".to_owned(),
        )),
    }
}

fn register_func(context: &mut StoreContextMut<'_, StoreState>, func: Func) -> SandboxResult<u32> {
    let key = func.to_raw(&mut *context) as usize;
    let state = context.data_mut();
    if let Some(&index) = state.func_keys.get(&key) {
        return Ok(index);
    }
    let index =
        u32::try_from(state.funcs.len()).map_err(|_| SandboxError::SandboxLimit("too many functions".to_owned()))?;
    state.funcs.push(func);
    state.func_keys.insert(key, index);
    Ok(index)
}

/// Registers an extern (once: the same extern always gets the same index).
fn register(context: &mut StoreContextMut<'_, StoreState>, export: Extern) -> SandboxResult<(ExternKind, u32)> {
    fn add<T: Copy>(list: &mut Vec<T>, keys: &mut HashMap<u64, u32>, key: u64, item: T) -> u32 {
        *keys.entry(key).or_insert_with(|| {
            list.push(item);
            (list.len() - 1) as u32
        })
    }
    Ok(match export {
        Extern::Func(func) => (ExternKind::Function, register_func(context, func)?),
        Extern::Memory(memory) => {
            let state = context.data_mut();
            (
                ExternKind::Memory,
                add(
                    &mut state.memories,
                    &mut state.memory_keys,
                    memory.debug_index_in_store(),
                    memory,
                ),
            )
        }
        Extern::Table(table) => {
            let state = context.data_mut();
            (
                ExternKind::Table,
                add(
                    &mut state.tables,
                    &mut state.table_keys,
                    table.debug_index_in_store(),
                    table,
                ),
            )
        }
        Extern::Global(global) => {
            let state = context.data_mut();
            (
                ExternKind::Global,
                add(
                    &mut state.globals,
                    &mut state.global_keys,
                    global.debug_index_in_store(),
                    global,
                ),
            )
        }
        Extern::Tag(tag) => (ExternKind::Tag, register_tag(context, tag)),
        _ => {
            return Err(SandboxError::Link(
                "a shared memory cannot be exported to JavaScript".to_owned(),
            ));
        }
    })
}

/// Registers a tag (once: the same tag always gets the same index).
fn register_tag(context: &mut StoreContextMut<'_, StoreState>, tag: Tag) -> u32 {
    if let Some(index) = context
        .data()
        .tags
        .iter()
        .position(|known| Tag::eq(known, &tag, &*context))
    {
        return index as u32;
    }
    let state = context.data_mut();
    state.tags.push(tag);
    (state.tags.len() - 1) as u32
}

/// Registers an exception JS is about to hold: the index it already has if JS holds it (an
/// exception JS threw, caught and rethrown by wasm, is the same object), else a free slot.
fn register_exception(context: &mut StoreContextMut<'_, StoreState>, exception: &Rooted<ExnRef>) -> SandboxResult<u32> {
    // Found by the hash of the object it references (not of the root), among the few of a bucket.
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    exception
        .ref_hash(&*context, &mut hasher)
        .map_err(|error| SandboxError::Internal(format!("{error:#}")))?;
    let hash = hasher.finish();
    let state = context.data();
    if let Some(bucket) = state.exception_buckets.get(&hash) {
        for &index in bucket {
            if let Some(Some((known, _))) = state.exceptions.get(index as usize)
                && Rooted::ref_eq(&*context, known, exception).unwrap_or(false)
            {
                return Ok(index);
            }
        }
    }
    let owned = exception
        .to_owned_rooted(&mut *context)
        .map_err(|error| SandboxError::Internal(format!("{error:#}")))?;
    let state = context.data_mut();
    let index = match state.free_exceptions.pop() {
        Some(index) => {
            state.exceptions[index as usize] = Some((owned, hash));
            index
        }
        None => {
            state.exceptions.push(Some((owned, hash)));
            (state.exceptions.len() - 1) as u32
        }
    };
    state.exception_buckets.entry(hash).or_default().push(index);
    Ok(index)
}

/// The exception at a registry index, rooted in the current scope.
fn exception_at(context: &mut StoreContextMut<'_, StoreState>, index: u32) -> SandboxResult<Rooted<ExnRef>> {
    let owned = context
        .data()
        .exceptions
        .get(index as usize)
        .and_then(|slot| slot.as_ref().map(|(owned, _)| owned.clone()))
        .ok_or_else(bad_index)?;
    Ok(owned.to_rooted(&mut *context))
}

/// A new exception of `tag` carrying `fields`.
fn new_exception(
    context: &mut StoreContextMut<'_, StoreState>,
    tag: &Tag,
    fields: &[Val],
) -> wasmtime::Result<Rooted<ExnRef>> {
    let ty = ExnType::from_tag_type(&tag.ty(&*context))?;
    let allocator = ExnRefPre::new(&mut *context, ty);
    ExnRef::new(&mut *context, &allocator, tag, fields)
}
