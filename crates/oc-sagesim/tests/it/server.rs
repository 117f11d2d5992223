//! The simulator as a real server: binds port 0, answers over TCP with the three URLs it announces, stops
//! gracefully.

use std::time::Duration;

use oc_sagesim::{SimConfig, Simulator, parse_app};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One HTTP/1.1 request on a fresh connection; returns the raw response.
async fn http(addr: std::net::SocketAddr, request: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out)).await.expect("in time").expect("read");
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn serves_over_tcp_and_shuts_down() {
    let app = parse_app("cid:csecret:http://127.0.0.1:1/cb").expect("app");
    let sim =
        Simulator::start(SimConfig { apps: vec![app], customers: 3, ..SimConfig::default() }).await.expect("start");
    let base = sim.base_url();
    assert!(base.starts_with("http://127.0.0.1:") && !base.ends_with(":0"), "{base}");
    assert_eq!(sim.authorize_url(), format!("{base}/oauth2/auth/central"));
    assert_eq!(sim.token_url(), format!("{base}/token"));
    assert_eq!(sim.api_url(), format!("{base}/v3.1"));

    let token = sim.issue_tokens("cid").expect("tokens").access_token;
    let request = format!(
        "GET /v3.1/businesses/lead HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    let response = http(sim.addr(), &request).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.to_lowercase().contains("\r\ndate: "), "{response}");
    assert!(response.contains(&format!("\"id\":\"{}\"", sim.lead_business())), "{response}");

    let addr = sim.addr();
    sim.shutdown().await.expect("graceful shutdown");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "the listener is closed");
}

#[tokio::test]
async fn a_busy_address_is_a_bind_error() {
    let first = Simulator::start(SimConfig { customers: 1, ..SimConfig::default() }).await.expect("start");
    let taken = SimConfig { listen: first.addr(), customers: 1, ..SimConfig::default() };
    let err = Simulator::start(taken).await.expect_err("port in use");
    assert!(err.to_string().starts_with("cannot listen on"), "{err}");
    first.shutdown().await.expect("shutdown");
}
