//! Validation of an instance body by every layer that owns a part of it: the structure (oc-model), the URL
//! templates and date masks (oc-template), and the hub query with its CEQL `where` (the provider). Every problem
//! comes back at once, each with its JSON path; warnings (such as a repaired quote) come back on success.

use chrono::{DateTime, Utc};
use oc_model::config::{config_path, keys};
use oc_model::error::path;
use oc_model::poller::PollerConfig;
use oc_model::ports::{FieldNeeds, Provider, Providers};
use oc_model::validate::{Validated, ValidationOptions, validate_instance_request_with};
use oc_model::{Problem, Problems};
use serde_json::Value;

/// A body every layer accepts, with the warnings found.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The structurally valid request.
    pub validated: Validated,
    /// Warnings of every layer.
    pub warnings: Vec<Problem>,
}

/// The fields the engine reads from every record of a resource.
pub fn field_needs(pc: &PollerConfig) -> FieldNeeds {
    let mut fields = vec![pc.id_field.clone()];
    fields.extend(pc.updated_field().map(str::to_string));
    fields.extend(pc.created_field().map(str::to_string));
    FieldNeeds { fields }
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
    if let Some(Value::Object(configs)) = poller_configuration(body) {
        let base = config_path(keys::POLLER_CONFIGURATION);
        for (resource, entry) in configs {
            let entry_path = path::member(&base, &resource);
            check_poller(&entry, &entry_path, provider.map(|p| p.as_ref()), now, &mut problems, &mut warnings);
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

/// `event.poller.configuration` as an object, whether given as one or as a JSON string.
fn poller_configuration(body: &Value) -> Option<Value> {
    match body.pointer("/configuration")?.get(keys::POLLER_CONFIGURATION)? {
        Value::String(s) => serde_json::from_str(s).ok(),
        v => Some(v.clone()),
    }
}

/// Template, masks, zones and the hub query of one resource, read from its raw JSON so that a problem elsewhere
/// in the entry (say a missing `idField`) does not hide these.
pub fn check_poller(
    entry: &Value,
    base: &str,
    provider: Option<&dyn Provider>,
    now: DateTime<Utc>,
    problems: &mut Problems,
    warnings: &mut Vec<Problem>,
) {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
    let url_path = path::member(base, "url");
    let dates = entry.get("datesConfiguration").filter(|d| d.is_object());
    if let Some(d) = dates {
        let dates_path = path::member(base, "datesConfiguration");
        for field in ["updatedDateFormat", "createdDateFormat"] {
            if let Some(mask) = text(d.get(field))
                && let Err(e) = oc_template::Mask::compile(&mask)
            {
                problems.push(path::member(&dates_path, field), e.to_string());
            }
        }
        for field in ["updatedDateTimezone", "createdDateTimezone"] {
            if let Some(zone) = text(d.get(field))
                && let Err(e) = oc_template::Zone::parse(&zone)
            {
                problems.push(path::member(&dates_path, field), e.to_string());
            }
        }
    }
    let Some(url) = text(entry.get("url")) else { return };
    let template = match oc_template::Template::parse(&url) {
        Ok(t) => t,
        Err(e) => {
            problems.push(url_path, e.to_string());
            return;
        }
    };
    let Some(provider) = provider else { return };
    let mut needs = FieldNeeds::default();
    needs.fields.extend(text(entry.get("idField")));
    if let Some(d) = dates {
        needs.fields.extend(text(d.get("updatedDateField")));
        needs.fields.extend(text(d.get("createdDateField")));
    }
    match provider.compile(&template.render(now), &needs) {
        Ok(q) => warnings.extend(q.warnings.into_iter().map(|w| Problem::new(url_path.clone(), w))),
        Err(e) => {
            for d in e.0 {
                problems.push(url_path.clone(), format!("in the URL as rendered for a poll:\n{}", d.rendered));
            }
        }
    }
}
