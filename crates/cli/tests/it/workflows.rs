//! `valinectl workflows check`: the repository's workflows and examples pass, and a workflow that
//! pastes an input into a script is refused with its file and line.

use std::process::Command;

fn valinectl(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_valinectl"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("LOG_LEVEL", "warn")
        .output()
        .unwrap()
}

#[test]
fn the_repositorys_workflows_and_examples_pass() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = valinectl(&root, &["workflows", "check"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}{stderr}", String::from_utf8_lossy(&out.stdout));
    assert!(stderr.contains("6 file(s)"), "{stderr}");
}

#[test]
fn a_workflow_that_pastes_an_input_into_a_script_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let workflows = dir.path().join(".github/workflows");
    std::fs::create_dir_all(&workflows).unwrap();
    std::fs::create_dir_all(dir.path().join("docs/examples")).unwrap();
    std::fs::write(
        workflows.join("deploy.yml"),
        "on:\n  workflow_dispatch:\n    inputs:\n      ref: {required: true}\njobs:\n  d:\n    runs-on: ubuntu-latest\n    steps:\n      - env:\n          REF: ${{ inputs.ref }}\n        run: git checkout \"$REF\"\n      - run: |\n          git checkout ${{ inputs.ref }}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("docs/examples/triage.yaml"),
        "on: issues\njobs:\n  t:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo \"${{ github.event.issue.title }}\"\n",
    )
    .unwrap();
    let out = valinectl(dir.path(), &["workflows", "check"]);
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines[0].starts_with(".github/workflows/deploy.yml:13: `run:` interpolates `${{ inputs.ref }}`"),
        "{stdout}"
    );
    assert!(lines[1].starts_with("docs/examples/triage.yaml:6: `run:` interpolates `${{ github.event.issue.title }}`"));
    assert!(lines.iter().all(|l| l.contains("pass it through `env:`")), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("2 interpolation(s)"), "{stderr}");
}
