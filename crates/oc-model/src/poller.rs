//! The per-resource poller configuration (`event.poller.configuration`).
//!
//! Built by a walk over the JSON that collects every problem with its path, so that one bad field never
//! hides another. Values are accepted in the lenient forms of [`crate::config`]; unknown fields are kept.

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::{describe, is_unfilled_placeholder, lenient_bool, lenient_f64, lenient_u64, parse_instant};
use crate::error::{Problems, path};

/// The poller configuration of every resource, in the order given.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PollerConfigs(pub IndexMap<String, PollerConfig>);

/// How the dates of a record are found and read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DatesConfiguration {
    /// Path of the last-modified date in a record (e.g. `updated_at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_date_field: Option<String>,
    /// Java `SimpleDateFormat` mask of the updated date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_date_format: Option<String>,
    /// Zone of the updated date when the mask has none (default GMT).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_date_timezone: Option<String>,
    /// Path of the creation date in a record (e.g. `created_at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_date_field: Option<String>,
    /// Java `SimpleDateFormat` mask of the created date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_date_format: Option<String>,
    /// Zone of the created date when the mask has none (default GMT).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_date_timezone: Option<String>,
    /// Fields not known to ocpoll, kept and echoed.
    #[serde(flatten)]
    #[schemars(skip)]
    pub extra: IndexMap<String, Value>,
}

/// The poller configuration of one resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PollerConfig {
    /// Hub-relative GET with placeholders, e.g. `/hubs/finance/customers?where=lastModifiedDate>='${date:...}'`.
    pub url: String,
    /// Path of the record id; dotted paths allowed (`user.id`).
    pub id_field: String,
    /// Where the record dates are and how to read them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dates_configuration: Option<DatesConfiguration>,
    /// Drop records whose updated date is not after the last poll time (default true).
    #[serde(default = "default_true")]
    #[schemars(with = "BoolLike")]
    pub filter_by_updated_date: bool,
    /// Drop records updated after this poll started; the next poll picks them up (default false).
    #[serde(default)]
    #[schemars(with = "BoolLike")]
    pub filter_by_current_date: bool,
    /// Seconds of slack when comparing created and updated dates (default 0).
    #[serde(default)]
    #[schemars(with = "NumberLike")]
    pub created_check_tolerance: f64,
    /// Records per page (the provider caps it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<NumberLike>")]
    pub page_size: Option<u32>,
    /// Seconds subtracted from the last poll time when rendering the URL (an overlap window).
    #[serde(default)]
    #[schemars(with = "NumberLike")]
    pub poll_delay: f64,
    /// ocpoll: where the first poll starts (ISO date or RFC 3339), instead of the instance's creation. Given later to
    /// a resource already polled, its watermark moves back there: the resource is replayed from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub backfill: Option<DateTime<Utc>>,
    /// ocpoll: for a resource without a deleted feed, find deletions by a complete scan of every id now and then
    /// (default false).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    #[schemars(with = "BoolLike")]
    pub reconcile_deletes: bool,
    /// ocpoll: minutes between two such scans (default 1440, at least 5).
    #[serde(default = "default_reconcile_period", skip_serializing_if = "is_default_reconcile_period")]
    #[schemars(with = "NumberLike")]
    pub reconcile_deletes_period: f64,
    /// Fields not known to ocpoll, kept and echoed.
    #[serde(flatten)]
    #[schemars(skip)]
    pub extra: IndexMap<String, Value>,
}

fn default_true() -> bool {
    true
}

/// Minutes between two reconciling scans by default: a day.
pub const DEFAULT_RECONCILE_PERIOD_MINUTES: f64 = 1440.0;
/// The shortest period between two reconciling scans, in minutes.
pub const MIN_RECONCILE_PERIOD_MINUTES: f64 = 5.0;

fn default_reconcile_period() -> f64 {
    DEFAULT_RECONCILE_PERIOD_MINUTES
}

fn is_default_reconcile_period(minutes: &f64) -> bool {
    *minutes == DEFAULT_RECONCILE_PERIOD_MINUTES
}

/// Schema stand-in: a boolean given as a JSON boolean or a string.
#[derive(schemars::JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum BoolLike {
    Bool(bool),
    Text(String),
}

/// Schema stand-in: a number given as a JSON number or a numeric string.
#[derive(schemars::JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum NumberLike {
    Number(f64),
    Text(String),
}

impl PollerConfig {
    /// A configuration with defaults for everything but `url` and `idField`.
    pub fn new(url: impl Into<String>, id_field: impl Into<String>) -> Self {
        PollerConfig {
            url: url.into(),
            id_field: id_field.into(),
            dates_configuration: None,
            filter_by_updated_date: true,
            filter_by_current_date: false,
            created_check_tolerance: 0.0,
            page_size: None,
            poll_delay: 0.0,
            backfill: None,
            reconcile_deletes: false,
            reconcile_deletes_period: DEFAULT_RECONCILE_PERIOD_MINUTES,
            extra: IndexMap::new(),
        }
    }

    /// The time between two reconciling scans.
    pub fn reconcile_period(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.reconcile_deletes_period.max(MIN_RECONCILE_PERIOD_MINUTES) * 60.0)
    }

    /// Reads one resource's configuration, adding every problem found to `problems`. An object is always read,
    /// a missing or unusable `url` or `idField` as empty text (with its problem), so that the rest of the entry
    /// can still be checked; `None` only when the value is not an object.
    pub fn from_value(value: &Value, base: &str, problems: &mut Problems) -> Option<PollerConfig> {
        let Some(obj) = value.as_object() else {
            problems.push(base, format!("expected an object, found {}", describe(value)));
            return None;
        };
        let url = required_text(obj, base, "url", problems);
        if let Some(url) = &url
            && !url.starts_with('/')
        {
            problems.push(path::member(base, "url"), "must be a hub-relative path starting with '/'");
        }
        let id_field = required_text(obj, base, "idField", problems);
        if let Some(id) = &id_field
            && id.split('.').any(str::is_empty)
        {
            problems.push(path::member(base, "idField"), format!("{id:?} is not a field path (empty segment)"));
        }
        let dates_configuration = match obj.get("datesConfiguration") {
            None | Some(Value::Null) => None,
            Some(v) => dates_from_value(v, &path::member(base, "datesConfiguration"), problems),
        };
        let flag = |name: &str, default: bool, problems: &mut Problems| match obj.get(name) {
            None | Some(Value::Null) => default,
            Some(v) => lenient_bool(v).unwrap_or_else(|| {
                problems.push(path::member(base, name), format!("expected a boolean, found {}", describe(v)));
                default
            }),
        };
        let filter_by_updated_date = flag("filterByUpdatedDate", true, problems);
        let filter_by_current_date = flag("filterByCurrentDate", false, problems);
        let seconds = |name: &str, problems: &mut Problems| match obj.get(name) {
            None | Some(Value::Null) => 0.0,
            Some(v) => match lenient_f64(v) {
                Some(s) if s >= 0.0 => s,
                _ => {
                    problems.push(path::member(base, name), format!("expected seconds ≥ 0, found {}", describe(v)));
                    0.0
                }
            },
        };
        let created_check_tolerance = seconds("createdCheckTolerance", problems);
        let poll_delay = seconds("pollDelay", problems);
        let page_size = match obj.get("pageSize") {
            None | Some(Value::Null) => None,
            Some(v) => match lenient_u64(v) {
                Some(n) if (1..=u64::from(u32::MAX)).contains(&n) => Some(n as u32),
                _ => {
                    problems.push(
                        path::member(base, "pageSize"),
                        format!("expected a whole number of records ≥ 1, found {}", describe(v)),
                    );
                    None
                }
            },
        };
        let backfill = match obj.get("backfill") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => parse_instant(s).or_else(|| {
                problems.push(
                    path::member(base, "backfill"),
                    format!("expected an ISO date or RFC 3339 date-time, found {s:?}"),
                );
                None
            }),
            Some(v) => {
                problems.push(path::member(base, "backfill"), format!("expected a date string, found {}", describe(v)));
                None
            }
        };
        let reconcile_deletes = flag("reconcileDeletes", false, problems);
        let reconcile_deletes_period = match obj.get("reconcileDeletesPeriod") {
            None | Some(Value::Null) => DEFAULT_RECONCILE_PERIOD_MINUTES,
            Some(v) => match lenient_f64(v) {
                Some(m) if m >= MIN_RECONCILE_PERIOD_MINUTES => m,
                _ => {
                    problems.push(
                        path::member(base, "reconcileDeletesPeriod"),
                        format!("expected minutes ≥ {MIN_RECONCILE_PERIOD_MINUTES}, found {}", describe(v)),
                    );
                    DEFAULT_RECONCILE_PERIOD_MINUTES
                }
            },
        };
        const KNOWN: &[&str] = &[
            "url",
            "idField",
            "datesConfiguration",
            "filterByUpdatedDate",
            "filterByCurrentDate",
            "createdCheckTolerance",
            "pageSize",
            "pollDelay",
            "backfill",
            "reconcileDeletes",
            "reconcileDeletesPeriod",
        ];
        let extra =
            obj.iter().filter(|(k, _)| !KNOWN.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect();
        Some(PollerConfig {
            url: url.unwrap_or_default(),
            id_field: id_field.unwrap_or_default(),
            dates_configuration,
            filter_by_updated_date,
            filter_by_current_date,
            created_check_tolerance,
            page_size,
            poll_delay,
            backfill,
            reconcile_deletes,
            reconcile_deletes_period,
            extra,
        })
    }

    /// The field of the updated date, when configured.
    pub fn updated_field(&self) -> Option<&str> {
        self.dates_configuration.as_ref()?.updated_date_field.as_deref()
    }

    /// The field of the created date, when configured.
    pub fn created_field(&self) -> Option<&str> {
        self.dates_configuration.as_ref()?.created_date_field.as_deref()
    }
}

fn required_text(obj: &Map<String, Value>, base: &str, name: &str, problems: &mut Problems) -> Option<String> {
    match obj.get(name) {
        None | Some(Value::Null) => {
            problems.push(path::member(base, name), "missing");
            None
        }
        Some(Value::String(s)) if s.trim().is_empty() => {
            problems.push(path::member(base, name), "must not be empty");
            None
        }
        Some(Value::String(s)) => Some(s.clone()),
        Some(v) => {
            problems.push(path::member(base, name), format!("expected a string, found {}", describe(v)));
            None
        }
    }
}

fn dates_from_value(value: &Value, base: &str, problems: &mut Problems) -> Option<DatesConfiguration> {
    let Some(obj) = value.as_object() else {
        problems.push(base, format!("expected an object, found {}", describe(value)));
        return None;
    };
    let text = |name: &str, problems: &mut Problems| match obj.get(name) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() || is_unfilled_placeholder(&Value::String(s.clone())) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(v) => {
            problems.push(path::member(base, name), format!("expected a string, found {}", describe(v)));
            None
        }
    };
    let d = DatesConfiguration {
        updated_date_field: text("updatedDateField", problems),
        updated_date_format: text("updatedDateFormat", problems),
        updated_date_timezone: text("updatedDateTimezone", problems),
        created_date_field: text("createdDateField", problems),
        created_date_format: text("createdDateFormat", problems),
        created_date_timezone: text("createdDateTimezone", problems),
        extra: obj
            .iter()
            .filter(|(k, _)| {
                ![
                    "updatedDateField",
                    "updatedDateFormat",
                    "updatedDateTimezone",
                    "createdDateField",
                    "createdDateFormat",
                    "createdDateTimezone",
                ]
                .contains(&k.as_str())
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    };
    for (field, format, name) in [
        (&d.updated_date_field, &d.updated_date_format, "updatedDateFormat"),
        (&d.created_date_field, &d.created_date_format, "createdDateFormat"),
    ] {
        if format.is_some() && field.is_none() {
            problems.push(path::member(base, name), "a format is given but its date field is not");
        }
    }
    Some(d)
}

impl PollerConfigs {
    /// Reads `event.poller.configuration` from a JSON object or a JSON-encoded string of one.
    pub fn from_value(value: &Value, base: &str) -> Result<PollerConfigs, Problems> {
        let (configs, problems) = PollerConfigs::read(value, base);
        if problems.is_empty() { Ok(configs) } else { Err(problems) }
    }

    /// Reads as much of `event.poller.configuration` as can be read, with every problem found: every entry that
    /// is an object (see [`PollerConfig::from_value`]), so that a validator can go on checking them.
    pub fn read(value: &Value, base: &str) -> (PollerConfigs, Problems) {
        let mut problems = Problems::default();
        let parsed;
        let obj = match value {
            Value::Object(o) => o,
            Value::String(s) => match serde_json::from_str::<Value>(s) {
                Ok(Value::Object(o)) => {
                    parsed = o;
                    &parsed
                }
                Ok(other) => {
                    problems.push(base, format!("the JSON string must hold an object, it holds {}", describe(&other)));
                    return (PollerConfigs::default(), problems);
                }
                Err(e) => {
                    problems.push(base, format!("not valid JSON: {e}"));
                    return (PollerConfigs::default(), problems);
                }
            },
            other => {
                problems.push(base, format!("expected an object or a JSON string of one, found {}", describe(other)));
                return (PollerConfigs::default(), problems);
            }
        };
        let mut out = IndexMap::new();
        for (resource, v) in obj {
            if let Some(pc) = PollerConfig::from_value(v, &path::member(base, resource), &mut problems) {
                out.insert(resource.clone(), pc);
            }
        }
        (PollerConfigs(out), problems)
    }

    /// The resources, in order.
    pub fn resources(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// One resource's configuration.
    pub fn get(&self, resource: &str) -> Option<&PollerConfig> {
        self.0.get(resource)
    }

    /// Every (resource, configuration) pair.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &PollerConfig)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Number of resources.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when no resource is configured.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(v: Value, expected: &[&str]) {
        let got = PollerConfigs::from_value(&v, "p");
        let got: Vec<String> = match got {
            Ok(_) => vec![],
            Err(p) => p.iter().map(ToString::to_string).collect(),
        };
        assert_eq!(got, expected, "{v}");
    }

    #[test]
    fn problems_have_paths() {
        check(json!({"customers": {"url": "/hubs/finance/customers", "idField": "id"}}), &[]);
        check(json!({"customers": {}}), &["p.customers.url: missing", "p.customers.idField: missing"]);
        check(
            json!({"customers": {"url": 3, "idField": "a..b", "pageSize": "lots", "pollDelay": -1, "filterByCurrentDate": "maybe"}}),
            &[
                "p.customers.url: expected a string, found number 3",
                "p.customers.idField: \"a..b\" is not a field path (empty segment)",
                "p.customers.filterByCurrentDate: expected a boolean, found string \"maybe\"",
                "p.customers.pollDelay: expected seconds ≥ 0, found number -1",
                "p.customers.pageSize: expected a whole number of records ≥ 1, found string \"lots\"",
            ],
        );
        check(json!("not json"), &["p: not valid JSON: expected ident at line 1 column 2"]);
        check(json!("[1]"), &["p: the JSON string must hold an object, it holds an array"]);
        check(json!(7), &["p: expected an object or a JSON string of one, found number 7"]);
    }

    #[test]
    fn lenient_values_and_defaults() {
        let v = json!({"c": {"url": "/x", "idField": "user.id", "pageSize": "200", "pollDelay": "30",
            "filterByUpdatedDate": "FALSE", "createdCheckTolerance": 10, "backfill": "2024-01-02", "custom": [1]}});
        let p = PollerConfigs::from_value(&v, "p").unwrap();
        let c = p.get("c").unwrap();
        assert_eq!(c.page_size, Some(200));
        assert_eq!(c.poll_delay, 30.0);
        assert!(!c.filter_by_updated_date);
        assert!(!c.filter_by_current_date);
        assert_eq!(c.created_check_tolerance, 10.0);
        assert_eq!(c.backfill.unwrap().to_rfc3339(), "2024-01-02T00:00:00+00:00");
        assert_eq!(c.extra["custom"], json!([1]));
    }

    #[test]
    fn json_string_form_is_the_same_as_the_object() {
        let obj = json!({"customers": {"url": "/hubs/finance/customers", "idField": "id"}});
        let a = PollerConfigs::from_value(&obj, "p").unwrap();
        let b = PollerConfigs::from_value(&Value::String(obj.to_string()), "p").unwrap();
        assert_eq!(a, b);
        assert!(a.get("customers").unwrap().filter_by_updated_date);
    }
}
