//! The finance hub's resources and the Sage v3.1 list calls behind them (the table of `sage-v3.1.md`), plus
//! Sage's own snake_case endpoint names as aliases.

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

/// The finance hub resources. Whether each has a deleted feed is a fact of its endpoint
/// ([`Endpoint::has_deleted_feed`]), read from the swagger.
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

/// A resource name resolved to its endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolved {
    /// The list endpoint.
    pub endpoint: &'static Endpoint,
    /// Parameters always sent.
    pub fixed: &'static [(&'static str, &'static str)],
}

/// Resolves a hub resource name: a hub name of [`HUB_RESOURCES`], else the name of any Sage list endpoint in
/// snake_case (`sales_invoices`) or with hyphens (`journal-codes`). Case does not matter.
pub fn resolve(name: &str) -> Option<Resolved> {
    let lower = name.to_ascii_lowercase();
    if let Some(hub) = HUB_RESOURCES.iter().find(|r| r.name == lower) {
        return endpoint(hub.path).map(|endpoint| Resolved { endpoint, fixed: hub.fixed });
    }
    let path = format!("/{}", lower.replace('-', "_"));
    endpoint(&path).map(|endpoint| Resolved { endpoint, fixed: &[] })
}

/// The hub resource names, comma separated (for messages).
pub(crate) fn known_names() -> String {
    HUB_RESOURCES.iter().map(|r| r.name).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, expected: Option<(&str, &[(&str, &str)])>) {
        let got = resolve(name).map(|r| (r.endpoint.path, r.fixed));
        assert_eq!(got, expected, "{name}");
    }

    #[test]
    fn names_resolve() {
        check("customers", Some(("/contacts", &[("contact_type_id", "CUSTOMER")])));
        check("Vendors", Some(("/contacts", &[("contact_type_id", "VENDOR")])));
        check("invoices", Some(("/sales_invoices", &[])));
        check("sales_invoices", Some(("/sales_invoices", &[])));
        check("sales-invoices", Some(("/sales_invoices", &[])));
        check("payments", Some(("/contact_payments", &[])));
        check("contact_payments", Some(("/contact_payments", &[])));
        check("journal_codes", Some(("/journal_codes", &[])));
        check("stock-items", Some(("/stock_items", &[])));
        check("widgets", None);
        check("", None);
        check("business_settings", None);
    }

    #[test]
    fn every_hub_resource_resolves() {
        for r in HUB_RESOURCES {
            assert!(resolve(r.name).is_some(), "{}", r.name);
        }
    }
}
