//! Schedules as GitHub runs them: cron parsing, the next tick, the five-minute minimum, and which
//! runs were missed. All in UTC; no daylight saving.

use valine_domain::clock::parse_rfc3339_secs;
use valine_domain::schedule::*;

fn at(s: &str) -> u64 {
    parse_rfc3339_secs(s).unwrap()
}

fn next(cron: &str, after: &str) -> String {
    let t = Cron::parse(cron).unwrap().next_after(at(after)).unwrap();
    valine_domain::clock::rfc3339_millis(t * 1000)
}

#[test]
fn the_next_tick() {
    let cases = [
        ("17 3 * * *", "2026-12-03T03:16:59Z", "2026-12-03T03:17:00.000Z"),
        ("17 3 * * *", "2026-12-03T03:17:00Z", "2026-12-04T03:17:00.000Z"),
        ("*/15 * * * *", "2026-12-03T10:07:00Z", "2026-12-03T10:15:00.000Z"),
        ("0-30/10 9 * * *", "2026-12-03T09:21:00Z", "2026-12-03T09:30:00.000Z"),
        ("5/20 * * * *", "2026-12-03T09:46:00Z", "2026-12-03T10:05:00.000Z"),
        ("0 9,17 * * *", "2026-12-03T10:00:00Z", "2026-12-03T17:00:00.000Z"),
        // 2026-12-03 is a Thursday
        ("0 6 * * MON-FRI", "2026-12-04T07:00:00Z", "2026-12-07T06:00:00.000Z"),
        ("0 6 * * sat,sun", "2026-12-03T07:00:00Z", "2026-12-05T06:00:00.000Z"),
        ("0 6 * * 7", "2026-12-03T07:00:00Z", "2026-12-06T06:00:00.000Z"),
        ("0 6 * * 5-7", "2026-12-05T07:00:00Z", "2026-12-06T06:00:00.000Z"),
        ("0 0 1 JAN,jul *", "2026-12-03T00:00:00Z", "2027-01-01T00:00:00.000Z"),
        // both day fields restricted: either day runs
        ("0 0 15 * MON", "2026-12-03T00:00:00Z", "2026-12-07T00:00:00.000Z"),
        ("0 0 29 2 *", "2026-12-03T00:00:00Z", "2028-02-29T00:00:00.000Z"),
        ("59 23 31 12 *", "2026-12-31T23:58:30Z", "2026-12-31T23:59:00.000Z"),
    ];
    for (cron, after, want) in cases {
        assert_eq!(next(cron, after), want, "{cron} after {after}");
    }
    assert_eq!(Cron::parse("0 0 31 2 *").unwrap().next_after(at("2026-12-03T00:00:00Z")), None, "never runs");
}

#[test]
fn crons_that_are_not() {
    for (cron, says) in [
        ("* * * *", "4 fields"),
        ("60 * * * *", "minute: 60 is outside 0-59"),
        ("* 24 * * *", "hour: 24"),
        ("* * 0 * *", "day of month: 0"),
        ("* * * 13 *", "month: 13"),
        ("* * * * 8", "day of week: 8"),
        ("*/0 * * * *", "a step of 0"),
        ("30-10 * * * *", "runs backwards"),
        ("1,,2 * * * *", "empty list item"),
        ("@daily * * * *", "not a number"),
        ("0 0 * FOO *", "not a number"),
    ] {
        let err = Cron::parse(cron).unwrap_err();
        assert!(err.contains(says), "{cron}: {err}");
    }
    assert_eq!(Cron::parse("  17  3 * *   *  ").unwrap().to_string(), "17 3 * * *");
}

#[test]
fn github_runs_a_schedule_at_most_every_five_minutes() {
    let every_minute = Cron::parse("* * * * *").unwrap();
    let from = at("2026-12-03T10:00:00Z");
    let ticks = every_minute.ticks(from, from + 3600, 100);
    assert_eq!(ticks.len(), 12, "{ticks:?}");
    assert!(ticks.windows(2).all(|w| w[1] - w[0] == MIN_INTERVAL_SECS));
    let quarter = Cron::parse("*/15 * * * *").unwrap().ticks(from, from + 3600, 100);
    assert_eq!(quarter.len(), 4);
    assert_eq!(Cron::parse("* * * * *").unwrap().ticks(from, from + 86_400, 7).len(), 7, "capped");
}

#[test]
fn which_scheduled_runs_were_missed() {
    let nightly = [Cron::parse("17 3 * * *").unwrap()];
    let last = at("2026-11-30T03:17:40Z");
    type Case = (&'static str, Option<(usize, &'static str, &'static str)>);
    let cases: [Case; 5] = [
        // one tick past: not yet
        ("2026-12-01T12:00:00Z", None),
        // the second tick, still within its grace
        ("2026-12-02T03:31:00Z", None),
        // the second tick and its grace: missed twice
        ("2026-12-02T03:32:00Z", Some((2, "2026-12-01T03:17:00.000Z", "2026-12-02T03:17:00.000Z"))),
        ("2026-12-03T12:00:00Z", Some((3, "2026-12-01T03:17:00.000Z", "2026-12-03T03:17:00.000Z"))),
        // the run just now was the last one: nothing since
        ("2026-11-30T04:00:00Z", None),
    ];
    for (now, want) in cases {
        let got = missed(&nightly, last, at(now));
        let shown = got.map(|m| {
            let f = |t: u64| valine_domain::clock::rfc3339_millis(t * 1000);
            (m.count, f(m.first), f(m.last))
        });
        let want = want.map(|(n, a, b)| (n, a.to_string(), b.to_string()));
        assert_eq!(shown, want, "at {now}");
    }
    // two schedules of one workflow: their ticks merge, and still count once per five minutes
    let two = [Cron::parse("0 * * * *").unwrap(), Cron::parse("2 * * * *").unwrap()];
    let m = missed(&two, at("2026-12-03T00:30:00Z"), at("2026-12-03T03:30:00Z")).unwrap();
    assert_eq!(m.count, 3, "01:00, 02:00 and 03:00 (their :02 twins are within five minutes): {m:?}");
    assert_eq!(missed(&[], 0, at("2026-12-03T03:30:00Z")), None);
}

#[test]
fn a_workflow_files_schedules_and_dispatch() {
    let nightly = "name: Nightly\n\
on:\n  schedule:\n    # every night\n    - cron: '17 3 * * *'\n    - cron: \"0 12 * * MON\"  # and Monday noon\n  workflow_dispatch:\n    inputs:\n      cron:\n        description: not a schedule\n\
jobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo 'cron: 1 2 3 4 5'\n";
    assert_eq!(triggers(nightly), Triggers { crons: vec!["17 3 * * *".into(), "0 12 * * MON".into()], dispatch: true });
    let ci = "on:\n  push:\n    branches: [main]\n  pull_request:\njobs: {}\n";
    assert_eq!(triggers(ci), Triggers::default());
    assert_eq!(triggers("on: [push, workflow_dispatch]\n"), Triggers { crons: vec![], dispatch: true });
    assert_eq!(triggers("\"on\": workflow_dispatch\n"), Triggers { crons: vec![], dispatch: true });
    let only_schedule = "'on':\n    schedule:\n        -   cron:   '*/15 * * * *'\njobs:\n";
    assert_eq!(triggers(only_schedule), Triggers { crons: vec!["*/15 * * * *".into()], dispatch: false });
    assert_eq!(triggers(""), Triggers::default());
}
