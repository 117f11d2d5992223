//! List-call throughput of the simulator (issue 5, item 12: at least 10,000 list requests per second of 20
//! records each). Two measurements:
//!
//! - `in_process/*`: the axum router driven with `tower::ServiceExt::oneshot` on one thread — the simulator's own
//!   cost per request (auth, rate-limit bookkeeping, filtering, paging, JSON, request log);
//! - `loopback/*`: real HTTP/1.1 over TCP with keep-alive, 4 client connections against the server on the same
//!   machine — what a poller talking to `ocpoll sim` sees (client cost included).
//!
//! Run: `cargo bench -p oc-sagesim --bench list -- --quick` (or without `--quick` for criterion's defaults).

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use oc_sagesim::{AppRegistration, SimConfig, Simulator};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tower::ServiceExt;

const CUSTOMERS: usize = 1_000;

fn config() -> SimConfig {
    SimConfig {
        customers: CUSTOMERS,
        apps: vec![AppRegistration::new("bench", "secret", "http://127.0.0.1:1/cb")],
        // The benchmark measures the simulator, not its 200/min budget.
        rate_limit_per_minute: 0,
        ..SimConfig::default()
    }
}

const QUERIES: [(&str, &str); 4] = [
    ("contacts_default", "/v3.1/contacts?page=3"),
    (
        "customers_poll_projection",
        "/v3.1/contacts?contact_type_id=CUSTOMER&attributes=created_at,updated_at&updated_or_created_since=2000-01-01T00:00:00Z&page=2",
    ),
    ("sales_invoices_sorted", "/v3.1/sales_invoices?sort=updated_at&attributes=updated_at,total_amount"),
    ("contacts_all_attributes", "/v3.1/contacts?attributes=all&page=5"),
];

fn in_process(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let sim = Simulator::new(config()).expect("simulator");
    let token = format!("Bearer {}", sim.issue_tokens("bench").expect("tokens").access_token);
    let app = sim.router();
    let mut group = c.benchmark_group("in_process");
    group.throughput(Throughput::Elements(1));
    for (name, uri) in QUERIES {
        let check = rt.block_on(app.clone().oneshot(request(uri, &token))).expect("response");
        assert_eq!(check.status(), 200, "{uri}");
        let body = rt.block_on(axum::body::to_bytes(check.into_body(), usize::MAX)).expect("body");
        let json: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(json["$items"].as_array().map(Vec::len), Some(20), "{uri}: 20 records per page");
        group.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(async {
                    let response = app.clone().oneshot(request(uri, &token)).await.expect("response");
                    axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body")
                })
            })
        });
    }
    group.finish();
    sim.clear_requests();
}

fn request(uri: &str, token: &str) -> Request<Body> {
    Request::get(uri).header("authorization", token).body(Body::empty()).expect("request")
}

/// One keep-alive connection: sends `count` GETs one after the other, reading each response fully.
async fn client(addr: std::net::SocketAddr, uri: &'static str, token: String, count: usize) {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let request = format!("GET {uri} HTTP/1.1\r\nHost: sim\r\nAuthorization: {token}\r\n\r\n");
    let mut line = String::new();
    let mut body = Vec::new();
    for _ in 0..count {
        write.write_all(request.as_bytes()).await.expect("write");
        let mut length = 0usize;
        line.clear();
        read.read_line(&mut line).await.expect("status line");
        assert!(line.starts_with("HTTP/1.1 200"), "{line}");
        loop {
            line.clear();
            read.read_line(&mut line).await.expect("header");
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().expect("length");
            }
        }
        body.resize(length, 0);
        read.read_exact(&mut body).await.expect("body");
    }
}

fn loopback(c: &mut Criterion) {
    const CONNECTIONS: usize = 4;
    const PER_CONNECTION: usize = 100;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let handle = rt.block_on(Simulator::start(config())).expect("start");
    let token = format!("Bearer {}", handle.issue_tokens("bench").expect("tokens").access_token);
    let addr = handle.addr();
    let mut group = c.benchmark_group("loopback");
    group.throughput(Throughput::Elements((CONNECTIONS * PER_CONNECTION) as u64));
    for (name, uri) in &QUERIES[..2] {
        group.bench_function(*name, |b| {
            b.iter_custom(|iterations| {
                let mut total = Duration::ZERO;
                for _ in 0..iterations {
                    let start = Instant::now();
                    rt.block_on(async {
                        let tasks: Vec<_> = (0..CONNECTIONS)
                            .map(|_| tokio::spawn(client(addr, uri, token.clone(), PER_CONNECTION)))
                            .collect();
                        for t in tasks {
                            t.await.expect("client");
                        }
                    });
                    total += start.elapsed();
                    handle.clear_requests();
                }
                total
            })
        });
    }
    group.finish();
    rt.block_on(handle.shutdown()).expect("shutdown");
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = in_process, loopback
}
criterion_main!(benches);
