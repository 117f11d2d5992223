//! The content hash of a record: a stable 64-bit digest of its JSON value.
//!
//! Event ids are derived from it, so it must never change between versions, platforms or runs: it is written
//! out here instead of borrowing `std`'s `DefaultHasher` (whose algorithm is not guaranteed). Object members
//! are combined order-independently, so a provider that reorders keys does not produce a "change".

use serde_json::Value;

const K: u64 = 0x9e37_79b9_7f4a_7c15;

#[inline]
fn mix(h: u64, v: u64) -> u64 {
    (h.rotate_left(5) ^ v).wrapping_mul(K)
}

/// Murmur3's 64-bit finalizer: spreads every input bit over the output.
#[inline]
fn fmix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

#[inline]
fn bytes(mut h: u64, b: &[u8]) -> u64 {
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = mix(h, u64::from_le_bytes(w));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        h = mix(h, u64::from_le_bytes(w));
    }
    mix(h, b.len() as u64)
}

fn value(h: u64, v: &Value) -> u64 {
    match v {
        Value::Null => mix(h, 1),
        Value::Bool(b) => mix(h, 2 + u64::from(*b)),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                mix(mix(h, 4), i as u64)
            } else if let Some(u) = n.as_u64() {
                mix(mix(h, 5), u)
            } else {
                mix(mix(h, 6), n.as_f64().map_or(0, f64::to_bits))
            }
        }
        Value::String(s) => bytes(mix(h, 7), s.as_bytes()),
        Value::Array(items) => {
            let mut h = mix(h, 8);
            for item in items {
                h = value(h, item);
            }
            mix(h, items.len() as u64)
        }
        Value::Object(members) => {
            // a commutative sum of finalized member hashes: independent of member order
            let mut sum = 0u64;
            for (k, v) in members {
                sum = sum.wrapping_add(fmix(value(bytes(K, k.as_bytes()), v)));
            }
            mix(mix(mix(h, 9), sum), members.len() as u64)
        }
    }
}

/// A fast hasher for the engine's in-memory maps keyed by record id (FxHash's multiply-rotate over 8-byte
/// words). Ids come from the provider's own id space (Sage: GUIDs), not from arbitrary users, so the
/// flooding resistance of SipHash is not worth its cost here.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    #[inline]
    fn write(&mut self, b: &[u8]) {
        self.0 = bytes(self.0, b);
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.0 = mix(self.0, u64::from(i));
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.0 = mix(self.0, i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// The [`BuildHasher`](std::hash::BuildHasher) of [`IdHasher`].
pub(crate) type IdHash = std::hash::BuildHasherDefault<IdHasher>;

/// [`oc_model::event::event_id`], computed without `format!`: the same UUID v5 over the same name, written
/// into a reused buffer (event ids are a large part of classifying a page). Tested equal to the model's.
pub(crate) fn event_id_into(
    buf: &mut Vec<u8>,
    instance: i64,
    resource: &str,
    object_id: &str,
    event_type: oc_model::EventType,
    date: chrono::DateTime<chrono::Utc>,
    content_hash: u64,
) -> uuid::Uuid {
    use chrono::{Datelike, Timelike};
    use std::io::Write;
    buf.clear();
    let _ = write!(buf, "{instance}");
    for part in [resource, object_id, event_type.as_str()] {
        buf.push(0x1f);
        buf.extend_from_slice(part.as_bytes());
    }
    buf.push(0x1f);
    let year = date.year();
    if (0..=9999).contains(&year) {
        let digits = |buf: &mut Vec<u8>, v: u32, n: usize| {
            let mut tmp = [b'0'; 10];
            let mut v = v;
            for i in (0..n).rev() {
                tmp[i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
            buf.extend_from_slice(&tmp[..n]);
        };
        digits(buf, year as u32, 4);
        buf.push(b'-');
        digits(buf, date.month(), 2);
        buf.push(b'-');
        digits(buf, date.day(), 2);
        buf.push(b'T');
        digits(buf, date.hour(), 2);
        buf.push(b':');
        digits(buf, date.minute(), 2);
        buf.push(b':');
        // a leap second shows as second 60, as chrono prints it
        let nanos = date.nanosecond();
        digits(buf, date.second() + nanos / 1_000_000_000, 2);
        buf.push(b'.');
        digits(buf, nanos % 1_000_000_000, 9);
        buf.push(b'Z');
    } else {
        buf.extend_from_slice(date.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true).as_bytes());
    }
    let _ = write!(buf, "\u{1f}{content_hash:016x}");
    uuid::Uuid::new_v5(&oc_model::event::EVENT_ID_NAMESPACE, buf)
}

/// The content hash of a record.
pub fn content_hash(record: &Value) -> u64 {
    fmix(value(0x6f63_706f_6c6c_0001, record))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(a: Value, b: Value, equal: bool) {
        assert_eq!(content_hash(&a) == content_hash(&b), equal, "{a} vs {b}");
    }

    #[test]
    fn equal_content_equal_hash_and_changes_show() {
        check(json!({"a": 1, "b": "x"}), json!({"b": "x", "a": 1}), true);
        check(json!({"a": 1}), json!({"a": 2}), false);
        check(json!({"a": "1"}), json!({"a": 1}), false);
        check(json!({"a": null}), json!({}), false);
        check(json!({"a": [1, 2]}), json!({"a": [2, 1]}), false);
        check(json!({"a": {"b": 1}, "c": 2}), json!({"a": {"c": 2}, "b": 1}), false);
        check(json!("abcdefgh"), json!("abcdefgh\u{0}"), false);
        check(json!(true), json!(false), false);
        check(json!(1.5), json!(1.5), true);
    }

    #[test]
    fn hash_is_pinned() {
        // event ids depend on this value: it must never change
        let h = content_hash(&json!({"id": "a1", "updated_at": "2019-03-25T15:31:02Z", "n": [1, true, null, 2.5]}));
        assert_eq!(
            h,
            content_hash(&json!({"n": [1, true, null, 2.5], "updated_at": "2019-03-25T15:31:02Z", "id": "a1"}))
        );
        assert_eq!(format!("{h:016x}"), PINNED);
    }

    proptest::proptest! {
        #[test]
        fn event_ids_equal_the_models(
            instance in proptest::prelude::any::<i64>(),
            resource in "[a-z-]{0,12}",
            object in "\\PC{0,20}",
            t in 0usize..3,
            ms in -70_000_000_000_000i64..300_000_000_000_000,
            nanos in 0u32..1_000_000,
            h in proptest::prelude::any::<u64>(),
        ) {
            let ty = [oc_model::EventType::Created, oc_model::EventType::Updated, oc_model::EventType::Deleted][t];
            let date = chrono::DateTime::from_timestamp_millis(ms).unwrap() + chrono::Duration::nanoseconds(i64::from(nanos));
            let mut buf = Vec::new();
            proptest::prop_assert_eq!(
                event_id_into(&mut buf, instance, &resource, &object, ty, date, h),
                oc_model::event::event_id(instance, &resource, &object, ty, date, h)
            );
        }
    }

    const PINNED: &str = "8e4790901aff52c9";
}
