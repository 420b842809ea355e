//! The JSON Schemas firedrill prints (`firedrill schema`): generated from the types, with every
//! object's keys in order, so the output is the same whichever serde_json features
//! (`preserve_order`) a build happened to unify.

use schemars::JsonSchema;
use serde_json::Value;

/// The schema of `T`, keys sorted.
pub fn of<T: JsonSchema>() -> Value {
    sorted(serde_json::to_value(schemars::schema_for!(T)).expect("a schema is plain JSON"))
}

fn sorted(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<_> = m.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(sorted).collect()),
        other => other,
    }
}
