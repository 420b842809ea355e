//! A command given as a list (`[kill, -9, 1234]`), read from YAML as the text it is written as,
//! and shown back as a shell would read it. Below every section that runs a command.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A command as a list, program first: `[kill, -9, 1234]`. Numbers and booleans are taken as
/// the text they are written as, since YAML would otherwise read `-9` as an integer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Argv(pub Vec<String>);

/// An argv as a shell would read it back: safe words bare, the rest single-quoted.
pub fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./=:".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl std::ops::Deref for Argv {
    type Target = [String];
    fn deref(&self) -> &[String] {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Argv {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Scalar {
            S(String),
            I(i64),
            F(f64),
            B(bool),
        }
        let items = Vec::<Scalar>::deserialize(d)?;
        Ok(Argv(
            items
                .into_iter()
                .map(|s| match s {
                    Scalar::S(s) => s,
                    Scalar::I(i) => i.to_string(),
                    Scalar::F(f) => f.to_string(),
                    Scalar::B(b) => b.to_string(),
                })
                .collect(),
        ))
    }
}

impl JsonSchema for Argv {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Argv".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "array",
            "description": "Program first, then its arguments; no shell is involved.",
            "items": {"type": ["string", "number", "boolean"]},
            "minItems": 1
        })
    }
}
