//! What the Tasks provider is, as the neutral layers need to know it: the element `tasks` of the `work` hub,
//! its own configuration keys, the resources `tasks` and `projects` with the poller configuration a user starts
//! from, `removed_on` (the date of its tombstones), and its CEQL dialect.

use oc_ceql::Dialect;
use oc_model::config::{KeySpec, ValueKind};
use oc_model::instance::ElementInfo;
use oc_model::poller::{DatesConfiguration, PollerConfig};
use oc_model::ports::{ProviderSpec, ResourceSpec};

/// The element key.
pub const ELEMENT_KEY: &str = "tasks";
/// The hub.
pub const HUB: &str = "work";
/// The resources, in the order a user is shown them.
pub(crate) const RESOURCES: [(&str, &str); 2] = [("tasks", "Tasks"), ("projects", "Projects")];
/// The largest `limit` the Tasks API serves.
pub const MAX_PAGE_SIZE: u32 = 100;
/// The field of a tombstone that holds its deletion date.
pub const DELETED_DATE_FIELD: &str = "removed_on";
/// The header naming the workspace of a request.
pub const WORKSPACE_HEADER: &str = "X-Workspace";

/// The Tasks provider's configuration keys, besides Open Connectors' own.
pub mod keys {
    /// The workspace the code must grant (when absent: whichever the user granted).
    pub const WORKSPACE: &str = "tasks.workspace";
    /// The PKCE code verifier of the authorization, sent once with the code.
    pub const PKCE_VERIFIER: &str = "tasks.pkce.verifier";
}

/// The Tasks provider's configuration keys, with which are secret.
pub const KEYS: &[KeySpec] = &[
    KeySpec {
        key: keys::WORKSPACE,
        kind: ValueKind::Text,
        secret: false,
        description: "the Tasks workspace the authorization must grant",
    },
    KeySpec {
        key: keys::PKCE_VERIFIER,
        kind: ValueKind::Text,
        secret: true,
        description: "the PKCE code verifier of the authorization code",
    },
];

/// What `oc-ceql` needs to know of the Tasks API: the `work` hub of element `tasks`; `lastModifiedDate`,
/// `createdDate` and `deletedDate` read `modified`, `created` and `removed_on`; every record carries `uid`.
pub const DIALECT: Dialect = Dialect {
    element: ELEMENT_KEY,
    hubs: &[HUB],
    example_resource: "tasks",
    field_aliases: &[("lastModifiedDate", "modified"), ("createdDate", "created"), ("deletedDate", "removed_on")],
    always_returned: &["uid"],
};

/// The poller configuration a user starts from: changes since the last poll by `lastModifiedDate`, the id
/// `uid`, the dates `modified` and `created` (RFC 3339, read as ISO 8601: no mask).
fn default_poller(resource: &str) -> PollerConfig {
    let url = format!("/hubs/{HUB}/{resource}?where=lastModifiedDate>='${{date:yyyy-MM-dd'T'HH:mm:ss'Z'}}'");
    let mut config = PollerConfig::new(url, "uid");
    config.dates_configuration = Some(DatesConfiguration {
        updated_date_field: Some("modified".into()),
        created_date_field: Some("created".into()),
        ..DatesConfiguration::default()
    });
    config
}

/// The description of the Tasks provider.
pub fn provider_spec() -> ProviderSpec {
    ProviderSpec {
        element: ElementInfo {
            id: 2,
            key: ELEMENT_KEY.into(),
            name: "Tasks (a proof provider)".into(),
            hub: HUB.into(),
        },
        keys: KEYS,
        resources: RESOURCES
            .iter()
            .map(|(name, title)| ResourceSpec {
                name: (*name).into(),
                title: (*title).into(),
                has_deleted_feed: true,
                poller: default_poller(name),
            })
            .collect(),
        deleted_date_field: DELETED_DATE_FIELD.into(),
        max_page_size: MAX_PAGE_SIZE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_resource_has_a_default_that_compiles() {
        let spec = provider_spec();
        assert_eq!(spec.resources.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["tasks", "projects"]);
        for r in &spec.resources {
            // the engine renders `${date:...}` before compiling; a literal date stands for it here
            let url = r.poller.url.replace("${date:yyyy-MM-dd'T'HH:mm:ss'Z'}", "2024-01-31T10:00:00Z");
            let q = crate::compile(&url).unwrap_or_else(|e| panic!("{}: {e}", r.name));
            assert_eq!(q.query, [("modified_since".to_string(), "2024-01-31T10:00:00Z".to_string())]);
            assert!(q.local.is_none() && q.has_deleted_feed);
            assert_eq!(r.poller.id_field, "uid");
        }
        assert!(spec.secret_keys().contains(keys::PKCE_VERIFIER) && !spec.secret_keys().contains(keys::WORKSPACE));
        assert_eq!(spec.key_spec(keys::WORKSPACE).map(|k| k.kind), Some(ValueKind::Text));
    }
}
