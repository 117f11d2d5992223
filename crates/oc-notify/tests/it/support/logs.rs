//! Captures the tracing events emitted on the current thread, to check what is logged and at which level.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::{Dispatch, Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// One logged event.
#[derive(Debug, Clone)]
pub struct Line {
    pub level: Level,
    pub message: String,
    pub fields: BTreeMap<String, String>,
}

impl Line {
    /// A field as text (`None` when it was not recorded).
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

/// The events logged while its guard lives (on this thread: a current-thread runtime's tasks included).
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<Line>>>);

/// Keeps the capture on; dropping it stops it.
pub struct Guard {
    _default: tracing::subscriber::DefaultGuard,
    _anchor: Dispatch,
}

impl Logs {
    /// Starts capturing; stops when the guard is dropped.
    ///
    /// tracing caches whether a callsite is enabled once for the whole process. While a single dispatcher is
    /// registered, the cache is filled from the default dispatcher of the thread that first reaches the callsite:
    /// a parallel test without a subscriber would switch the callsite off for good, and this capture would miss
    /// its events. A second dispatcher registered for the capture's life makes tracing ask every registered
    /// dispatcher instead (both are interested in everything), and the rebuild repairs callsites cached before.
    pub fn capture() -> (Logs, Guard) {
        let logs = Logs::default();
        let anchor = Dispatch::new(tracing_subscriber::registry());
        let default = tracing::subscriber::set_default(tracing_subscriber::registry().with(logs.clone()));
        tracing::callsite::rebuild_interest_cache();
        (logs, Guard { _default: default, _anchor: anchor })
    }

    /// Takes the lines logged so far.
    pub fn take(&self) -> Vec<Line> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }

    /// Takes the lines logged so far with this message.
    pub fn take_message(&self, message: &str) -> Vec<Line> {
        self.take().into_iter().filter(|l| l.message == message).collect()
    }
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_string(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
}

impl<S: Subscriber> Layer<S> for Logs {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        let message = fields.remove("message").unwrap_or_default();
        self.0.lock().unwrap().push(Line { level: *event.metadata().level(), message, fields });
    }
}
