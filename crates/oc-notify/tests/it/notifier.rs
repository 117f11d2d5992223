//! The HTTP notifier against wiremock receivers: headers and signatures (checked with the independent
//! `standardwebhooks` crate), outcomes of every kind of answer, the SSRF guard, and connection reuse.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, Utc};
use oc_model::Secret;
use oc_model::ports::{AttemptOutcome, Clock, DeliveryRequest, DeliveryResult, ManualClock, Notifier, SystemClock};
use oc_notify::signing::{elements_signature, standard_webhooks_secret};
use oc_notify::{HttpNotifier, HttpNotifierConfig, USER_AGENT};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::receiver;

const BODY: &[u8] = br#"{"message":{"eventId":"n-1","objectType":"customers"}}"#;

fn notifier(clock: Arc<dyn Clock>, allow_private: bool, timeout: Duration) -> HttpNotifier {
    let config =
        HttpNotifierConfig { timeout, allow_private_callbacks: allow_private, ..HttpNotifierConfig::default() };
    HttpNotifier::new(config, clock).unwrap()
}

/// wiremock listens on 127.0.0.1: these tests allow private callbacks.
fn local() -> HttpNotifier {
    notifier(Arc::new(SystemClock), true, Duration::from_secs(5))
}

async fn deliver(n: &HttpNotifier, url: &str, key: Option<&Secret>) -> DeliveryResult {
    n.deliver(&DeliveryRequest {
        url,
        body: BODY,
        notification_id: "n-1",
        signature_key: key,
        previous_signature_key: None,
    })
    .await
}

async fn server_answering(template: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST")).and(path("/hook")).respond_with(template).mount(&server).await;
    server
}

#[tokio::test]
async fn success_sends_signed_headers_that_an_independent_library_verifies() {
    let server = server_answering(ResponseTemplate::new(200).set_body_string("thanks")).await;
    let key = Secret::new("s3cr3t-key");
    let result = deliver(&local(), &format!("{}/hook", server.uri()), Some(&key)).await;
    assert_eq!(result.outcome, AttemptOutcome::Delivered, "{result:?}");
    assert_eq!(result.status, Some(200));
    assert_eq!(result.response_excerpt, "thanks");
    assert_eq!(result.error, None);

    let received = server.received_requests().await.unwrap();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.body, BODY);
    let header = |name: &str| request.headers.get(name).map(|v| v.to_str().unwrap().to_string());
    assert_eq!(header("content-type").as_deref(), Some("application/json"));
    assert_eq!(header("user-agent").as_deref(), Some(USER_AGENT));
    assert!(USER_AGENT.starts_with("ocpoll/"));
    assert_eq!(header("elements-webhook-id").as_deref(), Some("n-1"));
    assert_eq!(header("webhook-id").as_deref(), Some("n-1"));
    assert_eq!(header("webhook-timestamp"), Some(result.attempted_at.timestamp().to_string()));
    assert_eq!(header("elements-webhook-signature"), Some(elements_signature(&key, BODY)));

    // Standard Webhooks: the reference crate, given the whsec_ equivalent of the key, accepts the signature...
    let secret = standard_webhooks_secret(&key);
    let verifier = standardwebhooks::Webhook::new(secret.expose()).unwrap();
    verifier.verify(&request.body, &request.headers).expect("standardwebhooks verifies our signature");
    // ...and refuses it for a tampered body or another key
    assert!(verifier.verify(br#"{"message":{}}"#, &request.headers).is_err());
    let other = standardwebhooks::Webhook::new(standard_webhooks_secret(&Secret::new("other")).expose()).unwrap();
    assert!(other.verify(&request.body, &request.headers).is_err());
}

#[tokio::test]
async fn during_a_key_rotation_both_keys_sign_and_either_verifies() {
    let server = server_answering(ResponseTemplate::new(200)).await;
    let (new, old) = (Secret::new("the-new-key"), Secret::new("the-old-key"));
    let url = format!("{}/hook", server.uri());
    let request = DeliveryRequest {
        url: &url,
        body: BODY,
        notification_id: "n-2",
        signature_key: Some(&new),
        previous_signature_key: Some(&old),
    };
    assert_eq!(local().deliver(&request).await.outcome, AttemptOutcome::Delivered);
    let received = server.received_requests().await.unwrap();
    let headers = &received[0].headers;
    let signatures = headers.get("webhook-signature").unwrap().to_str().unwrap().to_string();
    let parts: Vec<&str> = signatures.split(' ').collect();
    assert_eq!(parts.len(), 2, "{signatures}");
    assert!(parts.iter().all(|p| p.starts_with("v1,")), "{signatures}");
    // Open Connectors' header has one signature: the new key's
    assert_eq!(headers.get("elements-webhook-signature").unwrap().to_str().unwrap(), elements_signature(&new, BODY));
    // the reference library verifies with the new key and with the old one, and not with a third
    for key in [&new, &old] {
        let verifier = standardwebhooks::Webhook::new(standard_webhooks_secret(key).expose()).unwrap();
        verifier.verify(BODY, headers).expect("a receiver on either key verifies");
    }
    let third = standardwebhooks::Webhook::new(standard_webhooks_secret(&Secret::new("x")).expose()).unwrap();
    assert!(third.verify(BODY, headers).is_err());
}

#[tokio::test]
async fn without_a_key_no_signature_is_sent() {
    let server = server_answering(ResponseTemplate::new(204)).await;
    let result = deliver(&local(), &format!("{}/hook", server.uri()), None).await;
    assert_eq!(result.outcome, AttemptOutcome::Delivered);
    let received = server.received_requests().await.unwrap();
    let headers = &received[0].headers;
    assert!(headers.get("webhook-id").is_some() && headers.get("webhook-timestamp").is_some());
    assert!(headers.get("elements-webhook-id").is_some());
    assert!(headers.get("webhook-signature").is_none());
    assert!(headers.get("elements-webhook-signature").is_none());
}

#[tokio::test]
async fn the_timestamp_is_the_clock_time_of_the_attempt() {
    let server = server_answering(ResponseTemplate::new(200)).await;
    let at: DateTime<Utc> = "2030-05-01T12:00:00Z".parse().unwrap();
    let n = notifier(Arc::new(ManualClock::new(at)), true, Duration::from_secs(5));
    let result = deliver(&n, &format!("{}/hook", server.uri()), Some(&Secret::new("k"))).await;
    assert_eq!(result.attempted_at, at);
    let received = server.received_requests().await.unwrap();
    assert_eq!(received[0].headers.get("webhook-timestamp").unwrap(), &at.timestamp().to_string());
}

#[tokio::test]
async fn answers_map_to_outcomes() {
    struct Case {
        template: ResponseTemplate,
        outcome: AttemptOutcome,
        status: u16,
        error: Option<&'static str>,
        retry_after: Option<u64>,
    }
    let cases = [
        Case {
            template: ResponseTemplate::new(500).set_body_string("boom"),
            outcome: AttemptOutcome::Failed,
            status: 500,
            error: Some("the receiver answered 500 internal server error"),
            retry_after: None,
        },
        Case {
            template: ResponseTemplate::new(410),
            outcome: AttemptOutcome::Gone,
            status: 410,
            error: Some("410 gone"),
            retry_after: None,
        },
        Case {
            template: ResponseTemplate::new(429).insert_header("Retry-After", "120"),
            outcome: AttemptOutcome::Failed,
            status: 429,
            error: Some("429 too many requests"),
            retry_after: Some(120),
        },
        Case {
            template: ResponseTemplate::new(503).insert_header("Retry-After", "Fri, 31 Dec 1999 23:59:59 GMT"),
            outcome: AttemptOutcome::Failed,
            status: 503,
            error: Some("503 service unavailable"),
            retry_after: Some(0),
        },
        Case {
            template: ResponseTemplate::new(404),
            outcome: AttemptOutcome::Failed,
            status: 404,
            error: Some("404 not found"),
            retry_after: None,
        },
        Case {
            template: ResponseTemplate::new(202),
            outcome: AttemptOutcome::Delivered,
            status: 202,
            error: None,
            retry_after: None,
        },
    ];
    for case in cases {
        let server = server_answering(case.template).await;
        let result = deliver(&local(), &format!("{}/hook", server.uri()), None).await;
        let label = format!("status {}: {result:?}", case.status);
        assert_eq!(result.outcome, case.outcome, "{label}");
        assert_eq!(result.status, Some(case.status), "{label}");
        match (case.error, &result.error) {
            (None, None) => {}
            (Some(part), Some(error)) => assert!(error.contains(part), "{label}"),
            _ => panic!("{label}: error {:?}", result.error),
        }
        assert_eq!(result.retry_after.map(|d| d.as_secs()), case.retry_after, "{label}");
    }
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let server = MockServer::start().await;
    let target = format!("{}/elsewhere", server.uri());
    Mock::given(path("/hook"))
        .respond_with(ResponseTemplate::new(301).insert_header("Location", target.as_str()))
        .mount(&server)
        .await;
    Mock::given(path("/elsewhere")).respond_with(ResponseTemplate::new(200)).expect(0).mount(&server).await;
    let result = deliver(&local(), &format!("{}/hook", server.uri()), None).await;
    assert_eq!(result.outcome, AttemptOutcome::Failed);
    assert_eq!(result.status, Some(301));
    assert_eq!(result.error.as_deref(), Some(format!("redirect 301 to {target} not followed").as_str()));
    server.verify().await;
}

#[tokio::test]
async fn a_slow_receiver_times_out() {
    let server = server_answering(ResponseTemplate::new(200).set_delay(Duration::from_secs(10))).await;
    let n = notifier(Arc::new(SystemClock), true, Duration::from_millis(300));
    let result = deliver(&n, &format!("{}/hook", server.uri()), None).await;
    assert_eq!(result.outcome, AttemptOutcome::Failed, "{result:?}");
    assert_eq!(result.status, None);
    assert_eq!(result.error.as_deref(), Some("timed out after 300ms"));
    assert!(result.latency >= Duration::from_millis(300) && result.latency < Duration::from_secs(5));
}

#[tokio::test]
async fn a_closed_port_is_a_connection_failure() {
    // bind and drop to get a port nobody listens on
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let result = deliver(&local(), &format!("http://127.0.0.1:{port}/hook"), None).await;
    assert_eq!(result.outcome, AttemptOutcome::Failed);
    assert!(result.error.as_deref().unwrap().starts_with("connection failed"), "{result:?}");
}

#[tokio::test]
async fn only_the_first_kilobyte_of_the_answer_is_kept() {
    let long = "é".repeat(2000); // 4000 bytes, 2-byte characters: the cut falls inside none
    let server = server_answering(ResponseTemplate::new(500).set_body_string(long.clone())).await;
    let result = deliver(&local(), &format!("{}/hook", server.uri()), None).await;
    assert_eq!(result.response_excerpt.len(), 1024);
    assert!(long.starts_with(&result.response_excerpt));
    let odd = format!("x{long}"); // now the 1024th byte is half a character: it is dropped
    let server = server_answering(ResponseTemplate::new(500).set_body_string(odd.clone())).await;
    let result = deliver(&local(), &format!("{}/hook", server.uri()), None).await;
    assert_eq!(result.response_excerpt.len(), 1023);
    assert!(odd.starts_with(&result.response_excerpt));
}

#[tokio::test]
async fn ssrf_guard_refuses_loopback_by_address_and_by_name() {
    let server = server_answering(ResponseTemplate::new(200)).await;
    let port = server.address().port();
    let guarded = notifier(Arc::new(SystemClock), false, Duration::from_secs(5));
    for url in [
        format!("http://127.0.0.1:{port}/hook"),
        format!("http://localhost:{port}/hook"),
        format!("http://[::ffff:127.0.0.1]:{port}/hook"),
        "http://169.254.169.254/latest/meta-data".to_string(),
        "http://10.0.0.1/hook".to_string(),
    ] {
        let result = deliver(&guarded, &url, None).await;
        assert_eq!(result.outcome, AttemptOutcome::Refused, "{url}: {result:?}");
        assert_eq!(result.status, None);
        let error = result.error.unwrap();
        assert!(error.starts_with("refused: callback host") && error.contains("--allow-private-callbacks"), "{error}");
    }
    let by_name = deliver(&guarded, &format!("http://localhost:{port}/hook"), None).await;
    assert!(by_name.error.unwrap().contains("localhost ("), "the reason names the host and the address");
    assert!(server.received_requests().await.unwrap().is_empty(), "nothing reached the receiver");

    // with the flag on, both go through
    let allowed = local();
    for url in [format!("http://127.0.0.1:{port}/hook"), format!("http://localhost:{port}/hook")] {
        assert_eq!(deliver(&allowed, &url, None).await.outcome, AttemptOutcome::Delivered, "{url}");
    }
}

#[tokio::test]
async fn invalid_callback_urls_are_refused() {
    for url in ["not a url", "ftp://example.com/x", "http://"] {
        let result = deliver(&local(), url, None).await;
        assert_eq!(result.outcome, AttemptOutcome::Refused, "{url}: {result:?}");
        assert!(result.error.is_some());
    }
}

#[tokio::test]
async fn connections_are_reused() {
    let receiver = receiver::Receiver::start().await;
    let url = receiver.url("/hook");
    let n = local();
    for _ in 0..5 {
        assert_eq!(deliver(&n, &url, Some(&Secret::new("k"))).await.outcome, AttemptOutcome::Delivered);
    }
    assert_eq!(receiver.connections.load(Ordering::SeqCst), 1);
    assert_eq!(receiver.requests.load(Ordering::SeqCst), 5);
}
