//! `type:`-tagged components read tag-first, so that a wrong value inside a block is named by
//! its own key and line (`target.standbys`, `fault.duration`), not by the block.
//!
//! serde's internally tagged enums buffer the whole block before they look at the tag, and an
//! error from the buffer has lost both the key path and the YAML position. [`tagged_enum!`]
//! keeps the enum as written (its `Serialize` and JSON Schema stay internally tagged) and gives
//! it a `Deserialize` that reads `type` first and then the variant's fields straight from the
//! YAML reader, through an externally tagged twin of the same variants. A block whose `type` is
//! not its first key is still read, buffered as before.
//!
//! Boundary: representation only; the enums and their meaning are the model's.

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::{MapAccessDeserializer, MapDeserializer};
use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, VariantAccess, Visitor,
};
use serde::forward_to_deserialize_any;

/// Defines a `type:`-tagged enum (unit and struct variants, or newtype variants only) with a
/// tag-first `Deserialize`; the enum's own attributes must not derive `Deserialize`.
macro_rules! tagged_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident ( $inner:ty ) ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        pub enum $name {
            $( $(#[$vmeta])* $variant($inner) ),*
        }

        const _: () = {
            #[derive(serde::Deserialize)]
            #[serde(rename_all = "kebab-case")]
            enum Twin {
                $( $variant($inner) ),*
            }

            impl<'de> serde::Deserialize<'de> for $name {
                fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                    let twin: Twin = $crate::scenario::tagged::tag_first(d, stringify!($name))?;
                    Ok(match twin {
                        $( Twin::$variant(inner) => $name::$variant(inner) ),*
                    })
                }
            }
        };
    };
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $(
                $(#[$vmeta:meta])*
                $variant:ident $( { $( $(#[$fmeta:meta])* $field:ident : $fty:ty ),* $(,)? } )?
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        pub enum $name {
            $( $(#[$vmeta])* $variant $( { $( $(#[$fmeta])* $field : $fty ),* } )? ),*
        }

        const _: () = {
            #[derive(serde::Deserialize)]
            #[serde(rename_all = "kebab-case", deny_unknown_fields)]
            enum Twin {
                $( $variant $( { $( $(#[$fmeta])* $field : $fty ),* } )? ),*
            }

            impl<'de> serde::Deserialize<'de> for $name {
                fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                    let twin: Twin = $crate::scenario::tagged::tag_first(d, stringify!($name))?;
                    Ok(match twin {
                        $( Twin::$variant $( { $($field),* } )? => $name::$variant $( { $($field),* } )? ),*
                    })
                }
            }
        };
    };
}
pub(crate) use tagged_enum;

/// Kinds a user may reasonably expect that this build refuses, with why: a located error that
/// says so, rather than "unknown variant".
const UNSUPPORTED: [(&str, &str); 2] = [
    (
        "link-latency",
        "latency between zones needs the kernel's netem queueing discipline (sch_netem), which \
         machines like this one lack, and firedrill has no userspace proxy for it yet; use \
         `partition` or `zone-outage`",
    ),
    (
        "link-loss",
        "packet loss between zones needs the kernel's netem queueing discipline (sch_netem), \
         which machines like this one lack, and firedrill has no userspace proxy for it yet; \
         use `partition` or `zone-outage`",
    ),
];

/// Reads a `type:`-tagged block as `T`, an externally tagged enum of the same variants.
pub fn tag_first<'de, D: Deserializer<'de>, T: de::Deserialize<'de>>(
    d: D,
    name: &'static str,
) -> Result<T, D::Error> {
    d.deserialize_any(TagFirst::<T> {
        name,
        marker: PhantomData,
    })
}

struct TagFirst<T> {
    name: &'static str,
    marker: PhantomData<T>,
}

impl<'de, T: de::Deserialize<'de>> Visitor<'de> for TagFirst<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "a mapping with a `type` key ({})",
            self.name.to_lowercase()
        )
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        let Some(first) = map.next_key::<String>()? else {
            return Err(de::Error::missing_field("type"));
        };
        if first == "type" {
            return T::deserialize(Tagged(map));
        }
        // `type` comes later: read the block whole, then put `type` first.
        let mut entries = vec![(first, map.next_value::<serde_json::Value>()?)];
        while let Some(entry) = map.next_entry::<String, serde_json::Value>()? {
            entries.push(entry);
        }
        let Some(at) = entries.iter().position(|(k, _)| k == "type") else {
            return Err(de::Error::missing_field("type"));
        };
        let tag = entries.remove(at);
        entries.insert(0, tag);
        let mut buffered = MapDeserializer::new(entries.into_iter());
        let _type: Option<String> = buffered.next_key().map_err(de::Error::custom)?;
        T::deserialize(Tagged(buffered)).map_err(de::Error::custom)
    }
}

/// The tag, refused with its reason when it names a kind this build does not support.
struct Supported<S>(S);

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Supported<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        let tag = <String as de::Deserialize>::deserialize(d)?;
        if let Some((_, why)) = UNSUPPORTED.iter().find(|(kind, _)| *kind == tag) {
            return Err(de::Error::custom(format!(
                "`{tag}` is not supported: {why}"
            )));
        }
        self.0
            .deserialize(de::value::StringDeserializer::<de::value::Error>::new(tag))
            .map_err(de::Error::custom)
    }
}

/// A map whose next value is the tag: read as the variant's name, then the rest as its fields.
struct Tagged<A>(A);

impl<'de, A: MapAccess<'de>> Deserializer<'de> for Tagged<A> {
    type Error = A::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, A::Error> {
        visitor.visit_enum(self)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}

impl<'de, A: MapAccess<'de>> EnumAccess<'de> for Tagged<A> {
    type Error = A::Error;
    type Variant = Fields<A>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        mut self,
        seed: V,
    ) -> Result<(V::Value, Fields<A>), A::Error> {
        // Read from the reader itself, so an unknown type is located at `type`.
        let variant = self.0.next_value_seed(Supported(seed))?;
        Ok((variant, Fields(self.0)))
    }
}

/// The rest of the block: the variant's fields.
struct Fields<A>(A);

impl<'de, A: MapAccess<'de>> VariantAccess<'de> for Fields<A> {
    type Error = A::Error;

    fn unit_variant(mut self) -> Result<(), A::Error> {
        match self.0.next_key::<String>()? {
            None => Ok(()),
            Some(k) => Err(de::Error::unknown_field(&k, &["type"])),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        seed.deserialize(MapAccessDeserializer::new(self.0))
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        _visitor: V,
    ) -> Result<V::Value, A::Error> {
        Err(de::Error::custom("a `type:` block holds keys, not a list"))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        visitor.visit_map(self.0)
    }
}
