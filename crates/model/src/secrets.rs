//! Secrets never leave the process: passwords come only from environment variables (a DSN's,
//! `PGPASSWORD`) or files (the signing key), and every text firedrill writes (events, the live
//! display, reports, error messages) passes through [`redact`], which replaces each secret seen
//! so far. A command's output that echoes a DSN is covered as well as firedrill's own text.

use std::borrow::Cow;
use std::sync::RwLock;

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// What a secret is replaced with.
pub const MASK: &str = "********";

/// Remembers a secret (and its percent-encoded form, as it appears in a URL-style DSN).
pub fn register(secret: &str) {
    if secret.is_empty() {
        return;
    }
    let mut all = SECRETS.write().unwrap_or_else(|p| p.into_inner());
    let encoded: String = secret
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    for s in [secret.to_owned(), encoded] {
        if !all.contains(&s) {
            all.push(s);
        }
    }
    // Longest first, so that a secret containing another is masked whole.
    all.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// `text` with every registered secret masked.
pub fn redact(text: &str) -> Cow<'_, str> {
    let all = SECRETS.read().unwrap_or_else(|p| p.into_inner());
    if !all.iter().any(|s| text.contains(s.as_str())) {
        return Cow::Borrowed(text);
    }
    let mut out = text.to_owned();
    for s in all.iter() {
        out = out.replace(s.as_str(), MASK);
    }
    Cow::Owned(out)
}

/// A serializable value (a report) with every registered secret masked in every string.
pub fn redact_value<T: serde::Serialize + serde::de::DeserializeOwned>(value: T) -> T {
    fn walk(v: &mut serde_json::Value, changed: &mut bool) {
        match v {
            serde_json::Value::String(s) => {
                if let Cow::Owned(r) = redact(s) {
                    *s = r;
                    *changed = true;
                }
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(|x| walk(x, changed)),
            serde_json::Value::Object(o) => o.values_mut().for_each(|x| walk(x, changed)),
            serde_json::Value::Null | serde_json::Value::Bool(_) | serde_json::Value::Number(_) => {
            }
        }
    }
    let Ok(mut json) = serde_json::to_value(&value) else {
        return value;
    };
    let mut changed = false;
    walk(&mut json, &mut changed);
    if !changed {
        return value;
    }
    serde_json::from_value(json).unwrap_or(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_plain_and_url_encoded_forms() {
        register("p@ss word!");
        assert_eq!(
            redact("password=p@ss word! and postgresql://u:p%40ss%20word%21@h/db"),
            format!("password={MASK} and postgresql://u:{MASK}@h/db")
        );
        assert!(matches!(redact("nothing here"), Cow::Borrowed(_)));
    }
}
