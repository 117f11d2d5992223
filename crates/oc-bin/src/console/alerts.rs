//! An instance's operational alerts as the console shows them (`consumers.md` §5): the latest ones, newest first,
//! with their status, where they went and why they were raised, and a **Redeliver alert** button each — through the
//! API's organization-scoped [`AlertStore`](oc_model::ports::AlertStore) calls.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect};
use maud::{Markup, html};
use oc_model::ids::InstanceId;
use oc_model::ports::{AlertPage, AlertRecord, AlertStatus};
use uuid::Uuid;

use super::instances::load;
use super::layout::{self, csrf_input};
use super::session::{Posted, Signed};
use super::{Answer, ConsoleError};
use crate::api::AppState;

/// Alerts shown on an instance's page.
pub(super) const ALERTS_SHOWN: u32 = 20;

/// The latest alerts of instance `id`.
pub(super) async fn latest(state: &AppState, signed: &Signed, id: InstanceId) -> Result<AlertPage, ConsoleError> {
    state
        .store
        .list_alerts(signed.principal.org_id, id, None, ALERTS_SHOWN, 0)
        .await?
        .ok_or_else(|| ConsoleError::NotFound(format!("instance {id} not found")))
}

fn status_text(a: &AlertRecord) -> &'static str {
    a.status.as_str()
}

fn sent_to(a: &AlertRecord) -> &str {
    match a.target.as_deref() {
        Some("instance") => "the instance's operational callback",
        Some("server") => "the server's operational webhook",
        _ => "—",
    }
}

/// The alerts section of an instance's page.
pub(super) fn alerts_section(signed: &Signed, base: &str, page: &AlertPage) -> Markup {
    html! {
        section #alerts aria-labelledby="alerts-title" {
            h2 #alerts-title { "Alerts" }
            p.hint {
                "Operational alerts go to " code { "event.notification.operational.callback.url" }
                ", else to the server's " code { "--operational-webhook-url" } "."
            }
            @if page.items.is_empty() {
                p { "No alert: nothing needed a person." }
            } @else {
                div.scroll {
                    table #alerts-table {
                        thead { tr {
                            th scope="col" { "Raised" } th scope="col" { "Type" } th scope="col" { "Status" }
                            th scope="col" { "Attempts" } th scope="col" { "Sent to" } th scope="col" { "Reason" }
                            th scope="col" { "Action" }
                        } }
                        tbody {
                            @for a in &page.items {
                                tr {
                                    td { (layout::time(a.created_at)) }
                                    td { code { (a.alert_type.as_str()) } }
                                    td.status[a.status == AlertStatus::Failed || a.status == AlertStatus::Unrouted] {
                                        (status_text(a))
                                        @if let Some(e) = &a.last_error { @if a.status != AlertStatus::Delivered {
                                            br; small { (e) }
                                        } }
                                    }
                                    td.num { (a.attempts) }
                                    td { (sent_to(a)) }
                                    td { (a.body["reason"].as_str().unwrap_or_default()) }
                                    td {
                                        @if a.status != AlertStatus::Delivering {
                                            form method="post" action=(format!("{base}/alerts/{}/redeliver", a.id)) {
                                                (csrf_input(signed))
                                                button type="submit"
                                                    aria-label=(format!("Redeliver alert {} of {}", a.alert_type.as_str(),
                                                        layout::when(a.created_at))) { "Redeliver alert" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                @if page.total > page.items.len() as u64 {
                    p { "The latest " (page.items.len()) " of " (page.total) ": all are at "
                        code { "GET /elements/api-v2/instances/{id}/alerts" } "." }
                }
            }
        }
    }
}

/// `POST /ui/instances/{id}/alerts/{alert_id}/redeliver`.
pub(super) async fn redeliver(
    State(state): State<AppState>,
    Path((id, alert_id)): Path<(InstanceId, String)>,
    posted: Posted,
) -> Answer {
    let org = posted.signed.principal.org_id;
    load(&state, &posted.signed, id).await?;
    let not_found = || ConsoleError::NotFound(format!("alert {alert_id} not found in instance {id}"));
    let uuid = Uuid::parse_str(&alert_id).map_err(|_| not_found())?;
    state.store.alert(org, uuid).await?.filter(|(a, _)| a.instance_id == id).ok_or_else(not_found)?;
    let done = if state.store.redeliver_alert(org, uuid, state.clock.now()).await? {
        state.wakers.alerts.notify_one();
        "alert-redelivered"
    } else {
        "alert-in-flight"
    };
    Ok(Redirect::to(&format!("/ui/instances/{id}?done={done}#alerts")).into_response())
}
