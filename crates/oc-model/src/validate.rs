//! Structural validation of an instance request body: every problem at once, each with its JSON path.
//!
//! Masks, templates and CEQL are checked by the crates that own them (`oc-template`, the provider); the API
//! merges their problems with these into one answer.

use serde_json::Value;

use crate::config::{
    Configuration, KEYS, KeySpec, ValueKind, config_path, describe, is_unfilled_placeholder, keys, lenient_bool,
    lenient_text,
};
use crate::error::{Problem, Problems, path};
use crate::instance::InstanceRequest;
use crate::poller::PollerConfigs;

/// What a validation requires beyond the structure.
#[derive(Debug, Clone, Copy)]
pub struct ValidationOptions<'a> {
    /// `providerData.code` and the OAuth app keys are required (create; not for an offline check of a PATCH).
    pub require_code: bool,
    /// Element keys this server knows; empty means any.
    pub known_elements: &'a [&'a str],
    /// The configuration keys of the element's provider, checked like Open Connectors' own.
    pub provider_keys: &'a [KeySpec],
}

impl Default for ValidationOptions<'_> {
    fn default() -> Self {
        ValidationOptions { require_code: true, known_elements: &[], provider_keys: &[] }
    }
}

/// A structurally valid request, with its parsed poller configuration and the warnings found.
#[derive(Debug, Clone)]
pub struct Validated {
    /// The request.
    pub request: InstanceRequest,
    /// `event.poller.configuration`, parsed.
    pub pollers: PollerConfigs,
    /// Things accepted but worth telling the user (e.g. an unfilled `<PLACEHOLDER>` value).
    pub warnings: Vec<Problem>,
}

/// Validates a create body with the default options.
pub fn validate_instance_request(body: &Value) -> Result<InstanceRequest, Problems> {
    validate_instance_request_with(body, ValidationOptions::default()).map(|v| v.request)
}

/// Validates an instance request body, returning every problem found.
pub fn validate_instance_request_with(body: &Value, options: ValidationOptions<'_>) -> Result<Validated, Problems> {
    let mut problems = Problems::default();
    let mut warnings = Vec::new();
    let Some(obj) = body.as_object() else {
        problems.push("", format!("the body must be a JSON object, found {}", describe(body)));
        return Err(problems);
    };
    crate::limits::check_body_limits(body, &mut problems);

    match obj.get("element") {
        None | Some(Value::Null) => problems.push("element", "missing"),
        Some(Value::Object(e)) => match e.get("key") {
            None | Some(Value::Null) => problems.push("element.key", "missing"),
            Some(Value::String(k)) => {
                if !options.known_elements.is_empty() && !options.known_elements.contains(&k.as_str()) {
                    problems.push(
                        "element.key",
                        format!("unknown element {k:?}; known: {}", options.known_elements.join(", ")),
                    );
                }
            }
            Some(v) => problems.push("element.key", format!("expected a string, found {}", describe(v))),
        },
        Some(v) => problems.push("element", format!("expected an object, found {}", describe(v))),
    }

    match obj.get("providerData") {
        None | Some(Value::Null) if options.require_code => problems.push("providerData.code", "missing"),
        None | Some(Value::Null) => {}
        Some(Value::Object(p)) => match p.get("code") {
            None | Some(Value::Null) if options.require_code => problems.push("providerData.code", "missing"),
            None | Some(Value::Null) => {}
            Some(Value::String(c)) if c.trim().is_empty() => problems.push("providerData.code", "must not be empty"),
            Some(Value::String(_)) => {}
            Some(v) => problems.push("providerData.code", format!("expected a string, found {}", describe(v))),
        },
        Some(v) => problems.push("providerData", format!("expected an object, found {}", describe(v))),
    }

    match obj.get("name") {
        None | Some(Value::Null) => problems.push("name", "missing"),
        Some(Value::String(n)) if n.trim().is_empty() => problems.push("name", "must not be empty"),
        Some(Value::String(_)) => {}
        Some(v) => problems.push("name", format!("expected a string, found {}", describe(v))),
    }

    match obj.get("tags") {
        None | Some(Value::Null) => {}
        Some(Value::Array(tags)) => {
            for (i, t) in tags.iter().enumerate() {
                if !t.is_string() {
                    problems.push(path::index("tags", i), format!("expected a string, found {}", describe(t)));
                }
            }
        }
        Some(v) => problems.push("tags", format!("expected an array of strings, found {}", describe(v))),
    }

    let mut pollers = PollerConfigs::default();
    match obj.get("configuration") {
        None | Some(Value::Null) => problems.push("configuration", "missing"),
        Some(Value::Object(map)) => {
            let config: Configuration = map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            if let Some(p) = check_configuration(&config, options, &mut problems, &mut warnings) {
                pollers = p;
            }
        }
        Some(v) => problems.push("configuration", format!("expected an object, found {}", describe(v))),
    }

    if !problems.is_empty() {
        return Err(problems);
    }
    match serde_json::from_value::<InstanceRequest>(body.clone()) {
        Ok(request) => Ok(Validated { request, pollers, warnings }),
        Err(e) => {
            problems.push("", format!("the body does not match the instance schema: {e}"));
            Err(problems)
        }
    }
}

/// Checks the configuration keys; returns the parsed poller configuration when it is valid.
pub fn check_configuration(
    config: &Configuration,
    options: ValidationOptions<'_>,
    problems: &mut Problems,
    warnings: &mut Vec<Problem>,
) -> Option<PollerConfigs> {
    for (key, value) in config.iter() {
        if is_unfilled_placeholder(value) {
            warnings
                .push(Problem::new(config_path(key), format!("{value} looks like an unfilled template placeholder")));
            continue;
        }
        let Some(spec) = KEYS.iter().chain(options.provider_keys).find(|s| s.key == key) else { continue };
        if value.is_null() {
            continue;
        }
        match spec.kind {
            ValueKind::Text => {
                if lenient_text(value).is_none() {
                    problems.push(config_path(key), format!("expected a string, found {}", describe(value)));
                }
            }
            ValueKind::Bool => {
                if lenient_bool(value).is_none() {
                    problems.push(config_path(key), format!("expected a boolean, found {}", describe(value)));
                }
            }
            ValueKind::Url => match value.as_str() {
                Some(u) => {
                    if let Err(msg) = check_http_url(u) {
                        problems.push(config_path(key), msg);
                    }
                }
                None => problems.push(config_path(key), format!("expected a URL string, found {}", describe(value))),
            },
            ValueKind::Minutes => {
                let checked = match key {
                    keys::SIGNATURE_KEY_OVERLAP => config.signature_key_overlap().map(drop),
                    _ => config.refresh_interval().map(drop),
                };
                if let Err(p) = checked {
                    problems.0.push(p);
                }
            }
            ValueKind::Instant => {
                // the end of a key rotation is ocpoll's to keep: a value given is replaced, never read
                if key != keys::SIGNATURE_KEY_PREVIOUS_UNTIL
                    && let Err(p) = config.backfill()
                {
                    problems.0.push(p);
                }
            }
            ValueKind::Json => {}
            ValueKind::EventTypes => {
                if let Err(p) = config.event_types() {
                    problems.0.push(p);
                }
            }
        }
    }
    if let Some(v) = config.get(keys::VENDOR_TYPE).and_then(Value::as_str)
        && !is_unfilled_placeholder(&Value::String(v.to_string()))
        && v != "polling"
    {
        problems.push(config_path(keys::VENDOR_TYPE), format!("only \"polling\" is supported, found {v:?}"));
    }
    if options.require_code {
        for key in [keys::OAUTH_API_KEY, keys::OAUTH_API_SECRET, keys::OAUTH_CALLBACK_URL] {
            if config.get(key).is_none_or(Value::is_null) {
                problems.push(config_path(key), "missing (needed to exchange providerData.code)");
            }
        }
    }
    let pollers = match config.poller_configs() {
        Ok(p) => Some(p),
        Err(found) => {
            problems.0.extend(found.0);
            None
        }
    };
    // Events enabled without a callback URL is valid: the instance polls and its changes go to the feed only.
    if let Ok(true) = config.notifications_enabled()
        && pollers.as_ref().is_some_and(PollerConfigs::is_empty)
    {
        problems.push(
            config_path(keys::POLLER_CONFIGURATION),
            "must configure at least one resource when event.notification.enabled is true",
        );
    }
    pollers
}

/// Checks that `u` is an absolute `http` or `https` URL with a host.
pub fn check_http_url(u: &str) -> Result<(), String> {
    match url::Url::parse(u) {
        Ok(parsed)
            if matches!(parsed.scheme(), "http" | "https") && parsed.host_str().is_some_and(|h| !h.is_empty()) =>
        {
            Ok(())
        }
        Ok(parsed) => Err(format!("must be an absolute http(s) URL, found scheme {:?} in {u:?}", parsed.scheme())),
        Err(e) => Err(format!("must be an absolute http(s) URL: {e} in {u:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn seed() -> Value {
        serde_json::from_str(include_str!("../../../tests/fixtures/seed-instance-body-example.json")).unwrap()
    }

    fn problems(body: &Value) -> Vec<String> {
        match validate_instance_request_with(
            body,
            ValidationOptions { require_code: true, known_elements: &["sageone"], provider_keys: &[] },
        ) {
            Ok(_) => vec![],
            Err(p) => p.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn seed_bodies_are_valid_verbatim() {
        assert_eq!(problems(&seed()), Vec::<String>::new());
        let template: Value =
            serde_json::from_str(include_str!("../../../tests/fixtures/seed-instance-body-template.json")).unwrap();
        let v = validate_instance_request_with(&template, ValidationOptions::default()).unwrap();
        assert!(
            v.warnings.iter().any(|w| w.path == r#"configuration["event.poller.refresh_interval"]"#),
            "{:?}",
            v.warnings
        );
        assert_eq!(v.pollers.len(), 1);
    }

    #[test]
    fn five_mistakes_five_problems() {
        let mut body = seed();
        body["element"]["key"] = json!("quickbooks");
        body["tags"] = json!(["ok", 7]);
        body["configuration"]["event.notification.callback.url"] = json!("ftp://example.com");
        body["configuration"]["event.poller.refresh_interval"] = json!("0");
        body["configuration"]["event.poller.configuration"]["customers"].as_object_mut().unwrap().remove("idField");
        let got = problems(&body);
        assert_eq!(
            got,
            [
                r#"element.key: unknown element "quickbooks"; known: sageone"#,
                "tags[1]: expected a string, found number 7",
                r#"configuration["event.notification.callback.url"]: must be an absolute http(s) URL, found scheme "ftp" in "ftp://example.com""#,
                r#"configuration["event.poller.refresh_interval"]: must be at least 1 second (0.0167 minutes), found 0 minutes"#,
                r#"configuration["event.poller.configuration"].customers.idField: missing"#,
            ]
        );
    }

    #[test]
    fn events_enabled_needs_resources_but_not_a_callback() {
        let mut body = seed();
        let c = body["configuration"].as_object_mut().unwrap();
        c.remove("event.notification.callback.url");
        // without a callback URL the changes go to the feed only: valid
        assert!(problems(&body).is_empty(), "{:?}", problems(&body));
        let c = body["configuration"].as_object_mut().unwrap();
        c.insert("event.poller.configuration".into(), json!({}));
        assert_eq!(
            problems(&body),
            [
                r#"configuration["event.poller.configuration"]: must configure at least one resource when event.notification.enabled is true"#,
            ]
        );
    }

    #[test]
    fn event_types_are_a_list_of_known_types() {
        let mut body = seed();
        for good in [json!("CREATED"), json!("created, deleted"), json!(["UPDATED"]), json!("")] {
            body["configuration"]["event.notification.eventTypes"] = good.clone();
            assert!(problems(&body).is_empty(), "{good}: {:?}", problems(&body));
        }
        for (bad, message) in [
            (json!("CREATED,MOVED"), r#"unknown event type "MOVED"; known: CREATED, UPDATED, DELETED"#),
            (json!([1]), "expected event type names, found number 1"),
            (json!(true), "expected a comma list or an array of CREATED, UPDATED, DELETED, found boolean true"),
        ] {
            body["configuration"]["event.notification.eventTypes"] = bad.clone();
            assert_eq!(
                problems(&body),
                [format!(r#"configuration["event.notification.eventTypes"]: {message}"#)],
                "{bad}"
            );
        }
    }

    #[test]
    fn not_an_object() {
        assert_eq!(problems(&json!([1])), ["the body must be a JSON object, found an array"]);
        assert_eq!(
            problems(&json!({})),
            ["element: missing", "providerData.code: missing", "name: missing", "configuration: missing"]
        );
    }
}
