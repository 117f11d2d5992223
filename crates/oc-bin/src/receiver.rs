//! The demo's callback receiver: accepts notifications, verifies both signatures (`Elements-Webhook-Signature`
//! and Standard Webhooks' `webhook-signature`) the way a customer's receiver would, and keeps what arrived.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use oc_model::event::Notification;
use oc_sagesim::workload::Arrival;
use sha2::Sha256;
use tokio::sync::mpsc;

/// One notification as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Received {
    /// When it arrived.
    pub at: DateTime<Utc>,
    /// The body.
    pub notification: Notification,
    /// `Elements-Webhook-Signature` checked and right.
    pub elements_signature_ok: bool,
    /// `webhook-signature` checked and right.
    pub standard_signature_ok: bool,
}

impl Received {
    /// Both signatures checked and right.
    pub fn signed(&self) -> bool {
        self.elements_signature_ok && self.standard_signature_ok
    }

    /// The notification's events, in order, as the workload's ledger takes them (the date is the event's: the
    /// record's `updated_at`, or its deletion date).
    pub fn arrivals(&self) -> Vec<Arrival> {
        let message = &self.notification.message;
        message
            .events
            .iter()
            .map(|e| Arrival {
                instance: message.instance_id,
                object_id: e.object_id.clone(),
                event_type: e.event_type,
                date: e.date,
                event_id: e.event_id.clone(),
                at: self.at,
            })
            .collect()
    }
}

/// Shared state of the receiver.
#[derive(Clone)]
pub struct Receiver {
    key: Arc<Vec<u8>>,
    received: Arc<Mutex<Vec<Received>>>,
    feed: mpsc::UnboundedSender<Received>,
}

/// HMAC-SHA256 of `data` under `key`, base64.
pub fn hmac_b64(key: &[u8], data: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(data);
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Checks `Elements-Webhook-Signature: sha256=<b64>` over the body.
pub fn verify_elements(key: &[u8], headers: &HeaderMap, body: &[u8]) -> bool {
    let Some(sig) = headers.get("elements-webhook-signature").and_then(|v| v.to_str().ok()) else { return false };
    sig.strip_prefix("sha256=").is_some_and(|s| constant_eq(s.as_bytes(), hmac_b64(key, body).as_bytes()))
}

/// Checks Standard Webhooks' `webhook-signature: v1,<b64>` over `{id}.{timestamp}.{body}`.
pub fn verify_standard(key: &[u8], headers: &HeaderMap, body: &[u8]) -> bool {
    let get = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let (Some(id), Some(ts), Some(sigs)) = (get("webhook-id"), get("webhook-timestamp"), get("webhook-signature"))
    else {
        return false;
    };
    let mut signed = Vec::with_capacity(id.len() + ts.len() + body.len() + 2);
    signed.extend_from_slice(id.as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(ts.as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(body);
    let expected = hmac_b64(key, &signed);
    sigs.split(' ').filter_map(|s| s.strip_prefix("v1,")).any(|s| constant_eq(s.as_bytes(), expected.as_bytes()))
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Receiver {
    /// A receiver checking signatures under `key`; arrivals are also sent on the returned channel.
    pub fn new(key: &[u8]) -> (Self, mpsc::UnboundedReceiver<Received>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Receiver { key: Arc::new(key.to_vec()), received: Arc::default(), feed: tx }, rx)
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The HTTP app: `POST /` (and any path) takes a notification.
    pub fn app(&self) -> Router {
        Router::new().route("/", post(take)).route("/{*rest}", post(take)).with_state(self.clone())
    }
}

async fn take(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let Ok(notification) = serde_json::from_slice::<Notification>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let got = Received {
        at: Utc::now(),
        notification,
        elements_signature_ok: verify_elements(&r.key, &headers, &body),
        standard_signature_ok: verify_standard(&r.key, &headers, &body),
    };
    r.received.lock().unwrap_or_else(|e| e.into_inner()).push(got.clone());
    let _ = r.feed.send(got);
    StatusCode::OK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_both_signatures() {
        let key = b"demo-key";
        let body = br#"{"message":{}}"#;
        let mut h = HeaderMap::new();
        h.insert("elements-webhook-signature", format!("sha256={}", hmac_b64(key, body)).parse().unwrap());
        h.insert("webhook-id", "n1".parse().unwrap());
        h.insert("webhook-timestamp", "1700000000".parse().unwrap());
        let std_sig = hmac_b64(key, &[b"n1.1700000000.".as_slice(), body].concat());
        h.insert("webhook-signature", format!("v1,{std_sig}").parse().unwrap());
        assert!(verify_elements(key, &h, body));
        assert!(verify_standard(key, &h, body));
        assert!(!verify_elements(b"other", &h, body));
        assert!(!verify_standard(key, &h, b"tampered"));
    }
}
