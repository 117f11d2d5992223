//! Bounds on what an instance body may hold, and the characters it may not: checked before anything is stored,
//! so that every store accepts and refuses the same bodies (PostgreSQL cannot store U+0000 in text) and one
//! instance cannot make every notification of it weigh megabytes.
//!
//! | what | bound |
//! |---|---|
//! | `name` | [`MAX_NAME_CHARS`] characters |
//! | `tags` | [`MAX_TAGS`] tags of at most [`MAX_TAG_CHARS`] characters |
//! | `configuration` | [`MAX_CONFIG_KEYS`] keys of at most [`MAX_CONFIG_KEY_CHARS`] characters |
//! | a configuration value | [`MAX_CONFIG_VALUE_CHARS`] characters (as text, or as JSON when not a string) |
//! | `event.poller.configuration` | [`MAX_POLLER_CONFIGURATION_CHARS`] characters of JSON |
//! | any other string of the body | [`MAX_OTHER_STRING_CHARS`] characters |
//! | every string and key, at any depth (the poller configuration's JSON string included) | no U+0000 |

use serde_json::Value;

use crate::config::{config_path, keys};
use crate::error::{Problems, path};

/// Longest `name`.
pub const MAX_NAME_CHARS: usize = 200;
/// Most tags.
pub const MAX_TAGS: usize = 50;
/// Longest tag.
pub const MAX_TAG_CHARS: usize = 100;
/// Most configuration keys.
pub const MAX_CONFIG_KEYS: usize = 200;
/// Longest configuration key.
pub const MAX_CONFIG_KEY_CHARS: usize = 200;
/// Longest configuration value (a string's characters, or the JSON text of another value).
pub const MAX_CONFIG_VALUE_CHARS: usize = 8_192;
/// Longest `event.poller.configuration` (its JSON text).
pub const MAX_POLLER_CONFIGURATION_CHARS: usize = 262_144;
/// Longest string anywhere else in the body (`element.key`, `providerData.code`, ...).
pub const MAX_OTHER_STRING_CHARS: usize = 8_192;

fn chars(s: &str) -> usize {
    s.chars().count()
}

fn too_long(problems: &mut Problems, at: &str, what: &str, found: usize, max: usize) {
    problems.push(at, format!("{what} has {found} characters; at most {max} are allowed"));
}

/// Every string and key of `value` holding U+0000, at its path.
fn nul_characters(value: &Value, at: &str, problems: &mut Problems) {
    const NUL: &str = "contains the NUL character (U+0000), which is not allowed";
    match value {
        Value::String(s) => {
            if s.contains('\0') {
                problems.push(at, NUL);
            }
            // a JSON-encoded object (the poller configuration may be one) is checked inside too
            if s.trim_start().starts_with('{')
                && let Ok(inner @ Value::Object(_)) = serde_json::from_str::<Value>(s)
            {
                nul_characters(&inner, at, problems);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                nul_characters(v, &path::index(at, i), problems);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                let member = path::member(at, k);
                if k.contains('\0') {
                    problems.push(&member, format!("the key {NUL}"));
                }
                nul_characters(v, &member, problems);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

fn other_strings(value: &Value, at: &str, problems: &mut Problems) {
    match value {
        Value::String(s) if chars(s) > MAX_OTHER_STRING_CHARS => {
            too_long(problems, at, "the value", chars(s), MAX_OTHER_STRING_CHARS)
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                other_strings(v, &path::index(at, i), problems);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                other_strings(v, &path::member(at, k), problems);
            }
        }
        _ => {}
    }
}

/// Checks an instance body (create, full replacement, or a patch merged into the stored instance) against the
/// bounds of this module and for U+0000; every problem at its path.
pub fn check_body_limits(body: &Value, problems: &mut Problems) {
    nul_characters(body, "", problems);
    let Some(obj) = body.as_object() else { return };
    for (key, value) in obj {
        match (key.as_str(), value) {
            ("name", Value::String(n)) if chars(n) > MAX_NAME_CHARS => {
                too_long(problems, "name", "the name", chars(n), MAX_NAME_CHARS)
            }
            ("name", _) => {}
            ("tags", Value::Array(tags)) => {
                if tags.len() > MAX_TAGS {
                    problems.push("tags", format!("{} tags; at most {MAX_TAGS} are allowed", tags.len()));
                }
                for (i, t) in tags.iter().enumerate() {
                    if let Value::String(t) = t
                        && chars(t) > MAX_TAG_CHARS
                    {
                        too_long(problems, &path::index("tags", i), "the tag", chars(t), MAX_TAG_CHARS);
                    }
                }
            }
            ("configuration", Value::Object(map)) => {
                if map.len() > MAX_CONFIG_KEYS {
                    problems
                        .push("configuration", format!("{} keys; at most {MAX_CONFIG_KEYS} are allowed", map.len()));
                }
                for (k, v) in map {
                    let at = config_path(k);
                    if chars(k) > MAX_CONFIG_KEY_CHARS {
                        too_long(problems, &at, "the key", chars(k), MAX_CONFIG_KEY_CHARS);
                    }
                    let text = match v {
                        Value::String(s) => chars(s),
                        other => chars(&other.to_string()),
                    };
                    let max = if k == keys::POLLER_CONFIGURATION {
                        MAX_POLLER_CONFIGURATION_CHARS
                    } else {
                        MAX_CONFIG_VALUE_CHARS
                    };
                    if text > max {
                        too_long(problems, &at, "the value", text, max);
                    }
                }
            }
            (other, v) => other_strings(v, other, problems),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn problems_of(body: Value) -> Vec<(String, String)> {
        let mut p = Problems::default();
        check_body_limits(&body, &mut p);
        p.0.into_iter().map(|p| (p.path, p.message)).collect()
    }

    #[test]
    fn nul_is_refused_everywhere_with_its_path() {
        let found = problems_of(json!({
            "name": "a\u{0}b",
            "tags": ["ok", "t\u{0}"],
            "configuration": {
                "event.poller.configuration": "{\"cust\\u0000omers\": {\"url\": \"/x\"}}",
                "k\u{0}": "v",
            },
        }));
        let paths: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
        assert!(paths.contains(&"name"), "{found:?}");
        assert!(paths.contains(&"tags[1]"), "{found:?}");
        assert!(paths.iter().any(|p| p.starts_with("configuration[\"event.poller.configuration\"]")), "{found:?}");
        assert!(paths.iter().any(|p| p.starts_with("configuration[\"k")), "{found:?}");
        assert!(found.iter().all(|(_, m)| m.contains("U+0000")), "{found:?}");
    }

    #[test]
    fn bounds_are_stated_as_enforced() {
        let at_limit = "n".repeat(MAX_NAME_CHARS);
        assert!(problems_of(json!({"name": at_limit})).is_empty());
        let found = problems_of(json!({
            "name": "n".repeat(MAX_NAME_CHARS + 1),
            "tags": vec!["t".repeat(MAX_TAG_CHARS + 1); MAX_TAGS + 1],
            "configuration": {"country": "x".repeat(200_000)},
            "providerData": {"code": "c".repeat(MAX_OTHER_STRING_CHARS + 1)},
        }));
        let has = |path: &str, text: &str| found.iter().any(|(p, m)| p == path && m.contains(text));
        assert!(has("name", &format!("{} characters; at most {MAX_NAME_CHARS}", MAX_NAME_CHARS + 1)), "{found:?}");
        assert!(has("tags", &format!("at most {MAX_TAGS}")), "{found:?}");
        assert!(has("tags[0]", &format!("at most {MAX_TAG_CHARS}")), "{found:?}");
        assert!(has("configuration.country", "200000 characters; at most 8192"), "{found:?}");
        assert!(has("providerData.code", "at most 8192"), "{found:?}");
        let big_poller = json!({"configuration": {"event.poller.configuration": "x".repeat(100_000)}});
        assert!(problems_of(big_poller).is_empty(), "the poller configuration has its own bound");
    }
}
