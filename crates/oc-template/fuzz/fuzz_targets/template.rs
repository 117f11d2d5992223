//! Fuzz target: template parsing and rendering, mask compiling, formatting and parsing, zone ids.
//! Nothing may panic on any input. Input: `TEMPLATE_OR_MASK \n TEXT_TO_PARSE`.

#![no_main]

use chrono::DateTime;
use libfuzzer_sys::fuzz_target;
use oc_template::{Mask, Template, Zone};

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else { return };
    let (head, text) = input.split_once('\n').unwrap_or((input, ""));
    let instants = [DateTime::UNIX_EPOCH, DateTime::<chrono::Utc>::MIN_UTC, DateTime::<chrono::Utc>::MAX_UTC];
    if let Ok(template) = Template::parse(head) {
        for t in instants {
            let _ = template.render(t);
            assert!(template.effective_lower_bound(t) <= t);
        }
    }
    let zone = Zone::parse(text).unwrap_or_default();
    if let Ok(mask) = Mask::compile(head) {
        for t in instants {
            let _ = mask.format(t, &zone);
        }
        if let Err(e) = mask.parse(text, &zone) {
            let _ = e.to_string();
        }
    }
});
