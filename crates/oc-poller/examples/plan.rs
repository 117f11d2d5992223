//! Compiles a resource's poller configuration (a JSON object, as in `event.poller.configuration`) the way the
//! engine will, and prints the plan or every problem with its field.
//!
//! ```text
//! cargo run -p oc-poller --example plan -- '{"url": "/hubs/finance/customers?where=lastModifiedDate>=\x27${date}\x27", "idField": "id"}'
//! ```

use std::process::ExitCode;

use chrono::Utc;
use oc_model::poller::PollerConfig;
use oc_poller::{PlanSettings, PollPlan};

fn main() -> ExitCode {
    let text = std::env::args().nth(1).unwrap_or_else(|| {
        r#"{"url": "/hubs/finance/customers?where=lastModifiedDate>='${date}'", "idField": "id"}"#.into()
    });
    let config: PollerConfig = match serde_json::from_str(&text) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("not a poller configuration: {e}");
            return ExitCode::from(2);
        }
    };
    let now = Utc::now();
    match PollPlan::compile(&config, "deleted_at", PlanSettings::default(), now) {
        Ok(plan) => {
            println!("lookback {} s, tolerance {} ms", plan.lookback.num_seconds(), plan.tolerance.num_milliseconds());
            let (url, _) = plan.url.render(now - plan.lookback, true);
            println!("the URL of a poll now: {url}");
            ExitCode::SUCCESS
        }
        Err(problems) => {
            for p in problems {
                println!("{p}");
            }
            ExitCode::from(1)
        }
    }
}
