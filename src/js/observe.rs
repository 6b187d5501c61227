//! `stats()`, `lastCall` and the profiler's raw samples as JS values, and the profiler's options.

use std::time::Duration;

use napi::bindgen_prelude::{JsValue, Object, Unknown};
use napi::{Env, Result, ValueType};

use crate::error::{SandboxError, SandboxResult};
use crate::js::imports::get_property;
use crate::js::sandbox::own_keys;
use crate::js::values::{describe, integer_in_range};
use crate::store::observe::{CallFigures, Profile};

/// Shortest sampling interval: the epoch tick samples are taken on.
pub const MIN_INTERVAL_US: f64 = 1_000.0;
/// Longest sampling interval.
pub const MAX_INTERVAL_US: f64 = 1_000_000.0;

fn milliseconds(duration: Option<Duration>) -> Option<f64> {
    duration.map(|duration| duration.as_secs_f64() * 1e3)
}

/// `{ calls, wallTimeMs, cpuTimeMs, fuelConsumed, memoryBytes, peakMemoryBytes }`.
pub fn figures_object<'env>(env: &'env Env, figures: &CallFigures, memory_bytes: u64) -> Result<Object<'env>> {
    let mut object = Object::new(env)?;
    object.set("calls", figures.calls as f64)?;
    object.set("wallTimeMs", milliseconds(figures.wall))?;
    object.set("cpuTimeMs", milliseconds(figures.cpu))?;
    object.set("fuelConsumed", figures.fuel.map(|fuel| fuel as f64))?;
    object.set("memoryBytes", memory_bytes as f64)?;
    object.set("peakMemoryBytes", figures.peak_memory_bytes.max(memory_bytes) as f64)?;
    Ok(object)
}

/// `{ intervalUs? }`, the sampling interval.
pub fn parse_profiling_options(env: &Env, options: Option<Unknown>) -> SandboxResult<Duration> {
    let default = Duration::from_micros(MIN_INTERVAL_US as u64);
    let Some(options) = options.filter(|options| options.get_type().ok() != Some(ValueType::Undefined)) else {
        return Ok(default);
    };
    if options.get_type().ok() != Some(ValueType::Object) {
        return Err(SandboxError::InvalidArgType(format!(
            "The \"options\" argument must be of type object. Received {}",
            describe(env, &options)
        )));
    }
    for key in own_keys(env, JsValue::raw(&options))? {
        if key != "intervalUs" {
            return Err(SandboxError::InvalidArgType(format!(
                "Unknown option \"{key}\": the options are intervalUs"
            )));
        }
    }
    let value = get_property(env, JsValue::raw(&options), "intervalUs")?;
    // SAFETY: the value belongs to this env and call.
    let value = unsafe { Unknown::from_raw_unchecked(env.raw(), value) };
    if value.get_type().ok() == Some(ValueType::Undefined) {
        return Ok(default);
    }
    let interval = integer_in_range(env, &value, "options.intervalUs", MIN_INTERVAL_US, MAX_INTERVAL_US)?;
    Ok(Duration::from_micros(interval as u64))
}

/// The raw profile `lib/profile/formats.js` turns into a `.cpuprofile` or a Firefox profile.
pub fn profile_object<'env>(env: &'env Env, profile: &Profile) -> Result<Object<'env>> {
    let mut object = Object::new(env)?;
    object.set("startTime", profile.start_us)?;
    object.set("endTime", profile.end_us)?;
    object.set("intervalUs", profile.interval.as_micros() as f64)?;
    let mut frames = env.create_array(profile.frames.len() as u32)?;
    for (index, frame) in profile.frames.iter().enumerate() {
        let mut item = Object::new(env)?;
        item.set("name", frame.name.as_str())?;
        item.set("kind", if frame.import { "import" } else { "wasm" })?;
        item.set("module", frame.module.as_deref())?;
        item.set("url", frame.url.as_deref())?;
        item.set("line", frame.line)?;
        item.set("column", frame.column)?;
        item.set("offset", frame.offset)?;
        item.set("funcIndex", frame.func_index)?;
        frames.set(index as u32, item)?;
    }
    object.set("frames", frames)?;
    let mut samples = env.create_array(profile.samples.len() as u32)?;
    for (index, sample) in profile.samples.iter().enumerate() {
        let mut item = Object::new(env)?;
        item.set("stack", sample.stack.clone())?;
        item.set("time", sample.time_us)?;
        samples.set(index as u32, item)?;
    }
    object.set("samples", samples)?;
    Ok(object)
}
