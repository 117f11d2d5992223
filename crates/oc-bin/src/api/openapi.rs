//! The OpenAPI 3.1 description of the API, generated from the route table below and served at
//! `/elements/api-v2/openapi.json`; `docs/openapi.json` is the committed copy (a test fails when it is stale).

use axum::Json;
use serde_json::{Map, Value, json};

/// (method, path under the base, summary, authorization, request body schema, success answer)
type Op = (&'static str, &'static str, &'static str, Auth, Option<&'static str>, Answer);

#[derive(Clone, Copy)]
enum Auth {
    Platform,
    Instance,
    None,
}

/// The success answer of an operation: its status is 200.
#[derive(Clone, Copy)]
enum Answer {
    /// One JSON value of the schema of this name.
    One(&'static str),
    /// A JSON array of values of the schema of this name, with the paging headers when `paged`.
    Many(&'static str, Paging),
    /// No body.
    Nothing,
}

/// Which paging headers a list answers with.
#[derive(Clone, Copy, PartialEq)]
enum Paging {
    /// None.
    No,
    /// `elements-total-count`, `elements-returned-count`, `elements-next-page-token` (a page number).
    Numbered,
    /// The hub passthrough's: `elements-returned-count`, `elements-total-count` when known,
    /// `elements-next-page-token` (a sealed token), `x-ocpoll-warnings`.
    Hub,
}

use Answer::{Many, Nothing, One};

const OPS: &[Op] = &[
    (
        "get",
        "/elements/{key}/oauth/url",
        "The provider's OAuth authorize URL (query: apiKey, apiSecret, callbackUrl, state, scope, country)",
        Auth::Platform,
        None,
        One("OAuthUrl"),
    ),
    (
        "post",
        "/instances",
        "Create an instance: validates the body, exchanges providerData.code, starts polling",
        Auth::Platform,
        Some("InstanceRequest"),
        One("Instance"),
    ),
    (
        "get",
        "/instances",
        "List instances (query: tags[] — every tag must match)",
        Auth::Platform,
        None,
        Many("Instance", Paging::No),
    ),
    (
        "patch",
        "/instances",
        "Patch the instance of the Element token (name, tags, configuration merged by key)",
        Auth::Instance,
        Some("InstancePatch"),
        One("Instance"),
    ),
    (
        "get",
        "/instances/configuration",
        "Configuration entries of the instance of the Element token",
        Auth::Instance,
        None,
        Many("ConfigurationEntry", Paging::No),
    ),
    (
        "get",
        "/instances/configuration/{configId}",
        "One configuration entry (id or key) of the instance of the Element token",
        Auth::Instance,
        None,
        One("ConfigurationEntry"),
    ),
    (
        "patch",
        "/instances/configuration/{configId}",
        "Set one configuration entry: {\"propertyValue\": ...}",
        Auth::Instance,
        Some("ConfigurationEntryPatch"),
        One("ConfigurationEntry"),
    ),
    (
        "get",
        "/instances/events",
        "Events across instances (query: instanceId, status, eventType, objectType, page, pageSize)",
        Auth::Platform,
        None,
        Many("Event", Paging::Numbered),
    ),
    (
        "get",
        "/instances/events/{eventId}",
        "One event with its notification and every delivery attempt",
        Auth::Platform,
        None,
        One("EventDetail"),
    ),
    (
        "post",
        "/instances/events/{eventId}/redeliver",
        "Send an event again, whatever its status, in a new notification (same event id); {redelivered: 0, message} \
         when it is on its way already",
        Auth::Platform,
        None,
        One("Redelivered"),
    ),
    ("get", "/instances/{id}", "Read an instance", Auth::Platform, None, One("Instance")),
    (
        "put",
        "/instances/{id}",
        "Replace an instance; a providerData.code re-authorizes it",
        Auth::Platform,
        Some("InstanceRequest"),
        One("Instance"),
    ),
    (
        "patch",
        "/instances/{id}",
        "Patch an instance (name, tags, configuration merged by key; null removes a key)",
        Auth::Platform,
        Some("InstancePatch"),
        One("Instance"),
    ),
    (
        "delete",
        "/instances/{id}",
        "Delete an instance: its token stops working, polling stops, pending notifications are dropped",
        Auth::Platform,
        None,
        Nothing,
    ),
    (
        "get",
        "/instances/{id}/configuration",
        "Configuration entries",
        Auth::Platform,
        None,
        Many("ConfigurationEntry", Paging::No),
    ),
    (
        "get",
        "/instances/{id}/configuration/{configId}",
        "One configuration entry (id or key)",
        Auth::Platform,
        None,
        One("ConfigurationEntry"),
    ),
    (
        "patch",
        "/instances/{id}/configuration/{configId}",
        "Set one configuration entry: {\"propertyValue\": ...}",
        Auth::Platform,
        Some("ConfigurationEntryPatch"),
        One("ConfigurationEntry"),
    ),
    ("put", "/instances/{id}/enabled", "Switch the instance on", Auth::Platform, None, One("Instance")),
    (
        "delete",
        "/instances/{id}/enabled",
        "Switch the instance off (instance calls answer 403, no polling)",
        Auth::Platform,
        None,
        One("Instance"),
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
        Many("Event", Paging::Numbered),
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
        One("ChangePage"),
    ),
    (
        "get",
        "/instances/changes",
        "The change feed of the instance of the Element token (as /instances/{id}/changes)",
        Auth::Instance,
        None,
        One("ChangePage"),
    ),
    (
        "post",
        "/instances/{id}/events/replay",
        "Send kept events again as new notifications (same event ids, new notification ids, in order per object): \
         body {since: RFC 3339, until?, objectType?, eventType?} over the commit time; answers {count}. Events still \
         on their way are left alone",
        Auth::Platform,
        Some("ReplayRequest"),
        One("Replayed"),
    ),
    (
        "get",
        "/instances/{id}/events/{eventId}",
        "One event of the instance with its notification and every delivery attempt",
        Auth::Platform,
        None,
        One("EventDetail"),
    ),
    (
        "get",
        "/instances/{id}/polls",
        "Latest polls of an instance with their outcome and warnings (query: limit)",
        Auth::Platform,
        None,
        Many("Poll", Paging::No),
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
        Many("Alert", Paging::Numbered),
    ),
    (
        "get",
        "/instances/alerts",
        "Operational alerts of the instance of the Element token (as /instances/{id}/alerts)",
        Auth::Instance,
        None,
        Many("Alert", Paging::Numbered),
    ),
    (
        "get",
        "/instances/{id}/alerts/{alertId}",
        "One operational alert with every delivery attempt (deliveryAttempts)",
        Auth::Platform,
        None,
        One("AlertDetail"),
    ),
    (
        "post",
        "/instances/{id}/alerts/{alertId}/redeliver",
        "Send an operational alert again (same id), whatever its status; {redelivered: 0, message} while it is being \
         delivered",
        Auth::Platform,
        None,
        One("Redelivered"),
    ),
    (
        "post",
        "/instances/{id}/notifications/redeliver",
        "Redeliver every failed notification of an instance",
        Auth::Platform,
        None,
        One("Redelivered"),
    ),
    (
        "get",
        "/instances/{id}/notifications/{notificationId}",
        "One notification with every delivery attempt",
        Auth::Platform,
        None,
        One("NotificationDetail"),
    ),
    (
        "post",
        "/instances/{id}/notifications/{notificationId}/redeliver",
        "Redeliver one delivered or failed notification (same notification id); {redelivered: 0, message} when it is \
         on its way already",
        Auth::Platform,
        None,
        One("Redelivered"),
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
        Many("HubRecord", Paging::Hub),
    ),
    (
        "get",
        "/hubs/{hub}/{resource}/{id}",
        "One record of the resource by id (query: fields); 404 when the provider has none in the resource \
         (its fixed filters hold: a vendor's id under customers); 429 with Retry-After when the provider's \
         budget has no room",
        Auth::Instance,
        None,
        One("HubRecord"),
    ),
    ("get", "/openapi.json", "This document", Auth::None, None, One("OpenApiDocument")),
];

const ROOT_OPS: &[(&str, &str)] = &[
    ("/healthz", "The process is up"),
    (
        "/readyz",
        "The database answers, its schema is in place and it can be written to (a write probe, at most every 2 s); 503 with the reason otherwise",
    ),
    ("/metrics", "Prometheus metrics"),
];

/// The error answers of `method` on `path`: each status the handlers (and the extractors and middleware before
/// them) can answer, every one with the [`ErrorBody`](super::error::ErrorBody) schema.
fn error_responses(method: &str, path: &str, auth: Auth, body: bool) -> Map<String, Value> {
    let content = json!({"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}});
    let mut m = Map::new();
    let mut put = |status: &str, description: &str| {
        m.insert(status.into(), json!({"description": description, "content": content}));
    };
    let hub = path.starts_with("/hubs/");
    // the NUL guard answers 400 for every operation; the others read a body, parameters or a path id
    put("400", "invalid request: every problem with its path (a body, a parameter, a NUL character)");
    if !matches!(auth, Auth::None) {
        put("401", "missing or wrong credentials");
    }
    // instance calls that need the instance switched on (`load_own`)
    let needs_enabled = hub
        || (matches!(auth, Auth::Instance) && path.starts_with("/instances/configuration"))
        || (method == "patch" && path == "/instances");
    if needs_enabled {
        put("403", "the instance of the Element token is switched off");
    }
    if !matches!(auth, Auth::None) {
        put("404", "not found (or another organization's, or another instance's than the Element token's)");
    }
    let writes_instance = matches!((method, path), ("post", "/instances") | ("put", "/instances/{id}") | ("patch", _))
        && !path.contains("/events");
    if writes_instance || hub {
        put("409", "a conflict: the provider wants the instance authorized again, or the store refused the change");
    }
    if path.ends_with("/changes") {
        put("410", "cursor_expired: the cursor is older than the changes kept; read again without `after`");
    }
    put("405", "method_not_allowed: the path does not take this method (the Allow header says which it takes)");
    put("408", "request_timeout: the request took longer than --http-request-timeout-seconds");
    if body {
        put("413", "payload_too_large: the body is larger than the API reads (2 MiB)");
    }
    if hub || matches!((method, path), ("post", "/instances") | ("put", "/instances/{id}")) {
        put("429", "the provider's rate limit has no room now: retry after the Retry-After seconds");
    }
    put(
        "5XX",
        "500 internal (details in the server log under the request id), 501 the provider cannot do this, 502 the \
         provider failed or refused, 504 provider_timeout: the provider did not answer within \
         --sage-call-deadline-seconds",
    );
    if let Some(throttled) = m.get_mut("429") {
        throttled["headers"] =
            json!({"Retry-After": {"schema": {"type": "integer", "minimum": 1}, "description": "seconds, rounded up"}});
    }
    m
}

/// The schema of path parameter `name` of `path`.
fn path_parameter(path: &str, name: &str) -> Value {
    match name {
        "id" if !path.starts_with("/hubs/") => {
            json!({"type": "integer", "format": "int64", "minimum": 1, "maximum": i64::MAX})
        }
        "eventId" | "notificationId" | "alertId" => json!({"type": "string", "format": "uuid"}),
        "configId" => json!({"type": "string", "description": "the entry's numeric id or its key", "minLength": 1}),
        _ => json!({"type": "string", "minLength": 1}),
    }
}

/// A query parameter: (name, schema, description).
type Query = (&'static str, fn() -> Value, &'static str);

fn page_number() -> Value {
    json!({"type": "integer", "minimum": 1, "maximum": u32::MAX})
}
fn page_size_500() -> Value {
    json!({"type": "integer", "minimum": 1, "maximum": 500, "default": 50})
}
fn event_type() -> Value {
    json!({"type": "string", "enum": ["CREATED", "UPDATED", "DELETED"]})
}
fn text() -> Value {
    json!({"type": "string"})
}
fn event_status() -> Value {
    json!({"type": "string", "enum": ["NEW", "DISPATCHED", "NOTIFIED", "FAILED", "DROPPED", "WITHHELD", "pending", "delivering", "delivered", "failed", "dropped", "withheld"]})
}
fn instance_id() -> Value {
    json!({"type": "integer", "format": "int64"})
}
fn alert_type() -> Value {
    json!({"type": "string", "enum": ["instance.invalid", "notifications.disabled", "notification.failed", "polling.failing"]})
}
fn feed_limit() -> Value {
    json!({"type": "integer", "minimum": 1, "maximum": 1000, "default": 100})
}
fn feed_wait() -> Value {
    json!({"type": "number", "minimum": 0, "maximum": 60, "default": 0})
}
fn polls_limit() -> Value {
    json!({"type": "integer", "minimum": 1, "maximum": 1000, "default": 50})
}
fn hub_number() -> Value {
    json!({"type": "integer", "minimum": 1, "maximum": u32::MAX})
}
fn tags() -> Value {
    json!({"type": "array", "items": {"type": "string"}})
}

const EVENT_QUERY: &[Query] = &[
    ("status", event_status, "Open Connectors' status (capitals) or ocpoll's delivery status"),
    ("eventType", event_type, "CREATED, UPDATED or DELETED"),
    ("objectType", text, "the resource"),
    ("page", page_number, "page number, from 1"),
    ("nextPage", page_number, "the elements-next-page-token of the previous page"),
    ("pageSize", page_size_500, "events per page"),
];
const FEED_QUERY: &[Query] = &[
    ("after", text, "the nextCursor (or a change's cursor) read last; none: from the oldest change kept"),
    ("limit", feed_limit, "changes per answer"),
    ("objectType", text, "only changes of this resource"),
    ("eventType", event_type, "only changes of this type"),
    ("wait", feed_wait, "seconds to wait for a first change when there is none (long polling)"),
];
const ALERT_QUERY: &[Query] = &[
    ("type", alert_type, "only alerts of this type"),
    ("page", page_number, "page number, from 1"),
    ("nextPage", page_number, "the elements-next-page-token of the previous page"),
    ("pageSize", page_size_500, "alerts per page"),
];

/// The query parameters of `method` on `path`.
fn query_parameters(method: &str, path: &str) -> Vec<Value> {
    let param = |(name, schema, description): &Query| json!({"name": name, "in": "query", "required": false, "schema": schema(), "description": description});
    let list: Vec<Value> = match (method, path) {
        ("get", "/elements/{key}/oauth/url") => {
            let mut v: Vec<Value> = [
                ("apiSecret", text as fn() -> Value, "the OAuth app's secret (not used to build the URL)"),
                ("state", text, "passed through to the redirect"),
                ("scope", text, "the OAuth scope (default full_access)"),
                ("country", text, "the Sage country"),
            ]
            .iter()
            .map(param)
            .collect();
            v.insert(0, json!({"name": "callbackUrl", "in": "query", "required": true, "schema": {"type": "string", "minLength": 1}, "description": "the OAuth app's redirect URI"}));
            v.insert(0, json!({"name": "apiKey", "in": "query", "required": true, "schema": {"type": "string", "minLength": 1}, "description": "the OAuth app's client id"}));
            v
        }
        ("get", "/instances") => vec![
            json!({"name": "tags[]", "in": "query", "required": false, "schema": tags(), "style": "form", "explode": true, "description": "every tag must match"}),
        ],
        ("get", "/instances/events") => {
            let mut v: Vec<Value> = EVENT_QUERY.iter().map(param).collect();
            v.push(param(&("instanceId", instance_id, "only events of this instance")));
            v
        }
        ("get", "/instances/{id}/events") => EVENT_QUERY.iter().map(param).collect(),
        ("get", "/instances/{id}/changes" | "/instances/changes") => FEED_QUERY.iter().map(param).collect(),
        ("get", "/instances/{id}/alerts" | "/instances/alerts") => ALERT_QUERY.iter().map(param).collect(),
        ("get", "/instances/{id}/polls") => vec![param(&("limit", polls_limit, "polls, newest first"))],
        ("get", "/hubs/{hub}/{resource}") => [
            ("where", text as fn() -> Value, "a CEQL condition"),
            ("orderBy", text, "fields, each with asc or desc"),
            ("fields", text, "the fields of each record to answer"),
            ("pageSize", hub_number, "records per page (at most the provider's largest page)"),
            ("page", hub_number, "page number, from 1"),
            ("nextPage", text, "the elements-next-page-token of the previous page, with the same query"),
        ]
        .iter()
        .map(param)
        .collect(),
        ("get", "/hubs/{hub}/{resource}/{id}") => vec![param(&("fields", text, "the fields of the record to answer"))],
        _ => vec![],
    };
    list
}

/// The success answer of an operation.
fn success(answer: Answer) -> Value {
    let schema = |name: &str| json!({"$ref": format!("#/components/schemas/{name}")});
    let count = |description: &str| json!({"schema": {"type": "integer", "minimum": 0}, "description": description});
    match answer {
        One(name) => json!({"description": "success", "content": {"application/json": {"schema": schema(name)}}}),
        Many(name, paging) => {
            let mut r = json!({"description": "success", "content": {"application/json": {"schema": {"type": "array", "items": schema(name)}}}});
            match paging {
                Paging::No => {}
                Paging::Numbered => {
                    r["headers"] = json!({
                        "elements-total-count": count("items in every page"),
                        "elements-returned-count": count("items in this page"),
                        "elements-next-page-token": {"schema": {"type": "string"}, "description": "the next page's number, when there is one"}
                    });
                }
                Paging::Hub => {
                    r["headers"] = json!({
                        "elements-returned-count": count("records in this page"),
                        "elements-total-count": count("records the provider holds, when it says and nothing is filtered locally"),
                        "elements-next-page-token": {"schema": {"type": "string"}, "description": "a sealed token: pass it as nextPage with the same where, orderBy and fields"},
                        "x-ocpoll-warnings": {"schema": {"type": "string"}, "description": "what of the query was not applied as written"}
                    });
                }
            }
            r
        }
        Nothing => json!({"description": "success (no body)"}),
    }
}

/// The document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for (method, path, summary, auth, body, answer) in OPS {
        let full = format!("{}{}", super::BASE, path);
        let mut params: Vec<Value> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": path_parameter(path, name)}))
            .collect();
        params.extend(query_parameters(method, path));
        let mut responses = error_responses(method, path, *auth, body.is_some());
        responses.insert("200".into(), success(*answer));
        let mut op = json!({"summary": summary, "responses": responses});
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
    let mut instance_schema = oc_model::instance::instance_request_schema_value(oc_sageone::KEYS);
    let mut schemas = response_schemas();
    hoist_definitions(&mut instance_schema, &mut schemas);
    schemas.insert("InstanceRequest".into(), instance_schema);
    schemas.insert("InstancePatch".into(), json!({"type": "object", "properties": {"name": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}}, "configuration": {"type": "object"}}}));
    schemas.insert(
        "ConfigurationEntryPatch".into(),
        json!({"type": "object", "required": ["propertyValue"], "properties": {"propertyValue": {}}}),
    );
    schemas.insert("ReplayRequest".into(), json!({"type": "object", "required": ["since"], "additionalProperties": false, "properties": {"since": {"type": "string", "format": "date-time"}, "until": {"type": "string", "format": "date-time"}, "objectType": {"type": "string"}, "eventType": {"type": "string", "enum": ["CREATED", "UPDATED", "DELETED"]}}}));
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
            "schemas": schemas
        }
    })
}

/// Moves the `$defs` of a standalone JSON Schema (the instance body's) into `schemas`, rewriting its references
/// (`#/$defs/X` → `#/components/schemas/X`): inside the document, `#/$defs/...` would point at the document's
/// root, where there is none.
fn hoist_definitions(schema: &mut Value, schemas: &mut Map<String, Value>) {
    fn rewrite(v: &mut Value) {
        match v {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get_mut("$ref")
                    && let Some(name) = r.strip_prefix("#/$defs/")
                {
                    *r = format!("#/components/schemas/{name}");
                }
                map.values_mut().for_each(rewrite);
            }
            Value::Array(items) => items.iter_mut().for_each(rewrite),
            _ => {}
        }
    }
    let Some(obj) = schema.as_object_mut() else { return };
    obj.remove("$schema");
    let defs = obj.remove("$defs");
    rewrite(schema);
    if let Some(Value::Object(defs)) = defs {
        for (name, mut def) in defs {
            rewrite(&mut def);
            debug_assert!(!schemas.contains_key(&name), "{name} is defined twice");
            schemas.insert(name, def);
        }
    }
}

/// An object schema: `required` members (name, schema) and `optional` ones, nothing else.
fn object(required: &[(&str, Value)], optional: &[(&str, Value)]) -> Value {
    let mut properties = Map::new();
    for (name, schema) in required.iter().chain(optional) {
        properties.insert(name.to_string(), schema.clone());
    }
    let names: Vec<&str> = required.iter().map(|(n, _)| *n).collect();
    json!({"type": "object", "required": names, "properties": properties, "additionalProperties": false})
}

fn r(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// The schemas of the answers, each from the `Serialize` type the handler answers with (named in its
/// description); `additionalProperties: false` wherever ocpoll decides the members, so that a member added to a
/// type and not here fails the schemathesis run (`docs/api-fuzzing.md`).
fn response_schemas() -> Map<String, Value> {
    let string = || json!({"type": "string"});
    let nullable_string = || json!({"type": ["string", "null"]});
    let time = || json!({"type": "string", "format": "date-time"});
    let nullable_time = || json!({"type": ["string", "null"], "format": "date-time"});
    let uuid = || json!({"type": "string", "format": "uuid"});
    let count = || json!({"type": "integer", "minimum": 0});
    let id = || json!({"type": "integer", "format": "int64"});
    let event_type = || json!({"type": "string", "enum": ["CREATED", "UPDATED", "DELETED"]});
    let delivery =
        || json!({"type": "string", "enum": ["pending", "delivering", "delivered", "failed", "dropped", "withheld"]});
    let attempts = || json!({"type": "array", "items": r("Attempt")});
    let notification_members = || {
        vec![
            ("id", uuid()),
            ("instanceId", id()),
            ("objectType", string()),
            ("status", delivery()),
            ("createdAt", time()),
            ("nextAttemptAt", nullable_time()),
            ("deliveredAt", nullable_time()),
            ("lastError", nullable_string()),
        ]
    };
    let alert_members = || {
        vec![
            ("id", uuid()),
            ("instanceId", id()),
            (
                "type",
                json!({"type": "string", "enum": ["instance.invalid", "notifications.disabled", "notification.failed", "polling.failing"]}),
            ),
            ("createdAt", time()),
            ("body", json!({"type": "object", "description": "the JSON sent to the operational callback"})),
            ("status", json!({"type": "string", "enum": ["pending", "delivering", "delivered", "failed", "unrouted"]})),
            ("attempts", count()),
            ("nextAttemptAt", nullable_time()),
            ("deliveredAt", nullable_time()),
            ("lastError", nullable_string()),
            (
                "target",
                json!({"type": ["string", "null"], "enum": ["instance", "server", null], "description": "where it goes: the instance's operational callback or the server's webhook; null while unrouted"}),
            ),
        ]
    };
    let mut m = Map::new();
    let mut put = |name: &str, schema: Value| {
        m.insert(name.to_string(), schema);
    };
    put("Problem", object(&[("path", string()), ("message", string())], &[]));
    put(
        "Error",
        object(
            &[
                ("requestId", string()),
                ("code", string()),
                ("message", string()),
                ("errors", json!({"type": "array", "items": r("Problem")})),
            ],
            &[],
        ),
    );
    // oc_model::instance::InstanceResponse
    put(
        "Instance",
        object(
            &[
                ("id", id()),
                ("name", string()),
                ("element", object(&[("id", id()), ("key", string()), ("name", string()), ("hub", string())], &[])),
                ("valid", json!({"type": "boolean"})),
                ("disabled", json!({"type": "boolean"})),
                ("eventsEnabled", json!({"type": "boolean"})),
                (
                    "configuration",
                    json!({"type": "object", "description": "every key with its value; secrets masked, event.poller.configuration as a JSON string"}),
                ),
                ("tags", json!({"type": "array", "items": {"type": "string"}})),
                ("createdDate", time()),
                ("user", object(&[("id", id())], &[])),
            ],
            &[
                (
                    "token",
                    json!({"type": "string", "description": "the Element token: only in the answer to POST /instances"}),
                ),
                ("validMessage", string()),
                ("eventsDisabledReason", string()),
                ("updatedDate", time()),
                ("warnings", json!({"type": "array", "items": r("Problem")})),
            ],
        ),
    );
    // instances::ConfigEntry
    put(
        "ConfigurationEntry",
        object(
            &[
                ("id", id()),
                ("key", string()),
                ("name", string()),
                (
                    "propertyValue",
                    json!({"type": ["string", "null"], "description": "secrets masked; other values than strings as JSON text"}),
                ),
                ("secret", json!({"type": "boolean"})),
            ],
            &[],
        ),
    );
    // events::EventRecord (oc_model::Event flattened into it)
    put(
        "Event",
        object(
            &[
                ("id", id()),
                ("eventDate", time()),
                (
                    "status",
                    json!({"type": "string", "enum": ["NEW", "DISPATCHED", "NOTIFIED", "FAILED", "DROPPED", "WITHHELD"]}),
                ),
                ("providerData", json!({"type": "string", "description": "the record as a JSON string"})),
                (
                    "notifiedData",
                    json!({"type": ["string", "null"], "description": "the event as its notification carried it, as a JSON string"}),
                ),
                ("eventId", uuid()),
                ("eventType", event_type()),
                ("objectType", string()),
                ("objectId", string()),
                ("date", time()),
                ("record", json!({"description": "the record as the provider returned it"})),
                ("instanceId", id()),
                ("createdAt", time()),
                ("deliveryStatus", delivery()),
                ("attempts", count()),
                ("notificationId", json!({"type": ["string", "null"], "format": "uuid"})),
            ],
            &[],
        ),
    );
    // oc_model::ports::StoredAttempt (NewAttempt flattened into it)
    put(
        "Attempt",
        object(
            &[
                ("number", json!({"type": "integer", "minimum": 1})),
                ("at", time()),
                ("statusCode", json!({"type": ["integer", "null"]})),
                ("latencyMs", count()),
                ("error", nullable_string()),
                ("responseExcerpt", string()),
            ],
            &[],
        ),
    );
    // oc_model::ports::NotificationRecord
    let mut notification = notification_members();
    notification.push(("attempts", count()));
    put("Notification", object(&notification, &[]));
    // events::EventDetailView
    put(
        "EventDetail",
        object(
            &[
                ("event", r("Event")),
                ("notification", json!({"oneOf": [r("Notification"), {"type": "null"}]})),
                ("attempts", attempts()),
            ],
            &[],
        ),
    );
    // events::NotificationView: the notification's members, with its attempts instead of their number
    let mut detail = notification_members();
    detail.push(("attempts", attempts()));
    put("NotificationDetail", object(&detail, &[]));
    // oc_model::ports::PollRecord (PollOutcome flattened into it)
    put(
        "Poll",
        object(
            &[
                ("instanceId", id()),
                ("resource", string()),
                ("startedAt", time()),
                ("finishedAt", time()),
                (
                    "status",
                    json!({"type": "string", "enum": ["ok", "inconsistent", "failed", "reauthorization_required"]}),
                ),
                ("windowStart", nullable_time()),
                ("pages", count()),
                ("records", count()),
                ("created", count()),
                ("updated", count()),
                ("deleted", count()),
                (
                    "warnings",
                    json!({"type": "array", "items": object(&[("message", string())], &[("recordId", string()), ("position", count())])}),
                ),
                ("error", nullable_string()),
            ],
            &[],
        ),
    );
    // changes::ChangesAnswer and changes::ChangeRecord
    put(
        "ChangePage",
        object(
            &[
                (
                    "changes",
                    json!({"type": "array", "items": object(&[
                        ("cursor", string()),
                        ("eventId", uuid()),
                        ("eventType", event_type()),
                        ("objectType", string()),
                        ("objectId", string()),
                        ("date", time()),
                        ("record", json!({"description": "the record as the provider returned it"})),
                    ], &[])}),
                ),
                ("nextCursor", string()),
                ("hasMore", json!({"type": "boolean"})),
            ],
            &[],
        ),
    );
    // oc_model::ports::AlertRecord
    put("Alert", object(&alert_members(), &[]));
    // alerts::AlertView
    let mut alert = alert_members();
    alert.push(("deliveryAttempts", attempts()));
    put("AlertDetail", object(&alert, &[]));
    // events::Redelivered and alerts::Redelivered
    put(
        "Redelivered",
        object(
            &[("redelivered", count())],
            &[("message", json!({"type": "string", "description": "why nothing was queued, when nothing was"}))],
        ),
    );
    // events::Replayed
    put("Replayed", object(&[("count", count())], &[]));
    // oauth::OAuthUrl
    put("OAuthUrl", object(&[("element", string()), ("oauthUrl", json!({"type": "string", "format": "uri"}))], &[]));
    put("HubRecord", json!({"type": "object", "description": "a record as the provider returned it"}));
    put("OpenApiDocument", json!({"type": "object", "required": ["openapi", "info", "paths"]}));
    m
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
