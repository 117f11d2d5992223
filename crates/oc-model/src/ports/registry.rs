//! [`Providers`]: the providers a server serves, by element key — the one registry the API, the scheduler and
//! the dispatcher share.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::instance::ElementInfo;
use crate::ports::provider::{Provider, ProviderSpec};

/// The providers of a server, by element key. Cheap to clone.
#[derive(Clone, Default)]
pub struct Providers {
    by_key: Arc<BTreeMap<String, Arc<dyn Provider>>>,
}

impl fmt::Debug for Providers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.by_key.keys()).finish()
    }
}

impl Providers {
    /// No provider.
    pub fn new() -> Providers {
        Providers::default()
    }

    /// Adds `provider` under its element key (replacing one registered under the same key).
    pub fn register(&mut self, provider: Arc<dyn Provider>) -> &mut Self {
        let key = provider.spec().element.key.clone();
        Arc::make_mut(&mut self.by_key).insert(key, provider);
        self
    }

    /// `self` with `provider` added.
    pub fn with(mut self, provider: Arc<dyn Provider>) -> Providers {
        self.register(provider);
        self
    }

    /// The provider of an element key.
    pub fn get(&self, key: &str) -> Option<&Arc<dyn Provider>> {
        self.by_key.get(key)
    }

    /// The description of the provider of an element key.
    pub fn spec(&self, key: &str) -> Option<&ProviderSpec> {
        self.get(key).map(|p| p.spec())
    }

    /// The element of a key as the API shows it; an element no provider serves (an instance created by a build
    /// that had it) is shown by its key alone.
    pub fn element(&self, key: &str) -> ElementInfo {
        match self.spec(key) {
            Some(spec) => spec.element.clone(),
            None => ElementInfo { id: 0, key: key.to_string(), name: key.to_string(), hub: String::new() },
        }
    }

    /// Every element key, in order.
    pub fn keys(&self) -> Vec<&str> {
        self.by_key.keys().map(String::as_str).collect()
    }

    /// Every provider, by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Arc<dyn Provider>)> {
        self.by_key.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// True when no provider is registered.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}
