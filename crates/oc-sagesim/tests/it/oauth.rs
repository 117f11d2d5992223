//! OAuth over HTTP: the authorization redirect, the consent page, code exchange, rotating refresh tokens,
//! revocation, and what the API answers to missing, expired and revoked tokens.

use axum::http::{Method, StatusCode};
use oc_sagesim::SimConfig;
use serde_json::Value;

use crate::common::{CLIENT_ID, CLIENT_SECRET, Fixture, REDIRECT_URI, assert_sage_error};

fn form(pairs: &[(&str, &str)]) -> Option<(&'static str, String)> {
    let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
    Some(("application/x-www-form-urlencoded", body))
}

fn authorize_path(state: &str) -> String {
    let q = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("filter", "apiv3.1"),
            ("response_type", "code"),
            ("client_id", CLIENT_ID),
            ("redirect_uri", REDIRECT_URI),
            ("scope", "full_access"),
            ("state", state),
        ])
        .finish();
    format!("/oauth2/auth/central?{q}")
}

/// Follows the authorization redirect and returns the raw query of the callback.
async fn authorize(f: &Fixture, state: &str) -> String {
    let r = f.send(Method::GET, &authorize_path(state), &[], None).await;
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.text);
    let location = r.headers["location"].to_str().expect("location").to_owned();
    let (base, query) = location.split_once('?').expect("query");
    assert_eq!(base, REDIRECT_URI);
    query.to_owned()
}

fn param(query: &str, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

async fn token(f: &Fixture, pairs: &[(&str, &str)]) -> (StatusCode, Value) {
    let r = f.send(Method::POST, "/token", &[], form(pairs)).await;
    (r.status, r.body)
}

async fn exchange(f: &Fixture, code: &str, secret: &str) -> (StatusCode, Value) {
    token(
        f,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", CLIENT_ID),
            ("client_secret", secret),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
        ],
    )
    .await
}

async fn refresh(f: &Fixture, refresh_token: &str) -> (StatusCode, Value) {
    token(
        f,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

#[tokio::test]
async fn the_authorization_code_flow_with_rotating_refresh_tokens() {
    let f = Fixture::new(3);
    let query = authorize(&f, "xyz").await;
    assert!(query.starts_with("code=GB%2F"), "{query}");
    assert_eq!(param(&query, "country").as_deref(), Some("GB"));
    assert_eq!(param(&query, "state").as_deref(), Some("xyz"));
    let code = param(&query, "code").expect("code");
    assert_eq!(
        exchange(&f, &code, "wrong").await,
        (StatusCode::UNAUTHORIZED, serde_json::json!({"error": "invalid_client"}))
    );
    let code = param(&authorize(&f, "s").await, "code").expect("code");
    let (status, tokens) = exchange(&f, &code, CLIENT_SECRET).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["expires_in"], 300);
    assert_eq!(tokens["token_type"], "bearer");
    assert_eq!(tokens["scope"], "full_access");
    assert_eq!(tokens["refresh_token_expires_in"], 2_678_400);
    assert!(tokens["requested_by_id"].is_string());
    assert_eq!(
        exchange(&f, &code, CLIENT_SECRET).await,
        (StatusCode::BAD_REQUEST, serde_json::json!({"error": "invalid_grant"}))
    );

    let auth = format!("Bearer {}", tokens["access_token"].as_str().expect("token"));
    let ok = f.send(Method::GET, "/v3.1/businesses", &[("authorization", &auth)], None).await;
    assert_eq!(ok.status, StatusCode::OK);

    let first = tokens["refresh_token"].as_str().expect("refresh").to_owned();
    let (status, next) = refresh(&f, &first).await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(next["refresh_token"], tokens["refresh_token"]);
    assert_eq!(refresh(&f, &first).await, (StatusCode::BAD_REQUEST, serde_json::json!({"error": "invalid_grant"})));
    let (status, _) = refresh(&f, next["refresh_token"].as_str().expect("refresh")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = token(&f, &[("grant_type", "password"), ("client_id", CLIENT_ID)]).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("unsupported_grant_type")));
}

#[tokio::test]
async fn codes_expire_after_60_seconds_of_the_simulator_clock() {
    let f = Fixture::new(3);
    let code = param(&authorize(&f, "s").await, "code").expect("code");
    f.advance(60);
    assert_eq!(exchange(&f, &code, CLIENT_SECRET).await.0, StatusCode::BAD_REQUEST);
    let code = param(&authorize(&f, "s").await, "code").expect("code");
    f.advance(59);
    assert_eq!(exchange(&f, &code, CLIENT_SECRET).await.0, StatusCode::OK);
}

#[tokio::test]
async fn unknown_clients_and_foreign_redirects_get_an_error_page() {
    let f = Fixture::new(3);
    let bad_client = authorize_path("s").replace(CLIENT_ID, "nobody");
    let r = f.send(Method::GET, &bad_client, &[], None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text.contains("invalid_client"));
    let bad_redirect = authorize_path("s").replace("9999", "9998");
    let r = f.send(Method::GET, &bad_redirect, &[], None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text.contains("redirect_uri_mismatch"));
    let r =
        f.send(Method::GET, &authorize_path("s").replace("response_type=code", "response_type=token"), &[], None).await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert!(r.headers["location"].to_str().expect("location").contains("error=unsupported_response_type"));
}

#[tokio::test]
async fn the_consent_page_approves_or_denies() {
    let f = Fixture::with(SimConfig { consent_page: true, customers: 3, ..SimConfig::default() });
    let page = f.send(Method::GET, &authorize_path("st"), &[], None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("<button") && page.text.contains("Approve"), "{}", page.text);
    let query = authorize_path("st").split_once('?').expect("query").1.to_owned();
    let mut approve: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    approve.push(("decision".into(), "approve".into()));
    let pairs: Vec<(&str, &str)> = approve.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = f.send(Method::POST, "/oauth2/auth/central", &[], form(&pairs)).await;
    assert_eq!(r.status, StatusCode::FOUND);
    let location = r.headers["location"].to_str().expect("location");
    assert!(
        location.starts_with(&format!("{REDIRECT_URI}?code=GB%2F")) && location.ends_with("&state=st"),
        "{location}"
    );
    let deny: Vec<(&str, &str)> =
        pairs.iter().map(|(k, v)| if *k == "decision" { (*k, "deny") } else { (*k, *v) }).collect();
    let r = f.send(Method::POST, "/oauth2/auth/central", &[], form(&deny)).await;
    assert!(r.headers["location"].to_str().expect("location").contains("error=access_denied"));
}

#[tokio::test]
async fn missing_expired_and_revoked_tokens_are_authorization_failures() {
    let f = Fixture::new(3);
    assert_sage_error(&f.send(Method::GET, "/v3.1/contacts", &[], None).await, 401, "AuthorizationFailure");
    let r = f.send(Method::GET, "/v3.1/contacts", &[("authorization", "Bearer nope")], None).await;
    assert_sage_error(&r, 401, "AuthorizationFailure");
    assert_eq!(f.get("/contacts").await.status, StatusCode::OK);
    f.advance(299);
    assert_eq!(f.get("/contacts").await.status, StatusCode::OK);
    f.advance(1);
    assert_sage_error(&f.get("/contacts").await, 401, "AuthorizationFailure");

    let tokens = f.sim.issue_tokens(CLIENT_ID).expect("tokens");
    let auth = format!("Bearer {}", tokens.access_token);
    assert_eq!(f.send(Method::GET, "/v3.1/contacts", &[("authorization", &auth)], None).await.status, StatusCode::OK);
    f.sim.expire_access_tokens();
    assert_sage_error(
        &f.send(Method::GET, "/v3.1/contacts", &[("authorization", &auth)], None).await,
        401,
        "AuthorizationFailure",
    );
    assert_eq!(refresh(&f, &tokens.refresh_token).await.0, StatusCode::OK, "refresh tokens survive the expiry");

    let tokens = f.sim.issue_tokens(CLIENT_ID).expect("tokens");
    let revoke = [("client_id", CLIENT_ID), ("client_secret", CLIENT_SECRET), ("token", tokens.refresh_token.as_str())];
    assert_eq!(f.send(Method::POST, "/revoke", &[], form(&revoke)).await.status, StatusCode::OK);
    let auth = format!("Bearer {}", tokens.access_token);
    assert_sage_error(
        &f.send(Method::GET, "/v3.1/contacts", &[("authorization", &auth)], None).await,
        401,
        "AuthorizationFailure",
    );
    assert_eq!(refresh(&f, &tokens.refresh_token).await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_token_ttl_is_configurable() {
    let f = Fixture::with(SimConfig {
        token_ttl: std::time::Duration::from_secs(30),
        customers: 3,
        ..SimConfig::default()
    });
    let tokens = f.sim.issue_tokens(CLIENT_ID).expect("tokens");
    assert_eq!(tokens.expires_in, 30);
}
