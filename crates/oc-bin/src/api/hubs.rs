//! `GET /hubs/{hub}/{resource}` and `GET /hubs/{hub}/{resource}/{id}`: the read-only hub passthrough, the same
//! query path the poller uses, with the instance's `Element` token, as Open Connectors clients use it.
//!
//! - A list answers one page with `elements-returned-count`, `elements-total-count` (when the provider gave a
//!   total and nothing is filtered locally) and, when there is a further page, `elements-next-page-token`: a
//!   sealed token ([`page_token`](super::page_token)) carrying the provider's cursor, bound to the instance and
//!   the query. `?nextPage=<token>` (with the same `where`, `orderBy`, `fields`) reads the page after; a
//!   forged, truncated or foreign token is a 400 naming `nextPage`. A page that the local part of the `where`
//!   filters to nothing is not answered empty while the list goes on (a client stops at an empty page): the next
//!   pages are read into it, up to [`MAX_READS`].
//! - Provider calls go in the interactive lane ([`Lane::Interactive`]): before the polls, failing fast; a
//!   throttled provider is a 429 with `Retry-After`.
//! - Provider calls have a deadline (`--sage-call-deadline-seconds`, [`ApiLimits`]): past it, a 504
//!   `provider_timeout`, while the calls go on to their end in a task of their own. A `pageSize` over the
//!   provider's largest page is capped at it, with a warning stating the cap.
//! - Problems of the query are a 400 listing each with the parameter it is in (`where`, `orderBy`, `fields`,
//!   `pageSize`, `page`, `nextPage`).

use std::ops::Range;

use std::future::Future;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::{Extension, Json};
use oc_model::Problem;
use oc_model::ports::{
    CompiledQuery, Feed, FieldNeeds, Lane, PageCursor, PageRequest, Provider, ProviderError, QueryError, RecordRequest,
};
use serde_json::Value;

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;
use super::instances::{load_own, session};
use super::limits::ApiLimits;
use super::page_token::{PagePosition, QueryDigest};

/// Default page size of the passthrough (Open Connectors' default).
const DEFAULT_PAGE_SIZE: u32 = 200;

/// Most provider pages read for one answer when the local part of the `where` filters them to nothing.
const MAX_READS: usize = 5;

/// The hub parameters as Open Connectors spells them, for problems (matched without regard to case).
const PARAMETERS: [&str; 6] = ["where", "pageSize", "page", "orderBy", "fields", "nextPage"];

/// `GET /hubs/{hub}/{resource}?where=&orderBy=&fields=&pageSize=&page=&nextPage=`.
pub(super) async fn list(
    State(state): State<AppState>,
    Extension(limits): Extension<ApiLimits>,
    caller: Caller,
    Path((hub, resource)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<(HeaderMap, Json<Vec<Value>>), ApiError> {
    let instance = load_own(&state, &caller).await?;
    let provider = state.provider(&instance.element_key)?.clone();
    check_hub(provider.as_ref(), &hub)?;
    let raw = query.unwrap_or_default();
    let parts = parts(&raw);
    let tokens: Vec<&Part<'_>> = parts.iter().filter(|p| p.is("nextPage")).collect();
    if tokens.len() > 1 {
        return Err(invalid_query("nextPage", "`nextPage` is given twice".to_string()));
    }
    let token = tokens.first().map(|p| p.value()).filter(|t| !t.is_empty());
    let max = provider.spec().max_page_size;
    let mut capped = Vec::new();
    let rest = parts
        .iter()
        .filter(|p| !p.is("nextPage"))
        .map(|p| match capped_page_size(p, max) {
            Some(text) => {
                capped.push(format!(
                    "pageSize {} is more than the largest page of {} ({max}): pages hold {max}",
                    p.value().trim(),
                    provider.spec().element.name
                ));
                text
            }
            None => p.text.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&");
    let url = hub_url(&hub, &resource, &rest);
    let compiled = compile(provider.as_ref(), &url, &rest)?;
    let digest = QueryDigest::of(&hub, &compiled);
    let mut warnings = compiled.warnings.clone();
    warnings.extend(capped);
    let (mut cursor, page_size) = match token {
        None => (PageCursor::First, compiled.page_size.unwrap_or(DEFAULT_PAGE_SIZE).min(max)),
        Some(token) => {
            let position =
                state.page_tokens.open(token, instance.id, &digest).map_err(|e| invalid_query("nextPage", e))?;
            if let Some(size) = compiled.page_size
                && size.min(max) != position.page_size
            {
                return Err(invalid_query(
                    "pageSize",
                    format!(
                        "the page size cannot change while paging: the pages of this token hold {}; give that or \
                         leave pageSize out, or start again without nextPage",
                        position.page_size
                    ),
                ));
            }
            if compiled.page.is_some() {
                warnings.push("page is ignored with nextPage: the token says where the list stands".into());
            }
            (PageCursor::Next(position.cursor), position.page_size)
        }
    };
    let session = session(&state, &instance)?.in_lane(Lane::Interactive);
    let filtered = compiled.local.is_some();
    let reader = provider.clone();
    let reads = async move {
        let mut records: Vec<Value> = Vec::new();
        let mut total = None;
        let mut next = None;
        for _ in 0..MAX_READS {
            let request = PageRequest { query: &compiled, feed: Feed::Changes, cursor, page_size };
            let page = reader.fetch_page(&session, &request).await?;
            total = page.total;
            records.extend(match &compiled.local {
                Some(filter) => page.records.into_iter().filter(|r| filter.matches(r)).collect(),
                None => page.records,
            });
            next = page.next;
            match &next {
                Some(n) if records.is_empty() => cursor = PageCursor::Next(n.clone()),
                _ => break,
            }
        }
        Ok((records, total, next))
    };
    let (records, total, next) = within_deadline(provider.as_ref(), &limits, &url, &rest, reads).await?;
    let mut headers = HeaderMap::new();
    let mut put = |k: &'static str, v: String| {
        if let Ok(v) = HeaderValue::from_str(&v) {
            headers.insert(k, v);
        }
    };
    put("elements-returned-count", records.len().to_string());
    // the provider's total counts what it holds, not what the local part of the `where` keeps
    if let (Some(total), false) = (total, filtered) {
        put("elements-total-count", total.to_string());
    }
    if let Some(cursor) = next {
        put(
            "elements-next-page-token",
            state.page_tokens.seal(instance.id, &digest, &PagePosition { cursor, page_size }),
        );
    }
    if !warnings.is_empty() {
        put("x-ocpoll-warnings", warnings.join("; ").replace(['\r', '\n'], " "));
    }
    Ok((headers, Json(records)))
}

/// `GET /hubs/{hub}/{resource}/{id}[?fields=]`: one record, through the provider's
/// [`fetch_one`](Provider::fetch_one); 404 when the provider has none in the resource (a vendor's id under
/// `customers`).
pub(super) async fn one(
    State(state): State<AppState>,
    Extension(limits): Extension<ApiLimits>,
    caller: Caller,
    Path((hub, resource, id)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
) -> Result<(HeaderMap, Json<Value>), ApiError> {
    let instance = load_own(&state, &caller).await?;
    let provider = state.provider(&instance.element_key)?.clone();
    check_hub(provider.as_ref(), &hub)?;
    let raw = query.unwrap_or_default();
    let problems: Vec<Problem> = parts(&raw)
        .iter()
        .filter_map(|p| p.parameter().filter(|name| *name != "fields"))
        .map(|name| Problem::new(name, format!("a read by id takes only fields; `{name}` applies to lists")))
        .collect();
    if !problems.is_empty() {
        return Err(ApiError::InvalidQuery { message: "the query cannot be applied".into(), problems });
    }
    let url = hub_url(&hub, &resource, &raw);
    let compiled = compile(provider.as_ref(), &url, &raw)?;
    let warnings = compiled.warnings.clone();
    let session = session(&state, &instance)?.in_lane(Lane::Interactive);
    let reader = provider.clone();
    let wanted = id.clone();
    let read = async move { reader.fetch_one(&session, &RecordRequest { query: &compiled, id: &wanted }).await };
    let record = within_deadline(provider.as_ref(), &limits, &url, &raw, read).await?;
    let record = record.ok_or_else(|| ApiError::NotFound(format!("no {resource} with id {id:?}")))?;
    let mut headers = HeaderMap::new();
    if !warnings.is_empty()
        && let Ok(v) = HeaderValue::from_str(&warnings.join("; ").replace(['\r', '\n'], " "))
    {
        headers.insert("x-ocpoll-warnings", v);
    }
    Ok((headers, Json(record)))
}

/// Runs `work` (calls of the provider) in a task of its own and waits for it until the deadline of calls waiting
/// for the provider: past it, a 504 `provider_timeout` naming the provider, while the task goes on to its end (a
/// token refresh under way completes and is saved; the provider's own timeouts bound it). Query problems the
/// provider finds are named by their parameter, as those of the compiler are.
async fn within_deadline<T: Send + 'static>(
    provider: &dyn Provider,
    limits: &ApiLimits,
    url: &str,
    query: &str,
    work: impl Future<Output = Result<T, ProviderError>> + Send + 'static,
) -> Result<T, ApiError> {
    let task = tokio::spawn(work);
    match tokio::time::timeout(limits.provider_deadline, task).await {
        Ok(Ok(Ok(value))) => Ok(value),
        Ok(Ok(Err(ProviderError::Query(e)))) => Err(query_problems(url, query, e)),
        Ok(Ok(Err(e))) => Err(ApiError::from(e)),
        Ok(Err(e)) => Err(ApiError::Internal(format!("the provider call failed: {e}"))),
        Err(_) => Err(ApiError::ProviderTimeout(format!(
            "{} did not answer within {} s (--sage-call-deadline-seconds); try again later",
            provider.spec().element.name,
            limits.provider_deadline.as_secs()
        ))),
    }
}

/// `pageSize=N` with `N` a whole number over `max` (however large), as `pageSize=max`: pages are capped at the
/// provider's largest, as documented, rather than a number too large to read being refused.
fn capped_page_size(part: &Part<'_>, max: u32) -> Option<String> {
    if !part.is("pageSize") {
        return None;
    }
    let value = part.value().trim();
    let digits = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
    let over = value.trim_start_matches('0').len() > 10 || value.parse::<u64>().is_ok_and(|n| n > u64::from(max));
    (digits && over).then(|| format!("{}={max}", part.key()))
}

/// A 404 unless the instance's provider serves `hub`.
fn check_hub(provider: &dyn Provider, hub: &str) -> Result<(), ApiError> {
    let served = &provider.spec().element.hub;
    if served != hub {
        return Err(ApiError::NotFound(format!("hub {hub:?} not found; this instance's hub is {served:?}")));
    }
    Ok(())
}

fn hub_url(hub: &str, resource: &str, query: &str) -> String {
    if query.is_empty() { format!("/hubs/{hub}/{resource}") } else { format!("/hubs/{hub}/{resource}?{query}") }
}

/// Compiles `url` (whose query string is `query`), every problem named by the parameter it is in.
fn compile(provider: &dyn Provider, url: &str, query: &str) -> Result<CompiledQuery, ApiError> {
    provider.compile(url, &FieldNeeds::default()).map_err(|e| query_problems(url, query, e))
}

/// A 400 with one problem of the hub parameter `name`.
fn invalid_query(name: &str, message: impl ToString) -> ApiError {
    let message = message.to_string();
    ApiError::InvalidQuery { message: message.clone(), problems: vec![Problem::new(name, message)] }
}

/// The problems of a hub URL, each at the parameter its span is in (`resource` for the path).
fn query_problems(url: &str, query: &str, error: QueryError) -> ApiError {
    let query_start = url.len() - query.len();
    let parts = parts(query);
    let problems = error
        .0
        .into_iter()
        .map(|d| {
            let name = match &d.span {
                Some(span) if span.start >= query_start && !query.is_empty() => {
                    let at = span.start - query_start;
                    parts
                        .iter()
                        .find(|p| p.range.contains(&at) || p.range.end == at)
                        .map(|p| p.parameter().unwrap_or(p.key()).to_string())
                        .unwrap_or_else(|| "query".to_string())
                }
                Some(_) => "resource".to_string(),
                None => "query".to_string(),
            };
            Problem::new(name, d.rendered)
        })
        .collect();
    ApiError::InvalidQuery { message: "the query cannot be translated".into(), problems }
}

/// One `key=value` of a raw query string.
#[derive(Debug)]
struct Part<'a> {
    text: &'a str,
    range: Range<usize>,
}

impl<'a> Part<'a> {
    fn key(&self) -> &'a str {
        self.text.split_once('=').map_or(self.text, |(k, _)| k)
    }

    fn value(&self) -> &'a str {
        self.text.split_once('=').map_or("", |(_, v)| v)
    }

    fn is(&self, parameter: &str) -> bool {
        self.key().eq_ignore_ascii_case(parameter)
    }

    /// The hub parameter this is, as Open Connectors spells it.
    fn parameter(&self) -> Option<&'static str> {
        PARAMETERS.into_iter().find(|p| self.is(p))
    }
}

/// The parts of a raw query string. An `&` ends a part only when what follows starts like a parameter (a name,
/// then `=`, `&` or the end), so that an `&` inside a `where` string (`name='A&B'`) stays in the value.
fn parts(query: &str) -> Vec<Part<'_>> {
    // an empty part (`&&`, a trailing `&`) also ends one
    let starts_parameter = |rest: &str| {
        let segment = rest.split('&').next().unwrap_or("");
        let name = segment.split_once('=').map_or(segment, |(k, _)| k);
        segment.is_empty()
            || (!name.is_empty()
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'[' | b']' | b'.')))
    };
    let mut parts = Vec::new();
    let mut start = 0;
    for (i, b) in query.bytes().enumerate() {
        if b == b'&' && starts_parameter(&query[i + 1..]) {
            if i > start {
                parts.push(Part { text: &query[start..i], range: start..i });
            }
            start = i + 1;
        }
    }
    if query.len() > start {
        parts.push(Part { text: &query[start..], range: start..query.len() });
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(query: &str) -> Vec<(&str, &str)> {
        parts(query).iter().map(|p| (p.key(), p.value())).collect()
    }

    #[test]
    fn query_parts_keep_an_ampersand_inside_a_where_string() {
        assert_eq!(keys(""), vec![]);
        assert_eq!(keys("where=a='x'&pageSize=2"), vec![("where", "a='x'"), ("pageSize", "2")]);
        assert_eq!(keys("where=name='A&B'&nextPage=abc"), vec![("where", "name='A&B'"), ("nextPage", "abc")]);
        assert_eq!(keys("where=name='A & B'&x"), vec![("where", "name='A & B'"), ("x", "")]);
        assert_eq!(keys("&&fields=a,b&"), vec![("fields", "a,b")]);
        let p = parts("where=a&orderBy=b");
        assert_eq!((p[1].range.clone(), p[1].parameter()), (8..17, Some("orderBy")));
        assert_eq!(parts("ORDERBY=x")[0].parameter(), Some("orderBy"));
        assert_eq!(parts("foo=x")[0].parameter(), None);
    }

    #[test]
    fn problems_are_named_by_their_parameter() {
        let url = "/hubs/finance/contacts?where=a = &orderBy=name";
        let query = "where=a = &orderBy=name";
        let at = |s: &str| url.find(s).unwrap();
        let diagnostic = |start: usize, len: usize| oc_model::ports::Diagnostic {
            message: "m".into(),
            span: Some(start..start + len),
            rendered: format!("m at {start}"),
        };
        let error = QueryError(vec![
            diagnostic(at("a = "), 3),
            diagnostic(at("name"), 4),
            diagnostic(at("contacts"), 8),
            diagnostic(url.len(), 0),
        ]);
        let ApiError::InvalidQuery { problems, .. } = query_problems(url, query, error) else { panic!() };
        let names: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(names, ["where", "orderBy", "resource", "orderBy"]);
    }
}
