//! Deploy locks: what may be typed, and what a refused deploy is told.

use valine_domain::lock::*;

#[test]
fn durations_as_typed() {
    for (typed, want) in [
        ("30m", Ok(1800)),
        ("2h", Ok(7200)),
        ("1d", Ok(86_400)),
        ("1h30m", Ok(5400)),
        ("45", Ok(2700)),
        (" 1W ", Ok(604_800)),
    ] {
        assert_eq!(parse_duration(typed), want.map_err(|_: ()| String::new()), "{typed}");
    }
    for (typed, says) in [
        ("", "not a duration"),
        ("soon", "not a duration"),
        ("2x", "not a duration"),
        ("h", "not a duration"),
        ("0", "1 minute to 30 days"),
        ("31d", "30 days"),
        ("10s", "not a duration"),
    ] {
        let err = parse_duration(typed).unwrap_err();
        assert!(err.contains(says), "{typed}: {err}");
    }
}

#[test]
fn environments_as_typed() {
    assert_eq!(parse_environment(" production ").unwrap(), "production");
    assert_eq!(parse_environment("eu-west.staging_2").unwrap(), "eu-west.staging_2");
    for bad in ["", "prod env", "$(id)", "${{ github.token }}", &"x".repeat(65)] {
        assert!(parse_environment(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_lock_holds_until_it_ends_and_says_who_why_and_how_long() {
    let lock = Lock {
        environment: "production".into(),
        by: 42,
        reason: "release freeze **now**".into(),
        at: 1_000,
        until: Some(1_000 + 4800),
    };
    assert!(lock.holds(1_000) && lock.holds(5_799) && !lock.holds(5_800));
    let told = lock.refusal(1_000);
    assert!(told.starts_with("`production` is locked by <@42> for 1h 20m more"), "{told}");
    assert!(told.ends_with("release freeze \\*\\*now\\*\\*"), "{told}");
    let open_ended = Lock { until: None, ..lock };
    assert!(open_ended.holds(u64::MAX - 1));
    assert!(open_ended.refusal(0).contains("until someone runs /unlock"));
}
