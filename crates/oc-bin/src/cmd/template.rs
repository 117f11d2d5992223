//! `ocpoll template render | format-date | parse-date`: the poller URL placeholders and Java date masks, from the
//! command line. Errors exit with code 2 and show a caret under the input on stderr.

use chrono::{DateTime, Utc};
use oc_template::{Mask, Template, Zone, format_rfc3339_utc};

/// `ocpoll template ...`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum TemplateCmd {
    /// Render a poller URL template with the last poll time (default: now).
    Render {
        /// The last poll time, RFC 3339.
        #[arg(long)]
        last_poll: Option<String>,
        /// The template, e.g. "/hubs/finance/customers?where=lastModifiedDate>='${date:yyyy-MM-dd'T'HH:mm:ss'Z'}'".
        template: String,
    },
    /// Format an instant with a Java SimpleDateFormat mask.
    FormatDate {
        /// The mask, e.g. "yyyy-MM-dd'T'HH:mm:ss'Z'".
        #[arg(long)]
        mask: String,
        /// The zone (IANA id, GMT, UTC, GMT+hh:mm, -8:00, or Java's three-letter ids); default GMT.
        #[arg(long)]
        zone: Option<String>,
        /// The instant, RFC 3339.
        instant: String,
    },
    /// Parse a date with a Java SimpleDateFormat mask; prints RFC 3339 UTC.
    ParseDate {
        /// The mask.
        #[arg(long)]
        mask: String,
        /// The zone used when the value has none; default GMT.
        #[arg(long)]
        zone: Option<String>,
        /// The text to parse.
        value: String,
    },
}

fn instant(text: &str, what: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{what} {text:?} is not an RFC 3339 instant: {e}"))
}

fn zone(z: Option<&str>) -> Result<Zone, String> {
    match z {
        Some(z) => Zone::parse(z).map_err(|e| e.to_string()),
        None => Ok(Zone::gmt()),
    }
}

/// Runs a template command: the text to print, or the error to show.
pub(crate) fn run(cmd: &TemplateCmd) -> Result<String, String> {
    match cmd {
        TemplateCmd::Render { last_poll, template } => {
            let at = match last_poll {
                Some(t) => instant(t, "--last-poll")?,
                None => Utc::now(),
            };
            let t = Template::parse(template).map_err(|e| e.to_string())?;
            Ok(t.render(at))
        }
        TemplateCmd::FormatDate { mask, zone: z, instant: i } => {
            let m = Mask::compile(mask).map_err(|e| e.to_string())?;
            Ok(m.format(instant(i, "the instant")?, &zone(z.as_deref())?))
        }
        TemplateCmd::ParseDate { mask, zone: z, value } => {
            let m = Mask::compile(mask).map_err(|e| e.to_string())?;
            let t = m.parse(value, &zone(z.as_deref())?).map_err(|e| e.to_string())?;
            Ok(format_rfc3339_utc(t))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(cmd: TemplateCmd, expected: Result<&str, &str>) {
        match (run(&cmd), expected) {
            (Ok(got), Ok(want)) => assert_eq!(got, want),
            (Err(got), Err(want)) => assert!(got.contains(want), "{got}"),
            (got, want) => panic!("{cmd:?}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn commands() {
        check(
            TemplateCmd::Render {
                last_poll: Some("2019-03-25T15:31:02Z".into()),
                template: "/x?where=a>='${date:yyyy-MM-dd'T'HH:mm:ss'Z'}'".into(),
            },
            Ok("/x?where=a>='2019-03-25T15:31:02Z'"),
        );
        check(
            TemplateCmd::FormatDate {
                mask: "yyyy-MM-dd HH:mm z".into(),
                zone: Some("PST".into()),
                instant: "2024-07-01T12:00:00Z".into(),
            },
            Ok("2024-07-01 05:00 PDT"),
        );
        check(
            TemplateCmd::ParseDate {
                mask: "yyyy-MM-dd'T'HH:mm:ss.SSS".into(),
                zone: None,
                value: "2019-03-25T15:31:02.120".into(),
            },
            Ok("2019-03-25T15:31:02.120Z"),
        );
        check(TemplateCmd::Render { last_poll: Some("yesterday".into()), template: "x".into() }, Err("--last-poll"));
        check(TemplateCmd::ParseDate { mask: "yyyy-MM-dd".into(), zone: None, value: "2024-02-30".into() }, Err(""));
        check(
            TemplateCmd::FormatDate {
                mask: "yyyy".into(),
                zone: Some("Mars/Olympus".into()),
                instant: "2024-01-01T00:00:00Z".into(),
            },
            Err(""),
        );
    }
}
