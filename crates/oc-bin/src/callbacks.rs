//! The SSRF guard at configuration time: the callback URLs of an instance body (`event.notification.callback.url`,
//! `event.notification.operational.callback.url`) are checked when an instance is created or changed, so a
//! forbidden target (loopback, private, link-local such as cloud metadata, unique-local) is a 400 naming the key
//! instead of three days of failed deliveries. The guard at delivery stays: a name may resolve elsewhere later.

use oc_model::config::{config_path, keys};
use oc_model::{Problem, Problems};
use serde_json::Value;

/// The configuration keys holding a callback URL.
pub const CALLBACK_KEYS: [&str; 2] = [keys::NOTIFICATION_CALLBACK_URL, keys::OPERATIONAL_CALLBACK_URL];

/// Checks the callback URLs of `body` (an instance body with its `configuration`); every refusal at its key.
pub async fn check_callbacks(body: &Value, allow_private: bool) -> Result<(), Problems> {
    let mut problems = Problems::default();
    for key in CALLBACK_KEYS {
        let Some(url) = body.pointer("/configuration").and_then(|c| c.get(key)).and_then(Value::as_str) else {
            continue;
        };
        if let Err(refusal) = oc_notify::ssrf::check_callback(url, allow_private).await {
            problems.0.push(Problem::new(config_path(key), refusal.to_string()));
        }
    }
    if problems.is_empty() { Ok(()) } else { Err(problems) }
}

/// Every check of an instance body: [`check_instance_body`](crate::validation::check_instance_body) (every layer's
/// structure and plans) and the callback URLs ([`check_callbacks`]) under the server's
/// `--allow-private-callbacks`; every problem at once.
pub async fn check_body(
    state: &crate::api::AppState,
    body: &Value,
    require_code: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<crate::validation::Checked, Problems> {
    let checked = crate::validation::check_instance_body(body, &state.providers, require_code, now);
    let callbacks = check_callbacks(body, state.allow_private_callbacks).await;
    match (checked, callbacks) {
        (Ok(checked), Ok(())) => Ok(checked),
        (Ok(_), Err(problems)) => Err(problems),
        (Err(problems), Ok(())) => Err(problems),
        (Err(mut problems), Err(more)) => {
            problems.0.extend(more.0);
            Err(problems)
        }
    }
}
