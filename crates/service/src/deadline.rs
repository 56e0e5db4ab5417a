//! "Within what is left": one point in time a request's work must end by, what is left of it, a
//! step's cap bounded by it, and a future bounded by it. On tokio's clock, so that the timers and
//! a test's paused clock see the same time.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// When the work must be done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Deadline(Instant);

impl Deadline {
    pub fn at(instant: Instant) -> Self {
        Self(instant)
    }

    /// `budget` from now.
    pub fn after(budget: Duration) -> Self {
        Self(Instant::now() + budget)
    }

    pub fn instant(self) -> Instant {
        self.0
    }

    /// What is left; zero once it has passed.
    pub fn left(self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }

    /// `d`, or what is left when that is less.
    pub fn cap(self, d: Duration) -> Duration {
        d.min(self.left())
    }

    /// The sooner of this deadline and `d` from now: a step's own cap inside the whole budget.
    pub fn within(self, d: Duration) -> Self {
        Self(self.0.min(Instant::now() + d))
    }

    /// `fut`'s output, or `None` when the deadline passes first.
    pub async fn run<F: Future>(self, fut: F) -> Option<F::Output> {
        tokio::time::timeout_at(self.0, fut).await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn left_cap_and_run_keep_to_the_deadline() {
        let deadline = Deadline::after(Duration::from_secs(2));
        assert_eq!(deadline.left(), Duration::from_secs(2));
        assert_eq!(deadline.cap(Duration::from_secs(5)), Duration::from_secs(2));
        assert_eq!(deadline.cap(Duration::from_millis(300)), Duration::from_millis(300));
        assert_eq!(deadline.within(Duration::from_millis(300)).left(), Duration::from_millis(300));
        assert_eq!(deadline.within(Duration::from_secs(5)), deadline);
        assert_eq!(deadline.run(async { 7 }).await, Some(7));
        let slow = tokio::time::sleep(Duration::from_secs(3));
        assert_eq!(deadline.run(slow).await, None);
        assert_eq!(Instant::now(), deadline.instant(), "gave up at the deadline, not later");
        assert_eq!(deadline.left(), Duration::ZERO);
        assert_eq!(deadline.cap(Duration::from_secs(1)), Duration::ZERO);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(deadline.left(), Duration::ZERO, "saturates once passed");
        assert_eq!(deadline.run(async { 8 }).await, Some(8), "a ready future still gets its answer");
    }
}
