//! Retention in the background: delivered (and dropped) notifications, their events and attempts older than
//! the retention age are pruned periodically; failed ones stay until redelivered. The same rounds remove the web
//! console's sessions and OAuth rounds that have expired (they are refused from their expiry on: pruning only
//! frees their rows).

use std::sync::Arc;
use std::time::Duration;

use oc_model::ports::{Clock, ConsoleStore, MaintenanceStore};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

/// How long delivered notifications are kept by default: 30 days.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// Prunes now and then every `every`: what was delivered more than `retention` ago, and the console sessions and
/// OAuth rounds expired (both by `clock`). Runs until the handle is aborted or the runtime stops; failures are
/// logged and retried at the next tick.
pub fn spawn_pruner<S>(store: Arc<S>, clock: Arc<dyn Clock>, retention: Duration, every: Duration) -> JoinHandle<()>
where
    S: MaintenanceStore + ConsoleStore + ?Sized + 'static,
{
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every.max(Duration::from_millis(1)));
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let now = clock.now();
            // `now - retention`, saturating at the earliest instant
            let before = chrono::TimeDelta::from_std(retention)
                .ok()
                .and_then(|d| now.checked_sub_signed(d))
                .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
            match store.prune_delivered(before).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(pruned = n, before = %before, "pruned delivered notifications"),
                Err(e) => tracing::warn!(error = %e, "pruning delivered notifications failed; retrying later"),
            }
            // the first tick is at once: a start after a bulk load claims with fresh statistics
            if let Err(e) = store.refresh_statistics().await {
                tracing::warn!(error = %e, "refreshing the database's statistics failed; retrying later");
            }
            match store.prune_console(now).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(pruned = n, "pruned expired console sessions and OAuth rounds"),
                Err(e) => tracing::warn!(error = %e, "pruning expired console sessions failed; retrying later"),
            }
        }
    })
}
