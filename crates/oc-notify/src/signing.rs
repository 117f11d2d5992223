//! Signatures of a notification: Open Connectors' `Elements-Webhook-Signature` and the Standard Webhooks
//! `webhook-signature`, both HMAC-SHA256 with the bytes of `event.notification.signature.key`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use oc_model::Secret;
use sha2::Sha256;

/// `Elements-Webhook-Id`: the notification id (Open Connectors).
pub const ELEMENTS_WEBHOOK_ID: &str = "Elements-Webhook-Id";
/// `Elements-Webhook-Signature`: `sha256=<base64(HMAC-SHA256(key, body))>` (Open Connectors).
pub const ELEMENTS_WEBHOOK_SIGNATURE: &str = "Elements-Webhook-Signature";
/// `webhook-id` (Standard Webhooks): the notification id.
pub const WEBHOOK_ID: &str = "webhook-id";
/// `webhook-timestamp` (Standard Webhooks): Unix seconds of the attempt.
pub const WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
/// `webhook-signature` (Standard Webhooks): `v1,<base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))>`.
pub const WEBHOOK_SIGNATURE: &str = "webhook-signature";

type HmacSha256 = Hmac<Sha256>;

fn mac(key: &Secret) -> HmacSha256 {
    // `new_from_slice` refuses key lengths only for MACs of a fixed key size; HMAC takes keys of any length.
    HmacSha256::new_from_slice(key.expose().as_bytes()).expect("hmac takes keys of any length")
}

/// The value of `Elements-Webhook-Signature` for `body`: `sha256=<base64>`.
///
/// ```
/// use oc_model::Secret;
/// let v = oc_notify::signing::elements_signature(&Secret::new("key"), b"{}");
/// assert!(v.starts_with("sha256="));
/// ```
pub fn elements_signature(key: &Secret, body: &[u8]) -> String {
    let mut mac = mac(key);
    mac.update(body);
    format!("sha256={}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// The value of `webhook-signature` for one attempt: `v1,<base64>` over `{id}.{timestamp}.{body}`.
pub fn standard_signature(key: &Secret, id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = mac(key);
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// The Standard Webhooks secret equivalent to a signature key: `whsec_` + base64(key bytes). A receiver using
/// a Standard Webhooks library verifies `webhook-signature` with it.
pub fn standard_webhooks_secret(key: &Secret) -> Secret {
    Secret::new(format!("whsec_{}", STANDARD.encode(key.expose().as_bytes())))
}

/// The keys that sign one attempt.
#[derive(Debug, Clone, Copy, Default)]
pub struct SigningKeys<'a> {
    /// `event.notification.signature.key`: signs both headers.
    pub current: Option<&'a Secret>,
    /// The key it replaced, during a rotation's overlap: signs `webhook-signature` too, after the current one
    /// (Standard Webhooks' space-separated list), so a receiver still on the old key keeps verifying.
    pub previous: Option<&'a Secret>,
}

impl<'a> SigningKeys<'a> {
    /// One key, no rotation.
    pub fn one(key: Option<&'a Secret>) -> SigningKeys<'a> {
        SigningKeys { current: key, previous: None }
    }
}

/// The signature headers of one attempt, in the order sent.
///
/// `webhook-id` and `webhook-timestamp` always; `Elements-Webhook-Id` always; the two signatures only with a key:
/// `Elements-Webhook-Signature` by the current key, `webhook-signature` by the current key and, during a
/// rotation, by the previous one (`v1,<new> v1,<old>`).
///
/// ```
/// use oc_model::Secret;
/// use oc_notify::signing::{SigningKeys, signature_headers};
/// let (new, old) = (Secret::new("new"), Secret::new("old"));
/// let keys = SigningKeys { current: Some(&new), previous: Some(&old) };
/// let headers = signature_headers(keys, "id", 1_700_000_000, b"{}");
/// let standard = headers.iter().find(|(k, _)| *k == "webhook-signature").unwrap();
/// assert_eq!(standard.1.split(' ').count(), 2);
/// ```
pub fn signature_headers(keys: SigningKeys<'_>, id: &str, timestamp: i64, body: &[u8]) -> Vec<(&'static str, String)> {
    let mut headers = Vec::with_capacity(5);
    headers.push((ELEMENTS_WEBHOOK_ID, id.to_string()));
    if let Some(key) = keys.current {
        headers.push((ELEMENTS_WEBHOOK_SIGNATURE, elements_signature(key, body)));
    }
    headers.push((WEBHOOK_ID, id.to_string()));
    headers.push((WEBHOOK_TIMESTAMP, timestamp.to_string()));
    if let Some(key) = keys.current {
        let mut value = standard_signature(key, id, timestamp, body);
        if let Some(previous) = keys.previous.filter(|p| p.expose() != key.expose()) {
            value.push(' ');
            value.push_str(&standard_signature(previous, id, timestamp, body));
        }
        headers.push((WEBHOOK_SIGNATURE, value));
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_signature_matches_known_vectors() {
        fn check(key: &str, body: &str, expected: &str) {
            assert_eq!(elements_signature(&Secret::new(key), body.as_bytes()), expected, "{key:?} {body:?}");
        }
        // RFC 4231 test case 2: HMAC-SHA256("Jefe", "what do ya want for nothing?")
        // = 5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843, base64-encoded.
        check("Jefe", "what do ya want for nothing?", "sha256=W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM=");
        // an empty key is still a key
        check("", "", "sha256=thNnmggU2ex3L5XXeMNfxf8Wl8STcVZTxscSFEKSxa0=");
    }

    #[test]
    fn standard_signature_signs_id_timestamp_and_body() {
        let key = Secret::new("Jefe");
        let a = standard_signature(&key, "msg_1", 1_700_000_000, b"{}");
        assert!(a.starts_with("v1,"));
        assert_ne!(a, standard_signature(&key, "msg_2", 1_700_000_000, b"{}"));
        assert_ne!(a, standard_signature(&key, "msg_1", 1_700_000_001, b"{}"));
        assert_ne!(a, standard_signature(&key, "msg_1", 1_700_000_000, b"{ }"));
        // the same as signing the concatenation in one go
        let whole = elements_signature(&key, b"msg_1.1700000000.{}");
        assert_eq!(a.trim_start_matches("v1,"), whole.trim_start_matches("sha256="));
    }

    #[test]
    fn whsec_is_base64_of_the_key_bytes() {
        assert_eq!(standard_webhooks_secret(&Secret::new("Jefe")).expose(), "whsec_SmVmZQ==");
    }

    #[test]
    fn headers_without_a_key_carry_no_signature() {
        let names: Vec<_> =
            signature_headers(SigningKeys::one(None), "id", 1, b"{}").into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, [ELEMENTS_WEBHOOK_ID, WEBHOOK_ID, WEBHOOK_TIMESTAMP]);
        let key = Secret::new("k");
        let names: Vec<_> =
            signature_headers(SigningKeys::one(Some(&key)), "id", 1, b"{}").into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [ELEMENTS_WEBHOOK_ID, ELEMENTS_WEBHOOK_SIGNATURE, WEBHOOK_ID, WEBHOOK_TIMESTAMP, WEBHOOK_SIGNATURE]
        );
    }
}
