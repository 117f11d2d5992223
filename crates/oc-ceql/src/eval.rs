//! Local evaluation of a CEQL predicate on JSON records, for what a provider's API cannot evaluate itself.
//!
//! Semantics (SQL-like three-valued logic; a record passes only when the predicate is true):
//! - a missing or `null` field makes a comparison, `LIKE` or `IN` unknown (so `x != 'a'` does not pass a record
//!   without `x`); `AND` is false when a term is false, `OR` true when a term is true, unknown otherwise;
//! - a string literal and a string field that both read as dates (`2024-01-31`, `2024-01-31T12:00:00Z`, offsets,
//!   fractions) compare as instants; otherwise strings compare byte-wise, case-sensitively;
//! - numbers compare as numbers (a JSON number, or a numeric string against a number literal); `true`/`false`
//!   against JSON booleans (or the strings `"true"`/`"false"`);
//! - `LIKE`: `%` any run of characters, `_` exactly one, everything else literal, case-sensitive;
//! - a dotted path walks objects; an array anywhere on the path matches when some element matches;
//! - `IS NULL` holds when no non-null value is found at the path (missing, `null`, empty array);
//! - a field name the dialect aliases reads the record field it stands for ([`Dialect::record_path`]).

use std::cmp::Ordering;
use std::fmt;

use chrono::{DateTime, Utc};
use serde_json::Value as Json;

use crate::ast::{CmpOp, Expr, ExprKind, Literal, Value};
use crate::dates::parse_instant;
use crate::dialect::Dialect;

/// A predicate compiled for evaluation on records: field names resolved through the dialect, literals
/// pre-parsed as numbers and instants. Its `Display` is the predicate in canonical CEQL.
///
/// ```
/// use oc_ceql::{Dialect, LocalFilter, parse};
/// use serde_json::json;
///
/// const ACME: Dialect = Dialect {
///     element: "acme",
///     hubs: &["crm"],
///     example_resource: "contacts",
///     field_aliases: &[("lastModifiedDate", "modified_at")],
///     always_returned: &["id"],
/// };
/// let filter = LocalFilter::new(&parse("lastModifiedDate > '2024-01-01' and name like 'A%'")?.expr, &ACME);
/// assert!(filter.matches(&json!({"modified_at": "2024-01-01T00:00:01Z", "name": "Acme"})));
/// assert!(!filter.matches(&json!({"modified_at": "2024-01-01T00:00:00Z", "name": "Acme"})));
/// assert_eq!(filter.to_string(), "lastModifiedDate > '2024-01-01' AND name LIKE 'A%'");
/// # Ok::<(), oc_ceql::Error>(())
/// ```
pub struct LocalFilter {
    pred: Pred,
    text: String,
}

impl fmt::Debug for LocalFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("LocalFilter").field(&self.text).finish()
    }
}

impl fmt::Display for LocalFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl LocalFilter {
    /// Compiles `expr`, reading its field names as `dialect` says.
    pub fn new(expr: &Expr, dialect: &Dialect) -> Self {
        LocalFilter { pred: Pred::new(expr, dialect), text: expr.to_string() }
    }

    /// True when `record` passes (the predicate is true, not unknown).
    pub fn matches(&self, record: &Json) -> bool {
        self.pred.eval(record) == Some(true)
    }

    /// The predicate in canonical CEQL.
    pub fn text(&self) -> &str {
        &self.text
    }
}

enum Pred {
    And(Vec<Pred>),
    Or(Vec<Pred>),
    Cmp { path: Vec<String>, op: CmpOp, lit: Lit },
    Like { path: Vec<String>, pattern: Vec<char> },
    In { path: Vec<String>, lits: Vec<Lit> },
    IsNull { path: Vec<String>, negated: bool },
}

struct Lit {
    value: Value,
    num: Option<f64>,
    instant: Option<DateTime<Utc>>,
}

impl Lit {
    fn new(l: &Literal) -> Self {
        let (num, instant) = match &l.value {
            Value::Number(n) => (n.parse().ok(), None),
            Value::String(s) => (s.parse().ok(), parse_instant(s)),
            Value::Bool(_) => (None, None),
        };
        Lit { value: l.value.clone(), num, instant }
    }
}

impl Pred {
    fn new(e: &Expr, dialect: &Dialect) -> Pred {
        let path = |name: &str| dialect.record_path(name);
        match &e.kind {
            ExprKind::And(terms) => Pred::And(terms.iter().map(|t| Pred::new(t, dialect)).collect()),
            ExprKind::Or(terms) => Pred::Or(terms.iter().map(|t| Pred::new(t, dialect)).collect()),
            ExprKind::Compare { field, op, value } => {
                Pred::Cmp { path: path(&field.name), op: *op, lit: Lit::new(value) }
            }
            ExprKind::Like { field, pattern } => {
                Pred::Like { path: path(&field.name), pattern: pattern.value.as_text().chars().collect() }
            }
            ExprKind::In { field, values } => {
                Pred::In { path: path(&field.name), lits: values.iter().map(Lit::new).collect() }
            }
            ExprKind::IsNull { field, negated } => Pred::IsNull { path: path(&field.name), negated: *negated },
        }
    }

    /// Three-valued: `None` is unknown.
    fn eval(&self, record: &Json) -> Option<bool> {
        match self {
            Pred::And(terms) => {
                let mut result = Some(true);
                for t in terms {
                    match t.eval(record) {
                        Some(false) => return Some(false),
                        None => result = None,
                        Some(true) => {}
                    }
                }
                result
            }
            Pred::Or(terms) => {
                let mut result = Some(false);
                for t in terms {
                    match t.eval(record) {
                        Some(true) => return Some(true),
                        None => result = None,
                        Some(false) => {}
                    }
                }
                result
            }
            Pred::Cmp { path, op, lit } => any(record, path, &mut |v| {
                compare(v, lit).map(|ord| match op {
                    CmpOp::Eq => ord == Ordering::Equal,
                    CmpOp::Ne => ord != Ordering::Equal,
                    CmpOp::Lt => ord == Ordering::Less,
                    CmpOp::Le => ord != Ordering::Greater,
                    CmpOp::Gt => ord == Ordering::Greater,
                    CmpOp::Ge => ord != Ordering::Less,
                })
            }),
            Pred::Like { path, pattern } => any(record, path, &mut |v| match v {
                Json::String(s) => Some(like(pattern, s)),
                Json::Number(n) => Some(like(pattern, &n.to_string())),
                Json::Bool(b) => Some(like(pattern, if *b { "true" } else { "false" })),
                _ => None,
            }),
            Pred::In { path, lits } => any(record, path, &mut |v| {
                let mut result = Some(false);
                for lit in lits {
                    match compare(v, lit) {
                        Some(Ordering::Equal) => return Some(true),
                        None => result = None,
                        Some(_) => {}
                    }
                }
                result
            }),
            Pred::IsNull { path, negated } => {
                let mut non_null = false;
                leaves(record, path, &mut |v| non_null |= !v.is_null());
                Some(non_null == *negated)
            }
        }
    }
}

/// Visits the values at `path` (arrays on the way and at the end are walked into).
fn leaves<'v>(v: &'v Json, path: &[String], out: &mut dyn FnMut(&'v Json)) {
    match (v, path.split_first()) {
        (Json::Array(items), _) => items.iter().for_each(|item| leaves(item, path, out)),
        (_, None) => out(v),
        (Json::Object(map), Some((head, rest))) => {
            if let Some(child) = map.get(head.as_str()) {
                leaves(child, rest, out);
            }
        }
        _ => {}
    }
}

/// Some value at `path` satisfies `f` (three-valued OR); with no value at all, `f(null)`.
fn any(record: &Json, path: &[String], f: &mut dyn FnMut(&Json) -> Option<bool>) -> Option<bool> {
    let mut seen = false;
    let mut result = Some(false);
    leaves(record, path, &mut |v| {
        seen = true;
        if result != Some(true) {
            match f(v) {
                Some(true) => result = Some(true),
                None => result = None,
                Some(false) => {}
            }
        }
    });
    if seen { result } else { f(&Json::Null) }
}

fn compare(v: &Json, lit: &Lit) -> Option<Ordering> {
    match v {
        Json::Bool(b) => match &lit.value {
            Value::Bool(l) => Some(b.cmp(l)),
            Value::String(s) if s == "true" || s == "false" => Some(b.cmp(&(s == "true"))),
            _ => None,
        },
        Json::Number(n) => n.as_f64()?.partial_cmp(&lit.num?),
        Json::String(s) => match &lit.value {
            Value::Number(_) => s.trim().parse::<f64>().ok()?.partial_cmp(&lit.num?),
            Value::Bool(l) => match s.as_str() {
                "true" => Some(true.cmp(l)),
                "false" => Some(false.cmp(l)),
                _ => None,
            },
            Value::String(text) => {
                if let Some(li) = lit.instant
                    && let Some(si) = parse_instant(s)
                {
                    return Some(si.cmp(&li));
                }
                Some(s.as_str().cmp(text.as_str()))
            }
        },
        Json::Null | Json::Array(_) | Json::Object(_) => None,
    }
}

/// SQL `LIKE` without an escape character.
fn like(pattern: &[char], text: &str) -> bool {
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('%') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == '_' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '%')
}

#[cfg(test)]
pub(crate) fn like_for_tests(pattern: &str, text: &str) -> bool {
    like(&pattern.chars().collect::<Vec<_>>(), text)
}
