//! CEQL, the query language of SAP Open Connectors hub URLs, for every provider: the `where=` clause and the
//! hub URL around it (`/hubs/{hub}/{resource}?where=...&pageSize=&page=&orderBy=&fields=`).
//!
//! - [`parse`]: a clause → its syntax tree ([`Expr`], every node with its byte span) and the repairs made
//!   ([`Warning`]); the tree prints back as canonical CEQL (`Display`), which parses to the same tree.
//! - [`parse_hub_url`]: a hub URL → its hub, resource and parameters ([`HubUrl`]), values raw or
//!   percent-encoded, each decoded value mapping its bytes back into the URL ([`Decoded::url_span`]).
//! - [`LocalFilter`]: a predicate evaluated on JSON records with CEQL's semantics (three-valued logic, dates
//!   compared as instants; see *Local evaluation* below), for what a provider's API cannot evaluate itself.
//! - [`Dialect`]: what a provider says about itself — the hubs it serves, the hub field names that stand for its
//!   record fields, the fields its records always carry. This crate knows no provider.
//! - [`Error`]: a kind ([`ErrorKind`]) plus a place (a byte span), rendered with a caret under the input
//!   ([`render`]).
//!
//! Which terms a provider sends to its own API and which it evaluates locally is the provider's business (its
//! translator), not this crate's. Nothing here panics on any input, and the nesting of parentheses is bounded
//! ([`MAX_DEPTH`]).
//!
//! ```
//! use oc_ceql::{Dialect, LocalFilter, parse, parse_hub_url};
//! use serde_json::json;
//!
//! // A provider describes itself once.
//! const ACME: Dialect = Dialect {
//!     element: "acme",
//!     hubs: &["crm"],
//!     example_resource: "contacts",
//!     field_aliases: &[("lastModifiedDate", "modified_at")],
//!     always_returned: &["id"],
//! };
//!
//! let url = "/hubs/crm/contacts?where=lastModifiedDate >= '2024-01-31' and (name like 'A%' or vip = true)";
//! let hub = parse_hub_url(url, &ACME).unwrap();
//! assert_eq!(hub.resource, "contacts");
//! let clause = hub.where_clause.unwrap();
//! let parsed = parse(clause.text()).unwrap();
//! assert_eq!(parsed.expr.to_string(), "lastModifiedDate >= '2024-01-31' AND (name LIKE 'A%' OR vip = true)");
//!
//! // `lastModifiedDate` reads the record's `modified_at`; dates compare as instants, whatever their offset.
//! let filter = LocalFilter::new(&parsed.expr, &ACME);
//! assert!(filter.matches(&json!({"modified_at": "2024-01-31T01:00:00+01:00", "name": "Acme"})));
//! assert!(!filter.matches(&json!({"modified_at": "2024-01-30T23:00:00Z", "name": "Acme"})));
//! assert!(!filter.matches(&json!({"modified_at": "2024-02-01", "name": "Zed"})));
//!
//! // Errors point at their place.
//! let err = parse("name = ").unwrap_err();
//! assert_eq!(
//!     err.render("name = "),
//!     "expected a value (a quoted string, a number, `true` or `false`), found the end of the clause\n  name = \n         ^"
//! );
//! ```
//!
//! # The language
//!
//! Conditions `field op value` with `=`, `!=` (also `<>`), `<`, `<=`, `>`, `>=`; `field LIKE 'pattern'` (`%` any
//! run of characters, `_` one character); `field IN (v, ...)`; `field IS NULL`, `field IS NOT NULL`; joined by
//! `AND` and `OR` (any case; `AND` binds tighter) and grouped by parentheses. Values are strings in single
//! quotes (a quote inside is doubled: `'O''Brien'`), numbers (`12`, `-3.5`, `1e3`) and `true`/`false`. Field
//! names are plain (`name`, `contact.id`, `$path`) or in backticks (`` `odd name` ``, a backtick inside doubled).
//!
//! One repair only: a string literal left open at the very end of the clause (Open Connectors' own seed poller
//! URL ends that way, `... and attributes='a,b`) is closed, and a [`Warning`] says so.
//!
//! # Local evaluation
//!
//! A record passes only when the predicate is true. A missing or `null` field makes a comparison, `LIKE` or `IN`
//! unknown (so `x != 'a'` does not pass a record without `x`); `AND`/`OR` follow three-valued logic. A string
//! literal and a string field that both read as dates ([`parse_instant`]) compare as instants; other strings
//! byte-wise, case-sensitively. Numbers compare as numbers; `true`/`false` against booleans (or the strings
//! `"true"`/`"false"`). A dotted path walks objects; an array on the way matches when some element matches.
//! `IS NULL` holds when no non-null value is found.

#![deny(missing_docs)]

mod ast;
mod dates;
mod dialect;
mod error;
mod eval;
mod hub;
mod lexer;
mod parser;

pub use ast::{CmpOp, Expr, ExprKind, Field, Literal, Value};
pub use dates::parse_instant;
pub use dialect::Dialect;
pub use error::{Error, ErrorKind, Span, Warning, render};
pub use eval::LocalFilter;
pub use hub::{Decoded, HubUrl, parse_hub_url};
pub use parser::{MAX_DEPTH, Parsed, parse};

#[cfg(test)]
mod tests;

/// The README's examples, compiled and run as doctests so that it cannot drift from the crate.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
