//! The OpenAPI 3.1 description of the API, generated from the route table below and served at
//! `/elements/api-v2/openapi.json`; `docs/openapi.json` is the committed copy (a test fails when it is stale).

use axum::Json;
use serde_json::{Map, Value, json};

/// (method, path under the base, summary, authorization, request body schema, success status)
type Op = (&'static str, &'static str, &'static str, Auth, Option<&'static str>, &'static str);

#[derive(Clone, Copy)]
enum Auth {
    Platform,
    Instance,
    None,
}

const OPS: &[Op] = &[
    (
        "get",
        "/elements/{key}/oauth/url",
        "The provider's OAuth authorize URL (query: apiKey, apiSecret, callbackUrl, state, scope, country)",
        Auth::Platform,
        None,
        "200",
    ),
    (
        "post",
        "/instances",
        "Create an instance: validates the body, exchanges providerData.code, starts polling",
        Auth::Platform,
        Some("InstanceRequest"),
        "200",
    ),
    ("get", "/instances", "List instances (query: tags[] — every tag must match)", Auth::Platform, None, "200"),
    (
        "patch",
        "/instances",
        "Patch the instance of the Element token (name, tags, configuration merged by key)",
        Auth::Instance,
        Some("InstancePatch"),
        "200",
    ),
    (
        "get",
        "/instances/configuration",
        "Configuration entries of the instance of the Element token",
        Auth::Instance,
        None,
        "200",
    ),
    (
        "get",
        "/instances/configuration/{configId}",
        "One configuration entry (id or key) of the instance of the Element token",
        Auth::Instance,
        None,
        "200",
    ),
    (
        "patch",
        "/instances/configuration/{configId}",
        "Set one configuration entry: {\"propertyValue\": ...}",
        Auth::Instance,
        Some("ConfigurationEntryPatch"),
        "200",
    ),
    (
        "get",
        "/instances/events",
        "Events across instances (query: instanceId, status, eventType, objectType, page, pageSize)",
        Auth::Platform,
        None,
        "200",
    ),
    (
        "get",
        "/instances/events/{eventId}",
        "One event with its notification and every delivery attempt",
        Auth::Platform,
        None,
        "200",
    ),
    (
        "post",
        "/instances/events/{eventId}/redeliver",
        "Send an event again, whatever its status, in a new notification (same event id); {redelivered: 0, message} \
         when it is on its way already",
        Auth::Platform,
        None,
        "200",
    ),
    ("get", "/instances/{id}", "Read an instance", Auth::Platform, None, "200"),
    (
        "put",
        "/instances/{id}",
        "Replace an instance; a providerData.code re-authorizes it",
        Auth::Platform,
        Some("InstanceRequest"),
        "200",
    ),
    (
        "patch",
        "/instances/{id}",
        "Patch an instance (name, tags, configuration merged by key; null removes a key)",
        Auth::Platform,
        Some("InstancePatch"),
        "200",
    ),
    (
        "delete",
        "/instances/{id}",
        "Delete an instance: its token stops working, polling stops, pending notifications are dropped",
        Auth::Platform,
        None,
        "200",
    ),
    ("get", "/instances/{id}/configuration", "Configuration entries", Auth::Platform, None, "200"),
    (
        "get",
        "/instances/{id}/configuration/{configId}",
        "One configuration entry (id or key)",
        Auth::Platform,
        None,
        "200",
    ),
    (
        "patch",
        "/instances/{id}/configuration/{configId}",
        "Set one configuration entry: {\"propertyValue\": ...}",
        Auth::Platform,
        Some("ConfigurationEntryPatch"),
        "200",
    ),
    ("put", "/instances/{id}/enabled", "Switch the instance on", Auth::Platform, None, "200"),
    (
        "delete",
        "/instances/{id}/enabled",
        "Switch the instance off (instance calls answer 403, no polling)",
        Auth::Platform,
        None,
        "200",
    ),
    (
        "get",
        "/instances/{id}/events",
        "Events of an instance, newest first, with Open Connectors' fields (id, eventDate, status NEW | DISPATCHED | \
         NOTIFIED | FAILED | DROPPED | WITHHELD, providerData, notifiedData) beside ocpoll's (eventId, eventType, objectType, \
         objectId, date, record, deliveryStatus, attempts, notificationId) (query: status in either vocabulary, \
         eventType, objectType, page or nextPage, pageSize)",
        Auth::Platform,
        None,
        "200",
    ),
    (
        "get",
        "/instances/{id}/changes",
        "The change feed of an instance: its events in commit order after an opaque cursor, as {changes: [{cursor, \
         eventId, eventType, objectType, objectId, date, record}], nextCursor, hasMore}; 410 cursor_expired for a \
         cursor older than what is kept (query: after, limit 1..1000 default 100, objectType, eventType, wait 0..60 \
         seconds of long polling)",
        Auth::Platform,
        None,
        "200",
    ),
    (
        "get",
        "/instances/changes",
        "The change feed of the instance of the Element token (as /instances/{id}/changes)",
        Auth::Instance,
        None,
        "200",
    ),
    (
        "post",
        "/instances/{id}/events/replay",
        "Send kept events again as new notifications (same event ids, new notification ids, in order per object): \
         body {since: RFC 3339, until?, objectType?, eventType?} over the commit time; answers {count}. Events still \
         on their way are left alone",
        Auth::Platform,
        Some("ReplayRequest"),
        "200",
    ),
    (
        "get",
        "/instances/{id}/events/{eventId}",
        "One event of the instance with its notification and every delivery attempt",
        Auth::Platform,
        None,
        "200",
    ),
    (
        "get",
        "/instances/{id}/polls",
        "Latest polls of an instance with their outcome and warnings (query: limit)",
        Auth::Platform,
        None,
        "200",
    ),
    (
        "get",
        "/instances/{id}/alerts",
        "Operational alerts of an instance, newest first: {id, instanceId, type (instance.invalid, \
         notifications.disabled, notification.failed, polling.failing), createdAt, body (the JSON sent), status \
         (pending, delivering, delivered, failed, unrouted), attempts, nextAttemptAt, deliveredAt, lastError, target \
         (instance or server)} (query: type, page, pageSize 1..500 default 50; headers elements-total-count, \
         elements-returned-count, elements-next-page-token)",
        Auth::Platform,
        None,
        "200",
    ),
    (
        "get",
        "/instances/alerts",
        "Operational alerts of the instance of the Element token (as /instances/{id}/alerts)",
        Auth::Instance,
        None,
        "200",
    ),
    (
        "get",
        "/instances/{id}/alerts/{alertId}",
        "One operational alert with every delivery attempt (deliveryAttempts)",
        Auth::Platform,
        None,
        "200",
    ),
    (
        "post",
        "/instances/{id}/alerts/{alertId}/redeliver",
        "Send an operational alert again (same id), whatever its status; {redelivered: 0, message} while it is being \
         delivered",
        Auth::Platform,
        None,
        "200",
    ),
    (
        "post",
        "/instances/{id}/notifications/redeliver",
        "Redeliver every failed notification of an instance",
        Auth::Platform,
        None,
        "200",
    ),
    (
        "get",
        "/instances/{id}/notifications/{notificationId}",
        "One notification with every delivery attempt",
        Auth::Platform,
        None,
        "200",
    ),
    (
        "post",
        "/instances/{id}/notifications/{notificationId}/redeliver",
        "Redeliver one delivered or failed notification (same notification id); {redelivered: 0, message} when it is \
         on its way already",
        Auth::Platform,
        None,
        "200",
    ),
    (
        "get",
        "/hubs/{hub}/{resource}",
        "Read-only hub passthrough, the poller's query path (query: where, orderBy, fields, pageSize, page, \
         nextPage). Headers elements-returned-count, elements-total-count (when the provider gives a total and \
         nothing is filtered locally) and elements-next-page-token when there is a further page: pass it back as \
         nextPage with the same where, orderBy and fields (a forged or foreign token is a 400 naming nextPage). \
         429 with Retry-After when the provider's budget has no room",
        Auth::Instance,
        None,
        "200",
    ),
    (
        "get",
        "/hubs/{hub}/{resource}/{id}",
        "One record of the resource by id (query: fields); 404 when the provider has none in the resource \
         (its fixed filters hold: a vendor's id under customers); 429 with Retry-After when the provider's \
         budget has no room",
        Auth::Instance,
        None,
        "200",
    ),
    ("get", "/openapi.json", "This document", Auth::None, None, "200"),
];

const ROOT_OPS: &[(&str, &str)] = &[
    ("/healthz", "The process is up"),
    ("/readyz", "The database answers and its schema is in place"),
    ("/metrics", "Prometheus metrics"),
];

/// The error answers of an operation on `path`.
fn error_responses(auth: Auth, path: &str) -> Map<String, Value> {
    let e = json!({"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let mut m = Map::new();
    m.insert(
        "400".into(),
        json!({"description": "invalid request: every problem with its path", "content": e["content"]}),
    );
    if path.starts_with("/hubs/") {
        m.insert(
            "429".into(),
            json!({"description": "the provider's rate limit has no room now: retry after the Retry-After seconds", "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds, rounded up"}}, "content": e["content"]}),
        );
    }
    if !matches!(auth, Auth::None) {
        m.insert("401".into(), json!({"description": "missing or wrong credentials", "content": e["content"]}));
        m.insert(
            "404".into(),
            json!({"description": "not found (or another organization's)", "content": e["content"]}),
        );
    }
    m
}

/// The document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for (method, path, summary, auth, body, ok) in OPS {
        let full = format!("{}{}", super::BASE, path);
        let params: Vec<Value> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let mut op = json!({"summary": summary, "responses": error_responses(*auth, path)});
        op["responses"][*ok] = json!({"description": "success", "content": {"application/json": {}}});
        if !params.is_empty() {
            op["parameters"] = Value::Array(params);
        }
        if let Some(schema) = body {
            op["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}});
        }
        op["security"] = match auth {
            Auth::Platform => json!([{"userOrganization": []}]),
            Auth::Instance => json!([{"userOrganizationElement": []}]),
            Auth::None => json!([]),
        };
        paths.entry(full).or_insert_with(|| json!({}))[*method] = op;
    }
    for (path, summary) in ROOT_OPS {
        paths.insert(
            path.to_string(),
            json!({"get": {"summary": summary, "security": [], "responses": {"200": {"description": "success"}}}}),
        );
    }
    let instance_schema = oc_model::instance::instance_request_schema_value(oc_sageone::KEYS);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "ocpoll API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "SAP Open Connectors-compatible instances and polling events for Sage Business Cloud Accounting"
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "userOrganization": {"type": "apiKey", "in": "header", "name": "Authorization", "description": "User <user secret>, Organization <organization secret>"},
                "userOrganizationElement": {"type": "apiKey", "in": "header", "name": "Authorization", "description": "User <user secret>, Organization <organization secret>, Element <instance token>"}
            },
            "schemas": {
                "InstanceRequest": instance_schema,
                "InstancePatch": {"type": "object", "properties": {"name": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}}, "configuration": {"type": "object"}}},
                "ConfigurationEntryPatch": {"type": "object", "required": ["propertyValue"], "properties": {"propertyValue": {}}},
                "ReplayRequest": {"type": "object", "required": ["since"], "additionalProperties": false, "properties": {"since": {"type": "string", "format": "date-time"}, "until": {"type": "string", "format": "date-time"}, "objectType": {"type": "string"}, "eventType": {"type": "string", "enum": ["CREATED", "UPDATED", "DELETED"]}}},
                "Error": {
                    "type": "object",
                    "required": ["requestId", "code", "message", "errors"],
                    "properties": {
                        "requestId": {"type": "string"},
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "errors": {"type": "array", "items": {"type": "object", "properties": {"path": {"type": "string"}, "message": {"type": "string"}}}}
                    }
                }
            }
        }
    })
}

/// `GET /elements/api-v2/openapi.json`.
pub(super) async fn serve() -> Json<Value> {
    Json(document())
}

/// The document as committed in `docs/openapi.json`.
pub fn document_text() -> String {
    let mut s = serde_json::to_string_pretty(&document()).unwrap_or_default();
    s.push('\n');
    s
}
