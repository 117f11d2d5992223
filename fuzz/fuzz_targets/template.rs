//! Fuzz target `template`: poller URL templates, `SimpleDateFormat` masks and zone ids (crate `oc-template`).
//!
//! Input: `TEMPLATE_OR_MASK \n TEXT_TO_PARSE [\n ZONE_ID]` (UTF-8; the zone defaults to GMT). Checks:
//! - nothing panics on any input; every error's span lies inside its input, on character boundaries;
//! - a template keeps its source; without placeholders it renders to its source; with them, the effective lower
//!   bound of a render is never after the instant rendered;
//! - a zone that parses is found again by its own id;
//! - a mask that parses a text to an instant `t` formats `t` to a text that parses back to `t` (parsing is a
//!   fixpoint once its result is formatted), wherever formatting keeps what the mask read: not across abutting
//!   fields (`yyMMdd` prints `2` for year 2 and reads more digits back, as Java does), not for two-letter years
//!   outside their 100-year window, not for years before 1 without an era field `G`, and only for masks that
//!   print every unit down to their finest (a mask without the hour loses it).

#![no_main]

use chrono::{DateTime, TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use oc_template::{Mask, Template, Zone};

fn span_ok(input: &str, span: std::ops::Range<usize>) -> bool {
    span.start <= span.end && input.get(span).is_some()
}

/// The letter runs of a pattern outside quotes, and whether two of them abut (no literal text between).
fn letter_runs(pattern: &str) -> (Vec<(char, usize)>, bool) {
    let mut runs: Vec<(char, usize)> = Vec::new();
    let mut abutting = false;
    let mut quoted = false;
    let mut last_was_letter = false;
    for c in pattern.chars() {
        if c == '\'' {
            quoted = !quoted;
            last_was_letter = false;
            continue;
        }
        if !quoted && c.is_ascii_alphabetic() {
            match runs.last_mut() {
                Some((l, n)) if last_was_letter && *l == c => *n += 1,
                _ => {
                    abutting |= last_was_letter;
                    runs.push((c, 1));
                }
            }
            last_was_letter = true;
        } else {
            last_was_letter = false;
        }
    }
    (runs, abutting)
}

/// Whether formatting `t` with `pattern` keeps everything a parse of it reads (see the module doc).
fn fixpoint_expected(pattern: &str, t: DateTime<Utc>, century: DateTime<Utc>) -> bool {
    use chrono::Datelike;
    let (runs, abutting) = letter_runs(pattern);
    let short_year = runs.iter().any(|&(l, n)| (l == 'y' || l == 'Y') && n <= 2);
    let in_window = t >= century && t.year() < century.year() + 100;
    let era = runs.iter().any(|&(l, _)| l == 'G');
    // the mask prints every unit down to its finest one, so the text names one instant
    let has = |letters: &str| runs.iter().any(|&(l, _)| letters.contains(l));
    let hour = has("Hk") || (has("hK") && has("a"));
    let complete = has("y")
        && (has("D") || (has("ML") && has("d")))
        && (!has("HkhKa") || hour)
        && (!has("m") || hour)
        && (!has("s") || has("m"))
        && (!has("S") || has("s"));
    complete && !abutting && (!short_year || in_window) && (era || t.year() >= 1)
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else { return };
    let mut lines = input.splitn(3, '\n');
    let head = lines.next().unwrap_or("");
    let text = lines.next().unwrap_or("");
    let zone_id = lines.next();

    let instants = [
        DateTime::UNIX_EPOCH,
        Utc.with_ymd_and_hms(2019, 3, 25, 15, 31, 2).unwrap() + chrono::TimeDelta::milliseconds(120),
        Utc.with_ymd_and_hms(2024, 10, 27, 1, 30, 0).unwrap(),
        DateTime::<Utc>::MIN_UTC,
        DateTime::<Utc>::MAX_UTC,
    ];

    match Template::parse(head) {
        Ok(template) => {
            assert_eq!(template.source(), head);
            let placeholders = template.placeholders().count();
            for t in instants {
                let rendered = template.render(t);
                if placeholders == 0 {
                    assert_eq!(rendered, head);
                }
                assert!(template.effective_lower_bound(t) <= t, "{head:?} at {t}");
            }
        }
        Err(e) => {
            assert!(span_ok(e.input(), e.span()), "{e:?}");
            let _ = e.to_string();
        }
    }

    let zone = match zone_id.map(Zone::parse) {
        None => Zone::gmt(),
        Some(Ok(zone)) => {
            assert_eq!(Zone::parse(zone.id()).as_ref(), Ok(&zone), "zone {:?} not found again by its id", zone_id);
            zone
        }
        Some(Err(e)) => {
            assert!(span_ok(e.input(), e.span()), "{e:?}");
            let _ = e.to_string();
            Zone::gmt()
        }
    };

    // a fixed window for two-digit years: the system clock would make runs differ
    let century = Utc.with_ymd_and_hms(1946, 1, 1, 0, 0, 0).unwrap();
    match Mask::compile(head) {
        Ok(mask) => {
            let mask = mask.with_two_digit_year_start(century);
            for t in instants {
                let _ = mask.format(t, &zone);
            }
            match mask.parse(text, &zone) {
                Ok(t) if fixpoint_expected(head, t, century) => {
                    let formatted = mask.format(t, &zone);
                    match mask.parse(&formatted, &zone) {
                        Ok(back) => assert_eq!(
                            back,
                            t,
                            "mask {head:?} zone {}: {text:?} -> {t} -> {formatted:?} -> {back}",
                            zone.id()
                        ),
                        Err(e) => panic!("mask {head:?} zone {}: {text:?} -> {t} -> {formatted:?}: {e}", zone.id()),
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    assert!(span_ok(e.input(), e.span()), "{e:?}");
                    let _ = e.to_string();
                }
            }
        }
        Err(e) => {
            assert!(span_ok(e.input(), e.span()), "{e:?}");
            let _ = e.to_string();
        }
    }
});
