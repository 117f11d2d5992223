//! An instance's change feed as the console shows it (`consumers.md` §1, §2): where the feed stands — the newest
//! change's position and cursor, the oldest change kept and retention's floor, how many changes are kept, a
//! `curl` line reading the feed — refreshed by the script from `feed.html`; and the **Replay events** form, which
//! sends kept events again through the store call `POST /instances/{id}/events/replay` makes
//! ([`ActivityStore::replay`](oc_model::ports::ActivityStore::replay)), with its problems beside its fields.
//!
//! Everything is read through the API's organization-scoped [`ActivityStore`](oc_model::ports::ActivityStore)
//! calls: no store call of the console's own.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use maud::{Markup, html};
use oc_model::event::EventType;
use oc_model::ids::InstanceId;
use oc_model::ports::{ChangeQuery, EventFilter, Instance, ReplayQuery};

use super::activity::tagged;
use super::instances::{self, Arrival, load};
use super::layout::{self, csrf_input};
use super::session::{FormData, Posted, Signed};
use super::{Answer, ConsoleError};
use crate::api::AppState;
use crate::api::changes::encode_cursor;

/// Where an instance's change feed stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FeedPosition {
    /// The position of the newest change kept, if any is.
    pub(super) newest: Option<i64>,
    /// The position of the oldest change kept, if any is.
    pub(super) oldest: Option<i64>,
    /// The highest position retention removed: a cursor before it answers `410 cursor_expired`.
    pub(super) floor: i64,
    /// How many changes are kept.
    pub(super) kept: u64,
}

/// Where the feed of instance `id` stands: two small reads (the newest event with the count, and the first page
/// of one change of the feed with its floor).
pub(super) async fn position(state: &AppState, signed: &Signed, id: InstanceId) -> Result<FeedPosition, ConsoleError> {
    let org = signed.principal.org_id;
    let newest = EventFilter { instance_id: Some(id), page: 1, page_size: 1, ..EventFilter::default() };
    let newest = state.store.list_events(org, &newest).await?;
    let first = ChangeQuery { instance: id, after: None, limit: 1, object_type: None, event_type: None };
    let first = state
        .store
        .changes(org, &first)
        .await?
        .ok_or_else(|| ConsoleError::NotFound(format!("instance {id} not found")))?;
    Ok(FeedPosition {
        newest: newest.items.first().map(|v| v.seq),
        oldest: first.changes.first().map(|c| c.seq),
        floor: first.floor,
        kept: newest.total,
    })
}

/// The `curl` line that reads the feed after `cursor` (from the oldest kept without one), with the instance's
/// `Element` token and the user's secrets as placeholders (the console knows none of them in clear).
pub(super) fn curl_line(public_url: &str, cursor: Option<&str>) -> String {
    let after = cursor.map(|c| format!("after={c}&")).unwrap_or_default();
    format!(
        "curl -sS -H 'Authorization: User <user secret>, Organization <organization secret>, Element <element \
         token>' '{public_url}{}/instances/changes?{after}wait=30'",
        crate::api::BASE
    )
}

fn position_text(seq: i64) -> Markup {
    html! { "position " (seq) ", cursor " code { (encode_cursor(seq)) } }
}

/// The feed section: refreshed by the script from `feed.html` (the same markup).
pub(super) fn feed_section(public_url: &str, base: &str, p: &FeedPosition) -> Markup {
    let cursor = p.newest.map(encode_cursor);
    html! {
        section #feed aria-labelledby="feed-title" data-refresh=(format!("{base}/feed.html")) {
            h2 #feed-title { "Change feed" }
            dl.facts {
                dt { "Newest change" }
                dd #feed-newest { @match p.newest { Some(seq) => (position_text(seq)), None => "none kept yet" } }
                dt { "Oldest kept" }
                dd #feed-oldest { @match p.oldest { Some(seq) => (position_text(seq)), None => "none kept yet" } }
                dt { "Floor" }
                dd #feed-floor {
                    "position " (p.floor)
                    " (retention removed the changes up to it; a cursor before it answers 410 cursor_expired)"
                }
                dt { "Changes kept" } dd #feed-kept { (p.kept) }
            }
            div.field {
                label for="feed-curl" { "Read the feed with curl" }
                p.hint #feed-curl-hint {
                    "The changes after the newest one, waiting up to 30 s for them; put the instance's Element token "
                    "and your secrets in place of the placeholders, and read on from each answer's nextCursor."
                }
                div.copy {
                    input #feed-curl type="text" readonly value=(curl_line(public_url, cursor.as_deref()))
                        aria-describedby="feed-curl-hint" spellcheck="false";
                    button #feed-copy type="button" data-copy="feed-curl" hidden { "Copy" }
                }
            }
        }
    }
}

/// `GET /ui/instances/{id}/feed.html`: the feed section, for the script to refresh it.
pub(super) async fn feed_html(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<InstanceId>,
    headers: HeaderMap,
) -> Answer {
    load(&state, &signed, id).await?;
    let p = position(&state, &signed, id).await?;
    let section = feed_section(&state.console.config.public_url, &format!("/ui/instances/{id}"), &p);
    Ok(tagged(&headers, "text/html; charset=utf-8", section.into_string().into_bytes()))
}

/// The replay form: what was typed, the problems of each field, and the count of the replay just done.
#[derive(Debug, Clone, Default)]
pub(super) struct ReplayForm {
    pub(super) since: String,
    pub(super) until: String,
    pub(super) object_type: String,
    pub(super) event_type: String,
    /// Per field id, its message.
    pub(super) problems: Vec<(&'static str, String)>,
    /// Events queued again by the replay just done.
    pub(super) queued: Option<u64>,
}

impl ReplayForm {
    fn from_form(form: &FormData) -> ReplayForm {
        ReplayForm {
            since: form.text("since"),
            until: form.text("until"),
            object_type: form.text("object_type"),
            event_type: form.text("event_type"),
            ..ReplayForm::default()
        }
    }

    fn problem(&self, id: &str) -> Option<&str> {
        self.problems.iter().find(|(f, _)| *f == id).map(|(_, m)| m.as_str())
    }

    /// The query of the form, or its problems put beside their fields.
    fn query(&mut self, instance: InstanceId) -> Option<ReplayQuery> {
        let since = match self.since.trim() {
            "" => {
                self.problems.push((SINCE, "Since: required — the first commit time to send again".into()));
                None
            }
            text => match instant(text) {
                Ok(t) => Some(t),
                Err(e) => {
                    self.problems.push((SINCE, format!("Since: {e}")));
                    None
                }
            },
        };
        let until = match self.until.trim() {
            "" => None,
            text => match instant(text) {
                Ok(t) => Some(t),
                Err(e) => {
                    self.problems.push((UNTIL, format!("Until: {e}")));
                    None
                }
            },
        };
        if let (Some(s), Some(u)) = (since, until)
            && u <= s
        {
            self.problems.push((UNTIL, "Until: must be after Since".into()));
        }
        let event_type = match self.event_type.trim() {
            "" => None,
            t => match EventType::parse(t) {
                Some(t) => Some(t),
                None => {
                    self.problems
                        .push((EVENT_TYPE, format!("Event type: expected CREATED, UPDATED or DELETED, found {t:?}")));
                    None
                }
            },
        };
        let object_type = Some(self.object_type.trim().to_string()).filter(|t| !t.is_empty());
        let since = since.filter(|_| self.problems.is_empty())?;
        Some(ReplayQuery { instance, since, until, object_type, event_type, event_id: None })
    }
}

const SINCE: &str = "replay-since";
const UNTIL: &str = "replay-until";
const OBJECT_TYPE: &str = "replay-object-type";
const EVENT_TYPE: &str = "replay-event-type";

/// A date-time typed in the form: RFC 3339, or as the console shows dates (`2026-03-21 12:34:56 UTC`), or a
/// `datetime-local` value, or a day; without a zone it is UTC.
pub(super) fn instant(text: &str) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let naive = text.strip_suffix("UTC").or_else(|| text.strip_suffix(['Z', 'z'])).unwrap_or(text).trim();
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(naive, format) {
            return Ok(t.and_utc());
        }
    }
    if let Some(t) = NaiveDate::parse_from_str(naive, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)) {
        return Ok(t.and_utc());
    }
    Err(format!(
        "expected a date-time in UTC such as 2026-03-21 12:34:56 (as this page shows dates) or RFC 3339 \
         (2026-03-21T12:34:56Z), found {text:?}"
    ))
}

/// A text input of the replay form with its label, hint and problem.
fn text_input(id: &str, name: &str, label: &str, value: &str, hint: &str, form: &ReplayForm) -> Markup {
    let problem = form.problem(id);
    let hint_id = format!("{id}-hint");
    let error_id = format!("{id}-error");
    let described = match problem {
        Some(_) => format!("{error_id} {hint_id}"),
        None => hint_id.clone(),
    };
    html! {
        div.field {
            label for=(id) { (label) }
            p.hint #(hint_id) { (hint) }
            input id=(id) name=(name) type="text" value=(value) autocomplete="off" spellcheck="false"
                aria-invalid=[problem.map(|_| "true")] aria-describedby=(described);
            @if let Some(m) = problem { div.error #(error_id) role="alert" { p { (m) } } }
        }
    }
}

/// A select of the replay form: "Any" first, then `options`.
fn select(id: &str, name: &str, label: &str, value: &str, options: &[String], form: &ReplayForm) -> Markup {
    let problem = form.problem(id);
    let error_id = format!("{id}-error");
    html! {
        div.field {
            label for=(id) { (label) }
            select id=(id) name=(name) aria-invalid=[problem.map(|_| "true")]
                aria-describedby=[problem.map(|_| error_id.clone())] {
                option value="" selected[value.is_empty()] { "Any" }
                @for o in options { option value=(o) selected[value == o] { (o) } }
                @if !value.is_empty() && !options.iter().any(|o| o == value) {
                    option value=(value) selected { (value) }
                }
            }
            @if let Some(m) = problem { div.error #(error_id) role="alert" { p { (m) } } }
        }
    }
}

/// The replay section of an instance's page.
pub(super) fn replay_section(signed: &Signed, base: &str, resources: &[String], form: &ReplayForm) -> Markup {
    let event_types: Vec<String> =
        [EventType::Created, EventType::Updated, EventType::Deleted].iter().map(|t| t.as_str().to_string()).collect();
    html! {
        section #replay aria-labelledby="replay-title" {
            h2 #replay-title { "Replay" }
            p { "Sends the kept events committed in a range again, each in a new notification with the same event id, "
                "in order per object (as POST /instances/{id}/events/replay does). Events still on their way are left "
                "to arrive." }
            @if let Some(n) = form.queued {
                p.notice #replay-status role="status" {
                    (n) @if n == 1 { " event queued again" } @else { " events queued again" }
                    @if n == 0 { ": none in that range, or they are on their way already." } @else { "." }
                }
            }
            form.stack.replay method="post" action=(format!("{base}/replay#replay")) novalidate {
                (csrf_input(signed))
                div.range {
                    (text_input(SINCE, "since", "Since", &form.since,
                        "Committed at or after (UTC): 2026-03-21 12:34:56, as this page shows dates, or RFC 3339.", form))
                    (text_input(UNTIL, "until", "Until", &form.until, "Optional: committed before (UTC).", form))
                }
                div.range {
                    (select(OBJECT_TYPE, "object_type", "Object type", &form.object_type, resources, form))
                    (select(EVENT_TYPE, "event_type", "Event type", &form.event_type, &event_types, form))
                }
                button.primary type="submit" { "Replay events" }
            }
        }
    }
}

/// The replay section's state from the address after a replay (`?replayed=N`: a number, never free text).
pub(super) fn replayed(query: &Option<String>) -> ReplayForm {
    let queued = url::form_urlencoded::parse(query.as_deref().unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "replayed")
        .and_then(|(_, v)| v.parse::<u64>().ok());
    ReplayForm { queued, ..ReplayForm::default() }
}

/// `POST /ui/instances/{id}/replay`: the replay of the API, from the form; back to the page with the count, or
/// the page again (400) with each problem beside its field and the values typed.
pub(super) async fn replay(State(state): State<AppState>, Path(id): Path<InstanceId>, posted: Posted) -> Answer {
    let signed = &posted.signed;
    let instance: Instance = load(&state, signed, id).await?;
    let mut form = ReplayForm::from_form(&posted.form);
    let Some(query) = form.query(id) else {
        let view = instances::instance_view_with(&state, signed, &instance, 1, Arrival::Visit, &form).await?;
        return Ok((StatusCode::BAD_REQUEST, layout::html(view)).into_response());
    };
    let count = state
        .store
        .replay(signed.principal.org_id, &query, state.clock.now())
        .await?
        .ok_or_else(|| ConsoleError::NotFound(format!("instance {id} not found")))?;
    if count > 0 {
        state.wakers.dispatcher.notify_one();
    }
    tracing::info!(instance = id, count, "events replayed from the console");
    Ok(Redirect::to(&format!("/ui/instances/{id}?replayed={count}#replay")).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_are_read_as_typed_or_as_shown() {
        let want = DateTime::parse_from_rfc3339("2026-03-21T12:34:56Z").unwrap().with_timezone(&Utc);
        for text in [
            "2026-03-21T12:34:56Z",
            "2026-03-21T13:34:56+01:00",
            "2026-03-21 12:34:56 UTC",
            "2026-03-21 12:34:56",
            " 2026-03-21T12:34:56 ",
        ] {
            assert_eq!(instant(text), Ok(want), "{text}");
        }
        assert_eq!(instant("2026-03-21T12:34").unwrap(), want - chrono::Duration::seconds(56));
        assert_eq!(instant("2026-03-21").unwrap().to_rfc3339(), "2026-03-21T00:00:00+00:00");
        assert_eq!(instant("2026-03-21 12:34:56.250 UTC").unwrap(), want + chrono::Duration::milliseconds(250));
        for bad in ["yesterday", "21/03/2026", "2026-13-01", ""] {
            assert!(instant(bad).unwrap_err().contains("expected a date-time"), "{bad}");
        }
    }

    #[test]
    fn the_curl_line_reads_the_id_less_feed_with_placeholders() {
        let line = curl_line("http://ocpoll.test", Some("abc"));
        assert!(line.contains("Element <element token>"), "{line}");
        assert!(line.contains("'http://ocpoll.test/elements/api-v2/instances/changes?after=abc&wait=30'"), "{line}");
        assert!(curl_line("http://o", None).ends_with("/instances/changes?wait=30'"));
    }
}
