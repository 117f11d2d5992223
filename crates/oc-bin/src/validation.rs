//! Validation of an instance body by every layer that owns a part of it: the structure (oc-model), each
//! resource's poller plan as the engine compiles it (URL template, date masks and zones: oc-poller's
//! [`PollPlan`]), and the hub query with its CEQL `where` (the provider). Every problem comes back at once, each
//! with its JSON path; warnings (such as a repaired quote) come back on success. An instance polls at most
//! [`MAX_RESOURCES_PER_INSTANCE`] resources.

use chrono::{DateTime, Utc};
use oc_model::config::{Configuration, config_path, keys};
use oc_model::error::path;
use oc_model::poller::PollerConfig;
use oc_model::ports::{Provider, Providers};
use oc_model::validate::{Validated, ValidationOptions, validate_instance_request_with};
use oc_model::{Problem, Problems};
use oc_poller::{MAX_RESOURCES_PER_INSTANCE, PlanField, PlanSettings, PollPlan};
use serde_json::Value;

/// A body every layer accepts, with the warnings found.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The structurally valid request.
    pub validated: Validated,
    /// Warnings of every layer.
    pub warnings: Vec<Problem>,
}

/// Checks a body. `require_code`: a create (needs `providerData.code` and the OAuth app keys).
pub fn check_instance_body(
    body: &Value,
    providers: &Providers,
    require_code: bool,
    now: DateTime<Utc>,
) -> Result<Checked, Problems> {
    let keys_known = providers.keys();
    let provider = body.pointer("/element/key").and_then(Value::as_str).and_then(|k| providers.get(k));
    let provider_keys = provider.map(|p| p.spec().keys).unwrap_or_default();
    let options = ValidationOptions { require_code, known_elements: &keys_known, provider_keys };
    let structural = validate_instance_request_with(body, options);
    let mut problems = Problems::default();
    let mut warnings = Vec::new();
    if let Err(p) = &structural {
        problems.0.extend(p.0.iter().cloned());
    }
    if let Some(Value::Object(map)) = body.get("configuration") {
        let configuration: Configuration = map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        // the structural check reported what cannot be read; the plans check what can
        let (pollers, _) = configuration.read_poller_configs();
        let base = config_path(keys::POLLER_CONFIGURATION);
        if pollers.len() > MAX_RESOURCES_PER_INSTANCE {
            problems.push(
                base.clone(),
                format!(
                    "{} resources configured; an instance polls at most {MAX_RESOURCES_PER_INSTANCE} (split them \
                     over several instances)",
                    pollers.len()
                ),
            );
        }
        for (resource, config) in pollers.iter() {
            let entry_path = path::member(&base, resource);
            check_plan(config, &entry_path, provider.map(|p| p.as_ref()), now, &mut problems, &mut warnings);
            if let Some(at) = config.backfill {
                check_backfill(at, &path::member(&entry_path, "backfill"), now, &mut problems);
            }
        }
        if let Ok(Some(at)) = configuration.backfill() {
            check_backfill(at, &config_path(keys::POLLER_BACKFILL), now, &mut problems);
        }
    }
    match structural {
        Ok(validated) if problems.is_empty() => {
            warnings.extend(validated.warnings.iter().cloned());
            Ok(Checked { validated, warnings })
        }
        _ => Err(problems),
    }
}

/// The poller plan of one resource, compiled as the engine will compile it (templates, masks, zones), and its
/// hub query compiled by the provider as a poll would render it now: every problem at the path of its field,
/// the provider's warnings (a repaired quote, say) at the URL's.
fn check_plan(
    config: &PollerConfig,
    base: &str,
    provider: Option<&dyn Provider>,
    now: DateTime<Utc>,
    problems: &mut Problems,
    warnings: &mut Vec<Problem>,
) {
    if config.url.is_empty() {
        return; // missing or not text: said by the structural check
    }
    let deleted_field = provider.map(|p| p.spec().deleted_date_field.as_str()).unwrap_or_default();
    let plan = match PollPlan::compile(config, deleted_field, PLAN_SETTINGS, now) {
        Ok(plan) => plan,
        Err(found) => {
            for p in found {
                problems.push(format!("{base}.{}", p.field.path()), p.message);
            }
            return;
        }
    };
    let Some(provider) = provider else { return };
    let url_path = format!("{base}.{}", PlanField::Url.path());
    match plan.check_query(provider, now) {
        Ok(found) => warnings.extend(found.into_iter().map(|w| Problem::new(url_path.clone(), w))),
        Err(e) => {
            for d in e.0 {
                problems.push(url_path.clone(), format!("in the URL as rendered for a poll:\n{}", d.rendered));
            }
        }
    }
}

/// A backfill is a date in the past: a poll replays from it (a date to come would hold the resource still).
fn check_backfill(at: DateTime<Utc>, path: &str, now: DateTime<Utc>, problems: &mut Problems) {
    if at > now {
        problems.push(path, format!("{} is in the future: a backfill starts from a past date", at.to_rfc3339()));
    }
}

/// The plan settings of validation: the lookback does not change what is valid.
const PLAN_SETTINGS: PlanSettings = PlanSettings { default_lookback: std::time::Duration::from_secs(60) };

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use oc_sageone::{SageConfig, SageProvider};
    use serde_json::json;

    use super::*;

    fn body(resources: usize) -> Value {
        let mut body: Value = serde_json::from_str(crate::demo::SEED_EXAMPLE).unwrap();
        let one = body["configuration"]["event.poller.configuration"]["customers"].clone();
        let pollers: serde_json::Map<String, Value> = (0..resources)
            .map(|i| (if i == 0 { "customers".into() } else { format!("c{i:03}") }, one.clone()))
            .collect();
        body["configuration"]["event.poller.configuration"] = Value::Object(pollers);
        body["providerData"] = json!({"code": "GB/abc"});
        body
    }

    #[test]
    fn an_instance_polls_at_most_the_resource_limit() {
        let sage = SageProvider::new(SageConfig::default()).unwrap();
        let providers = Providers::new().with(Arc::new(sage));
        let now = "2024-05-01T12:00:00Z".parse().unwrap();
        for require_code in [true, false] {
            let ok = check_instance_body(&body(MAX_RESOURCES_PER_INSTANCE), &providers, require_code, now);
            assert!(ok.is_ok(), "{:?}", ok.err());
            let Err(problems) =
                check_instance_body(&body(MAX_RESOURCES_PER_INSTANCE + 1), &providers, require_code, now)
            else {
                panic!("101 resources accepted");
            };
            assert_eq!(problems.0.len(), 1, "{problems:?}");
            let p = &problems.0[0];
            assert_eq!(p.path, r#"configuration["event.poller.configuration"]"#);
            assert!(p.message.contains("101 resources configured; an instance polls at most 100"), "{}", p.message);
        }
    }
}
