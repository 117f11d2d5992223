//! Instance configuration: every key of the Open Connectors contract with typed, lenient access.
//!
//! Values arrive as strings, booleans or numbers (`true`, `"true"`, `"TRUE"`; `15`, `"15"`, `"0.25"`); the
//! getters accept all of them. Unknown keys are kept in their original order and echoed back. Which keys
//! are secret is declared once, in [`KEYS`].

use std::time::Duration;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Problem, Problems, path};
use crate::poller::PollerConfigs;
use crate::secret::{MASK, Secret};

/// The configuration key names of Open Connectors' own keys (a provider declares its own in its
/// [`ProviderSpec`](crate::ports::ProviderSpec)).
pub mod keys {
    /// OAuth app client id.
    pub const OAUTH_API_KEY: &str = "oauth.api.key";
    /// OAuth app client secret.
    pub const OAUTH_API_SECRET: &str = "oauth.api.secret";
    /// Redirect URI registered with the provider.
    pub const OAUTH_CALLBACK_URL: &str = "oauth.callback.url";
    /// Whether notifications are sent.
    pub const NOTIFICATION_ENABLED: &str = "event.notification.enabled";
    /// Where notifications go.
    pub const NOTIFICATION_CALLBACK_URL: &str = "event.notification.callback.url";
    /// HMAC key of the `Elements-Webhook-Signature` header.
    pub const NOTIFICATION_SIGNATURE_KEY: &str = "event.notification.signature.key";
    /// ocpoll: the event types sent by webhook (a comma list or an array; default all). The feed keeps all.
    pub const NOTIFICATION_EVENT_TYPES: &str = "event.notification.eventTypes";
    /// ocpoll: how long the replaced signature key keeps signing beside a new one (minutes; default 24 h).
    pub const SIGNATURE_KEY_OVERLAP: &str = "event.notification.signature.key.overlap";
    /// ocpoll, kept by ocpoll (a value given is ignored): the key replaced last, signing until
    /// [`SIGNATURE_KEY_PREVIOUS_UNTIL`].
    pub const SIGNATURE_KEY_PREVIOUS: &str = "event.notification.signature.key.previous";
    /// ocpoll, kept by ocpoll: when the replaced key stops signing (RFC 3339).
    pub const SIGNATURE_KEY_PREVIOUS_UNTIL: &str = "event.notification.signature.key.previous.until";
    /// ocpoll: where operational alerts of the instance are POSTed (`instance.invalid`, `notifications.disabled`,
    /// `notification.failed`, `polling.failing`), signed with the signature key.
    pub const OPERATIONAL_CALLBACK_URL: &str = "event.notification.operational.callback.url";
    /// `polling`, the only kind ocpoll has.
    pub const VENDOR_TYPE: &str = "event.vendor.type";
    /// Minutes between polls.
    pub const POLLER_REFRESH_INTERVAL: &str = "event.poller.refresh_interval";
    /// Per-resource poller configuration.
    pub const POLLER_CONFIGURATION: &str = "event.poller.configuration";
    /// ocpoll: the instant the first poll starts from instead of the instance's creation.
    pub const POLLER_BACKFILL: &str = "event.poller.backfill";
    /// ocpoll: adaptive polling of this instance (default the server's `--adaptive-polling`): spare request
    /// budget of its business polls the resources where changes are likely now more often than the interval,
    /// which stays the promise.
    pub const POLLER_ADAPTIVE: &str = "event.poller.adaptive";
}

/// What kind of value a key holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// Free text.
    Text,
    /// A boolean (`true`, `"true"`, `"TRUE"`, ...).
    Bool,
    /// An absolute `http(s)` URL.
    Url,
    /// Minutes, possibly fractional, as a number or a string.
    Minutes,
    /// A JSON object or a JSON-encoded string of one.
    Json,
    /// Event types: a comma-separated string or an array of `CREATED`, `UPDATED`, `DELETED`.
    EventTypes,
    /// An ISO date or RFC 3339 date-time.
    Instant,
}

/// The declaration of one known configuration key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySpec {
    /// The key.
    pub key: &'static str,
    /// Its kind of value.
    pub kind: ValueKind,
    /// Stored encrypted and masked as `********` on read.
    pub secret: bool,
    /// One line for users.
    pub description: &'static str,
}

/// Open Connectors' own configuration keys, every element's: the one place that says which of them are secret.
/// A provider declares its own keys the same way ([`ProviderSpec::keys`](crate::ports::ProviderSpec::keys)).
pub const KEYS: &[KeySpec] = &[
    KeySpec { key: keys::OAUTH_API_KEY, kind: ValueKind::Text, secret: false, description: "OAuth app client id" },
    KeySpec {
        key: keys::OAUTH_API_SECRET,
        kind: ValueKind::Text,
        secret: true,
        description: "OAuth app client secret",
    },
    KeySpec {
        key: keys::OAUTH_CALLBACK_URL,
        kind: ValueKind::Text,
        secret: false,
        description: "redirect URI registered with the provider; must match the one used to get the code",
    },
    KeySpec {
        key: keys::NOTIFICATION_ENABLED,
        kind: ValueKind::Bool,
        secret: false,
        description: "send event notifications (default false)",
    },
    KeySpec {
        key: keys::NOTIFICATION_CALLBACK_URL,
        kind: ValueKind::Url,
        secret: false,
        description: "where notifications are POSTed",
    },
    KeySpec {
        key: keys::NOTIFICATION_SIGNATURE_KEY,
        kind: ValueKind::Text,
        secret: true,
        description: "HMAC-SHA256 key of the Elements-Webhook-Signature and webhook-signature headers",
    },
    KeySpec {
        key: keys::NOTIFICATION_EVENT_TYPES,
        kind: ValueKind::EventTypes,
        secret: false,
        description: "ocpoll: the event types sent by webhook, a comma list or an array of CREATED, UPDATED, DELETED (default all); the change feed keeps all",
    },
    KeySpec {
        key: keys::SIGNATURE_KEY_OVERLAP,
        kind: ValueKind::Minutes,
        secret: false,
        description: "ocpoll: minutes the replaced signature key keeps signing beside the new one (default 1440, 24 h; 0 for none)",
    },
    KeySpec {
        key: keys::OPERATIONAL_CALLBACK_URL,
        kind: ValueKind::Url,
        secret: false,
        description: "ocpoll: where operational alerts are POSTed (instance.invalid, notifications.disabled, notification.failed, polling.failing), signed like notifications; default the server's --operational-webhook-url",
    },
    KeySpec {
        key: keys::SIGNATURE_KEY_PREVIOUS,
        kind: ValueKind::Text,
        secret: true,
        description: "ocpoll, kept by ocpoll: the signature key replaced last, still signing webhook-signature until the next key",
    },
    KeySpec {
        key: keys::SIGNATURE_KEY_PREVIOUS_UNTIL,
        kind: ValueKind::Instant,
        secret: false,
        description: "ocpoll, kept by ocpoll: when the replaced signature key stops signing",
    },
    KeySpec {
        key: keys::VENDOR_TYPE,
        kind: ValueKind::Text,
        secret: false,
        description: "`polling`, the only kind ocpoll has",
    },
    KeySpec {
        key: keys::POLLER_REFRESH_INTERVAL,
        kind: ValueKind::Minutes,
        secret: false,
        description: "minutes between polls; fractions allowed, minimum 1 second, default 15",
    },
    KeySpec {
        key: keys::POLLER_CONFIGURATION,
        kind: ValueKind::Json,
        secret: false,
        description: "per-resource poller configuration: a JSON object or a JSON-encoded string of one",
    },
    KeySpec {
        key: keys::POLLER_BACKFILL,
        kind: ValueKind::Instant,
        secret: false,
        description: "ocpoll: ISO date or date-time the first poll starts from (default: the instance's creation)",
    },
    KeySpec {
        key: keys::POLLER_ADAPTIVE,
        kind: ValueKind::Bool,
        secret: false,
        description: "ocpoll: adaptive polling (default the server's --adaptive-polling): spare budget of the business polls resources with recent changes more often, down to a few seconds; the interval stays the longest wait",
    },
];

/// The declaration of one of Open Connectors' own keys.
pub fn key_spec(key: &str) -> Option<&'static KeySpec> {
    KEYS.iter().find(|k| k.key == key)
}

/// The secret keys of an instance: Open Connectors' own ([`SecretKeys::default`]) and its provider's. The store
/// encrypts their values at rest; the API masks them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretKeys(Vec<&'static str>);

impl Default for SecretKeys {
    /// Open Connectors' own secret keys.
    fn default() -> Self {
        SecretKeys::with(&[])
    }
}

impl SecretKeys {
    /// Open Connectors' own secret keys and those of `provider_keys`.
    pub fn with(provider_keys: &[KeySpec]) -> SecretKeys {
        SecretKeys(KEYS.iter().chain(provider_keys).filter(|k| k.secret).map(|k| k.key).collect())
    }

    /// True when `key` holds a secret.
    pub fn contains(&self, key: &str) -> bool {
        self.0.contains(&key)
    }

    /// The keys, Open Connectors' first.
    pub fn iter(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.0.iter().copied()
    }
}

/// Default minutes between polls (Open Connectors' default).
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(15 * 60);
/// Shortest refresh interval accepted.
pub const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(1);
/// How long a replaced signature key keeps signing by default.
pub const DEFAULT_SIGNATURE_KEY_OVERLAP: Duration = Duration::from_secs(24 * 60 * 60);
/// The longest overlap accepted (30 days).
pub const MAX_SIGNATURE_KEY_OVERLAP: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// An instance configuration: key → JSON value, in the order given.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Configuration(IndexMap<String, Value>);

/// True for a value such as `"<minutes>"`: a template placeholder the user has not filled in yet.
pub fn is_unfilled_placeholder(value: &Value) -> bool {
    matches!(value, Value::String(s) if s.len() > 2 && s.starts_with('<') && s.ends_with('>') && !s[1..s.len() - 1].contains(['<', '>']))
}

/// Reads a boolean leniently: `true`, `"true"`, `"TRUE"`, `"false"`, `1`, `0`.
pub fn lenient_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        Value::Number(n) => match n.as_i64() {
            Some(1) => Some(true),
            Some(0) => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// Reads a number leniently: `15`, `"15"`, `"0.25"`. Non-finite values are refused.
pub fn lenient_f64(value: &Value) -> Option<f64> {
    let v = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }?;
    v.is_finite().then_some(v)
}

/// Reads a non-negative integer leniently: `200`, `"200"`, `200.0`.
pub fn lenient_u64(value: &Value) -> Option<u64> {
    let v = lenient_f64(value)?;
    (v >= 0.0 && v.fract() == 0.0 && v <= u64::MAX as f64).then_some(v as u64)
}

/// Reads text: strings as they are, numbers and booleans written out.
pub fn lenient_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Parses minutes (possibly fractional) into a duration of whole milliseconds.
pub fn minutes_to_duration(minutes: f64) -> Option<Duration> {
    if !minutes.is_finite() || minutes <= 0.0 || minutes > 1.0e9 {
        return None;
    }
    Some(Duration::from_millis((minutes * 60_000.0).round() as u64))
}

/// Parses an ISO date (`2024-01-31`, midnight UTC) or an RFC 3339 date-time.
pub fn parse_instant(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let text = text.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&chrono::Utc));
    }
    let date = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc())
}

impl Configuration {
    /// An empty configuration.
    pub fn new() -> Self {
        Self::default()
    }

    /// The raw value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    /// Sets `key`, keeping its position when it exists.
    pub fn insert(&mut self, key: impl Into<String>, value: Value) {
        self.0.insert(key.into(), value);
    }

    /// Removes `key`, keeping the order of the others.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.0.shift_remove(key)
    }

    /// Every entry in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there is no entry.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Merges `patch` key by key (PATCH semantics): a `null` value removes the key.
    pub fn merge(&mut self, patch: &Configuration) {
        for (k, v) in patch.iter() {
            if v.is_null() {
                self.remove(k);
            } else {
                self.insert(k, v.clone());
            }
        }
    }

    fn text(&self, key: &str) -> Option<String> {
        self.get(key).filter(|v| !is_unfilled_placeholder(v)).and_then(lenient_text).filter(|s| !s.is_empty())
    }

    /// `oauth.api.key`.
    pub fn api_key(&self) -> Option<String> {
        self.text(keys::OAUTH_API_KEY)
    }

    /// `oauth.api.secret`.
    pub fn api_secret(&self) -> Option<Secret> {
        self.text(keys::OAUTH_API_SECRET).map(Secret::new)
    }

    /// `oauth.callback.url`.
    pub fn oauth_callback_url(&self) -> Option<String> {
        self.text(keys::OAUTH_CALLBACK_URL)
    }

    /// The value of any text key (a provider's own, say), leniently: numbers and booleans written out, empty text
    /// and unfilled placeholders as absent.
    pub fn text_of(&self, key: &str) -> Option<String> {
        self.text(key)
    }

    /// `event.notification.enabled` (default false). An unfilled template placeholder means the default.
    pub fn notifications_enabled(&self) -> Result<bool, Problem> {
        match self.get(keys::NOTIFICATION_ENABLED) {
            None | Some(Value::Null) => Ok(false),
            Some(v) if is_unfilled_placeholder(v) => Ok(false),
            Some(v) => lenient_bool(v).ok_or_else(|| {
                Problem::new(
                    config_path(keys::NOTIFICATION_ENABLED),
                    format!("expected a boolean, found {}", describe(v)),
                )
            }),
        }
    }

    /// `event.poller.adaptive`: `None` when not given (the server's default applies). An unfilled template
    /// placeholder means not given.
    pub fn poller_adaptive(&self) -> Result<Option<bool>, Problem> {
        match self.get(keys::POLLER_ADAPTIVE) {
            None | Some(Value::Null) => Ok(None),
            Some(v) if is_unfilled_placeholder(v) => Ok(None),
            Some(v) => lenient_bool(v).map(Some).ok_or_else(|| {
                Problem::new(config_path(keys::POLLER_ADAPTIVE), format!("expected a boolean, found {}", describe(v)))
            }),
        }
    }

    /// `event.notification.callback.url`.
    pub fn notification_callback_url(&self) -> Option<String> {
        self.text(keys::NOTIFICATION_CALLBACK_URL)
    }

    /// `event.notification.signature.key`.
    pub fn notification_signature_key(&self) -> Option<Secret> {
        self.text(keys::NOTIFICATION_SIGNATURE_KEY).map(Secret::new)
    }

    /// `event.notification.operational.callback.url`.
    pub fn operational_callback_url(&self) -> Option<String> {
        self.text(keys::OPERATIONAL_CALLBACK_URL)
    }

    /// `event.notification.eventTypes`: the event types the webhook sends (default all three). A comma list
    /// (`"CREATED, DELETED"`) or an array (`["CREATED"]`), in any case; an empty one sends none.
    pub fn event_types(&self) -> Result<Vec<crate::event::EventType>, Problem> {
        use crate::event::EventType;
        let key = keys::NOTIFICATION_EVENT_TYPES;
        let all = || vec![EventType::Created, EventType::Updated, EventType::Deleted];
        let names: Vec<String> = match self.get(key) {
            None | Some(Value::Null) => return Ok(all()),
            Some(v) if is_unfilled_placeholder(v) => return Ok(all()),
            Some(Value::String(s)) => s.split(',').map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| {
                    i.as_str().map(|t| t.trim().to_string()).ok_or_else(|| {
                        Problem::new(config_path(key), format!("expected event type names, found {}", describe(i)))
                    })
                })
                .collect::<Result<_, _>>()?,
            Some(v) => {
                return Err(Problem::new(
                    config_path(key),
                    format!("expected a comma list or an array of CREATED, UPDATED, DELETED, found {}", describe(v)),
                ));
            }
        };
        let mut types = Vec::new();
        for name in names {
            let t = EventType::parse(&name).ok_or_else(|| {
                Problem::new(config_path(key), format!("unknown event type {name:?}; known: CREATED, UPDATED, DELETED"))
            })?;
            if !types.contains(&t) {
                types.push(t);
            }
        }
        Ok(types)
    }

    /// True when the webhook sends events of `event_type`: there is a callback URL and the type is in
    /// [`event_types`](Self::event_types) (an unreadable list sends all, as validation refuses it before).
    /// Events the webhook does not send still go to the change feed.
    pub fn webhook_sends(&self, event_type: crate::event::EventType) -> bool {
        self.notification_callback_url().is_some() && self.event_types().map_or(true, |t| t.contains(&event_type))
    }

    /// `event.notification.signature.key.overlap` in minutes, fractions allowed; default 24 h, 0 for none, at
    /// most 30 days.
    pub fn signature_key_overlap(&self) -> Result<Duration, Problem> {
        let key = keys::SIGNATURE_KEY_OVERLAP;
        match self.get(key) {
            None | Some(Value::Null) => Ok(DEFAULT_SIGNATURE_KEY_OVERLAP),
            Some(v) if is_unfilled_placeholder(v) => Ok(DEFAULT_SIGNATURE_KEY_OVERLAP),
            Some(v) => match lenient_f64(v) {
                Some(m) if m >= 0.0 && m * 60.0 <= MAX_SIGNATURE_KEY_OVERLAP.as_secs_f64() => {
                    Ok(Duration::from_secs_f64(m * 60.0))
                }
                Some(m) => Err(Problem::new(
                    config_path(key),
                    format!("expected minutes from 0 to {}, found {m}", MAX_SIGNATURE_KEY_OVERLAP.as_secs() / 60),
                )),
                None => Err(Problem::new(config_path(key), format!("expected minutes, found {}", describe(v)))),
            },
        }
    }

    /// The replaced signature key, while it still signs at `now`.
    pub fn previous_signature_key(&self, now: chrono::DateTime<chrono::Utc>) -> Option<Secret> {
        let until = self.get(keys::SIGNATURE_KEY_PREVIOUS_UNTIL).and_then(Value::as_str).and_then(parse_instant)?;
        (now < until).then(|| self.text(keys::SIGNATURE_KEY_PREVIOUS).map(Secret::new)).flatten()
    }

    /// This configuration as it is stored after `current` (the stored one, `None` at creation) at `now`: the two
    /// keys that ocpoll keeps for a key rotation are never taken from the caller. When the signature key changes,
    /// the key it replaces keeps signing for the overlap ([`signature_key_overlap`](Self::signature_key_overlap));
    /// when it does not, the rotation in course (if any) is carried over; an ended one is dropped.
    pub fn with_key_rotation(
        mut self,
        current: Option<&Configuration>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Configuration {
        self.remove(keys::SIGNATURE_KEY_PREVIOUS);
        self.remove(keys::SIGNATURE_KEY_PREVIOUS_UNTIL);
        let Some(current) = current else { return self };
        let old = current.notification_signature_key();
        let new = self.notification_signature_key();
        let (key, until) = match old {
            Some(old) if new.as_ref().is_none_or(|n| n.expose() != old.expose()) => {
                let overlap = self.signature_key_overlap().unwrap_or(DEFAULT_SIGNATURE_KEY_OVERLAP);
                let until = chrono::Duration::from_std(overlap).ok().and_then(|d| now.checked_add_signed(d));
                (Some(old), until)
            }
            _ => {
                let until =
                    current.get(keys::SIGNATURE_KEY_PREVIOUS_UNTIL).and_then(Value::as_str).and_then(parse_instant);
                (current.text(keys::SIGNATURE_KEY_PREVIOUS).map(Secret::new), until)
            }
        };
        if let (Some(key), Some(until)) = (key, until)
            && until > now
        {
            self.insert(keys::SIGNATURE_KEY_PREVIOUS, Value::String(key.expose().to_string()));
            self.insert(
                keys::SIGNATURE_KEY_PREVIOUS_UNTIL,
                Value::String(until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            );
        }
        self
    }

    /// `event.poller.refresh_interval` in minutes, fractions allowed; default 15 minutes, minimum 1 second.
    /// An unfilled template placeholder (`"<minutes>"`) means the default.
    pub fn refresh_interval(&self) -> Result<Duration, Problem> {
        let key = keys::POLLER_REFRESH_INTERVAL;
        match self.get(key) {
            None | Some(Value::Null) => Ok(DEFAULT_REFRESH_INTERVAL),
            Some(v) if is_unfilled_placeholder(v) => Ok(DEFAULT_REFRESH_INTERVAL),
            Some(v) => {
                let minutes = lenient_f64(v).ok_or_else(|| {
                    Problem::new(
                        config_path(key),
                        format!("expected minutes as a number or a numeric string, found {}", describe(v)),
                    )
                })?;
                match minutes_to_duration(minutes) {
                    Some(d) if d >= MIN_REFRESH_INTERVAL => Ok(d),
                    // the upper bound of `minutes_to_duration`
                    _ if minutes > 1.0e9 => Err(Problem::new(
                        config_path(key),
                        format!("must be at most 1000000000 minutes (about 1900 years), found {minutes} minutes"),
                    )),
                    _ => Err(Problem::new(
                        config_path(key),
                        format!("must be at least 1 second (0.0167 minutes), found {minutes} minutes"),
                    )),
                }
            }
        }
    }

    /// `event.poller.backfill`: where the first poll starts, when set. An unfilled template placeholder
    /// (`"<date>"`) is not set: validation accepts it with a warning, so reading it must not fail.
    pub fn backfill(&self) -> Result<Option<chrono::DateTime<chrono::Utc>>, Problem> {
        let key = keys::POLLER_BACKFILL;
        match self.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) if is_unfilled_placeholder(v) => Ok(None),
            Some(Value::String(s)) => parse_instant(s).map(Some).ok_or_else(|| {
                Problem::new(config_path(key), format!("expected an ISO date or RFC 3339 date-time, found {s:?}"))
            }),
            Some(v) => {
                Err(Problem::new(config_path(key), format!("expected an ISO date string, found {}", describe(v))))
            }
        }
    }

    /// As much of `event.poller.configuration` as can be read, with every problem found
    /// ([`PollerConfigs::read`]). Absent → empty.
    pub fn read_poller_configs(&self) -> (PollerConfigs, Problems) {
        let base = config_path(keys::POLLER_CONFIGURATION);
        match self.get(keys::POLLER_CONFIGURATION) {
            None | Some(Value::Null) => (PollerConfigs::default(), Problems::default()),
            Some(v) => PollerConfigs::read(v, &base),
        }
    }

    /// `event.poller.configuration`, from a JSON object or a JSON-encoded string of one. Absent → empty.
    pub fn poller_configs(&self) -> Result<PollerConfigs, Problems> {
        let base = config_path(keys::POLLER_CONFIGURATION);
        match self.get(keys::POLLER_CONFIGURATION) {
            None | Some(Value::Null) => Ok(PollerConfigs::default()),
            Some(v) => PollerConfigs::from_value(v, &base),
        }
    }

    /// The configuration as the API returns it: the values of `secrets` masked as `********`, and
    /// `event.poller.configuration` echoed as a JSON string, as Open Connectors does.
    pub fn to_response(&self, secrets: &SecretKeys) -> Configuration {
        let mut out = IndexMap::with_capacity(self.0.len());
        for (k, v) in &self.0 {
            let shown = if secrets.contains(k) && !v.is_null() {
                Value::String(MASK.to_string())
            } else if k == keys::POLLER_CONFIGURATION && !v.is_string() && !v.is_null() {
                Value::String(v.to_string())
            } else {
                v.clone()
            };
            out.insert(k.clone(), shown);
        }
        Configuration(out)
    }
}

impl FromIterator<(String, Value)> for Configuration {
    fn from_iter<T: IntoIterator<Item = (String, Value)>>(iter: T) -> Self {
        Configuration(iter.into_iter().collect())
    }
}

/// Path of a configuration key in an instance body.
pub fn config_path(key: &str) -> String {
    path::member("configuration", key)
}

/// Describes a JSON value's type for an error message.
pub fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) if s.chars().count() > 40 => format!("string {:?}...", s.chars().take(40).collect::<String>()),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn with_key(key: &str) -> Configuration {
        let mut c = Configuration::default();
        c.insert(keys::NOTIFICATION_SIGNATURE_KEY, json!(key));
        c
    }

    fn at(text: &str) -> chrono::DateTime<chrono::Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn a_changed_signature_key_keeps_the_old_one_signing_for_the_overlap() {
        let now = at("2026-12-02T10:00:00Z");
        let rotated = with_key("new").with_key_rotation(Some(&with_key("old")), now);
        assert_eq!(rotated.get(keys::SIGNATURE_KEY_PREVIOUS), Some(&json!("old")));
        assert_eq!(rotated.get(keys::SIGNATURE_KEY_PREVIOUS_UNTIL), Some(&json!("2026-12-03T10:00:00Z")));
        assert_eq!(rotated.previous_signature_key(now).map(|k| k.expose().to_string()), Some("old".into()));
        assert_eq!(rotated.previous_signature_key(at("2026-12-03T10:00:00Z")), None, "the overlap has ended");

        // a later update without a new key carries the rotation over, whatever the caller sent for its keys
        let mut next = with_key("new");
        next.insert(keys::SIGNATURE_KEY_PREVIOUS, json!("forged"));
        next.insert(keys::SIGNATURE_KEY_PREVIOUS_UNTIL, json!("2099-01-01T00:00:00Z"));
        let carried = next.with_key_rotation(Some(&rotated), at("2026-12-02T12:00:00Z"));
        assert_eq!(carried.get(keys::SIGNATURE_KEY_PREVIOUS), Some(&json!("old")));
        assert_eq!(carried.get(keys::SIGNATURE_KEY_PREVIOUS_UNTIL), Some(&json!("2026-12-03T10:00:00Z")));
        // ...until it has ended: then it is dropped
        let ended = with_key("new").with_key_rotation(Some(&rotated), at("2026-12-04T00:00:00Z"));
        assert_eq!(ended.get(keys::SIGNATURE_KEY_PREVIOUS), None);
        assert_eq!(ended.get(keys::SIGNATURE_KEY_PREVIOUS_UNTIL), None);
    }

    #[test]
    fn the_overlap_is_a_setting_and_zero_means_none() {
        let now = at("2026-12-02T10:00:00Z");
        let mut new = with_key("new");
        new.insert(keys::SIGNATURE_KEY_OVERLAP, json!("90"));
        let rotated = new.clone().with_key_rotation(Some(&with_key("old")), now);
        assert_eq!(rotated.get(keys::SIGNATURE_KEY_PREVIOUS_UNTIL), Some(&json!("2026-12-02T11:30:00Z")));
        new.insert(keys::SIGNATURE_KEY_OVERLAP, json!(0));
        let none = new.clone().with_key_rotation(Some(&with_key("old")), now);
        assert_eq!(none.get(keys::SIGNATURE_KEY_PREVIOUS), None);
        for bad in [json!(-1), json!("soon"), json!(60 * 24 * 31)] {
            new.insert(keys::SIGNATURE_KEY_OVERLAP, bad.clone());
            let problem = new.signature_key_overlap().unwrap_err();
            assert!(problem.path.contains("signature.key.overlap"), "{bad}: {problem:?}");
        }
    }

    #[test]
    fn a_new_instance_and_an_unchanged_key_start_no_rotation() {
        let now = at("2026-12-02T10:00:00Z");
        let mut given = with_key("k");
        given.insert(keys::SIGNATURE_KEY_PREVIOUS, json!("forged"));
        let created = given.clone().with_key_rotation(None, now);
        assert_eq!(created.get(keys::SIGNATURE_KEY_PREVIOUS), None, "never taken from the caller");
        let same = with_key("k").with_key_rotation(Some(&with_key("k")), now);
        assert_eq!(same.get(keys::SIGNATURE_KEY_PREVIOUS), None);
        // a key removed: the old one keeps signing nothing (no current key, no signatures), but is kept for the overlap
        let removed = Configuration::default().with_key_rotation(Some(&with_key("k")), now);
        assert_eq!(removed.previous_signature_key(now).map(|k| k.expose().to_string()), Some("k".into()));
    }

    fn conf(v: Value) -> Configuration {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn adaptive_polling_is_a_boolean_or_the_servers_default() {
        let adaptive = |v: Value| conf(json!({ "event.poller.adaptive": v })).poller_adaptive();
        assert_eq!(adaptive(json!(true)).unwrap(), Some(true));
        assert_eq!(adaptive(json!("false")).unwrap(), Some(false));
        assert_eq!(adaptive(Value::Null).unwrap(), None);
        assert_eq!(conf(json!({})).poller_adaptive().unwrap(), None);
        let err = adaptive(json!("maybe")).unwrap_err();
        assert_eq!(err.path, r#"configuration["event.poller.adaptive"]"#);
        assert!(err.message.contains("expected a boolean"), "{err}");
    }

    #[test]
    fn lenient_booleans() {
        for (v, expected) in [
            (json!(true), Some(true)),
            (json!("true"), Some(true)),
            (json!("TRUE"), Some(true)),
            (json!(" False "), Some(false)),
            (json!(1), Some(true)),
            (json!("yes"), None),
            (json!([]), None),
        ] {
            assert_eq!(lenient_bool(&v), expected, "{v}");
        }
    }

    #[test]
    fn refresh_interval_forms() {
        fn check(v: Value, expected: Result<u64, &str>) {
            let c = conf(json!({ "event.poller.refresh_interval": v }));
            match (c.refresh_interval(), expected) {
                (Ok(d), Ok(ms)) => assert_eq!(d.as_millis() as u64, ms, "{v}"),
                (Err(p), Err(msg)) => assert!(p.message.contains(msg), "{v}: {p}"),
                (got, want) => panic!("{v}: got {got:?}, want {want:?}"),
            }
        }
        check(json!(15), Ok(900_000));
        check(json!("15"), Ok(900_000));
        check(json!("0.25"), Ok(15_000));
        check(json!(0.5), Ok(30_000));
        check(json!("<minutes>"), Ok(900_000));
        check(json!(null), Ok(900_000));
        check(json!("0.001"), Err("at least 1 second"));
        check(json!(0), Err("at least 1 second"));
        check(json!(-3), Err("at least 1 second"));
        check(json!("soon"), Err("expected minutes"));
        check(json!("NaN"), Err("expected minutes"));
        check(json!(true), Err("expected minutes"));
        check(json!("1e12"), Err("at most 1000000000 minutes"));
        check(json!(1.0e9), Ok(60_000_000_000_000));
    }

    #[test]
    fn response_masks_secrets_and_stringifies_poller_configuration() {
        let c = conf(json!({
            "oauth.api.key": "id",
            "oauth.api.secret": "s3cret",
            "zzz.custom": 1,
            "event.notification.signature.key": "k",
            "event.poller.configuration": {"customers": {"url": "/hubs/finance/customers", "idField": "id"}},
        }));
        let r = serde_json::to_value(c.to_response(&SecretKeys::default())).unwrap();
        assert_eq!(r["oauth.api.secret"], "********");
        assert_eq!(r["event.notification.signature.key"], "********");
        assert_eq!(r["oauth.api.key"], "id");
        assert_eq!(r["zzz.custom"], 1);
        assert!(r["event.poller.configuration"].as_str().unwrap().starts_with("{\"customers\""));
        // unknown keys keep their original order
        let keys: Vec<_> = c.to_response(&SecretKeys::default()).iter().map(|(k, _)| k.to_string()).collect();
        assert_eq!(keys[2], "zzz.custom");
    }

    #[test]
    fn merge_replaces_and_removes() {
        let mut c = conf(json!({"a": 1, "b": 2, "c": 3}));
        c.merge(&conf(json!({"b": 20, "c": null, "d": 4})));
        assert_eq!(serde_json::to_value(&c).unwrap(), json!({"a": 1, "b": 20, "d": 4}));
    }

    #[test]
    fn secrets_declared_once() {
        let secret: Vec<_> = SecretKeys::default().iter().collect();
        assert_eq!(
            secret,
            ["oauth.api.secret", "event.notification.signature.key", "event.notification.signature.key.previous"]
        );
        const PROVIDER: &[KeySpec] = &[
            KeySpec { key: "app.signing.secret", kind: ValueKind::Text, secret: true, description: "a secret" },
            KeySpec { key: "region", kind: ValueKind::Text, secret: false, description: "not a secret" },
        ];
        let with = SecretKeys::with(PROVIDER);
        assert!(with.contains("app.signing.secret") && with.contains("oauth.api.secret") && !with.contains("region"));
    }

    /// Found by the `instance_body` fuzz target: validation accepts an unfilled placeholder with a warning,
    /// so every accessor must read it as the default (the store refused `"event.poller.backfill": "<date>"`
    /// after the code exchange, and the engine failed each poll on it).
    #[test]
    fn accessors_read_placeholders_as_the_default() {
        let c = conf(json!({
            "event.poller.backfill": "<date>",
            "event.notification.enabled": "<true_or_false>",
            "event.poller.refresh_interval": "<minutes>",
            "event.notification.signature.key.overlap": "<minutes>",
            "event.notification.eventTypes": "<types>",
        }));
        assert_eq!(c.backfill(), Ok(None));
        assert_eq!(c.notifications_enabled(), Ok(false));
        assert_eq!(c.refresh_interval(), Ok(DEFAULT_REFRESH_INTERVAL));
        assert_eq!(c.signature_key_overlap(), Ok(DEFAULT_SIGNATURE_KEY_OVERLAP));
        assert_eq!(c.event_types().map(|t| t.len()), Ok(3));
    }

    #[test]
    fn placeholders() {
        assert!(is_unfilled_placeholder(&json!("<CLIENT_ID>")));
        assert!(!is_unfilled_placeholder(&json!("<a><b>")));
        assert!(!is_unfilled_placeholder(&json!("http://x")));
        assert!(!is_unfilled_placeholder(&json!("<>")));
    }
}
