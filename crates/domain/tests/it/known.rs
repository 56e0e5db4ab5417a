//! Known issues and the one safe retry: the verdict as a table, the issue forms people type, and
//! what a card says at its top.

use valine_domain::fingerprint::Flake;
use valine_domain::known::*;

fn known(issue: Option<&str>, note: Option<&str>, transient: bool) -> KnownIssue {
    KnownIssue {
        signature: "s0a1b2c3d4e".into(),
        issue: issue.map(str::to_string),
        note: note.map(str::to_string),
        transient,
        by: 1,
        at: 1_000,
    }
}

#[test]
fn the_retry_verdict() {
    let never: Vec<String> = RETRY_NEVER_DEFAULT.iter().map(|s| s.to_string()).collect();
    let transient = known(None, None, true);
    let linked = known(Some("#42"), None, false);
    let base = RetryCase {
        route_allows: true,
        workflow: "CI",
        workflow_file: ".github/workflows/ci.yml",
        never: &never,
        attempt: 1,
        muted: false,
        signature: Some("s0a1b2c3d4e"),
        known: Some(&transient),
        flakes: 0,
    };
    type Case<'a> = (&'a str, RetryCase<'a>, Option<&'a str>);
    let cases: Vec<Case> = vec![
        ("a transient signature", base, None),
        ("flaked twice", RetryCase { known: None, flakes: 2, ..base }, None),
        ("linked, flaked twice", RetryCase { known: Some(&linked), flakes: 3, ..base }, None),
        ("flaked once", RetryCase { known: None, flakes: 1, ..base }, Some("neither transient")),
        ("linked only", RetryCase { known: Some(&linked), ..base }, Some("neither transient")),
        ("no route allows it", RetryCase { route_allows: false, ..base }, Some("no route")),
        ("attempt 2", RetryCase { attempt: 2, ..base }, Some("already re-run")),
        ("a deploy workflow", RetryCase { workflow: "Deploy to prod", ..base }, Some("AUTO_RETRY_NEVER")),
        (
            "a release file",
            RetryCase { workflow: "Ship", workflow_file: ".github/workflows/release.yml", ..base },
            Some("AUTO_RETRY_NEVER"),
        ),
        ("publish, any case", RetryCase { workflow: "PUBLISH-crates", ..base }, Some("AUTO_RETRY_NEVER")),
        ("muted", RetryCase { muted: true, ..base }, Some("muted")),
        ("no signature", RetryCase { signature: None, ..base }, Some("no signature")),
        ("an empty never list", RetryCase { never: &[], workflow: "deploy", ..base }, None),
    ];
    for (name, case, refusal) in cases {
        let got = retry_verdict(&case);
        match refusal {
            None => assert_eq!(got, RetryVerdict::Retry, "{name}"),
            Some(why) => {
                let RetryVerdict::Not(reason) = got else { panic!("{name}: retried") };
                assert!(reason.contains(why), "{name}: {reason}");
            }
        }
    }
}

#[test]
fn flakes_count_for_their_signature_in_the_window() {
    let now = 100 * 86_400;
    let flake = |sig: Option<&str>, days_ago: u64| Flake {
        signature: sig.map(str::to_string),
        at: now - days_ago * 86_400,
        repository: "acme/widget".into(),
        workflow: "CI".into(),
        job: None,
        branch: "main".into(),
        run_id: days_ago,
        run_number: days_ago,
        attempt: 2,
    };
    let all =
        [flake(Some("sA"), 1), flake(Some("sA"), 13), flake(Some("sA"), 15), flake(Some("sB"), 1), flake(None, 1)];
    assert_eq!(recent_flakes(&all, "sA", now), 2);
    assert_eq!(recent_flakes(&all, "sB", now), 1);
    assert_eq!(recent_flakes(&all, "sC", now), 0);
}

#[test]
fn issues_as_people_type_them() {
    for (typed, want) in [
        ("#42", Ok("#42")),
        ("42", Ok("#42")),
        (" #007 ", Ok("#7")),
        ("https://github.com/acme/widget/issues/42", Ok("https://github.com/acme/widget/issues/42")),
        ("https://github.com/acme/widget/pull/9/", Ok("https://github.com/acme/widget/pull/9")),
        ("https://evil.example/acme/widget/issues/42", Err("not an issue")),
        ("https://github.com/acme/widget/issues/42?x=1", Err("not an issue")),
        ("javascript:alert(1)", Err("not an issue")),
        ("#", Err("not an issue")),
        ("", Err("not an issue")),
    ] {
        match (parse_issue(typed), want) {
            (Ok(got), Ok(w)) => assert_eq!(got, w, "{typed}"),
            (Err(got), Err(w)) => assert!(got.contains(w), "{typed}: {got}"),
            (got, w) => panic!("{typed}: {got:?} != {w:?}"),
        }
    }
}

#[test]
fn notes_are_one_line_without_pings_or_links() {
    assert_eq!(clean_note("  flaky DNS\nin   integration tests "), Some("flaky DNS in integration tests".into()));
    let note = clean_note("@everyone [click](https://evil.example)").unwrap();
    assert!(!note.contains("@everyone") && !note.contains("[click]"), "{note}");
    assert_eq!(clean_note(&"x".repeat(500)).map(|n| n.chars().count()), Some(MAX_NOTE));
    assert_eq!(clean_note(" \n "), None);
}

#[test]
fn what_a_card_says_at_its_top_and_who_it_pings() {
    let cases = [
        (
            known(Some("#42"), Some("flaky DNS in integration tests"), false),
            "known: #42 — flaky DNS in integration tests",
            true,
        ),
        (known(Some("#42"), None, true), "known: #42 (transient)", true),
        (known(None, None, true), "known: transient", false),
    ];
    for (k, header, silences) in cases {
        assert_eq!(k.header(), header);
        assert_eq!(k.silences(), silences, "{header}");
    }
}

#[test]
fn a_link_and_a_transient_mark_merge() {
    let linked = known(Some("#42"), Some("dns"), false);
    let marked = KnownIssue { by: 2, at: 2_000, ..known(None, None, true) };
    let merged = linked.clone().merged(marked.clone());
    assert_eq!(merged, KnownIssue { transient: true, by: 2, at: 2_000, ..linked.clone() });
    // a newer link replaces the issue and note, and keeps the mark
    let relinked = merged.merged(known(Some("#43"), None, false));
    assert_eq!((relinked.issue.as_deref(), relinked.note.as_deref(), relinked.transient), (Some("#43"), None, true));
}
