//! Translates a finance-hub resource and a CEQL `where` clause into the Sage v3.1 request ocpoll sends.
//!
//! ```text
//! cargo run -p oc-sageone --example translate -- customers "lastModifiedDate >= '2024-01-31T10:00:00Z'"
//! ```

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let resource = args.next().unwrap_or_else(|| "customers".into());
    let clause = args.next().unwrap_or_else(|| "lastModifiedDate >= '2024-01-31T10:00:00Z'".into());
    match oc_sageone::translate(&resource, &clause) {
        Ok(t) => {
            let query: Vec<String> = t.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
            println!("GET {}?{}", t.path, query.join("&"));
            if let Some(local) = &t.local {
                println!("filtered by ocpoll after reading: {local:?}");
            }
            for w in &t.warnings {
                println!("warning: {w}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}
