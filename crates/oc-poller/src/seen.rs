//! The `seen` set of one (instance, resource): what was already notified, and its compact byte encoding.
//!
//! For each record observed in the lookback window the set keeps its `updated_at` (milliseconds) and content
//! hash; deletions are kept as tombstones with their `deleted_at`. Records whose date could not be read are
//! kept while they keep being observed. `floor` is the highest pruning bound ever used: no record created
//! before it can still be "not yet reported", which keeps CREATED unique even when the watermark moves back.
//!
//! Encoding (version 1), little-endian varints: `b"S1"`, flags (bit 0: floor present), [floor zigzag],
//! base zigzag, count, then per entry sorted by id: id length, id bytes, entry flags, [date − base], hash (8
//! bytes). About 11–15 bytes per record beyond the id.

use std::collections::HashMap;

use crate::hash::IdHash;

use crate::error::PollError;

const MAGIC: &[u8; 2] = b"S1";
const F_FLOOR: u8 = 1;
const E_DATE: u8 = 1;
const E_DELETED: u8 = 2;
const E_OBSERVED: u8 = 4;

/// What is remembered of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeenEntry {
    /// `updated_at` (or `deleted_at` of a tombstone) in Unix milliseconds; `None` when it could not be read.
    pub date_ms: Option<i64>,
    /// Content hash of the notified state.
    pub hash: u64,
    /// A tombstone: the record's deletion was notified.
    pub deleted: bool,
    /// Seen in the latest complete scan (only meaningful for entries without a date).
    pub observed: bool,
}

/// The `seen` set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeenSet {
    entries: HashMap<Box<str>, SeenEntry, IdHash>,
    floor_ms: Option<i64>,
}

impl SeenSet {
    /// An empty set.
    pub fn new() -> Self {
        SeenSet::default()
    }

    /// The entry of `id`.
    #[inline]
    pub fn get(&self, id: &str) -> Option<&SeenEntry> {
        self.entries.get(id)
    }

    /// Sets the entry of `id`.
    pub fn insert(&mut self, id: &str, entry: SeenEntry) {
        match self.entries.get_mut(id) {
            Some(e) => *e = entry,
            None => {
                self.entries.insert(id.into(), entry);
            }
        }
    }

    /// Makes room for `n` more entries.
    pub fn reserve(&mut self, n: usize) {
        self.entries.reserve(n);
    }

    /// Marks the entry of `id` as observed in this scan.
    pub fn mark_observed(&mut self, id: &str) {
        if let Some(e) = self.entries.get_mut(id) {
            e.observed = true;
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &SeenEntry)> {
        self.entries.iter().map(|(k, v)| (&**k, v))
    }

    /// The highest pruning bound used so far (Unix milliseconds).
    pub fn floor_ms(&self) -> Option<i64> {
        self.floor_ms
    }

    /// Raises the floor to at least `ms`.
    pub fn raise_floor(&mut self, ms: i64) {
        self.floor_ms = Some(self.floor_ms.map_or(ms, |f| f.max(ms)));
    }

    /// Clears the "observed" marks before a scan.
    pub fn clear_observed(&mut self) {
        for e in self.entries.values_mut() {
            e.observed = false;
        }
    }

    /// Forgets entries dated before `bound_ms`. Entries without a date are kept when they were observed in this
    /// scan, or when `scan_complete` is false (an incomplete scan proves nothing about them).
    pub fn prune(&mut self, bound_ms: i64, scan_complete: bool) {
        self.entries.retain(|_, e| match e.date_ms {
            Some(d) => d >= bound_ms,
            None => e.observed || !scan_complete,
        });
        self.raise_floor(bound_ms);
    }

    /// Forgets entries dated before `bound_ms` without raising the floor: what a careless engine does (the
    /// test-only mutation of pruning at the exact `T0 − L`).
    pub(crate) fn prune_without_floor(&mut self, bound_ms: i64) {
        self.entries.retain(|_, e| e.date_ms.is_none_or(|d| d >= bound_ms));
    }

    /// The byte encoding stored in the poll state.
    pub fn encode(&self) -> Vec<u8> {
        let mut ids: Vec<(&str, &SeenEntry)> = self.iter().collect();
        ids.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let base = ids.iter().filter_map(|(_, e)| e.date_ms).min().unwrap_or(0);
        let mut out = Vec::with_capacity(16 + ids.iter().map(|(id, _)| id.len() + 16).sum::<usize>());
        out.extend_from_slice(MAGIC);
        match self.floor_ms {
            Some(f) => {
                out.push(F_FLOOR);
                put_varint(&mut out, zigzag(f));
            }
            None => out.push(0),
        }
        put_varint(&mut out, zigzag(base));
        put_varint(&mut out, ids.len() as u64);
        for (id, e) in ids {
            put_varint(&mut out, id.len() as u64);
            out.extend_from_slice(id.as_bytes());
            let mut flags = 0;
            if e.date_ms.is_some() {
                flags |= E_DATE;
            }
            if e.deleted {
                flags |= E_DELETED;
            }
            if e.observed {
                flags |= E_OBSERVED;
            }
            out.push(flags);
            if let Some(d) = e.date_ms {
                put_varint(&mut out, d.wrapping_sub(base) as u64);
            }
            out.extend_from_slice(&e.hash.to_le_bytes());
        }
        out
    }

    /// Reads an encoding made by [`encode`](SeenSet::encode); an empty slice is an empty set.
    pub fn decode(bytes: &[u8]) -> Result<SeenSet, PollError> {
        if bytes.is_empty() {
            return Ok(SeenSet::default());
        }
        let mut r = Reader { bytes, pos: 0 };
        if r.take(2)? != MAGIC {
            return Err(PollError::CorruptState("unknown seen-set encoding".into()));
        }
        let flags = r.byte()?;
        let floor_ms = if flags & F_FLOOR != 0 { Some(unzigzag(r.varint()?)) } else { None };
        let base = unzigzag(r.varint()?);
        let count = r.varint()?;
        // every entry takes at least 10 bytes: refuse absurd counts before allocating
        if count > (bytes.len() as u64) / 10 + 1 {
            return Err(PollError::CorruptState(format!("seen set claims {count} entries in {} bytes", bytes.len())));
        }
        let mut entries = HashMap::with_capacity_and_hasher(count as usize, IdHash::default());
        for _ in 0..count {
            let len = r.varint()?;
            let id = std::str::from_utf8(r.take(usize::try_from(len).unwrap_or(usize::MAX))?)
                .map_err(|_| PollError::CorruptState("seen-set id is not UTF-8".into()))?;
            let flags = r.byte()?;
            let date_ms = if flags & E_DATE != 0 { Some(base.wrapping_add(r.varint()? as i64)) } else { None };
            let mut h = [0u8; 8];
            h.copy_from_slice(r.take(8)?);
            entries.insert(
                Box::<str>::from(id),
                SeenEntry {
                    date_ms,
                    hash: u64::from_le_bytes(h),
                    deleted: flags & E_DELETED != 0,
                    observed: flags & E_OBSERVED != 0,
                },
            );
        }
        if r.pos != bytes.len() {
            return Err(PollError::CorruptState("trailing bytes after the seen set".into()));
        }
        Ok(SeenSet { entries, floor_ms })
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], PollError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| PollError::CorruptState("seen set is truncated".into()))?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8, PollError> {
        Ok(self.take(1)?[0])
    }

    fn varint(&mut self) -> Result<u64, PollError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(PollError::CorruptState("seen-set varint too long".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(date_ms: Option<i64>, hash: u64, deleted: bool) -> SeenEntry {
        SeenEntry { date_ms, hash, deleted, observed: false }
    }

    #[test]
    fn round_trip_and_size() {
        let mut s = SeenSet::new();
        assert_eq!(SeenSet::decode(&s.encode()).unwrap(), s);
        assert_eq!(SeenSet::decode(&[]).unwrap(), s);
        let t = 1_700_000_000_000i64;
        for i in 0..1000 {
            s.insert(&format!("{i:032x}"), entry(Some(t + i * 1000), i as u64 * 7919, i % 10 == 0));
        }
        s.insert("no-date", entry(None, 1, false));
        s.raise_floor(t - 60_000);
        let bytes = s.encode();
        assert_eq!(SeenSet::decode(&bytes).unwrap(), s);
        let per_record = (bytes.len() - 1001 * 32) as f64 / 1001.0;
        assert!(per_record <= 16.0, "{per_record} bytes per record beyond the id");
    }

    #[test]
    fn prune_keeps_boundary_and_observed_undated_entries() {
        let mut s = SeenSet::new();
        s.insert("old", entry(Some(999), 1, false));
        s.insert("edge", entry(Some(1000), 2, false));
        s.insert("undated-seen", SeenEntry { observed: true, ..entry(None, 3, false) });
        s.insert("undated-gone", entry(None, 4, false));
        let mut partial = s.clone();
        partial.prune(1000, false);
        assert!(partial.get("undated-gone").is_some());
        s.prune(1000, true);
        let mut left: Vec<&str> = s.iter().map(|(k, _)| k).collect();
        left.sort();
        assert_eq!(left, ["edge", "undated-seen"]);
        assert_eq!(s.floor_ms(), Some(1000));
        s.prune(500, true);
        assert_eq!(s.floor_ms(), Some(1000), "the floor never goes down");
    }

    #[test]
    fn corrupt_bytes_are_errors_not_panics() {
        for bad in [
            &b"S"[..],
            b"XX\0\0\0",
            b"S1\0\0\x05",
            b"S1\0\0\x01\x05ab",
            b"S1\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
        ] {
            assert!(SeenSet::decode(bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = SeenSet::decode(&bytes);
        }

        #[test]
        fn encode_decode_round_trips(
            items in proptest::collection::vec(("[a-z0-9-]{0,12}", proptest::option::of(any::<i64>()), any::<u64>(), any::<bool>()), 0..40),
            floor in proptest::option::of(any::<i64>()),
        ) {
            let mut s = SeenSet::new();
            for (id, d, h, del) in items {
                s.insert(&id, entry(d, h, del));
            }
            if let Some(f) = floor { s.raise_floor(f); }
            prop_assert_eq!(SeenSet::decode(&s.encode()).unwrap(), s);
        }
    }
}
