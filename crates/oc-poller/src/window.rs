//! The poller URL and the lower bound it really sends.
//!
//! A placeholder renders the window's lower bound `S` through a Java mask, which truncates it (a seconds mask
//! to the second, a date-only mask to the day) and may be read by the provider in another zone than it was
//! written in (a literal `'Z'` after a local time, or no offset at all, is read as UTC). The engine needs the
//! instant the provider will really use: to make sure it is not *after* `S` (pitfall 7) and to prune `seen`
//! only below it (step 7).

use chrono::{DateTime, Utc};
use oc_template::{Placeholder, Template, Zone};

/// A parsed poller URL.
#[derive(Debug, Clone)]
pub struct UrlPlan {
    template: Template,
}

/// True when the mask has a zone field (`z`, `Z`, `X` outside quotes): its text says which zone it is in.
fn mask_has_zone(pattern: &str) -> bool {
    let mut quoted = false;
    pattern.chars().any(|c| {
        if c == '\'' {
            quoted = !quoted;
        }
        !quoted && matches!(c, 'z' | 'Z' | 'X')
    })
}

impl UrlPlan {
    /// Parses the placeholders of `url`.
    pub fn new(url: &str) -> Result<UrlPlan, String> {
        Ok(UrlPlan { template: Template::parse(url).map_err(|e| e.to_string())? })
    }

    /// True when the URL has a placeholder.
    pub fn has_placeholder(&self) -> bool {
        self.template.placeholders().next().is_some()
    }

    /// The latest instant a reader that takes zone-less text as UTC (as most providers do, for a date-time
    /// without offset or with a literal `'Z'`) may make of the placeholders rendered at `at`.
    fn latest_utc_reading(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let utc = Zone::utc();
        self.template
            .placeholders()
            .filter_map(|p| match p {
                Placeholder::Date { mask, zone } if !mask_has_zone(mask.pattern()) => {
                    mask.parse(&mask.format(at, zone), &utc).ok()
                }
                _ => None,
            })
            .max()
    }

    /// The earliest instant the placeholders rendered at `at` denote under any reading: their own zone (after
    /// mask truncation) or UTC.
    fn earliest_reading(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        let utc = Zone::utc();
        let own = self.template.effective_lower_bound(at);
        self.template
            .placeholders()
            .filter_map(|p| match p {
                Placeholder::Date { mask, zone } if !mask_has_zone(mask.pattern()) => {
                    mask.parse(&mask.format(at, zone), &utc).ok()
                }
                _ => None,
            })
            .fold(own, DateTime::min)
    }

    /// Renders the URL for the lower bound `s`. Returns the URL and the earliest instant its placeholders
    /// denote under any reading (`None` without placeholders). With `guard`, when some reading of the text is
    /// after `s` (a local time followed by a literal `'Z'`, in a zone ahead of UTC), the URL is rendered
    /// earlier until no reading is after `s`.
    pub fn render(&self, s: DateTime<Utc>, guard: bool) -> (String, Option<DateTime<Utc>>) {
        if !self.has_placeholder() {
            return (self.template.render(s), None);
        }
        let at = self.guarded(s, guard);
        (self.template.render(at), Some(self.earliest_reading(at)))
    }

    /// The bound [`render`](Self::render) reports for `s`, without rendering the URL (`None` without
    /// placeholders): what a poll starting at `s` will really send.
    pub fn sent_bound(&self, s: DateTime<Utc>, guard: bool) -> Option<DateTime<Utc>> {
        self.has_placeholder().then(|| self.earliest_reading(self.guarded(s, guard)))
    }

    /// The instant to render for `s`: `s`, or with `guard` earlier until no reading of the text is after `s`.
    fn guarded(&self, s: DateTime<Utc>, guard: bool) -> DateTime<Utc> {
        let mut at = s;
        if guard {
            for _ in 0..4 {
                match self.latest_utc_reading(at) {
                    Some(hi) if hi > s => at -= hi - s,
                    _ => break,
                }
            }
        }
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t: &str) -> DateTime<Utc> {
        t.parse().unwrap()
    }

    fn check(url: &str, s: &str, guard: bool, expected_url: &str, expected_bound: Option<&str>) {
        let plan = UrlPlan::new(url).unwrap();
        let (got, bound) = plan.render(at(s), guard);
        assert_eq!(got, expected_url, "{url}");
        assert_eq!(bound, expected_bound.map(at), "{url}");
        assert_eq!(plan.sent_bound(at(s), guard), bound, "{url}: the bound alone is the rendered one");
    }

    #[test]
    fn renders_and_reports_the_bound_really_sent() {
        let s = "2024-03-10T12:34:56.789Z";
        check("/x?a=1", s, true, "/x?a=1", None);
        check("/x?since=${date}", s, true, "/x?since=2024-03-10T12:34:56Z", Some("2024-03-10T12:34:56Z"));
        check("/x?d=${date:yyyy-MM-dd}&n=1", s, true, "/x?d=2024-03-10&n=1", Some("2024-03-10T00:00:00Z"));
        check("/x?e=${epoch:s}", s, true, "/x?e=1710074096", Some("2024-03-10T12:34:56Z"));
        check("/x?e=${epoch}", s, true, "/x?e=1710074096789", Some("2024-03-10T12:34:56.789Z"));
        check(
            "/x?where=updated>='${date:yyyy-MM-dd'T'HH:mm:ss'Z'}'",
            s,
            true,
            "/x?where=updated>='2024-03-10T12:34:56Z'",
            Some("2024-03-10T12:34:56Z"),
        );
    }

    #[test]
    fn a_literal_z_after_a_local_time_is_never_read_after_the_bound() {
        let url = "/x?since=${dateTimeZone:+05:30:yyyy-MM-dd'T'HH:mm:ss'Z'}";
        // unguarded: the text reads as 05:30 later than meant when taken as UTC
        check(url, "2024-03-10T12:00:00Z", false, "/x?since=2024-03-10T17:30:00Z", Some("2024-03-10T12:00:00Z"));
        // guarded: rendered 05:30 earlier, so that even the UTC reading is at the bound
        check(url, "2024-03-10T12:00:00Z", true, "/x?since=2024-03-10T12:00:00Z", Some("2024-03-10T06:30:00Z"));
        // an IANA zone across the spring DST change: 03:30 CEST would read 2 h late; one step back by 2 h
        // lands in CET, read 1 h early (safe)
        check(
            "/x?since=${dateTimeZone:Europe/Paris:yyyy-MM-dd'T'HH:mm:ss'Z'}",
            "2024-03-31T01:30:00Z",
            true,
            "/x?since=2024-03-31T00:30:00Z",
            Some("2024-03-30T23:30:00Z"),
        );
        // a zone behind UTC is already safe (read earlier than meant)
        check(
            "/x?since=${dateTimeZone:-08:00:yyyy-MM-dd'T'HH:mm:ss'Z'}",
            "2024-03-10T12:00:00Z",
            true,
            "/x?since=2024-03-10T04:00:00Z",
            Some("2024-03-10T04:00:00Z"),
        );
    }

    #[test]
    fn bad_placeholders_are_errors() {
        assert!(UrlPlan::new("/x?${date:yyyy").is_err());
        assert!(UrlPlan::new("/x?${nope}").is_err());
        assert!(UrlPlan::new("/x?${date:qqq}").is_err());
    }
}
