//! Issue 18, item 6: slow clients are cut off. Raw TCP against the real service with short settings: a
//! connection sending one header line now and then (slowloris) is closed within the header timeout, 60 of them
//! too; a connection that sends nothing is closed within the header timeout; an idle keep-alive connection
//! stays open to a further request and is closed after the idle timeout; a request whose body stalls is answered
//! by the request timeout in the API's error format; normal requests and a change-feed `wait` longer than the
//! request timeout still work; the cap on connections holds new ones back until one closes.

use std::time::{Duration, Instant};

use oc_store::testing;
use oc_tests::sage_fake::{sage_args, sage_oauth_only};
use oc_tests::{SEED_EXAMPLE, Server};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Header timeout 1 s, idle timeout 3 s, request timeout 2 s (and the Sage deadline under it).
const SHORT: [&str; 8] = [
    "--sage-call-deadline-seconds",
    "1",
    "--http-header-timeout-seconds",
    "1",
    "--http-idle-timeout-seconds",
    "3",
    "--http-request-timeout-seconds",
    "2",
];

async fn server(extra: &[&str]) -> (Server, wiremock::MockServer) {
    let sage = sage_oauth_only().await;
    let mut args = sage_args(&sage);
    args.extend(SHORT.iter().chain(extra).map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    (Server::start(testing::sqlite().await, &args).await.unwrap(), sage)
}

async fn connect(server: &Server) -> TcpStream {
    TcpStream::connect(server.running.addr).await.expect("connects")
}

/// Reads until the server closes the connection (EOF or a reset) or `limit` passes; how long it took, or `None`
/// when it was still open at the limit.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        let left = limit.checked_sub(started.elapsed())?;
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

/// Sends one keep-alive `GET path` and reads its whole answer (headers and a `content-length` body): the status.
async fn request(stream: &mut TcpStream, path: &str) -> u16 {
    let head = format!("GET {path} HTTP/1.1\r\nhost: localhost\r\n\r\n");
    stream.write_all(head.as_bytes()).await.expect("written");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("an answer in time")
            .expect("read");
        assert!(n > 0, "closed before the answer: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            if got.len() >= end + 4 + length {
                return text[9..12].parse().expect("a status");
            }
        }
    }
}

/// Sends the start of a request, then one header line every 300 ms for as long as the server reads them.
fn slowloris(mut stream: TcpStream) -> tokio::task::JoinHandle<Option<Duration>> {
    tokio::spawn(async move {
        let started = Instant::now();
        if stream.write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n").await.is_err() {
            return Some(started.elapsed());
        }
        let mut buf = [0u8; 1024];
        for i in 0..40 {
            tokio::select! {
                read = stream.read(&mut buf) => match read {
                    Ok(0) | Err(_) => return Some(started.elapsed()),
                    Ok(_) => {}
                },
                () = tokio::time::sleep(Duration::from_millis(300)) => {
                    if stream.write_all(format!("x-slow-{i}: y\r\n").as_bytes()).await.is_err() {
                        return Some(started.elapsed());
                    }
                }
            }
        }
        None
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slowloris_connections_are_closed_within_the_header_timeout() {
    let (server, _sage) = server(&[]).await;
    let mut slow = Vec::new();
    for _ in 0..60 {
        slow.push(slowloris(connect(&server).await));
    }
    // meanwhile a normal request is answered
    let (status, v) = server.call("GET", "/healthz", None, None).await;
    assert_eq!(status, 200, "{v}");
    for (i, s) in slow.into_iter().enumerate() {
        let closed = s.await.unwrap();
        let after = closed.unwrap_or_else(|| panic!("slow connection {i} still open after 12 s"));
        assert!(after < Duration::from_secs(4), "slow connection {i} closed only after {after:?}");
    }
    // a connection that sends nothing at all
    let mut silent = connect(&server).await;
    let after = closed_within(&mut silent, Duration::from_secs(6)).await.expect("a silent connection is closed");
    assert!(after < Duration::from_secs(4), "{after:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout_not_the_header_timeout() {
    let (server, _sage) = server(&[]).await;
    let mut stream = connect(&server).await;
    assert_eq!(request(&mut stream, "/healthz").await, 200);
    // idle longer than the header timeout: still open, and serves a further request
    tokio::time::sleep(Duration::from_millis(1800)).await;
    assert_eq!(request(&mut stream, "/healthz").await, 200);
    let after = closed_within(&mut stream, Duration::from_secs(10)).await.expect("the idle connection is closed");
    assert!(after > Duration::from_millis(2500) && after < Duration::from_secs(5), "closed after {after:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_is_answered_by_the_request_timeout_in_the_api_error_format() {
    let (server, _sage) = server(&[]).await;
    let org = server.organization("stall").await;
    let mut stream = connect(&server).await;
    let head = format!(
        "POST /elements/api-v2/instances/1/events/replay HTTP/1.1\r\nhost: localhost\r\nauthorization: {}\r\n\
         content-type: application/json\r\ncontent-length: 1000\r\n\r\n{{\"name\":",
        org.authorization
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(8), stream.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        if String::from_utf8_lossy(&got).contains("}]") || String::from_utf8_lossy(&got).ends_with('}') {
            break;
        }
    }
    let text = String::from_utf8_lossy(&got).to_string();
    assert!(started.elapsed() < Duration::from_secs(4), "answered after {:?}: {text}", started.elapsed());
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    let body: Value = serde_json::from_str(&text[text.find("\r\n\r\n").unwrap() + 4..]).expect("a JSON body");
    assert_eq!(body["code"], "request_timeout", "{body}");
    assert!(body["requestId"].is_string() && body["errors"].is_array(), "{body}");
    assert!(body["message"].as_str().unwrap().contains("2 s"), "{body}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_feed_wait_longer_than_the_request_timeout_still_works() {
    let (server, _sage) = server(&[]).await;
    let org = server.organization("feed").await;
    let mut body: Value = serde_json::from_str(SEED_EXAMPLE).unwrap();
    body["configuration"]["event.notification.enabled"] = json!(false);
    let (_, created) = server.api(&org).create_instance(&body).await;
    let id = created["id"].as_i64().expect("an id");
    let started = Instant::now();
    let (status, v) =
        server.call("GET", &format!("/instances/{id}/changes?wait=5"), Some(&org.authorization), None).await;
    assert_eq!(status, 200, "{v}");
    assert!(started.elapsed() >= Duration::from_millis(4900), "waited {:?}", started.elapsed());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cap_on_connections_holds_a_new_one_back_until_one_closes() {
    let (server, _sage) = server(&["--http-max-connections", "2"]).await;
    let mut a = connect(&server).await;
    let mut b = connect(&server).await;
    assert_eq!(request(&mut a, "/healthz").await, 200);
    assert_eq!(request(&mut b, "/healthz").await, 200);
    let started = Instant::now();
    let (status, _) = server.call("GET", "/healthz", None, None).await;
    assert_eq!(status, 200);
    // served once the idle timeout closed one of the two
    assert!(
        started.elapsed() > Duration::from_secs(2),
        "served after {:?} beside two open connections",
        started.elapsed()
    );
    server.stop().await;
}

#[test]
fn timeouts_that_would_cut_what_they_guard_are_refused() {
    let parse = |args: &[&str]| oc_bin::settings::ServeSettings::from_args(args);
    let s = parse(&[]).unwrap();
    assert_eq!(
        (s.http_header_timeout_seconds, s.http_idle_timeout_seconds, s.http_request_timeout_seconds),
        (10, 60, 30)
    );
    assert_eq!(s.sage_call_deadline_seconds, 25);
    for bad in [
        &["--http-header-timeout-seconds", "0"][..],
        &["--http-idle-timeout-seconds", "0"],
        &["--http-request-timeout-seconds", "0"],
        &["--http-max-connections", "0"],
        &["--sage-call-deadline-seconds", "0"],
    ] {
        let err = parse(bad).expect_err(bad[0]).to_string();
        assert!(err.contains(bad[0]), "{err}");
    }
    let s = parse(&["--sage-call-deadline-seconds", "40"]).unwrap();
    let err = oc_bin::service::http_limits(&s).expect_err("a request timeout under the Sage deadline").to_string();
    assert!(err.contains("--http-request-timeout-seconds") && err.contains("--sage-call-deadline-seconds"), "{err}");
}
