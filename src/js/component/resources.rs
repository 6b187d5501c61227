//! Resources crossing between JS and a component instance.
//!
//! - A resource the guest exports (`counter`) reaches JS as an object of a class the facade made
//!   for it; the object holds an External over a `ResourceHandle`, which owns the guest handle
//!   until JS disposes it (`[Symbol.dispose]`), passes it back as `own<counter>`, or drops the
//!   object (its finalizer queues the handle, dropped before the instance's next call).
//! - A resource the component imports is implemented by a JS class: each JS object the guest
//!   holds sits in a slot of its type's table, and the guest sees the slot's index.

use std::cell::{Cell, RefCell};
use std::ptr;
use std::rc::{Rc, Weak};

use napi::sys;
use wasmtime::component::{ResourceAny, ResourceType};

use super::values::{Cx, Path, describe, host_resource_any, type_of};
use crate::error::{SandboxError, SandboxResult};
use crate::js::imports::SendlessRef;
use crate::js::values::RawValue;

/// Tells a `ResourceHandle` External from any other External.
const HANDLE_TAG: sys::napi_type_tag = sys::napi_type_tag {
    lower: 0x7f3a_91c4_5d2e_0b61,
    upper: 0x2c84_e6f0_13a9_d57b,
};

thread_local! {
    /// The facade's two helpers: `wrap(Class, handle)` makes a resource object of a class around
    /// a handle, `handleOf(value)` reads the handle of a resource object (or `undefined`).
    static HELPERS: RefCell<Option<(SendlessRef, SendlessRef)>> = const { RefCell::new(None) };
}

/// Keeps the facade's helpers (called once per thread, when the facade loads).
///
/// # Safety
/// Both values must be functions of `env`, the env of this thread.
#[cfg_attr(test, allow(dead_code))] // called by `componentSetup()`, registered only outside `cfg(test)`
pub unsafe fn set_helpers(env: sys::napi_env, wrap: RawValue, handle_of: RawValue) -> bool {
    // SAFETY: forwarded from the caller; the references live as long as the thread's env.
    let helpers = unsafe { SendlessRef::new(env, wrap).zip(SendlessRef::new(env, handle_of)) };
    let installed = helpers.is_some();
    HELPERS.with(|cell| *cell.borrow_mut() = helpers);
    installed
}

/// A guest resource handle that JS holds.
pub struct ResourceHandle {
    owner: Weak<Resources>,
    resource: Cell<Option<ResourceAny>>,
    /// Owned handles are dropped when JS lets go of them; borrowed ones belong to the guest.
    owned: bool,
}

/// A resource type the guest exports, and the JS class for it (held weakly: the facade keeps
/// it, and it refers back to the instance).
struct ExportedClass {
    ty: ResourceType,
    name: String,
    class: Option<SendlessRef>,
}

/// A resource type JS implements for the guest, with the objects the guest holds.
pub struct HostType {
    pub type_id: u32,
    pub name: String,
    slots: RefCell<Vec<Option<SendlessRef>>>,
}

/// An instance's resources, shared by its calls, its imports and its handles.
pub struct Resources {
    me: Weak<Resources>,
    env: sys::napi_env,
    exported: RefCell<Vec<ExportedClass>>,
    host: Vec<HostType>,
    /// Owned handles JS dropped without disposing them: dropped before the next call.
    collected: RefCell<Vec<ResourceAny>>,
    /// The exception the last failing JS import threw, to become the call's `cause`.
    exception: RefCell<Option<SendlessRef>>,
}

impl Resources {
    pub fn new(env: sys::napi_env, host: Vec<(u32, String)>) -> Rc<Self> {
        Rc::new_cyclic(|me| Self {
            me: me.clone(),
            env,
            exported: RefCell::new(Vec::new()),
            host: host
                .into_iter()
                .map(|(type_id, name)| HostType {
                    type_id,
                    name,
                    slots: RefCell::new(Vec::new()),
                })
                .collect(),
            collected: RefCell::new(Vec::new()),
            exception: RefCell::new(None),
        })
    }

    /// The env of the instance's thread.
    pub fn env(&self) -> sys::napi_env {
        self.env
    }

    /// Registers an exported resource type (its class is set later by `set_class`).
    pub fn add_exported(&self, ty: ResourceType, name: String) {
        self.exported.borrow_mut().push(ExportedClass { ty, name, class: None });
    }

    /// Sets the JS class of the exported resource at `index` (held weakly).
    ///
    /// # Safety
    /// `class` must be a function of this instance's env.
    pub unsafe fn set_class(&self, index: usize, class: RawValue) -> bool {
        let mut exported = self.exported.borrow_mut();
        let Some(entry) = exported.get_mut(index) else {
            return false;
        };
        // SAFETY: forwarded from the caller.
        entry.class = unsafe { SendlessRef::weak(self.env, class) };
        entry.class.is_some()
    }

    /// Takes the handles JS dropped, for the instance to drop in the guest.
    pub fn take_collected(&self) -> Vec<ResourceAny> {
        std::mem::take(&mut *self.collected.borrow_mut())
    }

    /// Keeps the exception a JS import threw, in a one-element array (a reference can hold
    /// only objects; a thrown string or number is kept too).
    pub fn keep_exception(&self, exception: RawValue) {
        let mut holder = ptr::null_mut();
        // SAFETY: `exception` belongs to this env, on its thread.
        let kept = unsafe {
            sys::napi_create_array_with_length(self.env, 1, &mut holder) == sys::Status::napi_ok
                && sys::napi_set_element(self.env, holder, 0, exception) == sys::Status::napi_ok
        };
        // SAFETY: as above.
        *self.exception.borrow_mut() = if kept {
            unsafe { SendlessRef::new(self.env, holder) }
        } else {
            None
        };
    }

    pub fn take_exception(&self) -> Option<RawValue> {
        let holder = self.exception.borrow_mut().take()?.value()?;
        let mut exception = ptr::null_mut();
        // SAFETY: the holder array made in `keep_exception`.
        let status = unsafe { sys::napi_get_element(self.env, holder, 0, &mut exception) };
        (status == sys::Status::napi_ok).then_some(exception)
    }

    /// The host type of the imported resource with `type_id`.
    pub fn host_type(&self, type_id: u32) -> Option<&HostType> {
        self.host.iter().find(|host| host.type_id == type_id)
    }

    /// The guest dropped its handle to the host resource `rep`: frees its slot and returns the
    /// JS object, for the facade to dispose.
    pub fn release_host(&self, type_id: u32, rep: u32) -> Option<RawValue> {
        let host = self.host_type(type_id)?;
        let kept = host.slots.borrow_mut().get_mut(rep as usize)?.take()?;
        kept.value()
    }

    /// Lowers a resource object to the guest: a handle of an exported type, or a JS object
    /// implementing an imported type.
    pub fn lower(
        self: &Resources,
        cx: &mut Cx,
        value: RawValue,
        ty: &ResourceType,
        owned: bool,
        path: &Path,
    ) -> SandboxResult<crate::component::Value> {
        let env = cx.env;
        let exported = self.exported.borrow();
        if let Some(class) = exported.iter().find(|class| class.ty == *ty) {
            let expected = format!(
                "a {} resource object of this component instance",
                crate::component::pascal_name(&class.name)
            );
            let handle = handle_of(env, value).ok_or_else(|| {
                SandboxError::InvalidArgType(format!("{path} must be {expected}. Received {}", describe(env, value)))
            })?;
            // SAFETY: `handle_of` checked the type tag: it is an External over a `ResourceHandle`.
            let handle = unsafe { &*handle };
            if !ptr::eq(handle.owner.as_ptr(), self) {
                return Err(SandboxError::InvalidArgValue(format!(
                    "{path} is a resource of another component instance; it must be {expected}"
                )));
            }
            let Some(resource) = handle.resource.get() else {
                return Err(SandboxError::InvalidArgValue(format!(
                    "{path} is a resource handle that was disposed (or whose ownership passed to the guest)"
                )));
            };
            if resource.ty() != *ty {
                return Err(SandboxError::InvalidArgType(format!(
                    "{path} is a resource of another type; it must be {expected}"
                )));
            }
            if owned {
                // Ownership passes to the guest: this object no longer holds the handle.
                handle.resource.set(None);
            }
            return Ok(crate::component::Value::Resource(resource));
        }
        drop(exported);
        let Some(host) = self
            .host
            .iter()
            .find(|host| ResourceType::host_dynamic(host.type_id) == *ty)
        else {
            return Err(SandboxError::Unsupported(format!(
                "{path} is a resource type this instance does not know"
            )));
        };
        if !matches!(
            type_of(env, value),
            sys::ValueType::napi_object | sys::ValueType::napi_function
        ) {
            return Err(SandboxError::InvalidArgType(format!(
                "{path} must be an object implementing the imported resource `{}`. Received {}",
                host.name,
                describe(env, value)
            )));
        }
        let rep = host.slot_of(env, value)?;
        let any = host_resource_any(cx.store()?, rep, host.type_id, owned)?;
        Ok(crate::component::Value::Resource(any))
    }

    /// Lifts a resource to JS: an object of its class for an exported type, the JS object itself
    /// for an imported one.
    pub fn lift(self: &Resources, cx: &mut Cx, resource: ResourceAny, owned: bool) -> SandboxResult<RawValue> {
        let env = cx.env;
        let class = self
            .exported
            .borrow()
            .iter()
            .find(|class| class.ty == resource.ty())
            .map(|class| class.class.as_ref().and_then(SendlessRef::value));
        if let Some(class) = class {
            let class = class.ok_or_else(|| {
                SandboxError::Internal("the resource's class was collected with its instance".to_owned())
            })?;
            return self.wrap(env, class, resource, owned);
        }
        let dynamic = resource
            .try_into_resource_dynamic(&mut *cx.store()?)
            .map_err(|error| SandboxError::Internal(format!("{error:#}")))?;
        let host = self
            .host_type(dynamic.ty())
            .ok_or_else(|| SandboxError::Internal("a host resource of an unknown type".to_owned()))?;
        let slots = host.slots.borrow();
        let kept = slots
            .get(dynamic.rep() as usize)
            .and_then(Option::as_ref)
            .and_then(SendlessRef::value)
            .ok_or_else(|| SandboxError::Internal(format!("no host resource #{}", dynamic.rep())))?;
        Ok(kept)
    }

    fn wrap(&self, env: sys::napi_env, class: RawValue, resource: ResourceAny, owned: bool) -> SandboxResult<RawValue> {
        let owner = self.me.clone();
        let handle = Box::new(ResourceHandle {
            owner,
            resource: Cell::new(Some(resource)),
            owned,
        });
        let mut external = ptr::null_mut();
        let raw = Box::into_raw(handle);
        // SAFETY: the External owns the box; `finalize_handle` frees it.
        let status = unsafe {
            sys::napi_create_external(env, raw.cast(), Some(finalize_handle), ptr::null_mut(), &mut external)
        };
        if status != sys::Status::napi_ok {
            // SAFETY: not handed to Node-API.
            drop(unsafe { Box::from_raw(raw) });
            return Err(SandboxError::Internal("could not make a resource handle".to_owned()));
        }
        // SAFETY: tags the External just made, and tells V8 what the guest handle costs, so
        // that handles JS drops are collected before an instance fills up with them.
        unsafe {
            sys::napi_type_tag_object(env, external, &HANDLE_TAG);
            let mut total = 0;
            sys::napi_adjust_external_memory(env, HANDLE_COST, &mut total);
        }
        HELPERS.with(|helpers| {
            let helpers = helpers.borrow();
            let wrap = helpers
                .as_ref()
                .and_then(|(wrap, _)| wrap.value())
                .ok_or_else(|| SandboxError::Internal("the component facade is not loaded".to_owned()))?;
            let mut receiver = ptr::null_mut();
            let mut object = ptr::null_mut();
            let args = [class, external];
            // SAFETY: calls the facade's own helper with values of this env.
            let status = unsafe {
                sys::napi_get_undefined(env, &mut receiver);
                sys::napi_call_function(env, receiver, wrap, 2, args.as_ptr(), &mut object)
            };
            if status != sys::Status::napi_ok {
                let mut exception = ptr::null_mut();
                // SAFETY: clears what the helper threw.
                unsafe { sys::napi_get_and_clear_last_exception(env, &mut exception) };
                return Err(SandboxError::Internal("making a resource object failed".to_owned()));
            }
            Ok(object)
        })
    }
}

impl HostType {
    /// The slot holding `object`, or a new one.
    fn slot_of(&self, env: sys::napi_env, object: RawValue) -> SandboxResult<u32> {
        let mut slots = self.slots.borrow_mut();
        for (index, slot) in slots.iter().enumerate() {
            if let Some(value) = slot.as_ref().and_then(SendlessRef::value) {
                let mut same = false;
                // SAFETY: both values belong to `env`.
                unsafe { sys::napi_strict_equals(env, value, object, &mut same) };
                if same {
                    return Ok(index as u32);
                }
            }
        }
        // SAFETY: `object` belongs to `env`; the slot is dropped on this thread.
        let kept = unsafe { SendlessRef::new(env, object) }
            .ok_or_else(|| SandboxError::Internal("could not reference a host resource".to_owned()))?;
        let index = match slots.iter().position(Option::is_none) {
            Some(free) => {
                slots[free] = Some(kept);
                free
            }
            None => {
                slots.push(Some(kept));
                slots.len() - 1
            }
        };
        u32::try_from(index).map_err(|_| SandboxError::SandboxLimit("too many host resources".to_owned()))
    }
}

/// The `ResourceHandle` behind a resource object, if it is one.
pub fn handle_of(env: sys::napi_env, value: RawValue) -> Option<*const ResourceHandle> {
    let external = HELPERS.with(|helpers| {
        let helpers = helpers.borrow();
        let handle_of = helpers.as_ref()?.1.value()?;
        let mut receiver = ptr::null_mut();
        let mut external = ptr::null_mut();
        // SAFETY: calls the facade's helper with a value of this env.
        let status = unsafe {
            sys::napi_get_undefined(env, &mut receiver);
            sys::napi_call_function(env, receiver, handle_of, 1, &value, &mut external)
        };
        (status == sys::Status::napi_ok).then_some(external)
    })?;
    if type_of(env, external) != sys::ValueType::napi_external {
        return None;
    }
    let mut tagged = false;
    // SAFETY: `external` is an External of `env`.
    unsafe { sys::napi_check_object_type_tag(env, external, &HANDLE_TAG, &mut tagged) };
    if !tagged {
        return None;
    }
    let mut data = ptr::null_mut();
    // SAFETY: tagged, so an External this module made.
    unsafe { sys::napi_get_value_external(env, external, &mut data) };
    Some(data.cast::<ResourceHandle>().cast_const())
}

/// Disposes the handle behind a resource object: the guest's destructor runs (through `drop`).
/// Returns the resource if it was still held and owned.
pub fn take_for_dispose(env: sys::napi_env, value: RawValue) -> Option<ResourceAny> {
    let handle = handle_of(env, value)?;
    // SAFETY: a live `ResourceHandle` (its External is reachable from `value`).
    let handle = unsafe { &*handle };
    if !handle.owned {
        return None;
    }
    handle.resource.take()
}

/// What one resource handle JS holds is reported to cost V8 (its share of the guest's tables).
const HANDLE_COST: i64 = 1024;

unsafe extern "C" fn finalize_handle(env: sys::napi_env, data: *mut std::ffi::c_void, _hint: *mut std::ffi::c_void) {
    // SAFETY: the box made in `wrap`, finalized once; the cost reported there is taken back.
    let handle = unsafe { Box::from_raw(data.cast::<ResourceHandle>()) };
    let mut total = 0;
    // SAFETY: the env of this finalizer.
    unsafe { sys::napi_adjust_external_memory(env, -HANDLE_COST, &mut total) };
    if handle.owned
        && let (Some(resource), Some(owner)) = (handle.resource.take(), handle.owner.upgrade())
    {
        owner.collected.borrow_mut().push(resource);
    }
}
