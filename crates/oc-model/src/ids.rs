//! Identifiers shared by every layer.

/// The integer id of a connector instance, as Open Connectors numbers them.
pub type InstanceId = i64;
/// The id of an organization (the tenant of the API).
pub type OrgId = i64;
/// The id of a user of an organization.
pub type UserId = i64;
