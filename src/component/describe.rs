//! A component's world as data: its imported and exported interfaces, functions, resources and
//! WIT types, in the description format of `index.d.ts` (`ComponentItems`), with the JS names
//! `jco transpile` gives them.

use serde_json::{Map, Value, json};
use wasmtime::Engine;
use wasmtime::component::ResourceType;
use wasmtime::component::types::{ComponentFunc, ComponentItem, Type};

/// camelCase of a kebab-case WIT name, as jco writes it (`get-value` -> `getValue`,
/// `HTTP-request` -> `httpRequest`).
pub fn js_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (index, word) in name.split('-').filter(|word| !word.is_empty()).enumerate() {
        let lower = word.to_lowercase();
        if index == 0 {
            out.push_str(&lower);
        } else {
            capitalize_into(&lower, &mut out);
        }
    }
    out
}

/// PascalCase of a kebab-case WIT name (`output-stream` -> `OutputStream`): resource classes
/// and named types.
pub fn pascal_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for word in name.split('-').filter(|word| !word.is_empty()) {
        capitalize_into(&word.to_lowercase(), &mut out);
    }
    out
}

fn capitalize_into(word: &str, out: &mut String) {
    let mut chars = word.chars();
    if let Some(first) = chars.next() {
        out.extend(first.to_uppercase());
        out.push_str(chars.as_str());
    }
}

/// The short name jco gives an interface: its name without package and version, camelCase
/// (`demo:types/api@0.1.0` -> `api`).
pub fn interface_js_name(full: &str) -> String {
    let without_version = full.split('@').next().unwrap_or(full);
    let short = without_version.rsplit('/').next().unwrap_or(without_version);
    js_name(short)
}

/// Names of the types and resources a world's interfaces export, to name them where they are used.
#[derive(Default)]
struct Names {
    types: Vec<(Type, String)>,
    resources: Vec<(ResourceType, String)>,
}

impl Names {
    fn type_name(&self, ty: &Type) -> Option<&str> {
        self.types
            .iter()
            .find(|(known, _)| known == ty)
            .map(|(_, name)| name.as_str())
    }

    fn resource_name(&self, ty: &ResourceType) -> String {
        self.resources
            .iter()
            .find(|(known, _)| known == ty)
            .map_or_else(|| "resource".to_owned(), |(_, name)| name.clone())
    }
}

/// Describes a list of imports or exports (`name`, item) as a JSON object keyed by name.
pub fn describe_items<'a>(engine: &Engine, items: impl Iterator<Item = (&'a str, ComponentItem)>) -> Value {
    let items: Vec<(&str, ComponentItem)> = items.collect();
    let mut names = Names::default();
    for (_, item) in &items {
        if let ComponentItem::ComponentInstance(instance) = item {
            for (name, export) in instance.exports(engine) {
                match export.ty {
                    ComponentItem::Type(ty) => names.types.push((ty, name.to_owned())),
                    ComponentItem::Resource(ty) => names.resources.push((ty, name.to_owned())),
                    _ => {}
                }
            }
        }
    }
    for (name, item) in &items {
        match item {
            ComponentItem::Type(ty) => names.types.push((ty.clone(), (*name).to_owned())),
            ComponentItem::Resource(ty) => names.resources.push((*ty, (*name).to_owned())),
            _ => {}
        }
    }
    let mut out = Map::new();
    for (name, item) in &items {
        let described = match item {
            ComponentItem::ComponentFunc(func) => describe_function(name, func, &names),
            ComponentItem::ComponentInstance(instance) => {
                let mut functions = Vec::new();
                let mut resources: Vec<(String, Value)> = Vec::new();
                let mut types = Vec::new();
                let exports: Vec<_> = instance.exports(engine).collect();
                for (export_name, export) in &exports {
                    if let ComponentItem::Resource(_) = export.ty {
                        resources.push((
                            (*export_name).to_owned(),
                            json!({
                                "name": export_name,
                                "jsName": pascal_name(export_name),
                                "methods": [],
                                "statics": [],
                            }),
                        ));
                    }
                }
                for (export_name, export) in &exports {
                    match &export.ty {
                        ComponentItem::ComponentFunc(func) => {
                            let described = describe_function(export_name, func, &names);
                            match resource_member(export_name) {
                                Some((role, resource, member)) => {
                                    if let Some((_, entry)) = resources.iter_mut().find(|(name, _)| name == resource) {
                                        let mut described = described;
                                        described["jsName"] = json!(match role {
                                            "constructor" => "constructor".to_owned(),
                                            _ => js_name(member),
                                        });
                                        match role {
                                            "constructor" => entry["constructor"] = described,
                                            "method" => push(&mut entry["methods"], described),
                                            _ => push(&mut entry["statics"], described),
                                        }
                                    }
                                }
                                None => functions.push(described),
                            }
                        }
                        ComponentItem::Type(ty) => types.push(json!({
                            "name": export_name,
                            "type": describe_type(ty, &names, true),
                        })),
                        _ => {}
                    }
                }
                json!({
                    "kind": "interface",
                    "name": name,
                    "jsName": interface_js_name(name),
                    "functions": functions,
                    "resources": resources.into_iter().map(|(_, entry)| entry).collect::<Vec<_>>(),
                    "types": types,
                })
            }
            _ => continue,
        };
        out.insert((*name).to_owned(), described);
    }
    Value::Object(out)
}

fn push(array: &mut Value, value: Value) {
    if let Value::Array(items) = array {
        items.push(value);
    }
}

/// `[constructor]r`, `[method]r.m`, `[static]r.s` -> (role, resource, member).
pub fn resource_member(name: &str) -> Option<(&'static str, &str, &str)> {
    if let Some(resource) = name.strip_prefix("[constructor]") {
        return Some(("constructor", resource, ""));
    }
    for (prefix, role) in [("[method]", "method"), ("[static]", "static")] {
        if let Some(rest) = name.strip_prefix(prefix) {
            let (resource, member) = rest.split_once('.')?;
            return Some((role, resource, member));
        }
    }
    None
}

fn describe_function(name: &str, func: &ComponentFunc, names: &Names) -> Value {
    let params: Vec<Value> = func
        .params()
        .map(|(param, ty)| json!({ "name": param, "type": describe_type(&ty, names, false) }))
        .collect();
    let mut described = json!({
        "kind": "function",
        "name": name,
        "jsName": js_name(name),
        "params": params,
        "async": func.async_(),
    });
    if let Some(result) = func.results().next() {
        described["result"] = describe_type(&result, names, false);
    }
    described
}

/// One WIT type. `defining`: this is the definition of a named type (don't name it after itself
/// at the top, so the named type's own entry shows its structure).
fn describe_type(ty: &Type, names: &Names, defining: bool) -> Value {
    let mut described = match ty {
        Type::Bool => json!({ "kind": "bool" }),
        Type::S8 => json!({ "kind": "s8" }),
        Type::U8 => json!({ "kind": "u8" }),
        Type::S16 => json!({ "kind": "s16" }),
        Type::U16 => json!({ "kind": "u16" }),
        Type::S32 => json!({ "kind": "s32" }),
        Type::U32 => json!({ "kind": "u32" }),
        Type::S64 => json!({ "kind": "s64" }),
        Type::U64 => json!({ "kind": "u64" }),
        Type::Float32 => json!({ "kind": "f32" }),
        Type::Float64 => json!({ "kind": "f64" }),
        Type::Char => json!({ "kind": "char" }),
        Type::String => json!({ "kind": "string" }),
        Type::ErrorContext => json!({ "kind": "error-context" }),
        Type::List(list) => json!({ "kind": "list", "element": describe_type(&list.ty(), names, false) }),
        Type::FixedLengthList(list) => json!({
            "kind": "list",
            "element": describe_type(&list.ty(), names, false),
            "length": list.len(),
        }),
        Type::Map(map) => json!({
            "kind": "map",
            "key": describe_type(&map.key(), names, false),
            "value": describe_type(&map.value(), names, false),
        }),
        Type::Record(record) => json!({
            "kind": "record",
            "fields": record
                .fields()
                .map(|field| json!({ "name": field.name, "type": describe_type(&field.ty, names, false) }))
                .collect::<Vec<_>>(),
        }),
        Type::Tuple(tuple) => json!({
            "kind": "tuple",
            "elements": tuple.types().map(|ty| describe_type(&ty, names, false)).collect::<Vec<_>>(),
        }),
        Type::Variant(variant) => json!({
            "kind": "variant",
            "cases": variant
                .cases()
                .map(|case| match &case.ty {
                    Some(ty) => json!({ "name": case.name, "type": describe_type(ty, names, false) }),
                    None => json!({ "name": case.name }),
                })
                .collect::<Vec<_>>(),
        }),
        Type::Enum(enumeration) => json!({ "kind": "enum", "cases": enumeration.names().collect::<Vec<_>>() }),
        Type::Flags(flags) => json!({ "kind": "flags", "flags": flags.names().collect::<Vec<_>>() }),
        Type::Option(option) => json!({ "kind": "option", "type": describe_type(&option.ty(), names, false) }),
        Type::Result(result) => {
            let mut described = json!({ "kind": "result" });
            if let Some(ok) = result.ok() {
                described["ok"] = describe_type(&ok, names, false);
            }
            if let Some(err) = result.err() {
                described["err"] = describe_type(&err, names, false);
            }
            described
        }
        Type::Own(resource) => json!({ "kind": "own", "resource": names.resource_name(resource) }),
        Type::Borrow(resource) => json!({ "kind": "borrow", "resource": names.resource_name(resource) }),
        Type::Future(future) => match future.ty() {
            Some(ty) => json!({ "kind": "future", "type": describe_type(&ty, names, false) }),
            None => json!({ "kind": "future" }),
        },
        Type::Stream(stream) => match stream.ty() {
            Some(ty) => json!({ "kind": "stream", "type": describe_type(&ty, names, false) }),
            None => json!({ "kind": "stream" }),
        },
    };
    if !defining && let Some(name) = names.type_name(ty) {
        described["name"] = json!(name);
    }
    described
}

/// A type as WIT writes it (structurally: named types appear by their structure).
pub fn wit_type(ty: &Type) -> String {
    match ty {
        Type::Bool => "bool".into(),
        Type::S8 => "s8".into(),
        Type::U8 => "u8".into(),
        Type::S16 => "s16".into(),
        Type::U16 => "u16".into(),
        Type::S32 => "s32".into(),
        Type::U32 => "u32".into(),
        Type::S64 => "s64".into(),
        Type::U64 => "u64".into(),
        Type::Float32 => "f32".into(),
        Type::Float64 => "f64".into(),
        Type::Char => "char".into(),
        Type::String => "string".into(),
        Type::ErrorContext => "error-context".into(),
        Type::List(list) => format!("list<{}>", wit_type(&list.ty())),
        Type::FixedLengthList(list) => format!("list<{}, {}>", wit_type(&list.ty()), list.len()),
        Type::Map(map) => format!("map<{}, {}>", wit_type(&map.key()), wit_type(&map.value())),
        Type::Record(record) => format!(
            "record {{ {} }}",
            record
                .fields()
                .map(|field| format!("{}: {}", field.name, wit_type(&field.ty)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Type::Tuple(tuple) => format!(
            "tuple<{}>",
            tuple.types().map(|ty| wit_type(&ty)).collect::<Vec<_>>().join(", ")
        ),
        Type::Variant(variant) => format!(
            "variant {{ {} }}",
            variant
                .cases()
                .map(|case| match &case.ty {
                    Some(ty) => format!("{}({})", case.name, wit_type(ty)),
                    None => case.name.to_owned(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Type::Enum(enumeration) => format!("enum {{ {} }}", enumeration.names().collect::<Vec<_>>().join(", ")),
        Type::Flags(flags) => format!("flags {{ {} }}", flags.names().collect::<Vec<_>>().join(", ")),
        Type::Option(option) => format!("option<{}>", wit_type(&option.ty())),
        Type::Result(result) => match (result.ok(), result.err()) {
            (None, None) => "result".into(),
            (Some(ok), None) => format!("result<{}>", wit_type(&ok)),
            (None, Some(err)) => format!("result<_, {}>", wit_type(&err)),
            (Some(ok), Some(err)) => format!("result<{}, {}>", wit_type(&ok), wit_type(&err)),
        },
        Type::Own(_) => "own<resource>".into(),
        Type::Borrow(_) => "borrow<resource>".into(),
        Type::Future(future) => future
            .ty()
            .map_or_else(|| "future".into(), |ty| format!("future<{}>", wit_type(&ty))),
        Type::Stream(stream) => stream
            .ty()
            .map_or_else(|| "stream".into(), |ty| format!("stream<{}>", wit_type(&ty))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_jco_does() {
        assert_eq!(js_name("echo-u8"), "echoU8");
        assert_eq!(js_name("get-value"), "getValue");
        assert_eq!(js_name("HTTP-request-denied"), "httpRequestDenied");
        assert_eq!(pascal_name("output-stream"), "OutputStream");
        assert_eq!(interface_js_name("demo:types/api@0.1.0"), "api");
        assert_eq!(interface_js_name("wasi:cli/run@0.2.0"), "run");
        assert_eq!(
            resource_member("[method]counter.get-value"),
            Some(("method", "counter", "get-value"))
        );
        assert_eq!(
            resource_member("[constructor]counter"),
            Some(("constructor", "counter", ""))
        );
        assert_eq!(resource_member("echo"), None);
    }
}
