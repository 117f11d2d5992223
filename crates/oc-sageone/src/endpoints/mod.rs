//! Sage's v3.1 list endpoints as its swagger file declares them: the query parameters each list call accepts
//! (so the translator never sends an undeclared one), the record fields of its items, and the keys its `sort`
//! accepts. The table is generated from `sage-accounting-v3.1.swagger.json` by the test `tests/it/swagger.rs`,
//! which fails when the committed table is stale (regenerate with
//! `OCPOLL_BLESS=1 cargo test -p oc-sageone --test it swagger`). Nothing is read at run time: the binary is
//! self-contained.

#[rustfmt::skip]
mod table;

/// The type of a query parameter, as the swagger declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    /// Any string (dates included).
    String,
    /// `true` or `false`.
    Boolean,
    /// A whole number.
    Integer,
    /// A number.
    Number,
}

impl ParamType {
    /// The swagger name of the type.
    pub fn as_str(self) -> &'static str {
        match self {
            ParamType::String => "string",
            ParamType::Boolean => "boolean",
            ParamType::Integer => "integer",
            ParamType::Number => "number",
        }
    }
}

/// One declared query parameter of a list call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param {
    /// Its name (`contact_type_id`).
    pub name: &'static str,
    /// Its type.
    pub ty: ParamType,
}

/// One list endpoint (`GET /contacts`) of Sage v3.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    /// The path below the API base (`/contacts`).
    pub path: &'static str,
    /// The swagger definition of its items (`Contact`).
    pub record: &'static str,
    /// The query parameters the list call declares, in swagger order.
    pub params: &'static [Param],
    /// The top-level fields of its items (from the item definition), sorted.
    pub fields: &'static [&'static str],
    /// The keys `sort` accepts (`created_at`, `updated_at`, ...), empty when the call has no `sort`.
    pub sort_keys: &'static [&'static str],
}

/// The parameter that asks for the records deleted after an instant (exclusive).
pub const DELETED_SINCE: &str = "deleted_since";
/// The parameter that asks for the records created or updated at or after an instant (inclusive).
pub const UPDATED_OR_CREATED_SINCE: &str = "updated_or_created_since";

impl Endpoint {
    /// The declared parameter `name`.
    pub fn param(&self, name: &str) -> Option<&'static Param> {
        self.params.iter().find(|p| p.name == name)
    }

    /// True when the list call declares the query parameter `name`.
    pub fn declares(&self, name: &str) -> bool {
        self.param(name).is_some()
    }

    /// True when the list call has Sage's deleted-records feed (`deleted_since`).
    pub fn has_deleted_feed(&self) -> bool {
        self.declares(DELETED_SINCE)
    }

    /// True when the list call accepts `sort`.
    pub fn has_sort(&self) -> bool {
        self.declares("sort")
    }

    /// True when `name` is a top-level field of the items.
    pub fn has_field(&self, name: &str) -> bool {
        self.fields.binary_search(&name).is_ok()
    }
}

/// Every list endpoint of the swagger, sorted by path.
pub fn endpoints() -> &'static [Endpoint] {
    table::ENDPOINTS
}

/// The list endpoint at `path` (`/contacts`).
pub fn endpoint(path: &str) -> Option<&'static Endpoint> {
    let all = endpoints();
    all.binary_search_by(|e| e.path.cmp(path)).ok().map(|i| &all[i])
}

const fn p(name: &'static str, ty: ParamType) -> Param {
    Param { name, ty }
}

use ParamType::{Boolean as B, Integer as I, Number as N, String as S};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_lookups_work() {
        assert!(endpoints().windows(2).all(|w| w[0].path < w[1].path));
        assert!(endpoints().iter().all(|e| e.fields.windows(2).all(|w| w[0] < w[1])));
        let contacts = endpoint("/contacts").unwrap();
        assert_eq!(contacts.record, "Contact");
        assert!(contacts.has_deleted_feed());
        assert!(!contacts.has_sort());
        assert!(contacts.declares("contact_type_id"));
        assert!(contacts.has_field("email"));
        assert!(!contacts.has_field("contact_type_id"));
        let quotes = endpoint("/sales_quotes").unwrap();
        assert!(!quotes.has_deleted_feed());
        assert!(quotes.has_sort());
        assert!(quotes.sort_keys.contains(&"updated_at"));
        assert!(endpoint("/nope").is_none());
    }
}
