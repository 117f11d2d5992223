//! The HTTP face: OAuth (`/oauth2/auth/central`, `/token`, `/revoke`), the API under `/v3.1`, the `Date` header
//! at the simulator's clock and the request log. The admin API lives in `admin.rs`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{any, get, post};
use chrono::Duration;
use serde_json::{Map, Value, json};

use crate::faults::{Injected, PageAction, PageHook};
use crate::list::{Attributes, ListRequest, check_declared, parse_pairs, write_projected};
use crate::oauth::{Authorize, AuthorizeError};
use crate::requests::LoggedRequest;
use crate::sage_error::ApiError;
use crate::sim::{DeleteError, Deleted, Inner, delete_or_void, lock};
use crate::store::{Data, Stamp};
use crate::swagger::{self, Endpoint};
use crate::{admin, timefmt};

type Shared = Arc<Inner>;

pub(crate) fn router(inner: Shared) -> Router {
    let mut app = Router::new()
        .route("/oauth2/auth/central", get(authorize).post(consent))
        .route("/token", post(token))
        .route("/revoke", post(revoke))
        .route("/v3.1/{*path}", any(api))
        .route("/v3.1", any(api_root))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(inner.clone(), observe));
    if inner.config.admin {
        app = app.merge(admin::routes().layer(middleware::from_fn_with_state(inner.clone(), date_only)));
    }
    app.with_state(inner)
}

fn date_header(inner: &Inner) -> HeaderValue {
    HeaderValue::from_str(&timefmt::http_date(inner.now()))
        .unwrap_or(HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"))
}

/// Sets `Date` at the simulator's clock and records the request.
async fn observe(State(inner): State<Shared>, request: Request, next: Next) -> Response {
    let at = inner.now();
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().map(str::to_owned);
    let headers = request.headers();
    let business = headers.get("x-business").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let authorized = headers.contains_key(header::AUTHORIZATION);
    let mut response = next.run(request).await;
    response.headers_mut().insert(header::DATE, date_header(&inner));
    let status = response.status().as_u16();
    lock(&inner.log).push(LoggedRequest { seq: 0, at, method, path, query, business, authorized, status });
    response
}

/// Sets `Date` only (the admin API is not logged).
async fn date_only(State(inner): State<Shared>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    response.headers_mut().insert(header::DATE, date_header(&inner));
    response
}

async fn not_found() -> Response {
    ApiError::not_found("No route matches this path").into_response()
}

// ---- OAuth ----

fn oauth_error_page(code: &str, detail: &str) -> Response {
    let body = format!(
        "<!doctype html><html><head><title>Sage sign-in error</title></head><body><h1>Authorization error</h1>\
         <p><code>{}</code>: {}</p></body></html>",
        escape(code),
        escape(detail)
    );
    (StatusCode::BAD_REQUEST, Html(body)).into_response()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

fn redirect_with(uri: &str, params: &[(&str, &str)]) -> Response {
    match url::Url::parse(uri) {
        Ok(mut u) => {
            {
                let mut q = u.query_pairs_mut();
                for (k, v) in params {
                    q.append_pair(k, v);
                }
            }
            match HeaderValue::from_str(u.as_str()) {
                Ok(location) => (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
                Err(_) => oauth_error_page("invalid_request", "redirect_uri cannot be a header value"),
            }
        }
        Err(e) => oauth_error_page("invalid_request", &format!("redirect_uri is not a url: {e}")),
    }
}

fn approve(inner: &Inner, a: &Authorize) -> Response {
    let code = lock(&inner.oauth).issue_code(a, inner.now());
    let mut params = vec![("code", code.as_str()), ("country", "GB")];
    if let Some(state) = &a.state {
        params.push(("state", state));
    }
    redirect_with(&a.redirect_uri, &params)
}

fn refuse(a_uri: &str, state: Option<&str>, error: &str) -> Response {
    let mut params = vec![("error", error)];
    if let Some(s) = state {
        params.push(("state", s));
    }
    redirect_with(a_uri, &params)
}

fn check_authorize(inner: &Inner, pairs: &[(String, String)]) -> Result<Authorize, Box<Response>> {
    let checked = lock(&inner.oauth).check_authorize(pairs);
    checked.map_err(|e| {
        Box::new(match e {
            AuthorizeError::Page(code, detail) => oauth_error_page(code, &detail),
            AuthorizeError::Redirect(code) => {
                let last = |n: &str| pairs.iter().rev().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
                refuse(last("redirect_uri").unwrap_or(""), last("state"), code)
            }
        })
    })
}

/// `GET /oauth2/auth/central`: approve at once (302 with the code), or show the consent page.
async fn authorize(State(inner): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let pairs = parse_pairs(query.as_deref());
    let a = match check_authorize(&inner, &pairs) {
        Ok(a) => a,
        Err(response) => return *response,
    };
    if !inner.config.consent_page {
        return approve(&inner, &a);
    }
    let hidden: String = pairs
        .iter()
        .map(|(k, v)| format!("<input type=\"hidden\" name=\"{}\" value=\"{}\">", escape(k), escape(v)))
        .collect();
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Sage Accounting (simulator): authorize</title></head>\
         <body><h1>Allow <code>{}</code> to access your Sage Accounting data?</h1>\
         <p>Scope: {}. Businesses: all of the simulated user's.</p>\
         <form method=\"post\" action=\"/oauth2/auth/central\">{hidden}\
         <button type=\"submit\" name=\"decision\" value=\"approve\">Approve</button> \
         <button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button></form></body></html>",
        escape(&a.client_id),
        escape(&a.scope)
    );
    Html(page).into_response()
}

/// `POST /oauth2/auth/central`: the consent page's answer.
async fn consent(State(inner): State<Shared>, body: Bytes) -> Response {
    let pairs = parse_pairs(std::str::from_utf8(&body).ok());
    let a = match check_authorize(&inner, &pairs) {
        Ok(a) => a,
        Err(response) => return *response,
    };
    match pairs.iter().rev().find(|(k, _)| k == "decision").map(|(_, v)| v.as_str()) {
        Some("approve") => approve(&inner, &a),
        _ => refuse(&a.redirect_uri, a.state.as_deref(), "access_denied"),
    }
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response()
}

fn token_error(e: crate::oauth::TokenError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    (status, axum::Json(json!({"error": e.code()}))).into_response()
}

/// `POST /token`.
async fn token(State(inner): State<Shared>, body: Bytes) -> Response {
    let pairs = parse_pairs(std::str::from_utf8(&body).ok());
    let now = inner.now();
    let result = lock(&inner.oauth).token(&pairs, now);
    match result {
        Ok(tokens) => axum::Json(tokens).into_response(),
        Err(e) => token_error(e),
    }
}

/// `POST /revoke`.
async fn revoke(State(inner): State<Shared>, body: Bytes) -> Response {
    let pairs = parse_pairs(std::str::from_utf8(&body).ok());
    let result = lock(&inner.oauth).revoke(&pairs);
    match result {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => token_error(e),
    }
}

// ---- API ----

async fn api_root(state: State<Shared>, method: Method, headers: HeaderMap, query: RawQuery, body: Bytes) -> Response {
    api(state, method, headers, Path(String::new()), query, body).await
}

/// Everything under `/v3.1`: authentication, business, injected faults, rate limit, then the call itself.
async fn api(
    State(inner): State<Shared>,
    method: Method,
    headers: HeaderMap,
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let latency = lock(&inner.faults).latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let mut business = None;
    let result = serve_api(&inner, &method, &headers, &path, query.as_deref(), &body, &mut business);
    let mut response = match result {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    if let Some(b) = business.and_then(|b| HeaderValue::from_str(&b).ok()) {
        response.headers_mut().insert("x-business", b);
    }
    response
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

fn serve_api(
    inner: &Inner,
    method: &Method,
    headers: &HeaderMap,
    path: &str,
    query: Option<&str>,
    body: &[u8],
    business_out: &mut Option<String>,
) -> Result<Response, ApiError> {
    let now = inner.now();
    let granted = {
        let token = bearer(headers).ok_or_else(ApiError::unauthorized)?;
        lock(&inner.oauth).check(token, now).ok_or_else(ApiError::unauthorized)?
    };
    let business = match headers.get("x-business").map(|v| v.to_str().unwrap_or("")) {
        Some(b) => {
            if lock(&inner.data).business(b).is_none() {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "MultiUserAccessDenied",
                    "You do not have access to this business",
                )
                .with_source("X-Business"));
            }
            b.to_owned()
        }
        None => inner.lead_business(),
    };
    *business_out = Some(business.clone());
    let injected = lock(&inner.faults).gate();
    match injected {
        Injected::Throttle(retry_after) => return Err(ApiError::throttled(retry_after)),
        Injected::Fail => return Err(ApiError::unexpected()),
        Injected::None => {}
    }
    rate_limit(inner, &business, now)?;
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let pairs = parse_pairs(query);
    let writes = !matches!(*method, Method::GET | Method::HEAD);
    if writes && granted.read_only {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "AccessDenied", "This token has read-only access"));
    }
    match segments.as_slice() {
        ["businesses"] if method == Method::GET => list_businesses(inner, pairs),
        ["businesses", key] if method == Method::GET => get_business(inner, key, pairs),
        [name] => {
            let endpoint =
                swagger::endpoint(name).ok_or_else(|| ApiError::not_found(format!("No resource /{name}")))?;
            match *method {
                Method::GET => list(inner, endpoint, &business, pairs),
                Method::POST if endpoint.has('C') => create(inner, endpoint, &business, pairs, body),
                _ => Err(method_not_allowed(method, name)),
            }
        }
        [name, key] => {
            let endpoint =
                swagger::endpoint(name).ok_or_else(|| ApiError::not_found(format!("No resource /{name}")))?;
            match *method {
                Method::GET => get_one(inner, endpoint, &business, key, pairs),
                Method::PUT if endpoint.has('U') => update(inner, endpoint, &business, key, pairs, body),
                Method::DELETE if endpoint.has('D') => delete(inner, endpoint, &business, key, pairs),
                _ => Err(method_not_allowed(method, name)),
            }
        }
        _ => Err(ApiError::not_found("No route matches this path")),
    }
}

fn method_not_allowed(method: &Method, name: &str) -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", format!("{method} is not supported on /{name}"))
}

/// The per-business budget: `rate_limit` requests in any 60 s of the simulator's clock.
fn rate_limit(inner: &Inner, business: &str, now: chrono::DateTime<chrono::Utc>) -> Result<(), ApiError> {
    let limit = inner.rate_limit.load(Ordering::Relaxed) as usize;
    if limit == 0 {
        return Ok(());
    }
    let mut data = lock(&inner.data);
    let Some(b) = data.businesses.iter_mut().find(|b| b.id == business) else { return Ok(()) };
    let window_start = now - Duration::seconds(60);
    while b.window.front().is_some_and(|t| *t <= window_start || *t > now) {
        b.window.pop_front();
    }
    if b.window.len() >= limit {
        return Err(ApiError::throttled(None));
    }
    b.window.push_back(now);
    Ok(())
}

fn list_businesses(inner: &Inner, pairs: Vec<(String, String)>) -> Result<Response, ApiError> {
    let request = ListRequest::simple(pairs, "/businesses")?;
    let items: Vec<Map<String, Value>> = lock(&inner.data)
        .businesses
        .iter()
        .filter_map(|b| match b.to_json() {
            Value::Object(m) => Some(m),
            _ => None,
        })
        .collect();
    let refs: Vec<&Map<String, Value>> = items.iter().collect();
    Ok(json_response(StatusCode::OK, request.render("businesses", &refs).body))
}

fn get_business(inner: &Inner, key: &str, pairs: Vec<(String, String)>) -> Result<Response, ApiError> {
    check_declared(&pairs, |k| k == "attributes", "GET", "/businesses/{key}")?;
    let data = lock(&inner.data);
    let b = match key {
        "lead" => data.businesses.first(),
        id => data.business(id),
    };
    let b = b.ok_or_else(|| ApiError::not_found(format!("No business {key}")))?;
    let Value::Object(fields) = b.to_json() else { return Err(ApiError::unexpected()) };
    Ok(single(&fields, attributes_or_all(&pairs), StatusCode::OK))
}

fn attributes_or_all(pairs: &[(String, String)]) -> Attributes {
    match pairs.iter().rev().find(|(k, _)| k == "attributes") {
        Some((_, v)) => Attributes::parse(Some(v)),
        None => Attributes::All,
    }
}

fn single(fields: &Map<String, Value>, attributes: Attributes, status: StatusCode) -> Response {
    let mut body = Vec::with_capacity(1024);
    write_projected(&mut body, fields, &attributes);
    json_response(status, body)
}

fn list(
    inner: &Inner,
    endpoint: &'static Endpoint,
    business: &str,
    pairs: Vec<(String, String)>,
) -> Result<Response, ApiError> {
    if !endpoint.has('L') {
        return Err(method_not_allowed(&Method::GET, endpoint.name));
    }
    let request = ListRequest::parse(endpoint, pairs)?;
    let now = inner.now();
    let delay = lock(&inner.faults).visibility_delay();
    let page = {
        let data = lock(&inner.data);
        let collection = data.business(business).and_then(|b| b.collection(endpoint.name));
        request.run(endpoint.name, collection, now, delay)
    };
    let hooks = lock(&inner.faults).take_hooks(business, endpoint.name, page.page);
    for hook in hooks {
        apply_hook(inner, business, endpoint, &page.ids, hook);
    }
    Ok(json_response(StatusCode::OK, page.body))
}

/// Applies a page hook's mutation at the simulator's clock.
fn apply_hook(inner: &Inner, business: &str, endpoint: &'static Endpoint, served: &[String], hook: PageHook) {
    let stamp = inner.stamp();
    let id = inner.new_id();
    let mut data = lock(&inner.data);
    let outcome = match hook.action {
        PageAction::DeleteFromPage { index } => match served.get(index) {
            Some(id) => {
                delete_or_void(&mut data, business, endpoint, id, Some("page hook"), stamp).map(|_| ()).map_err(|_| ())
            }
            None => Err(()),
        },
        PageAction::UpdateFromPage { index, fields } => match served.get(index) {
            Some(id) => data.update(business, endpoint, id, &fields, stamp).map(|_| ()).map_err(|_| ()),
            None => Err(()),
        },
        PageAction::Create { fields } => {
            data.create(business, endpoint, &fields, id, None, stamp).map(|_| ()).map_err(|_| ())
        }
        PageAction::Update { id, fields } => {
            data.update(business, endpoint, &id, &fields, stamp).map(|_| ()).map_err(|_| ())
        }
        PageAction::Delete { id } => {
            delete_or_void(&mut data, business, endpoint, &id, Some("page hook"), stamp).map(|_| ()).map_err(|_| ())
        }
    };
    if outcome.is_err() {
        tracing::warn!(resource = endpoint.name, "a page hook found nothing to act on");
    }
}

fn record_state<'a>(data: &'a Data, business: &str, endpoint: &Endpoint, key: &str) -> Option<&'a Map<String, Value>> {
    let r = data.business(business)?.collection(endpoint.name)?.get(key)?;
    r.current.deleted_at.is_none().then_some(&r.current.fields)
}

fn get_one(
    inner: &Inner,
    endpoint: &'static Endpoint,
    business: &str,
    key: &str,
    pairs: Vec<(String, String)>,
) -> Result<Response, ApiError> {
    check_declared(&pairs, |k| endpoint.get_declares(k), "GET", &format!("/{}/{{key}}", endpoint.name))?;
    let data = lock(&inner.data);
    let fields = record_state(&data, business, endpoint, key)
        .ok_or_else(|| ApiError::not_found(format!("No {} with id {key}", endpoint.name)))?;
    Ok(single(fields, attributes_or_all(&pairs), StatusCode::OK))
}

/// The record inside a POST/PUT body: `{"contact": {...}}`.
fn body_record(endpoint: &Endpoint, body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, "InvalidJSON", format!("The body is not valid JSON: {e}"))
    })?;
    match value.get(endpoint.body) {
        Some(Value::Object(m)) => Ok(m.clone()),
        _ => Err(ApiError::invalid(endpoint.body, format!("The body must hold an object under \"{}\"", endpoint.body))),
    }
}

fn sim_error(e: crate::error::SimError) -> ApiError {
    match e {
        crate::error::SimError::RecordNotFound { resource, id } => {
            ApiError::not_found(format!("No {resource} with id {id}"))
        }
        other => ApiError::invalid("", other.to_string()),
    }
}

fn create(
    inner: &Inner,
    endpoint: &'static Endpoint,
    business: &str,
    pairs: Vec<(String, String)>,
    body: &[u8],
) -> Result<Response, ApiError> {
    check_declared(&pairs, |_| false, "POST", &format!("/{}", endpoint.name))?;
    let fields = body_record(endpoint, body)?;
    if let Some(missing) = endpoint.required_fields().find(|f| fields.get(*f).is_none_or(Value::is_null)) {
        return Err(ApiError::invalid(missing, format!("{missing} is required")));
    }
    let stamp: Stamp = inner.stamp();
    let id = inner.new_id();
    let record = lock(&inner.data).create(business, endpoint, &fields, id, None, stamp).map_err(sim_error)?;
    Ok(single(&record, Attributes::All, StatusCode::CREATED))
}

fn update(
    inner: &Inner,
    endpoint: &'static Endpoint,
    business: &str,
    key: &str,
    pairs: Vec<(String, String)>,
    body: &[u8],
) -> Result<Response, ApiError> {
    check_declared(&pairs, |_| false, "PUT", &format!("/{}/{{key}}", endpoint.name))?;
    let fields = body_record(endpoint, body)?;
    let stamp = inner.stamp();
    let record = lock(&inner.data).update(business, endpoint, key, &fields, stamp).map_err(sim_error)?;
    Ok(single(&record, Attributes::All, StatusCode::OK))
}

fn delete(
    inner: &Inner,
    endpoint: &'static Endpoint,
    business: &str,
    key: &str,
    pairs: Vec<(String, String)>,
) -> Result<Response, ApiError> {
    check_declared(&pairs, |k| endpoint.delete_declares(k), "DELETE", &format!("/{}/{{key}}", endpoint.name))?;
    let reason =
        pairs.iter().rev().find(|(k, _)| k == "void_reason").map(|(_, v)| v.as_str()).filter(|v| !v.is_empty());
    let stamp = inner.stamp();
    let result = delete_or_void(&mut lock(&inner.data), business, endpoint, key, reason, stamp);
    match result {
        Ok(Deleted::Deleted) => Ok(StatusCode::NO_CONTENT.into_response()),
        Ok(Deleted::Voided(record)) => Ok(single(&record, Attributes::All, StatusCode::OK)),
        Err(DeleteError::ReasonRequired) => {
            Err(ApiError::invalid("void_reason", "void_reason is required unless the status is DRAFT"))
        }
        Err(DeleteError::AlreadyVoid) => Err(ApiError::invalid("status", "The record is void already")),
        Err(DeleteError::Sim(e)) => Err(sim_error(e)),
    }
}
