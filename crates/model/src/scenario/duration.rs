//! Durations as scenarios spell them: humantime strings such as `250ms`, `5s`, `2m 30s`.
//!
//! A bare number is refused on purpose: `timeout: 5` could mean seconds or milliseconds, and a drill
//! whose timeouts are off by 1000x proves nothing.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// The longest duration a scenario may name; far past any drill, small enough that arithmetic on
/// instants never overflows.
pub const MAX: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Dur(pub Duration);

impl Dur {
    pub const fn from_millis(ms: u64) -> Self {
        Dur(Duration::from_millis(ms))
    }
    pub const fn from_secs(s: u64) -> Self {
        Dur(Duration::from_secs(s))
    }
    pub fn get(self) -> Duration {
        self.0
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

/// The longest span a scenario may name (a retention, a window of copies): AWS Backup's own
/// maximum retention, 36,500 days.
pub const MAX_SPAN: Duration = Duration::from_secs(36_500 * 24 * 3600);

/// A long duration, in days rather than seconds of a drill: a retention or a look-back window.
/// Spelled like [`Dur`] (`35d`, `400days`, `12h`), up to [`MAX_SPAN`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Span(pub Duration);

impl Span {
    pub const fn from_days(d: u64) -> Self {
        Span(Duration::from_secs(d * 86_400))
    }
    pub fn get(self) -> Duration {
        self.0
    }
}

impl fmt::Display for Span {
    /// Whole days as days (`35days`, not humantime's `1month 4days 13h 26m 24s`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.as_secs();
        if secs > 0 && secs.is_multiple_of(86_400) && self.0.subsec_nanos() == 0 {
            write!(f, "{}days", secs / 86_400)
        } else {
            write!(f, "{}", humantime::format_duration(self.0))
        }
    }
}

/// Parses one duration, with the messages a scenario author needs.
pub fn parse(text: &str) -> Result<Dur, String> {
    parse_within(text, MAX).map(Dur)
}

fn parse_within(text: &str, max: Duration) -> Result<Duration, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err("empty duration; write one such as `500ms` or `10s`".into());
    }
    if trimmed.starts_with('-') {
        return Err(format!(
            "invalid duration {text:?}: durations cannot be negative"
        ));
    }
    if trimmed.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(format!(
            "invalid duration {text:?}: a unit is required, e.g. `{trimmed}s` or `{trimmed}ms`"
        ));
    }
    let d = humantime::parse_duration(trimmed)
        .map_err(|e| format!("invalid duration {text:?}: {e}"))?;
    if d > max {
        return Err(format!(
            "invalid duration {text:?}: longer than the maximum of {}",
            humantime::format_duration(max)
        ));
    }
    Ok(d)
}

/// Reads a duration of at most `max` from a string (or a bare number, to refuse it by name).
struct Visitor(Duration);

impl de::Visitor<'_> for Visitor {
    type Value = Duration;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration such as `500ms` or `10s`")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        parse_within(v, self.0).map_err(E::custom)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
        self.visit_str(&v.to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
        self.visit_str(&v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
        self.visit_str(&v.to_string())
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Visitor(MAX)).map(Dur)
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Visitor(MAX_SPAN)).map(Span)
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl JsonSchema for Span {
    fn schema_name() -> Cow<'static, str> {
        "Span".into()
    }
    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        let mut s = Dur::json_schema(g);
        s.insert(
            "description".into(),
            "A long duration with a unit, up to 36500 days: `35d`, `400days`, `12h`.".into(),
        );
        s.insert("examples".into(), serde_json::json!(["35d", "400days"]));
        s
    }
}

impl JsonSchema for Dur {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A duration with a unit: `250ms`, `5s`, `2m 30s`, `1h`.",
            "pattern": "^\\s*[0-9]+(\\.[0-9]+)?\\s*[a-zµ]+(\\s*[0-9]+(\\.[0-9]+)?\\s*[a-zµ]+)*\\s*$",
            "examples": ["10ms", "2s", "5m"]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_humantime_forms() {
        assert_eq!(parse("250ms").unwrap().get(), Duration::from_millis(250));
        assert_eq!(parse("2m 30s").unwrap().get(), Duration::from_secs(150));
    }

    #[test]
    fn rejects_negative_unitless_huge_and_unknown_units() {
        assert!(parse("-5s").unwrap_err().contains("cannot be negative"));
        assert!(parse("5").unwrap_err().contains("a unit is required"));
        assert!(
            parse("10 parsecs")
                .unwrap_err()
                .contains("unknown time unit")
        );
        assert!(parse("1e99h").is_err());
        assert!(parse("99999999999999999999h").is_err());
        assert!(
            parse("8days")
                .unwrap_err()
                .contains("longer than the maximum")
        );
        let span: Span = serde_json::from_str("\"400days\"").unwrap();
        assert_eq!(span, Span::from_days(400));
        assert!(serde_json::from_str::<Span>("\"36501days\"").is_err());
        assert_eq!(Span::from_days(35).to_string(), "35days");
        assert_eq!(
            serde_json::to_string(&Span::from_days(35)).unwrap(),
            "\"35days\""
        );
    }
}
