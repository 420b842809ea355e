//! The `{{NAME.FIELD}}` placeholders a game day's instruction may hold, named in one list and
//! parsed once, so that validation and the filling-in at run time cannot disagree about which
//! exist: a new field fails to compile until both handle it.

/// Declares a set of fields with their written names, the one place those names appear.
macro_rules! fields {
    ($(#[$meta:meta])* $kind:ident { $($variant:ident = $name:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum $kind {
            $($variant),+
        }

        impl $kind {
            pub const ALL: &'static [$kind] = &[$($kind::$variant),+];

            /// As written after the dot.
            pub fn name(self) -> &'static str {
                match self {
                    $($kind::$variant => $name),+
                }
            }

            fn parse(field: &str) -> Option<$kind> {
                Self::ALL.iter().copied().find(|f| f.name() == field)
            }

            /// Every field, as a sentence lists them (`a, b and c`).
            pub fn listed() -> String {
                let names: Vec<&str> = Self::ALL.iter().map(|f| f.name()).collect();
                match names.split_last() {
                    Some((last, [])) => last.to_string(),
                    Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
                    None => String::new(),
                }
            }
        }
    };
}

fields!(
    /// What `{{fault.FIELD}}` names.
    FaultField { At = "at" }
);

fields!(
    /// What `{{sandbox.FIELD}}` names: the sandbox's own folders.
    SandboxField {
        BinDir = "bin_dir",
        BaseBackup = "base_backup",
        WalArchive = "wal_archive",
    }
);

fields!(
    /// What `{{NODE.FIELD}}` names for a sandbox node.
    NodeField { Port = "port", DataDir = "data_dir" }
);

/// A placeholder whose subject has the field it names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Placeholder {
    Fault(FaultField),
    Sandbox(SandboxField),
    /// A node, if the target has one by that name (validation checks).
    Node {
        node: String,
        field: NodeField,
    },
}

/// A placeholder naming a field its subject does not have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unknown {
    Fault,
    Sandbox,
    Node(String),
}

/// One `{{NAME.FIELD}}` as found in a text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// Exactly as written, braces and spaces included: what filling in replaces.
    pub written: String,
    /// The name and field as written either side of the dot.
    pub name: String,
    pub field: String,
    pub parsed: Result<Placeholder, Unknown>,
}

impl Found {
    /// As an error message shows it, without the inner spaces.
    pub fn shown(&self) -> String {
        format!("`{{{{{}.{}}}}}`", self.name, self.field)
    }
}

/// Every `{{NAME.FIELD}}` in `text`, in order. A `{{...}}` without a dot is not a placeholder
/// (it is left as written).
pub fn placeholders(text: &str) -> Vec<Found> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        let Some(close) = rest[open..].find("}}") else {
            break;
        };
        let inner = rest[open + 2..open + close].trim();
        if let Some((name, field)) = inner.split_once('.') {
            let parsed = match name {
                "fault" => FaultField::parse(field)
                    .map(Placeholder::Fault)
                    .ok_or(Unknown::Fault),
                "sandbox" => SandboxField::parse(field)
                    .map(Placeholder::Sandbox)
                    .ok_or(Unknown::Sandbox),
                node => NodeField::parse(field)
                    .map(|field| Placeholder::Node {
                        node: node.to_owned(),
                        field,
                    })
                    .ok_or_else(|| Unknown::Node(node.to_owned())),
            };
            found.push(Found {
                written: rest[open..open + close + 2].to_owned(),
                name: name.to_owned(),
                field: field.to_owned(),
                parsed,
            });
        }
        rest = &rest[open + close + 2..];
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_placeholder_is_parsed_once_with_what_it_names() {
        let found = placeholders(
            "psql -p {{ standby1.port }} {{sandbox.wal_archive}} {{x.y}} {{fault.at}} {{nodot}}",
        );
        let parsed: Vec<_> = found.iter().map(|f| f.parsed.clone()).collect();
        assert_eq!(
            parsed,
            [
                Ok(Placeholder::Node {
                    node: "standby1".into(),
                    field: NodeField::Port
                }),
                Ok(Placeholder::Sandbox(SandboxField::WalArchive)),
                Err(Unknown::Node("x".into())),
                Ok(Placeholder::Fault(FaultField::At)),
            ]
        );
        assert_eq!(found[0].written, "{{ standby1.port }}");
        assert_eq!(found[0].shown(), "`{{standby1.port}}`");
    }

    #[test]
    fn field_lists_read_as_sentences() {
        assert_eq!(
            SandboxField::listed(),
            "bin_dir, base_backup and wal_archive"
        );
        assert_eq!(NodeField::listed(), "port and data_dir");
        assert_eq!(FaultField::listed(), "at");
    }
}
