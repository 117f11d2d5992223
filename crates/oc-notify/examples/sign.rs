//! Signs a notification body as ocpoll does: the `Elements-Webhook-Signature` of Open Connectors and the
//! Standard Webhooks `webhook-signature`, and prints the secret a Standard Webhooks library verifies it with.
//!
//! ```text
//! cargo run -p oc-notify --example sign -- my-signature-key '{"message":{}}'
//! ```

use oc_model::Secret;
use oc_notify::signing::{elements_signature, standard_signature, standard_webhooks_secret};

fn main() {
    let mut args = std::env::args().skip(1);
    let key = Secret::new(args.next().unwrap_or_else(|| "k3y".into()));
    let body = args.next().unwrap_or_else(|| r#"{"message":{}}"#.into());
    let id = "msg_example";
    let timestamp = chrono::Utc::now().timestamp();
    println!("Elements-Webhook-Signature: {}", elements_signature(&key, body.as_bytes()));
    println!("webhook-id: {id}");
    println!("webhook-timestamp: {timestamp}");
    println!("webhook-signature: {}", standard_signature(&key, id, timestamp, body.as_bytes()));
    println!("(Standard Webhooks secret: {})", standard_webhooks_secret(&key).expose());
}
