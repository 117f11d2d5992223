//! The request log: every request the simulator served (except the admin API's own), readable back by tests and
//! over `/_sim/requests`.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One request served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggedRequest {
    /// Sequence number from 1, over the simulator's life.
    pub seq: u64,
    /// When it arrived, at the simulator's clock.
    pub at: DateTime<Utc>,
    /// HTTP method.
    pub method: String,
    /// Path, e.g. `/v3.1/contacts`.
    pub path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
    /// The `X-Business` header sent, if any.
    pub business: Option<String>,
    /// Whether an `Authorization` header was sent.
    pub authorized: bool,
    /// The status answered.
    pub status: u16,
}

/// A bounded log (the oldest entries go first) with a total count.
#[derive(Debug)]
pub(crate) struct RequestLog {
    entries: VecDeque<LoggedRequest>,
    capacity: usize,
    served: u64,
}

impl RequestLog {
    pub(crate) fn new(capacity: usize) -> Self {
        RequestLog { entries: VecDeque::new(), capacity, served: 0 }
    }

    pub(crate) fn push(&mut self, mut entry: LoggedRequest) {
        self.served += 1;
        entry.seq = self.served;
        if self.capacity == 0 {
            return;
        }
        if self.entries.len() >= self.capacity {
            self.entries.pop_front();
        }
        self.entries.push_back(entry);
    }

    pub(crate) fn entries(&self) -> Vec<LoggedRequest> {
        self.entries.iter().cloned().collect()
    }

    pub(crate) fn served(&self) -> u64 {
        self.served
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str) -> LoggedRequest {
        LoggedRequest {
            seq: 0,
            at: DateTime::<Utc>::UNIX_EPOCH,
            method: "GET".into(),
            path: path.into(),
            query: None,
            business: None,
            authorized: false,
            status: 200,
        }
    }

    #[test]
    fn keeps_the_newest_up_to_capacity_and_counts_all() {
        let mut log = RequestLog::new(2);
        for p in ["/a", "/b", "/c"] {
            log.push(entry(p));
        }
        let paths: Vec<_> = log.entries().into_iter().map(|e| (e.seq, e.path)).collect();
        assert_eq!(paths, [(2, "/b".to_owned()), (3, "/c".to_owned())]);
        assert_eq!(log.served(), 3);
        log.clear();
        assert!(log.entries().is_empty());
        assert_eq!(log.served(), 3);
    }
}
