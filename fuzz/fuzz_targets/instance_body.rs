//! Fuzz target `instance_body`: the structural validation of an instance body (`oc-model` `validate.rs`,
//! `validate_instance_request_with`, the structural part of what `POST /instances` runs on its JSON body).
//!
//! Input: any bytes; those that are JSON are validated under four sets of options (create or offline check,
//! any element or a known one; a provider's keys of every kind declared). Checks:
//! - nothing panics; a refusal names at least one problem, each with a message;
//! - validation never accepts a body it then fails to read: every typed accessor of the accepted configuration
//!   the engine, the dispatcher and the store call (`refresh_interval`, `notifications_enabled`, `event_types`,
//!   `signature_key_overlap`, `backfill`, `poller_configs`) succeeds, and the poller configuration read equals
//!   the one validation returned;
//! - the accepted request, written back to JSON (as the store keeps it), validates again to the same request.

#![no_main]

use libfuzzer_sys::fuzz_target;
use oc_model::config::{KeySpec, ValueKind};
use oc_model::validate::{ValidationOptions, validate_instance_request_with};
use serde_json::Value;

/// A provider's own keys, one of each kind (as `ProviderSpec::keys` declares them).
const PROVIDER_KEYS: &[KeySpec] = &[
    KeySpec { key: "signature.secret", kind: ValueKind::Text, secret: true, description: "text" },
    KeySpec { key: "country", kind: ValueKind::Text, secret: false, description: "text" },
    KeySpec { key: "p.bool", kind: ValueKind::Bool, secret: false, description: "bool" },
    KeySpec { key: "p.url", kind: ValueKind::Url, secret: false, description: "url" },
    KeySpec { key: "p.json", kind: ValueKind::Json, secret: false, description: "json" },
];

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<Value>(data) else { return };
    for (require_code, known_elements) in
        [(true, &["sageone"][..]), (false, &[][..]), (true, &[][..]), (false, &["sageone"][..])]
    {
        let options = ValidationOptions { require_code, known_elements, provider_keys: PROVIDER_KEYS };
        let validated = match validate_instance_request_with(&body, options) {
            Ok(v) => v,
            Err(problems) => {
                assert!(!problems.is_empty(), "refused without a problem");
                assert!(problems.iter().all(|p| !p.message.is_empty()), "{problems:?}");
                continue;
            }
        };
        let config = validated.request.configuration();
        let read = |what: &str, r: Result<(), String>| {
            if let Err(e) = r {
                panic!("accepted (require_code {require_code}), then {what} fails: {e}\nbody: {body}");
            }
        };
        read("refresh_interval", config.refresh_interval().map(drop).map_err(|p| p.to_string()));
        read("notifications_enabled", config.notifications_enabled().map(drop).map_err(|p| p.to_string()));
        read("event_types", config.event_types().map(drop).map_err(|p| p.to_string()));
        read("signature_key_overlap", config.signature_key_overlap().map(drop).map_err(|p| p.to_string()));
        read("backfill", config.backfill().map(drop).map_err(|p| p.to_string()));
        match config.poller_configs() {
            Ok(p) => assert_eq!(p, validated.pollers),
            Err(p) => panic!("accepted, then poller_configs fails: {p:?}\nbody: {body}"),
        }
        let _ = config.notification_callback_url();
        let _ = config.api_key();

        let stored = serde_json::to_value(&validated.request).expect("an accepted request serializes");
        match validate_instance_request_with(&stored, options) {
            Ok(again) => assert_eq!(again.request, validated.request, "written back: {stored}"),
            Err(p) => panic!("accepted, written back as {stored}, then refused: {p:?}"),
        }
    }
});
