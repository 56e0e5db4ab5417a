//! What a delivery means, decided without any I/O: the run it reports, and whether it raises an
//! alert, resolves one, or changes nothing. Every field is read leniently: GitHub's payloads
//! differ between github.com, GHES and older hooks, and none of that may fail a delivery.

use serde_json::Value;
use valine_domain::clock::{now_secs, parse_rfc3339_secs};
use valine_domain::incident::{IncidentKey, Observation, Order, Outcome, RunRef};
use valine_store::RunRecord;

/// What to do about one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// An observation for the incident model. Its key's `channel_id` is 0 here: the route
    /// (today `ALERT_CHANNEL_ID`) is set where the gates are.
    Observe(Box<Observation>),
    Nothing(&'static str),
}

/// A GitHub login from a commit author: the `username` GitHub adds to push payloads, or the
/// login in a `users.noreply.github.com` address (`login@…` or `12345+login@…`).
pub fn author_login(author: &Value) -> Option<String> {
    if let Some(u) = s(author, &["username"]) {
        return Some(u.to_string());
    }
    let email = s(author, &["email"])?;
    let local = email.strip_suffix("@users.noreply.github.com")?;
    let login = local.split_once('+').map_or(local, |(_, l)| l);
    (!login.is_empty()).then(|| login.to_string())
}

fn s<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str().filter(|s| !s.is_empty())
}

fn n(v: &Value, path: &[&str]) -> Option<u64> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_u64()
}

/// The repository's `owner/name`.
pub fn repository(payload: &Value) -> String {
    s(payload, &["repository", "full_name"]).unwrap_or("unknown/unknown").to_string()
}

/// The environment of a `deployment_status` delivery.
pub fn environment(payload: &Value) -> String {
    s(payload, &["deployment_status", "environment"])
        .or_else(|| s(payload, &["deployment", "environment"]))
        .unwrap_or("unknown")
        .to_string()
}

/// The one line a channel routed `all-runs` gets for a completed run.
pub fn run_line(run: &RunRecord) -> String {
    let conclusion = run.conclusion.as_deref().unwrap_or("completed");
    let icon = match conclusion {
        "success" => "🟢",
        "failure" | "timed_out" | "startup_failure" => "🔴",
        "cancelled" | "skipped" => "⚪",
        _ => "⚫",
    };
    let name = valine_domain::redact::redact(&run.workflow_name).into_owned();
    let branch = valine_domain::redact::redact(&run.head_branch).into_owned();
    let mut line = format!("{icon} {name} #{} on `{branch}` ({}): {conclusion}", run.run_number, run.repository);
    if !run.html_url.is_empty() {
        line.push_str(&format!(" · <{}>", run.html_url));
    }
    line
}

/// The run a `workflow_run` delivery reports; `None` without a run id.
pub fn workflow_run_record(payload: &Value) -> Option<RunRecord> {
    let run = payload.get("workflow_run")?;
    let run_id = n(run, &["id"])?;
    let now = now_secs();
    let time = |key: &str| s(run, &[key]).and_then(parse_rfc3339_secs);
    let workflow_id = n(run, &["workflow_id"]).or_else(|| n(payload, &["workflow", "id"])).unwrap_or(0);
    let workflow_name = s(payload, &["workflow", "name"])
        .or_else(|| s(run, &["name"]))
        .map(str::to_string)
        .or_else(|| s(run, &["path"]).map(|p| p.rsplit('/').next().unwrap_or(p).to_string()))
        .unwrap_or_else(|| format!("workflow {workflow_id}"));
    Some(RunRecord {
        run_id,
        repository: repository(payload),
        workflow_id,
        workflow_name,
        title: s(run, &["display_title"]).or_else(|| s(run, &["name"])).unwrap_or("").to_string(),
        workflow_path: s(run, &["path"]).or_else(|| s(payload, &["workflow", "path"])).unwrap_or("").to_string(),
        head_branch: s(run, &["head_branch"]).unwrap_or("").to_string(),
        head_repository: s(run, &["head_repository", "full_name"]).map(str::to_string),
        head_sha: s(run, &["head_sha"]).unwrap_or("").to_string(),
        status: s(run, &["status"]).unwrap_or("unknown").to_string(),
        conclusion: s(run, &["conclusion"]).map(str::to_string),
        html_url: s(run, &["html_url"]).unwrap_or("").to_string(),
        run_number: n(run, &["run_number"]).unwrap_or(0),
        event: s(run, &["event"]).unwrap_or("").to_string(),
        actor: s(run, &["triggering_actor", "login"])
            .or_else(|| s(run, &["actor", "login"]))
            .or_else(|| s(payload, &["sender", "login"]))
            .map(str::to_string),
        created_at: time("created_at").unwrap_or(now),
        updated_at: time("updated_at").or_else(|| time("created_at")).unwrap_or(now),
        run_started_at: time("run_started_at"),
    })
}

/// `main`, or `release/*` for every branch under `release/`.
pub fn branch_matches(patterns: &[String], branch: &str) -> bool {
    patterns.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => branch.starts_with(prefix),
        None => p == branch,
    })
}

/// A completed run on an alert branch is an observation (failure, success or neutral: the
/// model decides what each does); anything else is nothing.
pub fn decide_workflow_run(
    action: &str,
    run: &RunRecord,
    payload: &Value,
    alert_branches: &[String],
    trace_id: &str,
) -> Decision {
    if action != "completed" && run.status != "completed" {
        return Decision::Nothing("run not completed");
    }
    // A fork's pull request from its own `main` reports `head_branch: main` too; it says nothing
    // about this repository's `main`, and must neither alert nor resolve.
    if run.head_repository.as_deref().is_some_and(|head| !head.eq_ignore_ascii_case(&run.repository)) {
        return Decision::Nothing("run of code from another repository (a fork)");
    }
    if !branch_matches(alert_branches, &run.head_branch) {
        return Decision::Nothing("branch not in ALERT_BRANCHES");
    }
    let conclusion = run.conclusion.as_deref().unwrap_or("");
    let outcome = Outcome::from_conclusion(conclusion);
    if outcome == Outcome::Neutral || conclusion == "error" {
        return Decision::Nothing("conclusion neither opens nor resolves an incident");
    }
    let attempt = n(payload, &["workflow_run", "run_attempt"]).unwrap_or(1).max(1);
    let first_actor = s(payload, &["workflow_run", "actor", "login"]).map(str::to_string);
    let commit_author = payload
        .get("workflow_run")
        .and_then(|r| r.get("head_commit"))
        .and_then(|c| c.get("author"))
        .and_then(author_login)
        .or(first_actor);
    Decision::Observe(Box::new(Observation {
        key: IncidentKey::workflow(0, &run.repository, &run.workflow_name, &run.head_branch),
        outcome,
        run: RunRef {
            order: Order::new(run.run_number, attempt),
            run_id: run.run_id,
            run_number: run.run_number,
            attempt,
            conclusion: conclusion.to_string(),
            url: Some(run.html_url.clone()).filter(|u| !u.is_empty()),
            commit: Some(run.head_sha.clone()).filter(|c| !c.is_empty()),
            actor: run.actor.clone(),
            commit_author,
            completed_at: run.updated_at,
            trace_id: trace_id.to_string(),
            detail: None,
            retried: false,
        },
        workflow_file: run.workflow_path.clone(),
    }))
}

/// `failure` / `error` open or extend an incident of the environment; `success` may resolve it.
pub fn decide_deployment_status(payload: &Value, trace_id: &str) -> Decision {
    let state = s(payload, &["deployment_status", "state"]).unwrap_or("");
    let environment = s(payload, &["deployment_status", "environment"])
        .or_else(|| s(payload, &["deployment", "environment"]))
        .unwrap_or("unknown");
    let outcome = match state {
        "failure" | "error" => Outcome::Failure,
        "success" => Outcome::Success,
        _ => return Decision::Nothing("deployment state neither opens nor resolves an incident"),
    };
    let repository = repository(payload);
    let created = s(payload, &["deployment_status", "created_at"]).and_then(parse_rfc3339_secs);
    let updated = s(payload, &["deployment_status", "updated_at"]).and_then(parse_rfc3339_secs);
    let status_id = n(payload, &["deployment_status", "id"]).unwrap_or(0);
    let url = s(payload, &["deployment_status", "log_url"])
        .or_else(|| s(payload, &["deployment_status", "target_url"]))
        .map(str::to_string);
    Decision::Observe(Box::new(Observation {
        workflow_file: Default::default(),
        key: IncidentKey::deployment(0, &repository, environment),
        outcome,
        run: RunRef {
            retried: false,
            order: Order::new(created.unwrap_or_else(now_secs), status_id),
            run_id: 0,
            run_number: 0,
            attempt: 0,
            conclusion: state.to_string(),
            url,
            commit: s(payload, &["deployment", "sha"]).map(str::to_string),
            actor: s(payload, &["deployment_status", "creator", "login"])
                .or_else(|| s(payload, &["sender", "login"]))
                .map(str::to_string),
            commit_author: s(payload, &["deployment", "creator", "login"]).map(str::to_string),
            completed_at: updated.or(created).unwrap_or_else(now_secs),
            trace_id: trace_id.to_string(),
            detail: None,
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The shape of a github.com `workflow_run` delivery.
    fn workflow_run(action: &str, status: &str, conclusion: Option<&str>, branch: &str) -> Value {
        json!({
            "action": action,
            "workflow_run": {
                "id": 289782451, "name": "", "display_title": "fix: retry uploads", "head_branch": branch,
                "head_sha": "3484a3fb816e0859fd6e1cea078d76385ff50625", "path": ".github/workflows/test.yml",
                "run_number": 163, "event": "push", "status": status, "conclusion": conclusion, "workflow_id": 2823525,
                "html_url": "https://github.com/octo-org/octo-repo/actions/runs/289782451",
                "created_at": "2020-10-05T16:33:24Z", "updated_at": "2020-10-05T16:35:24Z", "run_started_at": "2020-10-05T16:33:49Z",
                "actor": {"login": "octocat"}, "triggering_actor": {"login": "hubot"}, "pull_requests": []
            },
            "workflow": {"id": 2823525, "name": "test", "path": ".github/workflows/test.yml", "state": "active"},
            "repository": {"full_name": "octo-org/octo-repo"},
            "sender": {"login": "octocat"}
        })
    }

    /// The same run, from a pull request whose code is in `head_repo`.
    fn pull_request_run(conclusion: &str, head_repo: &str) -> Value {
        let mut payload = workflow_run("completed", "completed", Some(conclusion), "main");
        payload["workflow_run"]["event"] = json!("pull_request");
        payload["workflow_run"]["head_repository"] = json!({"full_name": head_repo});
        payload
    }

    fn branches() -> Vec<String> {
        vec!["main".into(), "release/*".into()]
    }

    #[test]
    fn reads_a_run_from_a_delivery() {
        let r = workflow_run_record(&workflow_run("completed", "completed", Some("failure"), "main")).unwrap();
        assert_eq!(r.run_id, 289782451);
        assert_eq!(r.workflow_name, "test");
        assert_eq!(r.title, "fix: retry uploads");
        assert_eq!(r.actor.as_deref(), Some("hubot"));
        assert_eq!(r.updated_at - r.created_at, 120);
        assert_eq!(r.run_started_at, Some(r.created_at + 25));
        assert!(workflow_run_record(&json!({"workflow_run": {}})).is_none());
        assert!(workflow_run_record(&json!({})).is_none());
        // the oldest hooks: no workflow object, a name on the run
        let mut old = workflow_run("completed", "completed", Some("success"), "main");
        old.as_object_mut().unwrap().remove("workflow");
        old["workflow_run"]["name"] = json!("Legacy CI");
        assert_eq!(workflow_run_record(&old).unwrap().workflow_name, "Legacy CI");
    }

    #[test]
    fn decision_table_for_workflow_runs() {
        let cases: &[(&str, &str, Option<&str>, &str, &str)] = &[
            ("completed", "completed", Some("failure"), "main", "failure"),
            ("completed", "completed", Some("startup_failure"), "main", "failure"),
            ("completed", "completed", Some("timed_out"), "release/2.1", "failure"),
            ("completed", "completed", Some("failure"), "feature/x", "nothing"),
            ("completed", "completed", Some("cancelled"), "main", "nothing"),
            ("completed", "completed", Some("skipped"), "main", "nothing"),
            ("completed", "completed", Some("success"), "main", "success"),
            ("completed", "completed", Some("success"), "feature/x", "nothing"),
            ("requested", "queued", None, "main", "nothing"),
            ("in_progress", "in_progress", None, "main", "nothing"),
            ("requested", "completed", Some("failure"), "main", "failure"),
        ];
        for (action, status, conclusion, branch, expected) in cases {
            let run = workflow_run_record(&workflow_run(action, status, *conclusion, branch)).unwrap();
            let payload = workflow_run(action, status, *conclusion, branch);
            let got = match decide_workflow_run(action, &run, &payload, &branches(), "t-1") {
                Decision::Observe(o) => {
                    assert_eq!(o.run.trace_id, "t-1");
                    assert_eq!(o.key, IncidentKey::workflow(0, "octo-org/octo-repo", "test", branch));
                    assert_eq!(o.run.commit.as_deref(), Some("3484a3fb816e0859fd6e1cea078d76385ff50625"));
                    assert_eq!(o.run.order, Order::new(163, 1));
                    match o.outcome {
                        Outcome::Failure => "failure".to_string(),
                        Outcome::Success => "success".to_string(),
                        Outcome::Neutral => "neutral".to_string(),
                    }
                }
                Decision::Nothing(_) => "nothing".to_string(),
            };
            assert_eq!(&got, expected, "{action} {status} {conclusion:?} {branch}");
        }
    }

    /// The variants GitHub really sends: GHES's `completed` action on a run still `queued`, a
    /// `requested` run already `completed` with `action_required`, `repository_dispatch` and
    /// `workflow_dispatch` runs, payloads without a `workflow` object or an `action`.
    #[test]
    fn decisions_for_the_shapes_github_sends() {
        let shaped = |action: &str, status: &str, conclusion: Option<&str>, event: &str, tweak: fn(&mut Value)| {
            let mut p = workflow_run(action, status, conclusion, "main");
            p["workflow_run"]["event"] = json!(event);
            p["workflow_run"]["head_repository"] = json!({"full_name": "octo-org/octo-repo"});
            tweak(&mut p);
            p
        };
        let cases: Vec<(Value, &str)> = vec![
            // GHES: the action says completed while the run is still queued, without a conclusion
            (shaped("completed", "queued", None, "workflow_dispatch", |_| {}), "nothing"),
            (shaped("requested", "completed", Some("action_required"), "repository_dispatch", |_| {}), "nothing"),
            (shaped("completed", "completed", Some("success"), "repository_dispatch", |_| {}), "resolve"),
            (shaped("completed", "completed", Some("failure"), "schedule", |_| {}), "alert"),
            // no `workflow` object, the name on the run; no `action` at all
            (
                shaped("completed", "completed", Some("failure"), "push", |p| {
                    p.as_object_mut().unwrap().remove("workflow");
                    p.as_object_mut().unwrap().remove("action");
                    p["workflow_run"]["name"] = json!("test");
                }),
                "alert",
            ),
            // conclusions that are nobody's failure
            (shaped("completed", "completed", Some("neutral"), "push", |_| {}), "nothing"),
            (shaped("completed", "completed", Some("stale"), "push", |_| {}), "nothing"),
            // fields of the wrong type never fail a delivery
            (
                shaped("completed", "completed", Some("failure"), "push", |p| {
                    p["workflow_run"]["head_branch"] = json!(7)
                }),
                "nothing",
            ),
        ];
        for (payload, expected) in cases {
            let action = payload["action"].as_str().unwrap_or("");
            let run = workflow_run_record(&payload).unwrap();
            let got = match decide_workflow_run(action, &run, &payload, &branches(), "t") {
                Decision::Observe(o) if o.outcome == Outcome::Failure => {
                    assert_eq!(o.key, IncidentKey::workflow(0, "octo-org/octo-repo", "test", "main"));
                    "alert"
                }
                Decision::Observe(_) => "resolve",
                Decision::Nothing(_) => "nothing",
            };
            assert_eq!(got, expected, "{payload}");
        }
        // deployment statuses: GitHub Pages in progress, and GHES without an `action`
        let pages = json!({"action": "created", "deployment_status": {"state": "in_progress", "environment": "github-pages"}, "deployment": {"ref": "gh-pages"}, "repository": {"full_name": "Codertocat/Hello-World"}});
        assert!(matches!(decide_deployment_status(&pages, "t"), Decision::Nothing(_)));
        let ghes = json!({"deployment_status": {"state": "success", "environment": "production"}, "deployment": {"ref": "main"}, "repository": {"full_name": "Codertocat/Hello-World"}});
        assert!(
            matches!(decide_deployment_status(&ghes, "t"), Decision::Observe(o) if o.outcome == Outcome::Success && o.key == IncidentKey::deployment(0, "Codertocat/Hello-World", "production"))
        );
    }

    #[test]
    fn a_forks_main_neither_alerts_nor_resolves() {
        for conclusion in ["failure", "success"] {
            let run = workflow_run_record(&pull_request_run(conclusion, "mallory/octo-repo")).unwrap();
            assert_eq!(run.head_repository.as_deref(), Some("mallory/octo-repo"));
            assert!(
                matches!(decide_workflow_run("completed", &run, &json!({}), &branches(), "t"), Decision::Nothing(r) if r.contains("fork")),
                "{conclusion}"
            );
        }
        // a pull request from a branch of the repository itself counts (case aside)
        let own = workflow_run_record(&pull_request_run("failure", "Octo-Org/octo-repo")).unwrap();
        assert!(matches!(decide_workflow_run("completed", &own, &json!({}), &branches(), "t"), Decision::Observe(_)));
    }

    #[test]
    fn decision_table_for_deployment_statuses() {
        let payload = |state: &str, env: &str| {
            json!({
                "action": "created",
                "deployment_status": {"state": state, "environment": env, "description": "boom", "target_url": "https://ci.example.com/1", "creator": {"login": "deployer"}},
                "deployment": {"ref": "main", "sha": "f95f852bd8fca8fcc58a9a2d6c842781e32a215e", "environment": env},
                "repository": {"full_name": "Codertocat/Hello-World"},
                "sender": {"login": "Codertocat"}
            })
        };
        match decide_deployment_status(&payload("failure", "production"), "t") {
            Decision::Observe(o) => {
                assert_eq!(o.outcome, Outcome::Failure);
                assert_eq!(o.key, IncidentKey::deployment(0, "Codertocat/Hello-World", "production"));
                assert_eq!(o.run.actor.as_deref(), Some("deployer"));
                assert_eq!(o.run.url.as_deref(), Some("https://ci.example.com/1"));
            }
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(decide_deployment_status(&payload("error", "staging"), "t"), Decision::Observe(o) if o.outcome == Outcome::Failure)
        );
        assert!(
            matches!(decide_deployment_status(&payload("success", "staging"), "t"), Decision::Observe(o) if o.outcome == Outcome::Success)
        );
        assert!(matches!(decide_deployment_status(&payload("in_progress", "staging"), "t"), Decision::Nothing(_)));
        assert!(matches!(decide_deployment_status(&json!({}), "t"), Decision::Nothing(_)));
    }

    #[test]
    fn attempts_order_runs_and_commit_authors_become_logins() {
        let mut p = workflow_run("completed", "completed", Some("failure"), "main");
        p["workflow_run"]["run_attempt"] = json!(3);
        p["workflow_run"]["head_commit"] =
            json!({"author": {"name": "Mona", "email": "12345+mona@users.noreply.github.com"}});
        let run = workflow_run_record(&p).unwrap();
        let Decision::Observe(o) = decide_workflow_run("completed", &run, &p, &branches(), "t") else { panic!() };
        assert_eq!(o.run.order, Order::new(163, 3));
        assert_eq!(o.run.commit_author.as_deref(), Some("mona"));
        assert_eq!(author_login(&json!({"username": "octo"})).as_deref(), Some("octo"));
        assert_eq!(author_login(&json!({"email": "someone@example.com"})), None);
    }

    #[test]
    fn branch_patterns() {
        assert!(branch_matches(&branches(), "main"));
        assert!(branch_matches(&branches(), "release/1.0"));
        assert!(!branch_matches(&branches(), "mainline"));
        assert!(!branch_matches(&branches(), ""));
    }
}
