//! Console sessions and the defences of every state-changing request.
//!
//! A session is a cookie `ocpoll_session` holding 32 random bytes (base64url); the store keeps only its SHA-256
//! digest ([`ConsoleStore`](oc_model::ports::ConsoleStore)), with the principal, an anti-forgery token and a bounded
//! lifetime. The cookie is `HttpOnly`, `SameSite=Strict`, `Path=/ui`, `Secure` when the public URL is https, and
//! lives as long as the session. Sign-out ends the session in the store (on every node at once) and clears the
//! cookie.
//!
//! Every POST carries the session's token (a hidden `csrf` field in forms, the `x-csrf-token` header in the
//! script's requests), compared in constant time ([`Posted`]); and before any handler runs, a state-changing
//! request whose `Sec-Fetch-Site` or `Origin` says it comes from another site is refused ([`same_site_only`]).
//! The secrets typed at sign-in go to the store's `authenticate` and nowhere else: not to a log line, a URL or
//! a page.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, RawQuery, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use maud::html;
use oc_model::ports::{NewConsoleSession, Principal, SecretDigest};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::layout::{self, Page};
use super::{Answer, ConsoleError};
use crate::api::AppState;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "ocpoll_session";
/// The form field of the anti-forgery token.
pub(super) const CSRF_FIELD: &str = "csrf";
/// The header of the anti-forgery token (the script's requests).
pub(super) const CSRF_HEADER: &str = "x-csrf-token";
/// How long a one-time sign-in link works.
pub(super) const LINK_LIFETIME: chrono::Duration = chrono::Duration::minutes(10);

/// 32 random bytes, base64url: a session cookie, an OAuth `state`, an anti-forgery token.
pub(super) fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The digest the store keeps of a random token.
pub(super) fn digest(token: &str) -> SecretDigest {
    SecretDigest(Sha256::digest(token.as_bytes()).into())
}

/// The value of the session cookie, when the request has one.
fn cookie_value(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim().to_string())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// The `Set-Cookie` value of a session, or of its removal (`token` `None`).
pub(super) fn session_cookie(state: &AppState, token: Option<&str>) -> HeaderValue {
    let config = &state.console.config;
    let (value, max_age) = match token {
        Some(t) => (t, config.session_lifetime.num_seconds().max(0)),
        None => ("", 0),
    };
    let secure = if config.secure() { "; Secure" } else { "" };
    let cookie = format!("{SESSION_COOKIE}={value}; Path=/ui; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}");
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static("ocpoll_session=; Path=/ui; Max-Age=0"))
}

/// A signed-in request: who, and the session's anti-forgery token.
#[derive(Debug, Clone)]
pub(super) struct Signed {
    /// Who signed in.
    pub(super) principal: Principal,
    /// The session's anti-forgery token, for the forms and the script of the page.
    pub(super) csrf: String,
    /// The digest of the session cookie (an OAuth round is bound to it).
    pub(super) token: SecretDigest,
}

/// The live session of a request, if it has one.
pub(super) async fn session_of(headers: &HeaderMap, state: &AppState) -> Result<Option<Signed>, ConsoleError> {
    let Some(value) = cookie_value(headers) else { return Ok(None) };
    let token = digest(&value);
    let found = state.console.store.console_session(&token, state.clock.now()).await?;
    Ok(found.map(|s| Signed { principal: s.principal, csrf: s.csrf, token }))
}

/// True for the endpoints the script reads (answered 401 rather than sent to the sign-in page).
fn is_script_endpoint(parts: &Parts) -> bool {
    let path = parts.uri.path();
    path.ends_with(".json") || path.ends_with(".svg") || path.ends_with(".html")
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = ConsoleError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        session_of(&parts.headers, state).await?.ok_or(ConsoleError::SignIn { script: is_script_endpoint(parts) })
    }
}

/// The fields of a submitted form, in order.
#[derive(Debug, Clone, Default)]
pub(super) struct FormData(pub Vec<(String, String)>);

impl FormData {
    /// Reads an `application/x-www-form-urlencoded` body.
    pub(super) fn parse(body: &[u8]) -> FormData {
        FormData(url::form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
    }

    /// The first value of a field.
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The value of a field, or empty text.
    pub(super) fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or_default().to_string()
    }

    /// Every value of a field (ticked checkboxes of one name).
    pub(super) fn all(&self, name: &str) -> Vec<&str> {
        self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
    }
}

/// The largest form body the console reads.
const MAX_FORM: usize = 256 * 1024;

/// A state-changing request of a signed-in user, its anti-forgery token checked: the only way a console handler
/// gets a POST body.
#[derive(Debug)]
pub(super) struct Posted {
    /// The session.
    pub(super) signed: Signed,
    /// The form fields.
    pub(super) form: FormData,
}

impl FromRequest<AppState> for Posted {
    type Rejection = ConsoleError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let signed = Signed::from_request_parts(&mut parts, state).await?;
        let bytes = axum::body::to_bytes(body, MAX_FORM)
            .await
            .map_err(|_| ConsoleError::Forgery("the form is too large".into()))?;
        let form = FormData::parse(&bytes);
        let given = parts
            .headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .or_else(|| form.get(CSRF_FIELD).map(str::to_string))
            .unwrap_or_default();
        if !same_token(&given, &signed.csrf) {
            return Err(ConsoleError::Forgery(
                "this form did not come from a page of your session (it may be stale: reload the page and try \
                 again)"
                    .into(),
            ));
        }
        Ok(Posted { signed, form })
    }
}

/// Constant-time comparison of an anti-forgery token (an empty one never matches).
fn same_token(given: &str, expected: &str) -> bool {
    !expected.is_empty() && given.len() == expected.len() && bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}

/// Refuses a state-changing request (any method but GET, HEAD, OPTIONS) that says it comes from another site:
/// `Sec-Fetch-Site` other than `same-origin` or `none`, or an `Origin` that is neither the public URL's nor the
/// `Host` the request was sent to.
pub(super) fn same_site_only(state: &AppState, request: &Request) -> Result<(), ConsoleError> {
    if matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let headers = request.headers();
    let refused = |why: &str| Err(ConsoleError::Forgery(format!("refused a request from another site ({why})")));
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && !matches!(site, "same-origin" | "none")
    {
        return refused(&format!("Sec-Fetch-Site: {site}"));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or_default();
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let by_host = url::Url::parse(origin).ok().and_then(|u| {
            let authority = match u.port() {
                Some(p) => format!("{}:{p}", u.host_str()?),
                None => u.host_str()?.to_string(),
            };
            Some(authority.eq_ignore_ascii_case(host))
        });
        let public = state.console.config.origin().is_some_and(|o| o.eq_ignore_ascii_case(origin));
        if !public && by_host != Some(true) {
            return refused(&format!("Origin: {origin}"));
        }
    }
    Ok(())
}

/// Records a new session for `principal`; returns the cookie's value.
async fn open_session(state: &AppState, principal: Principal) -> Result<String, ConsoleError> {
    let token = random_token();
    let now = state.clock.now();
    state
        .console
        .store
        .create_console_session(&NewConsoleSession {
            token: digest(&token),
            principal,
            csrf: random_token(),
            created_at: now,
            expires_at: now + state.console.config.session_lifetime,
        })
        .await?;
    Ok(token)
}

/// A 303 to `to` that sets (or clears) the session cookie.
fn redirect_with_cookie(state: &AppState, to: &str, token: Option<&str>) -> Response {
    let mut response = Redirect::to(to).into_response();
    response.headers_mut().insert(header::SET_COOKIE, session_cookie(state, token));
    response
}

fn sign_in_form(alert: Option<&str>, notice: Option<&str>) -> maud::Markup {
    let body = html! {
        h1 { "Sign in" }
        @if let Some(n) = notice { p.notice role="status" { (n) } }
        @if let Some(a) = alert { p.alert #sign-in-error role="alert" { (a) } }
        p { "Sign in with the organization secret and user secret the API takes in its "
            code { "Authorization" } " header." }
        form.stack method="post" action="/ui/sign-in" {
            div.field {
                label for="organization-secret" { "Organization secret" }
                input #organization-secret type="password" name="organization_secret" autocomplete="off"
                    required aria-describedby=[alert.map(|_| "sign-in-error")];
            }
            div.field {
                label for="user-secret" { "User secret" }
                input #user-secret type="password" name="user_secret" autocomplete="off" required
                    aria-describedby=[alert.map(|_| "sign-in-error")];
            }
            button.primary type="submit" { "Sign in" }
        }
    };
    Page::new("Sign in").render(None, body)
}

/// `GET /ui/sign-in`.
pub(super) async fn sign_in_page(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Answer {
    if session_of(&headers, &state).await?.is_some() {
        return Ok(Redirect::to("/ui/").into_response());
    }
    let signed_out = uri.query().is_some_and(|q| q.split('&').any(|p| p == "signed-out"));
    let notice = signed_out.then_some("You are signed out.");
    Ok(layout::html(sign_in_form(None, notice)))
}

/// `POST /ui/sign-in`: the secrets checked as the API checks them; wrong ones answer the page again with an
/// alert and no cookie.
pub(super) async fn sign_in(State(state): State<AppState>, body: Bytes) -> Answer {
    let form = FormData::parse(&body);
    let org = form.text("organization_secret");
    let user = form.text("user_secret");
    let principal = if org.trim().is_empty() || user.trim().is_empty() {
        None
    } else {
        state.store.authenticate(user.trim(), org.trim()).await?
    };
    let Some(principal) = principal else {
        let alert = if org.trim().is_empty() || user.trim().is_empty() {
            "Enter both the organization secret and the user secret."
        } else {
            "Wrong organization secret or user secret."
        };
        let mut response = layout::html(sign_in_form(Some(alert), None));
        *response.status_mut() = StatusCode::UNAUTHORIZED;
        return Ok(response);
    };
    let token = open_session(&state, principal).await?;
    tracing::info!(organization = principal.org_id, user = principal.user_id, "console sign-in");
    Ok(redirect_with_cookie(&state, "/ui/", Some(&token)))
}

/// `POST /ui/sign-out`: ends the session in the store and clears the cookie.
pub(super) async fn sign_out(State(state): State<AppState>, posted: Posted) -> Answer {
    state.console.store.end_console_session(&posted.signed.token).await?;
    Ok(redirect_with_cookie(&state, "/ui/sign-in?signed-out", None))
}

/// A one-time sign-in link for `principal` (`ocpoll demo` prints one): `{public URL}/ui/sign-in/link?code=...`,
/// usable once within ten minutes. The code is a session of its own in the store, ended when the link is
/// used, so it works on any node and never twice.
pub async fn sign_in_link(state: &AppState, principal: Principal) -> anyhow::Result<String> {
    let code = random_token();
    let now = state.clock.now();
    state
        .console
        .store
        .create_console_session(&NewConsoleSession {
            token: digest(&code),
            principal,
            csrf: random_token(),
            created_at: now,
            expires_at: now + LINK_LIFETIME,
        })
        .await
        .map_err(|e| anyhow::anyhow!("recording the sign-in link: {e}"))?;
    Ok(format!("{}/ui/sign-in/link?code={code}", state.console.config.public_url))
}

/// `GET /ui/sign-in/link?code=...`: trades a one-time code for a session of its own.
pub(super) async fn sign_in_with_link(State(state): State<AppState>, RawQuery(query): RawQuery) -> Answer {
    let code = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let used = digest(&code);
    let found = match code.is_empty() {
        true => None,
        false => state.console.store.console_session(&used, state.clock.now()).await?,
    };
    // ending it first makes the code single-use even when two requests race for it
    let won = match &found {
        Some(_) => state.console.store.end_console_session(&used).await?,
        None => false,
    };
    match found {
        Some(link) if won => {
            let token = open_session(&state, link.principal).await?;
            Ok(redirect_with_cookie(&state, "/ui/", Some(&token)))
        }
        _ => {
            let mut response =
                layout::html(sign_in_form(Some("This sign-in link was used already or has expired."), None));
            *response.status_mut() = StatusCode::UNAUTHORIZED;
            Ok(response)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole_and_never_empty() {
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abd", "abc"));
        assert!(!same_token("ab", "abc"));
        assert!(!same_token("", ""));
    }

    #[test]
    fn the_session_cookie_is_read_among_others() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=1; ocpoll_session=tok; b=2"));
        assert_eq!(cookie_value(&h).as_deref(), Some("tok"));
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("ocpoll_sessionx=1"));
        assert_eq!(cookie_value(&h), None);
    }
}
