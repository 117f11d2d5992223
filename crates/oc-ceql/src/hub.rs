//! Hub URLs: `/hubs/{hub}/{resource}?where=...&pageSize=&page=&orderBy=&fields=`, as users and the poller's template
//! renderer write them — values raw (`where=lastModifiedDate>='...' and attributes='a,b'`, spaces and quotes as
//! they are) or percent-encoded.
//!
//! How a value is read:
//! - a value containing a raw space was written by hand: it is taken as it is (no percent-decoding, so a
//!   `LIKE '%20%'` pattern survives);
//! - otherwise `%XX` escapes are decoded, and `+` means a space unless the value also holds a raw `'` (an
//!   encoder that leaves quotes alone, like JavaScript's `encodeURIComponent`, encodes `+` as `%2B`; one that
//!   encodes quotes, like Java's `URLEncoder`, writes spaces as `+`);
//! - an `&` inside a quoted string does not end the value, unless it is followed by one of the hub parameters
//!   (`where=`, `pageSize=`, `page=`, `orderBy=`, `fields=`): then the string was left open and the value ends
//!   there.
//!
//! Every decoded value keeps a map from its bytes back to the URL, so errors point into the URL. Which hubs
//! are served is the [`Dialect`]'s.

use crate::dialect::Dialect;
use crate::error::{Error, ErrorKind, Span, Warning};

/// The parts of a hub URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubUrl {
    /// The hub as named (one the dialect serves).
    pub hub: String,
    /// The resource as named, percent-decoded.
    pub resource: String,
    /// Where it is in the URL.
    pub resource_span: Span,
    /// `where`, decoded (absent when empty).
    pub where_clause: Option<Decoded>,
    /// `pageSize`.
    pub page_size: Option<u32>,
    /// `page`.
    pub page: Option<u32>,
    /// `orderBy`, decoded (absent when empty).
    pub order_by: Option<Decoded>,
    /// `fields` (the record fields to return, comma separated), decoded (absent when empty).
    pub fields: Option<Decoded>,
    /// Things ignored, with spans in the URL.
    pub warnings: Vec<Warning>,
}

/// A decoded query value and where each of its bytes came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    text: String,
    /// For each byte of `text`, its offset in the URL; one more entry for the end (never empty).
    map: Vec<usize>,
}

impl Decoded {
    /// The value.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The URL range of a range of the decoded text (clamped to its end).
    pub fn url_span(&self, span: Span) -> Span {
        let last = self.map.len().saturating_sub(1);
        let at = |i: usize| self.map.get(i.min(last)).copied().unwrap_or(0);
        at(span.start)..at(span.end)
    }
}

/// The hub URL parameters, lowercase (their names are matched without regard to case).
const KNOWN: [&str; 5] = ["where", "pagesize", "page", "orderby", "fields"];

/// Splits and decodes a hub URL (`/hubs/{hub}/{resource}?where=...&pageSize=&page=&orderBy=&fields=`) for a hub of
/// `dialect`. A scheme, host and any prefix before `/hubs/` are ignored; unknown parameters are ignored with a
/// warning. Every problem is reported, each with its span in `url`. Never panics.
///
/// ```
/// use oc_ceql::{Dialect, parse_hub_url};
///
/// const ACME: Dialect = Dialect {
///     element: "acme",
///     hubs: &["crm"],
///     example_resource: "contacts",
///     field_aliases: &[],
///     always_returned: &[],
/// };
/// let url = "https://api.example/hubs/crm/contacts?where=name%20like%20%27A%25%27&pageSize=50";
/// let hub = parse_hub_url(url, &ACME).unwrap();
/// assert_eq!(hub.resource, "contacts");
/// let clause = hub.where_clause.unwrap();
/// assert_eq!(clause.text(), "name like 'A%'");
/// assert_eq!(&url[clause.url_span(5..9)], "like");
/// assert_eq!(hub.page_size, Some(50));
///
/// let errors = parse_hub_url("/hubs/erp/contacts", &ACME).unwrap_err();
/// assert_eq!(errors[0].render("/hubs/erp/contacts"), "unknown hub `erp`: acme serves the `crm` hub\n  /hubs/erp/contacts\n        ^^^");
/// ```
pub fn parse_hub_url(url: &str, dialect: &Dialect) -> Result<HubUrl, Vec<Error>> {
    let (path, query) = match url.find('?') {
        Some(i) => (&url[..i], Some((&url[i + 1..], i + 1))),
        None => (url, None),
    };
    let mut errors = Vec::new();
    let (hub, resource, resource_span) = match path_resource(path, dialect) {
        Ok(r) => r,
        Err(e) => {
            errors.push(e);
            (String::new(), String::new(), 0..0)
        }
    };
    let mut hub = HubUrl {
        hub,
        resource,
        resource_span,
        where_clause: None,
        page_size: None,
        page: None,
        order_by: None,
        fields: None,
        warnings: Vec::new(),
    };
    let mut seen: Vec<String> = Vec::new();
    for (key, value, key_start, value_start) in query.map(|(q, at)| split_query(q, at)).unwrap_or_default() {
        let key_span = key_start..key_start + key.len();
        let value_span = value_start..value_start + value.len();
        let lower = key.to_ascii_lowercase();
        if !KNOWN.contains(&lower.as_str()) {
            if !key.is_empty() {
                hub.warnings.push(Warning {
                    message: format!(
                        "unknown hub parameter `{key}` is ignored (known: where, pageSize, page, orderBy, fields)"
                    ),
                    span: Some(key_span),
                });
            }
            continue;
        }
        if seen.contains(&lower) {
            errors.push(Error::new(ErrorKind::DuplicateParameter { name: key.to_string() }, key_span));
            continue;
        }
        seen.push(lower.clone());
        let decoded = match decode(value, value_start) {
            Some(d) => d,
            None => {
                errors.push(Error::new(ErrorKind::NotUtf8 { name: key.to_string() }, value_span));
                continue;
            }
        };
        match lower.as_str() {
            "where" => hub.where_clause = (!decoded.text.trim().is_empty()).then_some(decoded),
            "orderby" => hub.order_by = (!decoded.text.trim().is_empty()).then_some(decoded),
            "fields" => hub.fields = (!decoded.text.trim().is_empty()).then_some(decoded),
            _ => match decoded.text.trim().parse::<u32>() {
                Ok(n) if n >= 1 => {
                    if lower == "page" {
                        hub.page = Some(n)
                    } else {
                        hub.page_size = Some(n)
                    }
                }
                _ => errors
                    .push(Error::new(ErrorKind::BadNumber { name: key.to_string(), value: decoded.text }, value_span)),
            },
        }
    }
    if errors.is_empty() { Ok(hub) } else { Err(errors) }
}

/// The hub and the resource named by a path `.../hubs/{hub}/{resource}[/]`, and where the resource is.
fn path_resource(path: &str, dialect: &Dialect) -> Result<(String, String, Span), Error> {
    let not_hub = || {
        let hub = dialect.hubs.first().copied().unwrap_or("{hub}");
        Error::new(ErrorKind::NotAHubUrl { hub, resource: dialect.example_resource }, 0..path.len())
    };
    let start = if path.starts_with("hubs/") { 0 } else { path.find("/hubs/").ok_or_else(not_hub)? + 1 };
    let rest_start = start + "hubs/".len();
    let rest = &path[rest_start..];
    let mut parts = rest.split('/');
    let hub = parts.next().unwrap_or("");
    let resource = parts.next().unwrap_or("");
    let extra = parts.next();
    if hub.is_empty() || resource.is_empty() || extra.is_some_and(|e| !e.is_empty()) || parts.next().is_some() {
        return Err(not_hub());
    }
    if !dialect.serves(hub) {
        let kind = ErrorKind::UnknownHub { hub: hub.to_string(), element: dialect.element, served: dialect.hubs };
        return Err(Error::new(kind, rest_start..rest_start + hub.len()));
    }
    let resource_start = rest_start + hub.len() + 1;
    let span = resource_start..resource_start + resource.len();
    let name = decode(resource, resource_start)
        .map(|d| d.text)
        .ok_or_else(|| Error::new(ErrorKind::NotUtf8 { name: "resource".into() }, span.clone()))?;
    Ok((hub.to_string(), name, span))
}

/// `key=value` pairs of a query that starts at byte `at` of the URL, with the offsets of key and value.
fn split_query(query: &str, at: usize) -> Vec<(&str, &str, usize, usize)> {
    let bytes = query.as_bytes();
    let mut pairs = Vec::new();
    let mut start = 0;
    let mut in_quote = false;
    for i in 0..=bytes.len() {
        let end = i == bytes.len();
        if !end && bytes[i] == b'\'' {
            in_quote = !in_quote;
        }
        if end || (bytes[i] == b'&' && (!in_quote || starts_known_parameter(&query[i + 1..]))) {
            let part = &query[start..i];
            if !part.is_empty() {
                let offset = at + start;
                pairs.push(match part.find('=') {
                    Some(eq) => (&part[..eq], &part[eq + 1..], offset, offset + eq + 1),
                    None => (part, "", offset, offset + part.len()),
                });
            }
            start = i + 1;
            in_quote = false;
        }
    }
    pairs
}

fn starts_known_parameter(rest: &str) -> bool {
    let Some(eq) = rest.find('=') else { return false };
    KNOWN.contains(&rest[..eq].to_ascii_lowercase().as_str())
}

/// Percent-decodes `raw` (found at byte `at` of the URL) following the rules of the module doc; `None` when the
/// decoded bytes are not UTF-8.
fn decode(raw: &str, at: usize) -> Option<Decoded> {
    if raw.contains(' ') {
        return Some(Decoded { text: raw.to_string(), map: (at..=at + raw.len()).collect() });
    }
    let plus_is_space = !raw.contains('\'');
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut map = Vec::with_capacity(bytes.len() + 1);
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    map.push(at + i);
                    i += 3;
                    continue;
                }
                _ => {
                    out.push(b'%');
                    map.push(at + i);
                }
            },
            b'+' if plus_is_space => {
                out.push(b' ');
                map.push(at + i);
            }
            b => {
                out.push(b);
                map.push(at + i);
            }
        }
        i += 1;
    }
    map.push(at + raw.len());
    String::from_utf8(out).ok().map(|text| Decoded { text, map })
}
