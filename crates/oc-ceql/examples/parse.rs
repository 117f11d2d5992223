//! Parses a CEQL `where` clause, prints it normalized, and says whether a JSON record (on standard input, when
//! given) matches it; a clause with an error prints the error under its place.
//!
//! ```text
//! cargo run -p oc-ceql --example parse -- "name like 'A%' and vip = true"
//! echo '{"name": "Acme", "vip": true}' | cargo run -p oc-ceql --example parse -- "name like 'A%' and vip = true"
//! ```

use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use oc_ceql::{Dialect, LocalFilter, parse};

/// A provider that names its fields as CEQL does.
const PLAIN: Dialect = Dialect {
    element: "plain",
    hubs: &["crm"],
    example_resource: "contacts",
    field_aliases: &[],
    always_returned: &[],
};

fn main() -> ExitCode {
    let clause = std::env::args().nth(1).unwrap_or_else(|| "name like 'A%' and vip = true".into());
    let parsed = match parse(&clause) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{}", e.render(&clause));
            return ExitCode::from(2);
        }
    };
    println!("{}", parsed.expr);
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut text = String::new();
        if stdin.lock().read_to_string(&mut text).is_ok() && !text.trim().is_empty() {
            match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(record) => println!("matches: {}", LocalFilter::new(&parsed.expr, &PLAIN).matches(&record)),
                Err(e) => {
                    eprintln!("standard input is not JSON: {e}");
                    return ExitCode::from(2);
                }
            }
        }
    }
    ExitCode::SUCCESS
}
