//! The pure core of a poll: de-duplicate the records of every page, then decide for each one whether it is
//! new (CREATED), changed (UPDATED), deleted (DELETED) or already notified, updating the `seen` set.
//!
//! No I/O here: the scan feeds pages into a [`Collector`], and [`Classifier::classify`] turns what it
//! collected into events. The benchmark measures exactly these two steps.

use std::collections::HashMap;

use crate::hash::IdHash;

use chrono::{DateTime, Utc};
use oc_model::event::{Event, EventType};
use oc_model::ports::{PollWarning, RecordFilter};
use serde_json::Value;

use crate::fields::{DateFormat, FieldPath, parse_lenient};
use crate::hash::content_hash;
use crate::seen::{SeenEntry, SeenSet};

/// The most warnings one poll keeps (the rest are counted in a last warning).
pub(crate) const MAX_WARNINGS: usize = 100;

/// How a record's date was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateQuality {
    /// Read with the configured format.
    Parsed,
    /// The configured format failed; read from the raw text as ISO 8601 (flagged in a warning).
    Fallback,
    /// No date: none configured, the field is missing, or the text is unreadable.
    Missing,
}

/// Where a record's id and dates are and how to read them.
#[derive(Debug, Clone)]
pub struct RecordReader {
    /// The id field.
    pub id: FieldPath,
    /// The updated-date field and its format.
    pub updated: Option<(FieldPath, DateFormat)>,
    /// The created-date field and its format.
    pub created: Option<(FieldPath, DateFormat)>,
    /// Where deletion records carry their date (Sage: `deleted_at`, ISO 8601).
    pub deleted: FieldPath,
}

/// A date read from a record, or why not.
#[derive(Debug, Clone, PartialEq)]
pub enum DateRead {
    /// No field configured.
    NotConfigured,
    /// Read with the configured format.
    Parsed(DateTime<Utc>),
    /// The format failed but the raw text is ISO 8601.
    Fallback(DateTime<Utc>, String),
    /// Missing or unreadable.
    Unreadable(String),
}

impl DateRead {
    fn ms(&self) -> (Option<i64>, DateQuality) {
        match self {
            DateRead::Parsed(d) => (Some(d.timestamp_millis()), DateQuality::Parsed),
            DateRead::Fallback(d, _) => (Some(d.timestamp_millis()), DateQuality::Fallback),
            DateRead::NotConfigured | DateRead::Unreadable(_) => (None, DateQuality::Missing),
        }
    }

    fn warning(&self) -> Option<&str> {
        match self {
            DateRead::Fallback(_, w) | DateRead::Unreadable(w) => Some(w),
            _ => None,
        }
    }
}

fn read_date(field: &Option<(FieldPath, DateFormat)>, record: &Value, what: &str) -> DateRead {
    let Some((path, format)) = field else { return DateRead::NotConfigured };
    let Some(raw) = path.get(record) else {
        return DateRead::Unreadable(format!("{what} date field {:?} is missing", path.as_string()));
    };
    if let Value::String(text) = raw
        && let Some(d) = format.parse(text)
    {
        return DateRead::Parsed(d);
    }
    match parse_lenient(raw) {
        Some(d) => DateRead::Fallback(
            d,
            format!("{what} date {raw} does not match the {}; date taken from the raw value", format.describe()),
        ),
        None => DateRead::Unreadable(format!("{what} date {raw} does not match the {}", format.describe())),
    }
}

impl RecordReader {
    /// The updated date of `record`.
    #[inline]
    pub fn updated(&self, record: &Value) -> DateRead {
        read_date(&self.updated, record, "updated")
    }

    /// The created date of `record`.
    pub fn created(&self, record: &Value) -> DateRead {
        read_date(&self.created, record, "created")
    }

    /// The deletion date of a record of the deleted feed: `deleted_at`, else the updated date.
    pub fn deleted(&self, record: &Value) -> DateRead {
        match self.deleted.get(record).and_then(parse_lenient) {
            Some(d) => DateRead::Parsed(d),
            None => match self.updated(record) {
                DateRead::NotConfigured => DateRead::Unreadable(format!(
                    "deletion date field {:?} is missing or unreadable",
                    self.deleted.as_string()
                )),
                other => other,
            },
        }
    }
}

/// One record as collected: the newest observation of its id.
#[derive(Debug, Clone)]
pub struct Observation {
    /// The record id (empty while collecting: the collector's key holds it).
    pub id: Box<str>,
    /// Its updated (or deleted) date in Unix milliseconds.
    pub date_ms: Option<i64>,
    /// How the date was obtained.
    pub quality: DateQuality,
    /// The record.
    pub record: Value,
    /// Observation order (later observations of an equal date win).
    pub seq: u64,
    /// The record's content hash, taken when it was read (while its memory is hot).
    pub hash: u64,
    /// The last scan that read this id.
    scan: u32,
}

/// Collects the records of every page of a scan (and of its rescans), keeping the newest state of each id.
#[derive(Debug, Default)]
pub struct Collector {
    /// Index of each id's observation in `obs`.
    map: HashMap<Box<str>, usize, IdHash>,
    /// The observations in the order first read: records stay in memory order for the classification.
    obs: Vec<Observation>,
    seq: u64,
    scan: u32,
    distinct_in_scan: usize,
    /// Records read, duplicates included.
    pub read: u64,
    /// Warnings for records without an id.
    pub warnings: Vec<PollWarning>,
    /// Warnings not kept (over [`MAX_WARNINGS`]).
    pub dropped_warnings: u64,
}

/// What [`Collector::offer`] read of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offered {
    /// The date (Unix ms).
    pub date_ms: Option<i64>,
    /// This state (id and date) was known before the current scan: read by an earlier scan of this poll, or
    /// in the `seen` set given to [`Collector::offer`].
    pub known: bool,
}

/// Which list a collector reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedKind {
    /// Created or updated records.
    Changes,
    /// Deleted records.
    Deleted,
}

impl Collector {
    /// An empty collector.
    pub fn new() -> Self {
        Collector::default()
    }

    /// Distinct ids collected.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when nothing was collected.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// True when `id` was collected.
    pub fn contains(&self, id: &str) -> bool {
        self.map.contains_key(id)
    }

    /// The collected (id, observation) pairs, in no particular order.
    pub fn observations(&self) -> impl Iterator<Item = (&str, &Observation)> {
        self.map.iter().map(|(k, &i)| (&**k, &self.obs[i]))
    }

    /// Makes room for `n` more ids (the provider's total, when it gives one), so the map is not regrown page
    /// by page.
    pub fn reserve(&mut self, n: usize) {
        let n = n.saturating_sub(self.map.len()).min(1 << 20);
        self.map.reserve(n);
        self.obs.reserve(n);
    }

    /// Starts a new scan (for [`distinct_in_scan`](Self::distinct_in_scan)).
    pub fn begin_scan(&mut self) {
        self.scan += 1;
        self.distinct_in_scan = 0;
    }

    /// Distinct ids read since [`begin_scan`](Self::begin_scan).
    pub fn distinct_in_scan(&self) -> usize {
        self.distinct_in_scan
    }

    /// The number of observations offered so far (with an id).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Adds one record read at `position` of its scan; returns what was read of it when it has an id.
    pub fn offer(
        &mut self,
        reader: &RecordReader,
        kind: FeedKind,
        record: Value,
        position: u64,
        seen: Option<&SeenSet>,
    ) -> Option<Offered> {
        self.read += 1;
        let id = match reader.id.id(&record) {
            Ok(id) => id,
            Err(why) => {
                let message = format!("record id field {:?} is {why}; the record is skipped", reader.id.as_string());
                self.warn(PollWarning { record_id: None, position: Some(position), message });
                return None;
            }
        };
        let (date_ms, quality) = match kind {
            FeedKind::Changes => reader.updated(&record).ms(),
            FeedKind::Deleted => reader.deleted(&record).ms(),
        };
        self.seq += 1;
        let (seq, scan) = (self.seq, self.scan);
        let hash = content_hash(&record);
        let in_seen = date_ms.is_some() && seen.and_then(|s| s.get(&id)).is_some_and(|e| e.date_ms == date_ms);
        match self.map.get(&*id) {
            Some(&i) => {
                let old = &mut self.obs[i];
                let known = in_seen || (old.scan != scan && date_ms.is_some() && old.date_ms == date_ms);
                if old.scan != scan {
                    old.scan = scan;
                    self.distinct_in_scan += 1;
                }
                // keep the newest state: a later date wins; at an equal date the later observation wins
                if !matches!((old.date_ms, date_ms), (Some(o), Some(n)) if o > n) {
                    old.date_ms = date_ms;
                    old.quality = quality;
                    old.seq = seq;
                    old.hash = hash;
                    old.record = record;
                }
                Some(Offered { date_ms, known })
            }
            None => {
                let key: Box<str> = id.into();
                self.distinct_in_scan += 1;
                self.map.insert(key, self.obs.len());
                self.obs.push(Observation { id: Box::default(), date_ms, quality, record, seq, hash, scan });
                Some(Offered { date_ms, known: in_seen })
            }
        }
    }

    fn warn(&mut self, w: PollWarning) {
        if self.warnings.len() < MAX_WARNINGS {
            if !self.warnings.contains(&w) {
                self.warnings.push(w);
            }
        } else {
            self.dropped_warnings += 1;
        }
    }

    /// The observations, in the order their ids were first read (events are put in order at the end of a poll).
    pub fn into_observations(self) -> Vec<Observation> {
        let mut obs = self.obs;
        for (id, i) in self.map {
            obs[i].id = id;
        }
        obs
    }
}

/// The instants and switches that decide one classification.
#[derive(Debug, Clone)]
pub struct Window {
    /// The instance.
    pub instance_id: i64,
    /// The resource (the events' `objectType`).
    pub resource: String,
    /// `T0`, the provider clock at the start of the poll (Unix ms).
    pub t0_ms: i64,
    /// `filterByUpdatedDate`: records dated before this are dropped.
    pub updated_from_ms: Option<i64>,
    /// Pitfall 1 mutation: drop records dated *at* `updated_from_ms` too (a strict `>` cursor).
    pub strict_lower_bound: bool,
    /// `filterByCurrentDate`: records dated after `T0` are left for the next poll.
    pub skip_after_t0: bool,
    /// A record not yet seen is CREATED when its created date is after this (`W_prev − L − tolerance`) ...
    pub created_after_ms: i64,
    /// ... and not before this (the instance's start, and the `seen` floor): older records existed before.
    pub created_from_ms: i64,
    /// Compare content hashes, not only dates (the defence of pitfall 8).
    pub compare_hashes: bool,
    /// The first poll of the job without a backfill, of a resource whose records have no updated date: what it
    /// reads existed before (as far as anything can tell) and goes into `seen` without an event — the first
    /// poll replays nothing. A record it can tell is new (its created date is after the start) is still CREATED.
    pub baseline: bool,
}

/// What one classification found.
#[derive(Debug, Default)]
pub struct Classified {
    /// New events, oldest first.
    pub events: Vec<Event>,
    /// CREATED events.
    pub created: u32,
    /// UPDATED events.
    pub updated: u32,
    /// DELETED events.
    pub deleted: u32,
    /// Records not read fully.
    pub warnings: Vec<PollWarning>,
}

/// Classifies collected records against a `seen` set.
#[derive(Debug)]
pub struct Classifier<'a> {
    /// How records are read.
    pub reader: &'a RecordReader,
    /// The instants and switches.
    pub window: &'a Window,
    /// The residual predicate.
    pub local: Option<&'a dyn RecordFilter>,
    /// A scratch buffer for event ids.
    pub buf: std::cell::RefCell<Vec<u8>>,
}

impl<'a> Classifier<'a> {
    /// A classifier of records read by `reader` in `window`, with the residual predicate `local`.
    pub fn new(reader: &'a RecordReader, window: &'a Window, local: Option<&'a dyn RecordFilter>) -> Self {
        Classifier { reader, window, local, buf: std::cell::RefCell::new(Vec::with_capacity(128)) }
    }
}

const EPOCH_MS: i64 = 0;

impl Classifier<'_> {
    /// Classifies the records of the changes feed, updating `seen` and appending to `out`.
    pub fn classify(&self, records: Vec<Observation>, seen: &mut SeenSet, out: &mut Classified) {
        let w = self.window;
        // grow once: regrowing large tables after many small frees is slow with the system allocator
        seen.reserve(records.len());
        out.events.reserve(records.len());
        for obs in records {
            if let Some(d) = obs.date_ms {
                if w.skip_after_t0 && d > w.t0_ms {
                    continue;
                }
                if let Some(from) = w.updated_from_ms
                    && (d < from || (w.strict_lower_bound && d == from))
                {
                    continue;
                }
            }
            if let Some(f) = self.local
                && !f.matches(&obs.record)
            {
                continue;
            }
            if obs.quality != DateQuality::Parsed {
                self.warn_date(&obs, out);
            }
            let hash = obs.hash;
            let event_type = match seen.get(&obs.id) {
                Some(e) => {
                    if same_state(e, obs.date_ms, hash, w.compare_hashes) {
                        seen.mark_observed(&obs.id);
                        continue;
                    }
                    if matches!((e.date_ms, obs.date_ms), (Some(old), Some(new)) if old > new) {
                        // an older state than the one already notified (or a record already deleted)
                        continue;
                    }
                    EventType::Updated
                }
                None => match self.reader.created(&obs.record) {
                    DateRead::Parsed(c) | DateRead::Fallback(c, _)
                        if c.timestamp_millis() > w.created_after_ms && c.timestamp_millis() >= w.created_from_ms =>
                    {
                        EventType::Created
                    }
                    _ if w.baseline && obs.date_ms.is_none() => {
                        // the baseline of an undated resource: an existing record, not a change
                        seen.insert(&obs.id, SeenEntry { date_ms: None, hash, deleted: false, observed: true });
                        continue;
                    }
                    DateRead::Parsed(_) | DateRead::Fallback(..) => EventType::Updated,
                    DateRead::NotConfigured => EventType::Updated,
                    DateRead::Unreadable(why) => {
                        push_warning(out, Some(&obs.id), format!("{why}; notified as UPDATED"));
                        EventType::Updated
                    }
                },
            };
            seen.insert(&obs.id, SeenEntry { date_ms: obs.date_ms, hash, deleted: false, observed: true });
            self.emit(out, event_type, obs, hash);
        }
    }

    /// Classifies the records of the deleted feed, updating `seen` and appending to `out`.
    pub fn classify_deleted(&self, records: Vec<Observation>, seen: &mut SeenSet, out: &mut Classified) {
        let w = self.window;
        for obs in records {
            if w.skip_after_t0 && obs.date_ms.is_some_and(|d| d > w.t0_ms) {
                continue;
            }
            if obs.quality != DateQuality::Parsed {
                self.warn_date(&obs, out);
            }
            let hash = obs.hash;
            if let Some(e) = seen.get(&obs.id)
                && e.deleted
                && (e.date_ms == obs.date_ms || obs.date_ms.is_none())
            {
                seen.mark_observed(&obs.id);
                continue;
            }
            seen.insert(&obs.id, SeenEntry { date_ms: obs.date_ms, hash, deleted: true, observed: true });
            self.emit(out, EventType::Deleted, obs, hash);
        }
    }

    fn warn_date(&self, obs: &Observation, out: &mut Classified) {
        let read = if obs.record.is_null() { DateRead::NotConfigured } else { self.reader.updated(&obs.record) };
        match read.warning() {
            Some(w) => {
                let suffix = if obs.date_ms.is_none() { "; notified with the poll time as its date" } else { "" };
                push_warning(out, Some(&obs.id), format!("{w}{suffix}"));
            }
            None if obs.quality == DateQuality::Missing && self.reader.updated.is_some() => {
                push_warning(out, Some(&obs.id), "date unreadable; notified with the poll time as its date".into());
            }
            None => {}
        }
    }

    fn emit(&self, out: &mut Classified, event_type: EventType, obs: Observation, hash: u64) {
        let w = self.window;
        // an undated change gets a fixed instant in its id (so a re-poll reproduces it) and T0 as its date
        let id_date = DateTime::from_timestamp_millis(obs.date_ms.unwrap_or(EPOCH_MS)).unwrap_or_default();
        let date = obs
            .date_ms
            .and_then(DateTime::from_timestamp_millis)
            .unwrap_or_else(|| DateTime::from_timestamp_millis(w.t0_ms).unwrap_or_default());
        match event_type {
            EventType::Created => out.created += 1,
            EventType::Updated => out.updated += 1,
            EventType::Deleted => out.deleted += 1,
        }
        out.events.push(Event {
            event_id: crate::hash::event_id_into(
                &mut self.buf.borrow_mut(),
                w.instance_id,
                &w.resource,
                &obs.id,
                event_type,
                id_date,
                hash,
            ),
            event_type,
            object_type: w.resource.clone(),
            object_id: obs.id.into(),
            date,
            record: obs.record,
        });
    }
}

fn same_state(e: &SeenEntry, date_ms: Option<i64>, hash: u64, compare_hashes: bool) -> bool {
    if e.deleted {
        return false;
    }
    match (e.date_ms, date_ms) {
        (Some(a), Some(b)) => a == b && (!compare_hashes || e.hash == hash),
        // undated: the content alone tells
        _ => e.hash == hash,
    }
}

fn push_warning(out: &mut Classified, id: Option<&str>, message: String) {
    if out.warnings.len() < MAX_WARNINGS {
        out.warnings.push(PollWarning { record_id: id.map(str::to_owned), position: None, message });
    }
}

/// Puts events in notification order: oldest change first; at one instant CREATED, UPDATED, DELETED.
pub(crate) fn sort_events(events: &mut [Event]) {
    events.sort_by(|a, b| (a.date, a.event_type, &a.object_id).cmp(&(b.date, b.event_type, &b.object_id)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reader() -> RecordReader {
        RecordReader {
            id: FieldPath::new("id"),
            updated: Some((FieldPath::new("updated_at"), DateFormat::Iso)),
            created: Some((FieldPath::new("created_at"), DateFormat::Iso)),
            deleted: FieldPath::new("deleted_at"),
        }
    }

    fn ms(t: &str) -> i64 {
        crate::fields::parse_iso(t).unwrap().timestamp_millis()
    }

    fn window() -> Window {
        Window {
            instance_id: 1,
            resource: "customers".into(),
            t0_ms: ms("2024-01-01T00:10:00Z"),
            updated_from_ms: Some(ms("2024-01-01T00:00:00Z")),
            strict_lower_bound: false,
            skip_after_t0: false,
            created_after_ms: ms("2024-01-01T00:00:00Z"),
            created_from_ms: ms("2024-01-01T00:00:00Z"),
            compare_hashes: true,
            baseline: false,
        }
    }

    fn rec(id: &str, created: &str, updated: &str, v: i64) -> Value {
        json!({"id": id, "created_at": created, "updated_at": updated, "v": v})
    }

    /// Runs one classification of `records` (in page order) against `seen`; returns "TYPE id" strings.
    fn run(records: Vec<Value>, seen: &mut SeenSet, w: &Window) -> (Vec<String>, Classified) {
        let r = reader();
        let mut c = Collector::new();
        for (i, rec) in records.into_iter().enumerate() {
            c.offer(&r, FeedKind::Changes, rec, i as u64, None);
        }
        let mut out = Classified::default();
        Classifier::new(&r, w, None).classify(c.into_observations(), seen, &mut out);
        sort_events(&mut out.events);
        let got = out.events.iter().map(|e| format!("{} {}", e.event_type, e.object_id)).collect();
        (got, out)
    }

    fn check(records: Vec<Value>, seen: &mut SeenSet, expected: &[&str]) {
        let (got, _) = run(records, seen, &window());
        assert_eq!(got, expected);
    }

    #[test]
    fn created_updated_and_skipped() {
        let mut seen = SeenSet::new();
        check(
            vec![
                rec("new", "2024-01-01T00:05:00Z", "2024-01-01T00:06:00Z", 1),
                rec("old", "2023-12-01T00:00:00Z", "2024-01-01T00:01:00Z", 1),
                rec("ancient", "2023-01-01T00:00:00Z", "2023-06-01T00:00:00Z", 1),
            ],
            &mut seen,
            &["UPDATED old", "CREATED new"],
        );
        // the same states again: nothing; a same-second edit: UPDATED; a newer edit: UPDATED
        check(
            vec![
                rec("new", "2024-01-01T00:05:00Z", "2024-01-01T00:06:00Z", 1),
                rec("old", "2023-12-01T00:00:00Z", "2024-01-01T00:01:00Z", 2),
            ],
            &mut seen,
            &["UPDATED old"],
        );
        check(vec![rec("new", "2024-01-01T00:05:00Z", "2024-01-01T00:07:00Z", 1)], &mut seen, &["UPDATED new"]);
        // an older state than the one notified is not a change
        check(vec![rec("new", "2024-01-01T00:05:00Z", "2024-01-01T00:06:00Z", 1)], &mut seen, &[]);
    }

    #[test]
    fn duplicates_across_pages_keep_the_newest_state() {
        let mut seen = SeenSet::new();
        let (got, out) = run(
            vec![
                rec("a", "2024-01-01T00:05:00Z", "2024-01-01T00:06:00Z", 1),
                rec("a", "2024-01-01T00:05:00Z", "2024-01-01T00:08:00Z", 3),
                rec("a", "2024-01-01T00:05:00Z", "2024-01-01T00:07:00Z", 2),
            ],
            &mut seen,
            &window(),
        );
        assert_eq!(got, ["CREATED a"]);
        assert_eq!(out.events[0].record["v"], 3);
    }

    #[test]
    fn records_without_id_or_readable_date_are_warned_about() {
        let r = reader();
        let mut c = Collector::new();
        c.offer(&r, FeedKind::Changes, json!({"updated_at": "2024-01-01T00:01:00Z"}), 4, None);
        c.offer(&r, FeedKind::Changes, json!({"id": "x", "updated_at": "garbage"}), 5, None);
        c.offer(&r, FeedKind::Changes, json!({"id": "y", "updated_at": 1704067260000i64}), 6, None);
        assert_eq!(c.warnings.len(), 1);
        assert_eq!(c.warnings[0].position, Some(4));
        let mut out = Classified::default();
        let mut seen = SeenSet::new();
        let w = window();
        Classifier::new(&r, &w, None).classify(c.into_observations(), &mut seen, &mut out);
        sort_events(&mut out.events);
        let ids: Vec<_> = out.events.iter().map(|e| e.object_id.as_str()).collect();
        assert_eq!(ids, ["y", "x"]);
        assert_eq!(out.warnings.len(), 2 + 2, "{:?}", out.warnings);
        assert!(
            out.warnings
                .iter()
                .any(|w| w.record_id.as_deref() == Some("y") && w.message.contains("date taken from the raw value"))
        );
        assert!(out.warnings.iter().any(|w| w.record_id.as_deref() == Some("x") && w.message.contains("poll time")));
        assert_eq!(out.events[1].date.timestamp_millis(), w.t0_ms);
        // the undated record is not notified again while its content stays
        let mut c = Collector::new();
        c.offer(&r, FeedKind::Changes, json!({"id": "x", "updated_at": "garbage"}), 0, None);
        let mut out = Classified::default();
        Classifier::new(&r, &w, None).classify(c.into_observations(), &mut seen, &mut out);
        assert!(out.events.is_empty());
    }

    #[test]
    fn deletions_are_notified_once() {
        let r = reader();
        let w = window();
        let mut seen = SeenSet::new();
        for expected in [1, 0] {
            let mut c = Collector::new();
            c.offer(&r, FeedKind::Deleted, json!({"id": "d", "deleted_at": "2024-01-01T00:03:00Z"}), 0, None);
            let mut out = Classified::default();
            Classifier::new(&r, &w, None).classify_deleted(c.into_observations(), &mut seen, &mut out);
            assert_eq!(out.deleted, expected);
        }
        // a stale copy of the record from before its deletion is not an update
        check(vec![rec("d", "2024-01-01T00:01:00Z", "2024-01-01T00:02:00Z", 1)], &mut seen, &[]);
    }

    #[test]
    fn event_ids_are_reproducible() {
        let records = vec![rec("a", "2024-01-01T00:05:00Z", "2024-01-01T00:06:00Z", 1)];
        let (_, a) = run(records.clone(), &mut SeenSet::new(), &window());
        let (_, b) = run(records, &mut SeenSet::new(), &window());
        assert_eq!(a.events[0].event_id, b.events[0].event_id);
    }
}
