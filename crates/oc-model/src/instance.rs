//! The instance request body (`POST /instances`) and the instance as the API returns it.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{Configuration, KEYS, KeySpec, ValueKind};
use crate::ids::{InstanceId, UserId};
use crate::poller::PollerConfig;

/// `element` of a request body: which connector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ElementRef {
    /// The connector key, `sageone`.
    pub key: String,
    /// Other fields, kept.
    #[serde(flatten)]
    #[schemars(skip)]
    pub extra: IndexMap<String, Value>,
}

/// `providerData` of a request body: the OAuth code and whatever else the caller sends.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProviderData {
    /// The OAuth authorization code from the provider's redirect (`GB/...`), passed intact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Other fields (e.g. `state`), kept.
    #[serde(flatten)]
    #[schemars(skip)]
    pub extra: IndexMap<String, Value>,
}

/// The body of `POST /instances` (and `PUT /instances/{id}`), as Open Connectors takes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(
    title = "ocpoll instance request",
    description = "The body of POST /instances, as SAP Open Connectors takes it"
)]
pub struct InstanceRequest {
    /// Which connector.
    pub element: ElementRef,
    /// The OAuth code exchanged for tokens before the instance is created.
    #[serde(rename = "providerData", default)]
    pub provider_data: ProviderData,
    /// Configuration keys; see the `configuration` reference.
    #[serde(default)]
    pub configuration: Configuration,
    /// Tags, used to filter `GET /instances?tags[]=...`.
    #[serde(default)]
    pub tags: Vec<String>,
    /// A name for the instance.
    pub name: String,
    /// Other top-level fields, kept.
    #[serde(flatten)]
    #[schemars(skip)]
    pub extra: IndexMap<String, Value>,
}

impl InstanceRequest {
    /// The configuration.
    pub fn configuration(&self) -> &Configuration {
        &self.configuration
    }
}

/// `element` of a response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ElementInfo {
    /// Numeric id of the element, as Open Connectors shows one.
    pub id: i64,
    /// `sageone`.
    pub key: String,
    /// Display name.
    pub name: String,
    /// `finance`.
    pub hub: String,
}

/// `user` of a response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRef {
    /// The id of the user who created the instance.
    pub id: UserId,
}

/// An instance as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceResponse {
    /// Integer id.
    pub id: InstanceId,
    /// Name.
    pub name: String,
    /// The instance secret (`Element` token): present only in the answer to create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The connector.
    pub element: ElementInfo,
    /// False when the provider authorization is lost (e.g. a refresh token was rejected).
    pub valid: bool,
    /// Why the instance is not valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_message: Option<String>,
    /// True when switched off with `DELETE /instances/{id}/enabled`.
    pub disabled: bool,
    /// `event.notification.enabled`.
    pub events_enabled: bool,
    /// ocpoll: why notifications are switched off by the receiver (`410 Gone`), when they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events_disabled_reason: Option<String>,
    /// Resolved configuration: secrets masked, `event.poller.configuration` as a JSON string.
    pub configuration: Configuration,
    /// Tags.
    pub tags: Vec<String>,
    /// Creation time.
    pub created_date: DateTime<Utc>,
    /// Last update time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_date: Option<DateTime<Utc>>,
    /// The creating user.
    pub user: UserRef,
    /// Warnings found when the instance was validated (e.g. a repaired CEQL quote).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<crate::error::Problem>,
}

/// The JSON Schema of one configuration key (its kind, and its description with whether it is secret).
fn key_schema(spec: &KeySpec, generator: &mut SchemaGenerator) -> Value {
    let mut schema = match spec.kind {
        ValueKind::Text => serde_json::json!({"type": ["string", "number", "boolean"]}),
        ValueKind::Bool => serde_json::json!({"type": ["boolean", "string"], "examples": [true, "true"]}),
        ValueKind::Url => serde_json::json!({"type": "string", "format": "uri"}),
        ValueKind::Minutes => serde_json::json!({
            "type": ["number", "string"],
            "examples": ["15", 0.25],
        }),
        ValueKind::Instant => {
            serde_json::json!({"type": "string", "examples": ["2024-01-31", "2024-01-31T12:00:00Z"]})
        }
        ValueKind::EventTypes => serde_json::json!({
            "oneOf": [
                {"type": "string", "examples": ["CREATED,UPDATED,DELETED", "CREATED"]},
                {"type": "array", "items": {"type": "string", "enum": ["CREATED", "UPDATED", "DELETED"]}}
            ]
        }),
        ValueKind::Json => {
            let resource = serde_json::to_value(generator.subschema_for::<PollerConfig>()).unwrap_or_default();
            serde_json::json!({
                "oneOf": [
                    {"type": "object", "additionalProperties": resource},
                    {"type": "string", "description": "a JSON-encoded string of the object form"}
                ]
            })
        }
    };
    let description = if spec.secret {
        format!("{} (secret: stored encrypted, masked on read)", spec.description)
    } else {
        spec.description.to_string()
    };
    schema["description"] = Value::String(description);
    schema
}

impl JsonSchema for Configuration {
    fn schema_name() -> Cow<'static, str> {
        "Configuration".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut properties = serde_json::Map::new();
        for spec in KEYS {
            properties.insert(spec.key.to_string(), key_schema(spec, generator));
        }
        json_schema!({
            "type": "object",
            "description": "Configuration keys of the Open Connectors contract; unknown keys are kept and echoed",
            "properties": properties,
            "additionalProperties": true
        })
    }
}

/// The JSON Schema of the instance request body, with the configuration keys of the providers' `provider_keys`
/// besides Open Connectors' own, as a JSON value.
pub fn instance_request_schema_value(provider_keys: &[KeySpec]) -> Value {
    let mut generator = SchemaGenerator::default();
    let extra: Vec<(String, Value)> =
        provider_keys.iter().map(|k| (k.key.to_string(), key_schema(k, &mut generator))).collect();
    let mut schema = serde_json::to_value(schemars::schema_for!(InstanceRequest)).unwrap_or_default();
    if let Some(Value::Object(properties)) = schema.pointer_mut("/$defs/Configuration/properties") {
        for (key, value) in extra {
            properties.entry(key).or_insert(value);
        }
    }
    schema
}

/// [`instance_request_schema_value`] pretty-printed (what `docs/schemas/` holds).
pub fn instance_request_schema(provider_keys: &[KeySpec]) -> String {
    let mut text = serde_json::to_string_pretty(&instance_request_schema_value(provider_keys)).unwrap_or_default();
    text.push('\n');
    text
}
