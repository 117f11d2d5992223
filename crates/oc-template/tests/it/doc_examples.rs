//! The examples of `docs/template.md`, checked.

use chrono::{DateTime, Utc};
use oc_template::{Mask, Template, Zone};

fn at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2019-03-25T15:31:02.120Z").unwrap().with_timezone(&Utc)
}

fn check(template: &str, expected: &str) {
    assert_eq!(Template::parse(template).unwrap().render(at()), expected, "{template}");
}

fn check_mask(mask: &str, expected: &str) {
    let zone = Zone::parse("America/Los_Angeles").unwrap();
    assert_eq!(Mask::compile(mask).unwrap().format(at(), &zone), expected, "{mask}");
}

#[test]
fn placeholder_table() {
    check("${date}", "2019-03-25T15:31:02Z");
    check("${date:yyyy-MM-dd}", "2019-03-25");
    check("${gmtDate:HH:mm z}", "15:31 GMT");
    check("${dateTimeZone:PST:HH:mm z}", "08:31 PDT");
    check("${epoch}|${epoch:ms}|${milliseconds}", "1553527862120|1553527862120|1553527862120");
    check("${epoch:s}", "1553527862");
    check("${epoch:us}", "1553527862120000");
    check("${date:'}'yyyy}", "}2019");
    check("${dateTimeZone:-8:00:HH:mm}", "07:31");
}

#[test]
fn mask_table() {
    let utc = Zone::utc();
    let f = |m: &str| Mask::compile(m).unwrap().format(at(), &utc);
    assert_eq!(f("G GG GGG GGGG"), "AD AD AD AD");
    assert_eq!(f("y yy yyy yyyyy"), "2019 19 2019 02019");
    assert_eq!(f("M MM MMM MMMM L LL LLL LLLL"), "3 03 Mar March 3 03 Mar March");
    assert_eq!(f("w D d F"), "13 84 25 4");
    assert_eq!(f("E EE EEE EEEE u a"), "Mon Mon Mon Monday 1 PM");
    assert_eq!(f("H k K h m mm s ss"), "15 15 3 3 31 31 2 02");
    assert_eq!(f("S SS SSS SSSSSS"), "120 120 120 000120");
    check_mask("z zz zzz zzzz Z X XX XXX", "PDT PDT PDT Pacific Daylight Time -0700 -07 -0700 -07:00");
    let dec29 = DateTime::parse_from_rfc3339("2024-12-29T12:00:00Z").unwrap().with_timezone(&Utc);
    assert_eq!(Mask::compile("YYYY-MM-dd").unwrap().format(dec29, &utc), "2025-12-29");
    assert_eq!(Mask::compile("X").unwrap().format(at(), &Zone::parse("IST").unwrap()), "+05");
}

#[test]
fn template_error_display() {
    let e = Template::parse("${dateTimeZone:Mars:yyyy-MM-dd}").unwrap_err();
    assert_eq!(
        e.to_string(),
        "unknown zone `Mars`: expected an IANA id such as America/Los_Angeles, GMT, UTC, GMT+hh:mm or an offset such as -8:00 at byte 15\n${dateTimeZone:Mars:yyyy-MM-dd}\n               ^^^^"
    );
}
