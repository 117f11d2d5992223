//! A wiremock stand-in for Sage's OAuth and business endpoints, for tests that only need instances to be
//! created (the simulator stands in for Sage where polling matters).

use serde_json::json;
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A fake Sage accepting any code at `/token` and answering `/v3.1/businesses/lead`.
pub async fn sage_oauth_only() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("grant_type=authorization_code"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "access-1", "refresh_token": "refresh-1", "token_type": "bearer",
            "expires_in": 300, "refresh_token_expires_in": 2678400, "scope": "full_access", "requested_by_id": "u1"
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v3.1/businesses/lead"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "b1", "name": "Fake Business"})))
        .mount(&server)
        .await;
    server
}

/// The `ocpoll serve` arguments that point the Sage provider at `server`.
pub fn sage_args(server: &MockServer) -> Vec<String> {
    vec![
        "--sage-api-url".into(),
        format!("{}/v3.1", server.uri()),
        "--sage-token-url".into(),
        format!("{}/token", server.uri()),
        "--sage-authorize-url".into(),
        format!("{}/oauth2/auth/central", server.uri()),
    ]
}
