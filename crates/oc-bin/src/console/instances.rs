//! The instances of the signed-in organization: the list, an instance's page (state, configuration masked,
//! actions, events, the last hour, polls), enable/disable and delete with a confirmation step.
//!
//! Every instance is loaded with the API's own call ([`crate::api::instances::load`]: the store's
//! organization-scoped read), so another organization's instance is "not found" here exactly as there.

use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Redirect};
use chrono::{DateTime, Utc};
use maud::{Markup, html};
use oc_model::Problem;
use oc_model::config::keys;
use oc_model::ids::InstanceId;
use oc_model::ports::{EventFilter, Instance};

use super::activity;
use super::alerts;
use super::feed::{self, ReplayForm};
use super::layout::{self, Page, csrf_input};
use super::session::{Posted, Signed};
use super::{Answer, ConsoleError};
use crate::api::AppState;
use crate::api::auth::Caller;
use crate::api::instances::{load as api_load, secret_keys};

/// Events per page of an instance's table.
pub(super) const EVENTS_PER_PAGE: u32 = 50;
/// Polls shown on an instance's page.
pub(super) const POLLS_SHOWN: usize = 20;

/// The instance `id` of the signed-in organization, as the API would load it.
pub(super) async fn load(state: &AppState, signed: &Signed, id: InstanceId) -> Result<Instance, ConsoleError> {
    let caller = Caller { principal: signed.principal, instance: None };
    Ok(api_load(state, &caller, id).await?)
}

fn state_text(i: &Instance) -> String {
    match (i.valid, &i.invalid_reason) {
        (true, _) => "valid".into(),
        (false, Some(reason)) => format!("invalid: {reason}"),
        (false, None) => "invalid".into(),
    }
}

fn events_enabled(i: &Instance) -> bool {
    i.configuration.notifications_enabled().unwrap_or(false) && i.notifications_disabled_reason.is_none()
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// `GET /ui/`: the organization's instances.
pub(super) async fn list(State(state): State<AppState>, signed: Signed) -> Answer {
    let instances = state.store.list_instances(signed.principal.org_id, &[]).await?;
    let body = html! {
        h1 { "Instances" }
        p { a.button.primary href="/ui/instances/new" { "Create Instance" } }
        @if instances.is_empty() {
            p { "No instances yet. Create one to start polling Sage and receiving its events." }
        } @else {
            table #instances {
                thead { tr { th scope="col" { "Name" } th scope="col" { "State" } th scope="col" { "Disabled" }
                    th scope="col" { "Events enabled" } th scope="col" { "Resources" } th scope="col" { "Created" } } }
                tbody {
                    @for i in &instances {
                        tr {
                            td { a href=(format!("/ui/instances/{}", i.id)) { (i.name) } }
                            td.state[!i.valid] { (state_text(i)) }
                            td { (yes_no(i.disabled)) }
                            td {
                                (yes_no(events_enabled(i)))
                                @if let Some(r) = &i.notifications_disabled_reason { " (" (r) ")" }
                            }
                            td { (resources(i).join(", ")) }
                            td { (layout::time(i.created_at)) }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::html(Page::new("Instances").render(Some(&signed), body)))
}

pub(super) fn resources(i: &Instance) -> Vec<String> {
    let (pollers, _) = i.configuration.read_poller_configs();
    pollers.resources().map(str::to_string).collect()
}

fn query_value(query: &Option<String>, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_deref().unwrap_or_default().as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn page_number(query: &Option<String>) -> u32 {
    query_value(query, "page").and_then(|v| v.parse::<u32>().ok()).filter(|p| (1..=1_000_000).contains(p)).unwrap_or(1)
}

/// The notice of an action done, by the `done` parameter of the redirect after it (never free text from the URL).
fn notice(query: &Option<String>) -> Option<&'static str> {
    match query_value(query, "done")?.as_str() {
        "enabled" => Some("Enabled: polling again."),
        "disabled" => Some("Disabled: no polls, no deliveries."),
        "alert-redelivered" => Some("The alert is sent again (same id)."),
        "alert-in-flight" => Some("The alert is being delivered right now."),
        _ => None,
    }
}

/// `GET /ui/instances/{id}[?page=N]`.
pub(super) async fn page(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<InstanceId>,
    RawQuery(query): RawQuery,
) -> Answer {
    let instance = load(&state, &signed, id).await?;
    let arrival = notice(&query).map(Arrival::Notice).unwrap_or(Arrival::Visit);
    let replay = feed::replayed(&query);
    let view = instance_view_with(&state, &signed, &instance, page_number(&query), arrival, &replay).await?;
    Ok(layout::html(view))
}

/// How the user came to an instance's page.
pub(super) enum Arrival<'a> {
    /// Opened it.
    Visit,
    /// It was just created through the OAuth round, with the API's warnings.
    Created(&'a [Problem]),
    /// It was just authorized again.
    Reauthorized,
    /// A notice after an action (enabled, redelivery queued...).
    Notice(&'a str),
}

/// An instance's whole page.
pub(super) async fn instance_view(
    state: &AppState,
    signed: &Signed,
    i: &Instance,
    page: u32,
    arrival: Arrival<'_>,
) -> Result<Markup, ConsoleError> {
    instance_view_with(state, signed, i, page, arrival, &ReplayForm::default()).await
}

/// When the previous signature key stops signing, while it still signs (`consumers.md` §4).
fn previous_key_until(i: &Instance, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    i.configuration.previous_signature_key(now)?;
    let until = i.configuration.get(keys::SIGNATURE_KEY_PREVIOUS_UNTIL)?.as_str()?;
    DateTime::parse_from_rfc3339(until).ok().map(|t| t.with_timezone(&Utc))
}

/// An instance's whole page, with the replay form as given (typed values and problems, or a replay's count).
pub(super) async fn instance_view_with(
    state: &AppState,
    signed: &Signed,
    i: &Instance,
    page: u32,
    arrival: Arrival<'_>,
    replay: &ReplayForm,
) -> Result<Markup, ConsoleError> {
    let org = signed.principal.org_id;
    let filter = EventFilter { instance_id: Some(i.id), page, page_size: EVENTS_PER_PAGE, ..EventFilter::default() };
    let events = state.store.list_events(org, &filter).await?;
    let polls = state.store.list_polls(org, i.id, POLLS_SHOWN).await?;
    let chart = activity::cached_chart(state, signed, i.id);
    let position = feed::position(state, signed, i.id).await?;
    let alerts = alerts::latest(state, signed, i.id).await?;
    let previous_key_until = previous_key_until(i, state.clock.now());
    let shown = i.configuration.to_response(&secret_keys(state, &i.element_key));
    let interval = i
        .configuration
        .refresh_interval()
        .map(|d| format!("{} min ({} s)", trim_minutes(d.as_secs_f64() / 60.0), trim_minutes(d.as_secs_f64())))
        .unwrap_or_else(|p| p.message);
    let base = format!("/ui/instances/{}", i.id);
    let canonical = matches!(arrival, Arrival::Created(_) | Arrival::Reauthorized).then(|| base.clone());
    let body = html! {
        h1 { (i.name) }
        @match arrival {
            Arrival::Created(warnings) => {
                p.notice role="status" { "Instance " (i.id) " created: ocpoll polls it from now on." }
                @if !warnings.is_empty() {
                    section.warnings aria-labelledby="warnings-title" {
                        h2 #warnings-title { "Warnings" }
                        ul { @for w in warnings { li { code { (w.path) } ": " (w.message) } } }
                    }
                }
            }
            Arrival::Reauthorized => { p.notice role="status" { "Authorized again: new tokens are in use." } }
            Arrival::Notice(n) => { p.notice role="status" { (n) } }
            Arrival::Visit => {}
        }
        dl.facts {
            dt { "State" } dd.state[!i.valid] #instance-state { (state_text(i)) }
            dt { "Disabled" } dd #instance-disabled { (yes_no(i.disabled)) }
            dt { "Events enabled" } dd {
                (yes_no(events_enabled(i)))
                @if let Some(r) = &i.notifications_disabled_reason { " — " (r) }
            }
            dt { "Resources" } dd { (resources(i).join(", ")) }
            dt { "Refresh interval" } dd { (interval) }
            @if let Some(until) = previous_key_until {
                dt { "Signature key rotation" }
                dd #key-rotation { "Previous signature key signs until " (layout::time(until)) }
            }
            @if let Some(name) = i.account.name.as_ref().or(i.account.id.as_ref()) {
                dt { "Account" } dd { (name) }
            }
            @if !i.tags.is_empty() { dt { "Tags" } dd { (i.tags.join(", ")) } }
            dt { "Created" } dd { (layout::time(i.created_at)) }
            dt { "Updated" } dd { (layout::time(i.updated_at)) }
        }
        div.actions {
            form method="post" action=(format!("{base}/enabled")) {
                (csrf_input(signed))
                @if i.disabled {
                    input type="hidden" name="enabled" value="true";
                    button type="submit" { "Enable" }
                } @else {
                    input type="hidden" name="enabled" value="false";
                    button type="submit" { "Disable" }
                }
            }
            form method="post" action=(format!("{base}/reauthenticate")) {
                (csrf_input(signed))
                button type="submit" { "Re-authenticate" }
            }
            form method="get" action=(format!("{base}/delete")) {
                button.danger type="submit" { "Delete" }
            }
        }
        (activity::events_section(&base, &events, page))
        (activity::chart_section(&base, chart.as_ref()))
        (activity::polls_section(&base, &polls))
        (feed::feed_section(&state.console.config.public_url, &base, &position))
        (feed::replay_section(signed, &base, &resources(i), replay))
        (alerts::alerts_section(signed, &base, &alerts))
        section aria-labelledby="configuration-title" {
            h2 #configuration-title { "Configuration" }
            table.config {
                thead { tr { th scope="col" { "Key" } th scope="col" { "Value" } } }
                tbody {
                    @for (k, v) in shown.iter() {
                        tr {
                            th scope="row" { code { (k) } }
                            td {
                                @if k == keys::POLLER_CONFIGURATION {
                                    pre { (pretty_poller(v)) }
                                } @else {
                                    (text_of(v))
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    let mut page = Page::new(&i.name);
    if let Some(c) = canonical {
        page = page.canonical(c);
    }
    Ok(page.render(Some(signed), body))
}

/// `0.083333` rather than `0.08333333333333333`.
fn trim_minutes(m: f64) -> String {
    let s = format!("{m:.4}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn text_of(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// `event.poller.configuration` echoed as a JSON string (as the API does): shown indented.
fn pretty_poller(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => {
            serde_json::from_str::<serde_json::Value>(s).map(|j| layout::pretty(&j)).unwrap_or_else(|_| s.clone())
        }
        other => layout::pretty(other),
    }
}

/// `POST /ui/instances/{id}/enabled` (`enabled=true|false`).
pub(super) async fn set_enabled(State(state): State<AppState>, Path(id): Path<InstanceId>, posted: Posted) -> Answer {
    let signed = &posted.signed;
    load(&state, signed, id).await?;
    let disabled = posted.form.get("enabled") != Some("true");
    state.store.set_disabled(signed.principal.org_id, id, disabled, state.clock.now()).await?;
    state.wakers.dispatcher.notify_one();
    let done = if disabled { "disabled" } else { "enabled" };
    Ok(Redirect::to(&format!("/ui/instances/{id}?done={done}")).into_response())
}

/// `GET /ui/instances/{id}/delete`: the confirmation step.
pub(super) async fn confirm_delete(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<InstanceId>,
) -> Answer {
    let i = load(&state, &signed, id).await?;
    let title = format!("Delete {}?", i.name);
    let body = html! {
        h1 { (title) }
        p { "Deleting the instance stops its polls, drops its pending notifications and makes its Element token "
            "useless. Its events stay in the store until retention removes them. This cannot be undone." }
        form.actions method="post" action=(format!("/ui/instances/{id}/delete")) {
            (csrf_input(&signed))
            button.danger type="submit" { "Delete" }
            a.button href=(format!("/ui/instances/{id}")) { "Cancel" }
        }
    };
    Ok(layout::html(Page::new(&title).render(Some(&signed), body)))
}

/// `POST /ui/instances/{id}/delete`.
pub(super) async fn delete(State(state): State<AppState>, Path(id): Path<InstanceId>, posted: Posted) -> Answer {
    let signed = &posted.signed;
    load(&state, signed, id).await?;
    if state.store.delete_instance(signed.principal.org_id, id, state.clock.now()).await? {
        tracing::info!(instance = id, "instance deleted from the console");
    }
    Ok(Redirect::to("/ui/").into_response())
}
