//! Validation problems: each names the JSON path it is about and what is wrong there.

use std::fmt;

/// One problem found in a request body, with the JSON path of the value it is about.
///
/// Paths are written the way a user reads them: `configuration["event.poller.configuration"].customers.idField`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Problem {
    /// JSON path into the body (empty for the body itself).
    pub path: String,
    /// What is wrong, lowercase, without a trailing period.
    pub message: String,
}

impl Problem {
    /// A problem at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Problem { path: path.into(), message: message.into() }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() { write!(f, "{}", self.message) } else { write!(f, "{}: {}", self.path, self.message) }
    }
}

/// Every problem found, in the order found. Never empty when returned as an error.
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error)]
#[error("{} problem(s): {}", .0.len(), join(.0))]
pub struct Problems(pub Vec<Problem>);

fn join(problems: &[Problem]) -> String {
    problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

impl Problems {
    /// Adds a problem.
    pub fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem::new(path, message));
    }

    /// True when nothing was found.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The problems found.
    pub fn iter(&self) -> impl Iterator<Item = &Problem> {
        self.0.iter()
    }
}

/// The message of an error followed by its causes, `: `-separated (what logs and poll outcomes record).
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// JSON path helpers: a path segment is written `.name` when it is a plain identifier and `["name"]` otherwise.
pub mod path {
    /// Appends a member name to a path.
    pub fn member(base: &str, name: &str) -> String {
        let plain = !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            && !name.starts_with(|c: char| c.is_ascii_digit());
        if plain {
            if base.is_empty() { name.to_string() } else { format!("{base}.{name}") }
        } else {
            format!("{base}[{}]", serde_json::Value::String(name.to_string()))
        }
    }

    /// Appends an array index to a path.
    pub fn index(base: &str, i: usize) -> String {
        format!("{base}[{i}]")
    }
}

#[cfg(test)]
mod tests {
    use super::path::*;

    #[test]
    fn chains_name_every_cause() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);
        let e = Outer(std::io::Error::other("inner"));
        assert_eq!(super::chain(&e), "outer: inner");
    }

    #[test]
    fn paths_read_naturally() {
        assert_eq!(member("", "configuration"), "configuration");
        assert_eq!(
            member("configuration", "event.poller.configuration"),
            r#"configuration["event.poller.configuration"]"#
        );
        assert_eq!(member("a", "idField"), "a.idField");
        assert_eq!(index("tags", 2), "tags[2]");
    }
}
