//! No setting can drift: every environment variable the code reads is set on the deployed
//! functions by `template.yaml` (from a parameter, or from the stack itself), comes from the
//! stack's secret, is set by the Lambda runtime, or is on the short list of local-only variables
//! (`SETTINGS` in `src/config.rs`, each with its reason). A new variable read without a parameter
//! fails here.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use valine_domain::config::{Config, SETTINGS, Source};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every variable `Config` asks for, with nothing set (so that every fallback is asked too).
fn read_by_config() -> BTreeSet<String> {
    let asked = RefCell::new(BTreeSet::new());
    let _ = Config::from_lookup(|k| {
        asked.borrow_mut().insert(k.to_string());
        None
    });
    asked.into_inner()
}

/// `NAME: value` lines of every `Variables:` block of the template, as (name, value).
fn template_environment(template: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut block: Option<usize> = None;
    for line in template.lines() {
        let indent = line.len() - line.trim_start().len();
        let text = line.trim();
        if text == "Variables:" {
            block = Some(indent);
            continue;
        }
        let Some(at) = block else { continue };
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        if indent <= at {
            block = None;
            continue;
        }
        if indent == at + 2
            && let Some((name, value)) = text.split_once(':')
        {
            out.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    out
}

fn template_parameters(template: &str) -> BTreeSet<String> {
    let section = template.split("\nParameters:\n").nth(1).unwrap_or("");
    let section = section.split("\n\n").next().unwrap_or("");
    section
        .lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   ") && l.trim_end().ends_with(':'))
        .map(|l| l.trim().trim_end_matches(':').to_string())
        .collect()
}

#[test]
fn every_variable_the_configuration_reads_has_a_deployed_source() {
    let known: BTreeSet<&str> = SETTINGS.iter().map(|(v, _)| *v).collect();
    let unknown: Vec<String> = read_by_config().into_iter().filter(|v| !known.contains(v.as_str())).collect();
    assert!(
        unknown.is_empty(),
        "the configuration reads {unknown:?}, which template.yaml does not set: add a template parameter \
         and a `Source::Parameter` entry to SETTINGS (crates/domain/src/config.rs), or, for a local-only \
         variable, a `Source::LocalOnly` entry with its reason"
    );
    let read = read_by_config();
    let stale: Vec<&str> = known.iter().copied().filter(|v| !read.contains(*v)).collect();
    assert!(stale.is_empty(), "SETTINGS names {stale:?}, which the configuration no longer reads");
}

#[test]
fn template_yaml_sets_every_deployed_setting_from_its_parameter() {
    let template = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    let env = template_environment(&template);
    let parameters = template_parameters(&template);
    assert!(parameters.contains("Stage") && parameters.contains("AlertChannelId"), "{parameters:?}");
    for (var, source) in SETTINGS {
        let set: Vec<&str> = env.iter().filter(|(n, _)| n == var).map(|(_, v)| v.as_str()).collect();
        match source {
            Source::Parameter(p) => {
                assert!(parameters.contains(*p), "template.yaml has no parameter {p} (for {var})");
                assert!(
                    set.iter().any(|v| *v == format!("!Ref {p}")),
                    "template.yaml does not set {var} to !Ref {p} (found {set:?})"
                );
            }
            Source::Stack => assert!(!set.is_empty(), "template.yaml does not set {var}"),
            Source::Secret | Source::Runtime | Source::LocalOnly => {
                assert!(set.is_empty(), "template.yaml sets {var}, which comes from {source:?}: {set:?}")
            }
        }
    }
    for (var, _) in &env {
        assert!(
            SETTINGS.iter().any(|(v, _)| v == var),
            "template.yaml sets {var}, which no setting reads: drop it or add it to SETTINGS"
        );
    }
}

/// Variables read straight from the environment outside `Config` (not by the deployed code).
const READ_ELSEWHERE: &[(&str, &str)] = &[
    // The AWS SDK's own endpoint setting, read by the fault proxy tests use.
    ("AWS_ENDPOINT_URL", "crates/store/src/fault_proxy.rs"),
    // Turns a skipped DynamoDB test into a failure in CI.
    ("VALINE_REQUIRE_DYNAMODB", "crates/store/src/fault_proxy.rs"),
];

#[test]
fn nothing_the_functions_run_reads_the_environment_behind_the_configuration() {
    let mut found = Vec::new();
    for krate in ["domain", "store", "clients", "service", "discord", "github"] {
        let mut stack = vec![root().join("crates").join(krate).join("src")];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                if path.extension().is_none_or(|e| e != "rs") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                // Code after a test module is test code.
                let code = text.split("#[cfg(test)]").next().unwrap_or("");
                for piece in code.split("env::var").skip(1) {
                    let piece = piece.trim_start_matches("_os");
                    if let Some(name) = piece.strip_prefix("(\"").and_then(|p| p.split('"').next()) {
                        let relative = path.strip_prefix(root()).unwrap_or(&path).display().to_string();
                        found.push((name.to_string(), relative.replace("crates/../", "")));
                    }
                }
            }
        }
    }
    for (name, file) in found {
        let known = SETTINGS.iter().any(|(v, _)| *v == name)
            || READ_ELSEWHERE.iter().any(|(v, f)| *v == name && file.ends_with(f.trim_start_matches("crates/")));
        assert!(known, "{file} reads {name} from the environment: read it in Config and give it a parameter");
    }
}

#[test]
fn the_runbook_says_where_each_setting_comes_from() {
    let runbook = std::fs::read_to_string(root().join("docs/RUNBOOK.md")).unwrap();
    let table =
        runbook.split("| variable | deployed as |").nth(1).expect("docs/RUNBOOK.md has the configuration table");
    let table = table.split("\n\n").next().unwrap_or("");
    for (var, source) in SETTINGS {
        let row = table
            .lines()
            .find(|l| l.split('|').nth(1).is_some_and(|cell| cell.contains(&format!("`{var}`"))))
            .unwrap_or_else(|| panic!("docs/RUNBOOK.md's configuration table has no row for {var}"));
        let deployed = row.split('|').nth(2).unwrap_or("");
        let expected = match source {
            Source::Parameter(p) => format!("`{p}`"),
            Source::Secret => "secret".into(),
            Source::Stack => "stack".into(),
            Source::Runtime => "Lambda".into(),
            Source::LocalOnly => "local only".into(),
        };
        assert!(deployed.contains(&expected), "docs/RUNBOOK.md: {var} should say {expected}: {row}");
    }
}
