//! The dialect: what a provider tells this crate about itself — the hubs it serves, the hub field names that
//! stand for fields of its records, and the fields its records always carry. The language knows no provider;
//! the provider describes itself here.

/// A provider's description of itself, filled once as a constant:
///
/// ```
/// use oc_ceql::Dialect;
///
/// const ACME: Dialect = Dialect {
///     element: "acme",
///     hubs: &["crm"],
///     example_resource: "contacts",
///     field_aliases: &[("lastModifiedDate", "modified_at")],
///     always_returned: &["id"],
/// };
/// assert!(ACME.serves("crm"));
/// assert_eq!(ACME.record_path("lastModifiedDate"), ["modified_at"]);
/// assert_eq!(ACME.record_path("owner.id"), ["owner", "id"]);
/// assert!(ACME.is_always_returned("id"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dialect {
    /// The provider's element key, as messages name it ("`acme` serves the `crm` hub").
    pub element: &'static str,
    /// The hubs served (`/hubs/{hub}/...`), compared exactly. The first is the one the example in messages uses.
    pub hubs: &'static [&'static str],
    /// A resource of the first hub, for the example hub URL in messages.
    pub example_resource: &'static str,
    /// Hub field names and the record fields they stand for (`lastModifiedDate` → the record's own name).
    pub field_aliases: &'static [(&'static str, &'static str)],
    /// Fields every record of the provider carries without being asked for.
    pub always_returned: &'static [&'static str],
}

impl Dialect {
    /// True when the dialect serves `hub`.
    pub fn serves(&self, hub: &str) -> bool {
        self.hubs.contains(&hub)
    }

    /// The record field a hub field name stands for, when it is an alias.
    pub fn alias(&self, name: &str) -> Option<&'static str> {
        self.field_aliases.iter().find(|(alias, _)| *alias == name).map(|(_, field)| *field)
    }

    /// The record path a CEQL field name reads: an alias's field, else the name split at dots.
    pub fn record_path(&self, name: &str) -> Vec<String> {
        match self.alias(name) {
            Some(field) => vec![field.to_string()],
            None => name.split('.').map(str::to_string).collect(),
        }
    }

    /// True when every record carries `field` without being asked for.
    pub fn is_always_returned(&self, field: &str) -> bool {
        self.always_returned.contains(&field)
    }
}
