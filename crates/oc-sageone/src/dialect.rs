//! The Sage provider's CEQL dialect: the hub it serves, the hub field names that stand for Sage record fields,
//! and the fields every Sage list returns.

use oc_ceql::Dialect;

use crate::spec::{ELEMENT_KEY, HUB};

/// What `oc-ceql` needs to know of Sage: the `finance` hub of element `sageone`; `lastModifiedDate`,
/// `createdDate` and `deletedDate` read Sage's `updated_at`, `created_at` and `deleted_at`; `id`,
/// `displayed_as` and `$path` come with every record (`attributes` need not name them).
pub const DIALECT: Dialect = Dialect {
    element: ELEMENT_KEY,
    hubs: &[HUB],
    example_resource: "customers",
    field_aliases: &[("lastModifiedDate", "updated_at"), ("createdDate", "created_at"), ("deletedDate", "deleted_at")],
    always_returned: &["id", "displayed_as", "$path"],
};
