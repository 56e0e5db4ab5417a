//! Failure streaks per workflow in a window: what `valinectl incidents` reports.

use serde::{Deserialize, Serialize};

use super::model::*;

/// Failure streaks of one workflow (or deployment environment) in a window: what
/// `valinectl incidents` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowStats {
    pub repository: String,
    /// `workflow` or `deploy:environment`.
    pub workflow: String,
    /// Failure streaks opened in the window (each one incident message).
    pub incidents: u64,
    /// Failing runs in those streaks.
    pub failures: u64,
    /// Mean time to recover: first failure's completion → resolution, over resolved streaks.
    pub mttr_secs: Option<u64>,
    /// Mean time to detect: first failure's completion → incident message posted.
    pub mttd_secs: Option<u64>,
    /// Mean time to acknowledge: incident message posted (or, unposted, the first failure's
    /// completion) → acknowledged, over acknowledged streaks.
    #[serde(default)]
    pub mtta_secs: Option<u64>,
}

fn mean(values: &[u64]) -> Option<u64> {
    (!values.is_empty()).then(|| values.iter().sum::<u64>() / values.len() as u64)
}

/// Per workflow (and repository), over the streaks opened at or after `since`.
pub fn stats(incidents: &[Incident], since: u64) -> Vec<WorkflowStats> {
    let mut groups: std::collections::BTreeMap<(String, String), Vec<Streak>> = Default::default();
    for incident in incidents {
        let entry = groups.entry((incident.key.repository.clone(), incident.key.name())).or_default();
        entry.extend(incident.streaks().into_iter().filter(|s| s.opened_at >= since));
    }
    groups
        .into_iter()
        .filter(|(_, streaks)| !streaks.is_empty())
        .map(|((repository, workflow), streaks)| {
            let recover: Vec<u64> = streaks
                .iter()
                .filter(|s| s.resolved_at > 0)
                .map(|s| s.resolved_at.saturating_sub(s.first_failure_completed_at.min(s.opened_at)))
                .collect();
            let detect: Vec<u64> = streaks
                .iter()
                .filter_map(|s| s.message_posted_at.map(|p| p.saturating_sub(s.first_failure_completed_at)))
                .collect();
            let acknowledge: Vec<u64> = streaks
                .iter()
                .filter_map(|s| {
                    let alerted = s.message_posted_at.unwrap_or(s.first_failure_completed_at);
                    s.acked_at.map(|a| a.saturating_sub(alerted))
                })
                .collect();
            WorkflowStats {
                repository,
                workflow,
                incidents: streaks.len() as u64,
                failures: streaks.iter().map(|s| s.failures).sum(),
                mttr_secs: mean(&recover),
                mttd_secs: mean(&detect),
                mtta_secs: mean(&acknowledge),
            }
        })
        .collect()
}
