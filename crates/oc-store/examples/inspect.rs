//! Opens a store as `ocpoll serve` does — migrations applied, the master key checked against the database — and
//! prints what it holds: the backend, the schema version, the outbox and every live instance (no secret).
//!
//! ```text
//! cargo run -p oc-store --example inspect -- sqlite:///var/lib/ocpoll/ocpoll.db /var/lib/ocpoll/ocpoll.db.key
//! cargo run -p oc-store --example inspect              # a fresh SQLite database in a temporary directory
//! ```
//!
//! A wrong key or a database written by a newer ocpoll fails here with the message `ocpoll serve` would give.

use std::path::Path;
use std::process::ExitCode;

use oc_model::ports::MaintenanceStore;
use oc_store::{MasterKey, SCHEMA_VERSION, connect};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let temporary = std::env::temp_dir().join(format!("oc-store-inspect-{}", std::process::id()));
    let (url, key) = match (args.next(), args.next()) {
        (Some(url), Some(key_file)) => match MasterKey::from_file(Path::new(&key_file)) {
            Ok(key) => (url, key),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
        (Some(_), None) => {
            eprintln!("usage: inspect [DATABASE_URL KEY_FILE]");
            return ExitCode::from(2);
        }
        _ => {
            let _ = std::fs::create_dir_all(&temporary);
            (format!("sqlite://{}", temporary.join("ocpoll.db").display()), MasterKey::generate())
        }
    };
    let code = match inspect(&url, key).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    };
    let _ = std::fs::remove_dir_all(&temporary);
    code
}

async fn inspect(url: &str, key: MasterKey) -> Result<(), Box<dyn std::error::Error>> {
    let store = connect(url, key).await?;
    println!("{:?} store, schema version {SCHEMA_VERSION}", store.backend());
    let outbox = store.outbox_stats(chrono::Utc::now()).await?;
    println!(
        "outbox: {} event(s) not yet batched, {} notification(s) pending (the oldest for {} s), {} failed",
        outbox.unbatched_events, outbox.pending_notifications, outbox.oldest_pending_secs, outbox.failed_notifications
    );
    let instances = store.instance_summaries().await?;
    println!("{} live instance(s)", instances.len());
    for i in instances {
        let state = match (i.disabled, i.valid) {
            (true, _) => "disabled",
            (false, false) => "re-authorization required",
            (false, true) => "polling",
        };
        println!("  {} {:?} ({}): {state}", i.id, i.name, i.element_key);
    }
    store.close().await;
    Ok(())
}
