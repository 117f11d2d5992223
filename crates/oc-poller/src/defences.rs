//! The defences of the engine against the pitfalls of `change-detection.md` (numbered there, in
//! `docs/change-detection.md`). Production polls with every defence on and cannot do otherwise: an engine is
//! configured with defences off only when the crate is built with the feature `mutations`, which its pitfall
//! tests enable to show the defect each defence prevents. The careless code paths themselves are compiled only
//! then (`mutations.rs`).

/// Which defences are on ([`Defences::default`]: all of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Defences {
    /// Pitfall 1: an inclusive lower bound (`≥`) with `seen` de-duplication, not a strict `>` cursor.
    pub inclusive_lower_bound: bool,
    /// Pitfall 2: one lower bound for the whole window, following the provider's page cursor.
    pub fixed_lower_bound: bool,
    /// Pitfall 3: the lookback window `L` (`max(pollDelay, default_lookback)`); off, `L = pollDelay`.
    pub lookback: bool,
    /// Pitfall 4: `T0` taken before the first request, not at the end of the run.
    pub t0_before_first_request: bool,
    /// Pitfall 5: consistency checks and rescans when the data moved while it was paged.
    pub consistency_check: bool,
    /// Pitfall 6: `T0` on the provider's clock (skew measured from its `Date` header).
    pub skew_correction: bool,
    /// Pitfall 7: render placeholders so that every reading of the text (its zone, or UTC for a literal `Z` or
    /// no offset) is at or before the lower bound.
    pub zone_guard: bool,
    /// Pitfall 7 / step 7: prune `seen` below the bound the next query really sends (after mask truncation).
    pub prune_below_sent_bound: bool,
    /// Pitfall 8: compare content hashes, not only second-granularity dates.
    pub content_hash: bool,
    /// Pitfall 9: a failed poll leaves the watermark where it was.
    pub keep_watermark_on_failure: bool,
    /// Pitfall 10: a page that fails beyond the retry budget abandons the poll (partial data is not complete).
    pub abandon_partial_scan: bool,
    /// Pitfall 11: DELETED only from the provider's deleted feed, never inferred from absence in a scan.
    pub deletes_from_feed_only: bool,
}

impl Defences {
    /// Every defence on: what production polls with.
    pub const ALL: Defences = Defences {
        inclusive_lower_bound: true,
        fixed_lower_bound: true,
        lookback: true,
        t0_before_first_request: true,
        consistency_check: true,
        skew_correction: true,
        zone_guard: true,
        prune_below_sent_bound: true,
        content_hash: true,
        keep_watermark_on_failure: true,
        abandon_partial_scan: true,
        deletes_from_feed_only: true,
    };
}

impl Default for Defences {
    fn default() -> Self {
        Defences::ALL
    }
}
