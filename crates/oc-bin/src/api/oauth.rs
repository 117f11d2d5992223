//! `GET /elements/{key}/oauth/url`: the provider's authorize URL for a user to open.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use oc_model::Problems;
use oc_model::ports::OAuthUrlRequest;
use serde::Serialize;

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;

/// The answer: `{"element":"sageone","oauthUrl":"..."}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct OAuthUrl {
    element: String,
    oauth_url: String,
}

/// `GET /elements/{key}/oauth/url?apiKey=&apiSecret=&callbackUrl=[&state=&scope=&country=]`.
pub(super) async fn oauth_url(
    State(state): State<AppState>,
    _caller: Caller,
    Path(key): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<OAuthUrl>, ApiError> {
    let provider = state.providers.get(&key).ok_or_else(|| ApiError::NotFound(format!("element {key:?} not found")))?;
    let mut req = OAuthUrlRequest::default();
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let v = v.into_owned();
        match k.as_ref() {
            "apiKey" => req.client_id = v,
            "callbackUrl" => req.redirect_uri = v,
            "state" => req.state = Some(v),
            "scope" => req.scope = Some(v),
            "country" => req.country = Some(v),
            _ => {}
        }
    }
    let mut problems = Problems::default();
    // blank is missing, as the provider reads them
    if req.client_id.trim().is_empty() {
        problems.push("apiKey", "missing");
    }
    if req.redirect_uri.trim().is_empty() {
        problems.push("callbackUrl", "missing");
    }
    if !problems.is_empty() {
        return Err(ApiError::Invalid { message: "apiKey and callbackUrl are required".into(), problems: problems.0 });
    }
    let url = provider.oauth_url(&req)?;
    Ok(Json(OAuthUrl { element: key, oauth_url: url }))
}
