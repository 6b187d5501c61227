//! Component values lowered into and lifted out of a guest by this crate, not through wasmtime's
//! dynamic `Val`: a `Val` list holds one 40-byte value per element, so a `list<u8>` of 64 MiB
//! would cost gigabytes of host memory and a byte-by-byte walk. Here a list of a numeric type is
//! its bytes ([`Value::Numbers`]), copied once between a JS typed array and guest memory, wherever
//! it sits in the value (an argument, a record field, a `result`'s payload).
//!
//! [`Args`] and [`Results`] implement wasmtime's `ComponentType`/`Lower`/`Lift` for any function
//! signature: they walk the function's actual types (the `InterfaceType` wasmtime hands them)
//! instead of a Rust type's fixed layout, and their `typecheck` accepts a signature only when the
//! flat layout they were picked for matches it, so a mismatch is an error, never a misread.

use std::mem::{MaybeUninit, size_of};

use wasmtime::ValRaw;
use wasmtime::component::__internal::{
    CanonicalAbiInfo, ComponentTypes, InstanceType, InterfaceType, LiftContext, LowerContext,
};
use wasmtime::component::types::Type;
use wasmtime::component::{ComponentNamedList, ComponentType, FutureAny, Lift, Lower, ResourceAny, StreamAny, Val};
use wasmtime::{Result, bail, format_err};

/// The canonical ABI's limits on flat parameters and results (wasmtime-environ's constants).
pub const MAX_FLAT_PARAMS: usize = 16;
const MAX_FLAT_RESULTS: usize = 1;

/// A component value on the host.
#[derive(Debug)]
pub enum Value {
    Bool(bool),
    S8(i8),
    U8(u8),
    S16(i16),
    U16(u16),
    S32(i32),
    U32(u32),
    S64(i64),
    U64(u64),
    Float32(f32),
    Float64(f64),
    Char(char),
    String(String),
    List(Vec<Value>),
    /// A list of a numeric type, as the little-endian bytes of its elements (a typed array's).
    Numbers(Numeric, Bytes),
    Record(Vec<(String, Value)>),
    Tuple(Vec<Value>),
    Variant(String, Option<Box<Value>>),
    Enum(String),
    Option(Option<Box<Value>>),
    Result(Result<Option<Box<Value>>, Option<Box<Value>>>),
    Flags(Vec<String>),
    Resource(ResourceAny),
    Stream(Transmit<StreamAny>),
    Future(Transmit<FutureAny>),
}

/// A `stream` or `future` handle: in the store (as lowered into or lifted out of a guest), or,
/// once the host has piped it to JS, the number JS knows its channel by (`transmit.rs`).
#[derive(Debug)]
pub enum Transmit<T> {
    Wasm(T),
    Js(u32),
}

/// The bytes of a numeric list: owned, borrowed from a JS typed array for a synchronous call, or
/// already placed by a [`ListSink`] (lifted results only).
#[derive(Debug)]
pub enum Bytes {
    Owned(Vec<u8>),
    Borrowed(BorrowedBytes),
    /// `len` bytes the sink placed, known to it by `token`.
    Placed {
        token: usize,
        len: usize,
    },
}

impl Bytes {
    /// The bytes, unless a sink holds them.
    pub fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Owned(bytes) => bytes,
            // SAFETY: see `BorrowedBytes::new`.
            Bytes::Borrowed(borrowed) => unsafe { std::slice::from_raw_parts(borrowed.start, borrowed.len) },
            Bytes::Placed { .. } => &[],
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Bytes::Placed { len, .. } => *len,
            other => other.as_slice().len(),
        }
    }
}

/// Where the bytes of the numeric lists a call returns go when they are lifted (before the guest
/// may free them): a caller on the JS thread places them straight into JS memory, so they are
/// copied once. Without a sink they are copied into a `Vec`.
pub trait ListSink {
    /// Copies `bytes` to where the caller wants them: the token it knows them by.
    fn place(&self, bytes: &[u8]) -> Option<usize>;
}

thread_local! {
    static LIST_SINK: std::cell::Cell<Option<*const dyn ListSink>> = const { std::cell::Cell::new(None) };
}

/// Runs `call` with `sink` taking the numeric lists lifted on this thread meanwhile.
pub fn with_list_sink<R>(sink: &dyn ListSink, call: impl FnOnce() -> R) -> R {
    struct Restore(Option<*const dyn ListSink>);
    impl Drop for Restore {
        fn drop(&mut self) {
            LIST_SINK.with(|slot| slot.set(self.0));
        }
    }
    // SAFETY (of the lifetime erased here): the slot is restored before `sink` goes out of scope.
    let erased: *const (dyn ListSink + '_) = sink;
    let erased: *const dyn ListSink = unsafe { std::mem::transmute(erased) };
    let _restore = Restore(LIST_SINK.with(|slot| slot.replace(Some(erased))));
    call()
}

/// The bytes of a lifted numeric list: placed by this thread's sink, else copied.
fn lifted_bytes(bytes: &[u8]) -> Bytes {
    let sink = LIST_SINK.with(std::cell::Cell::get);
    // SAFETY: set by `with_list_sink`, whose caller keeps the sink alive until it is unset.
    if let Some(token) = sink.and_then(|sink| unsafe { (*sink).place(bytes) }) {
        return Bytes::Placed {
            token,
            len: bytes.len(),
        };
    }
    Bytes::Owned(bytes.to_vec())
}

/// Bytes a JS typed array holds, read while lowering a synchronous call's arguments.
#[derive(Debug)]
pub struct BorrowedBytes {
    start: *const u8,
    len: usize,
}

impl BorrowedBytes {
    /// # Safety
    /// `bytes` must stay alive and unchanged until the value holding them is dropped: the caller
    /// lowers them in a synchronous call on the JS thread, where no JS runs before lowering ends
    /// (the guest's `realloc` may not call imports).
    pub unsafe fn new(bytes: &[u8]) -> Self {
        BorrowedBytes {
            start: bytes.as_ptr(),
            len: bytes.len(),
        }
    }
}

// SAFETY: the bytes are only read, during the synchronous call that borrowed them.
unsafe impl Send for BorrowedBytes {}
// SAFETY: as above.
unsafe impl Sync for BorrowedBytes {}

/// The element type of a numeric list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Numeric {
    U8,
    S8,
    U16,
    S16,
    U32,
    S32,
    U64,
    S64,
    F32,
    F64,
}

impl Numeric {
    /// The numeric element type `ty`, if it is one.
    pub fn of(ty: &Type) -> Option<Numeric> {
        Some(match ty {
            Type::U8 => Numeric::U8,
            Type::S8 => Numeric::S8,
            Type::U16 => Numeric::U16,
            Type::S16 => Numeric::S16,
            Type::U32 => Numeric::U32,
            Type::S32 => Numeric::S32,
            Type::U64 => Numeric::U64,
            Type::S64 => Numeric::S64,
            Type::Float32 => Numeric::F32,
            Type::Float64 => Numeric::F64,
            _ => return None,
        })
    }

    fn of_interface(ty: &InterfaceType) -> Option<Numeric> {
        Some(match ty {
            InterfaceType::U8 => Numeric::U8,
            InterfaceType::S8 => Numeric::S8,
            InterfaceType::U16 => Numeric::U16,
            InterfaceType::S16 => Numeric::S16,
            InterfaceType::U32 => Numeric::U32,
            InterfaceType::S32 => Numeric::S32,
            InterfaceType::U64 => Numeric::U64,
            InterfaceType::S64 => Numeric::S64,
            InterfaceType::Float32 => Numeric::F32,
            InterfaceType::Float64 => Numeric::F64,
            _ => return None,
        })
    }

    /// The size of one element in bytes.
    pub fn size(self) -> usize {
        match self {
            Numeric::U8 | Numeric::S8 => 1,
            Numeric::U16 | Numeric::S16 => 2,
            Numeric::U32 | Numeric::S32 | Numeric::F32 => 4,
            Numeric::U64 | Numeric::S64 | Numeric::F64 => 8,
        }
    }

    /// The element at the start of `chunk` (at least `size()` bytes) as a `Val`.
    fn val(self, chunk: &[u8]) -> Val {
        let mut word = [0u8; 8];
        word[..self.size()].copy_from_slice(&chunk[..self.size()]);
        let bits = u64::from_le_bytes(word);
        match self {
            Numeric::U8 => Val::U8(bits as u8),
            Numeric::S8 => Val::S8(bits as u8 as i8),
            Numeric::U16 => Val::U16(bits as u16),
            Numeric::S16 => Val::S16(bits as u16 as i16),
            Numeric::U32 => Val::U32(bits as u32),
            Numeric::S32 => Val::S32(bits as u32 as i32),
            Numeric::U64 => Val::U64(bits),
            Numeric::S64 => Val::S64(bits as i64),
            Numeric::F32 => Val::Float32(f32::from_bits(bits as u32)),
            Numeric::F64 => Val::Float64(f64::from_bits(bits)),
        }
    }

    /// The little-endian bytes of `value`, if it is a number of this type.
    fn bytes_of(self, value: &Val) -> Option<[u8; 8]> {
        let bits = match (self, value) {
            (Numeric::U8, Val::U8(n)) => u64::from(*n),
            (Numeric::S8, Val::S8(n)) => u64::from(*n as u8),
            (Numeric::U16, Val::U16(n)) => u64::from(*n),
            (Numeric::S16, Val::S16(n)) => u64::from(*n as u16),
            (Numeric::U32, Val::U32(n)) => u64::from(*n),
            (Numeric::S32, Val::S32(n)) => u64::from(*n as u32),
            (Numeric::U64, Val::U64(n)) => *n,
            (Numeric::S64, Val::S64(n)) => *n as u64,
            (Numeric::F32, Val::Float32(n)) => u64::from(n.to_bits()),
            (Numeric::F64, Val::Float64(n)) => n.to_bits(),
            _ => return None,
        };
        Some(bits.to_le_bytes())
    }
}

/// The arguments of a call, lowered into `N` flat slots (exports use [`EXPORT_SLOTS`]: the
/// function's own flat parameters come first, the rest are zeroed; parameters too many to pass
/// flat go through memory and slot 0 holds their address) or lifted from an import's `N`.
pub struct Args<const N: usize>(pub Vec<Value>);

/// The slots an export's arguments are lowered into: every flat signature fits.
pub const EXPORT_SLOTS: usize = MAX_FLAT_PARAMS;

/// A call's result (none, or one value), in `N` flat slots: with `N == 1` a result that does not
/// fit one slot is in memory, slot 0 holding its address, as the canonical ABI has it.
pub struct Results<const N: usize>(pub Option<Value>);

/// Wasmtime reads `SIZE32` bytes for arguments or results in memory before handing them over;
/// these types find the real extent from the function's type instead (see `memory_offset`).
const DYNAMIC_ABI: CanonicalAbiInfo = CanonicalAbiInfo {
    size32: 0,
    align32: 1,
    size64: 0,
    align64: 1,
    flat_count: None,
};

/// The flat count of `ty`, if it has one at most `max`.
fn flat_count(types: &ComponentTypes, ty: &InterfaceType, max: usize) -> Option<usize> {
    types.canonical_abi(ty).flat_count(max)
}

// SAFETY: `Lower` is `[ValRaw; N]`; `typecheck` accepts only signatures whose flat parameters fit
// `N` slots (exports) or take exactly `N` (imports; 0 when they are passed in memory), and every
// lowering and lifting below follows the function's own types.
unsafe impl<const N: usize> ComponentType for Args<N> {
    type Lower = [ValRaw; N];
    const ABI: CanonicalAbiInfo = DYNAMIC_ABI;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> Result<()> {
        if !matches!(ty, InterfaceType::Tuple(_)) {
            bail!("expected a parameter list");
        }
        let fits = match flat_count(types.types, ty, MAX_FLAT_PARAMS) {
            _ if N == EXPORT_SLOTS => true,
            Some(count) => count == N,
            None => N == 0,
        };
        if !fits {
            bail!("parameters do not take {N} flat values");
        }
        Ok(())
    }
}

// SAFETY: see `ComponentType` above.
unsafe impl<const N: usize> ComponentNamedList for Args<N> {}

// SAFETY: `Lower` is `[ValRaw; N]`; `typecheck` accepts `N == 0` only for no result and `N == 1`
// for any result (flat when it fits one slot, else in memory through slot 0).
unsafe impl<const N: usize> ComponentType for Results<N> {
    type Lower = [ValRaw; N];
    const ABI: CanonicalAbiInfo = DYNAMIC_ABI;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> Result<()> {
        let InterfaceType::Tuple(tuple) = ty else {
            bail!("expected a result list");
        };
        let count = types.types[*tuple].types.len();
        if count > 1 || (count == 0) != (N == 0) || N > 1 {
            bail!("results do not take {N} flat values");
        }
        Ok(())
    }
}

// SAFETY: see `ComponentType` above.
unsafe impl<const N: usize> ComponentNamedList for Results<N> {}

/// The slots of `dst` as individual values.
fn slots<const N: usize>(dst: &mut MaybeUninit<[ValRaw; N]>) -> &mut [MaybeUninit<ValRaw>; N] {
    // SAFETY: `MaybeUninit<[T; N]>` and `[MaybeUninit<T>; N]` have the same layout.
    unsafe { &mut *(dst as *mut MaybeUninit<[ValRaw; N]>).cast::<[MaybeUninit<ValRaw>; N]>() }
}

/// The types of the tuple `ty` (a parameter or result list).
fn tuple_types(types: &ComponentTypes, ty: InterfaceType) -> Result<&[InterfaceType]> {
    match ty {
        InterfaceType::Tuple(tuple) => Ok(&types[tuple].types),
        _ => bail!("expected a tuple type"),
    }
}

// SAFETY: writes every slot of `dst`.
unsafe impl<const N: usize> Lower for Args<N> {
    fn linear_lower_to_flat<T>(
        &self,
        cx: &mut LowerContext<'_, T>,
        ty: InterfaceType,
        dst: &mut MaybeUninit<Self::Lower>,
    ) -> Result<()> {
        let types = cx.types;
        let param_types = tuple_types(types, ty)?;
        check_arity(param_types.len(), self.0.len())?;
        let slots = slots(dst);
        let written = match flat_count(types, &ty, MAX_FLAT_PARAMS) {
            Some(count) if count <= N => {
                let mut out = slots.iter_mut();
                for (value, ty) in self.0.iter().zip(param_types) {
                    lower_flat(cx, *ty, value, &mut out)?;
                }
                count
            }
            _ if N > 0 => {
                let abi = types.canonical_abi(&ty);
                let ptr = cx.realloc(0, 0, abi.align32, abi.size32 as usize)?;
                store_fields(cx, param_types, &self.0, ptr)?;
                slots[0].write(ValRaw::i64(ptr as i64));
                1
            }
            _ => bail!("parameters in memory need a slot for their address"),
        };
        for slot in &mut slots[written..] {
            slot.write(ValRaw::u64(0));
        }
        Ok(())
    }

    fn linear_lower_to_memory<T>(&self, cx: &mut LowerContext<'_, T>, ty: InterfaceType, offset: usize) -> Result<()> {
        let param_types = tuple_types(cx.types, ty)?;
        check_arity(param_types.len(), self.0.len())?;
        store_fields(cx, param_types, &self.0, offset)
    }
}

// SAFETY: reads only the slots the function's flat parameters take (at most `N`, checked).
unsafe impl<const N: usize> Lift for Args<N> {
    fn linear_lift_from_flat(cx: &mut LiftContext<'_>, ty: InterfaceType, src: &Self::Lower) -> Result<Self> {
        let types = cx.types;
        let param_types = tuple_types(types, ty)?;
        match flat_count(types, &ty, MAX_FLAT_PARAMS) {
            Some(count) if count <= N => {}
            _ => bail!("parameters do not fit {N} flat values"),
        }
        let mut src = src.iter();
        let values = param_types
            .iter()
            .map(|ty| lift_flat(cx, *ty, &mut src))
            .collect::<Result<_>>()?;
        Ok(Args(values))
    }

    fn linear_lift_from_memory(cx: &mut LiftContext<'_>, ty: InterfaceType, bytes: &[u8]) -> Result<Self> {
        load_tuple_at(cx, ty, bytes).map(Args)
    }
}

// SAFETY: writes the `N` slots (0 or 1) the result takes, or stores it at a checked address.
unsafe impl<const N: usize> Lower for Results<N> {
    fn linear_lower_to_flat<T>(
        &self,
        cx: &mut LowerContext<'_, T>,
        ty: InterfaceType,
        dst: &mut MaybeUninit<Self::Lower>,
    ) -> Result<()> {
        let result_types = tuple_types(cx.types, ty)?;
        let slots = slots(dst);
        match (result_types, &self.0) {
            ([], None) => Ok(()),
            ([ty], Some(value)) if flat_count(cx.types, ty, MAX_FLAT_RESULTS) == Some(N) => {
                lower_flat(cx, *ty, value, &mut slots.iter_mut())
            }
            _ => bail!("a result that does not match its type"),
        }
    }

    fn linear_lower_to_memory<T>(&self, cx: &mut LowerContext<'_, T>, ty: InterfaceType, offset: usize) -> Result<()> {
        let types = cx.types;
        let result_types = tuple_types(types, ty)?;
        let size = types.canonical_abi(&ty).size32 as usize;
        if offset.checked_add(size).is_none_or(|end| end > cx.as_slice_mut().len()) {
            bail!("result pointer out of bounds of memory");
        }
        match (result_types, &self.0) {
            ([], None) => Ok(()),
            ([ty], Some(value)) => store(cx, *ty, value, offset),
            _ => bail!("a result that does not match its type"),
        }
    }
}

// SAFETY: reads the result's slot, or its checked address in memory.
unsafe impl<const N: usize> Lift for Results<N> {
    fn linear_lift_from_flat(cx: &mut LiftContext<'_>, ty: InterfaceType, src: &Self::Lower) -> Result<Self> {
        let types = cx.types;
        let result_types = tuple_types(types, ty)?;
        let [ty] = result_types else {
            return Ok(Results(None));
        };
        let Some(slot) = src.first() else {
            bail!("a result without a slot");
        };
        if flat_count(types, ty, MAX_FLAT_RESULTS).is_some() {
            return Ok(Results(Some(lift_flat(
                cx,
                *ty,
                &mut std::slice::from_ref(slot).iter(),
            )?)));
        }
        let offset = slot.get_u32() as usize;
        let bytes = aligned_in_memory(cx.memory(), types.canonical_abi(ty), offset, "return pointer")?;
        Ok(Results(Some(load(cx, *ty, bytes)?)))
    }

    fn linear_lift_from_memory(cx: &mut LiftContext<'_>, ty: InterfaceType, bytes: &[u8]) -> Result<Self> {
        load_tuple_at(cx, ty, bytes).map(|mut values| Results(values.pop()))
    }
}

/// Loads the parameter or result list `ty` from where `bytes` (wasmtime's 0-byte cut, see
/// `DYNAMIC_ABI`) start in guest memory, its real extent checked.
fn load_tuple_at(cx: &mut LiftContext<'_>, ty: InterfaceType, bytes: &[u8]) -> Result<Vec<Value>> {
    let types = cx.types;
    let field_types = tuple_types(types, ty)?;
    let offset = memory_offset(cx.memory(), bytes)?;
    let bytes = in_memory(cx.memory(), types.canonical_abi(&ty), offset)?;
    load_fields(cx, field_types, bytes)
}

fn check_arity(expected: usize, given: usize) -> Result<()> {
    if expected != given {
        bail!("expected {expected} values, got {given}");
    }
    Ok(())
}

/// Where `bytes` (the empty slice wasmtime cut at the address, `DYNAMIC_ABI` being 0 bytes) start
/// in `memory`.
fn memory_offset(memory: &[u8], bytes: &[u8]) -> Result<usize> {
    let offset = (bytes.as_ptr() as usize).wrapping_sub(memory.as_ptr() as usize);
    if offset > memory.len() {
        bail!("a pointer outside the guest's memory");
    }
    Ok(offset)
}

/// The `abi.size32` bytes at `offset`, if they are in `memory` and `offset` is aligned for them
/// (`what` names the address in the error).
fn aligned_in_memory<'m>(memory: &'m [u8], abi: &CanonicalAbiInfo, offset: usize, what: &str) -> Result<&'m [u8]> {
    if !offset.is_multiple_of(abi.align32 as usize) {
        bail!("{what} not aligned");
    }
    in_memory(memory, abi, offset)
}

/// The `abi.size32` bytes at `offset`, if they are in `memory`.
fn in_memory<'m>(memory: &'m [u8], abi: &CanonicalAbiInfo, offset: usize) -> Result<&'m [u8]> {
    memory
        .get(offset..)
        .and_then(|rest| rest.get(..abi.size32 as usize))
        .ok_or_else(|| format_err!("pointer out of bounds of memory"))
}

/// The discriminant's size in bytes for `cases` cases (the canonical ABI's rule).
fn discriminant_size(cases: usize) -> usize {
    match cases {
        0..=0x100 => 1,
        0x101..=0x10000 => 2,
        _ => 4,
    }
}

/// The `u32` words of a flags value with `count` flags: bits set for `flags`.
fn flag_words(
    names: impl Iterator<Item = impl AsRef<str>> + Clone,
    count: usize,
    flags: &[String],
) -> Result<Vec<u32>> {
    let mut words = vec![0u32; count.div_ceil(32)];
    for flag in flags {
        let Some(bit) = names.clone().position(|name| name.as_ref() == flag) else {
            bail!("unknown flag: `{flag}`");
        };
        words[bit / 32] |= 1 << (bit % 32);
    }
    Ok(words)
}

/// The names of the flags set in `words`.
fn flags_of(cx: &mut LiftContext<'_>, names: &[&String], words: &[u32]) -> Result<Vec<String>> {
    let mut flags = Vec::new();
    for (index, name) in names.iter().enumerate() {
        if words
            .get(index / 32)
            .is_some_and(|word| word & (1 << (index % 32)) != 0)
        {
            cx.consume_fuel(name.len())?;
            flags.push((*name).clone());
        }
    }
    Ok(flags)
}

/// A variant-like value's case index and payload, checked against the case types.
struct Case<'v> {
    index: u32,
    payload: Option<(&'v Value, InterfaceType)>,
}

fn case<'v>(
    expected: Option<InterfaceType>,
    index: usize,
    payload: Option<&'v Value>,
    name: &dyn std::fmt::Display,
) -> Result<Case<'v>> {
    let payload = match (payload, expected) {
        (Some(value), Some(ty)) => Some((value, ty)),
        (None, None) => None,
        (Some(_), None) => bail!("case `{name}` takes no payload"),
        (None, Some(_)) => bail!("case `{name}` needs a payload"),
    };
    Ok(Case {
        index: u32::try_from(index)?,
        payload,
    })
}

/// The case of `value` for the variant-like type `ty`, with its number of cases and layout.
fn variant_case<'v>(types: &ComponentTypes, ty: InterfaceType, value: &'v Value) -> Result<(Case<'v>, usize, u32)> {
    let found = match (ty, value) {
        (InterfaceType::Variant(index), Value::Variant(name, payload)) => {
            let variant = &types[index];
            let Some((position, _, expected)) = variant.cases.get_full(name.as_str()) else {
                bail!("unknown variant case: `{name}`");
            };
            let case = case(*expected, position, payload.as_deref(), name)?;
            (case, variant.cases.len(), variant.info.payload_offset32)
        }
        (InterfaceType::Enum(index), Value::Enum(name)) => {
            let ty = &types[index];
            let Some(position) = ty.names.get_index_of(name.as_str()) else {
                bail!("unknown enum case: `{name}`");
            };
            (
                case(None, position, None, name)?,
                ty.names.len(),
                ty.info.payload_offset32,
            )
        }
        (InterfaceType::Option(index), Value::Option(payload)) => {
            let ty = &types[index];
            let case = match payload {
                None => case(None, 0, None, &"none")?,
                Some(value) => case(Some(ty.ty), 1, Some(value), &"some")?,
            };
            (case, 2, ty.info.payload_offset32)
        }
        (InterfaceType::Result(index), Value::Result(result)) => {
            let ty = &types[index];
            let case = match result {
                Ok(payload) => case(ty.ok, 0, payload.as_deref(), &"ok")?,
                Err(payload) => case(ty.err, 1, payload.as_deref(), &"err")?,
            };
            (case, 2, ty.info.payload_offset32)
        }
        _ => return unexpected(ty, value),
    };
    Ok(found)
}

#[cold]
fn unexpected<T>(ty: InterfaceType, value: &Value) -> Result<T> {
    bail!("type mismatch: expected {ty:?}, found {}", value.kind())
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::Bool(_) => "bool",
            Value::S8(_) => "s8",
            Value::U8(_) => "u8",
            Value::S16(_) => "s16",
            Value::U16(_) => "u16",
            Value::S32(_) => "s32",
            Value::U32(_) => "u32",
            Value::S64(_) => "s64",
            Value::U64(_) => "u64",
            Value::Float32(_) => "f32",
            Value::Float64(_) => "f64",
            Value::Char(_) => "char",
            Value::String(_) => "string",
            Value::List(_) | Value::Numbers(..) => "list",
            Value::Record(_) => "record",
            Value::Tuple(_) => "tuple",
            Value::Variant(..) => "variant",
            Value::Enum(_) => "enum",
            Value::Option(_) => "option",
            Value::Result(_) => "result",
            Value::Flags(_) => "flags",
            Value::Resource(_) => "resource",
            Value::Stream(_) => "stream",
            Value::Future(_) => "future",
        }
    }
}

type FlatOut<'a, 'b> = std::slice::IterMut<'a, MaybeUninit<ValRaw>>;

fn next_slot<'a>(dst: &mut FlatOut<'a, '_>) -> Result<&'a mut MaybeUninit<ValRaw>> {
    dst.next().ok_or_else(|| format_err!("more flat values than slots"))
}

/// Lowers `value` of type `ty` into the next flat slots of `dst`.
fn lower_flat<T>(
    cx: &mut LowerContext<'_, T>,
    ty: InterfaceType,
    value: &Value,
    dst: &mut FlatOut<'_, '_>,
) -> Result<()> {
    let types = cx.types;
    match (ty, value) {
        (InterfaceType::Bool, Value::Bool(v)) => v.linear_lower_to_flat(cx, ty, next_slot(dst)?),
        (InterfaceType::S8, Value::S8(v)) => v.linear_lower_to_flat(cx, ty, next_slot(dst)?),
        (InterfaceType::U8, Value::U8(v)) => v.linear_lower_to_flat(cx, ty, next_slot(dst)?),
        (InterfaceType::S16, Value::S16(v)) => v.linear_lower_to_flat(cx, ty, next_slot(dst)?),
        (InterfaceType::U16, Value::U16(v)) => v.linear_lower_to_flat(cx, ty, next_slot(dst)?),
        (InterfaceType::S32, Value::S32(v)) => v.linear_lower_to_flat(cx, ty, next_slot(dst)?),
        (InterfaceType::U32, Value::U32(v)) => v.linear_lower_to_flat(cx, ty, next_slot(dst)?),
        (InterfaceType::S64, Value::S64(v)) => v.linear_lower_to_flat(cx, ty, next_slot(dst)?),
        (InterfaceType::U64, Value::U64(v)) => v.linear_lower_to_flat(cx, ty, next_slot(dst)?),
        (InterfaceType::Float32, Value::Float32(v)) => v.linear_lower_to_flat(cx, ty, next_slot(dst)?),
        (InterfaceType::Float64, Value::Float64(v)) => v.linear_lower_to_flat(cx, ty, next_slot(dst)?),
        (InterfaceType::Char, Value::Char(v)) => v.linear_lower_to_flat(cx, ty, next_slot(dst)?),
        (InterfaceType::Stream(_), Value::Stream(Transmit::Wasm(v))) => v.linear_lower_to_flat(cx, ty, next_slot(dst)?),
        (InterfaceType::Future(_), Value::Future(Transmit::Wasm(v))) => v.linear_lower_to_flat(cx, ty, next_slot(dst)?),
        (InterfaceType::Own(_) | InterfaceType::Borrow(_), Value::Resource(v)) => {
            v.linear_lower_to_flat(cx, ty, next_slot(dst)?)
        }
        (InterfaceType::String, Value::String(text)) => {
            let mut pair = MaybeUninit::<[ValRaw; 2]>::uninit();
            text.as_str().linear_lower_to_flat(cx, ty, &mut pair)?;
            // SAFETY: lowering a string writes both of its flat values.
            let [ptr, len] = unsafe { pair.assume_init() };
            next_slot(dst)?.write(ptr);
            next_slot(dst)?.write(len);
            Ok(())
        }
        (InterfaceType::List(list), Value::List(_) | Value::Numbers(..)) => {
            let (ptr, len) = lower_list(cx, types[list].element, value)?;
            next_slot(dst)?.write(ValRaw::i64(ptr as i64));
            next_slot(dst)?.write(ValRaw::i64(len as i64));
            Ok(())
        }
        (InterfaceType::Record(record), Value::Record(fields)) => {
            let field_types = &types[record].fields;
            check_arity(field_types.len(), fields.len())?;
            for ((_, value), field) in fields.iter().zip(field_types.iter()) {
                lower_flat(cx, field.ty, value, dst)?;
            }
            Ok(())
        }
        (InterfaceType::Tuple(tuple), Value::Tuple(values)) => {
            let item_types = &types[tuple].types;
            check_arity(item_types.len(), values.len())?;
            for (value, ty) in values.iter().zip(item_types.iter()) {
                lower_flat(cx, *ty, value, dst)?;
            }
            Ok(())
        }
        (InterfaceType::Flags(flags), Value::Flags(set)) => {
            let names = &types[flags].names;
            for word in flag_words(names.iter(), names.len(), set)? {
                next_slot(dst)?.write(ValRaw::u32(word));
            }
            Ok(())
        }
        (
            InterfaceType::Variant(_) | InterfaceType::Enum(_) | InterfaceType::Option(_) | InterfaceType::Result(_),
            _,
        ) => {
            let (case, _, _) = variant_case(types, ty, value)?;
            next_slot(dst)?.write(ValRaw::u32(case.index));
            // The payload's flat values, then zeros up to the widest case's.
            let payload_count = match case.payload {
                Some((value, payload_ty)) => {
                    lower_flat(cx, payload_ty, value, dst)?;
                    flat_count(types, &payload_ty, usize::MAX).unwrap_or(0)
                }
                None => 0,
            };
            let total = flat_count(types, &ty, usize::MAX).unwrap_or(1);
            for _ in (1 + payload_count)..total {
                next_slot(dst)?.write(ValRaw::u64(0));
            }
            Ok(())
        }
        _ => unexpected(ty, value),
    }
}

/// Stores `value` of type `ty` at `offset` in guest memory (inside a block the guest allocated or
/// wasmtime checked).
fn store<T>(cx: &mut LowerContext<'_, T>, ty: InterfaceType, value: &Value, offset: usize) -> Result<()> {
    let types = cx.types;
    match (ty, value) {
        (InterfaceType::Bool, Value::Bool(v)) => v.linear_lower_to_memory(cx, ty, offset),
        (InterfaceType::S8, Value::S8(v)) => v.linear_lower_to_memory(cx, ty, offset),
        (InterfaceType::U8, Value::U8(v)) => v.linear_lower_to_memory(cx, ty, offset),
        (InterfaceType::S16, Value::S16(v)) => v.linear_lower_to_memory(cx, ty, offset),
        (InterfaceType::U16, Value::U16(v)) => v.linear_lower_to_memory(cx, ty, offset),
        (InterfaceType::S32, Value::S32(v)) => v.linear_lower_to_memory(cx, ty, offset),
        (InterfaceType::U32, Value::U32(v)) => v.linear_lower_to_memory(cx, ty, offset),
        (InterfaceType::S64, Value::S64(v)) => v.linear_lower_to_memory(cx, ty, offset),
        (InterfaceType::U64, Value::U64(v)) => v.linear_lower_to_memory(cx, ty, offset),
        (InterfaceType::Float32, Value::Float32(v)) => v.linear_lower_to_memory(cx, ty, offset),
        (InterfaceType::Float64, Value::Float64(v)) => v.linear_lower_to_memory(cx, ty, offset),
        (InterfaceType::Char, Value::Char(v)) => v.linear_lower_to_memory(cx, ty, offset),
        (InterfaceType::Stream(_), Value::Stream(Transmit::Wasm(v))) => v.linear_lower_to_memory(cx, ty, offset),
        (InterfaceType::Future(_), Value::Future(Transmit::Wasm(v))) => v.linear_lower_to_memory(cx, ty, offset),
        (InterfaceType::Own(_) | InterfaceType::Borrow(_), Value::Resource(v)) => {
            v.linear_lower_to_memory(cx, ty, offset)
        }
        (InterfaceType::String, Value::String(text)) => text.as_str().linear_lower_to_memory(cx, ty, offset),
        (InterfaceType::List(list), Value::List(_) | Value::Numbers(..)) => {
            let (ptr, len) = lower_list(cx, types[list].element, value)?;
            (ptr as u32).linear_lower_to_memory(cx, InterfaceType::U32, offset)?;
            (len as u32).linear_lower_to_memory(cx, InterfaceType::U32, offset + 4)
        }
        (InterfaceType::Record(record), Value::Record(fields)) => {
            let field_types = &types[record].fields;
            check_arity(field_types.len(), fields.len())?;
            let mut next = offset;
            for ((_, value), field) in fields.iter().zip(field_types.iter()) {
                let at = types.canonical_abi(&field.ty).next_field32_size(&mut next);
                store(cx, field.ty, value, at)?;
            }
            Ok(())
        }
        (InterfaceType::Tuple(tuple), Value::Tuple(values)) => store_fields(cx, &types[tuple].types, values, offset),
        (InterfaceType::Flags(flags), Value::Flags(set)) => {
            let names = &types[flags].names;
            let words = flag_words(names.iter(), names.len(), set)?;
            match names.len() {
                0 => Ok(()),
                1..=8 => (words[0] as u8).linear_lower_to_memory(cx, InterfaceType::U8, offset),
                9..=16 => (words[0] as u16).linear_lower_to_memory(cx, InterfaceType::U16, offset),
                _ => {
                    for (index, word) in words.iter().enumerate() {
                        word.linear_lower_to_memory(cx, InterfaceType::U32, offset + 4 * index)?;
                    }
                    Ok(())
                }
            }
        }
        (
            InterfaceType::Variant(_) | InterfaceType::Enum(_) | InterfaceType::Option(_) | InterfaceType::Result(_),
            _,
        ) => {
            let (case, cases, payload_offset) = variant_case(types, ty, value)?;
            match discriminant_size(cases) {
                1 => (case.index as u8).linear_lower_to_memory(cx, InterfaceType::U8, offset)?,
                2 => (case.index as u16).linear_lower_to_memory(cx, InterfaceType::U16, offset)?,
                _ => case.index.linear_lower_to_memory(cx, InterfaceType::U32, offset)?,
            }
            if let Some((value, payload_ty)) = case.payload {
                store(cx, payload_ty, value, offset + payload_offset as usize)?;
            }
            Ok(())
        }
        _ => unexpected(ty, value),
    }
}

/// Stores `values` as the fields of a tuple of `field_types` at `offset`.
fn store_fields<T>(
    cx: &mut LowerContext<'_, T>,
    field_types: &[InterfaceType],
    values: &[Value],
    offset: usize,
) -> Result<()> {
    check_arity(field_types.len(), values.len())?;
    let types = cx.types;
    let mut next = offset;
    for (value, ty) in values.iter().zip(field_types) {
        let at = types.canonical_abi(ty).next_field32_size(&mut next);
        store(cx, *ty, value, at)?;
    }
    Ok(())
}

/// Copies a list into memory the guest allocates: a numeric list's bytes in one copy.
fn lower_list<T>(cx: &mut LowerContext<'_, T>, element: InterfaceType, value: &Value) -> Result<(usize, usize)> {
    let abi = cx.types.canonical_abi(&element);
    let element_size = abi.size32 as usize;
    match value {
        Value::Numbers(_, Bytes::Placed { .. }) => bail!("a lifted list cannot be lowered again"),
        Value::Numbers(numeric, bytes) => {
            let bytes = bytes.as_slice();
            if Numeric::of_interface(&element) != Some(*numeric) {
                bail!("a list of {numeric:?} for a list of {element:?}");
            }
            let size = numeric.size();
            if bytes.len() % size != 0 {
                bail!("a typed array whose length is not a whole number of elements");
            }
            let ptr = cx.realloc(0, 0, abi.align32, bytes.len())?;
            let Some(target) = cx.as_slice_mut().get_mut(ptr..ptr + bytes.len()) else {
                bail!("list pointer out of bounds of memory");
            };
            target.copy_from_slice(bytes);
            Ok((ptr, bytes.len() / size))
        }
        Value::List(items) => {
            let size = items
                .len()
                .checked_mul(element_size)
                .ok_or_else(|| format_err!("size overflow copying a list"))?;
            let ptr = cx.realloc(0, 0, abi.align32, size)?;
            for (index, item) in items.iter().enumerate() {
                store(cx, element, item, ptr + index * element_size)?;
            }
            Ok((ptr, items.len()))
        }
        _ => bail!("type mismatch: expected a list, found {}", value.kind()),
    }
}

fn next_value<'a>(src: &mut std::slice::Iter<'a, ValRaw>) -> Result<&'a ValRaw> {
    src.next()
        .ok_or_else(|| format_err!("fewer flat values than the type takes"))
}

/// Lifts a value of type `ty` from the next flat values of `src`.
fn lift_flat(cx: &mut LiftContext<'_>, ty: InterfaceType, src: &mut std::slice::Iter<'_, ValRaw>) -> Result<Value> {
    let types = cx.types;
    Ok(match ty {
        InterfaceType::Bool => Value::Bool(bool::linear_lift_from_flat(cx, ty, next_value(src)?)?),
        InterfaceType::S8 => Value::S8(i8::linear_lift_from_flat(cx, ty, next_value(src)?)?),
        InterfaceType::U8 => Value::U8(u8::linear_lift_from_flat(cx, ty, next_value(src)?)?),
        InterfaceType::S16 => Value::S16(i16::linear_lift_from_flat(cx, ty, next_value(src)?)?),
        InterfaceType::U16 => Value::U16(u16::linear_lift_from_flat(cx, ty, next_value(src)?)?),
        InterfaceType::S32 => Value::S32(i32::linear_lift_from_flat(cx, ty, next_value(src)?)?),
        InterfaceType::U32 => Value::U32(u32::linear_lift_from_flat(cx, ty, next_value(src)?)?),
        InterfaceType::S64 => Value::S64(i64::linear_lift_from_flat(cx, ty, next_value(src)?)?),
        InterfaceType::U64 => Value::U64(u64::linear_lift_from_flat(cx, ty, next_value(src)?)?),
        InterfaceType::Float32 => Value::Float32(f32::linear_lift_from_flat(cx, ty, next_value(src)?)?),
        InterfaceType::Float64 => Value::Float64(f64::linear_lift_from_flat(cx, ty, next_value(src)?)?),
        InterfaceType::Char => Value::Char(char::linear_lift_from_flat(cx, ty, next_value(src)?)?),
        InterfaceType::Own(_) | InterfaceType::Borrow(_) => {
            Value::Resource(ResourceAny::linear_lift_from_flat(cx, ty, next_value(src)?)?)
        }
        InterfaceType::Stream(_) => Value::Stream(Transmit::Wasm(StreamAny::linear_lift_from_flat(
            cx,
            ty,
            next_value(src)?,
        )?)),
        InterfaceType::Future(_) => Value::Future(Transmit::Wasm(FutureAny::linear_lift_from_flat(
            cx,
            ty,
            next_value(src)?,
        )?)),
        InterfaceType::String => {
            let pair = [*next_value(src)?, *next_value(src)?];
            Value::String(String::linear_lift_from_flat(cx, ty, &pair)?)
        }
        InterfaceType::List(list) => {
            let ptr = next_value(src)?.get_u32() as usize;
            let len = next_value(src)?.get_u32() as usize;
            load_list(cx, types[list].element, ptr, len)?
        }
        InterfaceType::Record(record) => {
            let fields = &types[record].fields;
            cx.consume_fuel_array(fields.len(), size_of::<(String, Value)>())?;
            let mut values = Vec::with_capacity(fields.len());
            for field in fields.iter() {
                cx.consume_fuel(field.name.len())?;
                values.push((field.name.clone(), lift_flat(cx, field.ty, src)?));
            }
            Value::Record(values)
        }
        InterfaceType::Tuple(tuple) => {
            let item_types = &types[tuple].types;
            cx.consume_fuel_array(item_types.len(), size_of::<Value>())?;
            Value::Tuple(
                item_types
                    .iter()
                    .map(|ty| lift_flat(cx, *ty, src))
                    .collect::<Result<_>>()?,
            )
        }
        InterfaceType::Flags(flags) => {
            let names: Vec<&String> = types[flags].names.iter().collect();
            let mut words = Vec::new();
            for _ in 0..names.len().div_ceil(32) {
                words.push(next_value(src)?.get_u32());
            }
            Value::Flags(flags_of(cx, &names, &words)?)
        }
        InterfaceType::Variant(_) | InterfaceType::Enum(_) | InterfaceType::Option(_) | InterfaceType::Result(_) => {
            let index = next_value(src)?.get_u32();
            let payload_ty = case_type(types, ty, index)?;
            let payload_count = match payload_ty {
                Some(payload_ty) => flat_count(types, &payload_ty, usize::MAX).unwrap_or(0),
                None => 0,
            };
            let payload = match payload_ty {
                Some(payload_ty) => {
                    cx.consume_fuel(size_of::<Value>())?;
                    Some(Box::new(lift_flat(cx, payload_ty, src)?))
                }
                None => None,
            };
            let total = flat_count(types, &ty, usize::MAX).unwrap_or(1);
            for _ in (1 + payload_count)..total {
                next_value(src)?;
            }
            variant_value(cx, ty, index, payload)?
        }
        _ => bail!("values of type {ty:?} cannot cross here"),
    })
}

/// The payload type of case `index` of the variant-like type `ty`.
fn case_type(types: &ComponentTypes, ty: InterfaceType, index: u32) -> Result<Option<InterfaceType>> {
    let index = index as usize;
    let found = match ty {
        InterfaceType::Variant(variant) => types[variant].cases.get_index(index).map(|(_, ty)| *ty),
        InterfaceType::Enum(ty) => (index < types[ty].names.len()).then_some(None),
        InterfaceType::Option(option) => match index {
            0 => Some(None),
            1 => Some(Some(types[option].ty)),
            _ => None,
        },
        InterfaceType::Result(result) => match index {
            0 => Some(types[result].ok),
            1 => Some(types[result].err),
            _ => None,
        },
        _ => None,
    };
    found.ok_or_else(|| format_err!("discriminant {index} out of range"))
}

/// The value of case `index` of the variant-like type `ty` with `payload`.
fn variant_value(
    cx: &mut LiftContext<'_>,
    ty: InterfaceType,
    index: u32,
    payload: Option<Box<Value>>,
) -> Result<Value> {
    let types = cx.types;
    Ok(match ty {
        InterfaceType::Variant(variant) => {
            let (name, _) = types[variant]
                .cases
                .get_index(index as usize)
                .ok_or_else(|| format_err!("discriminant {index} out of range"))?;
            cx.consume_fuel(name.len())?;
            Value::Variant(name.clone(), payload)
        }
        InterfaceType::Enum(enumeration) => {
            let names = &types[enumeration].names;
            if index as usize >= names.len() {
                bail!("discriminant {index} out of range");
            }
            let name = &names[index as usize];
            cx.consume_fuel(name.len())?;
            Value::Enum(name.clone())
        }
        InterfaceType::Option(_) => Value::Option(payload),
        _ if index == 0 => Value::Result(Ok(payload)),
        _ => Value::Result(Err(payload)),
    })
}

/// Loads a value of type `ty` from `bytes` (exactly its size, in guest memory).
fn load(cx: &mut LiftContext<'_>, ty: InterfaceType, bytes: &[u8]) -> Result<Value> {
    let types = cx.types;
    Ok(match ty {
        InterfaceType::Bool => Value::Bool(bool::linear_lift_from_memory(cx, ty, bytes)?),
        InterfaceType::S8 => Value::S8(i8::linear_lift_from_memory(cx, ty, bytes)?),
        InterfaceType::U8 => Value::U8(u8::linear_lift_from_memory(cx, ty, bytes)?),
        InterfaceType::S16 => Value::S16(i16::linear_lift_from_memory(cx, ty, bytes)?),
        InterfaceType::U16 => Value::U16(u16::linear_lift_from_memory(cx, ty, bytes)?),
        InterfaceType::S32 => Value::S32(i32::linear_lift_from_memory(cx, ty, bytes)?),
        InterfaceType::U32 => Value::U32(u32::linear_lift_from_memory(cx, ty, bytes)?),
        InterfaceType::S64 => Value::S64(i64::linear_lift_from_memory(cx, ty, bytes)?),
        InterfaceType::U64 => Value::U64(u64::linear_lift_from_memory(cx, ty, bytes)?),
        InterfaceType::Float32 => Value::Float32(f32::linear_lift_from_memory(cx, ty, bytes)?),
        InterfaceType::Float64 => Value::Float64(f64::linear_lift_from_memory(cx, ty, bytes)?),
        InterfaceType::Char => Value::Char(char::linear_lift_from_memory(cx, ty, bytes)?),
        InterfaceType::Own(_) | InterfaceType::Borrow(_) => {
            Value::Resource(ResourceAny::linear_lift_from_memory(cx, ty, bytes)?)
        }
        InterfaceType::Stream(_) => Value::Stream(Transmit::Wasm(StreamAny::linear_lift_from_memory(cx, ty, bytes)?)),
        InterfaceType::Future(_) => Value::Future(Transmit::Wasm(FutureAny::linear_lift_from_memory(cx, ty, bytes)?)),
        InterfaceType::String => Value::String(String::linear_lift_from_memory(cx, ty, bytes)?),
        InterfaceType::List(list) => {
            let ptr = u32::from_le_bytes(bytes[..4].try_into()?) as usize;
            let len = u32::from_le_bytes(bytes[4..8].try_into()?) as usize;
            load_list(cx, types[list].element, ptr, len)?
        }
        InterfaceType::Record(record) => {
            let fields = &types[record].fields;
            cx.consume_fuel_array(fields.len(), size_of::<(String, Value)>())?;
            let mut next = 0;
            let mut values = Vec::with_capacity(fields.len());
            for field in fields.iter() {
                cx.consume_fuel(field.name.len())?;
                let abi = types.canonical_abi(&field.ty);
                let at = abi.next_field32_size(&mut next);
                values.push((
                    field.name.clone(),
                    load(cx, field.ty, &bytes[at..][..abi.size32 as usize])?,
                ));
            }
            Value::Record(values)
        }
        InterfaceType::Tuple(tuple) => Value::Tuple(load_fields(cx, &types[tuple].types, bytes)?),
        InterfaceType::Flags(flags) => {
            let names: Vec<&String> = types[flags].names.iter().collect();
            let words = match names.len() {
                0 => Vec::new(),
                1..=8 => vec![u32::from(bytes[0])],
                9..=16 => vec![u32::from(u16::from_le_bytes([bytes[0], bytes[1]]))],
                count => (0..count.div_ceil(32))
                    .map(|index| u32::from_le_bytes(bytes[index * 4..][..4].try_into().unwrap_or_default()))
                    .collect(),
            };
            Value::Flags(flags_of(cx, &names, &words)?)
        }
        InterfaceType::Variant(_) | InterfaceType::Enum(_) | InterfaceType::Option(_) | InterfaceType::Result(_) => {
            let (cases, payload_offset) = match ty {
                InterfaceType::Variant(index) => (types[index].cases.len(), types[index].info.payload_offset32),
                InterfaceType::Enum(index) => (types[index].names.len(), types[index].info.payload_offset32),
                InterfaceType::Option(index) => (2, types[index].info.payload_offset32),
                InterfaceType::Result(index) => (2, types[index].info.payload_offset32),
                _ => unreachable!("matched above"),
            };
            let index = match discriminant_size(cases) {
                1 => u32::from(bytes[0]),
                2 => u32::from(u16::from_le_bytes([bytes[0], bytes[1]])),
                _ => u32::from_le_bytes(bytes[..4].try_into()?),
            };
            let payload = match case_type(types, ty, index)? {
                Some(payload_ty) => {
                    cx.consume_fuel(size_of::<Value>())?;
                    let size = types.canonical_abi(&payload_ty).size32 as usize;
                    let start = payload_offset as usize;
                    Some(Box::new(load(cx, payload_ty, &bytes[start..][..size])?))
                }
                None => None,
            };
            variant_value(cx, ty, index, payload)?
        }
        _ => bail!("values of type {ty:?} cannot cross here"),
    })
}

/// Loads the fields of a tuple of `field_types` from `bytes`.
fn load_fields(cx: &mut LiftContext<'_>, field_types: &[InterfaceType], bytes: &[u8]) -> Result<Vec<Value>> {
    let types = cx.types;
    cx.consume_fuel_array(field_types.len(), size_of::<Value>())?;
    let mut next = 0;
    let mut values = Vec::with_capacity(field_types.len());
    for ty in field_types {
        let abi = types.canonical_abi(ty);
        let at = abi.next_field32_size(&mut next);
        values.push(load(cx, *ty, &bytes[at..][..abi.size32 as usize])?);
    }
    Ok(values)
}

/// Loads a list from guest memory: a numeric list's bytes in one copy.
fn load_list(cx: &mut LiftContext<'_>, element: InterfaceType, ptr: usize, len: usize) -> Result<Value> {
    let abi = cx.types.canonical_abi(&element);
    let element_size = abi.size32 as usize;
    let Some(end) = len.checked_mul(element_size).and_then(|size| ptr.checked_add(size)) else {
        bail!("list pointer/length out of bounds of memory");
    };
    if end > cx.memory().len() {
        bail!("list pointer/length out of bounds of memory");
    }
    if !ptr.is_multiple_of(abi.align32 as usize) {
        bail!("list pointer is not aligned");
    }
    if let Some(numeric) = Numeric::of_interface(&element) {
        // The bytes are copied now: once the call returns, the guest may free them.
        cx.consume_fuel(end - ptr)?;
        return Ok(Value::Numbers(numeric, lifted_bytes(&cx.memory()[ptr..end])));
    }
    cx.consume_fuel_array(len, size_of::<Value>())?;
    let memory = cx.memory();
    let items = (0..len)
        .map(|index| load(cx, element, &memory[ptr + index * element_size..][..element_size]))
        .collect::<Result<_>>()?;
    Ok(Value::List(items))
}

/// The number of flat values `ty` takes (saturating: only compared with the small limits).
pub fn flat_values(ty: &Type) -> usize {
    match ty {
        Type::String | Type::List(_) | Type::Map(_) => 2,
        Type::Record(record) => record
            .fields()
            .map(|field| flat_values(&field.ty))
            .fold(0, usize::saturating_add),
        Type::Tuple(tuple) => tuple.types().map(|ty| flat_values(&ty)).fold(0, usize::saturating_add),
        Type::Variant(variant) => {
            1 + variant
                .cases()
                .map(|case| case.ty.as_ref().map_or(0, flat_values))
                .max()
                .unwrap_or(0)
        }
        Type::Option(option) => 1 + flat_values(&option.ty()),
        Type::Result(result) => {
            1 + result
                .ok()
                .as_ref()
                .map_or(0, flat_values)
                .max(result.err().as_ref().map_or(0, flat_values))
        }
        Type::Flags(flags) => flags.names().len().div_ceil(32),
        Type::FixedLengthList(list) => (list.len() as usize).saturating_mul(flat_values(&list.ty())),
        _ => 1,
    }
}

/// The flat values a parameter list takes.
pub fn flat_params(params: impl Iterator<Item = Type>) -> usize {
    params.map(|ty| flat_values(&ty)).fold(0, usize::saturating_add)
}

impl Value {
    /// This value as wasmtime's `Val` (for the few calls made through its dynamic API); `None` for
    /// a stream or future already piped to JS, which only lifted values hold.
    pub fn into_val(self) -> Option<Val> {
        let boxed = |payload: Option<Box<Value>>| -> Option<Option<Box<Val>>> {
            Some(match payload {
                Some(value) => Some(Box::new(value.into_val()?)),
                None => None,
            })
        };
        Some(match self {
            Value::Bool(v) => Val::Bool(v),
            Value::S8(v) => Val::S8(v),
            Value::U8(v) => Val::U8(v),
            Value::S16(v) => Val::S16(v),
            Value::U16(v) => Val::U16(v),
            Value::S32(v) => Val::S32(v),
            Value::U32(v) => Val::U32(v),
            Value::S64(v) => Val::S64(v),
            Value::U64(v) => Val::U64(v),
            Value::Float32(v) => Val::Float32(v),
            Value::Float64(v) => Val::Float64(v),
            Value::Char(v) => Val::Char(v),
            Value::String(v) => Val::String(v),
            Value::List(items) => Val::List(items.into_iter().map(Value::into_val).collect::<Option<_>>()?),
            Value::Numbers(numeric, bytes) => Val::List(
                bytes
                    .as_slice()
                    .chunks_exact(numeric.size())
                    .map(|chunk| numeric.val(chunk))
                    .collect(),
            ),
            Value::Record(fields) => Val::Record(
                fields
                    .into_iter()
                    .map(|(name, value)| Some((name, value.into_val()?)))
                    .collect::<Option<_>>()?,
            ),
            Value::Tuple(items) => Val::Tuple(items.into_iter().map(Value::into_val).collect::<Option<_>>()?),
            Value::Variant(name, payload) => Val::Variant(name, boxed(payload)?),
            Value::Enum(name) => Val::Enum(name),
            Value::Option(payload) => Val::Option(boxed(payload)?),
            Value::Result(Ok(payload)) => Val::Result(Ok(boxed(payload)?)),
            Value::Result(Err(payload)) => Val::Result(Err(boxed(payload)?)),
            Value::Flags(names) => Val::Flags(names),
            Value::Resource(resource) => Val::Resource(resource),
            Value::Stream(Transmit::Wasm(stream)) => Val::Stream(stream),
            Value::Future(Transmit::Wasm(future)) => Val::Future(future),
            Value::Stream(Transmit::Js(_)) | Value::Future(Transmit::Js(_)) => return None,
        })
    }

    /// A `Val` of type `ty` as a `Value`; `None` for kinds that do not cross to JS.
    pub fn from_val(value: Val, ty: &Type) -> Option<Value> {
        let payload = |payload: Option<Box<Val>>, ty: Option<Type>| -> Option<Option<Box<Value>>> {
            match (payload, ty) {
                (Some(value), Some(ty)) => Some(Some(Box::new(Value::from_val(*value, &ty)?))),
                (None, _) => Some(None),
                (Some(_), None) => None,
            }
        };
        Some(match (value, ty) {
            (Val::Bool(v), _) => Value::Bool(v),
            (Val::S8(v), _) => Value::S8(v),
            (Val::U8(v), _) => Value::U8(v),
            (Val::S16(v), _) => Value::S16(v),
            (Val::U16(v), _) => Value::U16(v),
            (Val::S32(v), _) => Value::S32(v),
            (Val::U32(v), _) => Value::U32(v),
            (Val::S64(v), _) => Value::S64(v),
            (Val::U64(v), _) => Value::U64(v),
            (Val::Float32(v), _) => Value::Float32(v),
            (Val::Float64(v), _) => Value::Float64(v),
            (Val::Char(v), _) => Value::Char(v),
            (Val::String(v), _) => Value::String(v),
            (Val::List(items), Type::List(list)) => {
                let element = list.ty();
                match Numeric::of(&element) {
                    Some(numeric) => {
                        let mut bytes = Vec::with_capacity(items.len() * numeric.size());
                        for item in &items {
                            bytes.extend_from_slice(&numeric.bytes_of(item)?[..numeric.size()]);
                        }
                        Value::Numbers(numeric, Bytes::Owned(bytes))
                    }
                    None => Value::List(
                        items
                            .into_iter()
                            .map(|item| Value::from_val(item, &element))
                            .collect::<Option<_>>()?,
                    ),
                }
            }
            (Val::Record(fields), Type::Record(record)) => Value::Record(
                fields
                    .into_iter()
                    .zip(record.fields())
                    .map(|((name, value), field)| Some((name, Value::from_val(value, &field.ty)?)))
                    .collect::<Option<_>>()?,
            ),
            (Val::Tuple(items), Type::Tuple(tuple)) => Value::Tuple(
                items
                    .into_iter()
                    .zip(tuple.types())
                    .map(|(item, ty)| Value::from_val(item, &ty))
                    .collect::<Option<_>>()?,
            ),
            (Val::Variant(name, value), Type::Variant(variant)) => {
                let case_ty = variant.cases().find(|case| case.name == name).and_then(|case| case.ty);
                Value::Variant(name, payload(value, case_ty)?)
            }
            (Val::Enum(name), _) => Value::Enum(name),
            (Val::Option(value), Type::Option(option)) => Value::Option(payload(value, Some(option.ty()))?),
            (Val::Result(Ok(value)), Type::Result(result)) => Value::Result(Ok(payload(value, result.ok())?)),
            (Val::Result(Err(value)), Type::Result(result)) => Value::Result(Err(payload(value, result.err())?)),
            (Val::Flags(names), _) => Value::Flags(names),
            (Val::Resource(resource), _) => Value::Resource(resource),
            (Val::Stream(stream), _) => Value::Stream(Transmit::Wasm(stream)),
            (Val::Future(future), _) => Value::Future(Transmit::Wasm(future)),
            _ => return None,
        })
    }
}

impl Value {
    /// Calls `visit` with each `stream` and `future` inside this value.
    pub fn visit_transmits(&mut self, visit: &mut dyn FnMut(&mut Value) -> Result<()>) -> Result<()> {
        match self {
            Value::Stream(_) | Value::Future(_) => visit(self),
            Value::List(items) | Value::Tuple(items) => {
                items.iter_mut().try_for_each(|item| item.visit_transmits(visit))
            }
            Value::Record(fields) => fields
                .iter_mut()
                .try_for_each(|(_, value)| value.visit_transmits(visit)),
            Value::Variant(_, Some(payload))
            | Value::Option(Some(payload))
            | Value::Result(Ok(Some(payload)) | Err(Some(payload))) => payload.visit_transmits(visit),
            _ => Ok(()),
        }
    }
}

/// A future's value of any type, for wasmtime's typed futures (`FutureReader<Payload>`): written
/// to and read from the guest's buffer by the walk above. A future's value always sits in memory.
#[derive(Debug)]
pub struct Payload(pub Value);

// SAFETY: `Lower` is one slot that is never written (a future's value is never flat); `typecheck`
// accepts any payload, which the walk follows by its `InterfaceType`.
unsafe impl ComponentType for Payload {
    type Lower = [ValRaw; 1];
    const ABI: CanonicalAbiInfo = DYNAMIC_ABI;

    fn typecheck(_ty: &InterfaceType, _types: &InstanceType<'_>) -> Result<()> {
        Ok(())
    }
}

// SAFETY: stores at a checked address only.
unsafe impl Lower for Payload {
    fn linear_lower_to_flat<T>(
        &self,
        _cx: &mut LowerContext<'_, T>,
        _ty: InterfaceType,
        _dst: &mut MaybeUninit<Self::Lower>,
    ) -> Result<()> {
        bail!("a future's value is written to memory")
    }

    fn linear_lower_to_memory<T>(&self, cx: &mut LowerContext<'_, T>, ty: InterfaceType, offset: usize) -> Result<()> {
        let types = cx.types;
        aligned_in_memory(cx.as_slice_mut(), types.canonical_abi(&ty), offset, "a future's buffer")?;
        store(cx, ty, &self.0, offset)
    }
}

// SAFETY: reads from a checked address only.
unsafe impl Lift for Payload {
    fn linear_lift_from_flat(_cx: &mut LiftContext<'_>, _ty: InterfaceType, _src: &Self::Lower) -> Result<Self> {
        bail!("a future's value is read from memory")
    }

    fn linear_lift_from_memory(cx: &mut LiftContext<'_>, ty: InterfaceType, bytes: &[u8]) -> Result<Self> {
        let offset = memory_offset(cx.memory(), bytes)?;
        let types = cx.types;
        let bytes = aligned_in_memory(cx.memory(), types.canonical_abi(&ty), offset, "a future's buffer")?;
        load(cx, ty, bytes).map(Payload)
    }
}
