//! A fake of the invented Tasks API that `oc-tasks` speaks (the second provider of the swap proof): records per
//! workspace and resource in memory, the token endpoint (single-use codes with an optional PKCE verifier,
//! rotating refresh tokens), the list with `modified_since` and keyset cursors, the tombstone list, a `Date`
//! header on every answer, and admin functions the test calls directly to change the data.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

/// The resources the fake serves.
const RESOURCES: [&str; 2] = ["tasks", "projects"];
/// The largest `limit`.
const MAX_LIMIT: usize = 100;

#[derive(Default)]
struct Data {
    /// Live records by (workspace, resource), then uid.
    records: BTreeMap<(String, String), BTreeMap<String, Value>>,
    /// Tombstones by (workspace, resource): `{"uid", "removed_on"}`.
    tombstones: BTreeMap<(String, String), Vec<Value>>,
    /// Unused codes: workspace and expected PKCE verifier.
    codes: HashMap<String, (String, Option<String>)>,
    /// Access tokens: workspace, valid.
    access: HashMap<String, (String, bool)>,
    /// Live refresh tokens (each used once): workspace.
    refresh: HashMap<String, String>,
    seq: u64,
    refreshes: usize,
}

struct Inner {
    client_id: String,
    client_secret: String,
    state: Mutex<Data>,
}

impl Inner {
    fn state(&self) -> std::sync::MutexGuard<'_, Data> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running fake with one registered OAuth app.
#[derive(Clone)]
pub struct TasksFake {
    addr: SocketAddr,
    inner: Arc<Inner>,
    /// The app's client id (`oauth.api.key`).
    pub client_id: String,
    /// The app's client secret (`oauth.api.secret`).
    pub client_secret: String,
    /// The app's redirect URI (`oauth.callback.url`).
    pub redirect_uri: String,
}

fn now_text() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn instant(v: &Value) -> DateTime<Utc> {
    v.as_str().and_then(|s| s.parse().ok()).unwrap_or_default()
}

/// `json` with `status` and the `Date` header (the provider's clock, whole seconds).
fn answer(status: StatusCode, json: Value) -> Response {
    let mut response = (status, Json(json)).into_response();
    let date = Utc::now().format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    if let Ok(v) = HeaderValue::from_str(&date) {
        response.headers_mut().insert("date", v);
    }
    response
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    answer(status, json!({"error": error, "error_description": description}))
}

fn api_error(status: StatusCode, code: &str, message: &str) -> Response {
    answer(status, json!({"code": code, "message": message}))
}

impl TasksFake {
    /// A fake on a free loopback port with a fresh app registered.
    pub async fn start() -> TasksFake {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let inner = Arc::new(Inner {
            client_id: format!("tasks-app-{id}"),
            client_secret: format!("tasks-secret-{id}"),
            state: Mutex::new(Data::default()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let addr = listener.local_addr().expect("an address");
        let app = Router::new()
            .route("/oauth/token", post(token))
            .route("/v1/{resource}", get(list))
            .with_state(inner.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TasksFake {
            addr,
            client_id: inner.client_id.clone(),
            client_secret: inner.client_secret.clone(),
            redirect_uri: "http://127.0.0.1:1/tasks/callback".into(),
            inner,
        }
    }

    /// `http://ADDR`: the provider's base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// An authorization code for `workspace`, as the user's consent would give one; with `verifier`, the token
    /// request must present it (PKCE, plain).
    pub fn code(&self, workspace: &str, verifier: Option<&str>) -> String {
        let mut s = self.inner.state();
        s.seq += 1;
        let code = format!("code-{}-{}", s.seq, uuid::Uuid::new_v4().simple());
        s.codes.insert(code.clone(), (workspace.to_string(), verifier.map(String::from)));
        code
    }

    /// Creates a record with `fields`; returns it (with `uid`, `created` and `modified`).
    pub fn create(&self, workspace: &str, resource: &str, fields: Value) -> Value {
        let mut s = self.inner.state();
        s.seq += 1;
        let uid = format!("{}-{}", &resource[..1], s.seq);
        let now = now_text();
        let mut record = json!({"uid": uid, "created": now, "modified": now});
        if let (Some(r), Value::Object(f)) = (record.as_object_mut(), fields) {
            r.extend(f);
        }
        s.records.entry((workspace.into(), resource.into())).or_default().insert(uid, record.clone());
        record
    }

    /// Changes fields of a record (and its `modified`); returns it.
    pub fn update(&self, workspace: &str, resource: &str, uid: &str, fields: Value) -> Value {
        let mut s = self.inner.state();
        let record = s
            .records
            .get_mut(&(workspace.into(), resource.into()))
            .and_then(|r| r.get_mut(uid))
            .expect("the record exists");
        if let (Some(r), Value::Object(f)) = (record.as_object_mut(), fields) {
            r.extend(f);
            r.insert("modified".into(), json!(now_text()));
        }
        record.clone()
    }

    /// Deletes a record, leaving a tombstone; returns its `removed_on`.
    pub fn delete(&self, workspace: &str, resource: &str, uid: &str) -> String {
        let mut s = self.inner.state();
        let key = (workspace.to_string(), resource.to_string());
        s.records.get_mut(&key).and_then(|r| r.remove(uid)).expect("the record exists");
        let removed_on = now_text();
        s.tombstones.entry(key).or_default().push(json!({"uid": uid, "removed_on": removed_on}));
        removed_on
    }

    /// Makes every access token invalid (the next request answers 401).
    pub fn expire_access_tokens(&self) {
        self.inner.state().access.values_mut().for_each(|(_, valid)| *valid = false);
    }

    /// Revokes every refresh token (the next refresh answers `invalid_grant`).
    pub fn revoke_refresh_tokens(&self) {
        self.inner.state().refresh.clear();
    }

    /// Refreshes served so far.
    pub fn refreshes(&self) -> usize {
        self.inner.state().refreshes
    }
}

/// `POST /oauth/token`.
async fn token(State(inner): State<Arc<Inner>>, Form(form): Form<HashMap<String, String>>) -> Response {
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    if field("client_id") != inner.client_id || field("client_secret") != inner.client_secret {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "unknown client or wrong secret");
    }
    let mut s = inner.state();
    let workspace = match field("grant_type") {
        "authorization_code" => match s.codes.remove(field("code")) {
            Some((_, Some(verifier))) if form.get("code_verifier") != Some(&verifier) => {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "the code verifier does not match");
            }
            Some((workspace, _)) => workspace,
            None => return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "unknown or used code"),
        },
        "refresh_token" => match s.refresh.remove(field("refresh_token")) {
            Some(workspace) => {
                s.refreshes += 1;
                workspace
            }
            None => return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "unknown or spent refresh token"),
        },
        other => return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", other),
    };
    let (access, refresh) = (uuid::Uuid::new_v4().to_string(), uuid::Uuid::new_v4().to_string());
    s.access.insert(access.clone(), (workspace.clone(), true));
    s.refresh.insert(refresh.clone(), workspace.clone());
    answer(
        StatusCode::OK,
        json!({
            "access_token": access, "refresh_token": refresh, "token_type": "bearer", "expires_in": 3600,
            "workspace": {"id": workspace, "name": format!("Workspace {workspace}")}
        }),
    )
}

/// The cursor after `(key, uid)`: opaque to clients.
fn cursor_of(key: DateTime<Utc>, uid: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}|{uid}", key.timestamp_micros()))
}

fn parse_cursor(cursor: &str) -> Option<(DateTime<Utc>, String)> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).ok()?).ok()?;
    let (micros, uid) = text.split_once('|')?;
    Some((DateTime::from_timestamp_micros(micros.parse().ok()?)?, uid.to_string()))
}

/// `GET /v1/{resource}?modified_since=&removed_since=&limit=&cursor=`, ordered by (date, uid).
async fn list(
    State(inner): State<Arc<Inner>>,
    Path(resource): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let header = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let s = inner.state();
    let bearer = header("authorization").strip_prefix("Bearer ").unwrap_or_default();
    let Some((workspace, true)) = s.access.get(bearer).cloned() else {
        return api_error(StatusCode::UNAUTHORIZED, "unauthorized", "missing, unknown or expired access token");
    };
    if header("x-workspace") != workspace {
        return api_error(StatusCode::FORBIDDEN, "wrong_workspace", "X-Workspace is not the token's workspace");
    }
    if !RESOURCES.contains(&resource.as_str()) {
        return api_error(StatusCode::NOT_FOUND, "not_found", "no such resource");
    }
    let bound = |k: &str| query.get(k).map(|v| v.parse::<DateTime<Utc>>());
    let limit = query.get("limit").and_then(|l| l.parse::<usize>().ok()).unwrap_or(50).clamp(1, MAX_LIMIT);
    let after = match query.get("cursor").map(|c| parse_cursor(c)) {
        None => None,
        Some(Some(c)) => Some(c),
        Some(None) => return api_error(StatusCode::BAD_REQUEST, "bad_cursor", "the cursor is not one of ours"),
    };
    let key = (workspace, resource);
    let (date_field, since, rows): (&str, _, Vec<Value>) = match bound("removed_since") {
        Some(since) => ("removed_on", since, s.tombstones.get(&key).cloned().unwrap_or_default()),
        None => (
            "modified",
            bound("modified_since").unwrap_or(Ok(DateTime::<Utc>::MIN_UTC)),
            s.records.get(&key).map(|r| r.values().cloned().collect()).unwrap_or_default(),
        ),
    };
    let Ok(since) = since else {
        return api_error(StatusCode::BAD_REQUEST, "bad_date", "the bound is not an RFC 3339 date-time");
    };
    let mut rows: Vec<(DateTime<Utc>, String, Value)> = rows
        .into_iter()
        .map(|r| (instant(&r[date_field]), r["uid"].as_str().unwrap_or_default().to_string(), r))
        .filter(|(d, _, _)| *d >= since)
        .collect();
    rows.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    let total = rows.len();
    let rest: Vec<_> =
        rows.into_iter().filter(|(d, u, _)| after.as_ref().is_none_or(|(ad, au)| (d, u) > (ad, au))).collect();
    let page: Vec<_> = rest.iter().take(limit).collect();
    let next = (rest.len() > limit).then(|| page.last().map(|(d, u, _)| cursor_of(*d, u))).flatten();
    answer(
        StatusCode::OK,
        json!({"items": page.iter().map(|(_, _, r)| r.clone()).collect::<Vec<_>>(), "next_cursor": next, "total": total}),
    )
}
