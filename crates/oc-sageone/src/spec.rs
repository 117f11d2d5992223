//! What the Sage provider is, as the neutral layers need to know it ([`ProviderSpec`]): the element `sageone` of
//! the `finance` hub, Sage's own configuration keys, the pollable hub resources with the poller configuration a
//! user starts from, and `deleted_at`, the deletion date of Sage's deleted feed.

use oc_model::config::{KeySpec, ValueKind};
use oc_model::instance::ElementInfo;
use oc_model::poller::{DatesConfiguration, PollerConfig};
use oc_model::ports::{ProviderSpec, ResourceSpec};

use crate::resources::{HUB_RESOURCES, resolve};

/// The element key.
pub const ELEMENT_KEY: &str = "sageone";
/// The hub.
pub const HUB: &str = "finance";
/// The largest `items_per_page` Sage serves.
pub const MAX_PAGE_SIZE: u32 = 200;
/// The field of a deleted-feed record that holds its deletion date.
pub const DELETED_DATE_FIELD: &str = "deleted_at";
/// Sage's date format, as a Java mask (and Open Connectors' default).
pub const DATE_MASK: &str = "yyyy-MM-dd'T'HH:mm:ss'Z'";

/// Sage's configuration keys, besides Open Connectors' own.
pub mod keys {
    /// Sage app signing secret (legacy).
    pub const SIGNATURE_SECRET: &str = "signature.secret";
    /// Sage APIM subscription key (legacy).
    pub const APIM_SUBSCRIPTION_KEY: &str = "apim.subscription.key";
    /// Two-letter country of the Sage business.
    pub const COUNTRY: &str = "country";
    /// ocpoll: the Sage business to poll (default: the user's lead business).
    pub const BUSINESS_ID: &str = "sage.business.id";
}

/// Sage's configuration keys, with which are secret.
pub const KEYS: &[KeySpec] = &[
    KeySpec {
        key: keys::SIGNATURE_SECRET,
        kind: ValueKind::Text,
        secret: true,
        description: "Sage app signing secret (legacy; Sage v3.1 does not sign requests)",
    },
    KeySpec {
        key: keys::APIM_SUBSCRIPTION_KEY,
        kind: ValueKind::Text,
        secret: true,
        description: "Sage APIM subscription key (legacy v3 header; v3.1 ignores it)",
    },
    KeySpec {
        key: keys::COUNTRY,
        kind: ValueKind::Text,
        secret: false,
        description: "two-letter country of the Sage business",
    },
    KeySpec {
        key: keys::BUSINESS_ID,
        kind: ValueKind::Text,
        secret: false,
        description: "ocpoll: the Sage business to poll (default: the lead business)",
    },
];

/// The element this provider serves. Open Connectors' own numbering of elements is not public: `id` is ocpoll's.
pub fn element_info() -> ElementInfo {
    ElementInfo { id: 1, key: ELEMENT_KEY.into(), name: "Sage Business Cloud Accounting".into(), hub: HUB.into() }
}

/// The poller configuration a user starts from for a hub resource (or an alias): changes since the last poll by
/// `lastModifiedDate`, Sage's id, and its `updated_at`/`created_at` dates where the records have them.
pub fn default_poller(resource: &str) -> Option<PollerConfig> {
    let lists = resolve(resource)?;
    let has = |field: &str| lists.every(|l| l.endpoint.has_field(field));
    let date = |field: &str| has(field).then(|| field.to_string());
    let mask = |field: &str| has(field).then(|| DATE_MASK.to_string());
    let zone = |field: &str| has(field).then(|| "GMT".to_string());
    let url = if lists.every(|l| l.endpoint.declares(crate::endpoints::UPDATED_OR_CREATED_SINCE)) {
        format!("/hubs/{HUB}/{resource}?where=lastModifiedDate>='${{date:{DATE_MASK}}}'")
    } else {
        format!("/hubs/{HUB}/{resource}")
    };
    let mut config = PollerConfig::new(url, "id");
    config.dates_configuration = Some(DatesConfiguration {
        updated_date_field: date("updated_at"),
        updated_date_format: mask("updated_at"),
        updated_date_timezone: zone("updated_at"),
        created_date_field: date("created_at"),
        created_date_format: mask("created_at"),
        created_date_timezone: zone("created_at"),
        extra: Default::default(),
    });
    Some(config)
}

/// `customers` → `Customers`, `sales-credit-notes` → `Sales credit notes`.
fn title(name: &str) -> String {
    let words = name.replace(['-', '_'], " ");
    let mut chars = words.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// The description of the Sage provider.
pub fn provider_spec() -> ProviderSpec {
    let resources = HUB_RESOURCES
        .iter()
        .filter_map(|r| {
            let lists = resolve(r.name)?;
            Some(ResourceSpec {
                name: r.name.to_string(),
                title: title(r.name),
                has_deleted_feed: lists.every(|l| l.endpoint.has_deleted_feed()),
                poller: default_poller(r.name)?,
            })
        })
        .collect();
    ProviderSpec {
        element: element_info(),
        keys: KEYS,
        resources,
        deleted_date_field: DELETED_DATE_FIELD.to_string(),
        max_page_size: MAX_PAGE_SIZE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_hub_resource_is_described_with_a_default_that_compiles() {
        let spec = provider_spec();
        assert_eq!(spec.resources.len(), HUB_RESOURCES.len());
        let customers = spec.resource("customers").unwrap();
        assert_eq!(customers.title, "Customers");
        assert!(customers.has_deleted_feed);
        assert_eq!(
            customers.poller.url,
            "/hubs/finance/customers?where=lastModifiedDate>='${date:yyyy-MM-dd'T'HH:mm:ss'Z'}'"
        );
        // the canonical resources only: aliases resolve to Sage lists but are not listed
        assert!(crate::resources::ALIASES.iter().all(|a| spec.resource(a.name).is_none()));
        let aliases = crate::resources::ALIASES.iter().filter_map(|a| {
            let poller = default_poller(a.name)?;
            Some(ResourceSpec { name: a.name.into(), title: title(a.name), has_deleted_feed: false, poller })
        });
        assert_eq!(aliases.clone().count(), crate::resources::ALIASES.len());
        for r in spec.resources.iter().cloned().chain(aliases) {
            let url = oc_template::Template::parse(&r.poller.url).unwrap().render(chrono::Utc::now());
            let needs = oc_model::ports::FieldNeeds {
                fields: std::iter::once(r.poller.id_field.clone())
                    .chain(r.poller.updated_field().map(str::to_owned))
                    .chain(r.poller.created_field().map(str::to_owned))
                    .collect(),
            };
            crate::compile(&url, &needs).unwrap_or_else(|e| panic!("{}: {e}", r.name));
        }
        assert_eq!(title("sales-credit-notes"), "Sales credit notes");
        assert!(spec.secret_keys().contains("signature.secret") && spec.secret_keys().contains("oauth.api.secret"));
        assert!(!spec.secret_keys().contains("country"));
    }
}
