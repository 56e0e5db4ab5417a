//! Starting a drain of the outbox (see `incidents::send`) somewhere other than the delivery that
//! left something in it: under `valinectl serve`, a background task woken at once; in Lambda, an
//! asynchronous invocation of this same function (its alias) with a [`DRAIN_EVENT`], at most
//! one every few seconds per container. Whatever a drain misses, the tick (every minute) sends.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;

/// The key of the event that asks the GitHub function to drain the outbox.
pub const DRAIN_EVENT: &str = "valine_drain";
/// A container asks for a drain at most this often (a storm of deliveries asks once).
pub const KICK_GAP_MS: u64 = 5_000;

/// Starts a drain elsewhere; never fails the delivery that asks (the tick is the backstop).
#[async_trait]
pub trait Kick: Send + Sync {
    /// `invoked_by`: the ARN the asking invocation came through (its alias), in Lambda.
    async fn kick(&self, invoked_by: Option<&str>);
}

/// `valinectl serve` and tests: wakes the background drainer.
#[derive(Debug, Clone, Default)]
pub struct LocalKick {
    pub wake: Arc<tokio::sync::Notify>,
}

#[async_trait]
impl Kick for LocalKick {
    async fn kick(&self, _: Option<&str>) {
        self.wake.notify_one();
    }
}

/// Lambda: an asynchronous invocation of this function through the alias it was invoked by.
#[derive(Debug)]
pub struct LambdaKick {
    client: aws_sdk_lambda::Client,
    /// Only when the invocation carried no ARN (never in Lambda).
    function_name: String,
    last_ms: AtomicU64,
}

impl LambdaKick {
    pub fn new(client: aws_sdk_lambda::Client, function_name: String) -> Self {
        Self { client, function_name, last_ms: AtomicU64::new(0) }
    }
}

/// Whether a kick at `now_ms` goes out after one at `last_ms` (the gap keeps a storm to a few).
pub fn kick_due(last_ms: u64, now_ms: u64) -> bool {
    last_ms == 0 || now_ms.saturating_sub(last_ms) >= KICK_GAP_MS
}

#[async_trait]
impl Kick for LambdaKick {
    async fn kick(&self, invoked_by: Option<&str>) {
        let now = valine_domain::clock::now_millis();
        let last = self.last_ms.load(Ordering::Relaxed);
        if !kick_due(last, now)
            || self.last_ms.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_err()
        {
            return;
        }
        let target = invoked_by.unwrap_or(&self.function_name);
        let payload = serde_json::json!({ DRAIN_EVENT: { "asked_at_ms": now } }).to_string().into_bytes();
        match crate::lambda::invoke_event(&self.client, target, payload).await {
            Ok(()) => tracing::info!(target = %target, "outbox drain asked for"),
            Err(e) => {
                // Asked again by the next delivery; the tick sends it anyway.
                self.last_ms.store(0, Ordering::Relaxed);
                tracing::warn!(error = %e, "could not ask for an outbox drain; the tick sends what waits");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_container_asks_at_most_once_per_gap() {
        for (last, now, due) in [(0, 1, true), (1_000, 1_001, false), (1_000, 1_000 + KICK_GAP_MS, true), (5, 2, false)]
        {
            assert_eq!(kick_due(last, now), due, "last {last} now {now}");
        }
    }
}
