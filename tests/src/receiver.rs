//! A customer's callback receiver for the tests: records every request with its headers and body, checks both
//! signatures (with `oc_bin::receiver`'s checks and, independently, with the `standardwebhooks` crate), and can be
//! switched to answer an error status or to answer slowly.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::post;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::Value;

/// One request that reached the receiver.
#[derive(Debug, Clone)]
pub struct Hook {
    /// When it arrived (it is recorded on arrival, before the answer).
    pub at: DateTime<Utc>,
    /// The path it was sent to.
    pub path: String,
    /// The status the receiver answered.
    pub answered: u16,
    /// The headers.
    pub headers: HeaderMap,
    /// The body as JSON (`Null` when it was not JSON).
    pub body: Value,
    /// The body as sent.
    pub raw: Bytes,
    /// `Elements-Webhook-Signature` right (`oc_bin::receiver::verify_elements`).
    pub elements_ok: bool,
    /// `webhook-signature` right (`oc_bin::receiver::verify_standard`).
    pub standard_ok: bool,
    /// `webhook-signature` right by the `standardwebhooks` crate with `whsec_` + base64(key).
    pub standard_crate_ok: bool,
}

impl Hook {
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `message.eventId`: the notification id.
    pub fn notification_id(&self) -> String {
        self.body["message"]["eventId"].as_str().unwrap_or_default().to_string()
    }

    /// The events of the notification, each with its record from `raw`.
    pub fn events(&self) -> Vec<Received> {
        let m = &self.body["message"];
        let object_type = m["raw"]["objectType"].as_str().unwrap_or_default();
        let records = m["raw"][object_type].as_array().cloned().unwrap_or_default();
        let events = m["events"].as_array().cloned().unwrap_or_default();
        events
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let object_id = e["objectId"].as_str().unwrap_or_default().to_string();
                let record = records
                    .iter()
                    .find(|r| r["id"].as_str() == Some(object_id.as_str()))
                    .or_else(|| if records.len() == events.len() { records.get(i) } else { None })
                    .cloned()
                    .unwrap_or(Value::Null);
                Received {
                    at: self.at,
                    notification_id: self.notification_id(),
                    instance_id: m["instanceId"].as_i64().unwrap_or_default(),
                    event_id: e["eventId"].as_str().unwrap_or_default().to_string(),
                    event_type: e["eventType"].as_str().unwrap_or_default().to_string(),
                    object_type: e["objectType"].as_str().unwrap_or_default().to_string(),
                    object_id,
                    date: e["date"].as_str().unwrap_or_default().to_string(),
                    record,
                }
            })
            .collect()
    }
}

/// One event of an accepted notification.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// When its notification arrived.
    pub at: DateTime<Utc>,
    /// Its notification's id (`message.eventId`).
    pub notification_id: String,
    /// `message.instanceId`.
    pub instance_id: i64,
    /// The event's own id.
    pub event_id: String,
    /// `CREATED`, `UPDATED` or `DELETED`.
    pub event_type: String,
    /// `customers`.
    pub object_type: String,
    /// The record id.
    pub object_id: String,
    /// The event's date.
    pub date: String,
    /// The record from `raw` (`Null` when absent).
    pub record: Value,
}

struct Inner {
    key: Vec<u8>,
    hooks: Mutex<Vec<Hook>>,
    status: AtomicU16,
    delay_ms: AtomicU64,
    in_flight: AtomicUsize,
}

/// A running receiver.
#[derive(Clone)]
pub struct Receiver {
    addr: SocketAddr,
    inner: Arc<Inner>,
}

impl Receiver {
    /// A receiver on a free loopback port checking signatures under `key`; it answers 200 until told otherwise.
    pub async fn start(key: &str) -> Receiver {
        let inner = Arc::new(Inner {
            key: key.as_bytes().to_vec(),
            hooks: Mutex::new(Vec::new()),
            status: AtomicU16::new(200),
            delay_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let addr = listener.local_addr().expect("an address");
        let app = Router::new().route("/{*rest}", post(take)).with_state(inner.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { addr, inner }
    }

    /// `http://ADDR/PATH`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{}", self.addr, path.trim_start_matches('/'))
    }

    /// Answers `status` from now on (200: accept).
    pub fn set_status(&self, status: u16) {
        self.inner.status.store(status, Ordering::SeqCst);
    }

    /// Waits this long before answering.
    pub fn set_delay(&self, delay: Duration) {
        self.inner.delay_ms.store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// Requests being received right now (not answered yet).
    pub fn in_flight(&self) -> usize {
        self.inner.in_flight.load(Ordering::SeqCst)
    }

    /// Every request so far, in arrival order.
    pub fn hooks(&self) -> Vec<Hook> {
        self.inner.hooks.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The requests answered with a 2xx, in arrival order.
    pub fn accepted(&self) -> Vec<Hook> {
        self.hooks().into_iter().filter(|h| (200..300).contains(&h.answered)).collect()
    }

    /// How many requests were answered with something else than a 2xx.
    pub fn refused(&self) -> usize {
        self.hooks().iter().filter(|h| !(200..300).contains(&h.answered)).count()
    }

    /// The events of the accepted notifications, in arrival order.
    pub fn events(&self) -> Vec<Received> {
        self.accepted().iter().flat_map(Hook::events).collect()
    }

    /// The accepted events of `path` only.
    pub fn events_at(&self, path: &str) -> Vec<Received> {
        let want = format!("/{}", path.trim_start_matches('/'));
        self.accepted().iter().filter(|h| h.path == want).flat_map(Hook::events).collect()
    }
}

/// How many events there are of each (objectId, eventType).
pub fn counts(events: &[Received]) -> BTreeMap<(String, String), usize> {
    let mut m = BTreeMap::new();
    for e in events {
        *m.entry((e.object_id.clone(), e.event_type.clone())).or_insert(0) += 1;
    }
    m
}

/// True when the `standardwebhooks` crate verifies `webhook-signature` of `body` with the key `key` (as `whsec_` + base64).
pub fn standard_crate_ok(key: &[u8], headers: &HeaderMap, body: &[u8]) -> bool {
    let secret = format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(key));
    let Ok(wh) = standardwebhooks::Webhook::new(&secret) else { return false };
    wh.verify(body, headers).is_ok()
}

struct InFlight(Arc<Inner>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Records the request at once (a receiver processes what it got even when the sender is gone before the answer),
/// then answers after the delay.
async fn take(State(inner): State<Arc<Inner>>, uri: Uri, headers: HeaderMap, body: Bytes) -> StatusCode {
    inner.in_flight.fetch_add(1, Ordering::SeqCst);
    let _guard = InFlight(inner.clone());
    let answered = inner.status.load(Ordering::SeqCst);
    let hook = Hook {
        at: Utc::now(),
        path: uri.path().to_string(),
        answered,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        raw: body.clone(),
        elements_ok: oc_bin::receiver::verify_elements(&inner.key, &headers, &body),
        standard_ok: oc_bin::receiver::verify_standard(&inner.key, &headers, &body),
        standard_crate_ok: standard_crate_ok(&inner.key, &headers, &body),
        headers,
    };
    inner.hooks.lock().unwrap_or_else(|e| e.into_inner()).push(hook);
    let delay = inner.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    StatusCode::from_u16(answered).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}
