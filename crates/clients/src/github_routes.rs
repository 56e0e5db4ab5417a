//! Every GitHub REST path the clients call, in one place (as twilight's `routing.rs`): a call
//! names its [`Route`], and the path, each segment percent-encoded, comes from here. (A workflow
//! dispatch goes through octocrab's own builder.)

use valine_domain::repo::RepoName;

/// One GitHub REST path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    /// `GET`: the App's installation on the repository's owner.
    Installation { repo: &'a RepoName },
    /// `POST`: an installation token.
    InstallationToken { installation: u64 },
    /// `GET`: the repository's workflows.
    Workflows { repo: &'a RepoName },
    /// `GET`: the runs of one workflow (by id or file name).
    WorkflowRuns { repo: &'a RepoName, workflow: &'a str },
    /// `GET`: the repository's runs.
    Runs { repo: &'a RepoName },
    /// `GET`: one run.
    Run { repo: &'a RepoName, run_id: u64 },
    /// `GET`: the jobs of one attempt of a run.
    RunAttemptJobs { repo: &'a RepoName, run_id: u64, attempt: u64 },
    /// `POST`: re-run a run's failed jobs.
    RerunFailedJobs { repo: &'a RepoName, run_id: u64 },
    /// `GET`: a job's log (a redirect to the text).
    JobLogs { repo: &'a RepoName, job_id: u64 },
    /// `GET`: the repository's webhooks.
    Hooks { repo: &'a RepoName },
    /// `GET`: a webhook's recent deliveries.
    HookDeliveries { repo: &'a RepoName, hook_id: u64 },
    /// `POST`: send a delivery again.
    HookDeliveryAttempts { repo: &'a RepoName, hook_id: u64, delivery_id: u64 },
    /// `POST`: create an Actions variable.
    Variables { repo: &'a RepoName },
    /// `PATCH`: one Actions variable.
    Variable { repo: &'a RepoName, name: &'a str },
    /// `GET`: the key Actions secrets are sealed to.
    SecretsPublicKey { repo: &'a RepoName },
    /// `PUT`: one Actions secret.
    Secret { repo: &'a RepoName, name: &'a str },
}

/// Path segments go through percent-encoding: workflow names come from settings and options.
pub fn segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>().replace('+', "%20")
}

/// `/repos/{owner}/{name}`.
fn repo_path(repo: &RepoName) -> String {
    format!("/repos/{}/{}", segment(&repo.owner), segment(&repo.name))
}

impl Route<'_> {
    /// The path, from the API's root: `/repos/acme/widget/actions/runs/5`.
    pub fn path(&self) -> String {
        match *self {
            Self::Installation { repo } => format!("{}/installation", repo_path(repo)),
            Self::InstallationToken { installation } => format!("/app/installations/{installation}/access_tokens"),
            Self::Workflows { repo } => format!("{}/actions/workflows", repo_path(repo)),
            Self::WorkflowRuns { repo, workflow } => {
                format!("{}/actions/workflows/{}/runs", repo_path(repo), segment(workflow))
            }
            Self::Runs { repo } => format!("{}/actions/runs", repo_path(repo)),
            Self::Run { repo, run_id } => format!("{}/actions/runs/{run_id}", repo_path(repo)),
            Self::RunAttemptJobs { repo, run_id, attempt } => {
                format!("{}/actions/runs/{run_id}/attempts/{attempt}/jobs", repo_path(repo))
            }
            Self::RerunFailedJobs { repo, run_id } => {
                format!("{}/actions/runs/{run_id}/rerun-failed-jobs", repo_path(repo))
            }
            Self::JobLogs { repo, job_id } => format!("{}/actions/jobs/{job_id}/logs", repo_path(repo)),
            Self::Hooks { repo } => format!("{}/hooks", repo_path(repo)),
            Self::HookDeliveries { repo, hook_id } => format!("{}/hooks/{hook_id}/deliveries", repo_path(repo)),
            Self::HookDeliveryAttempts { repo, hook_id, delivery_id } => {
                format!("{}/hooks/{hook_id}/deliveries/{delivery_id}/attempts", repo_path(repo))
            }
            Self::Variables { repo } => format!("{}/actions/variables", repo_path(repo)),
            Self::Variable { repo, name } => format!("{}/actions/variables/{}", repo_path(repo), segment(name)),
            Self::SecretsPublicKey { repo } => format!("{}/actions/secrets/public-key", repo_path(repo)),
            Self::Secret { repo, name } => format!("{}/actions/secrets/{}", repo_path(repo), segment(name)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path() {
        let repo = RepoName { owner: "acme".into(), name: "widget".into() };
        let repo = &repo;
        let cases = [
            (Route::Installation { repo }, "/repos/acme/widget/installation"),
            (Route::InstallationToken { installation: 9 }, "/app/installations/9/access_tokens"),
            (Route::Workflows { repo }, "/repos/acme/widget/actions/workflows"),
            (Route::WorkflowRuns { repo, workflow: "ci.yml" }, "/repos/acme/widget/actions/workflows/ci.yml/runs"),
            (Route::Runs { repo }, "/repos/acme/widget/actions/runs"),
            (Route::Run { repo, run_id: 5 }, "/repos/acme/widget/actions/runs/5"),
            (
                Route::RunAttemptJobs { repo, run_id: 5, attempt: 2 },
                "/repos/acme/widget/actions/runs/5/attempts/2/jobs",
            ),
            (Route::RerunFailedJobs { repo, run_id: 5 }, "/repos/acme/widget/actions/runs/5/rerun-failed-jobs"),
            (Route::JobLogs { repo, job_id: 7 }, "/repos/acme/widget/actions/jobs/7/logs"),
            (Route::Hooks { repo }, "/repos/acme/widget/hooks"),
            (Route::HookDeliveries { repo, hook_id: 3 }, "/repos/acme/widget/hooks/3/deliveries"),
            (
                Route::HookDeliveryAttempts { repo, hook_id: 3, delivery_id: 11 },
                "/repos/acme/widget/hooks/3/deliveries/11/attempts",
            ),
            (Route::Variables { repo }, "/repos/acme/widget/actions/variables"),
            (Route::Variable { repo, name: "X" }, "/repos/acme/widget/actions/variables/X"),
            (Route::SecretsPublicKey { repo }, "/repos/acme/widget/actions/secrets/public-key"),
            (Route::Secret { repo, name: "Y" }, "/repos/acme/widget/actions/secrets/Y"),
        ];
        for (route, path) in cases {
            assert_eq!(route.path(), path, "{route:?}");
        }
    }

    #[test]
    fn segments_are_percent_encoded() {
        let repo = RepoName { owner: "acme".into(), name: "widget".into() };
        let route = Route::WorkflowRuns { repo: &repo, workflow: "my flow/../x?.yml" };
        assert_eq!(route.path(), "/repos/acme/widget/actions/workflows/my%20flow%2F..%2Fx%3F.yml/runs");
    }
}
