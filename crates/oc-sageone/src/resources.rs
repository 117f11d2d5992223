//! The finance hub's resources and the Sage v3.1 list calls behind them (the table of `sage-v3.1.md`), Open
//! Connectors' own finance-hub names as aliases where Sage has the resource ([`ALIASES`]: `items` is products
//! and services, one list after the other), plus Sage's own snake_case endpoint names.

use crate::endpoints::{Endpoint, endpoint};

/// A hub resource: its name in hub URLs, the Sage list path it reads and the parameters that path always gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HubResource {
    /// The hub name (`customers`).
    pub name: &'static str,
    /// The Sage path (`/contacts`).
    pub path: &'static str,
    /// Parameters sent with every request of this resource (`contact_type_id=CUSTOMER`).
    pub fixed: &'static [(&'static str, &'static str)],
}

const fn r(name: &'static str, path: &'static str) -> HubResource {
    HubResource { name, path, fixed: &[] }
}

/// The finance hub resources (the canonical ones, which the provider's spec lists). Whether each has a deleted
/// feed is a fact of its endpoint ([`Endpoint::has_deleted_feed`]), read from the swagger.
pub static HUB_RESOURCES: &[HubResource] = &[
    HubResource { name: "customers", path: "/contacts", fixed: &[("contact_type_id", "CUSTOMER")] },
    HubResource { name: "vendors", path: "/contacts", fixed: &[("contact_type_id", "VENDOR")] },
    r("contacts", "/contacts"),
    r("invoices", "/sales_invoices"),
    r("sales-credit-notes", "/sales_credit_notes"),
    r("sales-quotes", "/sales_quotes"),
    r("purchase-invoices", "/purchase_invoices"),
    r("purchase-credit-notes", "/purchase_credit_notes"),
    r("payments", "/contact_payments"),
    r("other-payments", "/other_payments"),
    r("products", "/products"),
    r("services", "/services"),
    r("ledger-accounts", "/ledger_accounts"),
    r("bank-accounts", "/bank_accounts"),
    r("tax-rates", "/tax_rates"),
    r("journals", "/journals"),
    r("addresses", "/addresses"),
    r("contact-persons", "/contact_persons"),
    r("contact-allocations", "/contact_allocations"),
    r("stock-items", "/stock_items"),
];

/// One Sage list behind an alias: its path and the parameters it always gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AliasList {
    /// The Sage path (`/products`).
    pub path: &'static str,
    /// Parameters sent with every request (`transaction_type_id=VENDOR_PAYMENT`).
    pub fixed: &'static [(&'static str, &'static str)],
}

/// An Open Connectors finance-hub name that Sage has under another name: one Sage list, or several read one
/// after the other behind one cursor (their ids are GUIDs: they do not collide).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alias {
    /// The Open Connectors name (`items`).
    pub name: &'static str,
    /// The Sage lists, in reading order.
    pub lists: &'static [AliasList],
    /// What the Open Connectors resource is, and how the Sage lists stand for it.
    pub note: &'static str,
}

const fn one(path: &'static str) -> AliasList {
    AliasList { path, fixed: &[] }
}

/// Open Connectors' finance-hub names accepted as aliases (their events carry the alias as `objectType`). The
/// finance-hub names Sage has no list for ([`WITHOUT_SAGE_LIST`]) are not; `docs/hub.md` has the table (a test
/// keeps it whole).
pub static ALIASES: &[Alias] = &[
    Alias {
        name: "items",
        lists: &[one("/products"), one("/services")],
        note: "what is sold or bought: Sage keeps products and services apart",
    },
    Alias { name: "tax-codes", lists: &[one("/tax_rates")], note: "Sage's tax rates are its tax codes" },
    Alias { name: "journal-entries", lists: &[one("/journals")], note: "manual journals" },
    Alias { name: "bills", lists: &[one("/purchase_invoices")], note: "invoices from vendors" },
    Alias { name: "credit-memos", lists: &[one("/sales_credit_notes")], note: "credits to customers" },
    Alias { name: "vendor-credits", lists: &[one("/purchase_credit_notes")], note: "credits from vendors" },
    Alias { name: "estimates", lists: &[one("/sales_estimates")], note: "Sage's estimates (it also has quotes)" },
    Alias {
        name: "bill-payments",
        lists: &[AliasList { path: "/contact_payments", fixed: &[("transaction_type_id", "VENDOR_PAYMENT")] }],
        note: "payments to vendors (Sage's contact payments of type VENDOR_PAYMENT)",
    },
];

/// Open Connectors' finance-hub names for which Sage has no list: unknown resources here.
pub static WITHOUT_SAGE_LIST: &[&str] = &[
    "purchase-orders",
    "sales-orders",
    "sales-receipts",
    "employees",
    "classes",
    "departments",
    "credit-terms",
    "refund-receipts",
    "time-activities",
    "tax-agencies",
    "purchases",
    "item-receipts",
    "payroll-wage-items",
    "expense-receipts",
];

/// One Sage list a resource name reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolved {
    /// The list endpoint.
    pub endpoint: &'static Endpoint,
    /// Parameters always sent.
    pub fixed: &'static [(&'static str, &'static str)],
}

impl Resolved {
    /// True when `record` is inside the fixed filters: for `x_id=V`, Sage's own rule — the record's `x.id` is
    /// `V`, or one of its `xs` has the id `V` (`contact_type_id=CUSTOMER` ↔ `contact_types[].id`). A fixed
    /// parameter with no such field cannot be checked and holds.
    pub fn holds_for(&self, record: &serde_json::Value) -> bool {
        self.fixed.iter().all(|(param, value)| {
            let Some(field) = param.strip_suffix("_id") else { return true };
            let id_of = |v: &serde_json::Value| v.get("id").and_then(serde_json::Value::as_str) == Some(*value);
            let plural = format!("{field}s");
            if self.endpoint.has_field(field) {
                record.get(field).is_some_and(id_of)
            } else if self.endpoint.has_field(&plural) {
                record.get(&plural).and_then(serde_json::Value::as_array).is_some_and(|a| a.iter().any(id_of))
            } else {
                true
            }
        })
    }
}

/// The Sage lists of a resource name, in reading order: one, or several for a composite alias (`items`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lists {
    first: Resolved,
    rest: Vec<Resolved>,
}

impl Lists {
    /// The first list (the only one unless [`is_composite`](Self::is_composite)).
    pub fn first(&self) -> Resolved {
        self.first
    }

    /// Every list, in reading order.
    pub fn all(&self) -> impl Iterator<Item = Resolved> + '_ {
        std::iter::once(self.first).chain(self.rest.iter().copied())
    }

    /// The list at `index` of [`all`](Self::all).
    pub fn get(&self, index: usize) -> Option<Resolved> {
        match index {
            0 => Some(self.first),
            i => self.rest.get(i - 1).copied(),
        }
    }

    /// How many lists.
    pub fn len(&self) -> usize {
        1 + self.rest.len()
    }

    /// Never true: there is at least one list (for clippy's `len_without_is_empty`).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// True when the resource reads several lists one after the other.
    pub fn is_composite(&self) -> bool {
        !self.rest.is_empty()
    }

    /// True when every list satisfies `f`.
    pub fn every(&self, f: impl Fn(&Resolved) -> bool) -> bool {
        self.all().all(|r| f(&r))
    }
}

/// Resolves a hub resource name: a hub name of [`HUB_RESOURCES`], an Open Connectors alias of [`ALIASES`], else
/// the name of any Sage list endpoint in snake_case (`sales_invoices`) or with hyphens (`journal-codes`). Case
/// does not matter.
pub fn resolve(name: &str) -> Option<Lists> {
    let lower = name.to_ascii_lowercase();
    let single =
        |path: &str, fixed| endpoint(path).map(|endpoint| Lists { first: Resolved { endpoint, fixed }, rest: vec![] });
    if let Some(hub) = HUB_RESOURCES.iter().find(|r| r.name == lower) {
        return single(hub.path, hub.fixed);
    }
    if let Some(alias) = ALIASES.iter().find(|a| a.name == lower) {
        let lists: Option<Vec<Resolved>> = alias
            .lists
            .iter()
            .map(|l| endpoint(l.path).map(|endpoint| Resolved { endpoint, fixed: l.fixed }))
            .collect();
        let mut lists = lists?.into_iter();
        let first = lists.next()?;
        return Some(Lists { first, rest: lists.collect() });
    }
    let path = format!("/{}", lower.replace('-', "_"));
    single(&path, &[])
}

/// The hub resource names and the aliases, comma separated (for messages).
pub(crate) fn known_names() -> String {
    let hub = HUB_RESOURCES.iter().map(|r| r.name).collect::<Vec<_>>().join(", ");
    let aliases = ALIASES.iter().map(|a| a.name).collect::<Vec<_>>().join(", ");
    format!("{hub}; open connectors' names: {aliases}")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    type Expected<'a> = Option<Vec<(&'a str, &'a [(&'a str, &'a str)])>>;

    fn check(name: &str, expected: Expected<'_>) {
        let got = resolve(name).map(|l| l.all().map(|r| (r.endpoint.path, r.fixed)).collect::<Vec<_>>());
        assert_eq!(got, expected, "{name}");
    }

    #[test]
    fn names_resolve() {
        check("customers", Some(vec![("/contacts", &[("contact_type_id", "CUSTOMER")])]));
        check("Vendors", Some(vec![("/contacts", &[("contact_type_id", "VENDOR")])]));
        check("invoices", Some(vec![("/sales_invoices", &[])]));
        check("sales_invoices", Some(vec![("/sales_invoices", &[])]));
        check("sales-invoices", Some(vec![("/sales_invoices", &[])]));
        check("payments", Some(vec![("/contact_payments", &[])]));
        check("contact_payments", Some(vec![("/contact_payments", &[])]));
        check("journal_codes", Some(vec![("/journal_codes", &[])]));
        check("stock-items", Some(vec![("/stock_items", &[])]));
        check("widgets", None);
        check("", None);
        check("business_settings", None);
    }

    #[test]
    fn open_connectors_names_are_aliases() {
        check("items", Some(vec![("/products", &[]), ("/services", &[])]));
        check("Items", Some(vec![("/products", &[]), ("/services", &[])]));
        check("tax-codes", Some(vec![("/tax_rates", &[])]));
        check("journal-entries", Some(vec![("/journals", &[])]));
        check("bills", Some(vec![("/purchase_invoices", &[])]));
        check("credit-memos", Some(vec![("/sales_credit_notes", &[])]));
        check("vendor-credits", Some(vec![("/purchase_credit_notes", &[])]));
        check("estimates", Some(vec![("/sales_estimates", &[])]));
        check("bill-payments", Some(vec![("/contact_payments", &[("transaction_type_id", "VENDOR_PAYMENT")])]));
        check("purchase-orders", None);
        check("employees", None);
        let items = resolve("items").unwrap();
        assert!(items.is_composite() && items.len() == 2 && items.get(1).is_some() && items.get(2).is_none());
        assert!(!resolve("products").unwrap().is_composite());
        // an alias is never also a hub resource (the hub name would win)
        assert!(ALIASES.iter().all(|a| HUB_RESOURCES.iter().all(|r| r.name != a.name)));
    }

    #[test]
    fn every_hub_resource_and_alias_resolves() {
        for r in HUB_RESOURCES {
            assert!(resolve(r.name).is_some(), "{}", r.name);
        }
        for a in ALIASES {
            assert!(resolve(a.name).is_some_and(|l| l.len() == a.lists.len()), "{}", a.name);
        }
    }

    #[test]
    fn docs_hub_md_lists_every_alias_and_every_name_sage_lacks() {
        let all = include_str!("../../../docs/hub.md");
        let heading = "## Open Connectors' finance-hub names";
        let doc = &all[all.find(heading).expect("docs/hub.md has the section of the aliases")..];
        for alias in ALIASES {
            let row = doc
                .lines()
                .find(|l| l.starts_with(&format!("| `{}` |", alias.name)))
                .unwrap_or_else(|| panic!("docs/hub.md has no row for the alias `{}`", alias.name));
            for list in alias.lists {
                let mut call = list.path.to_string();
                for (i, (k, v)) in list.fixed.iter().enumerate() {
                    call.push_str(&format!("{}{k}={v}", if i == 0 { '?' } else { '&' }));
                }
                assert!(row.contains(&format!("`{call}`")), "the row of `{}` lacks `{call}`: {row}", alias.name);
            }
        }
        let rows = doc.lines().filter(|l| l.starts_with("| `")).count();
        assert_eq!(rows, ALIASES.len(), "docs/hub.md lists an alias that ALIASES does not have");
        for name in WITHOUT_SAGE_LIST {
            assert!(doc.contains(&format!("`{name}`")), "docs/hub.md does not name `{name}`");
            assert!(resolve(name).is_none(), "{name} resolves");
        }
    }

    #[test]
    fn fixed_filters_hold_on_records_as_sage_does() {
        let customers = resolve("customers").unwrap().first();
        let customer = json!({"id": "a", "contact_types": [{"id": "CUSTOMER"}]});
        let both = json!({"id": "b", "contact_types": [{"id": "VENDOR"}, {"id": "CUSTOMER"}]});
        let vendor = json!({"id": "c", "contact_types": [{"id": "VENDOR"}]});
        assert!(customers.holds_for(&customer) && customers.holds_for(&both));
        assert!(!customers.holds_for(&vendor) && !customers.holds_for(&json!({"id": "d"})));
        let bill_payments = resolve("bill-payments").unwrap().first();
        assert!(bill_payments.holds_for(&json!({"transaction_type": {"id": "VENDOR_PAYMENT"}})));
        assert!(!bill_payments.holds_for(&json!({"transaction_type": {"id": "CUSTOMER_RECEIPT"}})));
        assert!(resolve("contacts").unwrap().first().holds_for(&vendor));
    }
}
