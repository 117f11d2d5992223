//! Validates an Open Connectors instance body (`POST /instances`) from a file or standard input, as ocpoll's API
//! does: every problem with its path, or a summary of what the instance will do.
//!
//! ```text
//! cargo run -p oc-model --example validate -- tests/fixtures/seed-instance-body-example.json
//! ```

use std::process::ExitCode;

use oc_model::validate::validate_instance_request;

fn main() -> ExitCode {
    let text = match std::env::args().nth(1) {
        Some(path) => match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("cannot read {path}: {e}");
                return ExitCode::from(2);
            }
        },
        None => match std::io::read_to_string(std::io::stdin()) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("cannot read standard input: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let body: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("not JSON: {e}");
            return ExitCode::from(2);
        }
    };
    match validate_instance_request(&body) {
        Ok(request) => {
            let config = request.configuration();
            let interval = config.refresh_interval().map(|d| format!("{} s", d.as_secs())).unwrap_or_default();
            let resources: Vec<String> =
                config.poller_configs().map(|p| p.iter().map(|(r, _)| r.to_string()).collect()).unwrap_or_default();
            println!("valid: polls {} every {interval}", resources.join(", "));
            ExitCode::SUCCESS
        }
        Err(problems) => {
            for p in problems.iter() {
                println!("{}: {}", p.path, p.message);
            }
            ExitCode::from(1)
        }
    }
}
