//! Renders an Open Connectors URL template at an instant, and reads a date with a Java mask.
//!
//! ```text
//! cargo run -p oc-template --example render -- "/hubs/finance/customers?where=lastModifiedDate>='\${date:yyyy-MM-dd'T'HH:mm:ss'Z'}'" 2019-03-25T15:31:02Z
//! ```
//!
//! Without arguments it renders the seed's template at the current instant.

use chrono::{DateTime, Utc};
use oc_template::{Mask, Template, Zone, format_rfc3339_utc};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let template = args
        .next()
        .unwrap_or_else(|| "/hubs/finance/customers?where=lastModifiedDate>='${date:yyyy-MM-dd'T'HH:mm:ss'Z'}'".into());
    let at: DateTime<Utc> = match args.next() {
        Some(text) => text.parse().map_err(|e| format!("{text:?} is not an RFC 3339 instant: {e}"))?,
        None => Utc::now(),
    };
    let template = Template::parse(&template)?;
    println!("{}", template.render(at));

    // the other half: a record's date read back with a mask in a zone
    let mask = Mask::compile("dd/MM/yyyy HH:mm:ss.SSS")?;
    let zone = Zone::parse("Europe/London")?;
    let text = mask.format(at, &zone);
    let read = mask.parse(&text, &zone)?;
    println!("{text} (Europe/London) = {}", format_rfc3339_utc(read));
    Ok(())
}
