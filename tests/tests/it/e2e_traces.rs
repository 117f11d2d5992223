//! Issue 20, item 3: OpenTelemetry traces over OTLP/HTTP, from the real `ocpoll serve` binary to a local OTLP
//! receiver that decodes the protobuf export requests as a collector does.
//!
//! A change found by a poll and delivered to the receiver is one trace: the span `poll` (with the instance and
//! resource), its children `sage.request` (method, path, status) and `commit`, and the span `delivery` of the
//! notification carrying the change, a child of the poll's span although it ran later from the outbox. A
//! second run with `--trace-sample-ratio 0` exports nothing.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use oc_store::testing;
use oc_tests::process::{Node, NodeConfig, ocpoll_binary};
use oc_tests::receiver::Receiver;
use oc_tests::sim::Sage;
use oc_tests::{Api, eventually};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use prost::Message;

const KEY: &str = "e2e-traces-key";
const WAIT: Duration = Duration::from_secs(45);

/// One exported span, as the receiver decoded it.
#[derive(Debug, Clone)]
struct Span {
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    name: String,
    attributes: HashMap<String, String>,
    service: String,
}

#[derive(Default)]
struct Collected {
    spans: Vec<Span>,
    /// Content types of the export requests.
    content_types: Vec<String>,
}

/// A local OTLP/HTTP receiver: `POST /v1/traces` with `application/x-protobuf`.
struct OtlpReceiver {
    addr: SocketAddr,
    collected: Arc<Mutex<Collected>>,
}

fn text(value: Option<&opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(AnyValue::StringValue(s)) => s.clone(),
        Some(AnyValue::IntValue(i)) => i.to_string(),
        Some(AnyValue::BoolValue(b)) => b.to_string(),
        Some(AnyValue::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn export(
    State(collected): State<Arc<Mutex<Collected>>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Vec<u8>) {
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return (StatusCode::BAD_REQUEST, Vec::new());
    };
    let mut c = collected.lock().unwrap();
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
    c.content_types.push(content_type.to_string());
    for resource_spans in request.resource_spans {
        let service = resource_spans
            .resource
            .as_ref()
            .and_then(|r| r.attributes.iter().find(|a| a.key == "service.name"))
            .map(|a| text(a.value.as_ref()))
            .unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for s in scope.spans {
                c.spans.push(Span {
                    trace_id: hex(&s.trace_id),
                    span_id: hex(&s.span_id),
                    parent_span_id: hex(&s.parent_span_id),
                    name: s.name.clone(),
                    attributes: s.attributes.iter().map(|a| (a.key.clone(), text(a.value.as_ref()))).collect(),
                    service: service.clone(),
                });
            }
        }
    }
    (StatusCode::OK, ExportTraceServiceResponse::default().encode_to_vec())
}

impl OtlpReceiver {
    async fn start() -> OtlpReceiver {
        let collected = Arc::new(Mutex::new(Collected::default()));
        let app = axum::Router::new().route("/v1/traces", post(export)).with_state(collected.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        OtlpReceiver { addr, collected }
    }

    fn spans(&self) -> Vec<Span> {
        self.collected.lock().unwrap().spans.clone()
    }
}

/// The poll span whose trace holds a `delivery` span of `notification`, with that delivery span.
fn delivered_trace(spans: &[Span], notification: &str) -> Option<(Span, Span)> {
    let delivery = spans.iter().find(|s| {
        s.name == "delivery" && s.attributes.get("notification.id").map(String::as_str) == Some(notification)
    })?;
    let poll = spans
        .iter()
        .find(|s| s.name == "poll" && s.span_id == delivery.parent_span_id && s.trace_id == delivery.trace_id)?;
    Some((poll.clone(), delivery.clone()))
}

/// The real binary exporting to a local OTLP receiver, an instance polling the simulator, and one customer
/// created and delivered: what each test then reads the exported spans of.
struct World {
    otlp: OtlpReceiver,
    receiver: Receiver,
    node: Node,
    api: Api,
    id: i64,
    customer: String,
    _sage: Sage,
    _store: testing::TestStore,
}

/// Starts a [`World`] whose node exports to `http://RECEIVER{path}` with the flags `extra`.
async fn world(node_id: &str, path: &str, extra: &[&str]) -> World {
    tokio::task::spawn_blocking(ocpoll_binary).await.unwrap();
    let store = testing::sqlite().await;
    let sage = Sage::start(2).await.unwrap();
    let receiver = Receiver::start(KEY).await;
    let otlp = OtlpReceiver::start().await;
    let mut args = sage.serve_args();
    args.extend(["--otlp-endpoint".to_string(), format!("http://{}{path}", otlp.addr)]);
    args.extend(extra.iter().map(|a| a.to_string()));
    let mut config = NodeConfig::new(&store, node_id, args);
    // export every second instead of every 5 s
    config.env.push(("OTEL_BSP_SCHEDULE_DELAY".into(), "1000".into()));
    let node = Node::start(&config).await.unwrap();
    let api = Api::new(&node.api, &config.authorization());
    let code = sage.code().await.unwrap();
    let (id, _) = api.create_instance(&sage.instance_body(&code, &receiver.url("/hook"), KEY, 1.5)).await;
    let (customer, _) = sage.create_customer("Traced Customer");
    eventually(WAIT, "the CREATED event delivered", || async {
        receiver.events().iter().any(|e| e.object_id == customer && e.event_type == "CREATED")
    })
    .await;
    World { otlp, receiver, node, api, id, customer, _sage: sage, _store: store }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_change_is_one_trace_from_its_poll_to_its_delivery() {
    // a base URL: `/v1/traces` is appended
    // the simulator and the store are bound too: dropped here, they would be gone under the running node
    let World { otlp, receiver, node, id, customer, _sage, _store, .. } = world("traced", "", &[]).await;
    let hook = receiver
        .accepted()
        .into_iter()
        .find(|h| h.events().iter().any(|e| e.object_id == customer))
        .expect("the delivered notification");
    let notification = hook.notification_id();
    eventually(WAIT, "the trace of the delivered change exported", || async {
        delivered_trace(&otlp.spans(), &notification).is_some()
    })
    .await;

    let spans = otlp.spans();
    let (poll, delivery) = delivered_trace(&spans, &notification).unwrap();
    assert_eq!(poll.service, "ocpoll");
    assert_eq!(poll.attributes.get("instance.id"), Some(&id.to_string()), "{poll:?}");
    assert_eq!(poll.attributes.get("resource").map(String::as_str), Some("customers"), "{poll:?}");
    assert_eq!(poll.attributes.get("poll.status").map(String::as_str), Some("ok"), "{poll:?}");
    assert!(poll.parent_span_id.is_empty(), "a poll starts its trace: {poll:?}");
    let children: Vec<&Span> = spans.iter().filter(|s| s.parent_span_id == poll.span_id).collect();
    let requests: Vec<&&Span> = children.iter().filter(|s| s.name == "sage.request").collect();
    assert!(!requests.is_empty(), "the poll's Sage requests are its children: {children:#?}");
    for r in &requests {
        assert_eq!(r.trace_id, poll.trace_id);
        assert_eq!(r.attributes.get("http.request.method").map(String::as_str), Some("GET"), "{r:?}");
        assert_eq!(r.attributes.get("http.response.status_code").map(String::as_str), Some("200"), "{r:?}");
        assert!(r.attributes.get("url.path").is_some_and(|p| p.contains("contacts")), "{r:?}");
    }
    let commit = children.iter().find(|s| s.name == "commit").expect("the commit is a child of the poll");
    assert_ne!(commit.attributes.get("commit.events").map(String::as_str), Some("0"), "{commit:?}");
    assert_eq!(delivery.attributes.get("http.response.status_code").map(String::as_str), Some("200"));
    assert_eq!(delivery.attributes.get("delivery.outcome").map(String::as_str), Some("delivered"));
    assert_eq!(delivery.attributes.get("instance.id"), Some(&id.to_string()));
    let content_types = otlp.collected.lock().unwrap().content_types.clone();
    assert!(content_types.iter().all(|t| t == "application/x-protobuf"), "{content_types:?}");
    assert!(node.terminate(Duration::from_secs(20)).await, "a clean stop after exporting");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sample_ratio_of_zero_exports_no_poll() {
    let World { otlp, node, api, id, _sage, _store, .. } =
        world("untraced", "/v1/traces", &["--trace-sample-ratio", "0"]).await;
    api.wait_polls(id, 2, WAIT).await;
    assert!(node.terminate(Duration::from_secs(20)).await);
    let names: Vec<String> = otlp.spans().into_iter().map(|s| s.name).collect();
    assert!(!names.iter().any(|n| n == "poll" || n == "delivery" || n == "commit"), "{names:?}");
}

#[test]
fn a_bad_endpoint_is_refused_at_start_with_its_setting_named() {
    let out = std::process::Command::new(ocpoll_binary())
        .args(["serve", "--otlp-endpoint", "collector:4318", "--database-url", "sqlite::memory:"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--otlp-endpoint") && err.contains("http:// or https://"), "{err}");
    let out = std::process::Command::new(ocpoll_binary())
        .args(["serve", "--trace-sample-ratio", "1.5", "--database-url", "sqlite::memory:"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--trace-sample-ratio") && err.contains("ratio from 0 to 1"), "{err}");
}
