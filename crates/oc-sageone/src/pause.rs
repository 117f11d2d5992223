//! Waiting as a port: the provider waits (backoff, `Retry-After`, rate limit, another node's refresh lock)
//! through [`Pause`], so tests record the waits instead of sleeping through them.

use std::fmt::Debug;
use std::time::Duration;

use async_trait::async_trait;

/// Something that waits.
#[async_trait]
pub trait Pause: Send + Sync + Debug {
    /// Returns after `duration` (or, in tests, at once, having recorded it).
    async fn pause(&self, duration: Duration);
}

/// Waits on the tokio timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioPause;

#[async_trait]
impl Pause for TokioPause {
    async fn pause(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}
