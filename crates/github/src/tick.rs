//! The scheduled tick (EventBridge; every minute under `valinectl serve`): gap filling, the
//! incidents' own tick (escalation, calmed flapping), and the `VERIFY_URLS` health checks.

use std::time::Duration;

use tracing::Instrument;
use valine_domain::trace::TraceRecorder;
use valine_service::deadline::Deadline;
use valine_service::incidents::send::DrainReport;
use valine_service::incidents::{Observed, TickReport};

use crate::app::{App, TRACE_USER};

/// The longest a tick runs (the function's timeout, 60 s in `template.yaml`, is longer).
const TICK_BUDGET: Duration = Duration::from_secs(45);
/// The part of the tick that drains the outbox first.
const TICK_DRAIN_BUDGET: Duration = Duration::from_secs(20);
/// The longest a drain invocation runs (within the function's 60 s).
pub(crate) const DRAIN_BUDGET: Duration = Duration::from_secs(50);
/// The store key that keeps drain invocations to one at a time.
const DRAIN_CLAIM: &str = "outbox-drain";

impl App {
    /// The scheduled tick (EventBridge every 5 minutes; every minute under `valinectl serve`).
    /// Gap filling first (so that escalation sees the repaired incidents), then the incidents'
    /// own tick.
    pub async fn tick(&self) -> TickReport {
        let mut trace = TraceRecorder::new(TRACE_USER, "tick".to_string());
        let span = tracing::info_span!("tick", trace_id = %trace.trace_id(), cmd = "tick");
        let deadline = Deadline::after(TICK_BUDGET);
        let trace_id = trace.trace_id().to_string();
        async {
            // The outbox first: what waits is older than anything the tick finds now.
            let drained = self.incidents.drain_until(deadline.within(TICK_DRAIN_BUDGET)).await;
            self.metrics.outbox(drained.left, drained.oldest_left_secs);
            let gaps = self.fill_gaps(&mut trace, deadline).await;
            let now = valine_domain::clock::now_secs();
            let mut report = self.incidents.tick(now, deadline).await;
            report.outbox_sent = drained.sent;
            report.outbox_left = drained.left;
            report.errors.extend(drained.errors);
            report.redelivered = gaps.redelivered;
            report.repaired = gaps.repaired;
            report.errors.extend(gaps.errors);
            if !self.config.verify_urls.is_empty() {
                self.health_tick(&mut report, &trace_id, now, deadline).await;
            }
            report
        }
        .instrument(span)
        .await
    }

    /// A drain invocation (Lambda's answer to a kick): drains the outbox for up to `budget`,
    /// one such invocation at a time (a store claim; the tick drains regardless).
    pub async fn drain_outbox(&self, budget: Duration) -> DrainReport {
        let now = valine_domain::clock::now_secs();
        let claim = match self.stores.alerts.claim(DRAIN_CLAIM, now, budget.as_secs() + 5).await {
            Ok(Some(claim)) => claim,
            Ok(None) => {
                tracing::info!("another drain is under way");
                return DrainReport::default();
            }
            Err(e) => {
                // Drained anyway: cards are claimed one by one, so two drains never send one twice.
                tracing::warn!(error = %e, "could not claim the drain; draining anyway");
                return self.incidents.drain_until(Deadline::after(budget)).await;
            }
        };
        let report = self.incidents.drain_until(Deadline::after(budget)).await;
        if let Err(e) = self.stores.alerts.release(&claim).await {
            tracing::warn!(error = %e, "could not release the drain claim; it runs out by itself");
        }
        report
    }

    /// The `VERIFY_URLS` checks of the tick: each endpoint is an observation of its own incident,
    /// which opens after two failed checks in a row and resolves on a pass (see
    /// `valine_domain::incident::decide`).
    pub async fn health_tick(&self, report: &mut TickReport, trace_id: &str, now: u64, deadline: Deadline) {
        use valine_domain::incident::{IncidentKey, Observation, Order, Outcome, RunRef};
        let checks = valine_service::verify::run_checks(self.probe.as_ref(), &self.config.verify_urls).await;
        let repository = self.config.github_repo.as_ref().map_or_else(|| "valine".to_string(), |r| r.to_string());
        for check in checks {
            report.checked += 1;
            let problem = check.problem();
            if problem.is_some() {
                report.unhealthy += 1;
            }
            tracing::info!(endpoint = %check.name, status = check.answer.status.unwrap_or(0), latency_ms = check.answer.latency_ms, healthy = problem.is_none(), "endpoint checked");
            let mut key = IncidentKey::endpoint(0, &repository, &check.name);
            let gate = format!("{repository}|endpoint:{}|health", check.name);
            match self.incidents.channel(&gate) {
                Ok(channel) => key.channel_id = channel,
                Err(_) => continue,
            }
            let obs = Observation {
                workflow_file: Default::default(),
                key,
                outcome: if problem.is_some() { Outcome::Failure } else { Outcome::Success },
                run: RunRef {
                    // Milliseconds: two ticks in one second are still ordered.
                    order: Order::new(valine_domain::clock::now_millis(), 0),
                    conclusion: problem.unwrap_or_else(|| "healthy".into()),
                    url: Some(check.url.clone()),
                    completed_at: now,
                    trace_id: trace_id.to_string(),
                    ..RunRef::default()
                },
            };
            if let Observed::Failed { error, .. } = self.incidents.observe(&obs, deadline).await {
                report.errors.push(error);
            }
        }
    }
}
