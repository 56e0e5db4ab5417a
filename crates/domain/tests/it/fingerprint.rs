//! Failure fingerprints on log excerpts in the shapes the common tools print (cargo test, pytest,
//! jest, go test, npm, Gradle, a network timeout), as GitHub's job log holds them: a timestamp
//! before each line, the runner's group markers and its `##[error]` trailer. Each excerpt is made
//! twice with what differs between runs of one failure (temp directory, line number, duration,
//! timestamps, ids) and must give one signature; two different errors must give two.

use valine_domain::fingerprint::{error_line, normalise, signature};

/// What changes between two runs of the same failure.
struct RunVars {
    ts: &'static str,
    tmp: &'static str,
    line: u32,
    secs: &'static str,
    id: &'static str,
}

const RUN_1: RunVars =
    RunVars { ts: "2026-11-22T14:00:01.1234567Z", tmp: "/tmp/.tmpX8fk2a", line: 41, secs: "0.42", id: "3f1c9a7e0d2b" };
const RUN_2: RunVars =
    RunVars { ts: "2026-11-29T03:17:45.7654321Z", tmp: "/tmp/.tmpQ0zz91", line: 57, secs: "12.07", id: "9b0e44d1c7a3" };

/// A job log: GitHub's timestamp on each line, the step's group, the tool's output, the trailer.
fn job_log(v: &RunVars, step: &str, output: &str) -> String {
    let mut lines = vec![format!("##[group]Run {step}"), "shell: /usr/bin/bash -e {0}".into(), "##[endgroup]".into()];
    lines.extend(output.lines().map(str::to_string));
    lines.push("##[error]Process completed with exit code 1.".into());
    lines.iter().map(|l| format!("{} {l}", v.ts)).collect::<Vec<_>>().join("\n")
}

fn cargo_test(v: &RunVars, assertion: &str) -> String {
    format!(
        "   Compiling widget v0.1.0 (/home/runner/work/widget/widget)\n\
         \u{1b}[1m\u{1b}[32m    Finished\u{1b}[0m `test` profile [unoptimized + debuginfo] target(s) in {s}s\n\
         \u{20}    Running unittests src/lib.rs (target/debug/deps/widget-{id}a1b2)\n\
         running 3 tests\n\
         test parse::tests::reads_names ... ok\n\
         test parse::tests::{assertion} ... FAILED\n\
         failures:\n\
         ---- parse::tests::{assertion} stdout ----\n\
         thread 'parse::tests::{assertion}' panicked at src/parse.rs:{l}:9:\n\
         assertion `left == right` failed\n\
         test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in {s}s\n\
         error: test failed, to rerun pass `--lib`",
        s = v.secs,
        id = v.id,
        l = v.line,
    )
}

fn pytest(v: &RunVars, expected: u32) -> String {
    format!(
        "============================= test session starts ==============================\n\
         platform linux -- Python 3.11.9, pytest-8.3.2, pluggy-1.5.0\n\
         rootdir: /home/runner/work/widget/widget\n\
         collected 12 items\n\
         tests/test_store.py ...F........                                        [100%]\n\
         =================================== FAILURES ===================================\n\
         _________________________________ test_saves __________________________________\n\
         tmp_path = PosixPath('{tmp}/pytest-of-runner/pytest-0/test_saves0')\n\
         >       assert store.count() == {expected}\n\
         E       assert 3 == {expected}\n\
         tests/test_store.py:{l}: AssertionError\n\
         =========================== short test summary info ============================\n\
         FAILED tests/test_store.py::test_saves - assert 3 == {expected}\n\
         ========================= 1 failed, 11 passed in {s}s ==========================",
        tmp = v.tmp,
        l = v.line,
        s = v.secs,
    )
}

fn jest(v: &RunVars, name: &str) -> String {
    format!(
        "FAIL src/cart.test.js ({s} s)\n\
         \u{20} ● cart › {name}\n\
         \u{20}   expect(received).toBe(expected) // Object.is equality\n\
         \u{20}     at Object.<anonymous> (/home/runner/work/shop/shop/src/cart.test.js:{l}:23)\n\
         Tests:       1 failed, 14 passed, 15 total\n\
         Time:        {s} s",
        s = v.secs,
        l = v.line,
    )
}

fn go_test(v: &RunVars) -> String {
    format!(
        "=== RUN   TestResolve\n\
         --- FAIL: TestResolve ({s}s)\n\
         \u{20}   resolve_test.go:{l}: resolve(\"{tmp}/cfg.yaml\"): got 2 entries, want 3\n\
         FAIL\n\
         FAIL\tgithub.com/acme/widget/resolve\t{s}s",
        s = v.secs,
        l = v.line,
        tmp = v.tmp,
    )
}

fn npm(v: &RunVars, package: &str) -> String {
    format!(
        "npm ERR! code ERESOLVE\n\
         npm ERR! ERESOLVE unable to resolve dependency tree of {package}\n\
         npm ERR! A complete log of this run can be found in: /home/runner/.npm/_logs/{d}-debug-0.log",
        d = v.ts.replace(':', "_"),
    )
}

fn gradle(v: &RunVars) -> String {
    format!(
        "> Task :app:compileJava\n\
         /home/runner/work/shop/shop/app/src/main/java/shop/App.java:{l}: error: ';' expected\n\
         1 error\n\
         > Task :app:compileJava FAILED\n\
         FAILURE: Build failed with an exception.\n\
         * What went wrong:\n\
         Execution failed for task ':app:compileJava'.\n\
         BUILD FAILED in {s}s",
        l = v.line,
        s = v.secs.split('.').next().unwrap_or("1"),
    )
}

fn network(v: &RunVars) -> String {
    let ip = if v.line.is_multiple_of(2) { "140.82.112.3" } else { "140.82.113.4" };
    format!(
        "Downloading https://example.invalid/tool.tar.gz\n\
         curl: (28) Failed to connect to example.invalid port 443 after {ms} ms: Connection timed out\n\
         Error: connect ETIMEDOUT {ip}:443",
        ms = v.line * 1000 + 7,
    )
}

type Excerpt = (&'static str, &'static str, fn(&RunVars) -> String);

fn excerpts() -> Vec<Excerpt> {
    vec![
        ("cargo test", "cargo test --workspace", |v| cargo_test(v, "rejects_empty")),
        ("pytest", "pytest", |v| pytest(v, 4)),
        ("jest", "npm test", |v| jest(v, "adds a discount")),
        ("go test", "go test ./...", go_test),
        ("npm", "npm ci", |v| npm(v, "shop@1.0.0")),
        ("gradle", "./gradlew build", gradle),
        ("network", "./scripts/fetch-tools.sh", network),
    ]
}

#[test]
fn the_error_line_is_the_tools_own_not_the_runners_trailer() {
    let expected = [
        ("cargo test", "test parse::tests::rejects_empty ... FAILED"),
        ("pytest", "E       assert 3 == 4"),
        ("jest", "● cart › adds a discount"),
        ("go test", "--- FAIL: TestResolve (0.42s)"),
        ("npm", "npm ERR! ERESOLVE unable to resolve dependency tree of shop@1.0.0"),
        ("gradle", "/home/runner/work/shop/shop/app/src/main/java/shop/App.java:41: error: ';' expected"),
        ("network", "curl: (28) Failed to connect to example.invalid port 443 after 41007 ms: Connection timed out"),
    ];
    for ((tool, step, make), (name, line)) in excerpts().into_iter().zip(expected) {
        assert_eq!(tool, name);
        let log = job_log(&RUN_1, step, &make(&RUN_1));
        assert_eq!(error_line(&log).as_deref(), Some(line), "{tool}");
    }
}

#[test]
fn one_failure_on_two_runs_has_one_signature() {
    for (tool, step, make) in excerpts() {
        let first = signature("CI", "test", step, &job_log(&RUN_1, step, &make(&RUN_1))).expect(tool);
        let second = signature("CI", "test", step, &job_log(&RUN_2, step, &make(&RUN_2))).expect(tool);
        assert_eq!(first, second, "{tool}: the same failure at another path, line, time and duration");
        assert!(first.id.starts_with('s') && first.id.len() == 11, "{tool}: {}", first.id);
    }
}

#[test]
fn different_errors_before_the_same_trailer_have_different_signatures() {
    let pairs: [(&str, String, String); 4] = [
        ("cargo test", cargo_test(&RUN_1, "rejects_empty"), cargo_test(&RUN_1, "rejects_long")),
        ("pytest", pytest(&RUN_1, 4), pytest(&RUN_1, 5)),
        ("jest", jest(&RUN_1, "adds a discount"), jest(&RUN_1, "removes an item")),
        ("npm", npm(&RUN_1, "shop@1.0.0"), npm(&RUN_1, "admin@2.1.0")),
    ];
    for (tool, a, b) in pairs {
        let a = signature("CI", "test", "step", &job_log(&RUN_1, "step", &a)).unwrap();
        let b = signature("CI", "test", "step", &job_log(&RUN_1, "step", &b)).unwrap();
        assert_ne!(a.id, b.id, "{tool}: {} vs {}", a.line, b.line);
    }
}

#[test]
fn the_workflow_job_and_step_are_part_of_the_signature() {
    let log = job_log(&RUN_1, "pytest", &pytest(&RUN_1, 4));
    let base = signature("CI", "test", "pytest", &log).unwrap();
    for (w, j, s) in [("Nightly", "test", "pytest"), ("CI", "lint", "pytest"), ("CI", "test", "pytest -x")] {
        assert_ne!(signature(w, j, s, &log).unwrap().id, base.id, "{w}/{j}/{s}");
    }
}

#[test]
fn a_log_with_only_trailers_has_no_signature() {
    let log = job_log(&RUN_1, "make", "make: *** [Makefile:12: all] Error 2");
    assert_eq!(signature("CI", "build", "make", &log), None);
    assert_eq!(signature("CI", "build", "make", ""), None);
}

#[test]
fn normalisation_table() {
    let cases = [
        // temp paths, whole
        ("open /tmp/.tmpX8fk2a/cfg.yaml: no such file", "open <tmp>: no such file"),
        ("'/var/folders/x1/abc/T/pytest-3/x.json'", "'<tmp>"),
        ("C:\\Users\\runneradmin\\AppData\\Local\\Temp\\tmp12\\a.txt missing", "<tmp> missing"),
        // the workspace prefix goes, positions become <n>
        ("/home/runner/work/web/web/src/a.rs:10:5: error", "src/a.rs:<n>:<n>: error"),
        ("/__w/web/web/lib/x.py:7 failed", "lib/x.py:<n> failed"),
        ("at f (D:\\a\\web\\web\\src\\x.js:3:14)", "at f (src\\x.js:<n>:<n>)"),
        // ids, dates, times, addresses
        ("job 123e4567-e89b-12d3-a456-426614174000 failed", "job <uuid> failed"),
        ("container 4f9c2d1ab3e7 exited", "container <hex> exited"),
        ("at 2026-11-22T14:05:00Z and 2026/11/23", "at <date> and <date>"),
        ("took 14:05:00.123 wall", "took <time> wall"),
        ("connect ETIMEDOUT 140.82.112.3:443", "connect ETIMEDOUT <ip>"),
        // durations, with or without a space
        ("finished in 0.42s; (12ms) 1m30s", "finished in <dur>; (<dur>) <dur>"),
        ("after 10001 milliseconds", "after <dur>"),
        ("Time: 3.2 s", "Time: <dur>"),
        // line N; ANSI codes are gone before this; whitespace collapses
        ("error at line 42,   column x", "error at line <n>, column x"),
        // what must stay: counts, words, short numbers, exit codes
        ("assert 3 == 4", "assert 3 == 4"),
        ("expected 200, got 503", "expected 200, got 503"),
        ("deadbeef cafe", "deadbeef cafe"),
    ];
    for (input, want) in cases {
        assert_eq!(normalise(input), want, "{input}");
    }
    assert_eq!(normalise("x".repeat(500)).chars().count(), 200);
}

#[test]
fn colour_codes_and_timestamps_do_not_reach_the_line() {
    let log = "2026-11-22T14:00:01.1234567Z \u{1b}[31merror[E0308]\u{1b}[0m: mismatched types";
    assert_eq!(error_line(log).as_deref(), Some("error[E0308]: mismatched types"));
}

#[test]
fn seen_before_counts_other_runs_in_the_window() {
    use valine_domain::fingerprint::{Seen, Sighting, seen};
    let day = 24 * 3600;
    let now = 100 * day;
    let at = |run_id: u64, attempt: u64, ago: u64, branch: &str| Sighting {
        signature: "s0123456789".into(),
        at: now - ago,
        repository: "acme/widget".into(),
        workflow: "CI".into(),
        branch: branch.into(),
        run_id,
        run_number: run_id - 1000,
        attempt,
    };
    let this = at(1009, 1, 0, "main");
    // (the ledger's answer, what the card says)
    let cases: [(Vec<Sighting>, Option<Seen>); 5] = [
        // first sighting: nothing to say
        (vec![this.clone()], None),
        (vec![], None),
        // seen on two other runs; the newest other is named
        (
            vec![this.clone(), at(1005, 1, day, "release/1"), at(1001, 1, 3 * day, "main")],
            Some(Seen { count: 3, days: 14, last_branch: "release/1".into(), last_run_number: 5, fixed_by: None }),
        ),
        // older than 14 days: not counted
        (vec![this.clone(), at(1001, 1, 15 * day, "main")], None),
        // a re-run attempt of this run counts as another run attempt
        (
            vec![this.clone(), at(1009, 2, 60, "main")],
            Some(Seen { count: 2, days: 14, last_branch: "main".into(), last_run_number: 9, fixed_by: None }),
        ),
    ];
    for (i, (ledger, want)) in cases.into_iter().enumerate() {
        assert_eq!(seen(&ledger, &this, now), want, "case {i}");
    }
}

#[test]
fn the_flakiest_are_grouped_by_job_and_signature_in_the_window() {
    use valine_domain::fingerprint::{Flake, flakiest};
    let day = 24 * 3600;
    let now = 100 * day;
    let f = |run_id: u64, repo: &str, job: &str, signature: Option<&str>, ago: u64| Flake {
        signature: signature.map(str::to_string),
        at: now - ago,
        repository: repo.into(),
        workflow: "CI".into(),
        job: Some(job.into()),
        branch: "main".into(),
        run_id,
        run_number: run_id,
        attempt: 2,
    };
    let flakes = [
        f(1, "acme/web", "unit", Some("s1"), 5 * day),
        f(2, "acme/web", "unit", Some("s1"), day),
        f(3, "acme/web", "unit", Some("s2"), 2 * day),
        f(4, "acme/web", "e2e", None, 3 * day),
        f(5, "acme/web", "e2e", None, 20 * day),
        f(6, "acme/api", "unit", Some("s1"), day),
    ];
    let rows = |repo: Option<&str>, days: u64| -> Vec<(String, Option<String>, u64, u64)> {
        flakiest(&flakes, repo, days, now)
            .into_iter()
            .map(|r| (r.job.unwrap_or_default(), r.signature, r.count, r.last_run_number))
            .collect()
    };
    let s = |x: &str| Some(x.to_string());
    assert_eq!(
        rows(Some("ACME/web"), 14),
        vec![("unit".into(), s("s1"), 2, 2), ("unit".into(), s("s2"), 1, 3), ("e2e".into(), None, 1, 4)],
        "most flakes first, then the most recent; a repository is named in any case"
    );
    assert_eq!(rows(Some("acme/web"), 30).get(1), Some(&("e2e".into(), None, 2, 4)), "30 days take the older one in");
    assert_eq!(rows(None, 14).len(), 4, "every repository");
    assert_eq!(rows(Some("acme/none"), 14), vec![]);
}
