//! The incident model: one incident per (repository, workflow, branch) of workflow runs, or per
//! (repository, environment) of deployment statuses, per route channel. Pure: [`decide`] takes the
//! stored incident (or none), one observation, the time and the policy, and answers the next state
//! and what to do about it. The store's conditional write (on [`Incident::version`]) and the
//! ordering key here together make deliveries in any order, duplicated, replayed, or handled by two
//! containers at once converge on the newest run's truth.
//!
//! `model` is what an incident is, `decide` what happens to it, `render` how it shows in Discord,
//! `stats` what `valinectl incidents` reports.

mod decide;
mod model;
pub mod outbox;
mod render;
mod stats;
#[cfg(test)]
mod tests;

pub use decide::{Action, Decision, Policy, calm, culprits, decide, log_tail, needs_escalation};
pub use model::*;
pub use render::{escalation_reply, render, resolved_reply};
pub use stats::{WorkflowStats, stats};
