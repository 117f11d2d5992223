//! The console's OAuth round: begun by the form's **Create Instance** (or an instance's **Re-authenticate**),
//! ended at `{public URL}/ui/oauth/callback`.
//!
//! Begin: the body is validated with the API's rules (a placeholder stands for the code); a random `state` is
//! made, and the store records the round under its digest, bound to the digest of this session's cookie, with
//! the body (sealed at rest) and an expiry of ten minutes; the browser goes (303) to the provider's authorize URL
//! with `redirect_uri={public URL}/ui/oauth/callback` and that `state`.
//!
//! End: the round is taken from the store by the `state`'s digest (it is gone afterwards: a replayed `state`
//! finds nothing), then it must belong to this session and be unexpired, and the provider must have granted
//! access; only then is the code exchanged and the instance created, by the function `POST /instances` runs.
//! Any failure is a page with an alert, and nothing is created.
//!
//! The session cookie is `SameSite=Strict`, so a browser coming back from the provider's site (a cross-site
//! navigation) does not send it. The callback then answers a page that asks for the same address again, from
//! this site: that second request carries the cookie. The round is taken only by a request with a session.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{DOCTYPE, html};
use oc_model::Problems;
use oc_model::config::keys;
use oc_model::ids::InstanceId;
use oc_model::ports::{NewOAuthRound, OAuthApp, OAuthUrlRequest, Principal};
use serde_json::{Value, json};

use super::form::{self, ELEMENT_KEY, Fields, Placed, Values};
use super::instances::{self, Arrival};
use super::layout::{self, Page};
use super::session::{Posted, Signed, digest, random_token, session_of};
use super::{Answer, CALLBACK_PATH, ConsoleError};
use crate::api::AppState;
use crate::api::instances::{Created, create_instance, reauthorize};

/// Stands for the code while the form's body is validated (the code comes at the callback).
const PLACEHOLDER_CODE: &str = "code-to-come";
/// The query flag of the callback's second request (after the same-site hop).
const RESUMED: &str = "resumed";

/// Records a round and answers the 303 to the provider's authorize URL.
async fn begin_round(
    state: &AppState,
    signed: &Signed,
    client_id: &str,
    country: Option<String>,
    body: Value,
    instance: Option<InstanceId>,
) -> Answer {
    let provider = state.provider(ELEMENT_KEY)?.clone();
    let token = random_token();
    let now = state.clock.now();
    let url = provider
        .oauth_url(&OAuthUrlRequest {
            client_id: client_id.to_string(),
            redirect_uri: state.console.config.redirect_uri(),
            state: Some(token.clone()),
            scope: None,
            country,
        })
        .map_err(crate::api::error::ApiError::from)?;
    state
        .console
        .store
        .begin_oauth_round(&NewOAuthRound {
            state: digest(&token),
            session: signed.token,
            principal: signed.principal,
            body,
            instance,
            created_at: now,
            expires_at: now + state.console.config.round_lifetime,
        })
        .await?;
    Ok(Redirect::to(&url).into_response())
}

/// `POST /ui/instances`: the form's **Create Instance**. A body with problems answers the form again, every
/// problem beside its field and every value kept; a valid one begins the OAuth round.
pub(super) async fn begin_create(State(state): State<AppState>, posted: Posted) -> Answer {
    let spec = state.providers.spec(ELEMENT_KEY);
    let fields = Fields::of(spec);
    let values = Values::from_form(&posted.form, &fields, spec);
    let (body, mut problems) = form::body_of(&state, &values, &fields);
    let mut with_code = body.clone();
    with_code["providerData"] = json!({ "code": PLACEHOLDER_CODE });
    if let Err(found) = crate::callbacks::check_body(&state, &with_code, true, state.clock.now()).await {
        problems.0.extend(found.0);
    }
    if !problems.is_empty() {
        let placed = Placed::new(&fields, &problems.0);
        let mut response = layout::html(form::render(&state, &posted.signed, &values, &placed));
        *response.status_mut() = StatusCode::BAD_REQUEST;
        return Ok(response);
    }
    let client_id = body["configuration"][keys::OAUTH_API_KEY].as_str().unwrap_or_default().to_string();
    let country = body["configuration"][oc_sageone::keys::COUNTRY].as_str().map(str::to_string);
    begin_round(&state, &posted.signed, &client_id, country, body, None).await
}

/// `POST /ui/instances/{id}/reauthenticate`: a fresh OAuth round for an existing instance, with its own app.
pub(super) async fn begin_reauthenticate(
    State(state): State<AppState>,
    Path(id): Path<InstanceId>,
    posted: Posted,
) -> Answer {
    let i = instances::load(&state, &posted.signed, id).await?;
    let app = OAuthApp::of(&i.configuration).map_err(|p: Problems| crate::api::error::ApiError::Invalid {
        message: "the instance has no OAuth app".into(),
        problems: p.0,
    })?;
    let country = i.configuration.text_of(oc_sageone::keys::COUNTRY);
    let body = json!({ "configuration": { keys::OAUTH_CALLBACK_URL: state.console.config.redirect_uri() } });
    begin_round(&state, &posted.signed, &app.client_id, country, body, Some(id)).await
}

/// The callback's query.
#[derive(Debug, Default)]
struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    resumed: bool,
}

impl Callback {
    fn parse(query: &str) -> Callback {
        let mut c = Callback::default();
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            let v = Some(v.into_owned()).filter(|v| !v.is_empty());
            match k.as_ref() {
                "code" => c.code = v,
                "state" => c.state = v,
                "error" => c.error = v,
                "error_description" => c.error_description = v,
                RESUMED => c.resumed = true,
                _ => {}
            }
        }
        c
    }
}

/// An alert page about the round, with a way to start again; nothing was created.
fn failed(title: &str, message: &str, status: StatusCode) -> Response {
    let body = html! {
        h1 { (title) }
        div.alert role="alert" { @for line in message.lines() { p { (line) } } }
        p { a.button href="/ui/instances/new" { "Create Instance" } " " a href="/ui/" { "Back to the instances" } }
    };
    let mut response = layout::html(Page::new(title).render(None, body));
    *response.status_mut() = status;
    response
}

/// The page that asks for the callback's address again from this site, so that the `SameSite=Strict` cookie
/// comes along.
fn same_site_hop(query: &str) -> Response {
    let again = format!("{CALLBACK_PATH}?{query}&{RESUMED}=1");
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="refresh" content=(format!("0;url={again}"));
                title { "Back from Sage — ocpoll console" }
            }
            body { main { h1 { "Back from Sage" } p { a href=(again) { "Continue" } } } }
        }
    };
    layout::html(page)
}

/// `GET /ui/oauth/callback?code=&state=` (or `?error=access_denied&state=`).
pub(super) async fn callback(State(state): State<AppState>, headers: HeaderMap, RawQuery(query): RawQuery) -> Answer {
    let query = query.unwrap_or_default();
    let c = Callback::parse(&query);
    let not_created = "Instance not created";
    let Some(given_state) = c.state.clone() else {
        return Ok(failed(
            not_created,
            "The answer from Sage carries no state: this page is only reached from Sage's consent page.",
            StatusCode::BAD_REQUEST,
        ));
    };
    let Some(signed) = session_of(&headers, &state).await? else {
        if !c.resumed {
            return Ok(same_site_hop(&query));
        }
        return Ok(failed(
            not_created,
            "You are not signed in (or your session ended), so the authorization cannot be finished.\nSign in and \
             start again.",
            StatusCode::UNAUTHORIZED,
        ));
    };
    let Some(round) = state.console.store.take_oauth_round(&digest(&given_state)).await? else {
        return Ok(failed(
            not_created,
            "This authorization is unknown or was already used: a state is used once.\nStart again from Create \
             Instance.",
            StatusCode::BAD_REQUEST,
        ));
    };
    let title = if round.instance.is_some() { "Re-authentication failed" } else { not_created };
    if round.session != signed.token || round.principal != signed.principal {
        return Ok(failed(
            title,
            "This authorization was begun in another session; it cannot be finished in this one.\nStart again.",
            StatusCode::BAD_REQUEST,
        ));
    }
    if round.expires_at <= state.clock.now() {
        return Ok(failed(
            title,
            "This authorization expired: Sage's consent page was left open too long.\nStart again.",
            StatusCode::BAD_REQUEST,
        ));
    }
    if let Some(error) = &c.error {
        let detail = c.error_description.as_deref().map(|d| format!(": {d}")).unwrap_or_default();
        return Ok(failed(
            title,
            &format!("Sage did not grant access ({error}{detail}).\nNothing was created or changed."),
            StatusCode::BAD_REQUEST,
        ));
    }
    let Some(code) = c.code else {
        return Ok(failed(title, "The answer from Sage carries no code.", StatusCode::BAD_REQUEST));
    };
    match round.instance {
        Some(id) => finish_reauthentication(&state, &signed, round.principal, id, &round.body, &code).await,
        None => finish_create(&state, &signed, round.principal, round.body, &code).await,
    }
}

/// The API's words for a failure, as lines.
fn explain(e: crate::api::error::ApiError) -> String {
    let (status, _) = e.status_and_code();
    if status.is_server_error() {
        tracing::error!(error = ?e, "console OAuth round failed");
    }
    let body = e.body(&crate::api::error::current_request_id());
    let mut lines = vec![body.message.clone()];
    lines
        .extend(body.errors.iter().filter(|p| p.message != body.message).map(|p| format!("{}: {}", p.path, p.message)));
    lines.join("\n")
}

async fn finish_create(state: &AppState, signed: &Signed, principal: Principal, mut body: Value, code: &str) -> Answer {
    body["providerData"] = json!({ "code": code });
    match create_instance(state, principal, &body).await {
        Ok(Created { instance, warnings, .. }) => {
            let view = instances::instance_view(state, signed, &instance, 1, Arrival::Created(&warnings)).await?;
            Ok(layout::html(view))
        }
        Err(e) => Ok(failed(
            "Instance not created",
            &format!("{}\nNothing was created.", explain(e)),
            StatusCode::BAD_REQUEST,
        )),
    }
}

async fn finish_reauthentication(
    state: &AppState,
    signed: &Signed,
    principal: Principal,
    id: InstanceId,
    body: &Value,
    code: &str,
) -> Answer {
    let redirect = body["configuration"][keys::OAUTH_CALLBACK_URL]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| state.console.config.redirect_uri());
    let existing = match instances::load(state, signed, id).await {
        Ok(i) => i,
        Err(ConsoleError::NotFound(_)) => {
            return Ok(failed("Re-authentication failed", "The instance is gone.", StatusCode::NOT_FOUND));
        }
        Err(e) => return Err(e),
    };
    match reauthorize(state, principal, &existing, &redirect, code).await {
        Ok(updated) => {
            let view = instances::instance_view(state, signed, &updated, 1, Arrival::Reauthorized).await?;
            Ok(layout::html(view))
        }
        Err(e) => Ok(failed(
            "Re-authentication failed",
            &format!("{}\nThe instance was not changed.", explain(e)),
            StatusCode::BAD_REQUEST,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_callback_query_is_read() {
        let c = Callback::parse("code=GB%2Fabc&state=s1&country=GB");
        assert_eq!((c.code.as_deref(), c.state.as_deref(), c.resumed), (Some("GB/abc"), Some("s1"), false));
        let c = Callback::parse("error=access_denied&state=s1&resumed=1");
        assert_eq!((c.error.as_deref(), c.resumed), (Some("access_denied"), true));
    }
}
