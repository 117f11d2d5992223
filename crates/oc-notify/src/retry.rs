//! When to try a failed notification again: the retry schedule, its jitter, and `Retry-After`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use oc_model::ports::NextStep;
use uuid::Uuid;

use crate::error::NotifyError;

/// The retry schedule of a notification.
///
/// `offsets[i]` is when retry `i + 1` is due, counted from the first failure, so a notification is attempted at
/// most `1 + offsets.len()` times. The default is Open Connectors': retry `x` about `4^x` s after the first
/// failure, `x = 1..=9` (4 s, 16 s, 64 s, … 72.8 h), each gap stretched or shrunk by up to ±10 % so that
/// notifications failed together do not come back together.
///
/// Each retry is scheduled from the previous attempt by the gap between two offsets; a late attempt (the service
/// was down) moves the rest of the schedule later, never earlier.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    offsets: Vec<Duration>,
    jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::exponential(Duration::from_secs(4), 4, 9, 0.1).unwrap_or_else(|_| RetryPolicy::none())
    }
}

/// What the policy says after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Try again after this long.
    RetryIn(Duration),
    /// Out of attempts.
    GiveUp,
}

impl RetryPolicy {
    /// Retry `x` (1-based) `first · factor^(x−1)` after the first failure, for `x = 1..=retries`; gaps jittered by
    /// `±jitter` (a fraction, `0.0..1.0`).
    pub fn exponential(first: Duration, factor: u32, retries: u32, jitter: f64) -> Result<RetryPolicy, NotifyError> {
        let mut offsets = Vec::with_capacity(retries as usize);
        let mut offset = first;
        for _ in 0..retries {
            offsets.push(offset);
            offset = offset.checked_mul(factor).ok_or_else(|| {
                NotifyError::InvalidPolicy(format!("retry offsets overflow after {} retries", offsets.len()))
            })?;
        }
        RetryPolicy::from_offsets(offsets, jitter)
    }

    /// Retries at these offsets from the first failure (strictly increasing), gaps jittered by `±jitter`.
    pub fn from_offsets(offsets: Vec<Duration>, jitter: f64) -> Result<RetryPolicy, NotifyError> {
        if !(0.0..1.0).contains(&jitter) {
            return Err(NotifyError::InvalidPolicy(format!("jitter must be in [0, 1), got {jitter}")));
        }
        if let Some(w) = offsets.windows(2).find(|w| w[1] <= w[0]) {
            return Err(NotifyError::InvalidPolicy(format!(
                "retry offsets must increase, got {:?} then {:?}",
                w[0], w[1]
            )));
        }
        if offsets.first().is_some_and(|d| d.is_zero()) {
            return Err(NotifyError::InvalidPolicy("the first retry offset must be positive".into()));
        }
        Ok(RetryPolicy { offsets, jitter })
    }

    /// No retry: one attempt, then failed.
    pub fn none() -> RetryPolicy {
        RetryPolicy { offsets: Vec::new(), jitter: 0.0 }
    }

    /// The offsets from the first failure.
    pub fn offsets(&self) -> &[Duration] {
        &self.offsets
    }

    /// The jitter fraction.
    pub fn jitter(&self) -> f64 {
        self.jitter
    }

    /// Attempts in all, the first included.
    pub fn max_attempts(&self) -> u32 {
        self.offsets.len() as u32 + 1
    }

    /// What follows the failure of attempt `attempt` (1-based) of notification `id`.
    ///
    /// The jitter is derived from the notification id and the attempt number: spread across notifications, yet
    /// the same every time it is computed (tests and operators can predict it).
    pub fn after_failure(&self, id: Uuid, attempt: u32) -> RetryDecision {
        let x = attempt as usize; // the retry that comes next
        let Some(&offset) = self.offsets.get(x.wrapping_sub(1)) else {
            return RetryDecision::GiveUp;
        };
        let previous = if x >= 2 { self.offsets[x - 2] } else { Duration::ZERO };
        let gap = offset.saturating_sub(previous);
        let factor = 1.0 + self.jitter * unit_noise(id, attempt);
        RetryDecision::RetryIn(gap.mul_f64(factor.max(0.0)))
    }

    /// The next step after attempt `attempt` of `id` failed at `now`, honouring the receiver's `Retry-After` when
    /// it asks for longer than the schedule.
    pub fn next_step(&self, id: Uuid, attempt: u32, now: DateTime<Utc>, retry_after: Option<Duration>) -> NextStep {
        match self.after_failure(id, attempt) {
            RetryDecision::GiveUp => NextStep::Failed,
            RetryDecision::RetryIn(delay) => NextStep::RetryAt(add(now, delay.max(retry_after.unwrap_or_default()))),
        }
    }
}

/// `now + by`, saturating far in the future.
pub(crate) fn add(now: DateTime<Utc>, by: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(by).ok().and_then(|d| now.checked_add_signed(d)).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// A number in `[-1, 1]` derived from the id and attempt (splitmix64).
fn unit_noise(id: Uuid, attempt: u32) -> f64 {
    let v = id.as_u128();
    let mut z = (v as u64) ^ ((v >> 64) as u64) ^ u64::from(attempt).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 52) as f64 - 1.0
}

/// Parses a `Retry-After` value: delay seconds (`120`) or an HTTP date (`Wed, 21 Oct 2015 07:28:00 GMT`, also the
/// obsolete RFC 850 and asctime forms), relative to `now`. A date in the past means no wait; garbage means none.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // absurdly long values saturate rather than fail
        return Some(Duration::from_secs(value.parse::<u64>().unwrap_or(u64::MAX)));
    }
    let at = DateTime::parse_from_rfc2822(value)
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(value, "%A, %d-%b-%y %H:%M:%S GMT").map(|t| t.and_utc()))
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(value, "%a %b %e %H:%M:%S %Y").map(|t| t.and_utc()))
        .ok()?;
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2015-10-21T07:00:00Z".parse().unwrap()
    }

    #[test]
    fn default_is_open_connectors_schedule() {
        let p = RetryPolicy::default();
        assert_eq!(p.max_attempts(), 10);
        let secs: Vec<u64> = p.offsets().iter().map(|d| d.as_secs()).collect();
        assert_eq!(secs, [4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144]);
        // ~73 h for the last
        assert_eq!(p.offsets()[8].as_secs() / 3600, 72);
    }

    #[test]
    fn gaps_follow_the_offsets_within_the_jitter() {
        let p = RetryPolicy::default();
        let expected_gaps = [4.0, 12.0, 48.0, 192.0, 768.0, 3072.0, 12288.0, 49152.0, 196608.0];
        for n in 0..200u128 {
            let id = Uuid::from_u128(n * 7919);
            for (i, gap) in expected_gaps.iter().enumerate() {
                let RetryDecision::RetryIn(d) = p.after_failure(id, i as u32 + 1) else { panic!("gave up early") };
                let ratio = d.as_secs_f64() / gap;
                assert!((0.9..=1.1).contains(&ratio), "attempt {}: {d:?} vs {gap}", i + 1);
            }
            assert_eq!(p.after_failure(id, 10), RetryDecision::GiveUp);
            assert_eq!(p.after_failure(id, 0), RetryDecision::GiveUp);
        }
    }

    #[test]
    fn jitter_spreads_and_is_stable() {
        let p = RetryPolicy::default();
        let delays: Vec<_> = (0..50u128).map(|n| p.after_failure(Uuid::from_u128(n), 1)).collect();
        let distinct: std::collections::HashSet<_> = delays.iter().map(|d| format!("{d:?}")).collect();
        assert!(distinct.len() > 40, "jitter should spread retries: {distinct:?}");
        assert_eq!(delays[3], p.after_failure(Uuid::from_u128(3), 1));
        let flat = RetryPolicy::exponential(Duration::from_secs(4), 4, 3, 0.0).unwrap();
        assert_eq!(flat.after_failure(Uuid::from_u128(9), 2), RetryDecision::RetryIn(Duration::from_secs(12)));
    }

    #[test]
    fn next_step_honours_longer_retry_after() {
        let p = RetryPolicy::exponential(Duration::from_secs(4), 4, 2, 0.0).unwrap();
        let id = Uuid::nil();
        let at = |s: i64| NextStep::RetryAt(now() + chrono::Duration::seconds(s));
        assert_eq!(p.next_step(id, 1, now(), None), at(4));
        assert_eq!(p.next_step(id, 1, now(), Some(Duration::from_secs(1))), at(4));
        assert_eq!(p.next_step(id, 1, now(), Some(Duration::from_secs(120))), at(120));
        assert_eq!(p.next_step(id, 2, now(), None), at(12));
        assert_eq!(p.next_step(id, 3, now(), Some(Duration::from_secs(120))), NextStep::Failed);
        assert_eq!(
            p.next_step(id, 1, now(), Some(Duration::from_secs(u64::MAX))),
            NextStep::RetryAt(DateTime::<Utc>::MAX_UTC)
        );
    }

    #[test]
    fn policies_are_validated() {
        assert!(RetryPolicy::from_offsets(vec![Duration::from_secs(2), Duration::from_secs(1)], 0.1).is_err());
        assert!(RetryPolicy::from_offsets(vec![Duration::ZERO], 0.1).is_err());
        assert!(RetryPolicy::from_offsets(vec![Duration::from_secs(1)], 1.5).is_err());
        assert!(RetryPolicy::exponential(Duration::from_secs(u64::MAX / 2), 4, 3, 0.1).is_err());
        assert_eq!(RetryPolicy::none().max_attempts(), 1);
    }

    #[test]
    fn retry_after_forms() {
        fn check(value: &str, expected: Option<u64>) {
            assert_eq!(parse_retry_after(value, now()).map(|d| d.as_secs()), expected, "{value:?}");
        }
        check("120", Some(120));
        check(" 0 ", Some(0));
        check("Wed, 21 Oct 2015 07:28:00 GMT", Some(1680));
        check("Wednesday, 21-Oct-15 07:28:00 GMT", Some(1680));
        check("Wed Oct 21 07:28:00 2015", Some(1680));
        check("Wed, 21 Oct 2015 06:00:00 GMT", Some(0));
        check("99999999999999999999999", Some(u64::MAX));
        check("-5", None);
        check("1.5", None);
        check("soon", None);
        check("", None);
    }

    proptest::proptest! {
        #[test]
        fn retry_after_never_panics(s in "\\PC{0,60}") {
            let _ = parse_retry_after(&s, now());
        }
    }
}
