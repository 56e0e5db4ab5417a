//! The incident model's table tests, through the module's public face.

mod decisions {
    use crate::custom_id::CustomId;
    use crate::incident::*;
    use serde_json::json;

    fn key() -> IncidentKey {
        IncidentKey::workflow(9, "acme/widget", "CI", "main")
    }

    fn obs(outcome: Outcome, number: u64, attempt: u64) -> Observation {
        Observation {
            workflow_file: Default::default(),
            key: key(),
            outcome,
            run: RunRef {
                retried: false,
                order: Order::new(number, attempt),
                run_id: 1000 + number,
                run_number: number,
                attempt,
                conclusion: match outcome {
                    Outcome::Failure => "failure",
                    Outcome::Success => "success",
                    Outcome::Neutral => "cancelled",
                }
                .into(),
                url: Some(format!("https://github.com/acme/widget/actions/runs/{}", 1000 + number)),
                commit: Some("3f1c9a7e0d2b4c6a8e9f0a1b2c3d4e5f60718293".into()),
                actor: Some("octocat".into()),
                commit_author: Some("Hubot".into()),
                completed_at: 1_000,
                trace_id: format!("t-{number}"),
                detail: None,
            },
        }
    }

    /// Applies observations in order, posting a message when told to.
    fn run(steps: &[(Outcome, u64, u64)], policy: Policy) -> (Option<Incident>, Vec<Action>) {
        let mut state: Option<Incident> = None;
        let mut actions = Vec::new();
        for (i, (outcome, n, a)) in steps.iter().enumerate() {
            let now = 10_000 + i as u64 * 60;
            let d = decide(state.as_ref(), &obs(*outcome, *n, *a), now, policy);
            if let Some(mut next) = d.next {
                if d.action == Action::Post {
                    next.message = Some(MessageRef { channel_id: 9, message_id: 77, posted_at: now, guild_id: None });
                }
                state = Some(next);
            }
            actions.push(d.action);
        }
        (state, actions)
    }

    use Outcome::{Failure as F, Neutral as N, Success as S};

    #[test]
    fn decision_table() {
        let p = Policy::default();
        type Case = (&'static str, Vec<(Outcome, u64, u64)>, Vec<&'static str>, bool);
        let cases: Vec<Case> = vec![
            ("first failure posts", vec![(F, 1, 1)], vec!["post"], true),
            ("failures edit", vec![(F, 1, 1), (F, 2, 1), (F, 3, 1)], vec!["post", "edit", "edit"], true),
            ("newer success resolves", vec![(F, 11, 1), (S, 12, 1)], vec!["post", "resolve"], false),
            ("older success changes nothing", vec![(F, 11, 1), (S, 10, 1)], vec!["post", "nothing"], true),
            ("equal order changes nothing", vec![(F, 11, 1), (S, 11, 1)], vec!["post", "nothing"], true),
            ("a re-run attempt is newer", vec![(F, 11, 1), (S, 11, 2)], vec!["post", "resolve"], false),
            ("duplicate failure", vec![(F, 11, 1), (F, 11, 1)], vec!["post", "nothing"], true),
            ("cancelled opens nothing", vec![(N, 1, 1)], vec!["nothing"], false),
            ("skipped/cancelled resolve nothing", vec![(F, 1, 1), (N, 2, 1)], vec!["post", "nothing"], true),
            ("success without incident is recorded", vec![(S, 5, 1)], vec!["record"], false),
            (
                "older failure after a success opens nothing",
                vec![(S, 11, 1), (F, 10, 1)],
                vec!["record", "nothing"],
                false,
            ),
            (
                "new streak after resolve posts again",
                vec![(F, 1, 1), (S, 2, 1), (F, 3, 1)],
                vec!["post", "resolve", "post"],
                true,
            ),
            (
                "replay after resolve changes nothing",
                vec![(F, 1, 1), (S, 2, 1), (F, 1, 1)],
                vec!["post", "resolve", "nothing"],
                false,
            ),
        ];
        for (name, steps, expected, open) in cases {
            let (state, actions) = run(&steps, p);
            let got: Vec<&str> = actions
                .iter()
                .map(|a| match a {
                    Action::Nothing(_) => "nothing",
                    Action::Record => "record",
                    Action::Post => "post",
                    Action::Edit => "edit",
                    Action::Resolve => "resolve",
                    Action::Muted => "muted",
                })
                .collect();
            assert_eq!(got, expected, "{name}");
            assert_eq!(state.as_ref().is_some_and(|s| s.open), open, "{name}");
        }
    }

    /// Every message an incident shows, built from the longest names GitHub allows and from odd
    /// values (no branch, no commit, a `target_url` that is not a URL, a huge log tail), keeps to
    /// Discord's rules: Discord would refuse the post otherwise and the alert would be lost.
    #[test]
    fn every_message_keeps_to_discords_rules_with_the_longest_and_oddest_values() {
        use crate::message::violations;
        let long_name = "ワークフロー".repeat(50);
        let repo = format!("{}/{}", "o".repeat(39), "r".repeat(100));
        let keys = [
            IncidentKey::workflow(9, &repo, &long_name, &"b".repeat(255)),
            IncidentKey::workflow(9, "a/b", "", ""),
            IncidentKey::deployment(9, &repo, &long_name),
        ];
        let detail = FailureDetail {
            known: None,
            job: Some("j".repeat(300)),
            step: Some("s".repeat(300)),
            job_url: Some("javascript:alert(1)".into()),
            log_tail: Some("```\n".repeat(400) + &"x".repeat(20_000)),
            signature: Some("s0123456789".into()),
            seen: Some(crate::fingerprint::Seen {
                count: u64::MAX,
                days: 14,
                last_branch: "`@everyone".repeat(26),
                last_run_number: u64::MAX,
                fixed_by: Some(u64::MAX),
            }),
        };
        type Odd<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a str>, Option<FailureDetail>);
        let odd: [Odd; 3] = [
            (Some("not a url"), Some(""), Some(""), None),
            (None, None, None, Some(FailureDetail::default())),
            (
                Some(&*format!("https://github.com/{}", "p".repeat(3000))),
                Some(&*"f".repeat(40)),
                Some(&*"a".repeat(39)),
                Some(detail),
            ),
        ];
        let check = |what: &str, m: crate::message::Message| {
            let v = violations(&m.to_json());
            assert!(v.is_empty(), "{what}: {v:?}");
        };
        for key in &keys {
            for (url, commit, actor, detail) in &odd {
                let at = |outcome, n| {
                    let mut o = obs(outcome, n, 1);
                    o.key = key.clone();
                    o.run.url = url.map(str::to_string);
                    o.run.commit = commit.map(str::to_string);
                    o.run.actor = actor.map(str::to_string);
                    o.run.commit_author = actor.map(str::to_string);
                    o.run.detail = detail.clone();
                    o
                };
                let policy = Policy::default();
                let mut open = decide(None, &at(F, 1), 10_000, policy).next.unwrap();
                open.message = Some(MessageRef { channel_id: 9, message_id: 77, posted_at: 10_000, guild_id: Some(1) });
                check("first failure", render(&open, 10_060));
                let again = decide(Some(&open), &at(F, 2), 10_120, policy).next.unwrap();
                check("later failure", render(&again, 10_180));
                check("escalation", escalation_reply(&again, Some(4242), 99_999));
                let resolved = decide(Some(&again), &at(S, 3), 10_240, policy).next.unwrap();
                check("resolved", render(&resolved, 10_300));
                check("resolved reply", resolved_reply(&resolved));
            }
        }
    }

    #[test]
    fn a_new_streak_leaves_the_old_card_owing_the_old_streaks_last_state() {
        // Streak 1 posted and resolved; its resolved edit is not shown yet when a new failure
        // opens streak 2 (another writer's send still in flight).
        let (state, _) = run(&[(F, 1, 1), (S, 2, 1)], Policy::default());
        let mut resolved = state.unwrap();
        resolved.display.change(10_100);
        let d = decide(Some(&resolved), &obs(F, 3, 1), 10_200, Policy::default());
        let next = d.next.unwrap();
        assert_eq!((d.action, next.streak, next.message), (Action::Post, 2, None));
        let prior = &next.display.prior;
        assert_eq!(prior.len(), 1, "the old card still owes its resolved state");
        let body: serde_json::Value = serde_json::from_str(&prior[0].body).unwrap();
        let title = body["embeds"][0]["title"].as_str().unwrap();
        let footer = body["embeds"][0]["footer"]["text"].as_str().unwrap();
        assert!(title.starts_with("✅ Resolved"), "the old card ends resolved: {title}");
        assert_eq!(footer, format!("incident {}-1", next.id), "and stays the old streak's card");
        assert_eq!(prior[0].message.map(|m| m.message_id), Some(77), "edited, not posted again");
    }

    #[test]
    fn the_fix_is_named_when_the_last_sighting_was_this_incidents_fixed_failure() {
        use crate::fingerprint::Seen;
        let mut incident = Incident::new(&IncidentKey::workflow(9, "acme/widget", "CI", "main"));
        let streak = |last: u64, fix: Option<u64>| Streak {
            streak: last,
            opened_at: 1,
            first_failure_completed_at: 1,
            message_posted_at: None,
            resolved_at: 2,
            failures: 1,
            last_failure_run: Some(last),
            fixed_by_run: fix,
            acked_at: None,
        };
        incident.history = vec![streak(3, Some(4)), streak(7, None)];
        let seen = |branch: &str, run: u64| Seen {
            count: 2,
            days: 14,
            last_branch: branch.into(),
            last_run_number: run,
            fixed_by: None,
        };
        // (last seen on, its run: the fix named)
        let cases = [(("main", 3), Some(4)), (("main", 7), None), (("main", 5), None), (("release/1", 3), None)];
        for ((branch, run), want) in cases {
            let mut s = seen(branch, run);
            incident.name_fix(&mut s);
            assert_eq!(s.fixed_by, want, "{branch} #{run}");
        }
    }

    #[test]
    fn a_failure_that_passes_on_a_rerun_of_its_run_is_resolved_as_flaky() {
        // (history, what the resolve reply says of flakiness)
        type Case<'a> = (&'a [(Outcome, u64, u64)], Option<&'a str>);
        let cases: [Case; 4] = [
            (&[(F, 5, 1), (S, 5, 2)], Some("flaky: passed on attempt 2.")),
            (&[(F, 5, 1), (F, 5, 2), (S, 5, 3)], Some("flaky: passed on attempt 3.")),
            // another run passing is a fix, not a flake
            (&[(F, 5, 1), (S, 6, 1)], None),
            (&[(F, 5, 1), (S, 6, 2)], None),
        ];
        for (steps, want) in cases {
            let (state, _) = run(steps, Policy::default());
            let reply = resolved_reply(&state.unwrap()).to_json();
            let text = reply["content"].as_str().unwrap().to_string();
            match want {
                Some(w) => assert!(text.ends_with(w), "{steps:?}: {text}"),
                None => assert!(!text.contains("flaky"), "{steps:?}: {text}"),
            }
        }
    }

    #[test]
    fn failures_are_counted_and_the_latest_is_kept() {
        let (state, _) = run(&[(F, 1, 1), (F, 3, 1), (F, 2, 1)], Policy::default());
        let s = state.unwrap();
        assert_eq!(s.failures, 2, "run 2 arrived after run 3: older, ignored");
        assert_eq!(s.latest_failure.unwrap().run_number, 3);
        assert_eq!(s.first_failure.unwrap().run_number, 1);
        assert_eq!(s.version, 2);
    }

    #[test]
    fn flapping_is_shown_without_resolves_or_posts() {
        let p = Policy { flap_count: 2, flap_minutes: 60 };
        let steps = [(F, 1, 1), (S, 2, 1), (F, 3, 1), (S, 4, 1), (F, 5, 1), (S, 6, 1), (F, 7, 1), (S, 8, 1)];
        let (state, actions) = run(&steps, p);
        // 1 post, 1 resolve, 1 post (new streak) … then flapping: edits only
        // flips: S2, F3, S4 (3 > 2: flapping) … then edits only
        assert_eq!(&actions[..3], &[Action::Post, Action::Resolve, Action::Post], "{actions:?}");
        assert!(actions[3..].iter().all(|a| *a == Action::Edit), "{actions:?}");
        let s = state.unwrap();
        assert!(s.flapping && s.open && s.latest_passing);
        assert!(render(&s, 20_000).to_json().to_string().contains("Flapping"));
        // once the flips leave the window, the tick resolves it
        assert!(calm(&s, 10_500, p).is_none());
        let d = calm(&s, 10_000 + 3 * 3600, p).unwrap();
        assert_eq!(d.action, Action::Resolve);
        assert!(!d.next.unwrap().open);
    }

    #[test]
    fn muted_failures_post_nothing_and_still_resolve() {
        let (state, _) = run(&[(F, 1, 1)], Policy::default());
        let mut s = state.unwrap();
        s.mute = Some(Mute { by: 5, at: 10_000, until: None });
        let d = decide(Some(&s), &obs(F, 2, 1), 10_100, Policy::default());
        assert_eq!(d.action, Action::Muted);
        let d = decide(d.next.as_ref(), &obs(S, 3, 1), 10_200, Policy::default());
        assert_eq!(d.action, Action::Resolve);
        assert!(d.next.as_ref().unwrap().mute.is_none(), "until fixed ends at the fix");
        // a timed mute that ran out no longer mutes
        s.mute = Some(Mute { by: 5, at: 10_000, until: Some(10_050) });
        assert_eq!(decide(Some(&s), &obs(F, 2, 1), 10_100, Policy::default()).action, Action::Edit);
        // a new streak while muted posts nothing, and is still tracked
        let mut fresh = Incident::new(&key());
        fresh.mute = Some(Mute { by: 5, at: 10_000, until: Some(99_999) });
        let d = decide(Some(&fresh), &obs(F, 1, 1), 10_100, Policy::default());
        assert_eq!(d.action, Action::Muted);
        assert!(d.next.unwrap().open);
    }

    #[test]
    fn keys_ids_and_custom_ids() {
        let a = key();
        assert_eq!(a.id(), key().id());
        assert_eq!(a.id().len(), 12);
        assert_ne!(a.id(), IncidentKey::workflow(10, "acme/widget", "CI", "main").id(), "per channel");
        assert_ne!(a.id(), IncidentKey::deployment(9, "acme/widget", "main").id());
        let (state, _) = run(&[(F, 1, 1)], Policy::default());
        let s = state.unwrap();
        let m = render(&s, 10_000).to_json();
        let ids: Vec<&str> = m["components"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|row| row["components"].as_array().unwrap())
            .map(|b| b["custom_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids.len(), 6, "{m}");
        for id in ids {
            let parsed = CustomId::parse(id).unwrap();
            assert_eq!(parsed.id(), s.streak_id(), "{id}");
        }
    }

    #[test]
    fn message_mentions_exactly_the_culprits() {
        let (state, _) = run(&[(F, 1, 1)], Policy::default());
        let mut s = state.unwrap();
        let users = vec![("octocat".to_string(), 111), ("hubot".to_string(), 222), ("other".to_string(), 333)];
        s.mentioned = culprits(s.first_failure.as_ref().unwrap(), &users);
        assert_eq!(s.mentioned, vec![111, 222]);
        let m = render(&s, 10_000).to_json();
        assert_eq!(m["content"], "<@111> <@222>");
        assert_eq!(m["allowed_mentions"], json!({"parse": [], "users": ["111", "222"]}));
        let text = m.to_string();
        for needle in
            ["acme/widget", "CI", "main", "3f1c9a7", "octocat", "failure", "runs/1001", "t-1", "Re-run failed jobs"]
        {
            assert!(text.contains(needle), "{needle} missing");
        }
        s.mentioned.clear();
        assert_eq!(render(&s, 10_000).to_json()["allowed_mentions"], json!({"parse": []}));
    }

    /// Every string a message shows: content, titles, field names and values, footers.
    fn shown(m: &serde_json::Value) -> Vec<String> {
        let mut out = vec![m["content"].as_str().unwrap_or_default().to_string()];
        for e in m["embeds"].as_array().into_iter().flatten() {
            out.push(e["title"].as_str().unwrap_or_default().to_string());
            out.push(e["footer"]["text"].as_str().unwrap_or_default().to_string());
            for f in e["fields"].as_array().into_iter().flatten() {
                out.push(f["name"].as_str().unwrap_or_default().to_string());
                out.push(f["value"].as_str().unwrap_or_default().to_string());
            }
        }
        out
    }

    /// Names GitHub sends are text: a workflow named like a masked link renders no link, a branch
    /// named `@everyone` pings nobody and reads as no mention, markdown in a job, step or actor
    /// stays literal, and a backtick in a commit id cannot close the code span around it.
    #[test]
    fn github_names_render_as_text_not_markdown() {
        let mut o = obs(F, 1, 1);
        o.key = IncidentKey::workflow(9, "acme/widget", "[click](https://evil.example)", "@everyone");
        o.run.actor = Some("**bold** <@123> <@&456> <#789> @here".into());
        o.run.commit = Some("a`b[x](https://evil.example)`".into());
        o.run.detail = Some(FailureDetail {
            known: None,
            job: Some("# heading".into()),
            step: Some("[step](https://evil.example) ||spoiler|| ~~x~~ __u__".into()),
            job_url: Some("https://github.com/acme/widget/actions/runs/1/job/2".into()),
            log_tail: None,
            signature: Some("s0123456789".into()),
            seen: Some(crate::fingerprint::Seen {
                count: 2,
                days: 14,
                last_branch: "[x](https://evil.example) @everyone".into(),
                last_run_number: 4,
                fixed_by: None,
            }),
        });
        let policy = Policy::default();
        let mut open = decide(None, &o, 10_000, policy).next.unwrap();
        open.message = Some(MessageRef { channel_id: 9, message_id: 77, posted_at: 10_000, guild_id: None });
        let mut later = o.clone();
        later.outcome = S;
        later.run.order = Order::new(2, 1);
        let resolved = decide(Some(&open), &later, 10_120, policy).next.unwrap();
        let messages = [
            render(&open, 10_060).to_json(),
            render(&resolved, 10_200).to_json(),
            resolved_reply(&resolved).to_json(),
            escalation_reply(&open, None, 99_999).to_json(),
        ];
        for m in &messages {
            assert_eq!(m["allowed_mentions"], json!({"parse": []}), "{m}");
            for text in shown(m) {
                for bad in ["[click](", "[step](", "@everyone", "@here", "<@123>", "<@&456>", "<#789>", "**bold**"] {
                    assert!(!text.contains(bad), "{bad:?} shows in {text:?}");
                }
                assert!(
                    !text.contains("||spoiler||") && !text.contains("~~x~~") && !text.contains("__u__"),
                    "{text:?}"
                );
                assert!(!text.starts_with("# "), "{text:?}");
            }
        }
        let first = &messages[0]["embeds"][0];
        assert!(first["title"].as_str().unwrap().contains("click"), "the name is still shown: {first}");
        let field = |name: &str| {
            first["fields"].as_array().unwrap().iter().find(|f| f["name"] == name).unwrap()["value"].as_str().unwrap()
        };
        assert_eq!(field("Commit").matches('`').count(), 2, "only the code span's own backticks");
        assert!(field("Failing job").starts_with("[\\# heading"), "{}", field("Failing job"));
        assert!(field("Branch").contains("everyone") && field("Actor").contains("bold"));
    }

    #[test]
    fn log_tail_is_redacted_short_and_fenced_safely() {
        let mut log = String::new();
        for i in 0..40 {
            log.push_str(&format!("2024-01-01T00:00:{:02}.0000000Z line {i}\n", i % 60));
        }
        log.push_str("2024-01-01T00:01:00.0000000Z token=ghp_abcdefghijklmnopqrstuvwxyz0123456789\n```\n");
        let tail = log_tail(&log);
        assert!(!tail.contains("ghp_abcdefghijklmnopqrstuvwxyz0123456789"), "{tail}");
        assert!(!tail.contains("line 20"), "only the last 15 lines");
        assert!(tail.contains("line 39"));
        assert!(!tail.contains("```"));
        assert!(!tail.contains("2024-01-01T"));
        let long = "x".repeat(5000);
        assert!(log_tail(&long).chars().count() <= LOG_TAIL_CHARS);
    }

    #[test]
    fn escalation_once_and_only_when_unacknowledged() {
        let (state, _) = run(&[(F, 1, 1)], Policy::default());
        let mut s = state.unwrap();
        assert!(!needs_escalation(&s, s.opened_at + 29 * 60, 30));
        assert!(needs_escalation(&s, s.opened_at + 30 * 60, 30));
        s.acked = Some(Stamp { user_id: 1, at: 1 });
        assert!(!needs_escalation(&s, s.opened_at + 31 * 60, 30));
        s.acked = None;
        s.escalated_at = Some(1);
        assert!(!needs_escalation(&s, s.opened_at + 31 * 60, 30));
        let m = escalation_reply(&s, Some(42), s.opened_at + 31 * 60).to_json();
        assert_eq!(m["allowed_mentions"], json!({"parse": [], "roles": ["42"]}));
    }

    #[test]
    fn statistics_per_workflow() {
        let p = Policy::default();
        // streak 1: failure completed at 1_000, posted at 10_000, resolved at 10_060
        let (state, _) = run(&[(F, 1, 1), (S, 2, 1), (F, 3, 1)], p);
        let s = state.unwrap();
        let stats = stats(std::slice::from_ref(&s), 0);
        assert_eq!(stats.len(), 1);
        let w = &stats[0];
        assert_eq!((w.workflow.as_str(), w.incidents, w.failures), ("CI", 2, 2));
        assert_eq!(w.mttr_secs, Some(10_060 - 1_000));
        assert_eq!(w.mttd_secs, Some((10_000 - 1_000 + 10_120 - 1_000) / 2));
        assert_eq!(w.mtta_secs, None, "nobody acknowledged either streak");
        // the open streak (posted at 10_120) acknowledged at 10_300
        let mut acked = s.clone();
        acked.acked = Some(Stamp { user_id: 7, at: 10_300 });
        assert_eq!(crate::incident::stats(std::slice::from_ref(&acked), 0)[0].mtta_secs, Some(180));
        assert!(crate::incident::stats(&[s], 20_000).is_empty(), "nothing opened since");
    }
}

mod endpoint_tests {
    use crate::incident::*;

    fn check(outcome: Outcome, at: u64) -> Observation {
        Observation {
            workflow_file: Default::default(),
            key: IncidentKey::endpoint(9, "acme/widget", "api"),
            outcome,
            run: RunRef {
                order: Order::new(at, 0),
                conclusion: if outcome == Outcome::Failure { "answered 500".into() } else { "healthy".into() },
                url: Some("https://api.example.com/health".into()),
                completed_at: at,
                ..RunRef::default()
            },
        }
    }

    #[test]
    fn two_failed_checks_in_a_row_open_and_a_pass_resolves() {
        let p = Policy::default();
        assert_eq!(
            decide(None, &check(Outcome::Success, 100), 100, p).action,
            Action::Nothing("healthy, and nothing open")
        );
        let one = decide(None, &check(Outcome::Failure, 100), 100, p);
        assert_eq!(one.action, Action::Record);
        let one = one.next.unwrap();
        assert!(!one.open && one.strikes == 1);
        // a pass in between clears the strike
        let cleared = decide(Some(&one), &check(Outcome::Success, 400), 400, p).next.unwrap();
        assert_eq!((cleared.open, cleared.strikes), (false, 0));
        let again = decide(Some(&cleared), &check(Outcome::Failure, 700), 700, p).next.unwrap();
        let two = decide(Some(&again), &check(Outcome::Failure, 1000), 1000, p);
        assert_eq!(two.action, Action::Post);
        let mut open = two.next.unwrap();
        assert!(open.open && open.strikes == 0);
        let shown = render(&open, 1000).to_json().to_string();
        assert!(shown.contains("Endpoint unhealthy: api") && shown.contains("answered 500"), "{shown}");
        assert!(!shown.contains("Re-run"), "{shown}");
        assert!(shown.contains("Acknowledge"));
        open.message = Some(MessageRef { channel_id: 9, message_id: 1, posted_at: 1000, guild_id: None });
        let resolved = decide(Some(&open), &check(Outcome::Success, 1300), 1300, p);
        assert_eq!(resolved.action, Action::Resolve);
        let shown = render(resolved.next.as_ref().unwrap(), 1300).to_json().to_string();
        assert!(shown.contains("Resolved: api is healthy"), "{shown}");
        // an older check arriving late changes nothing
        assert!(decide(resolved.next.as_ref(), &check(Outcome::Failure, 1200), 1300, p).next.is_none());
    }
}
