//! A string that must never be printed (`Debug` and `Display` show `********`), and URLs with their password
//! taken out ([`redact_url`]).

use std::fmt;

/// A secret value (token, client secret, signing key). Its `Debug` and `Display` never reveal it.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

/// What a secret looks like in responses and logs.
pub const MASK: &str = "********";

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself; call only where it is really used (a request header, encryption).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "******** ********");
        assert_eq!(s.expose(), "hunter2");
    }
}

/// `url` with the password of its user info (`user:password@`), if any, replaced by `****`; anything that is not
/// such a URL unchanged. For database URLs in messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((user_info, host)) if user_info.contains(':') => {
            let user = user_info.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:****@{host}{tail}")
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod redact_tests {
    use super::redact_url;

    #[test]
    fn urls_are_redacted() {
        let check = |url: &str, expected: &str| assert_eq!(redact_url(url), expected, "{url}");
        check("postgres://u:secret@h:5432/db?sslmode=require", "postgres://u:****@h:5432/db?sslmode=require");
        check("postgres://u:p@ss@h/db", "postgres://u:****@h/db");
        check("postgres://postgres@127.0.0.1:5432/test", "postgres://postgres@127.0.0.1:5432/test");
        check("sqlite://ocpoll.db", "sqlite://ocpoll.db");
        check("sqlite::memory:", "sqlite::memory:");
    }
}
