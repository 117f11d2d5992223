//! The "Authenticate an instance" form: Open Connectors' UI labels, one checkbox per pollable resource of the
//! provider, the `event.poller.configuration` code view; the instance body it builds (exactly what `POST
//! /instances` takes, without the code), and the problems of that body put back beside their fields.
//!
//! The checkboxes and the code view agree through the script (ticking adds the resource's default poller
//! configuration to the JSON, unticking removes it). Without the script the form still works: the server reads
//! the code view and adds the default configuration of every ticked resource it lacks.

use axum::extract::State;
use maud::{Markup, html};
use oc_model::config::{Configuration, config_path, keys};
use oc_model::poller::PollerConfig;
use oc_model::ports::{ProviderSpec, ResourceSpec};
use oc_model::{Problem, Problems};
use serde_json::{Map, Value, json};

use super::Answer;
use super::layout::{self, Page, csrf_input};
use super::session::{FormData, Signed};
use crate::api::AppState;

/// The element the console creates instances of.
pub(super) const ELEMENT_KEY: &str = oc_sageone::ELEMENT_KEY;
/// The default refresh interval shown, in minutes (Open Connectors' default).
const DEFAULT_INTERVAL: &str = "15";

/// A field of the form: its id, its form name, its label, and the JSON path of the body it fills.
#[derive(Debug, Clone)]
pub(super) struct Field {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) label: String,
    pub(super) path: String,
}

fn field(id: &str, name: &str, label: &str, path: String) -> Field {
    Field { id: id.into(), name: name.into(), label: label.into(), path }
}

/// The fields of the spec's table, in the form's order.
pub(super) struct Fields {
    pub(super) name: Field,
    pub(super) client_id: Field,
    pub(super) client_secret: Field,
    pub(super) country: Field,
    pub(super) events_enabled: Field,
    pub(super) callback_url: Field,
    pub(super) signature_key: Field,
    pub(super) interval: Field,
    pub(super) poller: Field,
    pub(super) tags: Field,
    /// The optional keys behind "Show Optional Fields": the provider's other plain keys and the backfill.
    pub(super) optional: Vec<(Field, &'static str)>,
}

impl Fields {
    pub(super) fn of(spec: Option<&ProviderSpec>) -> Fields {
        let c = |key: &str| config_path(key);
        let mut optional: Vec<(Field, &'static str)> = spec
            .map(|s| s.keys)
            .unwrap_or_default()
            .iter()
            .filter(|k| !k.secret && k.key != oc_sageone::keys::COUNTRY)
            .map(|k| (field(&format!("opt-{}", k.key.replace('.', "-")), k.key, k.key, c(k.key)), k.description))
            .collect();
        if let Some(backfill) = oc_model::config::key_spec(keys::POLLER_BACKFILL) {
            optional.push((
                field("opt-backfill", keys::POLLER_BACKFILL, keys::POLLER_BACKFILL, c(keys::POLLER_BACKFILL)),
                backfill.description,
            ));
        }
        Fields {
            name: field("name", "name", "Name", "name".into()),
            client_id: field("client-id", "client_id", "Client ID", c(keys::OAUTH_API_KEY)),
            client_secret: field("client-secret", "client_secret", "Client Secret", c(keys::OAUTH_API_SECRET)),
            country: field("country", "country", "Country", c(oc_sageone::keys::COUNTRY)),
            events_enabled: field("events-enabled", "events_enabled", "Events Enabled", c(keys::NOTIFICATION_ENABLED)),
            callback_url: field(
                "callback-url",
                "callback_url",
                "Event Notification Callback URL",
                c(keys::NOTIFICATION_CALLBACK_URL),
            ),
            signature_key: field(
                "signature-key",
                "signature_key",
                "Callback Notification Signature Key",
                c(keys::NOTIFICATION_SIGNATURE_KEY),
            ),
            interval: field(
                "interval",
                "interval",
                "Event poller refresh interval (mins)",
                c(keys::POLLER_REFRESH_INTERVAL),
            ),
            poller: field(
                "poller-configuration",
                "poller_configuration",
                "event.poller.configuration",
                c(keys::POLLER_CONFIGURATION),
            ),
            tags: field("tags", "tags", "Tags", "tags".into()),
            optional,
        }
    }

    fn all(&self) -> Vec<&Field> {
        let mut v = vec![
            &self.name,
            &self.client_id,
            &self.client_secret,
            &self.country,
            &self.events_enabled,
            &self.callback_url,
            &self.signature_key,
            &self.interval,
            &self.poller,
            &self.tags,
        ];
        v.extend(self.optional.iter().map(|(f, _)| f));
        v
    }

    /// The field a problem's path is about, and the rest of the path inside it.
    fn of_path<'a>(&'a self, path: &'a str) -> Option<(&'a Field, &'a str)> {
        self.all().into_iter().find_map(|f| {
            let rest = path.strip_prefix(f.path.as_str())?;
            (rest.is_empty() || rest.starts_with(['.', '['])).then_some((f, rest.trim_start_matches('.')))
        })
    }
}

/// What the user typed, kept to render the form again.
#[derive(Debug, Clone, Default)]
pub(super) struct Values {
    pub(super) name: String,
    pub(super) client_id: String,
    pub(super) client_secret: String,
    pub(super) country: String,
    pub(super) events_enabled: bool,
    pub(super) callback_url: String,
    pub(super) signature_key: String,
    pub(super) interval: String,
    pub(super) poller: String,
    pub(super) tags: String,
    pub(super) optional: Vec<(String, String)>,
}

impl Values {
    fn blank() -> Values {
        Values { interval: DEFAULT_INTERVAL.into(), poller: "{}".into(), ..Values::default() }
    }

    /// The submitted values; ticked resources missing from the code view get their default configuration.
    pub(super) fn from_form(form: &FormData, fields: &Fields, spec: Option<&ProviderSpec>) -> Values {
        let mut v = Values {
            name: form.text("name"),
            client_id: form.text("client_id"),
            client_secret: form.text("client_secret"),
            country: form.text("country"),
            events_enabled: form.get("events_enabled").is_some_and(|v| !v.is_empty() && v != "false"),
            callback_url: form.text("callback_url"),
            signature_key: form.text("signature_key"),
            interval: form.text("interval"),
            poller: form.text("poller_configuration"),
            tags: form.text("tags"),
            optional: fields.optional.iter().map(|(f, _)| (f.name.clone(), form.text(&f.name))).collect(),
        };
        let ticked = form.all("resource");
        if let (Some(spec), Ok(mut parsed)) = (spec, parse_poller(&v.poller)) {
            let mut added = false;
            for r in spec.resources.iter().filter(|r| ticked.contains(&r.name.as_str())) {
                if !parsed.contains_key(&r.name) {
                    parsed.insert(r.name.clone(), default_poller(r));
                    added = true;
                }
            }
            if added {
                v.poller = layout::pretty(&Value::Object(parsed));
            }
        }
        v
    }

    fn optional_value(&self, name: &str) -> &str {
        self.optional.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or_default()
    }
}

/// The code view's JSON: an object (empty text is an empty object).
fn parse_poller(text: &str) -> Result<Map<String, Value>, String> {
    if text.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("expected a JSON object with one entry per resource".into()),
        Err(e) => Err(format!("not valid JSON: {e}")),
    }
}

/// A resource's default poller configuration as the API takes it, without the fields left at their defaults
/// (the shape of the seed's `customers` entry).
pub(super) fn default_poller(r: &ResourceSpec) -> Value {
    let mut v = serde_json::to_value(&r.poller).unwrap_or(Value::Null);
    let defaults = serde_json::to_value(PollerConfig::new("", "")).unwrap_or(Value::Null);
    if let (Value::Object(map), Value::Object(defaults)) = (&mut v, &defaults) {
        map.retain(|k, value| matches!(k.as_str(), "url" | "idField") || defaults.get(k) != Some(value));
    }
    v
}

/// The instance body of the values (without `providerData`), and the problems only the form can see (a code
/// view that is not JSON).
pub(super) fn body_of(state: &AppState, values: &Values, fields: &Fields) -> (Value, Problems) {
    let mut problems = Problems::default();
    let mut c = Configuration::new();
    let text = |s: &str| Value::String(s.trim().to_string());
    let default_app = state.console.config.default_app.as_ref();
    match (values.client_id.trim(), default_app) {
        ("", Some((id, _))) => c.insert(keys::OAUTH_API_KEY, text(id)),
        ("", None) => {}
        (id, _) => c.insert(keys::OAUTH_API_KEY, text(id)),
    }
    match (values.client_secret.as_str(), default_app) {
        ("", Some((_, secret))) => c.insert(keys::OAUTH_API_SECRET, Value::String(secret.expose().to_string())),
        ("", None) => {}
        (secret, _) => c.insert(keys::OAUTH_API_SECRET, Value::String(secret.to_string())),
    }
    c.insert(keys::OAUTH_CALLBACK_URL, Value::String(state.console.config.redirect_uri()));
    if !values.country.trim().is_empty() {
        c.insert(oc_sageone::keys::COUNTRY, text(&values.country));
    }
    c.insert(keys::NOTIFICATION_ENABLED, Value::Bool(values.events_enabled));
    if !values.callback_url.trim().is_empty() {
        c.insert(keys::NOTIFICATION_CALLBACK_URL, text(&values.callback_url));
    }
    if !values.signature_key.is_empty() {
        c.insert(keys::NOTIFICATION_SIGNATURE_KEY, Value::String(values.signature_key.clone()));
    }
    if !values.interval.trim().is_empty() {
        c.insert(keys::POLLER_REFRESH_INTERVAL, text(&values.interval));
    }
    match parse_poller(&values.poller) {
        Ok(map) => c.insert(keys::POLLER_CONFIGURATION, Value::Object(map)),
        Err(e) => problems.push(fields.poller.path.clone(), e),
    }
    for (f, _) in &fields.optional {
        let v = values.optional_value(&f.name);
        if !v.trim().is_empty() {
            c.insert(f.name.clone(), text(v));
        }
    }
    let tags: Vec<String> =
        values.tags.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_string).collect();
    let configuration: Map<String, Value> = c.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    let body = json!({
        "element": {"key": ELEMENT_KEY},
        "name": values.name.trim(),
        "configuration": configuration,
        "tags": tags,
    });
    (body, problems)
}

/// The problems of a body put beside their fields: per field id, the messages; and those no field is about.
pub(super) struct Placed {
    by_field: Vec<(String, Vec<String>)>,
    general: Vec<String>,
}

impl Placed {
    pub(super) fn new(fields: &Fields, problems: &[Problem]) -> Placed {
        let mut placed = Placed { by_field: Vec::new(), general: Vec::new() };
        for p in problems {
            match fields.of_path(&p.path) {
                Some((f, rest)) => {
                    let text = if rest.is_empty() {
                        format!("{}: {}", f.label, p.message)
                    } else {
                        format!("{} ({rest}): {}", f.label, p.message)
                    };
                    match placed.by_field.iter_mut().find(|(id, _)| *id == f.id) {
                        Some((_, list)) => list.push(text),
                        None => placed.by_field.push((f.id.clone(), vec![text])),
                    }
                }
                None if p.path.is_empty() => placed.general.push(p.message.clone()),
                None => placed.general.push(format!("{}: {}", p.path, p.message)),
            }
        }
        placed
    }

    fn none() -> Placed {
        Placed { by_field: Vec::new(), general: Vec::new() }
    }

    fn of(&self, f: &Field) -> Option<&[String]> {
        self.by_field.iter().find(|(id, _)| *id == f.id).map(|(_, list)| list.as_slice())
    }

    fn count(&self) -> usize {
        self.by_field.iter().map(|(_, l)| l.len()).sum::<usize>() + self.general.len()
    }
}

/// The id of a field's error message.
fn error_id(f: &Field) -> String {
    format!("{}-error", f.id)
}

/// The id of a field's hint.
fn hint_id(f: &Field) -> String {
    format!("{}-hint", f.id)
}

/// `aria-describedby` of a field: its hint and its error, those it has.
fn described_by(f: &Field, hint: bool, placed: &Placed) -> Option<String> {
    let mut ids = Vec::new();
    if placed.of(f).is_some() {
        ids.push(error_id(f));
    }
    if hint {
        ids.push(hint_id(f));
    }
    (!ids.is_empty()).then(|| ids.join(" "))
}

/// The messages of a field, each announced.
fn errors(f: &Field, placed: &Placed) -> Markup {
    html! {
        @if let Some(list) = placed.of(f) {
            div.error #(error_id(f)) role="alert" {
                @for m in list { p { (m) } }
            }
        }
    }
}

/// A text input with its label, hint and errors.
fn text_field(f: &Field, value: &str, kind: &str, hint: Option<&str>, placed: &Placed) -> Markup {
    let invalid = placed.of(f).is_some();
    html! {
        div.field {
            label for=(f.id) { (f.label) }
            @if let Some(h) = hint { p.hint #(hint_id(f)) { (h) } }
            input id=(f.id) name=(f.name) type=(kind) value=(value) autocomplete="off" spellcheck="false"
                aria-invalid=[invalid.then_some("true")] aria-describedby=[described_by(f, hint.is_some(), placed)];
            (errors(f, placed))
        }
    }
}

/// The whole form page.
pub(super) fn render(state: &AppState, signed: &Signed, values: &Values, placed: &Placed) -> Markup {
    let spec = state.providers.spec(ELEMENT_KEY);
    let fields = Fields::of(spec);
    let resources: &[ResourceSpec] = spec.map(|s| s.resources.as_slice()).unwrap_or_default();
    let in_json = parse_poller(&values.poller).unwrap_or_default();
    let config = &state.console.config;
    let (id_hint, secret_hint) = match &config.default_app {
        Some((id, _)) => (
            format!("Optional: left empty, the server's Sage app ({id}) is used."),
            "Optional: left empty, the server's Sage app's secret is used.".to_string(),
        ),
        None => (
            "The client ID of your Sage app (developer.sage.com), with the redirect URI below registered.".to_string(),
            "The client secret of that app.".to_string(),
        ),
    };
    let optional_open = fields
        .optional
        .iter()
        .any(|(f, _)| !values.optional_value(&f.name).trim().is_empty() || placed.of(f).is_some());
    let title = "Authenticate an instance";
    let body = html! {
        h1 { (title) }
        p { "Authenticate a connector instance, and then turn on events. Select the resources to poll, and then "
            "click Create Instance: you are sent to Sage to grant access, and come back to the new instance." }
        @if placed.count() > 0 {
            div.summary #form-problems aria-labelledby="form-problems-title" tabindex="-1" {
                h2 #form-problems-title { "The instance has " (placed.count()) " problem(s)" }
                @if !placed.general.is_empty() {
                    div role="alert" { @for m in &placed.general { p { (m) } } }
                }
                ul {
                    @for (id, list) in &placed.by_field {
                        @for m in list { li { a href=(format!("#{id}")) { (m) } } }
                    }
                }
            }
        }
        div.redirect {
            p #redirect-uri-label { "Redirect URI to register with your Sage app:" }
            p { code #redirect-uri aria-labelledby="redirect-uri-label" { (config.redirect_uri()) } }
        }
        form.stack #create-instance method="post" action="/ui/instances" novalidate {
            (csrf_input(signed))
            (text_field(&fields.name, &values.name, "text", None, placed))
            (text_field(&fields.client_id, &values.client_id, "text", Some(&id_hint), placed))
            (text_field(&fields.client_secret, &values.client_secret, "password", Some(&secret_hint), placed))
            (text_field(&fields.country, &values.country, "text",
                Some("Two-letter country of the Sage business, e.g. GB, US, CA, IE, ES, FR, DE."), placed))
            div.field.check {
                @let f = &fields.events_enabled;
                input id=(f.id) name=(f.name) type="checkbox" value="true" checked[values.events_enabled]
                    aria-invalid=[placed.of(f).map(|_| "true")] aria-describedby=[described_by(f, false, placed)];
                label for=(f.id) { (f.label) }
                (errors(f, placed))
            }
            (text_field(&fields.callback_url, &values.callback_url, "text",
                Some("Where the notifications are POSTed (http or https)."), placed))
            (text_field(&fields.signature_key, &values.signature_key, "password",
                Some("Key of the HMAC-SHA256 signature of every notification (Elements-Webhook-Signature)."), placed))
            div.field {
                @let f = &fields.interval;
                label for=(f.id) { (f.label) }
                p.hint #(hint_id(f)) { "Minutes between polls; fractions allowed (0.25 = 15 s)." }
                div.interval {
                    input id=(f.id) name=(f.name) type="number" min="0.0167" step="any" inputmode="decimal"
                        value=(values.interval) aria-invalid=[placed.of(f).map(|_| "true")]
                        aria-describedby=[described_by(f, true, placed)];
                    label.visually-hidden for="interval-range" { "Refresh interval slider (mins)" }
                    input #interval-range type="range" min="1" max="60" step="1" aria-controls=(f.id)
                        value=(values.interval.trim().parse::<f64>().map(|m| m.clamp(1.0, 60.0).round()).unwrap_or(15.0));
                }
                (errors(f, placed))
            }
            fieldset #resources aria-describedby="resources-hint" {
                legend { "Resources" }
                p.hint #resources-hint { "Ticking a resource adds its default poller configuration to "
                    "event.poller.configuration below; unticking removes it." }
                div.checks {
                    @for r in resources {
                        @let id = format!("resource-{}", r.name);
                        div.check {
                            input id=(id) type="checkbox" name="resource" value=(r.name)
                                data-poller=(default_poller(r).to_string()) checked[in_json.contains_key(&r.name)];
                            label for=(id) { (r.name) }
                        }
                    }
                }
            }
            div.field {
                @let f = &fields.poller;
                label for=(f.id) { (f.label) }
                p.hint #(hint_id(f)) { "The JSON sent as event.poller.configuration: one entry per resource. "
                    "Edit it by hand if you like; it is validated as the API validates it." }
                textarea.code id=(f.id) name=(f.name) rows="14" spellcheck="false" autocomplete="off"
                    aria-invalid=[placed.of(f).map(|_| "true")] aria-describedby=[described_by(f, true, placed)]
                    { (values.poller) }
                p.hint #poller-status aria-live="polite" {}
                (errors(f, placed))
            }
            (text_field(&fields.tags, &values.tags, "text", Some("Comma-separated."), placed))
            details #optional-fields open[optional_open] {
                summary { "Show Optional Fields" }
                @for (f, description) in &fields.optional {
                    (text_field(f, values.optional_value(&f.name), "text", Some(description), placed))
                }
            }
            button.primary type="submit" { "Create Instance" }
        }
    };
    Page::new(title).render(Some(signed), body)
}

/// `GET /ui/instances/new`.
pub(super) async fn new_instance(State(state): State<AppState>, signed: Signed) -> Answer {
    Ok(layout::html(render(&state, &signed, &Values::blank(), &Placed::none())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(path: &str, expected: Option<(&str, &str)>) {
        let fields = Fields::of(Some(&oc_sageone::provider_spec()));
        let got = fields.of_path(path).map(|(f, rest)| (f.id.as_str(), rest));
        assert_eq!(got, expected, "{path}");
    }

    #[test]
    fn problems_find_their_fields() {
        check("name", Some(("name", "")));
        check("configuration[\"oauth.api.key\"]", Some(("client-id", "")));
        check("configuration[\"oauth.api.secret\"]", Some(("client-secret", "")));
        check("configuration.country", Some(("country", "")));
        check("configuration[\"event.notification.callback.url\"]", Some(("callback-url", "")));
        check(
            "configuration[\"event.poller.configuration\"].customers.url",
            Some(("poller-configuration", "customers.url")),
        );
        check("tags[1]", Some(("tags", "[1]")));
        check("configuration[\"sage.business.id\"]", Some(("opt-sage-business-id", "")));
        check("configuration[\"oauth.callback.url\"]", None);
        check("names", None);
    }

    #[test]
    fn a_default_poller_has_the_seed_shape() {
        let spec = oc_sageone::provider_spec();
        let customers = default_poller(spec.resource("customers").unwrap());
        let keys: Vec<&str> = customers.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["url", "idField", "datesConfiguration"], "{customers}");
        assert_eq!(customers["datesConfiguration"]["updatedDateField"], "updated_at");
    }
}
