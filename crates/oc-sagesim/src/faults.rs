//! Injected faults: latency, 5xx, 429 bursts, late-visible rows, and one-shot mutations applied right after a
//! given page of a list call has been served (a scan that sees the data move under it).

use std::time::Duration;

use rand::{Rng, SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What a page hook does once the page it waits for has been served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum PageAction {
    /// Deletes the record at `index` of the page just served (the rows after it shift one place up).
    DeleteFromPage {
        /// Position on the page, from 0.
        index: usize,
    },
    /// Updates the record at `index` of the page just served (its `updated_at` becomes now).
    UpdateFromPage {
        /// Position on the page, from 0.
        index: usize,
        /// Body-style fields to apply (may be empty: only `updated_at` moves).
        #[serde(default)]
        fields: Map<String, Value>,
    },
    /// Creates a record.
    Create {
        /// Body-style fields of the new record.
        fields: Map<String, Value>,
    },
    /// Updates the record `id`.
    Update {
        /// The record.
        id: String,
        /// Body-style fields to apply.
        #[serde(default)]
        fields: Map<String, Value>,
    },
    /// Deletes the record `id`.
    Delete {
        /// The record.
        id: String,
    },
}

/// A mutation applied once, right after page `after_page` of a list call of `resource` has been served — between
/// two page requests of one scan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PageHook {
    /// The business whose list call triggers it; `None`: any.
    #[serde(default)]
    pub business: Option<String>,
    /// The resource, e.g. `contacts`.
    pub resource: String,
    /// The page number after which it fires.
    pub after_page: usize,
    /// What it does.
    pub action: PageAction,
}

/// The current fault settings, as the admin API shows them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FaultSettings {
    /// Added to every API response.
    pub latency_ms: u64,
    /// Share of API requests answered 500 (0.0 to 1.0), drawn from the seeded generator.
    pub error_rate: f64,
    /// The next this many API requests are answered 500.
    pub fail_next: u32,
    /// The next this many API requests are answered 429.
    pub throttle_next: u32,
    /// `Retry-After` seconds sent with those 429s; `None`: no header.
    pub throttle_retry_after: Option<u64>,
    /// Changes become visible to list calls this many seconds after their `updated_at`.
    pub visibility_delay_seconds: u64,
    /// Page hooks still waiting.
    pub page_hooks: Vec<PageHook>,
}

/// The fault state with its random generator.
#[derive(Debug)]
pub(crate) struct Faults {
    pub(crate) settings: FaultSettings,
    rng: StdRng,
}

/// What the fault gate decided for one API request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Injected {
    None,
    Throttle(Option<u64>),
    Fail,
}

impl Faults {
    pub(crate) fn new(seed: u64) -> Self {
        Faults { settings: FaultSettings::default(), rng: StdRng::seed_from_u64(seed ^ 0x5eed_fa17) }
    }

    pub(crate) fn latency(&self) -> Duration {
        Duration::from_millis(self.settings.latency_ms)
    }

    pub(crate) fn visibility_delay(&self) -> chrono::Duration {
        chrono::Duration::seconds(self.settings.visibility_delay_seconds.min(i64::MAX as u64) as i64)
    }

    /// Consumes one burst slot or draws the error rate.
    pub(crate) fn gate(&mut self) -> Injected {
        let s = &mut self.settings;
        if s.throttle_next > 0 {
            s.throttle_next -= 1;
            return Injected::Throttle(s.throttle_retry_after);
        }
        if s.fail_next > 0 {
            s.fail_next -= 1;
            return Injected::Fail;
        }
        if s.error_rate > 0.0 && self.rng.gen_bool(s.error_rate.clamp(0.0, 1.0)) {
            return Injected::Fail;
        }
        Injected::None
    }

    /// Removes and returns the hooks due after `page` of a list of `resource` in `business`.
    pub(crate) fn take_hooks(&mut self, business: &str, resource: &str, page: usize) -> Vec<PageHook> {
        let hooks = &mut self.settings.page_hooks;
        if hooks.is_empty() {
            return vec![];
        }
        let due = |h: &PageHook| {
            h.resource == resource && h.after_page == page && h.business.as_deref().is_none_or(|b| b == business)
        };
        let (fire, keep): (Vec<_>, Vec<_>) = std::mem::take(hooks).into_iter().partition(due);
        *hooks = keep;
        fire
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_come_first_then_the_rate() {
        let mut f = Faults::new(1);
        f.settings.throttle_next = 2;
        f.settings.throttle_retry_after = Some(3);
        f.settings.fail_next = 1;
        assert_eq!(f.gate(), Injected::Throttle(Some(3)));
        assert_eq!(f.gate(), Injected::Throttle(Some(3)));
        assert_eq!(f.gate(), Injected::Fail);
        assert_eq!(f.gate(), Injected::None);
        f.settings.error_rate = 1.0;
        assert_eq!(f.gate(), Injected::Fail);
        f.settings.error_rate = 0.5;
        let fails = (0..1000).filter(|_| f.gate() == Injected::Fail).count();
        assert!((350..650).contains(&fails), "{fails}");
    }

    #[test]
    fn hooks_fire_once_for_their_page() {
        let mut f = Faults::new(1);
        let hook = |business: Option<&str>, page| PageHook {
            business: business.map(str::to_owned),
            resource: "contacts".into(),
            after_page: page,
            action: PageAction::DeleteFromPage { index: 0 },
        };
        f.settings.page_hooks = vec![hook(None, 1), hook(Some("b2"), 1), hook(None, 2)];
        assert_eq!(f.take_hooks("b1", "contacts", 1), vec![hook(None, 1)]);
        assert!(f.take_hooks("b1", "contacts", 1).is_empty());
        assert!(f.take_hooks("b1", "products", 2).is_empty());
        assert_eq!(f.take_hooks("b2", "contacts", 1).len(), 1);
        assert_eq!(f.settings.page_hooks, vec![hook(None, 2)]);
    }

    #[test]
    fn page_actions_read_from_json() {
        let a: PageAction = serde_json::from_str(r#"{"kind":"delete_from_page","index":0}"#).expect("json");
        assert_eq!(a, PageAction::DeleteFromPage { index: 0 });
        let a: PageAction = serde_json::from_str(r#"{"kind":"update","id":"x"}"#).expect("json");
        assert_eq!(a, PageAction::Update { id: "x".into(), fields: Map::new() });
    }
}
