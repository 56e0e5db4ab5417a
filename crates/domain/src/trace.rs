//! Traces: one per interaction or delivery, with steps timed for real, and a bounded
//! in-process cache of each user's last trace.

use std::collections::{HashMap, VecDeque};
use std::fmt::Display;
use std::future::Future;
use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::clock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Ok,
    Error,
    Skipped,
}

/// One timed step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub name: String,
    /// Milliseconds after the trace started.
    pub started_ms: u64,
    pub duration_ms: u64,
    pub status: StepStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub label: String,
    pub url: String,
}

/// What happened while handling one interaction or delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trace {
    pub trace_id: String,
    pub user_id: String,
    pub command: String,
    /// Epoch milliseconds.
    pub started_at_ms: u64,
    pub duration_ms: u64,
    pub steps: Vec<Step>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default)]
    pub links: Vec<Link>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
}

/// Records a trace as work happens. Step offsets are wall-clock milliseconds since the trace
/// began (so a deferred job in another process continues the same timeline); durations come
/// from a monotonic clock.
#[derive(Debug)]
pub struct TraceRecorder {
    trace: Trace,
    started: Instant,
}

/// A step in progress.
#[derive(Debug)]
pub struct StepTimer {
    name: String,
    started: Instant,
    offset_ms: u64,
}

impl TraceRecorder {
    /// A new trace with a fresh v4 id.
    pub fn new(user_id: impl Into<String>, command: impl Into<String>) -> Self {
        Self::with_id(uuid::Uuid::new_v4().to_string(), user_id, command)
    }

    pub fn with_id(trace_id: String, user_id: impl Into<String>, command: impl Into<String>) -> Self {
        Self {
            trace: Trace {
                trace_id,
                user_id: user_id.into(),
                command: command.into(),
                started_at_ms: clock::now_millis(),
                duration_ms: 0,
                steps: Vec::new(),
                error: None,
                links: Vec::new(),
                correlation_id: None,
            },
            started: Instant::now(),
        }
    }

    /// Continues a stored trace (a deferred job picking up where the answer left off).
    pub fn resume(trace: Trace) -> Self {
        Self { trace, started: Instant::now() }
    }

    pub fn trace_id(&self) -> &str {
        &self.trace.trace_id
    }

    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    pub fn set_correlation_id(&mut self, id: impl Into<String>) {
        self.trace.correlation_id = Some(id.into());
    }

    fn offset_ms(&self) -> u64 {
        clock::now_millis().saturating_sub(self.trace.started_at_ms)
    }

    pub fn start(&self, name: impl Into<String>) -> StepTimer {
        StepTimer { name: name.into(), started: Instant::now(), offset_ms: self.offset_ms() }
    }

    pub fn finish(&mut self, timer: StepTimer, status: StepStatus, detail: Option<String>) {
        self.trace.steps.push(Step {
            name: timer.name,
            started_ms: timer.offset_ms,
            duration_ms: timer.started.elapsed().as_millis() as u64,
            status,
            detail: detail.map(|d| crate::redact::redact(&d).into_owned()),
        });
    }

    /// Records a step that took no measurable work (a decision, a skip).
    pub fn note(&mut self, name: impl Into<String>, status: StepStatus, detail: Option<String>) {
        let t = self.start(name);
        self.finish(t, status, detail);
    }

    /// Times a fallible future as one step; an error becomes the step's detail.
    pub async fn time<T, E: Display>(&mut self, name: &str, fut: impl Future<Output = Result<T, E>>) -> Result<T, E> {
        let t = self.start(name);
        let out = fut.await;
        match &out {
            Ok(_) => self.finish(t, StepStatus::Ok, None),
            Err(e) => self.finish(t, StepStatus::Error, Some(e.to_string())),
        }
        out
    }

    pub fn fail(&mut self, error: impl Display) {
        self.trace.error = Some(crate::redact::redact(&error.to_string()).into_owned());
    }

    pub fn link(&mut self, label: impl Into<String>, url: impl Into<String>) {
        self.trace.links.push(Link { label: label.into(), url: url.into() });
    }

    /// The trace so far, with its total duration.
    pub fn snapshot(&self) -> Trace {
        let mut t = self.trace.clone();
        t.duration_ms = self.offset_ms().max(self.started.elapsed().as_millis() as u64);
        t
    }
}

/// The last trace of each user, for at most `capacity` users; least recently written goes first.
/// Every operation is O(1) (amortised).
#[derive(Debug)]
pub struct TraceCache {
    inner: Mutex<CacheInner>,
    capacity: usize,
}

#[derive(Debug, Default)]
struct CacheInner {
    by_user: HashMap<String, (Trace, u64)>,
    // (user, generation) in write order; stale generations are skipped on eviction.
    order: VecDeque<(String, u64)>,
    generation: u64,
}

impl TraceCache {
    pub fn new(capacity: usize) -> Self {
        Self { inner: Mutex::new(CacheInner::default()), capacity: capacity.max(1) }
    }

    pub fn put(&self, trace: Trace) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.generation += 1;
        let generation = inner.generation;
        let user = trace.user_id.clone();
        inner.order.push_back((user.clone(), generation));
        inner.by_user.insert(user, (trace, generation));
        while inner.by_user.len() > self.capacity {
            let Some((user, g)) = inner.order.pop_front() else { break };
            if inner.by_user.get(&user).is_some_and(|(_, current)| *current == g) {
                inner.by_user.remove(&user);
            }
        }
        // Rewrites of one user leave stale entries behind; drop them once they dominate.
        if inner.order.len() > self.capacity * 2 + 16 {
            let CacheInner { by_user, order, .. } = &mut *inner;
            order.retain(|(u, g)| by_user.get(u).is_some_and(|(_, current)| current == g));
        }
    }

    pub fn last_for_user(&self, user_id: &str) -> Option<Trace> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.by_user.get(user_id).map(|(t, _)| t.clone())
    }

    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).by_user.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn steps_are_timed_for_real() {
        let mut rec = TraceRecorder::new("42", "/status");
        let r: Result<(), String> = rec
            .time("sleep", async {
                tokio::time::sleep(Duration::from_millis(30)).await;
                Ok(())
            })
            .await;
        assert!(r.is_ok());
        let _ = rec.time("fails", async { Err::<(), _>("boom token=abc") }).await;
        let t = rec.snapshot();
        assert_eq!(t.steps.len(), 2);
        assert!(t.steps[0].duration_ms >= 30, "{:?}", t.steps[0]);
        assert_eq!(t.steps[1].status, StepStatus::Error);
        assert_eq!(t.steps[1].detail.as_deref(), Some("boom token=***REDACTED***"));
        assert!(t.steps[1].started_ms >= 30);
        assert!(t.duration_ms >= 30);
        assert_eq!(uuid::Uuid::parse_str(&t.trace_id).unwrap().get_version_num(), 4);
    }

    fn trace(user: &str, id: &str) -> Trace {
        let mut t = TraceRecorder::with_id(id.into(), user, "/status").snapshot();
        t.duration_ms = 1;
        t
    }

    #[test]
    fn cache_keeps_the_last_trace_per_user_and_is_bounded() {
        let cache = TraceCache::new(3);
        cache.put(trace("a", "1"));
        cache.put(trace("b", "2"));
        cache.put(trace("a", "3"));
        assert_eq!(cache.last_for_user("a").unwrap().trace_id, "3");
        cache.put(trace("c", "4"));
        cache.put(trace("d", "5"));
        assert_eq!(cache.len(), 3);
        // b was written least recently
        assert!(cache.last_for_user("b").is_none());
        assert!(cache.last_for_user("a").is_some());
        for i in 0..1000 {
            cache.put(trace("a", &i.to_string()));
        }
        assert_eq!(cache.len(), 3);
        assert!(cache.inner.lock().unwrap().order.len() <= 3 * 2 + 17);
        assert_eq!(cache.last_for_user("a").unwrap().trace_id, "999");
    }
}
