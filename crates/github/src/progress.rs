//! Followed runs: the `/diagnose` and `/deploy-client` messages edited from their run's
//! `workflow_run` deliveries (a successful deploy verified first).

use std::time::Duration;

use valine_domain::trace::{StepStatus, TraceRecorder};
use valine_service::deadline::Deadline;
use valine_service::diagnose::{correlation_ids_in, progress_message_with};
use valine_store::{Followed, RunRecord};

use crate::app::App;

/// The longest a `/diagnose` progress edit may take.
const PROGRESS_EDIT_BUDGET: Duration = Duration::from_millis(2500);

impl App {
    /// Whether `run` can be a followed run at all (`/diagnose`, `/deploy-client`): dispatched, of
    /// `DIAGNOSE_WORKFLOW` or `DEPLOY_WORKFLOW`, in `GITHUB_REPO` or `GITHUB_REPOS` (`/diagnose
    /// repo:`). Anything else (a pull request titled with a correlation id, say) never touches a
    /// followed message.
    pub(crate) fn is_diagnose_run(&self, run: &RunRecord) -> bool {
        !self.followed_kinds(run).is_empty()
    }

    /// Which commands' workflow `run` is (both, when they dispatch the same workflow).
    fn followed_kinds(&self, run: &RunRecord) -> Vec<Followed> {
        let file = run.workflow_path.rsplit('/').next().unwrap_or("");
        let is = |wanted: &str| {
            file.eq_ignore_ascii_case(wanted)
                || run.workflow_name.eq_ignore_ascii_case(wanted)
                || run.workflow_id.to_string() == wanted
        };
        let ours = run.event == "workflow_dispatch"
            && (self.config.github_repo.as_ref().is_none_or(|r| r.to_string().eq_ignore_ascii_case(&run.repository))
                || self.config.github_repos.admits_delivery(&run.repository));
        if !ours {
            return Vec::new();
        }
        let mut kinds = Vec::new();
        if is(&self.config.diagnose_workflow) {
            kinds.push(Followed::Diagnose);
        }
        if is(&self.config.deploy_workflow) {
            kinds.push(Followed::Deploy);
        }
        kinds
    }

    /// Edits the `/diagnose` message of a pending correlation named in the run's title. `None`
    /// when the run is no pending diagnose; an error when its message could not be updated.
    pub(crate) async fn diagnose_progress(
        &self,
        rec: &mut TraceRecorder,
        run: &RunRecord,
        deadline: Deadline,
    ) -> Option<Result<(), String>> {
        if !self.is_diagnose_run(run) {
            return None;
        }
        let mut lookup_error = None;
        for id in correlation_ids_in(&run.title) {
            let correlation = match rec.time("store.get_correlation", self.stores.runs.get_correlation(&id)).await {
                Ok(Some(c)) => c,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(correlation_id = %id, error = %e, "could not look up a diagnose correlation");
                    lookup_error = Some(e.to_string());
                    continue;
                }
            };
            if !self.followed_kinds(run).contains(&correlation.kind) {
                // A correlation of the other command named in this run's title: not ours to edit.
                continue;
            }
            rec.set_correlation_id(&id);
            // A successful deploy is verified before it is called done.
            let checks = if correlation.kind == Followed::Deploy
                && run.status == "completed"
                && run.conclusion.as_deref() == Some("success")
                && !self.config.verify_urls.is_empty()
            {
                let t = rec.start("verify.endpoints");
                let checks = valine_service::verify::run_checks(self.probe.as_ref(), &self.config.verify_urls).await;
                let healthy = checks.iter().filter(|c| c.healthy()).count();
                let status = if healthy == checks.len() { StepStatus::Ok } else { StepStatus::Error };
                rec.finish(t, status, Some(format!("{healthy}/{} healthy", checks.len())));
                Some(checks)
            } else {
                None
            };
            let body = progress_message_with(&correlation, Some(run), checks.as_deref()).to_json();
            let discord = self.discord.clone();
            let bound = deadline.within(PROGRESS_EDIT_BUDGET);
            let edited = rec
                .time("discord.edit_original", async {
                    let edit = discord.edit_original(correlation.application_id, &correlation.interaction_token, &body);
                    bound.run(edit).await.unwrap_or(Err(valine_clients::discord_api::DiscordError::Timeout))
                })
                .await;
            return Some(match edited {
                Ok(()) => {
                    tracing::info!(correlation_id = %id, status = %run.status, "diagnose progress updated");
                    Ok(())
                }
                Err(e) => {
                    tracing::warn!(correlation_id = %id, error = %e, "could not update the diagnose message");
                    Err(e.to_string())
                }
            });
        }
        lookup_error.map(Err)
    }
}
