//! What happened to an instance, as the console shows it: the events table (paged, live through
//! `events.json`), one event with its record, notification and every attempt (and **Redeliver** when it failed),
//! the polls (live through `polls.html`), and the data of the last hour's chart. Everything is read through the API's
//! [`ActivityStore`](oc_model::ports::ActivityStore) calls, scoped to the signed-in organization.

use std::collections::BTreeSet;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Duration, DurationRound, Utc};
use maud::{Markup, html};
use oc_model::event::EventType;
use oc_model::ids::InstanceId;
use oc_model::ports::{EventFilter, EventPage, EventView, NotificationStatus, PollRecord};
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::chart::{self, ChartData, MINUTES};
use super::instances::{EVENTS_PER_PAGE, POLLS_SHOWN, load};
use super::layout::{self, Page, csrf_input};
use super::session::{Posted, Signed};
use super::{Answer, ConsoleError};
use crate::api::AppState;

/// The most events read for the chart (4 pages of 500): beyond, the chart says it counted only the newest. Each
/// page is a store read with the events' records, so the chart's cost is bounded whatever the traffic.
const CHART_EVENT_LIMIT: u32 = 2_000;
/// How long a drawn chart is reused (every viewer's script asks every 10 s).
const CHART_FRESH: Duration = Duration::seconds(10);
const CHART_PAGE: u32 = 500;
/// Delivered notifications looked up per minute for the latency line (a sample: each is one store read).
const LATENCY_SAMPLES_PER_MINUTE: usize = 3;

fn event_href(base: &str, v: &EventView) -> String {
    format!("{base}/events/{}", v.event.event_id)
}

/// The events section of an instance's page: page `page` of its events, newest first; the first page is kept
/// up to date by the script from `events.json`.
pub(super) fn events_section(base: &str, events: &EventPage, page: u32) -> Markup {
    let pages = events.total.div_ceil(u64::from(EVENTS_PER_PAGE)).max(1);
    html! {
        section aria-labelledby="events-title" {
            h2 #events-title { "Events" }
            p #events-summary aria-live="polite" {
                span #events-total { (events.total) } " events"
                @if pages > 1 { ", page " (page) " of " (pages) }
                @if page == 1 { " — new ones appear here as they are recorded." }
            }
            table #events data-live=[(page == 1).then(|| format!("{base}/events.json"))] {
                thead { tr {
                    th scope="col" { "Date" } th scope="col" { "Type" } th scope="col" { "Resource" }
                    th scope="col" { "Object ID" } th scope="col" { "Status" }
                } }
                tbody {
                    @for v in &events.items {
                        @let href = event_href(base, v);
                        tr data-seq=(v.seq) data-href=(href) {
                            td { a href=(href) { (layout::time(v.created_at)) } }
                            td { (v.event.event_type.as_str()) }
                            td { (v.event.object_type) }
                            td { code { (v.event.object_id) } }
                            td.status data-status=(v.oc_status().as_str()) { (v.oc_status().as_str()) }
                        }
                    }
                }
            }
            @if pages > 1 {
                nav.pager aria-label="Event pages" {
                    @if page > 1 { a rel="prev" href=(format!("{base}?page={}", page - 1)) { "Newer events" } }
                    @if u64::from(page) < pages { a rel="next" href=(format!("{base}?page={}", page + 1)) { "Older events" } }
                }
            }
        }
    }
}

/// The chart section: the last hour when it was drawn a moment ago, else a link to it that the script follows at
/// once (so that an instance's page never waits for its chart); refreshed by the script from `chart.svg`.
pub(super) fn chart_section(base: &str, data: Option<&ChartData>) -> Markup {
    let src = format!("{base}/chart.svg");
    html! {
        section aria-labelledby="chart-title" {
            h2 #chart-title { "Last hour" }
            div #chart data-src=(src) {
                @match data {
                    Some(d) => (chart::render(d)),
                    None => {
                        p.placeholder { a href=(src) { "Events per minute and change-to-delivery latency, last hour" } }
                        p.chart-summary #chart-summary {}
                    }
                }
            }
        }
    }
}

/// The chart of an instance drawn less than ten seconds ago, if there is one.
pub(super) fn cached_chart(state: &AppState, signed: &Signed, id: InstanceId) -> Option<ChartData> {
    let key = (signed.principal.org_id, id);
    let now = state.clock.now();
    let charts = state.console.charts.lock().unwrap_or_else(|e| e.into_inner());
    charts.get(&key).filter(|(at, _)| now - *at < CHART_FRESH).map(|(_, d)| d.clone())
}

/// The polls section: the latest polls with their window, pages, records, counts, warnings and error; refreshed
/// by the script from `polls.html` (the same markup).
pub(super) fn polls_section(base: &str, polls: &[PollRecord]) -> Markup {
    html! {
        section #polls-section aria-labelledby="polls-title" data-refresh=(format!("{base}/polls.html")) {
            h2 #polls-title { "Polls" }
            @if polls.is_empty() {
                p { "No poll yet." }
            } @else {
                div.scroll {
                    table #polls {
                        thead { tr {
                            th scope="col" { "Started" } th scope="col" { "Resource" } th scope="col" { "Status" }
                            th scope="col" { "Window from" } th scope="col" { "Pages" } th scope="col" { "Records" }
                            th scope="col" { "Created" } th scope="col" { "Updated" } th scope="col" { "Deleted" }
                            th scope="col" { "Warnings" } th scope="col" { "Error" }
                        } }
                        tbody {
                            @for p in polls {
                                @let o = &p.outcome;
                                tr {
                                    td { (layout::time(o.started_at)) }
                                    td { (p.resource) }
                                    td { (o.status.as_str()) }
                                    td { @if let Some(w) = o.window_start { (layout::time(w)) } @else { "—" } }
                                    td.num { (o.pages) } td.num { (o.records) }
                                    td.num { (o.created) } td.num { (o.updated) } td.num { (o.deleted) }
                                    td {
                                        @if o.warnings.is_empty() { "0" } @else {
                                            // an id of its own, so that a refresh keeps it open
                                            details id=(format!("warnings-{}-{}", p.resource,
                                                o.started_at.timestamp_millis())) {
                                                summary { (o.warnings.len()) }
                                                ul { @for w in &o.warnings {
                                                    li {
                                                        @if let Some(r) = &w.record_id { "record " code { (r) } ": " }
                                                        (w.message)
                                                    }
                                                } }
                                            }
                                        }
                                    }
                                    td { @if let Some(e) = &o.error { (e) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Events per minute by type and the change-to-delivery latency over the last hour of an instance (drawn again
/// at most every ten seconds).
pub(super) async fn last_hour(state: &AppState, signed: &Signed, id: InstanceId) -> Result<ChartData, ConsoleError> {
    if let Some(d) = cached_chart(state, signed, id) {
        return Ok(d);
    }
    let data = draw_last_hour(state, signed, id).await?;
    let now = state.clock.now();
    let mut charts = state.console.charts.lock().unwrap_or_else(|e| e.into_inner());
    charts.retain(|_, (at, _)| now - *at < CHART_FRESH);
    charts.insert((signed.principal.org_id, id), (now, data.clone()));
    Ok(data)
}

async fn draw_last_hour(state: &AppState, signed: &Signed, id: InstanceId) -> Result<ChartData, ConsoleError> {
    let org = signed.principal.org_id;
    let now = state.clock.now();
    let start = now.duration_trunc(Duration::minutes(1)).unwrap_or(now) - Duration::minutes(MINUTES as i64 - 1);
    let mut data = ChartData::new(start);
    let mut samples: Vec<Vec<(Uuid, DateTime<Utc>)>> = vec![Vec::new(); MINUTES];
    let mut page = 1;
    'pages: loop {
        let filter = EventFilter { instance_id: Some(id), page, page_size: CHART_PAGE, ..EventFilter::default() };
        let found = state.store.list_events(org, &filter).await?;
        for v in &found.items {
            if v.created_at < start {
                break 'pages;
            }
            let Some(minute) = data.minute_of(v.created_at) else { continue };
            let counts = &mut data.counts[minute];
            match v.event.event_type {
                EventType::Created => counts.created += 1,
                EventType::Updated => counts.updated += 1,
                EventType::Deleted => counts.deleted += 1,
            }
            if let Some(n) = v.notification_id
                && v.status == NotificationStatus::Delivered
            {
                let seen = &mut samples[minute];
                if seen.len() < LATENCY_SAMPLES_PER_MINUTE && seen.iter().all(|(id, _)| *id != n) {
                    seen.push((n, v.event.date));
                }
            }
        }
        if found.items.len() < CHART_PAGE as usize {
            break;
        }
        if page * CHART_PAGE >= CHART_EVENT_LIMIT {
            data.truncated = true;
            break;
        }
        page += 1;
    }
    for (minute, sampled) in samples.into_iter().enumerate() {
        let mut latencies = Vec::new();
        let mut unique = BTreeSet::new();
        for (n, changed) in sampled {
            if !unique.insert(n) {
                continue;
            }
            if let Some((record, _)) = state.store.notification(org, n).await?
                && let Some(delivered) = record.delivered_at
            {
                latencies.push((delivered - changed).num_milliseconds().max(0) as f64 / 1000.0);
            }
        }
        latencies.sort_by(f64::total_cmp);
        data.latency[minute] = latencies.get(latencies.len() / 2).copied();
    }
    Ok(data)
}

/// One event as the script's table takes it.
fn event_json(base: &str, v: &EventView) -> serde_json::Value {
    json!({
        "seq": v.seq,
        "href": event_href(base, v),
        "date": v.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "dateText": layout::when(v.created_at),
        "type": v.event.event_type.as_str(),
        "resource": v.event.object_type,
        "objectId": v.event.object_id,
        "status": v.oc_status().as_str(),
    })
}

/// A body with an `ETag` of its content, or 304 when the script already has it.
pub(super) fn tagged(headers: &HeaderMap, content_type: &'static str, body: Vec<u8>) -> Response {
    let hash = Sha256::digest(&body);
    let etag = format!("\"{}\"", hash.iter().take(8).map(|b| format!("{b:02x}")).collect::<String>());
    let etag_value = HeaderValue::from_str(&etag).unwrap_or_else(|_| HeaderValue::from_static("\"\""));
    if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag_value)]).into_response();
    }
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::ETAG, etag_value),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache, private")),
        ],
        body,
    )
        .into_response()
}

/// `GET /ui/instances/{id}/events.json`: the newest page of events, for the live table.
pub(super) async fn events_json(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<InstanceId>,
    headers: HeaderMap,
) -> Answer {
    load(&state, &signed, id).await?;
    let filter = EventFilter { instance_id: Some(id), page: 1, page_size: EVENTS_PER_PAGE, ..EventFilter::default() };
    let page = state.store.list_events(signed.principal.org_id, &filter).await?;
    let base = format!("/ui/instances/{id}");
    let body = json!({
        "total": page.total,
        "events": page.items.iter().map(|v| event_json(&base, v)).collect::<Vec<_>>(),
    });
    Ok(tagged(&headers, "application/json", serde_json::to_vec(&body).unwrap_or_default()))
}

/// `GET /ui/instances/{id}/chart.svg`: the last hour, for the script to refresh the chart.
pub(super) async fn chart_svg(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<InstanceId>,
    headers: HeaderMap,
) -> Answer {
    load(&state, &signed, id).await?;
    let data = last_hour(&state, &signed, id).await?;
    Ok(tagged(&headers, "image/svg+xml", chart::render_svg(&data).into_string().into_bytes()))
}

/// `GET /ui/instances/{id}/polls.html`: the polls section, for the script to refresh it.
pub(super) async fn polls_html(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<InstanceId>,
    headers: HeaderMap,
) -> Answer {
    load(&state, &signed, id).await?;
    let polls = state.store.list_polls(signed.principal.org_id, id, POLLS_SHOWN).await?;
    let section = polls_section(&format!("/ui/instances/{id}"), &polls);
    Ok(tagged(&headers, "text/html; charset=utf-8", section.into_string().into_bytes()))
}

fn done_notice(query: &Option<String>) -> Option<&'static str> {
    let done = url::form_urlencoded::parse(query.as_deref().unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "done")
        .map(|(_, v)| v.into_owned())?;
    match done.as_str() {
        "redelivered" => Some("Redelivery queued: the notification is due again now."),
        "not-failed" => Some("Only a failed notification is redelivered; this one is not failed."),
        _ => None,
    }
}

fn parse_event_id(text: &str) -> Result<Uuid, ConsoleError> {
    Uuid::parse_str(text).map_err(|_| ConsoleError::NotFound(format!("event {text} not found")))
}

/// `GET /ui/instances/{id}/events/{eventId}`: the event's record, its notification and every attempt.
pub(super) async fn event_page(
    State(state): State<AppState>,
    signed: Signed,
    Path((id, event_id)): Path<(InstanceId, String)>,
    RawQuery(query): RawQuery,
) -> Answer {
    let instance = load(&state, &signed, id).await?;
    let uuid = parse_event_id(&event_id)?;
    let detail = state
        .store
        .event_detail(signed.principal.org_id, uuid)
        .await?
        .filter(|d| d.event.instance_id == id)
        .ok_or_else(|| ConsoleError::NotFound(format!("event {event_id} not found in instance {id}")))?;
    let v = &detail.event;
    let base = format!("/ui/instances/{id}");
    let title = format!("{} {} {}", v.event.event_type.as_str(), v.event.object_type, v.event.object_id);
    let body = html! {
        p.crumbs { a href=(base) { (instance.name) } " › event" }
        h1 { (title) }
        @if let Some(n) = done_notice(&query) { p.notice role="status" { (n) } }
        dl.facts {
            dt { "Event ID" } dd { code { (v.event.event_id) } }
            dt { "Type" } dd { (v.event.event_type.as_str()) }
            dt { "Resource" } dd { (v.event.object_type) }
            dt { "Object ID" } dd { code { (v.event.object_id) } }
            dt { "Changed" } dd { (layout::time(v.event.date)) }
            dt { "Recorded" } dd { (layout::time(v.created_at)) }
            dt { "Status" } dd #event-status { (v.oc_status().as_str()) }
        }
        section aria-labelledby="record-title" {
            h2 #record-title { "Record" }
            pre.json tabindex="0" aria-labelledby="record-title" { (layout::pretty(&v.event.record)) }
        }
        section aria-labelledby="notification-title" {
            h2 #notification-title { "Notification" }
            @match &detail.notification {
                None => p { "Not in a notification yet: it is sent with the next batch." },
                Some(n) => {
                    dl.facts {
                        dt { "Notification ID" } dd { code { (n.id) } }
                        dt { "Delivery status" } dd #notification-status { (format!("{:?}", n.status).to_lowercase()) }
                        dt { "Attempts" } dd { (n.attempts) }
                        dt { "Built" } dd { (layout::time(n.created_at)) }
                        @if let Some(at) = n.next_attempt_at { dt { "Next attempt" } dd { (layout::time(at)) } }
                        @if let Some(at) = n.delivered_at { dt { "Delivered" } dd { (layout::time(at)) } }
                        @if let Some(e) = &n.last_error { dt { "Last error" } dd { (e) } }
                    }
                    @if n.status == NotificationStatus::Failed {
                        form method="post" action=(format!("{base}/events/{}/redeliver", v.event.event_id)) {
                            (csrf_input(&signed))
                            button.primary type="submit" { "Redeliver" }
                        }
                    }
                }
            }
        }
        section aria-labelledby="attempts-title" {
            h2 #attempts-title { "Delivery attempts" }
            @if detail.attempts.is_empty() {
                p { "No attempt yet." }
            } @else {
                table #attempts {
                    thead { tr {
                        th scope="col" { "#" } th scope="col" { "Time" } th scope="col" { "Status code" }
                        th scope="col" { "Duration" } th scope="col" { "Error" }
                    } }
                    tbody {
                        @for a in &detail.attempts {
                            tr {
                                td.num { (a.number) }
                                td { (layout::time(a.attempt.at)) }
                                td.num { @if let Some(c) = a.attempt.status_code { (c) } @else { "—" } }
                                td.num { (a.attempt.latency_ms) " ms" }
                                td { @if let Some(e) = &a.attempt.error { (e) } }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::html(Page::new(&title).render(Some(&signed), body)))
}

/// `POST /ui/instances/{id}/events/{eventId}/redeliver`: the event's failed notification is due again now.
pub(super) async fn redeliver(
    State(state): State<AppState>,
    Path((id, event_id)): Path<(InstanceId, String)>,
    posted: Posted,
) -> Answer {
    let org = posted.signed.principal.org_id;
    load(&state, &posted.signed, id).await?;
    let uuid = parse_event_id(&event_id)?;
    let detail = state
        .store
        .event_detail(org, uuid)
        .await?
        .filter(|d| d.event.instance_id == id)
        .ok_or_else(|| ConsoleError::NotFound(format!("event {event_id} not found in instance {id}")))?;
    let done = match detail.notification {
        Some(n) if state.store.redeliver(org, n.id, state.clock.now()).await? => {
            state.wakers.dispatcher.notify_one();
            "redelivered"
        }
        _ => "not-failed",
    };
    Ok(Redirect::to(&format!("/ui/instances/{id}/events/{uuid}?done={done}")).into_response())
}
